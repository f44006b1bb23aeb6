//! Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for, with the columns and cell values a
//! real API server computes (pod STATUS and RESTARTS as kubectl's printers derive them, AGE as HumanDuration).
//!
//! Over 500 lines on purpose: it is a data table, the columns of every served type as kubectl prints them, with
//! the few cell computations they need.

use super::query::Query;
use crate::clock;
use crate::resources::{self, ResourceId};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

struct Column {
    name: &'static str,
    format: &'static str,
    priority: u8,
    description: &'static str,
}

const fn column(name: &'static str, priority: u8, description: &'static str) -> Column {
    Column { name, format: "", priority, description }
}

const NAME: Column = Column {
    name: "Name",
    format: "name",
    priority: 0,
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
};
const AGE: Column = column(
    "Age",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.",
);

fn columns(resource: ResourceId) -> Vec<Column> {
    match resource {
        resources::PODS => vec![
            NAME,
            column("Ready", 0, "The aggregate readiness state of this pod for accepting traffic."),
            column("Status", 0, "The aggregate status of the containers in this pod."),
            column(
                "Restarts",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            column(
                "IP",
                1,
                "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            column("Node", 1, "NodeName indicates in which node this pod is scheduled."),
            column("Nominated Node", 1, "nominatedNodeName is set only when this pod preempts other pods on the node."),
            column("Readiness Gates", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
        ],
        resources::DEPLOYMENTS => vec![
            NAME,
            column("Ready", 0, "Number of the pod with ready state"),
            column(
                "Up-to-date",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            column(
                "Available",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            AGE,
            column("Containers", 1, "Names of each container in the template."),
            column("Images", 1, "Images referenced by each container in the template."),
            column(
                "Selector",
                1,
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ],
        resources::REPLICA_SETS => vec![
            NAME,
            column("Desired", 0, "Replicas is the number of desired replicas."),
            column("Current", 0, "Replicas is the most recently observed number of replicas."),
            column("Ready", 0, "The number of ready replicas for this replica set."),
            AGE,
            column("Containers", 1, "Names of each container in the template."),
            column("Images", 1, "Images referenced by each container in the template."),
            column("Selector", 1, "Selector is a label query over pods that should match the replica count."),
        ],
        resources::SERVICES => vec![
            NAME,
            column("Type", 0, "type determines how the Service is exposed."),
            column("Cluster-IP", 0, "clusterIP is the IP address of the service and is usually assigned randomly."),
            column(
                "External-IP",
                0,
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            column("Port(s)", 0, "The list of ports that are exposed by this service."),
            AGE,
            column("Selector", 1, "Route service traffic to pods with label keys and values matching this selector."),
        ],
        resources::NAMESPACES => vec![NAME, column("Status", 0, "The status of the namespace"), AGE],
        resources::NODES => vec![
            NAME,
            column("Status", 0, "The status of the node"),
            column("Roles", 0, "The roles of the node"),
            AGE,
            column("Version", 0, "Kubelet Version reported by the node."),
        ],
        resources::CONFIG_MAPS => vec![NAME, column("Data", 0, "Data contains the configuration data."), AGE],
        resources::SECRETS => vec![
            NAME,
            column("Type", 0, "The type of the secret"),
            column("Data", 0, "The number of items in the secret"),
            AGE,
        ],
        resources::EVENTS => vec![
            column("Last Seen", 0, "The time at which the most recent occurrence of this event was recorded."),
            column("Type", 0, "Type of this event (Normal, Warning), new types could be added in the future."),
            column(
                "Reason",
                0,
                "This should be a short, machine understandable string that gives the reason for this event being generated.",
            ),
            column("Object", 0, "The object that this event is about."),
            column("Subobject", 1, "The subobject that this event is about."),
            column("Source", 1, "The component reporting this event."),
            column("Message", 0, "A human-readable description of the status of this operation."),
            column("First Seen", 1, "The time at which the event was first recorded."),
            column("Count", 1, "The number of times this event has occurred."),
            Column { name: "Name", format: "name", priority: 1, description: "The name of this event." },
        ],
        resources::LEASES => vec![
            NAME,
            column("Holder", 0, "HolderIdentity contains the identity of the holder of a current lease."),
            AGE,
        ],
        resources::VIRTUAL_SERVICES => vec![
            NAME,
            column("Gateways", 0, "The names of gateways and sidecars that should apply these routes"),
            column("Hosts", 0, "The destination hosts to which traffic is being sent"),
            AGE,
        ],
        resources::DESTINATION_RULES => {
            vec![NAME, column("Host", 0, "The name of a service from the service registry"), AGE]
        }
        // The Gateway API CRDs' additionalPrinterColumns, which carry no descriptions.
        resources::GATEWAY_CLASSES => {
            vec![NAME, column("Controller", 0, ""), column("Accepted", 0, ""), AGE, column("Description", 1, "")]
        }
        resources::GATEWAYS => {
            vec![NAME, column("Class", 0, ""), column("Address", 0, ""), column("Programmed", 0, ""), AGE]
        }
        resources::HTTP_ROUTES => vec![NAME, column("Hostnames", 0, ""), AGE],
        _ => vec![NAME, AGE],
    }
}

/// A Table of `objects`. `list_revision` is the list's resourceVersion; a single object's table carries the
/// object's own. `with_columns: false` leaves the column definitions out (`null`), as later watch events do.
pub fn table(resource: ResourceId, objects: &[Arc<Value>], query: &Query, list_revision: Option<u64>) -> Value {
    table_with(resource, objects, query, list_revision, true)
}

/// [`table`], choosing whether the column definitions are included.
pub fn table_with(
    resource: ResourceId,
    objects: &[Arc<Value>],
    query: &Query,
    list_revision: Option<u64>,
    with_columns: bool,
) -> Value {
    let now = Timestamp::now();
    let definitions: Vec<Value> = columns(resource)
        .iter()
        .map(|column| {
            json!({
                "name": column.name,
                "type": column_type(resource, column.name),
                "format": column.format,
                "description": column.description,
                "priority": column.priority,
            })
        })
        .collect();
    let include = query.include_object.as_deref().unwrap_or("Metadata");
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = json!({ "cells": cells(resource, object, now) });
            match include {
                "None" => {}
                "Object" => row["object"] = (**object).clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
                    });
                }
            }
            if resource == resources::PODS {
                match object.pointer("/status/phase").and_then(Value::as_str) {
                    Some("Succeeded") => row["conditions"] = json!([{ "type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully." }]),
                    Some("Failed") => row["conditions"] = json!([{ "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed." }]),
                    _ => {}
                }
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    match (list_revision, objects) {
        (Some(revision), _) => metadata["resourceVersion"] = json!(revision.to_string()),
        (None, [object]) => {
            metadata["resourceVersion"] = object.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)
        }
        (None, _) => {}
    }
    let definitions = if with_columns { Value::Array(definitions) } else { Value::Null };
    json!({ "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": definitions, "rows": rows })
}

fn column_type(resource: ResourceId, name: &str) -> &'static str {
    match (resource, name) {
        (resources::REPLICA_SETS, "Desired" | "Current" | "Ready") | (resources::EVENTS, "Count") => "integer",
        (
            resources::VIRTUAL_SERVICES
            | resources::DESTINATION_RULES
            | resources::GATEWAY_CLASSES
            | resources::GATEWAYS
            | resources::HTTP_ROUTES,
            "Age",
        ) => "date",
        _ => "string",
    }
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn integer(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn age(object: &Value, now: Timestamp) -> String {
    clock::parse(text(object, "/metadata/creationTimestamp"))
        .map_or_else(|| "<unknown>".to_owned(), |created| human_duration(now, created))
}

fn cells(resource: ResourceId, object: &Value, now: Timestamp) -> Vec<Value> {
    let name = json!(text(object, "/metadata/name"));
    let age = json!(age(object, now));
    match resource {
        resources::PODS => pod_cells(object, now),
        resources::DEPLOYMENTS => {
            let (containers, images) = containers_and_images(object);
            vec![
                name,
                json!(format!("{}/{}", integer(object, "/status/readyReplicas"), integer(object, "/spec/replicas"))),
                json!(integer(object, "/status/updatedReplicas")),
                json!(integer(object, "/status/availableReplicas")),
                age,
                json!(containers),
                json!(images),
                json!(selector_text(object)),
            ]
        }
        resources::REPLICA_SETS => {
            let (containers, images) = containers_and_images(object);
            vec![
                name,
                json!(integer(object, "/spec/replicas")),
                json!(integer(object, "/status/replicas")),
                json!(integer(object, "/status/readyReplicas")),
                age,
                json!(containers),
                json!(images),
                json!(selector_text(object)),
            ]
        }
        resources::SERVICES => {
            let ports: Vec<String> = object
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|port| format!("{}/{}", port["port"], port["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            let selector = object.pointer("/spec/selector").and_then(Value::as_object).map(|labels| {
                labels
                    .iter()
                    .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            vec![
                name,
                json!(text(object, "/spec/type")),
                json!(non_empty(object.pointer("/spec/clusterIPs/0").and_then(Value::as_str).unwrap_or_default())),
                json!("<none>"),
                json!(if ports.is_empty() { "<none>".to_owned() } else { ports.join(",") }),
                age,
                json!(selector.filter(|selector| !selector.is_empty()).unwrap_or_else(|| "<none>".into())),
            ]
        }
        resources::NAMESPACES => vec![name, json!(text(object, "/status/phase")), age],
        resources::NODES => {
            vec![name, json!("Ready"), json!("<none>"), age, json!(text(object, "/status/nodeInfo/kubeletVersion"))]
        }
        resources::CONFIG_MAPS => {
            let count = ["data", "binaryData"]
                .iter()
                .map(|field| object.get(*field).and_then(Value::as_object).map_or(0, |data| data.len()))
                .sum::<usize>();
            vec![name, json!(count), age]
        }
        resources::SECRETS => {
            let count = object.get("data").and_then(Value::as_object).map_or(0, |data| data.len());
            vec![name, json!(text(object, "/type")), json!(count), age]
        }
        resources::EVENTS => {
            let since = |pointer: &str| clock::parse(text(object, pointer)).map(|time| human_duration(now, time));
            let first_seen =
                since("/firstTimestamp").or_else(|| since("/eventTime")).unwrap_or_else(|| "<unknown>".to_owned());
            let last_seen = since("/lastTimestamp").unwrap_or_else(|| first_seen.clone());
            let kind = text(object, "/involvedObject/kind").to_lowercase();
            let involved_name = text(object, "/involvedObject/name");
            let target = if involved_name.is_empty() { kind } else { format!("{kind}/{involved_name}") };
            let source = match (text(object, "/source/component"), text(object, "/source/host")) {
                ("", _) => [text(object, "/reportingComponent"), text(object, "/reportingInstance")]
                    .iter()
                    .filter(|part| !part.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                (component, "") => component.to_owned(),
                (component, host) => format!("{component}, {host}"),
            };
            let count = integer(object, "/count").max(1);
            vec![
                json!(last_seen),
                json!(text(object, "/type")),
                json!(text(object, "/reason")),
                json!(target),
                json!(text(object, "/involvedObject/fieldPath")),
                json!(source),
                json!(text(object, "/message").trim()),
                json!(first_seen),
                json!(count),
                name,
            ]
        }
        resources::LEASES => vec![name, json!(text(object, "/spec/holderIdentity")), age],
        resources::VIRTUAL_SERVICES => {
            let gateways = object.pointer("/spec/gateways").map_or(Value::Null, |value| json!(value.to_string()));
            let hosts = object.pointer("/spec/hosts").map_or(Value::Null, |value| json!(value.to_string()));
            vec![name, gateways, hosts, age]
        }
        resources::DESTINATION_RULES => vec![name, object.pointer("/spec/host").cloned().unwrap_or(Value::Null), age],
        resources::GATEWAY_CLASSES => vec![
            name,
            object.pointer("/spec/controllerName").cloned().unwrap_or(Value::Null),
            condition_status(object, "Accepted"),
            age,
            object.pointer("/spec/description").cloned().unwrap_or(Value::Null),
        ],
        resources::GATEWAYS => {
            let addresses: Vec<&str> = object
                .pointer("/status/addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|address| address.get("value").and_then(Value::as_str))
                .collect();
            let address = if addresses.is_empty() { Value::Null } else { json!(addresses.join(" ")) };
            vec![
                name,
                object.pointer("/spec/gatewayClassName").cloned().unwrap_or(Value::Null),
                address,
                condition_status(object, "Programmed"),
                age,
            ]
        }
        resources::HTTP_ROUTES => {
            let hostnames = object.pointer("/spec/hostnames").map_or(Value::Null, |value| json!(value.to_string()));
            vec![name, hostnames, age]
        }
        _ => vec![name, age],
    }
}

/// `.status.conditions[?(@.type=="TYPE")].status`, as a CRD printer column reads it.
fn condition_status(object: &Value, kind: &str) -> Value {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|condition| condition["type"] == kind)
        .and_then(|condition| condition.get("status").cloned())
        .unwrap_or(Value::Null)
}

fn non_empty(text: &str) -> &str {
    if text.is_empty() { "<none>" } else { text }
}

fn containers_and_images(object: &Value) -> (String, String) {
    let containers =
        object.pointer("/spec/template/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let names: Vec<&str> = containers.iter().filter_map(|container| container["name"].as_str()).collect();
    let images: Vec<&str> = containers.iter().filter_map(|container| container["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

fn selector_text(object: &Value) -> String {
    let labels: Vec<String> = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels.iter().map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default())).collect()
        })
        .unwrap_or_default();
    if labels.is_empty() { "<none>".into() } else { labels.join(",") }
}

/// The waiting reason of one container of a pod, if it is waiting.
pub fn waiting_reason(pod: &Value, container: &str) -> Option<String> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .flat_map(|list| pod["status"][list].as_array().cloned().unwrap_or_default())
        .find(|status| status["name"] == container)
        .and_then(|status| status.pointer("/state/waiting/reason").and_then(Value::as_str).map(str::to_owned))
}

/// READY, STATUS, RESTARTS as kubectl's pod printer computes them.
fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let init_specs: Vec<&Value> =
        spec["initContainers"].as_array().map(|list| list.iter().collect()).unwrap_or_default();
    let restartable = |name: &str| {
        init_specs.iter().any(|container| container["name"] == name && container["restartPolicy"] == "Always")
    };
    let mut total = spec["containers"].as_array().map_or(0, Vec::len)
        + init_specs.iter().filter(|container| container["restartPolicy"] == "Always").count();
    let mut ready = 0;
    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_restart: Option<Timestamp> = None;
    let mut reason = status["reason"]
        .as_str()
        .filter(|reason| !reason.is_empty())
        .or_else(|| status["phase"].as_str())
        .unwrap_or("Pending")
        .to_owned();
    let later = |current: Option<Timestamp>, candidate: Option<Timestamp>| match (current, candidate) {
        (Some(current), Some(candidate)) if candidate > current => Some(candidate),
        (None, candidate) => candidate,
        (current, _) => current,
    };

    let init_statuses = status["initContainerStatuses"].as_array().cloned().unwrap_or_default();
    let mut initializing = false;
    for (index, container) in init_statuses.iter().enumerate() {
        let name = container["name"].as_str().unwrap_or_default();
        let count = container["restartCount"].as_i64().unwrap_or(0);
        restarts += count;
        let finished = clock::parse(text(container, "/lastState/terminated/finishedAt"));
        last_restart = later(last_restart, finished);
        if restartable(name) {
            restartable_restarts += count;
            last_restartable_restart = later(last_restartable_restart, finished);
        }
        let terminated = container.pointer("/state/terminated");
        let waiting_reason = text(container, "/state/waiting/reason");
        if terminated.is_some_and(|terminated| terminated["exitCode"].as_i64() == Some(0)) {
            continue;
        }
        if restartable(name) && container["started"].as_bool() == Some(true) {
            if container["ready"].as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(terminated) = terminated {
            reason = match terminated["reason"].as_str().filter(|reason| !reason.is_empty()) {
                Some(terminated_reason) => format!("Init:{terminated_reason}"),
                None => match terminated["signal"].as_i64().filter(|signal| *signal != 0) {
                    Some(signal) => format!("Init:Signal:{signal}"),
                    None => format!("Init:ExitCode:{}", terminated["exitCode"].as_i64().unwrap_or(0)),
                },
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{index}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|condition| condition["type"] == "Initialized" && condition["status"] == "True");
    if !initializing || initialized {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        let statuses = status["containerStatuses"].as_array().cloned().unwrap_or_default();
        for container in statuses.iter().rev() {
            restarts += container["restartCount"].as_i64().unwrap_or(0);
            last_restart = later(last_restart, clock::parse(text(container, "/lastState/terminated/finishedAt")));
            let waiting_reason = text(container, "/state/waiting/reason");
            let terminated = container.pointer("/state/terminated");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_owned();
            } else if let Some(terminated) = terminated {
                reason = match terminated["reason"].as_str().filter(|reason| !reason.is_empty()) {
                    Some(terminated_reason) => terminated_reason.to_owned(),
                    None => match terminated["signal"].as_i64().filter(|signal| *signal != 0) {
                        Some(signal) => format!("Signal:{signal}"),
                        None => format!("ExitCode:{}", terminated["exitCode"].as_i64().unwrap_or(0)),
                    },
                };
            } else if container["ready"].as_bool() == Some(true) && container.pointer("/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|condition| condition["type"] == "Ready" && condition["status"] == "True");
            reason = if pod_ready { "Running".into() } else { "NotReady".into() };
        }
    }
    let terminal = matches!(status["phase"].as_str(), Some("Succeeded" | "Failed"));
    if pod.pointer("/metadata/deletionTimestamp").is_some() && status["reason"] == "NodeLost" {
        reason = "Unknown".into();
    } else if pod.pointer("/metadata/deletionTimestamp").is_some() && !terminal {
        reason = "Terminating".into();
    }
    let restarts_text = match last_restart {
        Some(when) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now, when)),
        _ => restarts.to_string(),
    };
    total = total.max(ready);
    let ip = status.pointer("/podIPs/0/ip").and_then(Value::as_str).unwrap_or_default();
    vec![
        json!(text(pod, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        json!(age(pod, now)),
        json!(non_empty(ip)),
        json!(non_empty(text(pod, "/spec/nodeName"))),
        json!(non_empty(text(pod, "/status/nominatedNodeName"))),
        json!("<none>"),
    ]
}

/// kubectl's HumanDuration of the time since `then`.
pub fn human_duration(now: Timestamp, then: Timestamp) -> String {
    let seconds = now.as_second() - then.as_second();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let rest = seconds % 60;
        return if rest == 0 { format!("{minutes}m") } else { format!("{minutes}m{rest}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let rest = minutes % 60;
        return if rest == 0 { format!("{hours}h") } else { format!("{hours}h{rest}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let rest = hours % 24;
        return if rest == 0 { format!("{}d", hours / 24) } else { format!("{}d{rest}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{days}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_api_tables_have_the_crds_columns() {
        let now: Timestamp = "2026-01-10T00:01:00Z".parse().unwrap();
        let gateway = json!({
            "metadata": { "name": "bookinfo-gateway", "creationTimestamp": "2026-01-10T00:00:00Z" },
            "spec": { "gatewayClassName": "istio" },
            "status": { "addresses": [{ "type": "Hostname", "value": "bookinfo-gateway-istio.bookinfo.svc.cluster.local" }],
                        "conditions": [{ "type": "Accepted", "status": "True" }, { "type": "Programmed", "status": "True" }] },
        });
        assert_eq!(
            cells(resources::GATEWAYS, &gateway, now),
            vec![
                json!("bookinfo-gateway"),
                json!("istio"),
                json!("bookinfo-gateway-istio.bookinfo.svc.cluster.local"),
                json!("True"),
                json!("60s")
            ]
        );
        let names: Vec<&str> = columns(resources::GATEWAYS).iter().map(|column| column.name).collect();
        assert_eq!(names, ["Name", "Class", "Address", "Programmed", "Age"]);
        let route = json!({ "metadata": { "name": "reviews" }, "spec": { "hostnames": ["bookinfo.example.com"] } });
        assert_eq!(cells(resources::HTTP_ROUTES, &route, now)[1], json!("[\"bookinfo.example.com\"]"));
        let class =
            json!({ "metadata": { "name": "istio" }, "spec": { "controllerName": "istio.io/gateway-controller" } });
        assert_eq!(
            cells(resources::GATEWAY_CLASSES, &class, now)[1..3],
            [json!("istio.io/gateway-controller"), Value::Null]
        );
        assert_eq!(column_type(resources::HTTP_ROUTES, "Age"), "date");
    }

    #[test]
    fn human_durations_match_kubectl() {
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let ago = |seconds: i64| human_duration(now, Timestamp::from_second(now.as_second() - seconds).unwrap());
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(150), "2m30s");
        assert_eq!(ago(600), "10m");
        assert_eq!(ago(3 * 3600 + 120), "3h2m");
        assert_eq!(ago(30 * 3600), "30h");
        assert_eq!(ago(3 * 86400 + 3600), "3d1h");
        assert_eq!(ago(-5), "<invalid>");
    }

    #[test]
    fn crash_looping_pods_show_the_waiting_reason_and_restarts() {
        let now: Timestamp = "2026-01-10T00:01:00Z".parse().unwrap();
        let pod = json!({
            "metadata": { "name": "web-1", "creationTimestamp": "2026-01-10T00:00:00Z" },
            "spec": { "containers": [{ "name": "app" }, { "name": "istio-proxy" }], "nodeName": "node-1" },
            "status": { "phase": "Running", "containerStatuses": [
                { "name": "app", "ready": false, "restartCount": 3,
                  "state": { "waiting": { "reason": "CrashLoopBackOff" } },
                  "lastState": { "terminated": { "exitCode": 1, "reason": "Error", "finishedAt": "2026-01-10T00:00:50Z" } } },
                { "name": "istio-proxy", "ready": true, "restartCount": 0, "state": { "running": { "startedAt": "2026-01-10T00:00:05Z" } } }
            ] }
        });
        let cells = pod_cells(&pod, now);
        assert_eq!(
            cells[..5],
            [json!("web-1"), json!("1/2"), json!("CrashLoopBackOff"), json!("3 (10s ago)"), json!("60s")]
        );
        assert_eq!(cells[6], json!("node-1"));
    }

    #[test]
    fn init_containers_and_deletion_change_the_status() {
        let now: Timestamp = "2026-01-10T00:01:00Z".parse().unwrap();
        let mut pod = json!({
            "metadata": { "name": "p", "creationTimestamp": "2026-01-10T00:00:00Z" },
            "spec": { "initContainers": [{ "name": "init" }], "containers": [{ "name": "app" }] },
            "status": { "phase": "Pending", "initContainerStatuses": [
                { "name": "init", "restartCount": 2, "state": { "waiting": { "reason": "CrashLoopBackOff" } } }
            ], "containerStatuses": [{ "name": "app", "restartCount": 0, "state": { "waiting": { "reason": "PodInitializing" } } }] }
        });
        assert_eq!(pod_cells(&pod, now)[2], json!("Init:CrashLoopBackOff"));
        pod["metadata"]["deletionTimestamp"] = json!("2026-01-10T00:01:30Z");
        assert_eq!(pod_cells(&pod, now)[2], json!("Terminating"));
    }
}
