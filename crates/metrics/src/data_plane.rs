//! Which Istio proxies report the service's requests, when the manifest does not say (`analysis.dataPlane`): the
//! one Prometheus shows for the live version. Sidecars report at the server (`reporter="destination"`); in ambient
//! mode the service's waypoint does (`reporter="waypoint"`). Without either series, sidecars are assumed.

use crate::prometheus::{Answer, PrometheusClient};
use crate::queries::{Workload, escape};
use fledge_core::release::{DataPlane, Release};
use tokio::time::Instant;

/// The data plane the manifest names, or the one whose reporter has series for `live_version` in Prometheus now.
pub async fn detect(
    client: &PrometheusClient,
    release: &Release,
    live_version: Option<&str>,
    deadline: Instant,
) -> DataPlane {
    if let Some(data_plane) = release.analysis.data_plane {
        return data_plane;
    }
    let service = &release.service;
    let Some(live) = live_version.or(service.previous_version.as_deref()) else { return DataPlane::Sidecar };
    let workload = Workload::of(&service.namespace, &service.name, live);
    for data_plane in [DataPlane::Sidecar, DataPlane::Ambient] {
        let query = format!(
            r#"count(istio_requests_total{{reporter="{}",destination_workload_namespace="{}",destination_workload="{}"}})"#,
            data_plane.reporter(),
            escape(&workload.namespace),
            escape(&workload.deployment)
        );
        if let Ok(answered) = client.instant(&query, deadline).await
            && matches!(answered.answer, Answer::One(count) if count > 0.0)
        {
            return data_plane;
        }
    }
    DataPlane::Sidecar
}
