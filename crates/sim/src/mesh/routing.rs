//! Which http route of a VirtualService a request takes, as Istio's sidecars decide it: the first route whose `match`
//! holds (any one of its entries; within an entry, every condition), or that has no `match`. A VirtualService applies
//! to mesh traffic when its `gateways` are absent or include `mesh`; a match entry naming `gateways` applies only to
//! those gateways.
//!
//! Conditions understood: `uri`, `method`, `authority` and `scheme` (`exact`, `prefix`, `regex`, with
//! `ignoreUriCase`), `headers` and `withoutHeaders` (by lowercase name; an empty condition matches presence),
//! `queryParams` (`exact`, `regex`), `port`, `sourceLabels`, `sourceNamespace` and `gateways`. Regexes are RE2-style
//! full matches, as Envoy's.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One kind of request a traffic source sends.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestKind {
    /// Its share of the source's requests, relative to the other kinds' (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// The path, with any query string (`/reviews/1?debug=1`).
    #[serde(default = "root")]
    pub path: String,
    /// The HTTP method.
    #[serde(default = "get")]
    pub method: String,
    /// Request headers; names are matched in lowercase.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The Gateway (`name`, in the source's namespace, or `namespace/name`) the request enters the mesh through:
    /// when no VirtualService and no HTTPRoute of the Service (GAMMA) routes it, the HTTPRoutes that Gateway
    /// accepted do. None: the request comes from inside the mesh.
    #[serde(default)]
    pub gateway: Option<String>,
}

fn one() -> f64 {
    1.0
}

fn root() -> String {
    "/".into()
}

fn get() -> String {
    "GET".into()
}

impl Default for RequestKind {
    fn default() -> RequestKind {
        RequestKind { weight: 1.0, path: root(), method: get(), headers: BTreeMap::new(), gateway: None }
    }
}

/// Who sends the request: the mesh's load generator.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// The client's namespace.
    pub namespace: &'a str,
    /// The client pod's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The host the request is for (the service's short name).
    pub host: &'a str,
    /// The service port.
    pub port: u64,
}

/// Whether the VirtualService applies to traffic inside the mesh (sidecars), not only to gateways.
pub fn applies_to_mesh(virtual_service: &Value) -> bool {
    match virtual_service.pointer("/spec/gateways").and_then(Value::as_array) {
        None => true,
        Some(gateways) => gateways.is_empty() || gateways.iter().any(|gateway| gateway == "mesh"),
    }
}

/// The http route `request` takes, or `None` when no route matches it (Istio answers 404 `NR`).
pub fn select_route<'v>(virtual_service: &'v Value, request: &RequestKind, source: &Source<'_>) -> Option<&'v Value> {
    let routes = virtual_service.pointer("/spec/http").and_then(Value::as_array)?;
    routes.iter().find(|route| match route.get("match").and_then(Value::as_array) {
        None => true,
        Some(entries) if entries.is_empty() => true,
        Some(entries) => entries.iter().any(|entry| entry_matches(entry, request, source)),
    })
}

fn entry_matches(entry: &Value, request: &RequestKind, source: &Source<'_>) -> bool {
    let (path, query) = request.path.split_once('?').unwrap_or((request.path.as_str(), ""));
    let ignore_case = entry.get("ignoreUriCase").and_then(Value::as_bool).unwrap_or(false);
    let header = |name: &str| {
        request.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    };
    let conditions_hold = |field: &str, lookup: &dyn Fn(&str) -> Option<String>| {
        entry
            .get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .all(|(name, condition)| lookup(name).is_some_and(|value| string_matches(condition, &value, false)))
    };
    let scalar = |field: &str, value: &str, ignore_case: bool| {
        entry.get(field).is_none_or(|condition| string_matches(condition, value, ignore_case))
    };
    let query_value = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    };
    let without_headers = entry
        .get("withoutHeaders")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(name, condition)| header(name).is_none_or(|value| !string_matches(condition, value, false)));
    let port = entry.get("port").and_then(Value::as_u64).is_none_or(|port| port == source.port);
    let source_labels = entry
        .get("sourceLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(key, value)| source.labels.get(key).map(String::as_str) == value.as_str());
    let source_namespace =
        entry.get("sourceNamespace").and_then(Value::as_str).is_none_or(|namespace| namespace == source.namespace);
    let gateways = entry
        .get("gateways")
        .and_then(Value::as_array)
        .is_none_or(|gateways| gateways.iter().any(|gateway| gateway == "mesh"));
    scalar("uri", path, ignore_case)
        && scalar("method", &request.method, false)
        && scalar("authority", source.host, false)
        && scalar("scheme", "http", false)
        && conditions_hold("headers", &|name| header(name).map(str::to_owned))
        && conditions_hold("queryParams", &query_value)
        && without_headers
        && port
        && source_labels
        && source_namespace
        && gateways
}

/// Whether `value` meets an Istio StringMatch: `{exact}`, `{prefix}` or `{regex}`; an empty one matches anything
/// present.
fn string_matches(condition: &Value, value: &str, ignore_case: bool) -> bool {
    let compare = |expected: &str| {
        if ignore_case {
            (expected.to_lowercase(), value.to_lowercase())
        } else {
            (expected.to_owned(), value.to_owned())
        }
    };
    if let Some(exact) = condition.get("exact").and_then(Value::as_str) {
        let (expected, value) = compare(exact);
        return expected == value;
    }
    if let Some(prefix) = condition.get("prefix").and_then(Value::as_str) {
        let (expected, value) = compare(prefix);
        return value.starts_with(&expected);
    }
    if let Some(pattern) = condition.get("regex").and_then(Value::as_str) {
        let pattern = if ignore_case { format!("(?i)^(?:{pattern})$") } else { format!("^(?:{pattern})$") };
        return regex::Regex::new(&pattern).is_ok_and(|regex| regex.is_match(value));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Value {
        json!({ "spec": { "hosts": ["reviews"], "http": [
            { "name": "debug", "match": [{ "headers": { "x-debug": { "exact": "1" } } }], "route": [] },
            { "name": "api", "match": [{ "uri": { "prefix": "/api/" }, "method": { "exact": "POST" } },
                                       { "uri": { "regex": "/v[0-9]+/.*" } }], "route": [] },
            { "name": "case", "match": [{ "uri": { "exact": "/Health" }, "ignoreUriCase": true }], "route": [] },
            { "name": "query", "match": [{ "queryParams": { "canary": { "exact": "yes" } } }], "route": [] },
            { "name": "not-internal", "match": [{ "withoutHeaders": { "x-internal": {} }, "uri": { "prefix": "/public" } }], "route": [] },
            { "name": "gateway-only", "match": [{ "gateways": ["bookinfo-gateway"] }], "route": [] },
            { "name": "from-loadgenerator", "match": [{ "sourceLabels": { "app": "loadgenerator" }, "port": 9080, "uri": { "prefix": "/lg" } }], "route": [] },
            { "name": "primary", "route": [] }
        ] } })
    }

    fn routed(path: &str, method: &str, headers: &[(&str, &str)]) -> String {
        let labels = BTreeMap::from([("app".to_owned(), "loadgenerator".to_owned())]);
        let source = Source { namespace: "bookinfo", labels: &labels, host: "reviews", port: 9080 };
        let request = RequestKind {
            path: path.into(),
            method: method.into(),
            headers: headers.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect(),
            ..RequestKind::default()
        };
        let service = service();
        select_route(&service, &request, &source).map(|route| route["name"].as_str().unwrap().to_owned()).unwrap()
    }

    #[test]
    fn the_first_route_whose_match_holds_takes_the_request() {
        assert_eq!(routed("/", "GET", &[("X-Debug", "1")]), "debug", "header names are case-insensitive");
        assert_eq!(routed("/", "GET", &[("x-debug", "2")]), "primary");
        assert_eq!(routed("/api/books", "POST", &[]), "api");
        assert_eq!(routed("/api/books", "GET", &[]), "primary", "every condition of an entry must hold");
        assert_eq!(routed("/v2/books", "GET", &[]), "api", "any entry may hold");
        assert_eq!(routed("/xv2/books", "GET", &[]), "primary", "a regex matches the whole value");
        assert_eq!(routed("/health", "GET", &[]), "case");
        assert_eq!(routed("/books?canary=yes", "GET", &[]), "query");
        assert_eq!(routed("/public/a", "GET", &[]), "not-internal");
        assert_eq!(routed("/public/a", "GET", &[("x-internal", "1")]), "primary");
        assert_eq!(routed("/lg", "GET", &[]), "from-loadgenerator");
    }

    #[test]
    fn no_route_matches_when_every_route_has_conditions_that_fail() {
        let service = json!({ "spec": { "http": [{ "match": [{ "uri": { "exact": "/a" } }], "route": [] }] } });
        let labels = BTreeMap::new();
        let source = Source { namespace: "bookinfo", labels: &labels, host: "reviews", port: 9080 };
        assert!(select_route(&service, &RequestKind::default(), &source).is_none());
    }

    #[test]
    fn a_virtual_service_bound_to_gateways_only_does_not_route_mesh_traffic() {
        assert!(applies_to_mesh(&json!({ "spec": {} })));
        assert!(applies_to_mesh(&json!({ "spec": { "gateways": ["mesh", "bookinfo-gateway"] } })));
        assert!(!applies_to_mesh(&json!({ "spec": { "gateways": ["bookinfo-gateway"] } })));
    }
}
