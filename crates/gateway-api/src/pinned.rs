//! References to the live version's Service outside the managed rule's backends: other rules of the managed
//! HTTPRoute, other HTTPRoutes of the namespace, and `RequestMirror` filters anywhere. Promotion deletes the old
//! Service; left alone, such a reference would point at nothing (the Gateway API answers 500).

use crate::backends::pointer;
use crate::rule::{rule_label, rules, service_ref};
use fledge_kube_client::guarded::test_resource_version;
use json_patch::{PatchOperation, ReplaceOperation};
use serde_json::Value;

/// One reference to the live Service outside the managed rule's backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedReference {
    /// The HTTPRoute holding it.
    pub http_route: String,
    /// The rule's label: `debug (#1)` or `#1`.
    pub rule: String,
    /// JSON pointers, in the HTTPRoute, of the references (each an object with the Service's `name`).
    pub pointers: Vec<String>,
    /// Whether a reference is a mirror (requests copied to it, answers dropped).
    pub mirror: bool,
}

impl std::fmt::Display for PinnedReference {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "HTTPRoute {} rule {}", self.http_route, self.rule)?;
        if self.mirror {
            formatter.write_str(" (mirror)")?;
        }
        Ok(())
    }
}

/// The managed rule, which holds the backends fledge owns.
#[derive(Clone, Copy, Debug)]
pub struct ManagedRule<'a> {
    /// Its HTTPRoute.
    pub http_route: &'a str,
    /// Its index there.
    pub rule_index: usize,
}

/// Every object under a `backendRef` key or in a `backendRefs` list, with its JSON pointer.
fn references<'v>(value: &'v Value, at: &str, found: &mut Vec<(String, &'v Value)>) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (key.as_str(), child) {
                    ("backendRef", Value::Object(_)) => found.push((path.clone(), child)),
                    ("backendRefs", Value::Array(items)) => {
                        for (index, item) in items.iter().enumerate() {
                            found.push((format!("{path}/{index}"), item));
                        }
                    }
                    _ => {}
                }
                references(child, &path, found);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                references(item, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

/// The references to `live_service` in `routes` (the namespace's HTTPRoutes), outside `managed`'s own backends.
pub fn find_pinned(
    routes: &[Value],
    managed: ManagedRule<'_>,
    namespace: &str,
    live_service: &str,
) -> Vec<PinnedReference> {
    let mut pinned = Vec::new();
    for route in routes {
        let name = route.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        for (index, rule) in rules(route).iter().enumerate() {
            let at = format!("/spec/rules/{index}");
            let mut found = Vec::new();
            references(rule, &at, &mut found);
            let own = |path: &str| {
                name == managed.http_route
                    && index == managed.rule_index
                    && path.strip_prefix(&format!("{at}/backendRefs/")).is_some_and(|rest| !rest.contains('/'))
            };
            let hits: Vec<&String> = found
                .iter()
                .filter(|(path, reference)| !own(path) && service_ref(reference, namespace) == Some(live_service))
                .map(|(path, _)| path)
                .collect();
            if hits.is_empty() {
                continue;
            }
            pinned.push(PinnedReference {
                http_route: name.to_owned(),
                rule: rule_label(index, rule.get("name").and_then(Value::as_str)),
                mirror: hits.iter().any(|path| path.ends_with("/backendRef")),
                pointers: hits.into_iter().cloned().collect(),
            });
        }
    }
    pinned
}

/// The patch pointing `pinned` (references in `route`) at `new_service`, guarded by the resourceVersion read;
/// `None` when there is nothing to move.
pub fn move_patch(route: &Value, pinned: &[&PinnedReference], new_service: &str) -> Option<Vec<PatchOperation>> {
    let mut operations = vec![test_resource_version(route)];
    for reference in pinned {
        for at in &reference.pointers {
            operations.push(PatchOperation::Replace(ReplaceOperation {
                path: pointer(format!("{at}/name")),
                value: Value::from(new_service),
            }));
        }
    }
    (operations.len() > 1).then_some(operations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_outside_the_managed_backends_are_pinned_mirrors_included() {
        let managed = json!({ "metadata": { "name": "reviews", "resourceVersion": "7" }, "spec": { "rules": [
            { "name": "debug", "matches": [{ "headers": [{ "name": "x-debug", "value": "1" }] }],
              "backendRefs": [{ "name": "reviews-v1", "port": 9080 }] },
            { "name": "primary", "backendRefs": [{ "name": "reviews-v1", "port": 9080 }],
              "filters": [{ "type": "RequestMirror", "requestMirror": { "backendRef": { "name": "reviews-v1", "port": 9080 } } }] }
        ] } });
        let other = json!({ "metadata": { "name": "reviews-admin" }, "spec": { "rules": [
            { "backendRefs": [{ "name": "reviews-v1", "namespace": "elsewhere" }, { "name": "ratings" }] },
            { "backendRefs": [{ "name": "reviews-v1", "port": 9080 }] }
        ] } });
        let pinned = find_pinned(
            &[managed.clone(), other],
            ManagedRule { http_route: "reviews", rule_index: 1 },
            "bookinfo",
            "reviews-v1",
        );
        let described: Vec<String> = pinned.iter().map(ToString::to_string).collect();
        assert_eq!(
            described,
            [
                "HTTPRoute reviews rule debug (#0)",
                "HTTPRoute reviews rule primary (#1) (mirror)",
                "HTTPRoute reviews-admin rule #1"
            ]
        );
        assert_eq!(pinned[1].pointers, ["/spec/rules/1/filters/0/requestMirror/backendRef"]);

        let in_managed: Vec<&PinnedReference> = pinned.iter().filter(|pin| pin.http_route == "reviews").collect();
        let mut moved = managed.clone();
        json_patch::patch(&mut moved, &move_patch(&managed, &in_managed, "reviews-v2").unwrap()).unwrap();
        assert_eq!(moved["spec"]["rules"][0]["backendRefs"][0]["name"], "reviews-v2");
        assert_eq!(moved["spec"]["rules"][1]["filters"][0]["requestMirror"]["backendRef"]["name"], "reviews-v2");
        assert_eq!(
            moved["spec"]["rules"][1]["backendRefs"], managed["spec"]["rules"][1]["backendRefs"],
            "the managed backends are fledge's to change, not the move's"
        );
    }
}
