//! The new version's Service: the Gateway API splits traffic between Services, so each version needs one selecting
//! only its pods. fledge creates it as a copy of the live version's Service (its ports, type and session affinity,
//! its labels) selecting `version: <new version>`, and removes it with the version it serves.

use serde_json::{Map, Value, json};

/// Label keys (and prefixes) of the tools that track what they own; not copied to the new Service.
const TRACKING_LABELS: &[&str] = &[
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "argocd.argoproj.io/",
    "helm.sh/",
    "kustomize.toolkit.fluxcd.io/",
    "helm.toolkit.fluxcd.io/",
];

/// The label marking Services fledge created.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "fledge");

/// The Service `name` for `version`, a copy of `live` (the live version's Service as read).
pub fn version_service(live: &Value, name: &str, version: &str) -> Value {
    let mut labels = live.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
    // Labels by which a GitOps tool or a package manager tracks what it owns: the new Service is fledge's, and
    // copied, they would have it pruned or adopted.
    labels.retain(|key, _| !TRACKING_LABELS.iter().any(|tracking| key.starts_with(tracking)));
    if labels.contains_key("version") {
        labels.insert("version".into(), Value::from(version));
    }
    labels.insert(MANAGED_BY.0.into(), Value::from(MANAGED_BY.1));
    let mut selector = live.pointer("/spec/selector").and_then(Value::as_object).cloned().unwrap_or_default();
    selector.insert("version".into(), Value::from(version));
    let ports: Vec<Value> = live
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|port| {
            let mut port = port.as_object().cloned().unwrap_or_default();
            port.remove("nodePort");
            Value::Object(port)
        })
        .collect();
    let mut spec = Map::new();
    spec.insert("selector".into(), Value::Object(selector));
    spec.insert("ports".into(), Value::Array(ports));
    for field in ["type", "sessionAffinity", "sessionAffinityConfig", "publishNotReadyAddresses", "ipFamilyPolicy"] {
        if let Some(value) = live.pointer(&format!("/spec/{field}")) {
            spec.insert(field.into(), value.clone());
        }
    }
    if spec.get("type").and_then(Value::as_str).is_some_and(|kind| kind != "ClusterIP") {
        // A per-version backend needs no node port or load balancer of its own.
        spec.insert("type".into(), Value::from("ClusterIP"));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": live.pointer("/metadata/namespace").cloned().unwrap_or(Value::Null),
            "labels": labels,
        },
        "spec": spec,
    })
}

/// A Service as people read it in a plan: `ports http 9080→9080, selector app=reviews, version=v2`.
pub fn describe(service: &Value) -> String {
    let ports: Vec<String> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|port| {
            let number = port.get("port").map(Value::to_string).unwrap_or_default();
            let target = match port.get("targetPort") {
                Some(Value::String(name)) => format!("→{name}"),
                Some(Value::Number(number)) => format!("→{number}"),
                _ => String::new(),
            };
            match port.get("name").and_then(Value::as_str) {
                Some(name) => format!("{name} {number}{target}"),
                None => format!("{number}{target}"),
            }
        })
        .collect();
    format!("ports {}, selector {}", ports.join(" "), crate::rule::describe_selector(service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_service_copies_the_live_one_and_selects_the_new_version() {
        let live = json!({
            "metadata": { "name": "reviews-v1", "namespace": "bookinfo", "uid": "u", "resourceVersion": "9",
                          "labels": { "app": "reviews", "version": "v1", "app.kubernetes.io/instance": "bookinfo",
                                      "argocd.argoproj.io/instance": "bookinfo" }, "annotations": { "note": "x" } },
            "spec": { "type": "NodePort", "clusterIP": "10.0.0.9", "clusterIPs": ["10.0.0.9"],
                      "selector": { "app": "reviews", "version": "v1" },
                      "ports": [{ "name": "http", "port": 9080, "targetPort": 9080, "protocol": "TCP", "nodePort": 30080 }],
                      "sessionAffinity": "None" }
        });
        assert_eq!(
            version_service(&live, "reviews-v2", "v2"),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "reviews-v2", "namespace": "bookinfo",
                              "labels": { "app": "reviews", "version": "v2", "app.kubernetes.io/managed-by": "fledge" } },
                "spec": { "type": "ClusterIP", "selector": { "app": "reviews", "version": "v2" },
                          "ports": [{ "name": "http", "port": 9080, "targetPort": 9080, "protocol": "TCP" }],
                          "sessionAffinity": "None" }
            })
        );
        assert_eq!(
            describe(&version_service(&live, "reviews-v2", "v2")),
            "ports http 9080→9080, selector app=reviews, version=v2"
        );
    }
}
