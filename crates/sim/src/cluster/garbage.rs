//! The garbage collector and the namespace controller: dependents of deleted owners go (background), owners deleted
//! in the foreground wait for their dependents, orphaned dependents lose their owner reference, and a terminating
//! namespace is emptied before it disappears.

use super::Cluster;
use crate::resources::{self, ResourceId};
use crate::store::{DeleteOptions, WriteScope};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

fn resource_of_kind(kind: &str) -> Option<ResourceId> {
    resources::all().find(|(_, resource)| resource.kind == kind).map(|(id, _)| id)
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn remove_finalizer(cluster: &Cluster, resource: ResourceId, object: &Value, finalizer: &str) {
    let _ = cluster.store.modify(
        resource,
        text(object, "/metadata/namespace"),
        text(object, "/metadata/name"),
        WriteScope::Main,
        None,
        |object| {
            if let Some(list) = object.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                list.retain(|existing| existing != finalizer);
            }
            Ok(())
        },
    );
}

pub(super) fn run(cluster: &Cluster) {
    let store = &cluster.store;
    // Every namespaced object with owners, and every object by uid.
    let mut by_uid: HashMap<String, (ResourceId, Arc<Value>)> = HashMap::new();
    let mut dependents: Vec<(ResourceId, Arc<Value>)> = Vec::new();
    for (resource, resource_type) in resources::all() {
        if resource == resources::EVENTS {
            continue;
        }
        let (objects, _) = store.list(resource, None, |_| true);
        for object in objects {
            by_uid.insert(text(&object, "/metadata/uid").to_owned(), (resource, object.clone()));
            if resource_type.namespaced
                && object
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|owners| !owners.is_empty())
            {
                dependents.push((resource, object));
            }
        }
    }
    let mut blocking: HashMap<String, usize> = HashMap::new();
    for (resource, dependent) in &dependents {
        let namespace = text(dependent, "/metadata/namespace");
        let name = text(dependent, "/metadata/name");
        let owners: Vec<Value> =
            dependent.pointer("/metadata/ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut live_owner = false;
        let mut orphaned_by: Vec<String> = Vec::new();
        let mut delete = false;
        for owner in &owners {
            let uid = owner["uid"].as_str().unwrap_or_default();
            let exists = by_uid.get(uid).filter(|(owner_resource, owner_object)| {
                Some(*owner_resource) == owner["kind"].as_str().and_then(resource_of_kind)
                    && text(owner_object, "/metadata/namespace") == namespace
            });
            match exists {
                None => {}
                Some((_, owner_object)) => {
                    let owner_finalizers = finalizers(owner_object);
                    if owner_finalizers.iter().any(|finalizer| finalizer == "orphan") {
                        orphaned_by.push(uid.to_owned());
                    } else if owner_finalizers.iter().any(|finalizer| finalizer == "foregroundDeletion") {
                        delete = true;
                        *blocking.entry(uid.to_owned()).or_default() += 1;
                    } else {
                        live_owner = true;
                    }
                }
            }
        }
        if !orphaned_by.is_empty() {
            let _ = store.modify(*resource, namespace, name, WriteScope::Main, None, |object| {
                if let Some(list) = object.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                    list.retain(|owner| !orphaned_by.iter().any(|uid| owner["uid"] == uid.as_str()));
                }
                Ok(())
            });
            continue;
        }
        if (delete || !live_owner) && dependent.pointer("/metadata/deletionTimestamp").is_none() {
            let _ = store.delete(*resource, namespace, name, &DeleteOptions::default());
        }
    }
    // Owners waiting on their dependents.
    for (uid, (resource, object)) in &by_uid {
        if object.pointer("/metadata/deletionTimestamp").is_none() {
            continue;
        }
        let owner_finalizers = finalizers(object);
        if owner_finalizers.iter().any(|finalizer| finalizer == "foregroundDeletion") && !blocking.contains_key(uid) {
            remove_finalizer(cluster, *resource, object, "foregroundDeletion");
        }
        if owner_finalizers.iter().any(|finalizer| finalizer == "orphan") {
            let still_owned = dependents.iter().any(|(_, dependent)| {
                dependent
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|owner| owner["uid"] == uid.as_str())
            });
            if !still_owned {
                remove_finalizer(cluster, *resource, object, "orphan");
            }
        }
    }
    terminate_namespaces(cluster);
}

fn terminate_namespaces(cluster: &Cluster) {
    let store = &cluster.store;
    let (terminating, _) =
        store.list(resources::NAMESPACES, None, |namespace| namespace.pointer("/metadata/deletionTimestamp").is_some());
    for namespace in terminating {
        let name = text(&namespace, "/metadata/name").to_owned();
        let mut remaining = 0;
        for (resource, resource_type) in resources::all() {
            if !resource_type.namespaced {
                continue;
            }
            let (objects, _) = store.list(resource, Some(&name), |_| true);
            for object in objects {
                remaining += 1;
                let object_name = text(&object, "/metadata/name");
                let _ = store.delete(
                    resource,
                    &name,
                    object_name,
                    &DeleteOptions { grace_period_seconds: Some(0), ..DeleteOptions::default() },
                );
                // Objects held by finalizers nobody will remove (the namespace is going) are removed outright.
                if resource != resources::PODS {
                    store.remove(resource, &name, object_name);
                }
            }
        }
        if remaining == 0 {
            let _ = store.modify(resources::NAMESPACES, "", &name, WriteScope::Whole, None, |object| {
                object["spec"]["finalizers"] = json!([]);
                Ok(())
            });
            store.remove(resources::NAMESPACES, "", &name);
        }
    }
}
