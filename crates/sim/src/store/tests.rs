use super::*;
use crate::resources::{CONFIG_MAPS, DEPLOYMENTS, NAMESPACES, PODS};

fn store() -> Store {
    let store = Store::new(100, AdmissionConfig::default());
    store.create(NAMESPACES, "", json!({ "metadata": { "name": "default" } }), None).unwrap();
    store
}

fn config_map(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name, "labels": { "app": "a" } }, "data": { "k": "v" } })
}

#[test]
fn create_fills_metadata_and_refuses_duplicates() {
    let store = store();
    let created = store.create(CONFIG_MAPS, "default", config_map("c"), None).unwrap();
    assert_eq!(created["metadata"]["namespace"], "default");
    assert_eq!(created["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(created["metadata"]["creationTimestamp"].is_string());
    assert_eq!(created["metadata"]["resourceVersion"], store.revision().to_string());
    let error = store.create(CONFIG_MAPS, "default", config_map("c"), None).unwrap_err();
    assert_eq!((error.code, error.reason), (409, "AlreadyExists"));
    let error = store.create(CONFIG_MAPS, "missing", config_map("c"), None).unwrap_err();
    assert_eq!(error.message, "namespaces \"missing\" not found");
}

#[test]
fn stale_updates_conflict_and_no_op_writes_keep_the_revision() {
    let store = store();
    let created = store.create(CONFIG_MAPS, "default", config_map("c"), None).unwrap();
    let mut first = (*created).clone();
    first["data"]["k"] = json!("w");
    let updated = store.update(CONFIG_MAPS, "default", "c", first.clone(), WriteScope::Main, None).unwrap();
    assert_ne!(updated["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
    let error = store.update(CONFIG_MAPS, "default", "c", first, WriteScope::Main, None).unwrap_err();
    assert_eq!((error.code, error.reason), (409, "Conflict"));
    let same = store.update(CONFIG_MAPS, "default", "c", (*updated).clone(), WriteScope::Main, None).unwrap();
    assert_eq!(same["metadata"]["resourceVersion"], updated["metadata"]["resourceVersion"]);
}

#[test]
fn generation_counts_spec_changes_and_status_writes_touch_only_status() {
    let store = store();
    let deployment = json!({ "metadata": { "name": "d" }, "spec": { "selector": { "matchLabels": { "app": "a" } },
        "template": { "metadata": { "labels": { "app": "a" } }, "spec": { "containers": [{ "name": "a", "image": "a:1" }] } } } });
    let created = store.create(DEPLOYMENTS, "default", deployment, None).unwrap();
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["spec"]["replicas"], 1, "defaulted");
    let scaled = store.modify(DEPLOYMENTS, "default", "d", WriteScope::Main, None, |object| {
        object["spec"]["replicas"] = json!(3);
        object["status"] = json!({ "replicas": 99 });
        Ok(())
    });
    let scaled = scaled.unwrap();
    assert_eq!(scaled["metadata"]["generation"], 2);
    assert_eq!(scaled["status"], json!({}), "a main write keeps the stored status");
    let status = store
        .modify(DEPLOYMENTS, "default", "d", WriteScope::Status, None, |object| {
            object["status"] = json!({ "replicas": 3 });
            object["spec"]["replicas"] = json!(7);
            Ok(())
        })
        .unwrap();
    assert_eq!(status["status"]["replicas"], 3);
    assert_eq!(status["spec"]["replicas"], 3, "a status write keeps the spec");
    assert_eq!(status["metadata"]["generation"], 2);
}

#[test]
fn watches_replay_history_and_expire_when_compacted() {
    let store = store();
    let start = store.revision();
    store.create(CONFIG_MAPS, "default", config_map("a"), None).unwrap();
    store.create(CONFIG_MAPS, "default", config_map("b"), None).unwrap();
    store.remove(CONFIG_MAPS, "default", "a").unwrap();
    let (replay, _) = store.watch(start).unwrap();
    let kinds: Vec<ChangeKind> = replay.iter().map(|change| change.kind).collect();
    assert_eq!(kinds, vec![ChangeKind::Added, ChangeKind::Added, ChangeKind::Deleted]);
    assert_eq!(replay[2].object["metadata"]["resourceVersion"], store.revision().to_string());
    store.compact();
    let error = store.watch(start).unwrap_err();
    assert_eq!(error.code, 410);
    assert!(store.watch(store.revision()).is_ok());
}

#[test]
fn lists_are_per_namespace_and_filtered() {
    let store = store();
    store.create(NAMESPACES, "", json!({ "metadata": { "name": "other" } }), None).unwrap();
    store.create(CONFIG_MAPS, "default", config_map("a"), None).unwrap();
    store.create(CONFIG_MAPS, "other", config_map("b"), None).unwrap();
    let (items, _) = store.list(CONFIG_MAPS, Some("default"), |_| true);
    assert_eq!(items.len(), 1);
    let (items, _) = store.list(CONFIG_MAPS, None, |object| object["metadata"]["name"] == "b");
    assert_eq!(items[0]["metadata"]["namespace"], "other");
    assert_eq!(store.count(PODS), 0);
}
