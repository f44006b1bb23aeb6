//! `fledge gate FILE`: deploy the new version and run the crash-loop gate alone.

use crate::adapters::connect;
use crate::cli::ClusterArguments;
use fledge_core::{Outcome, RollbackReason};
use fledge_deploy::{DeployError, Deployer};
use fledge_gate::{GateError, GateOutcome, GatePolicy, GateTarget, PodGate};
use fledge_kube_client::ConnectError;
use std::io::Write as _;
use std::path::Path;

/// Why `fledge gate` could not reach a verdict.
#[derive(Debug, thiserror::Error)]
enum GateCommandError {
    #[error("failed to connect to the cluster")]
    Connect(#[source] ConnectError),
    #[error("failed to deploy the new version")]
    Deploy(#[source] DeployError),
    #[error("failed to run the gate")]
    Gate(#[source] GateError),
}

pub(super) fn run(file: &Path, no_deploy: bool, cluster: &ClusterArguments) -> Outcome {
    let release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    super::block_on(gate(&release, no_deploy, cluster), |error| match error {
        // Nothing was changed when connecting or applying failed.
        GateCommandError::Connect(_) | GateCommandError::Deploy(_) => Outcome::PreflightFailed,
        GateCommandError::Gate(_) => Outcome::InternalError,
    })
}

/// The live version, found as `fledge run` finds it: `service.previousVersion`, or the version the route sends all
/// of the service's traffic to. `None` when the route cannot tell (no route, a split route): the Deployer then looks at
/// the service's Deployments.
async fn live_version(client: kube::Client, release: &fledge_core::Release) -> Option<String> {
    if let Some(previous) = &release.service.previous_version {
        return Some(previous.clone());
    }
    use fledge_core::ports::TrafficRouting;
    let routing = crate::adapters::Routing::connect(client, release).await.ok()?;
    Some(routing.preflight(release, None).await.ok()?.live_version)
}

async fn gate(
    release: &fledge_core::Release,
    no_deploy: bool,
    cluster: &ClusterArguments,
) -> Result<Outcome, GateCommandError> {
    let client = connect(cluster).await.map_err(GateCommandError::Connect)?;
    let target = GateTarget::for_release(release);
    let progress = |line: &str| {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    };
    if !no_deploy {
        let deployer = Deployer::new(client.clone(), &release.service.namespace);
        deployer.check_service(&release.service.name).await.map_err(GateCommandError::Deploy)?;
        let live = live_version(client.clone(), release).await;
        deployer.apply(release, live.as_deref()).await.map_err(GateCommandError::Deploy)?;
        progress(&format!(
            "applied Deployment {}/{} (image {})",
            target.namespace, target.deployment, release.deploy.image
        ));
    }
    let deployment = format!("{}/{}", target.namespace, target.deployment);
    let mut gate = PodGate::start(client, target.clone(), GatePolicy::from(&release.gate))
        .on_progress(move |detail| progress(&format!("gate {deployment}: waiting: {detail}")));
    let outcome = gate.wait_healthy(release.gate.timeout.as_std()).await.map_err(GateCommandError::Gate)?;
    let _ = std::io::stdout()
        .lock()
        .write_all(crate::views::gate::render(release, &target.deployment, &outcome).as_bytes());
    Ok(match outcome {
        GateOutcome::Healthy { .. } => super::SUCCEEDED,
        GateOutcome::Failed { failure, .. } => Outcome::RolledBack(RollbackReason::for_gate_failure(failure.kind)),
    })
}
