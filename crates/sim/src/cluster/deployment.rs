//! The Deployment controller: one ReplicaSet per pod template (`<deployment>-<pod-template-hash>`), rolling updates
//! within maxSurge and maxUnavailable, and the status and conditions `kubectl rollout status` reads: Available,
//! Progressing (NewReplicaSetAvailable, ReplicaSetUpdated, ProgressDeadlineExceeded) and ReplicaFailure.
//!
//! Over 500 lines on purpose: the controller's rolling update and its status conditions are one algorithm
//! (Kubernetes' own `deployment_controller` is one file too); its parts share the same bookkeeping.

use super::Cluster;
use super::events::{EventType, Reporter};
use super::replicaset::controlled_by;
use crate::clock;
use crate::resources;
use crate::store::{DeleteOptions, WriteScope};
use serde_json::{Map, Value, json};
use std::sync::Arc;

const REVISION: &str = "deployment.kubernetes.io/revision";

/// The pod-template-hash: FNV-32a of the template, its decimal digits encoded with the alphabet Kubernetes uses
/// (so it only contains `456789bcdf`, like a real one).
pub fn template_hash(template: &Value) -> String {
    let mut text = String::new();
    canonical_json(template, &mut text);
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string().bytes().map(|digit| ALPHANUMS[usize::from(digit) % ALPHANUMS.len()] as char).collect()
}

fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The template without the pod-template-hash label, for comparing a ReplicaSet's template with a Deployment's.
fn template_without_hash(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove("pod-template-hash");
    }
    template
}

/// `25%` of `total`, rounded up (surge) or down (unavailable), or an absolute number.
fn resolve(value: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match value {
        Some(Value::Number(number)) => number.as_i64().unwrap_or(0),
        Some(Value::String(text)) => match text.strip_suffix('%').and_then(|number| number.parse::<f64>().ok()) {
            Some(percent) => {
                let exact = percent * total as f64 / 100.0;
                if round_up { exact.ceil() as i64 } else { exact.floor() as i64 }
            }
            None => text.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn run(cluster: &Cluster) {
    let (deployments, _) = cluster
        .store
        .list(resources::DEPLOYMENTS, None, |deployment| deployment.pointer("/metadata/deletionTimestamp").is_none());
    for deployment in deployments {
        reconcile(cluster, &deployment);
    }
}

fn scale(cluster: &Cluster, deployment: &Value, replica_set: &Value, replicas: i64) {
    let from = int(replica_set, "/spec/replicas");
    if from == replicas {
        return;
    }
    let namespace = text(replica_set, "/metadata/namespace");
    let name = text(replica_set, "/metadata/name").to_owned();
    let desired = int(deployment, "/spec/replicas");
    let surge = resolve(deployment.pointer("/spec/strategy/rollingUpdate/maxSurge"), desired, true);
    let scaled = cluster.store.modify(resources::REPLICA_SETS, namespace, &name, WriteScope::Main, None, |object| {
        object["spec"]["replicas"] = json!(replicas);
        let annotations = object["metadata"]
            .as_object_mut()
            .expect("objects have metadata")
            .entry("annotations")
            .or_insert(json!({}));
        annotations["deployment.kubernetes.io/desired-replicas"] = json!(desired.to_string());
        annotations["deployment.kubernetes.io/max-replicas"] = json!((desired + surge).to_string());
        Ok(())
    });
    if scaled.is_ok() {
        let direction = if replicas > from { "up" } else { "down" };
        cluster.events.record(
            deployment,
            None,
            Reporter::DeploymentController,
            EventType::Normal,
            "ScalingReplicaSet",
            &format!("Scaled {direction} replica set {name} from {from} to {replicas}"),
        );
    }
}

fn reconcile(cluster: &Cluster, deployment: &Value) {
    let store = &cluster.store;
    let namespace = text(deployment, "/metadata/namespace").to_owned();
    let name = text(deployment, "/metadata/name").to_owned();
    let uid = text(deployment, "/metadata/uid").to_owned();
    let desired = int(deployment, "/spec/replicas");
    let template = deployment.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = template_hash(&template);
    let (mut owned, _) =
        store.list(resources::REPLICA_SETS, Some(&namespace), |replica_set| controlled_by(replica_set, &uid));
    owned.sort_by_key(|replica_set| text(replica_set, "/metadata/creationTimestamp").to_owned());

    let comparable = template_without_hash(&template);
    let mut new =
        owned.iter().find(|replica_set| template_without_hash(&replica_set["spec"]["template"]) == comparable).cloned();
    let revisions: Vec<i64> = owned
        .iter()
        .filter_map(|replica_set| {
            text(replica_set, &format!("/metadata/annotations/{}", REVISION.replace('/', "~1"))).parse().ok()
        })
        .collect();
    let mut created_new = false;
    let mut create_error: Option<String> = None;
    if new.is_none() {
        let revision = revisions.iter().max().copied().unwrap_or(0) + 1;
        match create_replica_set(cluster, deployment, &hash, revision) {
            Ok(replica_set) => {
                new = Some(replica_set);
                created_new = true;
            }
            Err(message) => create_error = Some(message),
        }
    } else if let Some(current) = &new {
        // A rollback to an older template makes that ReplicaSet the newest revision.
        let current_revision: i64 =
            text(current, &format!("/metadata/annotations/{}", REVISION.replace('/', "~1"))).parse().unwrap_or(0);
        let newest = revisions.iter().max().copied().unwrap_or(0);
        if current_revision < newest {
            let replica_set_name = text(current, "/metadata/name").to_owned();
            if let Ok(updated) =
                store.modify(resources::REPLICA_SETS, &namespace, &replica_set_name, WriteScope::Main, None, |object| {
                    object["metadata"]["annotations"][REVISION] = json!((newest + 1).to_string());
                    Ok(())
                })
            {
                new = Some(updated);
            }
        }
    }
    let Some(new) = new else {
        update_status(cluster, deployment, None, &owned, false, create_error);
        return;
    };
    let new_name = text(&new, "/metadata/name").to_owned();
    let new_revision = text(&new, &format!("/metadata/annotations/{}", REVISION.replace('/', "~1"))).to_owned();
    if text(deployment, &format!("/metadata/annotations/{}", REVISION.replace('/', "~1"))) != new_revision {
        let _ = store.modify(resources::DEPLOYMENTS, &namespace, &name, WriteScope::Main, None, |object| {
            let annotations = object["metadata"]
                .as_object_mut()
                .expect("objects have metadata")
                .entry("annotations")
                .or_insert(json!({}));
            annotations[REVISION] = json!(new_revision);
            Ok(())
        });
    }
    let old: Vec<Arc<Value>> =
        owned.iter().filter(|replica_set| text(replica_set, "/metadata/name") != new_name).cloned().collect();
    let paused = deployment.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    if !paused {
        let recreate = text(deployment, "/spec/strategy/type") == "Recreate";
        if recreate {
            for replica_set in &old {
                scale(cluster, deployment, replica_set, 0);
            }
            let old_pods_left = old.iter().any(|replica_set| int(replica_set, "/status/replicas") > 0);
            if !old_pods_left {
                scale(cluster, deployment, &new, desired);
            }
        } else {
            rolling_update(cluster, deployment, &new, &old, desired);
        }
    }
    cleanup_history(cluster, deployment, &old);
    let (owned, _) =
        store.list(resources::REPLICA_SETS, Some(&namespace), |replica_set| controlled_by(replica_set, &uid));
    let new = owned.iter().find(|replica_set| text(replica_set, "/metadata/name") == new_name).cloned().unwrap_or(new);
    update_status(cluster, deployment, Some(&new), &owned, created_new, create_error);
}

fn rolling_update(cluster: &Cluster, deployment: &Value, new: &Value, old: &[Arc<Value>], desired: i64) {
    let mut surge = resolve(deployment.pointer("/spec/strategy/rollingUpdate/maxSurge"), desired, true);
    let mut unavailable = resolve(deployment.pointer("/spec/strategy/rollingUpdate/maxUnavailable"), desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    surge = surge.max(0);
    let new_replicas = int(new, "/spec/replicas");
    let old_replicas: i64 = old.iter().map(|replica_set| int(replica_set, "/spec/replicas")).sum();
    // Scale the new ReplicaSet up within the surge.
    if new_replicas < desired {
        let allowed = desired + surge - (new_replicas + old_replicas);
        let up = allowed.min(desired - new_replicas);
        if up > 0 {
            scale(cluster, deployment, new, new_replicas + up);
        }
    } else if new_replicas > desired {
        scale(cluster, deployment, new, desired);
    }
    // Scale old ReplicaSets down as far as availability allows.
    if old_replicas > 0 {
        let new_replicas = int(new, "/spec/replicas").max(new_replicas);
        let all_replicas = new_replicas + old_replicas;
        let min_available = desired - unavailable;
        let new_unavailable = (new_replicas - int(new, "/status/availableReplicas")).max(0);
        // Old pods that are not available can go at once.
        let mut budget = (all_replicas - min_available - new_unavailable).max(0);
        for replica_set in old {
            let replicas = int(replica_set, "/spec/replicas");
            let unhealthy = (replicas - int(replica_set, "/status/availableReplicas")).max(0);
            let mut down = unhealthy.min(replicas);
            let healthy_budget = (budget - down).max(0);
            down += healthy_budget.min(replicas - down);
            budget -= down;
            if down > 0 {
                scale(cluster, deployment, replica_set, replicas - down);
            }
        }
    }
}

fn create_replica_set(cluster: &Cluster, deployment: &Value, hash: &str, revision: i64) -> Result<Arc<Value>, String> {
    let namespace = text(deployment, "/metadata/namespace");
    let name = format!("{}-{hash}", text(deployment, "/metadata/name"));
    let mut template = deployment.pointer("/spec/template").cloned().unwrap_or(json!({}));
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = deployment.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    let mut annotations: Map<String, Value> = deployment
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| {
            !key.starts_with("deployment.kubernetes.io/") && key != "kubectl.kubernetes.io/last-applied-configuration"
        })
        .collect();
    let desired = int(deployment, "/spec/replicas");
    let surge = resolve(deployment.pointer("/spec/strategy/rollingUpdate/maxSurge"), desired, true);
    annotations.insert(REVISION.into(), json!(revision.to_string()));
    annotations.insert("deployment.kubernetes.io/desired-replicas".into(), json!(desired.to_string()));
    annotations.insert("deployment.kubernetes.io/max-replicas".into(), json!((desired + surge).to_string()));
    let mut spec = json!({ "replicas": 0, "selector": selector, "template": template });
    if let Some(min_ready) = deployment.pointer("/spec/minReadySeconds") {
        spec["minReadySeconds"] = min_ready.clone();
    }
    let replica_set = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": text(deployment, "/metadata/name"),
                "uid": text(deployment, "/metadata/uid"),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    });
    match cluster.store.create(resources::REPLICA_SETS, namespace, replica_set, None) {
        Ok(created) => Ok(created),
        Err(error) => {
            let message = format!("Failed to create new replica set \"{name}\": {}", error.message);
            cluster.events.record(
                deployment,
                None,
                Reporter::DeploymentController,
                EventType::Warning,
                "ReplicaSetCreateError",
                &message,
            );
            Err(message)
        }
    }
}

fn cleanup_history(cluster: &Cluster, deployment: &Value, old: &[Arc<Value>]) {
    let limit = deployment.pointer("/spec/revisionHistoryLimit").and_then(Value::as_i64).unwrap_or(10).max(0) as usize;
    let idle: Vec<&Arc<Value>> = old
        .iter()
        .filter(|replica_set| int(replica_set, "/spec/replicas") == 0 && int(replica_set, "/status/replicas") == 0)
        .collect();
    if idle.len() > limit {
        for replica_set in &idle[..idle.len() - limit] {
            let _ = cluster.store.delete(
                resources::REPLICA_SETS,
                text(replica_set, "/metadata/namespace"),
                text(replica_set, "/metadata/name"),
                &DeleteOptions::default(),
            );
        }
    }
}

fn condition<'v>(status: &'v Value, kind: &str) -> Option<&'v Value> {
    status.get("conditions").and_then(Value::as_array).into_iter().flatten().find(|condition| condition["type"] == kind)
}

/// Sets a condition as the real controller does: unchanged status and reason leave it alone; otherwise the old entry
/// goes and the new one is appended, keeping lastTransitionTime when the status did not change.
fn set_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
    always_update: bool,
) {
    if let Some(existing) = conditions.iter().find(|condition| condition["type"] == kind)
        && existing["status"] == status
        && existing["reason"] == reason
        && !always_update
    {
        return;
    }
    let transition = conditions
        .iter()
        .find(|condition| condition["type"] == kind && condition["status"] == status)
        .and_then(|condition| condition["lastTransitionTime"].as_str())
        .unwrap_or(now)
        .to_owned();
    conditions.retain(|condition| condition["type"] != kind);
    conditions.push(json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
    }));
}

fn update_status(
    cluster: &Cluster,
    deployment: &Value,
    new: Option<&Arc<Value>>,
    owned: &[Arc<Value>],
    created_new: bool,
    create_error: Option<String>,
) {
    let namespace = text(deployment, "/metadata/namespace").to_owned();
    let name = text(deployment, "/metadata/name").to_owned();
    let desired = int(deployment, "/spec/replicas");
    let unavailable_allowed =
        resolve(deployment.pointer("/spec/strategy/rollingUpdate/maxUnavailable"), desired, false);
    let sum = |pointer: &str| owned.iter().map(|replica_set| int(replica_set, pointer)).sum::<i64>();
    let replicas = sum("/status/replicas");
    let ready = sum("/status/readyReplicas");
    let available = sum("/status/availableReplicas");
    let updated = new.map_or(0, |new| int(new, "/status/replicas"));
    let old_status = deployment.get("status").cloned().unwrap_or(json!({}));
    let now = clock::now();
    let progress_deadline = deployment.pointer("/spec/progressDeadlineSeconds").and_then(Value::as_i64);
    let mut conditions: Vec<Value> =
        old_status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();

    let minimum =
        if text(deployment, "/spec/strategy/type") == "Recreate" { desired } else { desired - unavailable_allowed };
    if available >= minimum {
        set_condition(
            &mut conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &now,
            false,
        );
    } else {
        set_condition(
            &mut conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &now,
            false,
        );
    }

    let new_name = new.map(|new| text(new, "/metadata/name").to_owned()).unwrap_or_default();
    let complete = new.is_some()
        && updated == desired
        && replicas == desired
        && available == desired
        && int(new.expect("checked"), "/status/availableReplicas") == desired;
    let progressed = updated > int(&old_status, "/updatedReplicas")
        || replicas < int(&old_status, "/replicas")
        || ready > int(&old_status, "/readyReplicas")
        || available > int(&old_status, "/availableReplicas");
    let paused = deployment.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    if let Some(message) = &create_error {
        set_condition(&mut conditions, "Progressing", "False", "ReplicaSetCreateError", message, &now, false);
    } else if paused {
        set_condition(
            &mut conditions,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            &now,
            false,
        );
    } else if created_new {
        set_condition(
            &mut conditions,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            &format!("Created new replica set \"{new_name}\""),
            &now,
            false,
        );
    } else if complete {
        set_condition(
            &mut conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            &now,
            false,
        );
    } else if progressed {
        set_condition(
            &mut conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{new_name}\" is progressing."),
            &now,
            true,
        );
    } else if let (Some(deadline), Some(progressing)) =
        (progress_deadline, condition(&json!({ "conditions": conditions.clone() }), "Progressing"))
        && progressing["reason"] != "ProgressDeadlineExceeded"
        && progressing["reason"] != "NewReplicaSetAvailable"
    {
        let last_update = progressing["lastUpdateTime"].as_str().and_then(clock::parse);
        if let Some(last_update) = last_update
            && jiff::Timestamp::now().as_second() - last_update.as_second() > deadline
        {
            set_condition(
                &mut conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                &now,
                false,
            );
        }
    } else if condition(&json!({ "conditions": conditions.clone() }), "Progressing").is_none() && new.is_some() {
        set_condition(
            &mut conditions,
            "Progressing",
            "True",
            "FoundNewReplicaSet",
            &format!("Found new replica set \"{new_name}\""),
            &now,
            false,
        );
    }

    let failure = owned.iter().find_map(|replica_set| condition(&replica_set["status"], "ReplicaFailure").cloned());
    match failure {
        Some(failure) => {
            let message = failure["message"].as_str().unwrap_or_default().to_owned();
            let reason = failure["reason"].as_str().unwrap_or("FailedCreate").to_owned();
            set_condition(&mut conditions, "ReplicaFailure", "True", &reason, &message, &now, false);
        }
        None => conditions.retain(|condition| condition["type"] != "ReplicaFailure"),
    }

    let mut status = json!({
        "observedGeneration": deployment.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": conditions,
    });
    let fields = status.as_object_mut().expect("status is an object");
    for field in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
        if fields.get(field).and_then(Value::as_i64) == Some(0) {
            fields.remove(field);
        }
    }
    let unavailable = (desired - available).max(0).max(replicas - available);
    if unavailable > 0 {
        fields.insert("unavailableReplicas".into(), json!(unavailable));
    }
    let _ = cluster.store.modify(resources::DEPLOYMENTS, &namespace, &name, WriteScope::Status, None, |object| {
        object["status"] = status;
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_look_like_kubernetes_ones_and_ignore_key_order() {
        let first = template_hash(
            &json!({ "metadata": { "labels": { "app": "a", "version": "v1" } }, "spec": { "containers": [] } }),
        );
        let second = template_hash(
            &json!({ "spec": { "containers": [] }, "metadata": { "labels": { "version": "v1", "app": "a" } } }),
        );
        assert_eq!(first, second);
        assert!(first.chars().all(|c| "456789bcdf".contains(c)), "{first}");
        assert!((1..=10).contains(&first.len()));
        assert_ne!(first, template_hash(&json!({ "metadata": {}, "spec": { "containers": [{ "name": "x" }] } })));
    }

    #[test]
    fn percentages_round_like_the_controller() {
        assert_eq!(resolve(Some(&json!("25%")), 3, true), 1);
        assert_eq!(resolve(Some(&json!("25%")), 3, false), 0);
        assert_eq!(resolve(Some(&json!(2)), 3, false), 2);
    }
}
