//! `fledge status FILE`: the run record of the service's release and its route's weights now.

use crate::adapters::{SetupError, connect_ports};
use crate::cli::{ClusterArguments, OutputFormat};
use fledge_core::ports::{PortError, StateStore, TrafficRouting};
use fledge_core::{Outcome, Phase, Release};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
enum StatusError {
    #[error(transparent)]
    Setup(SetupError),
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
    let ports = connect_ports(release, cluster, None).await.map_err(StatusError::Setup)?;
    let record = ports.state.load().await.map_err(StatusError::Record)?;
    let weights = match &record {
        Some(record) => ports.traffic.weights(&record.traffic_snapshot, &record.version).await.ok(),
        None => None,
    };
    let mut out = String::new();
    match output {
        OutputFormat::Json => {
            let json = serde_json::json!({
                "record": record,
                "route": weights.map(|weights| serde_json::json!({
                    "live": weights.live, "new": weights.new, "share": weights.share
                })),
            });
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&json).expect("status serializes"));
        }
        OutputFormat::Text => match &record {
            None => {
                let _ = writeln!(out, "{} in {}: no release recorded", release.service.name, release.service.namespace);
            }
            Some(record) => {
                let state = match record.outcome {
                    Some(outcome) => format!("finished: {outcome}"),
                    None => format!("in flight: {}", record.phase),
                };
                let _ = writeln!(
                    out,
                    "{} in {}: {} replacing {}, {state}",
                    record.service, record.namespace, record.version, record.previous_version
                );
                if let (Phase::Stage { index }, Some(tally)) = (record.phase, &record.tally) {
                    let _ = writeln!(
                        out,
                        "  stage     {} of {}: {}s counted, {}s held, {} passed and {} failed rounds",
                        index + 1,
                        release.stages.len(),
                        record.stage_elapsed_seconds,
                        record.stage_held_seconds,
                        tally.passed_rounds,
                        tally.failed_rounds
                    );
                }
                if let Some(weights) = weights {
                    let _ = writeln!(
                        out,
                        "  route     {} takes {} and {} takes {} of {}",
                        record.version, weights.new, record.previous_version, weights.live, weights.share
                    );
                }
                if !record.detail.is_empty() {
                    let _ = writeln!(out, "  why       {}", record.detail);
                }
                let _ = writeln!(
                    out,
                    "  run       {}, started {}, updated {}",
                    record.run_id, record.started_at, record.updated_at
                );
                if record.in_flight() {
                    let _ = writeln!(
                        out,
                        "  next      `fledge run` with the manifest of {} resumes it; `fledge abort` rolls it back",
                        record.version
                    );
                }
            }
        },
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(super::SUCCEEDED)
}
