//! `fledge plan FILE`: the preflight, then what the release would change. Changes nothing.

use crate::adapters::{SetupError, connect_ports};
use crate::cli::ClusterArguments;
use fledge_core::ports::{MetricsAnalyzer, PortError, StateStore, TrafficRouting, Workloads};
use fledge_core::{Outcome, Release};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

/// Why the plan could not be made. Nothing was changed.
#[derive(Debug, thiserror::Error)]
enum PlanError {
    #[error(transparent)]
    Setup(SetupError),
    #[error("failed to read the run record")]
    Record(#[source] PortError),
    #[error("failed to check the traffic route")]
    Traffic(#[source] PortError),
    #[error("failed to check the workloads")]
    Workloads(#[source] PortError),
    #[error("failed to check the metric queries")]
    Metrics(#[source] PortError),
}

pub(super) fn run(file: &Path, cluster: &ClusterArguments) -> Outcome {
    let release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    super::block_on(plan(&release, cluster), |_| Outcome::PreflightFailed)
}

async fn plan(release: &Release, cluster: &ClusterArguments) -> Result<Outcome, PlanError> {
    let ports = connect_ports(release, cluster, None).await.map_err(PlanError::Setup)?;
    let service = &release.service;
    let mut out = String::new();
    if let Some(record) = ports.state.load().await.map_err(PlanError::Record)?
        && record.in_flight()
    {
        if record.is_of(release) {
            let _ = writeln!(
                out,
                "{} {} is in flight at {}: `fledge run` on this manifest resumes it",
                service.name, record.version, record.phase
            );
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            return Ok(super::SUCCEEDED);
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "locked: the release of {} {} is in flight ({}); finish it with its manifest, or `fledge abort`",
            service.name,
            record.version,
            record.phase
        );
        return Ok(Outcome::Locked);
    }
    let traffic =
        ports.traffic.preflight(release, service.previous_version.as_deref()).await.map_err(PlanError::Traffic)?;
    let live = ports.workloads.preflight(release, &traffic.live_version).await.map_err(PlanError::Workloads)?;
    let budget = release.analysis.interval.as_std().max(Duration::from_secs(30));
    let warnings = ports.metrics.preflight(&traffic.live_version, budget).await.map_err(PlanError::Metrics)?;

    let replicas = release.deploy.replicas.unwrap_or(live.replicas);
    let _ = writeln!(
        out,
        "plan: {} {} in {}, replacing {}; preflight passed, nothing was changed",
        service.name, service.version, service.namespace, traffic.live_version
    );
    let _ = writeln!(out, "  live      Deployment {} ({} replicas); {}", live.deployment, live.replicas, traffic.route);
    let _ = writeln!(
        out,
        "  deploy    Deployment {} (image {}, {replicas} replicas, labels app={}, version={}) at 0% traffic",
        release.deployment_name(),
        release.deploy.image,
        service.name,
        service.version
    );
    let _ = writeln!(
        out,
        "  subset    {} (labels version={}) in DestinationRule {}",
        service.version, service.version, release.traffic.destination_rule
    );
    let gate = &release.gate;
    let _ = writeln!(out, "  gate      every pod Ready and stable for {} within {}", gate.stable_for, gate.timeout);
    for (index, stage) in release.stages.iter().enumerate() {
        let label = if index == 0 { "  stages    " } else { "            " };
        let approval = if stage.approval { ", then wait for --approve" } else { "" };
        let _ = writeln!(
            out,
            "{label}{}. {} to {}, {} to {} for {} (checks every {}){approval}",
            index + 1,
            stage.weight,
            service.version,
            stage.weight.complement(),
            traffic.live_version,
            stage.duration,
            release.analysis.interval
        );
    }
    let _ = writeln!(
        out,
        "  promote   100% to {}; {} {} after {}",
        service.version,
        live.deployment,
        release.promote.cleanup.manifest_name(),
        release.promote.scale_down_delay
    );
    let _ = writeln!(
        out,
        "  rollback  the route restored as it is now; {}: {}",
        release.deployment_name(),
        release.rollback.new_version.manifest_name()
    );
    let _ = writeln!(out, "  queries");
    for (name, query) in ports.metrics.queries(&traffic.live_version) {
        let _ = writeln!(out, "    {name}: {query}");
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    let mut stderr = std::io::stderr().lock();
    for warning in warnings {
        let _ = writeln!(stderr, "warning: {warning}");
    }
    Ok(super::SUCCEEDED)
}
