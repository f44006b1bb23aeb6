//! Sets of field paths, as server-side apply tracks which manager owns which fields (`metadata.managedFields`,
//! `fieldsType: FieldsV1`).
//!
//! ```text
//! {"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"app","image":"a:1"}]}}}}
//!   ──▶ .spec.replicas
//!       .spec.template.spec.containers[name=app]          (the item itself, "." in FieldsV1)
//!       .spec.template.spec.containers[name=app].image
//!       .spec.template.spec.containers[name=app].name
//! ```

use super::strategic::{ListStrategy, list_strategy};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    /// A field of an object: `f:name`.
    Field(String),
    /// An item of an associative list, by its key fields, as canonical JSON: `k:{"name":"app"}`.
    Key(String),
    /// An item of a set of primitives: `v:"a"`.
    Value(String),
    /// The node itself (`.`): owning an associative-list item as a whole.
    Itself,
}

/// A path from the object's root.
pub type Path = Vec<Element>;

/// The fields a manager owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(pub BTreeSet<Path>);

/// Metadata fields nobody owns: they are the server's.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

impl FieldSet {
    /// The leaf fields set in `object` (apiVersion, kind, status and server-owned metadata excluded).
    pub fn of(object: &Value) -> FieldSet {
        let mut set = BTreeSet::new();
        if let Value::Object(map) = object {
            for (key, value) in map {
                match key.as_str() {
                    "apiVersion" | "kind" | "status" => {}
                    "metadata" => {
                        if let Value::Object(metadata) = value {
                            for (field, value) in
                                metadata.iter().filter(|(field, _)| !SERVER_METADATA.contains(&field.as_str()))
                            {
                                let mut path = vec![Element::Field("metadata".into()), Element::Field(field.clone())];
                                walk(value, &mut path, &mut set);
                            }
                        }
                    }
                    _ => {
                        let mut path = vec![Element::Field(key.clone())];
                        walk(value, &mut path, &mut set);
                    }
                }
            }
        }
        FieldSet(set)
    }

    /// Whether the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `fieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for element in path {
                let key = match element {
                    Element::Field(name) => format!("f:{name}"),
                    Element::Key(key) => format!("k:{key}"),
                    Element::Value(value) => format!("v:{value}"),
                    Element::Itself => ".".to_owned(),
                };
                node = node.entry(key).or_insert_with(|| json!({})).as_object_mut().expect("nodes are objects");
            }
        }
        Value::Object(root)
    }

    /// Reads a `fieldsV1` JSON back into a set.
    pub fn from_fields_v1(fields: &Value) -> FieldSet {
        fn read(node: &Map<String, Value>, path: &mut Path, set: &mut BTreeSet<Path>) {
            if node.is_empty() && !path.is_empty() {
                set.insert(path.clone());
            }
            for (key, child) in node {
                let element = if key == "." {
                    Element::Itself
                } else if let Some(name) = key.strip_prefix("f:") {
                    Element::Field(name.to_owned())
                } else if let Some(item) = key.strip_prefix("k:") {
                    Element::Key(item.to_owned())
                } else if let Some(value) = key.strip_prefix("v:") {
                    Element::Value(value.to_owned())
                } else {
                    continue;
                };
                path.push(element);
                if let Value::Object(child) = child {
                    read(child, path, set);
                }
                path.pop();
            }
        }
        let mut set = BTreeSet::new();
        if let Value::Object(root) = fields {
            read(root, &mut Vec::new(), &mut set);
        }
        FieldSet(set)
    }

    /// The leaves whose values differ between `old` and `new` or that `new` adds.
    pub fn changed(old: &Value, new: &Value) -> FieldSet {
        let new_set = FieldSet::of(new);
        FieldSet(new_set.0.into_iter().filter(|path| lookup(old, path) != lookup(new, path)).collect())
    }
}

fn field_names(path: &Path) -> Vec<&str> {
    path.iter()
        .filter_map(|element| match element {
            Element::Field(name) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

fn walk(value: &Value, path: &mut Path, set: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(Element::Field(key.clone()));
                walk(child, path, set);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let names = field_names(path);
            let (parent, field) = match names.split_last() {
                Some((field, parent)) => (parent.to_vec(), *field),
                None => (Vec::new(), ""),
            };
            match list_strategy(&parent, field) {
                ListStrategy::MergeByKey(keys) => {
                    for item in items {
                        path.push(Element::Key(item_key(item, keys)));
                        path.push(Element::Itself);
                        set.insert(path.clone());
                        path.pop();
                        walk_item(item, path, set);
                        path.pop();
                    }
                }
                ListStrategy::MergeSet => {
                    for item in items {
                        path.push(Element::Value(item.to_string()));
                        set.insert(path.clone());
                        path.pop();
                    }
                }
                ListStrategy::Replace => {
                    set.insert(path.clone());
                }
            }
        }
        _ => {
            set.insert(path.clone());
        }
    }
}

fn walk_item(item: &Value, path: &mut Path, set: &mut BTreeSet<Path>) {
    if let Value::Object(map) = item {
        for (key, child) in map {
            path.push(Element::Field(key.clone()));
            walk(child, path, set);
            path.pop();
        }
    }
}

/// The canonical JSON of an item's key fields: `{"name":"app"}` (keys sorted, absent keys left out).
pub fn item_key(item: &Value, keys: &[&str]) -> String {
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    let parts: Vec<String> = sorted
        .iter()
        .filter_map(|key| item.get(*key).map(|value| format!("{}:{value}", Value::String((*key).to_owned()))))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// The value at a path, if the object has one.
pub fn lookup<'v>(object: &'v Value, path: &Path) -> Option<&'v Value> {
    let mut node = object;
    let mut names: Vec<&str> = Vec::new();
    for element in path {
        match element {
            Element::Field(name) => {
                node = node.get(name)?;
                names.push(name);
            }
            Element::Key(key) => {
                let (field, parent) = names.split_last()?;
                let ListStrategy::MergeByKey(keys) = list_strategy(parent, field) else {
                    return None;
                };
                node = node.as_array()?.iter().find(|item| item_key(item, keys) == *key)?;
            }
            Element::Value(value) => {
                let wanted: Value = serde_json::from_str(value).ok()?;
                node = node.as_array()?.iter().find(|item| **item == wanted)?;
            }
            Element::Itself => {}
        }
    }
    Some(node)
}

/// Removes the value at a path (a field, a keyed item, a set member). Returns whether something was removed.
pub fn remove(object: &mut Value, path: &Path) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    if *last == Element::Itself {
        return remove(object, &parent_path.to_vec());
    }
    let names: Vec<&str> = parent_path
        .iter()
        .filter_map(|element| match element {
            Element::Field(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let Some(parent) = lookup_mut(object, &parent_path.to_vec()) else {
        return false;
    };
    match last {
        Element::Field(name) => parent.as_object_mut().is_some_and(|map| map.remove(name).is_some()),
        Element::Key(key) => {
            let Some((field, grandparent)) = names.split_last() else {
                return false;
            };
            let ListStrategy::MergeByKey(keys) = list_strategy(grandparent, field) else {
                return false;
            };
            let Some(items) = parent.as_array_mut() else {
                return false;
            };
            let before = items.len();
            items.retain(|item| item_key(item, keys) != *key);
            items.len() != before
        }
        Element::Value(value) => {
            let Ok(unwanted) = serde_json::from_str::<Value>(value) else {
                return false;
            };
            let Some(items) = parent.as_array_mut() else {
                return false;
            };
            let before = items.len();
            items.retain(|item| *item != unwanted);
            items.len() != before
        }
        Element::Itself => false,
    }
}

fn lookup_mut<'v>(object: &'v mut Value, path: &Path) -> Option<&'v mut Value> {
    let mut node = object;
    let mut names: Vec<String> = Vec::new();
    for element in path {
        match element {
            Element::Field(name) => {
                node = node.get_mut(name)?;
                names.push(name.clone());
            }
            Element::Key(key) => {
                let names_ref: Vec<&str> = names.iter().map(String::as_str).collect();
                let (field, parent) = names_ref.split_last()?;
                let ListStrategy::MergeByKey(keys) = list_strategy(parent, field) else {
                    return None;
                };
                node = node.as_array_mut()?.iter_mut().find(|item| item_key(item, keys) == *key)?;
            }
            Element::Value(value) => {
                let wanted: Value = serde_json::from_str(value).ok()?;
                node = node.as_array_mut()?.iter_mut().find(|item| **item == wanted)?;
            }
            Element::Itself => {}
        }
    }
    Some(node)
}

/// `.spec.template.spec.containers[name="app"].image`: how apply conflicts name a field.
pub fn describe(path: &Path) -> String {
    let mut out = String::new();
    for element in path {
        match element {
            Element::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Element::Key(key) => {
                let inner = key.trim_start_matches('{').trim_end_matches('}').replace(':', "=");
                out.push_str(&format!("[{inner}]"));
            }
            Element::Value(value) => out.push_str(&format!("[={value}]")),
            Element::Itself => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "d", "labels": { "app": "a" }, "finalizers": ["x"] },
            "spec": { "replicas": 3, "template": { "spec": { "containers": [{ "name": "app", "image": "a:1", "args": ["-v"] }] } } },
            "status": { "replicas": 3 }
        })
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let set = FieldSet::of(&deployment());
        let fields = set.to_fields_v1();
        assert_eq!(
            fields,
            json!({
                "f:metadata": { "f:labels": { "f:app": {} }, "f:finalizers": { "v:\"x\"": {} } },
                "f:spec": { "f:replicas": {}, "f:template": { "f:spec": { "f:containers": { "k:{\"name\":\"app\"}": {
                    ".": {}, "f:args": {}, "f:image": {}, "f:name": {}
                } } } } }
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&fields), set);
    }

    #[test]
    fn paths_look_up_and_remove_keyed_items() {
        let mut object = deployment();
        let image: Path = vec![
            Element::Field("spec".into()),
            Element::Field("template".into()),
            Element::Field("spec".into()),
            Element::Field("containers".into()),
            Element::Key("{\"name\":\"app\"}".into()),
            Element::Field("image".into()),
        ];
        assert_eq!(lookup(&object, &image), Some(&json!("a:1")));
        assert_eq!(describe(&image), ".spec.template.spec.containers[\"name\"=\"app\"].image");
        assert!(remove(&mut object, &image));
        assert_eq!(lookup(&object, &image), None);
        let item: Path = image[..5].to_vec();
        assert!(remove(&mut object, &item));
        assert_eq!(object["spec"]["template"]["spec"]["containers"], json!([]));
    }

    #[test]
    fn changed_fields_are_the_new_or_different_leaves() {
        let old = deployment();
        let mut new = deployment();
        new["spec"]["replicas"] = json!(5);
        new["metadata"]["labels"]["tier"] = json!("web");
        let changed = FieldSet::changed(&old, &new);
        let described: Vec<String> = changed.0.iter().map(describe).collect();
        assert_eq!(described, vec![".metadata.labels.tier", ".spec.replicas"]);
    }
}
