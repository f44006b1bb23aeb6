//! What the Gateway API CRD schemas (standard channel, v1) do to GatewayClass, Gateway and HTTPRoute objects on the
//! API server: the structural defaults (a route's parentRef is a Gateway, a backendRef a Service of weight 1, a rule
//! without matches matches `PathPrefix /`), then the checks clients meet: required fields, `maxItems`, `minimum` and
//! `maximum`, types, and the CEL rules on unique names, Service ports and an immutable controllerName. Each problem
//! is one cause of the 422 the API answers, worded as kube-apiserver words it:
//!
//! ```text
//! HTTPRoute.gateway.networking.k8s.io "reviews" is invalid: spec.rules[0].backendRefs[1].weight: Invalid value:
//! 1000001: spec.rules[0].backendRefs[1].weight in body should be less than or equal to 1000000
//! ```

use super::GROUP;
use crate::api_error::Cause;
use serde_json::{Value, json};

/// Most rules of an HTTPRoute.
pub const MAX_RULES: usize = 16;
/// Most backendRefs of one HTTPRoute rule.
pub const MAX_BACKEND_REFS: usize = 16;
/// Most parentRefs of an HTTPRoute.
pub const MAX_PARENT_REFS: usize = 32;
/// Most listeners of a Gateway.
pub const MAX_LISTENERS: usize = 64;
/// The largest backend weight.
pub const MAX_WEIGHT: i64 = 1_000_000;

fn insert_default(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.entry(key.to_owned()).or_insert(value);
    }
}

fn root_prefix() -> Value {
    json!({ "type": "PathPrefix", "value": "/" })
}

fn entries_mut<'v>(object: &'v mut Value, key: &str) -> impl Iterator<Item = &'v mut Value> {
    object.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten()
}

/// Applies the HTTPRoute schema's defaults: parentRefs are Gateways of this group; a route without rules has one
/// rule, and a rule without matches one match, on `PathPrefix /`; header and query parameter matches are `Exact`;
/// backendRefs are core-group Services of weight 1.
pub fn default_http_route(route: &mut Value) {
    let Some(spec) = route.get_mut("spec").filter(|spec| spec.is_object()) else { return };
    for reference in entries_mut(spec, "parentRefs") {
        insert_default(reference, "group", json!(GROUP));
        insert_default(reference, "kind", json!("Gateway"));
    }
    insert_default(spec, "rules", json!([{ "matches": [{ "path": root_prefix() }] }]));
    for rule in entries_mut(spec, "rules") {
        insert_default(rule, "matches", json!([{ "path": root_prefix() }]));
        for matched in entries_mut(rule, "matches") {
            insert_default(matched, "path", root_prefix());
            if let Some(path) = matched.get_mut("path") {
                insert_default(path, "type", json!("PathPrefix"));
                insert_default(path, "value", json!("/"));
            }
            for header in entries_mut(matched, "headers") {
                insert_default(header, "type", json!("Exact"));
            }
            for parameter in entries_mut(matched, "queryParams") {
                insert_default(parameter, "type", json!("Exact"));
            }
        }
        for backend in entries_mut(rule, "backendRefs") {
            insert_default(backend, "group", json!(""));
            insert_default(backend, "kind", json!("Service"));
            insert_default(backend, "weight", json!(1));
        }
    }
}

/// Applies the Gateway schema's defaults: a listener's routes come from its own namespace
/// (`allowedRoutes.namespaces.from: Same`).
pub fn default_gateway(gateway: &mut Value) {
    let Some(spec) = gateway.get_mut("spec").filter(|spec| spec.is_object()) else { return };
    for listener in entries_mut(spec, "listeners") {
        insert_default(listener, "allowedRoutes", json!({ "namespaces": { "from": "Same" } }));
        if let Some(allowed) = listener.get_mut("allowedRoutes") {
            insert_default(allowed, "namespaces", json!({ "from": "Same" }));
            if let Some(namespaces) = allowed.get_mut("namespaces") {
                insert_default(namespaces, "from", json!("Same"));
            }
        }
    }
}

fn cause(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Cause {
    Cause { reason, field: field.into(), message: message.into() }
}

fn required(field: impl Into<String>) -> Cause {
    cause("FieldValueRequired", field, "Required value")
}

fn too_many(field: impl Into<String>, count: usize, most: usize) -> Cause {
    cause("FieldValueTooMany", field, format!("Too many: {count}: must have at most {most} items"))
}

/// A failed CEL rule (`x-kubernetes-validations`) on the value at `field`, of JSON type `type_name`.
fn rule_failed(field: impl Into<String>, type_name: &str, message: &str) -> Cause {
    cause("FieldValueInvalid", field, format!("Invalid value: \"{type_name}\": {message}"))
}

/// The JSON type name kube-apiserver's schema validation reports.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A required, non-empty string field (`minLength: 1`).
fn check_name(object: &Value, key: &str, field: String, causes: &mut Vec<Cause>) {
    match object.get(key) {
        None | Some(Value::Null) => causes.push(required(field)),
        Some(Value::String(text)) if text.is_empty() => causes.push(cause(
            "FieldValueInvalid",
            field.clone(),
            format!("Invalid value: \"\": {field} in body should be at least 1 chars long"),
        )),
        Some(Value::String(_)) => {}
        Some(other) => causes.push(type_invalid(&field, other, "string")),
    }
}

fn type_invalid(field: &str, value: &Value, expected: &str) -> Cause {
    let actual = type_name(value);
    cause(
        "FieldValueTypeInvalid",
        field,
        format!("Invalid value: \"{actual}\": {field} in body must be of type {expected}: \"{actual}\""),
    )
}

/// An integer field within `minimum..=maximum`.
fn check_integer(value: &Value, field: &str, minimum: i64, maximum: i64, causes: &mut Vec<Cause>) {
    let integer = match value {
        Value::Number(number) => {
            number.as_i64().or_else(|| number.as_f64().filter(|float| float.fract() == 0.0).map(|float| float as i64))
        }
        _ => None,
    };
    match integer {
        None => causes.push(type_invalid(field, value, "integer")),
        Some(number) if number > maximum => causes.push(cause(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {number}: {field} in body should be less than or equal to {maximum}"),
        )),
        Some(number) if number < minimum => causes.push(cause(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {number}: {field} in body should be greater than or equal to {minimum}"),
        )),
        Some(_) => {}
    }
}

/// The entries of a list field, with a `maxItems` check.
fn list<'v>(object: &'v Value, key: &str, field: &str, most: usize, causes: &mut Vec<Cause>) -> &'v [Value] {
    let entries = object.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if entries.len() > most {
        causes.push(too_many(field, entries.len(), most));
    }
    entries
}

/// The CEL rule that names within a list are unique (entries without a name are exempt).
fn check_unique_names(entries: &[Value], field: &str, message: &str, causes: &mut Vec<Cause>) {
    let names: Vec<&str> = entries.iter().filter_map(|entry| entry.get("name").and_then(Value::as_str)).collect();
    let duplicated = names.iter().enumerate().any(|(index, name)| names[..index].contains(name));
    if duplicated {
        causes.push(rule_failed(field, "array", message));
    }
}

/// Checks an HTTPRoute as its CRD schema does, adding one cause per problem.
pub fn validate_http_route(route: &Value, causes: &mut Vec<Cause>) {
    let Some(spec) = route.get("spec").filter(|spec| spec.is_object()) else {
        causes.push(required("spec"));
        return;
    };
    for (index, reference) in list(spec, "parentRefs", "spec.parentRefs", MAX_PARENT_REFS, causes).iter().enumerate() {
        check_name(reference, "name", format!("spec.parentRefs[{index}].name"), causes);
    }
    let rules = list(spec, "rules", "spec.rules", MAX_RULES, causes);
    check_unique_names(rules, "spec.rules", "Rule name must be unique within the route", causes);
    for (rule_index, rule) in rules.iter().enumerate() {
        let path = format!("spec.rules[{rule_index}].backendRefs");
        for (index, backend) in list(rule, "backendRefs", &path, MAX_BACKEND_REFS, causes).iter().enumerate() {
            let field = format!("{path}[{index}]");
            check_name(backend, "name", format!("{field}.name"), causes);
            if let Some(weight) = backend.get("weight").filter(|weight| !weight.is_null()) {
                check_integer(weight, &format!("{field}.weight"), 0, MAX_WEIGHT, causes);
            }
            let group = backend.get("group").and_then(Value::as_str).unwrap_or_default();
            let kind = backend.get("kind").and_then(Value::as_str).unwrap_or("Service");
            if group.is_empty() && kind == "Service" && backend.get("port").is_none_or(Value::is_null) {
                causes.push(rule_failed(field, "object", "Must have port for Service reference"));
            }
        }
    }
}

/// Checks a Gateway as its CRD schema does, adding one cause per problem.
pub fn validate_gateway(gateway: &Value, causes: &mut Vec<Cause>) {
    let Some(spec) = gateway.get("spec").filter(|spec| spec.is_object()) else {
        causes.push(required("spec"));
        return;
    };
    check_name(spec, "gatewayClassName", "spec.gatewayClassName".into(), causes);
    let listeners = match spec.get("listeners") {
        None | Some(Value::Null) => {
            causes.push(required("spec.listeners"));
            return;
        }
        Some(_) => list(spec, "listeners", "spec.listeners", MAX_LISTENERS, causes),
    };
    if listeners.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.listeners",
            "Invalid value: 0: spec.listeners in body should have at least 1 items",
        ));
    }
    check_unique_names(listeners, "spec.listeners", "Listener name must be unique within the Gateway", causes);
    for (index, listener) in listeners.iter().enumerate() {
        let field = format!("spec.listeners[{index}]");
        check_name(listener, "name", format!("{field}.name"), causes);
        check_name(listener, "protocol", format!("{field}.protocol"), causes);
        match listener.get("port") {
            None | Some(Value::Null) => causes.push(required(format!("{field}.port"))),
            Some(port) => check_integer(port, &format!("{field}.port"), 1, 65_535, causes),
        }
    }
}

/// Checks a GatewayClass as its CRD schema does (`old`: the stored object, for updates), adding one cause per
/// problem.
pub fn validate_gateway_class(class: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let Some(spec) = class.get("spec").filter(|spec| spec.is_object()) else {
        causes.push(required("spec"));
        return;
    };
    check_name(spec, "controllerName", "spec.controllerName".into(), causes);
    let previous = old.and_then(|old| old.pointer("/spec/controllerName"));
    if let Some(previous) = previous
        && spec.get("controllerName").is_some_and(|current| current != previous)
    {
        causes.push(rule_failed("spec.controllerName", "string", "Value is immutable"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{AdmissionConfig, Operation, admit};
    use crate::resources::{GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES};

    fn route(rules: Value) -> Value {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": { "name": "reviews", "namespace": "bookinfo" },
            "spec": { "parentRefs": [{ "group": "", "kind": "Service", "name": "reviews", "port": 9080 }], "rules": rules },
        })
    }

    fn backend(name: &str, weight: Value) -> Value {
        json!({ "name": name, "port": 9080, "weight": weight })
    }

    fn admitted(
        resource: crate::resources::ResourceId,
        mut object: Value,
    ) -> Result<Value, crate::api_error::ApiError> {
        admit(&AdmissionConfig::default(), resource, Operation::Create, None, None, &mut object)?;
        Ok(object)
    }

    #[test]
    fn weights_beyond_the_maximum_fail_with_the_schemas_message() {
        let error = admitted(
            HTTP_ROUTES,
            route(
                json!([{ "backendRefs": [backend("reviews-v1", json!(1)), backend("reviews-v2", json!(1_000_001))] }]),
            ),
        )
        .unwrap_err();
        assert_eq!((error.code, error.reason), (422, "Invalid"));
        assert_eq!(
            error.message,
            "HTTPRoute.gateway.networking.k8s.io \"reviews\" is invalid: spec.rules[0].backendRefs[1].weight: Invalid value: 1000001: spec.rules[0].backendRefs[1].weight in body should be less than or equal to 1000000"
        );
        assert_eq!(error.details.as_ref().unwrap()["causes"][0]["field"], "spec.rules[0].backendRefs[1].weight");

        let error =
            admitted(HTTP_ROUTES, route(json!([{ "backendRefs": [backend("reviews-v1", json!(-1))] }]))).unwrap_err();
        assert!(error.message.ends_with("in body should be greater than or equal to 0"), "{}", error.message);
        let error = admitted(HTTP_ROUTES, route(json!([{ "backendRefs": [backend("reviews-v1", json!("ten"))] }])))
            .unwrap_err();
        assert!(
            error.message.ends_with("weight: Invalid value: \"string\": spec.rules[0].backendRefs[0].weight in body must be of type integer: \"string\""),
            "{}",
            error.message
        );
        assert!(admitted(HTTP_ROUTES, route(json!([{ "backendRefs": [backend("reviews-v1", json!(0))] }]))).is_ok());
        assert!(admitted(HTTP_ROUTES, route(json!([{ "backendRefs": [backend("a", json!(1_000_000))] }]))).is_ok());
    }

    #[test]
    fn list_limits_required_names_and_unique_rule_names() {
        let rules: Vec<Value> = (0..17).map(|_| json!({ "backendRefs": [backend("reviews-v1", json!(1))] })).collect();
        let error = admitted(HTTP_ROUTES, route(Value::Array(rules))).unwrap_err();
        assert!(error.message.ends_with("spec.rules: Too many: 17: must have at most 16 items"), "{}", error.message);

        let backends: Vec<Value> = (0..17).map(|index| backend(&format!("b{index}"), json!(1))).collect();
        let error = admitted(HTTP_ROUTES, route(json!([{ "backendRefs": backends }]))).unwrap_err();
        assert!(error.message.ends_with("spec.rules[0].backendRefs: Too many: 17: must have at most 16 items"));

        let mut many_parents = route(json!([]));
        many_parents["spec"]["parentRefs"] =
            Value::Array((0..33).map(|index| json!({ "name": format!("gateway-{index}") })).collect());
        let error = admitted(HTTP_ROUTES, many_parents).unwrap_err();
        assert!(error.message.ends_with("spec.parentRefs: Too many: 33: must have at most 32 items"));

        let mut nameless_parent = route(json!([]));
        nameless_parent["spec"]["parentRefs"] = json!([{ "kind": "Gateway" }]);
        let error = admitted(HTTP_ROUTES, nameless_parent).unwrap_err();
        assert!(error.message.ends_with("spec.parentRefs[0].name: Required value"), "{}", error.message);

        let error = admitted(HTTP_ROUTES, route(json!([{ "backendRefs": [{ "port": 9080 }] }]))).unwrap_err();
        assert!(error.message.ends_with("spec.rules[0].backendRefs[0].name: Required value"), "{}", error.message);

        let error = admitted(HTTP_ROUTES, route(json!([{ "backendRefs": [{ "name": "reviews-v1" }] }]))).unwrap_err();
        assert!(
            error.message.ends_with(
                "spec.rules[0].backendRefs[0]: Invalid value: \"object\": Must have port for Service reference"
            ),
            "{}",
            error.message
        );

        let duplicated = route(json!([
            { "name": "primary", "backendRefs": [backend("reviews-v1", json!(1))] },
            { "name": "primary", "backendRefs": [backend("reviews-v2", json!(1))] },
            { "backendRefs": [backend("reviews-v3", json!(1))] },
        ]));
        let error = admitted(HTTP_ROUTES, duplicated).unwrap_err();
        assert!(
            error.message.ends_with("spec.rules: Invalid value: \"array\": Rule name must be unique within the route"),
            "{}",
            error.message
        );
        let distinct = route(json!([
            { "name": "primary", "backendRefs": [backend("reviews-v1", json!(1))] },
            { "backendRefs": [backend("reviews-v2", json!(1))] },
            { "backendRefs": [backend("reviews-v3", json!(1))] },
        ]));
        assert!(admitted(HTTP_ROUTES, distinct).is_ok(), "rules without names need no unique name");
    }

    #[test]
    fn defaults_fill_kinds_weights_and_matches() {
        let mut gateway_route = route(json!([{ "backendRefs": [{ "name": "reviews-v1", "port": 9080 }] }]));
        gateway_route["spec"]["parentRefs"] = json!([{ "name": "bookinfo-gateway" }]);
        let stored = admitted(HTTP_ROUTES, gateway_route).unwrap();
        assert_eq!(
            stored["spec"]["parentRefs"][0],
            json!({ "group": GROUP, "kind": "Gateway", "name": "bookinfo-gateway" })
        );
        let rule = &stored["spec"]["rules"][0];
        assert_eq!(rule["matches"], json!([{ "path": { "type": "PathPrefix", "value": "/" } }]));
        assert_eq!(rule["backendRefs"][0]["weight"], 1);
        assert_eq!(rule["backendRefs"][0]["kind"], "Service");
        assert_eq!(rule["backendRefs"][0]["group"], "");

        let mut no_rules = route(json!([]));
        if let Some(spec) = no_rules["spec"].as_object_mut() {
            spec.remove("rules");
        }
        let stored = admitted(HTTP_ROUTES, no_rules).unwrap();
        assert_eq!(
            stored["spec"]["rules"],
            json!([{ "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }] }])
        );
    }

    #[test]
    fn gateways_and_classes_need_their_required_fields() {
        let gateway = json!({ "metadata": { "name": "g" }, "spec": { "gatewayClassName": "istio", "listeners": [
            { "name": "http", "port": 80, "protocol": "HTTP" }
        ] } });
        let stored = admitted(GATEWAYS, gateway.clone()).unwrap();
        assert_eq!(stored["spec"]["listeners"][0]["allowedRoutes"], json!({ "namespaces": { "from": "Same" } }));

        let mut bad = gateway.clone();
        bad["spec"]["listeners"] =
            json!([{ "name": "http", "port": 70000, "protocol": "HTTP" }, { "name": "http", "port": 81 }]);
        let error = admitted(GATEWAYS, bad).unwrap_err();
        assert!(error.message.contains("Listener name must be unique within the Gateway"), "{}", error.message);
        assert!(error.message.contains("spec.listeners[0].port in body should be less than or equal to 65535"));
        assert!(error.message.contains("spec.listeners[1].protocol: Required value"));

        let error = admitted(GATEWAY_CLASSES, json!({ "metadata": { "name": "istio" }, "spec": {} })).unwrap_err();
        assert!(error.message.ends_with("spec.controllerName: Required value"), "{}", error.message);
        let class =
            json!({ "metadata": { "name": "istio" }, "spec": { "controllerName": "istio.io/gateway-controller" } });
        let mut changed = class.clone();
        changed["spec"]["controllerName"] = json!("example.com/other");
        let mut causes = Vec::new();
        validate_gateway_class(&changed, Some(&class), &mut causes);
        assert_eq!(causes[0].message, "Invalid value: \"string\": Value is immutable");
    }
}
