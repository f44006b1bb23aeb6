//! HTTPRoutes that route the service too. Istio leaves a service routed by both a VirtualService and an HTTPRoute
//! undefined (and traffic an HTTPRoute sends to the service would not follow the canary's weights), so preflight
//! refuses the release and names them, as the Gateway API provider refuses VirtualServices of its service.
//!
//! An HTTPRoute routes the service when one of its parentRefs is the Service (a GAMMA route, for mesh traffic) or one
//! of its rules has a backendRef to it (from a Gateway). Kinds default to Service in the core group and namespaces to
//! the route's, as the Gateway API defines them.

use serde_json::Value;

/// Whether `reference` (a parentRef or backendRef of a route in `route_namespace`) names Service `service` of
/// `namespace`.
fn names_service(reference: &Value, service: &str, namespace: &str, route_namespace: &str, default_kind: &str) -> bool {
    let text = |field: &str| reference.get(field).and_then(Value::as_str);
    let group = text("group").unwrap_or("");
    let kind = text("kind").unwrap_or(default_kind);
    let reference_namespace = text("namespace").unwrap_or(route_namespace);
    (group.is_empty() || group == "core")
        && kind == "Service"
        && text("name") == Some(service)
        && reference_namespace == namespace
}

/// The names of the `routes` (HTTPRoutes as JSON) that route Service `service` of `namespace`.
pub fn routing_the_service(routes: &[Value], service: &str, namespace: &str) -> Vec<String> {
    routes
        .iter()
        .filter(|route| {
            let route_namespace = route.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(namespace);
            let list = |value: Option<&Value>| value.and_then(Value::as_array).cloned().unwrap_or_default();
            let parents = list(route.pointer("/spec/parentRefs"));
            // A parentRef's kind defaults to Gateway; a backendRef's to Service.
            let by_parent =
                parents.iter().any(|parent| names_service(parent, service, namespace, route_namespace, "Gateway"));
            let by_backend = list(route.pointer("/spec/rules")).iter().any(|rule| {
                list(rule.get("backendRefs"))
                    .iter()
                    .any(|backend| names_service(backend, service, namespace, route_namespace, "Service"))
            });
            by_parent || by_backend
        })
        .filter_map(|route| route.pointer("/metadata/name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "bookinfo"}, "spec": spec})
    }

    #[test]
    fn routes_attached_to_the_service_or_sending_to_it_are_found_and_others_are_not() {
        let routes = [
            route("mesh", json!({"parentRefs": [{"group": "", "kind": "Service", "name": "reviews"}]})),
            route(
                "ingress",
                json!({"parentRefs": [{"name": "public"}], "rules": [{"backendRefs": [{"name": "reviews", "port": 9080}]}]}),
            ),
            route("gateway-named-reviews", json!({"parentRefs": [{"name": "reviews"}]})),
            route("other-service", json!({"rules": [{"backendRefs": [{"name": "ratings"}]}]})),
            route("other-namespace", json!({"rules": [{"backendRefs": [{"name": "reviews", "namespace": "shop"}]}]})),
            route(
                "other-kind",
                json!({"rules": [{"backendRefs": [{"group": "example.com", "kind": "Bucket", "name": "reviews"}]}]}),
            ),
            route("no-spec", json!({})),
        ];
        assert_eq!(routing_the_service(&routes, "reviews", "bookinfo"), ["mesh", "ingress"]);
    }
}
