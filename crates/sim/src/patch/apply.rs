//! Server-side apply: merge a manager's intent into the live object, track who owns which field in
//! `metadata.managedFields`, report conflicts with other managers, and remove fields a manager stops applying.
//!
//! Also records field ownership for ordinary writes (create, update, patch) as `operation: Update` entries, so an
//! apply conflicts with a field someone changed by hand.

use super::field_set::{self, Element, FieldSet, Path};
use super::strategic::{ListStrategy, list_strategy};
use crate::api_error::{ApiError, Cause};
use crate::clock;
use crate::resources::ResourceType;
use serde_json::{Map, Value, json};

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    fields: FieldSet,
}

fn read_entries(object: &Value) -> Vec<Entry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|entry| Entry {
            manager: entry.get("manager").and_then(Value::as_str).unwrap_or_default().to_owned(),
            operation: entry.get("operation").and_then(Value::as_str).unwrap_or("Update").to_owned(),
            api_version: entry.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned(),
            subresource: entry.get("subresource").and_then(Value::as_str).map(str::to_owned),
            fields: FieldSet::from_fields_v1(entry.get("fieldsV1").unwrap_or(&Value::Null)),
        })
        .collect()
}

fn write_entries(object: &mut Value, entries: &[Entry]) {
    let now = clock::now();
    let entries: Vec<Value> = entries
        .iter()
        .filter(|entry| !entry.fields.is_empty())
        .map(|entry| {
            let mut value = json!({
                "manager": entry.manager,
                "operation": entry.operation,
                "apiVersion": entry.api_version,
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": entry.fields.to_fields_v1(),
            });
            if let Some(subresource) = &entry.subresource {
                value["subresource"] = json!(subresource);
            }
            value
        })
        .collect();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// The field manager for a request: `?fieldManager=`, or the first word of the User-Agent, as a real server does.
pub fn manager_name(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(manager) = field_manager.filter(|manager| !manager.is_empty()) {
        return manager.to_owned();
    }
    user_agent.and_then(|agent| agent.split('/').next()).filter(|name| !name.is_empty()).unwrap_or("unknown").to_owned()
}

/// Records that `manager` wrote `new` over `old` (a create, update or non-apply patch).
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, subresource: Option<&str>) {
    let empty = json!({});
    let old_object = old.unwrap_or(&empty);
    let changed = FieldSet::changed(old_object, new);
    let mut entries = read_entries(old_object);
    let present = FieldSet::of(new);
    for entry in &mut entries {
        entry.fields.0.retain(|path| present.0.contains(path) && !changed.0.contains(path));
    }
    if !changed.is_empty() {
        let api_version = new.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
        match entries.iter_mut().find(|entry| {
            entry.manager == manager && entry.operation == "Update" && entry.subresource.as_deref() == subresource
        }) {
            Some(entry) => entry.fields.0.extend(changed.0),
            None => entries.push(Entry {
                manager: manager.to_owned(),
                operation: "Update".into(),
                api_version,
                subresource: subresource.map(str::to_owned),
                fields: changed,
            }),
        }
    }
    write_entries(new, &entries);
}

/// Applies `applied` (a manager's full intent) to `live`, or creates the object from it when `live` is `None`.
pub fn apply(
    resource: &ResourceType,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    let name = applied.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let api_version = applied.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
    let applied_set = FieldSet::of(applied);
    let Some(live) = live else {
        let mut object = applied.clone();
        if let Some(fields) = object.as_object_mut() {
            fields.remove("status");
        }
        let entry = Entry {
            manager: manager.to_owned(),
            operation: "Apply".into(),
            api_version,
            subresource: None,
            fields: applied_set,
        };
        write_entries(&mut object, &[entry]);
        return Ok(object);
    };

    let mut entries = read_entries(live);
    let previous = entries
        .iter()
        .find(|entry| entry.manager == manager && entry.operation == "Apply" && entry.subresource.is_none())
        .map(|entry| entry.fields.clone())
        .unwrap_or_default();

    // Conflicts: fields this apply changes that another manager owns.
    let mut conflicts: Vec<(String, String, Path)> = Vec::new();
    for path in applied_set.0.iter().filter(|path| path.last() != Some(&Element::Itself)) {
        let live_value = field_set::lookup(live, path);
        if live_value.is_none() || live_value == field_set::lookup(applied, path) {
            continue;
        }
        // Another manager is any other entry: the same name with operation Update counts (kubectl's own edits
        // conflict with kubectl's apply), as in a real server.
        let others = entries
            .iter()
            .filter(|entry| !(entry.manager == manager && entry.operation == "Apply") && entry.subresource.is_none());
        for entry in others {
            if entry.fields.0.contains(path) {
                conflicts.push((entry.manager.clone(), entry.api_version.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflict_error(resource, &name, &conflicts));
        }
        for entry in entries.iter_mut().filter(|entry| !(entry.manager == manager && entry.operation == "Apply")) {
            for (_, _, path) in &conflicts {
                entry.fields.0.remove(path);
            }
        }
    }

    let mut object = live.clone();
    merge_applied(&mut object, applied, &mut Vec::new());

    // Fields this manager applied before and no longer applies, owned by nobody else, are removed.
    let others: Vec<&FieldSet> = entries
        .iter()
        .filter(|entry| entry.manager != manager || entry.operation != "Apply")
        .map(|entry| &entry.fields)
        .collect();
    let mut dropped: Vec<&Path> = previous
        .0
        .iter()
        .filter(|path| !applied_set.0.contains(*path))
        .filter(|path| !others.iter().any(|fields| fields.0.contains(*path)))
        .collect();
    // Remove deepest first, so an item's fields go before the item.
    dropped.sort_by_key(|path| std::cmp::Reverse(path.len()));
    for path in dropped {
        field_set::remove(&mut object, path);
    }

    entries.retain(|entry| !(entry.manager == manager && entry.operation == "Apply" && entry.subresource.is_none()));
    entries.push(Entry {
        manager: manager.to_owned(),
        operation: "Apply".into(),
        api_version,
        subresource: None,
        fields: applied_set,
    });
    write_entries(&mut object, &entries);
    Ok(object)
}

fn conflict_error(resource: &ResourceType, name: &str, conflicts: &[(String, String, Path)]) -> ApiError {
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(manager, api_version, path)| Cause {
            reason: "FieldManagerConflict",
            message: format!("conflict with \"{manager}\" using {api_version}"),
            field: field_set::describe(path),
        })
        .collect();
    let message = if let [(manager, api_version, path)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with \"{manager}\" using {api_version}: {}",
            field_set::describe(path)
        )
    } else {
        let lines: Vec<String> = conflicts
            .iter()
            .map(|(manager, api_version, path)| {
                format!("conflict with \"{manager}\" using {api_version}: {}", field_set::describe(path))
            })
            .collect();
        format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
    };
    ApiError::conflict_with(resource, name, message, causes)
}

/// Merges the applied object into the live one: objects field by field, associative lists item by item, other
/// lists and scalars replaced.
fn merge_applied(live: &mut Value, applied: &Value, names: &mut Vec<String>) {
    let Value::Object(applied_map) = applied else {
        *live = applied.clone();
        return;
    };
    if !live.is_object() {
        *live = Value::Object(Map::new());
    }
    for (key, value) in applied_map {
        if names.is_empty() && key == "status" {
            continue;
        }
        if names.len() == 1
            && names[0] == "metadata"
            && ["resourceVersion", "uid", "managedFields", "creationTimestamp", "generation"].contains(&key.as_str())
        {
            continue;
        }
        let live_map = live.as_object_mut().expect("made an object above");
        match value {
            Value::Object(_) => {
                names.push(key.clone());
                let entry = live_map.entry(key.clone()).or_insert(Value::Null);
                merge_applied(entry, value, names);
                names.pop();
            }
            Value::Array(items) => {
                let parent: Vec<&str> = names.iter().map(String::as_str).collect();
                let merged = match (list_strategy(&parent, key), live_map.get(key)) {
                    (ListStrategy::MergeByKey(keys), Some(Value::Array(current))) => {
                        let mut merged = current.clone();
                        names.push(key.clone());
                        for item in items {
                            let id = field_set::item_key(item, keys);
                            match merged.iter_mut().find(|existing| field_set::item_key(existing, keys) == id) {
                                Some(existing) => merge_applied(existing, item, names),
                                None => merged.push(item.clone()),
                            }
                        }
                        names.pop();
                        merged
                    }
                    (ListStrategy::MergeSet, Some(Value::Array(current))) => {
                        let mut merged = current.clone();
                        for item in items {
                            if !merged.contains(item) {
                                merged.push(item.clone());
                            }
                        }
                        merged
                    }
                    _ => items.clone(),
                };
                live_map.insert(key.clone(), Value::Array(merged));
            }
            _ => {
                live_map.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::DEPLOYMENTS;

    fn intent(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "d", "labels": { "app": "a" } },
            "spec": { "replicas": replicas, "template": { "spec": { "containers": [{ "name": "app", "image": image }] } } }
        })
    }

    #[test]
    fn applying_the_same_intent_twice_changes_nothing() {
        let resource = DEPLOYMENTS.resource_type();
        let created = apply(resource, None, &intent(3, "a:1"), "fledge", false).unwrap();
        let again = apply(resource, Some(&created), &intent(3, "a:1"), "fledge", false).unwrap();
        let strip_time = |mut object: Value| {
            object["metadata"]["managedFields"][0]["time"] = json!("");
            object
        };
        assert_eq!(strip_time(again), strip_time(created));
    }

    #[test]
    fn fields_changed_by_someone_else_conflict_unless_forced() {
        let resource = DEPLOYMENTS.resource_type();
        let created = apply(resource, None, &intent(3, "a:1"), "fledge", false).unwrap();
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(5);
        record_update(Some(&created), &mut scaled, "kubectl", None);
        let error = apply(resource, Some(&scaled), &intent(3, "a:2"), "fledge", false).unwrap_err();
        assert_eq!(error.code, 409);
        assert_eq!(
            error.message,
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
        );
        let forced = apply(resource, Some(&scaled), &intent(3, "a:2"), "fledge", true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        assert_eq!(forced["spec"]["template"]["spec"]["containers"][0]["image"], "a:2");
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_someone_else_owns_them() {
        let resource = DEPLOYMENTS.resource_type();
        let mut first = intent(3, "a:1");
        first["metadata"]["labels"]["tier"] = json!("web");
        let created = apply(resource, None, &first, "fledge", false).unwrap();
        let updated = apply(resource, Some(&created), &intent(3, "a:1"), "fledge", false).unwrap();
        assert_eq!(updated["metadata"]["labels"], json!({ "app": "a" }));
    }
}
