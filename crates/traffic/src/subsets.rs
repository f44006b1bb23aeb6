//! The DestinationRule's subsets: the new version's subset is a copy of the live one's (traffic policy, TLS,
//! connection pool, every label but `version`), so the canary is judged under the live version's settings; a rollback
//! removes exactly what was added, and puts back a subset of that name that was there before.

use crate::routes::{pointer, test_resource_version};
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Value, json};

fn subsets(destination_rule: &Value) -> Option<&Vec<Value>> {
    destination_rule.pointer("/spec/subsets").and_then(Value::as_array)
}

/// The subset fledge adds for `version`: the live subset with its name and its `version` label changed, every other
/// field (`trafficPolicy`, other labels) kept.
pub fn canary_subset(destination_rule: &Value, live_subset: &str, version: &str) -> Value {
    let mut subset = subsets(destination_rule)
        .into_iter()
        .flatten()
        .find(|subset| subset["name"] == live_subset)
        .cloned()
        .unwrap_or_else(|| json!({}));
    subset["name"] = json!(version);
    match subset.get_mut("labels").and_then(Value::as_object_mut) {
        Some(labels) => {
            labels.insert("version".into(), json!(version));
        }
        None => subset["labels"] = json!({ "version": version }),
    }
    subset
}

/// The JSON patch adding the subset of `version` ([`canary_subset`]) to the DestinationRule, or `None` when a subset
/// of that name selecting `version` is there already (added earlier, or written by someone: then it is kept as it
/// is). A subset of that name selecting something else gets the `version` label.
pub fn add_subset_patch(destination_rule: &Value, live_subset: &str, version: &str) -> Option<Vec<PatchOperation>> {
    let existing = subsets(destination_rule)
        .and_then(|list| list.iter().position(|subset| subset["name"] == version).map(|position| (position, list)));
    let mut operations = vec![test_resource_version(destination_rule)];
    match existing {
        Some((position, list)) => {
            if list[position].pointer("/labels/version").and_then(Value::as_str) == Some(version) {
                return None;
            }
            let mut labels = list[position].get("labels").cloned().unwrap_or_else(|| json!({}));
            labels["version"] = json!(version);
            operations.push(PatchOperation::Replace(ReplaceOperation {
                path: pointer(format!("/spec/subsets/{position}/labels")),
                value: labels,
            }));
        }
        None => {
            let subset = canary_subset(destination_rule, live_subset, version);
            let (path, value) = if subsets(destination_rule).is_some() {
                ("/spec/subsets/-", subset)
            } else {
                ("/spec/subsets", json!([subset]))
            };
            operations.push(PatchOperation::Add(AddOperation { path: pointer(path.into()), value }));
        }
    }
    Some(operations)
}

/// The JSON patch removing subset `name` from the DestinationRule, or `None` when it is not there. Removing the last
/// subset of a rule that had none at first removes the list.
pub fn remove_subset_patch(
    destination_rule: &Value,
    name: &str,
    snapshot_subsets: &Value,
) -> Option<Vec<PatchOperation>> {
    let subsets = subsets(destination_rule)?;
    let position = subsets.iter().position(|subset| subset["name"] == name)?;
    let mut operations = vec![test_resource_version(destination_rule)];
    if subsets.len() == 1 && snapshot_subsets.is_null() {
        operations.push(PatchOperation::Remove(RemoveOperation { path: pointer("/spec/subsets".into()) }));
    } else {
        operations.push(PatchOperation::Remove(RemoveOperation { path: pointer(format!("/spec/subsets/{position}")) }));
    }
    Some(operations)
}

/// On rollback: the JSON patch that leaves the subset `name` as the snapshot found it: removed when fledge added it,
/// put back when fledge changed one that was there; `None` when it is as found.
pub fn restore_subset_patch(
    destination_rule: &Value,
    name: &str,
    snapshot_subsets: &Value,
) -> Option<Vec<PatchOperation>> {
    let found = snapshot_subsets.as_array().into_iter().flatten().find(|subset| subset["name"] == name);
    let Some(found) = found else { return remove_subset_patch(destination_rule, name, snapshot_subsets) };
    let list = subsets(destination_rule);
    match list.and_then(|list| list.iter().position(|subset| subset["name"] == name)) {
        Some(position) if list.is_some_and(|list| &list[position] == found) => None,
        Some(position) => Some(vec![
            test_resource_version(destination_rule),
            PatchOperation::Replace(ReplaceOperation {
                path: pointer(format!("/spec/subsets/{position}")),
                value: found.clone(),
            }),
        ]),
        // Someone removed it meanwhile: that is their change to make, not fledge's to undo.
        None => None,
    }
}

/// The subset `name` as a person reads it: `labels version=v2, trafficPolicy {"tls":{"mode":"ISTIO_MUTUAL"}}`.
pub fn describe_subset(subset: &Value) -> String {
    let labels: Vec<String> = subset
        .get("labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    let mut parts = vec![format!("labels {}", labels.join(","))];
    if let Some(object) = subset.as_object() {
        for (field, value) in object.iter().filter(|(field, _)| !["name", "labels"].contains(&field.as_str())) {
            parts.push(format!("{field} {value}"));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Value {
        json!({ "metadata": { "name": "reviews", "resourceVersion": "9" },
                "spec": { "host": "reviews", "trafficPolicy": { "connectionPool": { "http": { "http1MaxPendingRequests": 100 } } },
                          "subsets": [
                              { "name": "v1", "labels": { "version": "v1", "app": "reviews" },
                                "trafficPolicy": { "tls": { "mode": "ISTIO_MUTUAL" }, "loadBalancer": { "simple": "LEAST_REQUEST" } } },
                              { "name": "legacy", "labels": { "version": "legacy" } }
                          ] } })
    }

    fn apply(object: &Value, operations: Vec<PatchOperation>) -> Value {
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &operations).unwrap();
        patched
    }

    #[test]
    fn the_canary_subset_copies_the_live_one_but_its_name_and_version() {
        let added = apply(&rule(), add_subset_patch(&rule(), "v1", "v2").unwrap());
        let mut expected = rule();
        expected["spec"]["subsets"].as_array_mut().unwrap().push(json!({
            "name": "v2", "labels": { "version": "v2", "app": "reviews" },
            "trafficPolicy": { "tls": { "mode": "ISTIO_MUTUAL" }, "loadBalancer": { "simple": "LEAST_REQUEST" } }
        }));
        assert_eq!(added, expected);
        assert!(add_subset_patch(&added, "v1", "v2").is_none(), "adding twice changes nothing");
        assert_eq!(
            describe_subset(&added["spec"]["subsets"][2]),
            r#"labels app=reviews,version=v2, trafficPolicy {"loadBalancer":{"simple":"LEAST_REQUEST"},"tls":{"mode":"ISTIO_MUTUAL"}}"#
        );
    }

    #[test]
    fn a_rollback_removes_exactly_what_was_added() {
        let original = rule();
        let snapshot = original["spec"]["subsets"].clone();
        let added = apply(&original, add_subset_patch(&original, "v1", "v2").unwrap());
        let restored = apply(&added, restore_subset_patch(&added, "v2", &snapshot).unwrap());
        assert_eq!(restored, original);
        assert!(restore_subset_patch(&restored, "v2", &snapshot).is_none());
    }

    #[test]
    fn a_subset_of_that_name_written_before_is_kept_and_put_back_exactly() {
        let mut original = rule();
        original["spec"]["subsets"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "v2", "labels": { "track": "canary" } }));
        let snapshot = original["spec"]["subsets"].clone();
        let changed = apply(&original, add_subset_patch(&original, "v1", "v2").unwrap());
        assert_eq!(
            changed["spec"]["subsets"][2],
            json!({ "name": "v2", "labels": { "track": "canary", "version": "v2" } })
        );
        let restored = apply(&changed, restore_subset_patch(&changed, "v2", &snapshot).unwrap());
        assert_eq!(restored, original);
    }

    #[test]
    fn removing_the_last_subset_of_a_rule_that_had_none_removes_the_list() {
        let rule = json!({ "metadata": { "resourceVersion": "1" }, "spec": { "host": "reviews" } });
        let added = apply(&rule, add_subset_patch(&rule, "v1", "v2").unwrap());
        assert_eq!(added["spec"]["subsets"], json!([{ "name": "v2", "labels": { "version": "v2" } }]));
        assert_eq!(apply(&added, remove_subset_patch(&added, "v2", &Value::Null).unwrap()), rule);
    }
}
