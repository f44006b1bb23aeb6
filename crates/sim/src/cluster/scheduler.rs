//! The scheduler: binds pending pods to a node with room for them, or marks them Unschedulable with the message a
//! real scheduler writes.

use super::Cluster;
use super::events::{EventType, Reporter};
use super::nodes::{self, NODE_CPU_MILLIS, NODE_MAX_PODS, NODE_MEMORY_BYTES};
use crate::clock;
use crate::resources;
use crate::store::WriteScope;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How often an unschedulable pod is retried.
const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) fn run(cluster: &Cluster) {
    let store = &cluster.store;
    let (pods, _) = store.list(resources::PODS, None, |pod| {
        pod.pointer("/spec/nodeName").and_then(Value::as_str).is_none_or(str::is_empty)
            && pod.pointer("/metadata/deletionTimestamp").is_none()
    });
    if pods.is_empty() {
        return;
    }
    let (assigned, _) = store.list(resources::PODS, None, |pod| {
        pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|node| !node.is_empty())
            && !matches!(pod.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
    });
    let mut usage: BTreeMap<&str, (i64, i64, usize)> =
        cluster.nodes.iter().map(|name| (name.as_str(), (0, 0, 0))).collect();
    for pod in &assigned {
        let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default();
        if let Some(entry) = usage.get_mut(node) {
            let (cpu, memory) = nodes::pod_requests(pod);
            entry.0 += cpu;
            entry.1 += memory;
            entry.2 += 1;
        }
    }
    let (node_objects, _) = store.list(resources::NODES, None, |_| true);
    for pod in pods {
        let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        {
            let mut retries = cluster.scheduler_retries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if retries.get(&uid).is_some_and(|next| *next > std::time::Instant::now()) {
                continue;
            }
            retries.insert(uid.clone(), std::time::Instant::now() + RETRY);
        }
        let namespace = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_owned();
        let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let image = pod.pointer("/spec/containers/0/image").and_then(Value::as_str).unwrap_or_default();
        let forced_unschedulable = cluster.scenario.behaviour_for(image).unschedulable;
        let (cpu, memory) = nodes::pod_requests(&pod);
        let selector = pod.pointer("/spec/nodeSelector").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut selector_mismatch = 0;
        let mut best: Option<(&str, usize)> = None;
        for node in &node_objects {
            let node_name = node.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let Some((used_cpu, used_memory, count)) = usage.get(node_name).copied() else {
                continue;
            };
            let labels = node.pointer("/metadata/labels").and_then(Value::as_object);
            let matches = selector.iter().all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value));
            let mut node_reasons = Vec::new();
            if !matches {
                node_reasons.push("node(s) didn't match Pod's node affinity/selector");
                selector_mismatch += 1;
            } else {
                if forced_unschedulable || used_cpu + cpu > NODE_CPU_MILLIS {
                    node_reasons.push("Insufficient cpu");
                }
                if used_memory + memory > NODE_MEMORY_BYTES {
                    node_reasons.push("Insufficient memory");
                }
                if count >= NODE_MAX_PODS {
                    node_reasons.push("Too many pods");
                }
            }
            for reason in &node_reasons {
                *reasons.entry((*reason).to_owned()).or_default() += 1;
            }
            if node_reasons.is_empty() && best.is_none_or(|(_, best_count)| count < best_count) {
                best = Some((node_name, count));
            }
        }
        let total = node_objects.len();
        match best {
            Some((node, _)) => {
                let bound = store.modify(resources::PODS, &namespace, &name, WriteScope::Whole, None, |pod| {
                    pod["spec"]["nodeName"] = json!(node);
                    set_scheduled_condition(pod, "True", None);
                    Ok(())
                });
                if let Ok(bound) = bound {
                    if let Some(entry) = usage.get_mut(node) {
                        entry.0 += cpu;
                        entry.1 += memory;
                        entry.2 += 1;
                    }
                    cluster.events.record(
                        &bound,
                        None,
                        Reporter::Scheduler(node.to_owned()),
                        EventType::Normal,
                        "Scheduled",
                        &format!("Successfully assigned {namespace}/{name} to {node}"),
                    );
                }
            }
            None => {
                let histogram: Vec<String> =
                    reasons.iter().map(|(reason, count)| format!("{count} {reason}")).collect();
                let preemption = if selector_mismatch == total {
                    format!(
                        "preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
                    )
                } else {
                    format!(
                        "preemption: 0/{total} nodes are available: {total} No preemption victims found for incoming pod."
                    )
                };
                let message = format!("0/{total} nodes are available: {}. {preemption}", histogram.join(", "));
                let updated = store.modify(resources::PODS, &namespace, &name, WriteScope::Status, None, |pod| {
                    set_scheduled_condition(pod, "False", Some(("Unschedulable", &message)));
                    Ok(())
                });
                if let Ok(updated) = updated {
                    cluster.events.record(
                        &updated,
                        None,
                        Reporter::Scheduler(cluster.nodes[0].clone()),
                        EventType::Warning,
                        "FailedScheduling",
                        &message,
                    );
                }
            }
        }
    }
}

fn set_scheduled_condition(pod: &mut Value, status: &str, reason: Option<(&str, &str)>) {
    let conditions = pod["status"].as_object_mut().map(|status| status.entry("conditions").or_insert(json!([])));
    let Some(Value::Array(conditions)) = conditions else {
        return;
    };
    let existing = conditions.iter().position(|condition| condition["type"] == "PodScheduled");
    let unchanged = existing.is_some_and(|index| {
        conditions[index]["status"] == status
            && conditions[index]["message"].as_str() == reason.map(|(_, message)| message)
    });
    if unchanged {
        return;
    }
    let mut condition =
        json!({ "type": "PodScheduled", "status": status, "lastProbeTime": null, "lastTransitionTime": clock::now() });
    if let Some((reason, message)) = reason {
        condition["reason"] = json!(reason);
        condition["message"] = json!(message);
    }
    match existing {
        Some(index) => conditions[index] = condition,
        None => conditions.push(condition),
    }
}
