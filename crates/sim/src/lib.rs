//! fledge-sim: a simulated Kubernetes API server with a deployment controller, simulated kubelet behaviours and
//! synthetic Istio telemetry. It is the world fledge is tested in, and the engine of `fledge demo`.
//!
//! ```text
//!  kubectl / kube::Client ──HTTP──▶ api (discovery, CRUD, watch, patch, apply, tables, logs)
//!                                     │            ▲ faults (errors, latency, cut watches, 410)
//!                                     ▼            │
//!                                   store ◀──── cluster: deployment → replicaset → pods, scheduler,
//!                                     │                  kubelet behaviours, garbage collector, events
//!                                     ▼
//!                                   mesh: requests split by VirtualService weights ──▶ /metrics (Istio)
//! ```
//!
//! Start one with [`Sim::start`]; it serves until the returned [`Sim`] is shut down or dropped.

pub mod admission;
pub mod api;
pub mod behaviour;
pub mod clock;
pub mod cluster;
pub mod faults;
pub mod istio;
pub mod mesh;
pub mod patch;
pub mod prometheus;
pub mod resources;
pub mod scenario;
pub mod status;
pub mod store;

use api::{ApiState, PodLogs};
use faults::{FaultSettings, Faults};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where the Kubernetes API listens (port 0: any free port).
    pub api_address: SocketAddr,
    /// Where the mesh's Istio metrics are served, on `/metrics` (port 0: any free port).
    pub metrics_address: SocketAddr,
    /// Faults in force from the start.
    pub faults: FaultSettings,
    /// Changes kept for watches to resume from; older resumes get 410 Gone.
    pub history_limit: usize,
    /// Admission settings (the Istio weight rule).
    pub admission: admission::AdmissionConfig,
    /// Behaviours, traffic and objects to create at start.
    pub scenario: scenario::Scenario,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            api_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            faults: FaultSettings::default(),
            history_limit: 4_000,
            admission: admission::AdmissionConfig::default(),
            scenario: scenario::Scenario::default(),
        }
    }
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Objects of the scenario could not be created.
    #[error("failed to create the scenario's objects: {}", problems.join("; "))]
    Seed {
        /// One line per object that failed.
        problems: Vec<String>,
    },
    /// The listening socket could not be opened.
    #[error("failed to listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// A running simulator.
pub struct Sim {
    api: Arc<ApiState>,
    mesh: Arc<mesh::Mesh>,
    api_url: String,
    metrics_url: String,
    store: Arc<Store>,
    faults: Arc<Faults>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sim {
    /// Starts the API server and the simulated cluster.
    pub async fn start(config: SimConfig) -> Result<Sim, StartError> {
        let mut admission = config.admission;
        if let Some(rule) = &config.scenario.istio_weight_rule {
            admission.istio_weight_rule =
                if rule == "non-negative" { istio::WeightRule::NonNegative } else { istio::WeightRule::SumTo100 };
        }
        let store = Arc::new(Store::new(config.history_limit, admission));
        let faults = Arc::new(Faults::new(config.scenario.faults.clone().unwrap_or_else(|| config.faults.clone())));
        let listener = TcpListener::bind(config.api_address)
            .await
            .map_err(|source| StartError::Listen { address: config.api_address, source })?;
        let address =
            listener.local_addr().map_err(|source| StartError::Listen { address: config.api_address, source })?;
        let node_names =
            cluster::nodes::node_names(config.scenario.nodes.unwrap_or(cluster::nodes::DEFAULT_NODE_COUNT));
        seed_cluster(&store, &node_names);
        let mut problems = Vec::new();
        for object in &config.scenario.objects {
            if let Err(error) = create_seed_object(&store, object) {
                problems.push(error);
            }
        }
        if !problems.is_empty() {
            return Err(StartError::Seed { problems });
        }
        let scenario = Arc::new(config.scenario.clone());
        let cluster = Arc::new(cluster::Cluster::new(store.clone(), scenario.clone()));
        let mesh = Arc::new(mesh::Mesh::new(store.clone(), scenario));
        let metrics_listener = TcpListener::bind(config.metrics_address)
            .await
            .map_err(|source| StartError::Listen { address: config.metrics_address, source })?;
        let metrics_address = metrics_listener
            .local_addr()
            .map_err(|source| StartError::Listen { address: config.metrics_address, source })?;
        let logs: Arc<dyn PodLogs> = cluster.clone();
        let state = Arc::new(ApiState {
            store: store.clone(),
            faults: faults.clone(),
            logs,
            requests: Default::default(),
            expired_watches: Default::default(),
        });
        let (shutdown, mut stopped) = watch::channel(false);
        let controllers = tokio::spawn(cluster.run(shutdown.subscribe()));
        let traffic = tokio::spawn(mesh.clone().run(shutdown.subscribe()));
        let served_by = mesh.clone();
        let metrics_router = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let mesh = mesh.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        mesh.telemetry.render(),
                    )
                }
            }),
        );
        let mut metrics_stopped = shutdown.subscribe();
        let metrics_server = tokio::spawn(async move {
            let serve = axum::serve(metrics_listener, metrics_router).with_graceful_shutdown(async move {
                let _ = metrics_stopped.changed().await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "fledge-sim metrics server stopped");
            }
        });
        let router = api::router(state.clone());
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "fledge-sim API server stopped");
            }
        });
        Ok(Sim {
            api: state,
            mesh: served_by,
            api_url: format!("http://{address}"),
            metrics_url: format!("http://{metrics_address}/metrics"),
            store,
            faults,
            shutdown,
            tasks: vec![server, controllers, traffic, metrics_server],
        })
    }

    /// The base URL of the Kubernetes API, e.g. `http://127.0.0.1:38211`.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The URL of the Istio metrics, e.g. `http://127.0.0.1:38212/metrics`.
    pub fn metrics_url(&self) -> &str {
        &self.metrics_url
    }

    /// The object store, for tests that inspect or arrange the cluster directly.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Kubernetes API requests served so far (each watch counts once; `/sim/` admin requests are not counted).
    pub fn requests_served(&self) -> u64 {
        self.api.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Watches answered 410 Gone so far, because the revision they resumed from was compacted away.
    pub fn expired_watches(&self) -> u64 {
        self.api.expired_watches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the pods of `workload` (a Deployment name) in `namespace` served through the mesh so far.
    pub fn served(&self, namespace: &str, workload: &str) -> mesh::Served {
        self.mesh.served(namespace, workload)
    }

    /// The fault layer.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// A kubeconfig (YAML) pointing at this simulator, context `fledge-sim`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fledge-sim\n  cluster:\n    server: {}\ncontexts:\n- name: fledge-sim\n  context:\n    cluster: fledge-sim\n    user: fledge-sim\n    namespace: default\ncurrent-context: fledge-sim\nusers:\n- name: fledge-sim\n  user: {{}}\n",
            self.api_url
        )
    }

    /// Stops serving and waits for the server and controllers to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.faults.cut_watches();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The objects every cluster starts with: the system namespaces and three nodes.
fn seed_cluster(store: &Store, nodes: &[String]) {
    for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let _ = store.create(resources::NAMESPACES, "", serde_json::json!({ "metadata": { "name": namespace } }), None);
    }
    cluster::nodes::create_nodes(store, nodes);
}

/// Creates one object of a scenario, by its apiVersion and kind.
fn create_seed_object(store: &Store, object: &Value) -> Result<(), String> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let Some((resource, resource_type)) = resources::all()
        .find(|(_, resource)| resource.kind == kind && resource.group == group && resource.versions.contains(&version))
    else {
        return Err(format!("{api_version} {kind} {name}: this kind is not served"));
    };
    let namespace = if resource_type.namespaced {
        object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default")
    } else {
        ""
    };
    store
        .create(resource, namespace, object.clone(), Some("fledge-sim"))
        .map(|_| ())
        .map_err(|error| format!("{kind} {name}: {}", error.message))
}
