//! The simulated nodes: three identical workers with CPU, memory and pod capacity, which the scheduler fills.

use crate::clock;
use crate::resources;
use crate::store::Store;
use serde_json::{Value, json};

/// Nodes a cluster has unless the scenario says otherwise.
pub const DEFAULT_NODE_COUNT: usize = 3;

/// The names of `count` nodes: `sim-node-1` ...
pub fn node_names(count: usize) -> Vec<String> {
    (1..=count.max(1)).map(|index| format!("sim-node-{index}")).collect()
}

/// Allocatable CPU of each node, in millicores.
pub const NODE_CPU_MILLIS: i64 = 4000;
/// Allocatable memory of each node, in bytes (16 GiB).
pub const NODE_MEMORY_BYTES: i64 = 16 * 1024 * 1024 * 1024;
/// Most pods per node.
pub const NODE_MAX_PODS: usize = 110;

/// The internal IP of node `index` (0-based).
pub fn node_ip(index: usize) -> String {
    format!("10.0.{}.{}", (index + 10) / 250, (index + 10) % 250)
}

/// Creates the nodes.
pub fn create_nodes(store: &Store, names: &[String]) {
    for (index, name) in names.iter().enumerate() {
        let now = clock::now();
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": format!("sim-zone-{}", index + 1),
                },
            },
            "spec": { "podCIDR": format!("10.244.{index}.0/24"), "podCIDRs": [format!("10.244.{index}.0/24")] },
            "status": {
                "addresses": [{ "type": "InternalIP", "address": node_ip(index) }, { "type": "Hostname", "address": name }],
                "allocatable": { "cpu": "4", "memory": "16Gi", "pods": NODE_MAX_PODS.to_string(), "ephemeral-storage": "100Gi" },
                "capacity": { "cpu": "4", "memory": "16Gi", "pods": NODE_MAX_PODS.to_string(), "ephemeral-storage": "100Gi" },
                "conditions": [
                    { "type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now },
                    { "type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now },
                    { "type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now },
                    { "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now },
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kernelVersion": "6.1.0-sim",
                    "kubeProxyVersion": "v1.32.0",
                    "kubeletVersion": "v1.32.0",
                    "operatingSystem": "linux",
                    "osImage": "fledge-sim",
                },
            },
        });
        let _ = store.create(resources::NODES, "", node, None);
    }
}

/// CPU in millicores from a Kubernetes quantity (`500m`, `2`, `1.5`).
pub fn cpu_millis(quantity: &Value) -> i64 {
    let text = match quantity {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return 0,
    };
    if let Some(millis) = text.strip_suffix('m') {
        return millis.parse().unwrap_or(0);
    }
    text.parse::<f64>().map_or(0, |cores| (cores * 1000.0).round() as i64)
}

/// Memory in bytes from a Kubernetes quantity (`256Mi`, `1Gi`, `500M`, `1000`).
pub fn memory_bytes(quantity: &Value) -> i64 {
    let text = match quantity {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return 0,
    };
    const SUFFIXES: [(&str, f64); 10] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("m", 1e-3),
        ("", 1.0),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix)
            && let Ok(value) = number.parse::<f64>()
        {
            return (value * factor).round() as i64;
        }
    }
    0
}

/// The CPU (millicores) and memory (bytes) a pod requests: the sum of its containers' requests (limits when
/// requests are absent), as the scheduler counts them.
pub fn pod_requests(pod: &Value) -> (i64, i64) {
    let mut cpu = 0;
    let mut memory = 0;
    for container in pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten() {
        let resources = &container["resources"];
        let requested = |name: &str| {
            resources.pointer(&format!("/requests/{name}")).or_else(|| resources.pointer(&format!("/limits/{name}")))
        };
        cpu += requested("cpu").map_or(0, cpu_millis);
        memory += requested("memory").map_or(0, memory_bytes);
    }
    (cpu, memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_millis(&json!("500m")), 500);
        assert_eq!(cpu_millis(&json!("2")), 2000);
        assert_eq!(cpu_millis(&json!(0.5)), 500);
        assert_eq!(memory_bytes(&json!("256Mi")), 268435456);
        assert_eq!(memory_bytes(&json!("1G")), 1_000_000_000);
        assert_eq!(memory_bytes(&json!(1024)), 1024);
    }
}
