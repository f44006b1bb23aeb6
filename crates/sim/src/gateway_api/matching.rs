//! Which rule of which HTTPRoute takes a request, as the Gateway API specifies it and Istio implements it.
//!
//! A rule matches when any one of its `matches` holds; a rule without matches matches `PathPrefix /`. Within a match
//! every condition must hold: `path` (`PathPrefix` by whole path elements, a trailing `/` ignored; `Exact`;
//! `RegularExpression`, a full match), `headers` (names case-insensitive, only the first condition per name counts;
//! `Exact` or `RegularExpression`), `queryParams` (`Exact` or `RegularExpression`) and `method`.
//!
//! Among every match that holds, across all the routes that apply, the most specific wins: an `Exact` path; then the
//! longest `PathPrefix` (a `RegularExpression` path, whose place the specification leaves to implementations, ranks
//! by its length as a prefix does, as Istio orders them); then a `method`; then the most header conditions; then the
//! most query parameter conditions. Ties go to the oldest route, then the first by `namespace/name`, then the first
//! rule and match in list order.

use super::data_plane::ProgrammedRoute;
use crate::mesh::routing::RequestKind;
use serde_json::{Value, json};
use std::cmp::Reverse;
use std::sync::Arc;

/// How specific a match that holds is; the greatest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    /// 1 for an `Exact` path, 0 for the others.
    exact_path: u8,
    /// The length of the path condition (a prefix without its trailing `/`).
    path_length: usize,
    /// Whether it matches the method.
    method: bool,
    /// How many header conditions it has.
    headers: usize,
    /// How many query parameter conditions it has.
    query_parameters: usize,
}

/// The order in which a match competes: specificity first, then the tie-breakers (oldest route, `namespace/name`,
/// rule index, match index: the smallest wins, hence reversed).
type Precedence<'r> = (Specificity, Reverse<&'r str>, Reverse<String>, Reverse<usize>, Reverse<usize>);

/// The rule that takes `request` among `routes`, with its route, or `None` when no rule matches (Istio answers 404
/// `NR`).
pub fn select_rule<'r>(
    routes: &'r [Arc<ProgrammedRoute>],
    request: &RequestKind,
) -> Option<(&'r ProgrammedRoute, &'r Value)> {
    let catch_all = [json!({ "path": { "type": "PathPrefix", "value": "/" } })];
    let mut best: Option<(Precedence<'r>, &'r ProgrammedRoute, &'r Value)> = None;
    for route in routes {
        let route: &'r ProgrammedRoute = route;
        for (rule_index, rule) in route.rules().iter().enumerate() {
            let matches = rule.get("matches").and_then(Value::as_array).filter(|matches| !matches.is_empty());
            let entries: &[Value] = matches.map_or(&catch_all[..], Vec::as_slice);
            for (match_index, entry) in entries.iter().enumerate() {
                let Some(specificity) = specificity(entry, request) else { continue };
                let precedence = (
                    specificity,
                    Reverse(route.creation_timestamp.as_str()),
                    Reverse(format!("{}/{}", route.namespace, route.name)),
                    Reverse(rule_index),
                    Reverse(match_index),
                );
                if best.as_ref().is_none_or(|(current, _, _)| precedence > *current) {
                    best = Some((precedence, route, rule));
                }
            }
        }
    }
    best.map(|(_, route, rule)| (route, rule))
}

/// How specific `entry` (one of a rule's `matches`) is, if it holds for `request`.
fn specificity(entry: &Value, request: &RequestKind) -> Option<Specificity> {
    let (path, query) = request.path.split_once('?').unwrap_or((request.path.as_str(), ""));
    let condition = entry.get("path");
    let path_type = condition.and_then(|condition| condition.get("type")).and_then(Value::as_str);
    let value = condition.and_then(|condition| condition.get("value")).and_then(Value::as_str).unwrap_or("/");
    let (exact_path, path_length, holds) = match path_type {
        Some("Exact") => (1, value.len(), path == value),
        Some("RegularExpression") => (0, value.len(), full_match(value, path)),
        _ => {
            let prefix = value.trim_end_matches('/');
            (0, prefix.len().max(1), prefix_matches(prefix, path))
        }
    };
    if !holds {
        return None;
    }
    let method = entry.get("method").and_then(Value::as_str);
    if method.is_some_and(|method| method != request.method) {
        return None;
    }
    let header = |name: &str| {
        request.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    };
    let headers = conditions_hold(entry.get("headers"), true, &header)?;
    let query_value = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    };
    let query_parameters = conditions_hold(entry.get("queryParams"), false, &query_value)?;
    Some(Specificity { exact_path, path_length, method: method.is_some(), headers, query_parameters })
}

/// Whether every condition of a `headers` or `queryParams` list holds, looking values up by name; `Some(count)` of
/// the conditions that count (the first per name), `None` when one fails.
fn conditions_hold<'q>(
    conditions: Option<&Value>,
    case_insensitive: bool,
    lookup: &dyn Fn(&str) -> Option<&'q str>,
) -> Option<usize> {
    let mut seen: Vec<String> = Vec::new();
    for condition in conditions.and_then(Value::as_array).into_iter().flatten() {
        let name = condition.get("name").and_then(Value::as_str).unwrap_or_default();
        let key = if case_insensitive { name.to_ascii_lowercase() } else { name.to_owned() };
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let expected = condition.get("value").and_then(Value::as_str).unwrap_or_default();
        let holds = lookup(name).is_some_and(|actual| match condition.get("type").and_then(Value::as_str) {
            Some("RegularExpression") => full_match(expected, actual),
            _ => actual == expected,
        });
        if !holds {
            return None;
        }
    }
    Some(seen.len())
}

/// A `PathPrefix` match by whole path elements: `/reviews` matches `/reviews` and `/reviews/1`, not `/reviewsx`.
/// `prefix` has its trailing `/` removed (the root prefix is then empty and matches everything).
fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Whether the regular expression matches the whole value, as Envoy's RE2 matchers do.
fn full_match(pattern: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|regex| regex.is_match(value))
}

/// Whether two hostnames match, either possibly a wildcard (`*.example.com` matches `reviews.example.com`; `*`
/// matches anything), as Istio compares route and listener hostnames.
pub fn hostnames_match(first: &str, second: &str) -> bool {
    let covers = |pattern: &str, hostname: &str| {
        pattern == "*"
            || pattern == hostname
            || pattern.strip_prefix('*').is_some_and(|suffix| suffix.starts_with('.') && hostname.ends_with(suffix))
    };
    covers(first, second) || covers(second, first)
}

/// Whether a route serves requests for `host` (the request's Host header, without a port): a route without
/// hostnames serves every host, and so does every route for a request without a Host header.
pub fn serves_host(route: &ProgrammedRoute, host: Option<&str>) -> bool {
    let hostnames = route.hostnames();
    let Some(host) = host.map(|host| host.split(':').next().unwrap_or(host)) else { return true };
    hostnames.is_empty() || hostnames.iter().any(|hostname| hostnames_match(hostname, host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn route(name: &str, created: &str, rules: Value) -> Arc<ProgrammedRoute> {
        Arc::new(ProgrammedRoute {
            namespace: "bookinfo".into(),
            name: name.into(),
            creation_timestamp: created.into(),
            generation: 1,
            spec: json!({ "rules": rules }),
            parents: Vec::new(),
        })
    }

    fn prefix(value: &str) -> Value {
        json!({ "type": "PathPrefix", "value": value })
    }

    fn routes() -> Vec<Arc<ProgrammedRoute>> {
        vec![
            route(
                "newer",
                "2026-01-02T00:00:00Z",
                json!([{ "name": "newer-reviews", "matches": [{ "path": prefix("/reviews") }] }]),
            ),
            route(
                "older",
                "2026-01-01T00:00:00Z",
                json!([
                    { "name": "root", "matches": [{ "path": prefix("/") }] },
                    { "name": "reviews", "matches": [{ "path": prefix("/reviews/") }] },
                    { "name": "exact", "matches": [{ "path": { "type": "Exact", "value": "/reviews/1" } }] },
                    { "name": "post", "matches": [{ "path": prefix("/reviews"), "method": "POST" }] },
                    { "name": "debug", "matches": [{ "path": prefix("/reviews"), "headers": [{ "name": "x-debug", "value": "1" }] }] },
                    { "name": "debug-canary", "matches": [{ "path": prefix("/reviews"), "headers": [
                        { "name": "X-Debug", "value": "1" },
                        { "name": "x-canary", "type": "RegularExpression", "value": "y.s" },
                    ] }] },
                    { "name": "query", "matches": [{ "path": prefix("/reviews"), "queryParams": [{ "name": "v", "value": "2" }] }] },
                    { "name": "ratings", "matches": [{ "path": { "type": "RegularExpression", "value": "/ratings/[0-9]+" } }] },
                ]),
            ),
        ]
    }

    fn selected(routes: &[Arc<ProgrammedRoute>], method: &str, path: &str, headers: &[(&str, &str)]) -> Option<String> {
        let request = RequestKind {
            path: path.into(),
            method: method.into(),
            headers: headers
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ..RequestKind::default()
        };
        select_rule(routes, &request).map(|(_, rule)| rule["name"].as_str().unwrap_or_default().to_owned())
    }

    #[test]
    fn the_most_specific_match_wins_across_rules_and_routes() {
        let routes = routes();
        let pick =
            |method: &str, path: &str, headers: &[(&str, &str)]| selected(&routes, method, path, headers).unwrap();
        assert_eq!(pick("GET", "/reviews/1", &[]), "exact");
        assert_eq!(pick("POST", "/reviews/1", &[]), "exact", "an exact path beats a method");
        assert_eq!(pick("GET", "/reviews/1?v=2", &[]), "exact", "the query string is not part of the path");
        assert_eq!(pick("POST", "/reviews/2", &[("x-debug", "1")]), "post", "a method beats headers");
        assert_eq!(pick("GET", "/reviews/2", &[("X-DEBUG", "1")]), "debug", "header names are case-insensitive");
        assert_eq!(pick("GET", "/reviews/2", &[("x-debug", "1"), ("x-canary", "yes")]), "debug-canary");
        assert_eq!(pick("GET", "/reviews/2", &[("x-debug", "1"), ("x-canary", "no")]), "debug");
        assert_eq!(pick("GET", "/reviews/2?v=2", &[]), "query");
        assert_eq!(pick("GET", "/reviews/2?v=2", &[("x-debug", "1")]), "debug", "headers beat query parameters");
        assert_eq!(pick("GET", "/reviews/2", &[]), "reviews", "the oldest route wins a tie, trailing / ignored");
        assert_eq!(pick("GET", "/reviews", &[]), "reviews");
        assert_eq!(pick("GET", "/reviewsx", &[]), "root", "prefixes match whole path elements");
        assert_eq!(pick("GET", "/ratings/12", &[]), "ratings");
        assert_eq!(pick("GET", "/ratings/12/x", &[]), "root", "a regular expression matches the whole path");
    }

    #[test]
    fn ties_go_to_the_first_name_then_the_first_rule_and_no_match_is_none() {
        let same_time = "2026-01-01T00:00:00Z";
        let routes = vec![
            route("zeta", same_time, json!([{ "name": "zeta" }])),
            route("alpha", same_time, json!([{ "name": "alpha-first" }, { "name": "alpha-second" }])),
        ];
        assert_eq!(selected(&routes, "GET", "/anything", &[]).as_deref(), Some("alpha-first"));

        let exact_only =
            vec![route("r", same_time, json!([{ "matches": [{ "path": { "type": "Exact", "value": "/a" } }] }]))];
        assert_eq!(selected(&exact_only, "GET", "/b", &[]), None);
    }

    #[test]
    fn hostnames_match_with_wildcards_either_way() {
        assert!(hostnames_match("*.example.com", "reviews.example.com"));
        assert!(hostnames_match("reviews.example.com", "*.example.com"));
        assert!(!hostnames_match("*.example.com", "example.com"));
        assert!(hostnames_match("*", "anything"));
        assert!(!hostnames_match("a.example.com", "b.example.com"));
        let mut with_hosts = (*route("r", "2026-01-01T00:00:00Z", json!([]))).clone();
        with_hosts.spec["hostnames"] = json!(["bookinfo.example.com"]);
        assert!(serves_host(&with_hosts, Some("bookinfo.example.com:80")));
        assert!(!serves_host(&with_hosts, Some("other.example.com")));
        assert!(serves_host(&with_hosts, None));
    }
}
