//! `fledge status FILE`: the run record of the service's release and its route's weights now. Reads the record
//! first; only when there is one does it look at the route (no Prometheus, no traffic discovery otherwise).

use crate::adapters::{Routing, connect_options};
use crate::cli::{ClusterArguments, OutputFormat};
use crate::views::status::Status;
use fledge_core::ports::{PortError, StateStore, TrafficRouting};
use fledge_core::{Outcome, Release};
use fledge_kube_client::{ConnectError, WriteFence};
use fledge_state::ClusterState;
use std::io::Write as _;
use std::path::Path;

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
enum StatusError {
    #[error("failed to connect to the cluster")]
    Connect(#[source] ConnectError),
    #[error("failed to read the run record")]
    Record(#[source] PortError),
}

pub(super) fn run(file: &Path, output: OutputFormat, cluster: &ClusterArguments) -> Outcome {
    let release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    super::block_on(status(&release, output, cluster), |_| Outcome::PreflightFailed)
}

async fn status(release: &Release, output: OutputFormat, cluster: &ClusterArguments) -> Result<Outcome, StatusError> {
    let fence = WriteFence::new();
    let clients = fledge_kube_client::connect_clients(&connect_options(cluster, None, fence.clone()))
        .await
        .map_err(StatusError::Connect)?;
    let namespace = &release.service.namespace;
    let state = ClusterState::new(clients.fenced.clone(), clients.lock, namespace, &release.service.name, fence);
    let record = state.load().await.map_err(StatusError::Record)?;
    let weights = match &record {
        Some(record) => match Routing::connect(clients.fenced, release).await {
            Ok(routing) => routing.weights(&record.traffic_snapshot, &record.version).await.ok(),
            Err(_) => None,
        },
        None => None,
    };
    let status = Status { release, record, weights };
    let text = match output {
        OutputFormat::Json => status.json(),
        OutputFormat::Text => status.text(),
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(super::SUCCEEDED)
}
