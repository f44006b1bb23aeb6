//! Wiring: the adapters of a release, connected to the cluster and Prometheus the options name.

use crate::cli::ClusterArguments;
use fledge_core::Release;
use fledge_core::Weight;
use fledge_core::ports::{PortError, Retirement, RouteWeights, TrafficPlan, TrafficRouting};
use fledge_core::release::TrafficProvider;
use fledge_deploy::Deployer;
use fledge_gate::{KubeHealthGate, Progress};
use fledge_gateway_api::{GatewayApiRouting, GatewayRouter};
use fledge_kube_client::{Clients, ConnectError, ConnectOptions, WriteFence};
use fledge_metrics::{PrometheusAnalysis, PrometheusClient};
use fledge_runner::Ports;
use fledge_state::ClusterState;
use fledge_traffic::{IstioRouting, TrafficRouter};
use serde_json::Value;

/// The ports of a release on a real (or simulated) cluster.
pub(crate) type ClusterPorts = Ports<Deployer, KubeHealthGate, Routing, PrometheusAnalysis, ClusterState>;

/// The release's traffic provider, behind the one port the runner drives. Each router is several hundred bytes,
/// of different sizes, so both are boxed.
#[derive(Clone)]
pub(crate) enum Routing {
    /// An Istio VirtualService and DestinationRule.
    Istio(Box<IstioRouting>),
    /// A Gateway API HTTPRoute.
    GatewayApi(Box<GatewayApiRouting>),
}

impl Routing {
    /// The provider the manifest names, on `client`.
    pub(crate) async fn connect(client: kube::Client, release: &Release) -> Result<Routing, SetupError> {
        Ok(match &release.traffic.provider {
            TrafficProvider::Istio(_) => Routing::Istio(Box::new(IstioRouting::new(
                TrafficRouter::new(client, release).await.map_err(SetupError::Traffic)?,
            ))),
            TrafficProvider::GatewayApi(_) => Routing::GatewayApi(Box::new(GatewayApiRouting::new(
                GatewayRouter::new(client, release).await.map_err(SetupError::GatewayApi)?,
            ))),
        })
    }
}

impl TrafficRouting for Routing {
    async fn preflight(&self, release: &Release, previous_version: Option<&str>) -> Result<TrafficPlan, PortError> {
        match self {
            Routing::Istio(routing) => routing.preflight(release, previous_version).await,
            Routing::GatewayApi(routing) => routing.preflight(release, previous_version).await,
        }
    }

    async fn add_version(&self, snapshot: &Value, version: &str) -> Result<(), PortError> {
        match self {
            Routing::Istio(routing) => routing.add_version(snapshot, version).await,
            Routing::GatewayApi(routing) => routing.add_version(snapshot, version).await,
        }
    }

    async fn set_weight(&self, snapshot: &Value, version: &str, weight: Weight) -> Result<(), PortError> {
        match self {
            Routing::Istio(routing) => routing.set_weight(snapshot, version, weight).await,
            Routing::GatewayApi(routing) => routing.set_weight(snapshot, version, weight).await,
        }
    }

    async fn weights(&self, snapshot: &Value, version: &str) -> Result<RouteWeights, PortError> {
        match self {
            Routing::Istio(routing) => routing.weights(snapshot, version).await,
            Routing::GatewayApi(routing) => routing.weights(snapshot, version).await,
        }
    }

    async fn restore(&self, snapshot: &Value, version: &str) -> Result<(), PortError> {
        match self {
            Routing::Istio(routing) => routing.restore(snapshot, version).await,
            Routing::GatewayApi(routing) => routing.restore(snapshot, version).await,
        }
    }

    async fn retire_live(&self, snapshot: &Value, version: &str) -> Result<Retirement, PortError> {
        match self {
            Routing::Istio(routing) => routing.retire_live(snapshot, version).await,
            Routing::GatewayApi(routing) => routing.retire_live(snapshot, version).await,
        }
    }
}

/// Why the adapters could not be set up. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("failed to connect to the cluster")]
    Connect(#[source] ConnectError),
    #[error("failed to set up traffic routing")]
    Traffic(#[source] fledge_traffic::TrafficError),
    #[error("failed to set up Gateway API traffic routing")]
    GatewayApi(#[source] fledge_gateway_api::GatewayError),
    #[error("failed to set up the Prometheus client")]
    Prometheus(#[source] fledge_metrics::ClientError),
}

/// How to reach the cluster the options name, as run `run_id` (named in the user agent), behind `fence`.
pub(crate) fn connect_options(cluster: &ClusterArguments, run_id: Option<&str>, fence: WriteFence) -> ConnectOptions {
    ConnectOptions {
        kubeconfig: cluster.kubeconfig.clone(),
        context: cluster.context.clone(),
        run_id: run_id.map(str::to_owned),
        fence,
    }
}

/// A client for the cluster the options name, for commands that take no lock.
pub(crate) async fn connect(cluster: &ClusterArguments) -> Result<kube::Client, ConnectError> {
    fledge_kube_client::connect(&connect_options(cluster, None, WriteFence::new())).await
}

/// Connects every adapter of `release` as run `run_id`; `progress` hears what the gate waits for.
pub(crate) async fn connect_ports(
    release: &Release,
    cluster: &ClusterArguments,
    run_id: Option<&str>,
    progress: Option<Progress>,
) -> Result<ClusterPorts, SetupError> {
    let fence = WriteFence::new();
    let clients = fledge_kube_client::connect_clients(&connect_options(cluster, run_id, fence.clone()))
        .await
        .map_err(SetupError::Connect)?;
    ports_for(release, clients, fence, progress).await
}

/// Every adapter of `release`, on `clients`: the adapters' writes pass `fence` (the release lock's).
pub(crate) async fn ports_for(
    release: &Release,
    clients: Clients,
    fence: WriteFence,
    progress: Option<Progress>,
) -> Result<ClusterPorts, SetupError> {
    let client = clients.fenced;
    let namespace = &release.service.namespace;
    let traffic = Routing::connect(client.clone(), release).await?;
    let prometheus = PrometheusClient::new(&release.prometheus).map_err(SetupError::Prometheus)?;
    let mut gate = KubeHealthGate::new(client.clone());
    if let Some(progress) = progress {
        gate = gate.on_progress(progress);
    }
    Ok(Ports {
        workloads: Deployer::new(client.clone(), namespace),
        gate,
        traffic,
        metrics: PrometheusAnalysis::new(prometheus, release.clone()),
        state: ClusterState::new(client, clients.lock, namespace, &release.service.name, fence),
    })
}
