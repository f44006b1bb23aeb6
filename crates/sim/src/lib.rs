//! fledge-sim: a simulated Kubernetes API server with a deployment controller, simulated kubelet behaviours and
//! synthetic Istio telemetry. It is the world fledge is tested in, and the engine of `fledge demo`.
//!
//! ```text
//!  kubectl / kube::Client ──HTTP──▶ api (discovery, CRUD, watch, patch, apply, tables, logs)
//!                                     │            ▲ faults (errors, latency, cut watches, 410)
//!                                     ▼            │
//!                                   store ◀──── cluster: deployment → replicaset → pods, scheduler,
//!                                     │                  kubelet behaviours, garbage collector, events,
//!                                     │                  Istio's gateway controller (Gateway API status)
//!                                     ▼                          │ HTTPRoutes as processed
//!                                   mesh: requests routed by VirtualServices or HTTPRoutes, split by weights
//!                                         ──▶ /metrics (Istio)
//! ```
//!
//! Start one with [`Sim::start`]; it serves until the returned [`Sim`] is shut down or dropped.

pub mod admission;
pub mod api;
pub mod api_error;
pub mod auth;
pub mod behaviour;
pub mod clock;
pub mod cluster;
pub mod faults;
pub mod gateway_api;
pub mod istio;
pub mod mesh;
pub mod patch;
pub mod prometheus;
pub mod resources;
pub mod scenario;
pub mod store;

use api::{ApiState, PodLogs};
use faults::{FaultSettings, Faults};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
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
    /// The TLS listener's certificates could not be made.
    #[error(transparent)]
    Tls(api::tls::TlsError),
}

/// A running simulator.
pub struct Sim {
    api: Arc<ApiState>,
    mesh: Arc<mesh::Mesh>,
    api_url: String,
    /// The same API over TLS, for kubeconfigs with credentials.
    secure_url: String,
    /// The PEM certificate of the CA that signed the TLS listener's certificate.
    ca_pem: String,
    metrics_url: String,
    store: Arc<Store>,
    faults: Arc<Faults>,
    shutdown: watch::Sender<bool>,
    outages: tokio::sync::mpsc::Sender<api::server::Outage>,
    tasks: Vec<JoinHandle<()>>,
}

/// An outage of the API under way.
pub struct ApiOutage {
    back: tokio::sync::oneshot::Receiver<()>,
}

impl ApiOutage {
    /// Resolves when the API listens again.
    pub async fn ended(self) {
        let _ = self.back.await;
    }
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
        let mesh = Arc::new(mesh::Mesh::new(store.clone(), scenario, cluster.gateway_data_plane()));
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
            writes: Default::default(),
            tokens: Default::default(),
            accesses: Default::default(),
        });
        let (shutdown, stopped) = watch::channel(false);
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
        let (outages, outage_requests) = tokio::sync::mpsc::channel(4);
        let tls = api::tls::Tls::generate().map_err(StartError::Tls)?;
        let secure_listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|source| StartError::Listen { address: config.api_address, source })?;
        let secure_address = secure_listener
            .local_addr()
            .map_err(|source| StartError::Listen { address: config.api_address, source })?;
        let server = tokio::spawn(api::server::serve(
            listener,
            Some((secure_listener, tls.acceptor.clone())),
            router,
            stopped.clone(),
            outage_requests,
        ));
        Ok(Sim {
            api: state,
            mesh: served_by,
            api_url: format!("http://{address}"),
            secure_url: format!("https://{secure_address}"),
            ca_pem: tls.ca_pem,
            metrics_url: format!("http://{metrics_address}/metrics"),
            store,
            faults,
            shutdown,
            outages,
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

    /// Makes the API unreachable for `duration`: the listener and every open connection close (clients get
    /// "connection refused"), then it listens again on the same address. Resolves once the API is down; the
    /// [`ApiOutage`] says when it is back.
    pub async fn api_outage(&self, duration: Duration) -> ApiOutage {
        let (down, is_down) = tokio::sync::oneshot::channel();
        let (back, is_back) = tokio::sync::oneshot::channel();
        if self.outages.send(api::server::Outage { duration, down, back }).await.is_ok() {
            let _ = is_down.await;
        }
        ApiOutage { back: is_back }
    }

    /// Every write the API committed, in order, with its client's user agent.
    pub fn writes(&self) -> Vec<api::Write> {
        self.api.writes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Every distinct kind of request ServiceAccounts made so far (verb, group, resource, namespace), with RBAC's
    /// decision: what an audit log would show.
    pub fn accesses(&self) -> Vec<auth::Access> {
        self.api.accesses.accesses()
    }

    /// Requests to services of `namespace` the mesh could not deliver so far, by Envoy's response flag: `NR` (no
    /// route matched), `NC` (the route's subset is not defined, or an HTTPRoute backend is not a Service here), `UH`
    /// (the subset or backend has no Ready pod), `-` (an HTTPRoute rule whose backends all weigh 0 answered 500).
    pub fn undelivered(&self, namespace: &str, flag: &str) -> u64 {
        self.mesh.undelivered(namespace, flag)
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

    /// A kubeconfig that acts as ServiceAccount `namespace/name`, with a bearer token issued now (the account must
    /// exist when the token is used; RBAC decides what it may do). It points at the TLS listener: clients send
    /// credentials over TLS only.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> String {
        use base64::Engine as _;
        let token = self.api.tokens.issue(namespace, name);
        let authority = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fledge-sim\n  cluster:\n    server: {}\n    certificate-authority-data: {authority}\ncontexts:\n- name: {name}\n  context:\n    cluster: fledge-sim\n    user: {name}\n    namespace: {namespace}\ncurrent-context: {name}\nusers:\n- name: {name}\n  user:\n    token: {token}\n",
            self.secure_url
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
