//! Wiring: the adapters of a release, connected to the cluster and Prometheus the options name.

use crate::cli::ClusterArguments;
use crate::cluster::{ConnectError, connect};
use fledge_core::Release;
use fledge_deploy::{ClusterState, Deployer};
use fledge_gate::{KubeHealthGate, Progress};
use fledge_metrics::{PrometheusAnalysis, PrometheusClient};
use fledge_runner::Ports;
use fledge_traffic::{IstioRouting, TrafficRouter};

/// The ports of a release on a real (or simulated) cluster.
pub(crate) type ClusterPorts = Ports<Deployer, KubeHealthGate, IstioRouting, PrometheusAnalysis, ClusterState>;

/// Why the adapters could not be set up. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("failed to connect to the cluster")]
    Connect(#[source] ConnectError),
    #[error("failed to set up traffic routing")]
    Traffic(#[source] fledge_traffic::TrafficError),
    #[error("failed to set up the Prometheus client")]
    Prometheus(#[source] fledge_metrics::ClientError),
}

/// Connects every adapter of `release`; `progress` hears what the gate waits for.
pub(crate) async fn connect_ports(
    release: &Release,
    cluster: &ClusterArguments,
    progress: Option<Progress>,
) -> Result<ClusterPorts, SetupError> {
    let client = connect(cluster).await.map_err(SetupError::Connect)?;
    ports_for(release, client, progress).await
}

/// Every adapter of `release`, on `client`.
pub(crate) async fn ports_for(
    release: &Release,
    client: kube::Client,
    progress: Option<Progress>,
) -> Result<ClusterPorts, SetupError> {
    let namespace = &release.service.namespace;
    let router = TrafficRouter::new(client.clone(), release).await.map_err(SetupError::Traffic)?;
    let prometheus = PrometheusClient::new(&release.prometheus).map_err(SetupError::Prometheus)?;
    let mut gate = KubeHealthGate::new(client.clone());
    if let Some(progress) = progress {
        gate = gate.on_progress(progress);
    }
    Ok(Ports {
        workloads: Deployer::new(client.clone(), namespace),
        gate,
        traffic: IstioRouting::new(router),
        metrics: PrometheusAnalysis::new(prometheus, release.clone()),
        state: ClusterState::new(client, namespace, &release.service.name),
    })
}
