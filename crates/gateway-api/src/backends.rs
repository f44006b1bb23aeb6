//! The JSON patches of the managed rule's `backendRefs`, and the weights read from them. The weights fledge writes
//! add up to 100; rollback writes the backendRefs back as found; promotion leaves them as found, naming the new
//! version's Service. Every patch first tests the resourceVersion fledge read.

use crate::rule::{RuleError, RuleSnapshot, backend_refs, locate, rules, service_ref, weight_of};
use fledge_core::Weight;
use fledge_kube_client::guarded::test_resource_version;
use json_patch::{AddOperation, PatchOperation};
use serde_json::Value;

fn position_of(backends: &[Value], namespace: &str, service: &str) -> Option<usize> {
    backends.iter().position(|backend| service_ref(backend, namespace) == Some(service))
}

/// The weights of the live and new versions' backends now, as written: `(live, new)`; a missing backend weighs 0,
/// one without `weight` 1.
pub fn current_weights(route: &Value, snapshot: &RuleSnapshot) -> Result<(i64, i64), RuleError> {
    let index = locate(route, snapshot)?;
    let backends = backend_refs(&rules(route)[index]);
    let weight = |service: &str| {
        position_of(backends, &snapshot.namespace, service).map_or(0, |position| weight_of(&backends[position]))
    };
    Ok((weight(&snapshot.live_service), weight(&snapshot.new_service)))
}

/// Weights as shares of 100: `(live, new)` scaled so they add up to 100 (the Gateway API's weights are relative).
pub fn as_percent((live, new): (i64, i64)) -> (i64, i64) {
    let total = live + new;
    if total <= 0 {
        return (0, 0);
    }
    let new_percent = (new * 100 + total / 2) / total;
    (100 - new_percent, new_percent)
}

pub(crate) fn pointer(text: String) -> json_patch::jsonptr::PointerBuf {
    json_patch::jsonptr::PointerBuf::parse(&text).expect("pointers built here are valid")
}

/// The live backendRef as found, renamed to `service` with `weight` (`None`: as found).
fn renamed_live(snapshot: &RuleSnapshot, service: &str, weight: Option<i64>) -> Value {
    let found = snapshot.backend_refs.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut backend = position_of(found, &snapshot.namespace, &snapshot.live_service)
        .map(|position| found[position].clone())
        .unwrap_or_else(|| serde_json::json!({ "name": snapshot.live_service }));
    backend["name"] = Value::from(service);
    if let Some(weight) = weight {
        backend["weight"] = Value::from(weight);
    }
    backend
}

/// The new version's backendRef as the release adds it: a copy of the live one (port, filters) at weight 0.
pub fn planned_backend(snapshot: &RuleSnapshot) -> Value {
    renamed_live(snapshot, &snapshot.new_service, Some(0))
}

/// The patch adding the new version's backendRef at weight 0, or `None` when it is there already.
pub fn add_backend_patch(route: &Value, snapshot: &RuleSnapshot) -> Result<Option<Vec<PatchOperation>>, RuleError> {
    let index = locate(route, snapshot)?;
    let backends = backend_refs(&rules(route)[index]);
    if position_of(backends, &snapshot.namespace, &snapshot.new_service).is_some() {
        return Ok(None);
    }
    Ok(Some(vec![
        test_resource_version(route),
        PatchOperation::Add(AddOperation {
            path: pointer(format!("/spec/rules/{index}/backendRefs/-")),
            value: planned_backend(snapshot),
        }),
    ]))
}

/// The patch sending `canary` of the rule's traffic to the new version and the rest to the live one (adding the new
/// backendRef if it is missing).
pub fn weight_patch(route: &Value, snapshot: &RuleSnapshot, canary: Weight) -> Result<Vec<PatchOperation>, RuleError> {
    let index = locate(route, snapshot)?;
    let backends = backend_refs(&rules(route)[index]);
    let (live, new) = canary.split_share(100);
    let mut operations = vec![test_resource_version(route)];
    match position_of(backends, &snapshot.namespace, &snapshot.live_service) {
        Some(position) => operations.push(PatchOperation::Add(AddOperation {
            path: pointer(format!("/spec/rules/{index}/backendRefs/{position}/weight")),
            value: Value::from(live),
        })),
        None => operations.push(PatchOperation::Add(AddOperation {
            path: pointer(format!("/spec/rules/{index}/backendRefs/-")),
            value: renamed_live(snapshot, &snapshot.live_service, Some(live)),
        })),
    }
    match position_of(backends, &snapshot.namespace, &snapshot.new_service) {
        Some(position) => operations.push(PatchOperation::Add(AddOperation {
            path: pointer(format!("/spec/rules/{index}/backendRefs/{position}/weight")),
            value: Value::from(new),
        })),
        None => operations.push(PatchOperation::Add(AddOperation {
            path: pointer(format!("/spec/rules/{index}/backendRefs/-")),
            value: renamed_live(snapshot, &snapshot.new_service, Some(new)),
        })),
    }
    Ok(operations)
}

/// The patch putting the managed rule's backendRefs back exactly as found, or `None` when they are.
pub fn restore_patch(route: &Value, snapshot: &RuleSnapshot) -> Result<Option<Vec<PatchOperation>>, RuleError> {
    replace_backends(route, snapshot, &snapshot.backend_refs)
}

/// The managed rule's backendRefs after promotion: as found, with the live Service renamed to the new version's
/// (and a new version's backendRef left at weight 0 before the release dropped).
pub fn promoted_backends(snapshot: &RuleSnapshot) -> Value {
    let found = snapshot.backend_refs.as_array().cloned().unwrap_or_default();
    let promoted: Vec<Value> = found
        .into_iter()
        .filter(|backend| service_ref(backend, &snapshot.namespace) != Some(snapshot.new_service.as_str()))
        .map(|mut backend| {
            if service_ref(&backend, &snapshot.namespace) == Some(snapshot.live_service.as_str()) {
                backend["name"] = Value::from(snapshot.new_service.as_str());
            }
            // A mirror in the backend's own filters, to the old version, follows it as well.
            for filter in backend.get_mut("filters").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(mirrored) = filter.pointer_mut("/requestMirror/backendRef")
                    && service_ref(mirrored, &snapshot.namespace) == Some(snapshot.live_service.as_str())
                {
                    mirrored["name"] = Value::from(snapshot.new_service.as_str());
                }
            }
            backend
        })
        .collect();
    Value::Array(promoted)
}

/// The patch retiring the live version from the managed rule: its backendRefs as found, naming the new version's
/// Service; `None` when they are so already.
pub fn retire_patch(route: &Value, snapshot: &RuleSnapshot) -> Result<Option<Vec<PatchOperation>>, RuleError> {
    replace_backends(route, snapshot, &promoted_backends(snapshot))
}

fn replace_backends(
    route: &Value,
    snapshot: &RuleSnapshot,
    backends: &Value,
) -> Result<Option<Vec<PatchOperation>>, RuleError> {
    let index = locate(route, snapshot)?;
    if rules(route)[index].get("backendRefs") == Some(backends) {
        return Ok(None);
    }
    Ok(Some(vec![
        test_resource_version(route),
        PatchOperation::Add(AddOperation {
            path: pointer(format!("/spec/rules/{index}/backendRefs")),
            value: backends.clone(),
        }),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::snapshot;
    use crate::rule::tests::{apply, primary, route, services, wanted};
    use fledge_core::release::GatewayApiTraffic;
    use serde_json::json;

    #[test]
    fn weights_restore_and_promotion_change_only_the_managed_rules_backend_refs() {
        let traffic = GatewayApiTraffic::for_service("reviews");
        let original = route(primary());
        let snapshot = snapshot(&original, &services(), wanted(&traffic)).unwrap();

        let added = apply(&original, add_backend_patch(&original, &snapshot).unwrap().unwrap());
        assert_eq!(add_backend_patch(&added, &snapshot).unwrap(), None, "added once");
        assert_eq!(as_percent(current_weights(&added, &snapshot).unwrap()), (100, 0));

        let staged = apply(&added, weight_patch(&added, &snapshot, Weight::new(20).unwrap()).unwrap());
        assert_eq!(current_weights(&staged, &snapshot).unwrap(), (80, 20));
        let mut expected = original.clone();
        expected["spec"]["rules"][1]["backendRefs"] = json!([
            { "group": "", "kind": "Service", "name": "reviews-v1", "port": 9080, "weight": 80 },
            { "group": "", "kind": "Service", "name": "reviews-v2", "port": 9080, "weight": 20 }
        ]);
        assert_eq!(staged["spec"], expected["spec"]);

        let restored = apply(&staged, restore_patch(&staged, &snapshot).unwrap().unwrap());
        assert_eq!(restored["spec"], original["spec"], "restored exactly");

        let promoted = apply(&staged, retire_patch(&staged, &snapshot).unwrap().unwrap());
        let mut expected = original.clone();
        expected["spec"]["rules"][1]["backendRefs"][0]["name"] = json!("reviews-v2");
        assert_eq!(promoted["spec"], expected["spec"], "the rule as found, naming the new version's Service");
        assert_eq!(retire_patch(&promoted, &snapshot).unwrap(), None);
    }
}
