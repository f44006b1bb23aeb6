//! The ReplicaSet controller: keeps `spec.replicas` pods running from the template, and reports their readiness.

use super::Cluster;
use super::events::{EventType, Reporter};
use crate::resources;
use crate::store::{DeleteOptions, WriteScope};
use serde_json::{Value, json};
use std::sync::Arc;

/// Most pods one ReplicaSet creates or deletes per round (the real controller's slow start).
const BURST: usize = 50;

/// Whether `object` has a controller owner reference to `owner_uid`.
pub(super) fn controlled_by(object: &Value, owner_uid: &str) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|reference| reference["uid"] == owner_uid && reference["controller"] == true)
}

pub(super) fn is_active(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && !matches!(pod.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
}

/// Whether a pod's Ready condition is True.
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
}

/// Pods of an owner (by controller reference), active ones only.
pub(super) fn owned_pods(cluster: &Cluster, namespace: &str, owner_uid: &str) -> Vec<Arc<Value>> {
    cluster.store.list(resources::PODS, Some(namespace), |pod| controlled_by(pod, owner_uid) && is_active(pod)).0
}

pub(super) fn run(cluster: &Cluster) {
    let (replica_sets, _) = cluster.store.list(resources::REPLICA_SETS, None, |_| true);
    for replica_set in replica_sets {
        reconcile(cluster, &replica_set);
    }
}

fn reconcile(cluster: &Cluster, replica_set: &Value) {
    let store = &cluster.store;
    let namespace = replica_set.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let name = replica_set.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let uid = replica_set.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    let deleting = replica_set.pointer("/metadata/deletionTimestamp").is_some();
    let desired = replica_set.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1).max(0) as usize;
    let mut pods = owned_pods(cluster, namespace, uid);
    let mut failure: Option<String> = None;
    if !deleting && pods.len() < desired {
        for _ in 0..(desired - pods.len()).min(BURST) {
            let pod = pod_from_template(replica_set);
            match store.create(resources::PODS, namespace, pod, None) {
                Ok(created) => {
                    let pod_name =
                        created.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
                    cluster.events.record(
                        replica_set,
                        None,
                        Reporter::ReplicaSetController,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {pod_name}"),
                    );
                    pods.push(created);
                }
                Err(error) => {
                    cluster.events.record(
                        replica_set,
                        None,
                        Reporter::ReplicaSetController,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {}", error.message),
                    );
                    failure = Some(error.message);
                    break;
                }
            }
        }
    } else if pods.len() > desired {
        // Delete the least useful first: unscheduled, then not ready, then most restarted, then newest.
        let restarts = |pod: &Value| -> i64 {
            pod.pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|status| status["restartCount"].as_i64())
                .sum()
        };
        pods.sort_by_key(|pod| {
            (
                pod.pointer("/spec/nodeName").is_some(),
                is_ready(pod),
                std::cmp::Reverse(restarts(pod)),
                std::cmp::Reverse(
                    pod.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or_default().to_owned(),
                ),
            )
        });
        let excess = (pods.len() - desired).min(BURST);
        for pod in pods.drain(..excess) {
            let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
            if store.delete(resources::PODS, namespace, &pod_name, &DeleteOptions::default()).is_ok() {
                cluster.events.record(
                    replica_set,
                    None,
                    Reporter::ReplicaSetController,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {pod_name}"),
                );
            }
        }
    }
    let ready = pods.iter().filter(|pod| is_ready(pod)).count();
    let min_ready_seconds = replica_set.pointer("/spec/minReadySeconds").and_then(Value::as_i64).unwrap_or(0);
    let available = pods.iter().filter(|pod| is_available(pod, min_ready_seconds)).count();
    let generation = replica_set.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    let _ = store.modify(resources::REPLICA_SETS, namespace, name, WriteScope::Status, None, |object| {
        let mut status = json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": pods.len(),
            "observedGeneration": generation,
        });
        if ready > 0 {
            status["readyReplicas"] = json!(ready);
        }
        if available > 0 {
            status["availableReplicas"] = json!(available);
        }
        let previous_failure = object.pointer("/status/conditions").cloned();
        if let Some(message) = &failure {
            status["conditions"] = json!([{ "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message, "lastTransitionTime": crate::clock::now() }]);
        } else if pods.len() < desired
            && let Some(conditions) = previous_failure
        {
            status["conditions"] = conditions;
        }
        object["status"] = status;
        Ok(())
    });
}

/// Ready for at least `minReadySeconds`.
pub(super) fn is_available(pod: &Value, min_ready_seconds: i64) -> bool {
    let ready_since = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|condition| condition["type"] == "Ready" && condition["status"] == "True")
        .and_then(|condition| condition["lastTransitionTime"].as_str())
        .and_then(crate::clock::parse);
    match ready_since {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => jiff::Timestamp::now().as_second() - since.as_second() >= min_ready_seconds,
    }
}

fn pod_from_template(replica_set: &Value) -> Value {
    let template = replica_set.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let name = replica_set.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.remove("creationTimestamp");
        metadata.remove("name");
        // The API server truncates the base of generated names to 58 characters.
        let base: String = format!("{name}-").chars().take(58).collect();
        metadata.insert("generateName".into(), json!(base));
        metadata.insert(
            "ownerReferences".into(),
            json!([{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": name,
                "uid": replica_set.pointer("/metadata/uid"),
                "controller": true,
                "blockOwnerDeletion": true,
            }]),
        );
    }
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec").cloned().unwrap_or(json!({})) })
}
