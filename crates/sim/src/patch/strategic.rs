//! Strategic merge patch: a JSON merge patch that merges lists of objects by their Kubernetes merge keys (containers
//! by `name`, ports by `containerPort` ...) and honours the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList` and
//! `$setElementOrder` directives.

use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// Items are objects identified by these key fields.
    MergeByKey(&'static [&'static str]),
    /// Items are primitives forming a set.
    MergeSet,
    /// The patch's list replaces the stored one.
    Replace,
}

/// The merge strategy of the list at `field` whose parent object is at `parent` (a path of field names).
pub fn list_strategy(parent: &[&str], field: &str) -> ListStrategy {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "readinessGates" => {
            ListStrategy::MergeByKey(if field == "readinessGates" { &["conditionType"] } else { &["name"] })
        }
        "ports" if parent.last() == Some(&"spec") && !parent.contains(&"template") => {
            ListStrategy::MergeByKey(&["port", "protocol"])
        }
        "ports" => ListStrategy::MergeByKey(&["containerPort", "protocol"]),
        "volumeMounts" => ListStrategy::MergeByKey(&["mountPath"]),
        "volumeDevices" => ListStrategy::MergeByKey(&["devicePath"]),
        "hostAliases" => ListStrategy::MergeByKey(&["ip"]),
        "conditions" => ListStrategy::MergeByKey(&["type"]),
        "ownerReferences" => ListStrategy::MergeByKey(&["uid"]),
        "topologySpreadConstraints" => ListStrategy::MergeByKey(&["topologyKey", "whenUnsatisfiable"]),
        "finalizers" => ListStrategy::MergeSet,
        _ => ListStrategy::Replace,
    }
}

/// Applies a strategic merge patch to `target` in place.
pub fn merge(target: &mut Value, patch: &Value) -> Result<(), String> {
    merge_at(target, patch, &mut Vec::new())
}

fn merge_at(target: &mut Value, patch: &Value, path: &mut Vec<String>) -> Result<(), String> {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = Value::Object(without_directives(patch_map));
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some(other) => return Err(format!("unknown patch type: {other}")),
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let retain_keys: Option<Vec<String>> = patch_map
        .get("$retainKeys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).map(str::to_owned).collect());
    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(remove)) = (target.get_mut(field), value) {
                items.retain(|item| !remove.contains(item));
            }
            continue;
        }
        let map = target.as_object_mut().expect("made an object above");
        if value.is_null() {
            map.remove(key);
            continue;
        }
        let parent: Vec<&str> = path.iter().map(String::as_str).collect();
        match value {
            Value::Array(patch_items) => {
                let strategy = list_strategy(&parent, key);
                let merged = match (map.get(key), strategy) {
                    (Some(Value::Array(current)), ListStrategy::MergeByKey(keys)) => {
                        path.push(key.clone());
                        let merged = merge_keyed_list(current, patch_items, keys, path);
                        path.pop();
                        merged?
                    }
                    (Some(Value::Array(current)), ListStrategy::MergeSet) => {
                        let mut merged = current.clone();
                        for item in patch_items {
                            if !merged.contains(item) {
                                merged.push(item.clone());
                            }
                        }
                        merged
                    }
                    (_, ListStrategy::MergeByKey(_)) => {
                        patch_items.iter().filter(|item| item.get("$patch").is_none()).map(strip_directives).collect()
                    }
                    _ => patch_items.clone(),
                };
                map.insert(key.clone(), Value::Array(merged));
            }
            Value::Object(_) => {
                path.push(key.clone());
                let entry = map.entry(key.clone()).or_insert(Value::Null);
                let result = merge_at(entry, value, path);
                path.pop();
                result?;
                if entry.is_null() {
                    map.remove(key);
                }
            }
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    if let (Some(keys), Some(map)) = (retain_keys, target.as_object_mut()) {
        map.retain(|key, _| keys.contains(key));
    }
    Ok(())
}

fn merge_keyed_list(
    current: &[Value],
    patch: &[Value],
    keys: &[&str],
    path: &mut Vec<String>,
) -> Result<Vec<Value>, String> {
    if patch.iter().any(|item| item.get("$patch").and_then(Value::as_str) == Some("replace")) {
        return Ok(patch.iter().filter(|item| item.get("$patch").is_none()).map(strip_directives).collect());
    }
    let identity = |item: &Value| -> Vec<Value> {
        keys.iter().map(|key| item.get(*key).cloned().unwrap_or(Value::Null)).collect()
    };
    let mut merged: Vec<Value> = current.to_vec();
    for item in patch {
        let id = identity(item);
        let position = merged.iter().position(|existing| identity(existing) == id && !id.iter().all(Value::is_null));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(index), true) => {
                merged.remove(index);
            }
            (None, true) => {}
            (Some(index), false) => merge_at(&mut merged[index], item, path)?,
            (None, false) => merged.push(strip_directives(item)),
        }
    }
    Ok(merged)
}

fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(key, _)| !key.starts_with('$'))
        .map(|(key, value)| (key.clone(), strip_directives(value)))
        .collect()
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(without_directives(map)),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name() {
        let mut deployment = json!({ "spec": { "template": { "spec": { "containers": [
            { "name": "app", "image": "app:1", "ports": [{ "containerPort": 80 }] },
            { "name": "sidecar", "image": "sidecar:1" }
        ] } } } });
        let patch =
            json!({ "spec": { "template": { "spec": { "containers": [{ "name": "app", "image": "app:2" }] } } } });
        merge(&mut deployment, &patch).unwrap();
        let containers = &deployment["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0], json!({ "name": "app", "image": "app:2", "ports": [{ "containerPort": 80 }] }));
        assert_eq!(containers[1]["name"], "sidecar");
    }

    #[test]
    fn directives_delete_replace_and_primitive_lists() {
        let mut pod = json!({ "metadata": { "finalizers": ["a", "b"], "labels": { "x": "1", "y": "2" } },
            "spec": { "containers": [{ "name": "a" }, { "name": "b" }] } });
        let patch = json!({
            "metadata": { "$deleteFromPrimitiveList/finalizers": ["a"], "labels": { "x": null } },
            "spec": { "containers": [{ "name": "a", "$patch": "delete" }] }
        });
        merge(&mut pod, &patch).unwrap();
        assert_eq!(pod["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(pod["metadata"]["labels"], json!({ "y": "2" }));
        assert_eq!(pod["spec"]["containers"], json!([{ "name": "b" }]));

        let mut object = json!({ "spec": { "a": 1, "b": 2 } });
        merge(&mut object, &json!({ "spec": { "$patch": "replace", "c": 3 } })).unwrap();
        assert_eq!(object, json!({ "spec": { "c": 3 } }));
    }

    #[test]
    fn lists_without_merge_keys_are_replaced() {
        let mut object = json!({ "spec": { "tolerations": [{ "key": "a" }], "args": ["x"] } });
        merge(&mut object, &json!({ "spec": { "tolerations": [{ "key": "b" }], "args": ["y"] } })).unwrap();
        assert_eq!(object, json!({ "spec": { "tolerations": [{ "key": "b" }], "args": ["y"] } }));
    }
}
