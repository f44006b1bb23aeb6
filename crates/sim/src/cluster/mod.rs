//! The simulated cluster's control plane and nodes: the controllers and kubelets that make objects come alive.
//!
//! ```text
//! every tick (100 ms):  garbage collector ─▶ deployment controller ─▶ replicaset controller
//!                        ─▶ scheduler ─▶ kubelets (pod status, events, logs)
//!                        ─▶ Istio's gateway controller (Gateway API status, the mesh's HTTPRoutes)
//! ```
//!
//! Everything reads and writes through the store, exactly as the API server's clients do.

mod deployment;
pub mod events;
mod garbage;
mod kubelet;
pub mod nodes;
mod replicaset;
mod scheduler;

pub use deployment::template_hash;
pub use replicaset::is_ready as is_ready_pod;

/// The behaviour of a pod: that of its application container (the first that is not Istio's).
pub fn pod_behaviour(scenario: &Scenario, pod: &Value) -> crate::behaviour::Behaviour {
    let image = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|container| container["name"] != "istio-proxy")
        .and_then(|container| container["image"].as_str())
        .unwrap_or_default();
    scenario.behaviour_for(image)
}

/// The workload a pod belongs to, as Istio names it: its ReplicaSet's name without the pod-template-hash (the
/// Deployment's name), or the pod's own name.
pub fn workload_name(pod: &Value) -> String {
    let owner = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|owner| owner["controller"] == true && owner["kind"] == "ReplicaSet")
        .and_then(|owner| owner["name"].as_str());
    let hash = pod.pointer("/metadata/labels/pod-template-hash").and_then(Value::as_str);
    match (owner, hash) {
        (Some(owner), Some(hash)) => owner.strip_suffix(&format!("-{hash}")).unwrap_or(owner).to_owned(),
        (Some(owner), None) => owner.to_owned(),
        _ => pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
    }
}

use crate::api::PodLogs;
use crate::clock::TimeScale;
use crate::gateway_api::controller::GatewayController;
use crate::gateway_api::data_plane::DataPlane;
use crate::scenario::Scenario;
use crate::store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the controllers run.
pub const TICK: Duration = Duration::from_millis(100);

/// The control plane and the kubelets.
pub struct Cluster {
    store: Arc<Store>,
    nodes: Vec<String>,
    scenario: Arc<Scenario>,
    scale: TimeScale,
    events: events::EventRecorder,
    kubelet: Mutex<kubelet::Kubelet>,
    scheduler_retries: Mutex<HashMap<String, Instant>>,
    ip_counter: Mutex<u32>,
    gateways: GatewayController,
}

impl Cluster {
    /// A cluster over `store`, with the scenario's behaviours and time scale.
    pub fn new(store: Arc<Store>, scenario: Arc<Scenario>) -> Cluster {
        let scale = TimeScale::new(scenario.time_scale);
        Cluster {
            events: events::EventRecorder::new(store.clone()),
            gateways: GatewayController::new(store.clone(), &scenario.gateway_api.clone().unwrap_or_default()),
            nodes: nodes::node_names(scenario.nodes.unwrap_or(nodes::DEFAULT_NODE_COUNT)),
            store,
            scenario,
            scale,
            kubelet: Mutex::new(kubelet::Kubelet::default()),
            scheduler_retries: Mutex::new(HashMap::new()),
            ip_counter: Mutex::new(0),
        }
    }

    /// The nodes' names.
    pub fn node_names(&self) -> &[String] {
        &self.nodes
    }

    /// The Gateway API data plane Istio's gateway controller programs, for the mesh to route by.
    pub fn gateway_data_plane(&self) -> Arc<DataPlane> {
        self.gateways.data_plane()
    }

    /// Runs every controller once.
    pub fn tick(&self) {
        garbage::run(self);
        deployment::run(self);
        replicaset::run(self);
        scheduler::run(self);
        kubelet::run(self);
        self.gateways.reconcile(Instant::now());
    }

    /// Runs the controllers every [`TICK`] until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = interval.tick() => {
                    let cluster = self.clone();
                    // The controllers are synchronous and hold the store's lock briefly; keep them off the
                    // runtime's worker threads.
                    if tokio::task::spawn_blocking(move || cluster.tick()).await.is_err() {
                        tracing::error!("fledge-sim controllers panicked");
                        return;
                    }
                }
            }
        }
    }
}

impl PodLogs for Cluster {
    fn lines(&self, pod: &Value, container: &str, previous: bool) -> Option<Vec<String>> {
        let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
        self.kubelet.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).lines(uid, container, previous)
    }
}
