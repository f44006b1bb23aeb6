//! Events as the kubelet and controllers record them (core/v1 Events), with the recorder's deduplication: the same
//! event again raises `count` and `lastTimestamp` instead of creating another object.

use crate::clock;
use crate::resources;
use crate::store::{Store, WriteScope};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Who reports an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// The kubelet on a node.
    Kubelet(String),
    /// The deployment controller.
    DeploymentController,
    /// The replicaset controller.
    ReplicaSetController,
    /// The scheduler (events.k8s.io recorder: `source: {}`, `eventTime`, `action`).
    Scheduler(String),
}

impl Reporter {
    fn component(&self) -> &'static str {
        match self {
            Reporter::Kubelet(_) => "kubelet",
            Reporter::DeploymentController => "deployment-controller",
            Reporter::ReplicaSetController => "replicaset-controller",
            Reporter::Scheduler(_) => "default-scheduler",
        }
    }
}

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Normal.
    Normal,
    /// Warning.
    Warning,
}

/// What makes two events the same: the object, field path, reason, message and reporter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EventKey {
    uid: String,
    field_path: String,
    reason: String,
    message: String,
    component: &'static str,
}

/// Records events into the store.
pub struct EventRecorder {
    store: Arc<Store>,
    recorded: Mutex<HashMap<EventKey, (String, String)>>,
}

impl EventRecorder {
    /// A recorder writing to `store`.
    pub fn new(store: Arc<Store>) -> EventRecorder {
        EventRecorder { store, recorded: Mutex::new(HashMap::new()) }
    }

    /// Records an event about `object` (`field_path` for container events, e.g. `spec.containers{app}`).
    pub fn record(
        &self,
        object: &Value,
        field_path: Option<&str>,
        reporter: Reporter,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        let store = &*self.store;
        let uid = object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_owned();
        let key = EventKey {
            uid: uid.clone(),
            field_path: field_path.unwrap_or_default().to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            component: reporter.component(),
        };
        let mut recorded = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = clock::now();
        if let Some((event_namespace, name)) = recorded.get(&key).cloned() {
            let updated = store.modify(resources::EVENTS, &event_namespace, &name, WriteScope::Main, None, |event| {
                match &reporter {
                    Reporter::Scheduler(_) => {
                        let count = event.pointer("/series/count").and_then(Value::as_i64).unwrap_or(1) + 1;
                        event["series"] = json!({ "count": count, "lastObservedTime": clock::now_micro() });
                    }
                    _ => {
                        let count = event.get("count").and_then(Value::as_i64).unwrap_or(1) + 1;
                        event["count"] = json!(count);
                        event["lastTimestamp"] = json!(now);
                    }
                }
                Ok(())
            });
            if updated.is_ok() {
                return;
            }
        }
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
        let object_name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!("{object_name}.{:x}", nanos as u64);
        let mut involved = json!({
            "apiVersion": api_version,
            "kind": kind,
            "name": object_name,
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": object.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!("")),
        });
        if let Some(field_path) = field_path {
            involved["fieldPath"] = json!(field_path);
        }
        let mut event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": { "name": name, "namespace": namespace },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": match event_type { EventType::Normal => "Normal", EventType::Warning => "Warning" },
        });
        match &reporter {
            Reporter::Scheduler(node) => {
                event["source"] = json!({});
                event["eventTime"] = json!(clock::now_micro());
                event["firstTimestamp"] = Value::Null;
                event["lastTimestamp"] = Value::Null;
                event["action"] = json!(if reason == "Scheduled" { "Binding" } else { "Scheduling" });
                event["reportingComponent"] = json!("default-scheduler");
                event["reportingInstance"] = json!(format!("default-scheduler-{node}"));
            }
            Reporter::Kubelet(node) => {
                event["source"] = json!({ "component": "kubelet", "host": node });
                event["firstTimestamp"] = json!(now);
                event["lastTimestamp"] = json!(now);
                event["count"] = json!(1);
                event["eventTime"] = Value::Null;
                event["reportingComponent"] = json!("kubelet");
                event["reportingInstance"] = json!(node);
            }
            _ => {
                event["source"] = json!({ "component": reporter.component() });
                event["firstTimestamp"] = json!(now);
                event["lastTimestamp"] = json!(now);
                event["count"] = json!(1);
                event["eventTime"] = Value::Null;
                event["reportingComponent"] = json!(reporter.component());
                event["reportingInstance"] = json!("");
            }
        }
        if store.create(resources::EVENTS, &namespace, event, None).is_ok() {
            recorded.insert(key, (namespace, name));
        }
    }
}
