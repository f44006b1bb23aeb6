//! Whether the route's parents accept it as it is now: every `spec.parentRefs` entry has a `status.parents` entry
//! whose `Accepted` and `ResolvedRefs` conditions are `True` at the route's `metadata.generation`. A write to a
//! route takes effect only once its parents accepted it; a condition `False` at that generation is a refusal.

use serde_json::Value;

/// How the parents judge the route now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// Every parent accepted the route at its generation.
    Accepted,
    /// A parent has not judged the route's generation yet: what is awaited, for people.
    Pending(String),
    /// A parent refused it.
    Refused(Refusal),
}

/// A parent's refusal of the route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The parent, as people name it: `Gateway bookinfo-gateway`, `Service reviews`.
    pub parent: String,
    /// The condition that is `False`: `Accepted` or `ResolvedRefs`.
    pub condition: String,
    /// Its reason: `NotAllowedByListeners`, `BackendNotFound`, ...
    pub reason: String,
    /// Its message, as the parent's controller wrote it.
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} reports {}=False ({})", self.parent, self.condition, self.reason)?;
        if !self.message.is_empty() {
            write!(formatter, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// How a parentRef is called in messages.
pub fn describe_parent(parent: &Value) -> String {
    let kind = parent.get("kind").and_then(Value::as_str).unwrap_or("Gateway");
    let name = parent.get("name").and_then(Value::as_str).unwrap_or_default();
    let mut text = match parent.get("namespace").and_then(Value::as_str) {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    };
    if let Some(section) = parent.get("sectionName").and_then(Value::as_str) {
        text.push_str(&format!(" (listener {section})"));
    }
    if let Some(port) = parent.get("port").and_then(Value::as_u64) {
        text.push_str(&format!(" (port {port})"));
    }
    text
}

/// Whether two parentRefs name the same parent, with the Gateway API's defaults (group
/// `gateway.networking.k8s.io`, kind `Gateway`, the route's namespace).
fn same_parent(left: &Value, right: &Value, namespace: &str) -> bool {
    let field = |parent: &Value, name: &str, default: &str| {
        parent.get(name).and_then(Value::as_str).unwrap_or(default).to_owned()
    };
    let group = |parent: &Value| {
        let kind = field(parent, "kind", "Gateway");
        let default = if kind == "Service" { "" } else { "gateway.networking.k8s.io" };
        field(parent, "group", default)
    };
    group(left) == group(right)
        && field(left, "kind", "Gateway") == field(right, "kind", "Gateway")
        && field(left, "namespace", namespace) == field(right, "namespace", namespace)
        && field(left, "name", "") == field(right, "name", "")
        && field(left, "sectionName", "") == field(right, "sectionName", "")
        && left.get("port").and_then(Value::as_u64) == right.get("port").and_then(Value::as_u64)
}

/// How every parent judges `route` (an HTTPRoute as read) at its generation.
pub fn judge(route: &Value) -> Acceptance {
    let generation = route.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let namespace = route.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let parents = route.pointer("/spec/parentRefs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let statuses = route.pointer("/status/parents").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut pending = None;
    for parent in parents {
        let described = describe_parent(parent);
        let Some(status) = statuses
            .iter()
            .find(|status| status.get("parentRef").is_some_and(|reference| same_parent(reference, parent, namespace)))
        else {
            pending.get_or_insert_with(|| format!("{described} has not reported on the route"));
            continue;
        };
        for condition_type in ["Accepted", "ResolvedRefs"] {
            let condition = status
                .get("conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|condition| condition.get("type").and_then(Value::as_str) == Some(condition_type));
            let observed = condition
                .and_then(|condition| condition.get("observedGeneration"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            match condition {
                Some(condition) if observed >= generation => {
                    let text = |name: &str| condition.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
                    if text("status") == "False" {
                        return Acceptance::Refused(Refusal {
                            parent: described,
                            condition: condition_type.to_owned(),
                            reason: text("reason"),
                            message: text("message"),
                        });
                    }
                    if text("status") != "True" {
                        pending
                            .get_or_insert_with(|| format!("{described} reports {condition_type}={}", text("status")));
                    }
                }
                _ => {
                    pending.get_or_insert_with(|| {
                        format!("{described} has not judged generation {generation} ({condition_type})")
                    });
                }
            }
        }
    }
    match pending {
        Some(waiting) => Acceptance::Pending(waiting),
        None => Acceptance::Accepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(generation: i64, statuses: Value) -> Value {
        json!({
            "metadata": { "name": "reviews", "namespace": "bookinfo", "generation": generation },
            "spec": { "parentRefs": [
                { "name": "bookinfo-gateway" },
                { "group": "", "kind": "Service", "name": "reviews", "port": 9080 }
            ] },
            "status": { "parents": statuses }
        })
    }

    fn parent(reference: Value, accepted: (&str, &str, i64), resolved: (&str, &str, i64)) -> Value {
        json!({
            "parentRef": reference,
            "controllerName": "istio.io/gateway-controller",
            "conditions": [
                { "type": "Accepted", "status": accepted.0, "reason": accepted.1, "message": "", "observedGeneration": accepted.2 },
                { "type": "ResolvedRefs", "status": resolved.0, "reason": resolved.1,
                  "message": if resolved.0 == "False" { "backend(reviews-v2.bookinfo.svc.cluster.local) not found" } else { "" },
                  "observedGeneration": resolved.2 }
            ]
        })
    }

    #[test]
    fn every_parent_must_accept_the_current_generation() {
        let gateway = json!({ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "bookinfo-gateway" });
        let service = json!({ "group": "", "kind": "Service", "name": "reviews", "port": 9080 });
        let good = |generation| {
            parent(gateway.clone(), ("True", "Accepted", generation), ("True", "ResolvedRefs", generation))
        };
        let mesh = |generation| {
            parent(service.clone(), ("True", "Accepted", generation), ("True", "ResolvedRefs", generation))
        };

        assert_eq!(judge(&route(3, json!([good(3), mesh(3)]))), Acceptance::Accepted, "defaults of group and kind");
        assert_eq!(
            judge(&route(4, json!([good(4), mesh(3)]))),
            Acceptance::Pending("Service reviews (port 9080) has not judged generation 4 (Accepted)".into())
        );
        assert_eq!(
            judge(&route(3, json!([good(3)]))),
            Acceptance::Pending("Service reviews (port 9080) has not reported on the route".into())
        );
        let refused = parent(service.clone(), ("True", "Accepted", 5), ("False", "BackendNotFound", 5));
        assert_eq!(
            judge(&route(5, json!([good(5), refused]))),
            Acceptance::Refused(Refusal {
                parent: "Service reviews (port 9080)".into(),
                condition: "ResolvedRefs".into(),
                reason: "BackendNotFound".into(),
                message: "backend(reviews-v2.bookinfo.svc.cluster.local) not found".into(),
            })
        );
        let stale_refusal = parent(service, ("True", "Accepted", 5), ("False", "BackendNotFound", 5));
        assert!(
            matches!(judge(&route(6, json!([good(6), stale_refusal]))), Acceptance::Pending(_)),
            "an old refusal is not this generation's"
        );
    }
}
