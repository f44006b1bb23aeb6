//! `fledge wait FILE`: follows the run record of the manifest's release, run by another process (a Kubernetes Job,
//! another pipeline step), until it ends, and exits with that release's exit code.
//!
//! ```text
//!  every second: load the run record ──not this release yet──▶ "waiting for the release to start"
//!                     │ this release (version and manifest digest)
//!                     ├─ a new phase ──▶ the progress line `fledge run` prints for it
//!                     ├─ an outcome, or an approval stop ──▶ the result line; exit with its code
//!                     ├─ no process holds the lock: a rollback that failed ──▶ exit 20, as its run did;
//!                     │                              otherwise a warning: it waits for `fledge run` to resume it
//!                     └─ --timeout passed ──▶ exit 5 (locked): the release is still in flight in another process
//! ```

use crate::adapters::connect_options;
use crate::cli::{ClusterArguments, LogFormat};
use crate::progress::EventWriter;
use fledge_core::ports::{PortError, StateStore};
use fledge_core::state::RunRecord;
use fledge_core::{Duration, Outcome, Phase, Release, RollbackReason};
use fledge_kube_client::{ConnectError, WriteFence};
use fledge_runner::Event;
use fledge_state::ClusterState;
use std::io::Write as _;
use std::path::Path;

/// How often the run record is read.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Why `fledge wait` could not follow the release.
#[derive(Debug, thiserror::Error)]
enum WaitError {
    #[error("failed to connect to the cluster")]
    Connect(#[source] ConnectError),
}

pub(super) fn run(
    file: &Path,
    timeout: Option<Duration>,
    cluster: &ClusterArguments,
    log_format: LogFormat,
) -> Outcome {
    let release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    super::block_on(wait(&release, timeout, cluster, log_format), |_| Outcome::PreflightFailed)
}

/// The events `fledge run` reports when its release enters the record's phase, as far as the record tells them;
/// `before` is the phase seen last (a short phase may pass between two reads).
fn events_of(release: &Release, record: &RunRecord, before: Option<Phase>) -> Vec<Event> {
    let promoted_said = matches!(before, Some(Phase::ScaleDownDelay | Phase::Cleanup));
    match record.phase {
        Phase::Preflight => Vec::new(),
        Phase::Deploy => vec![Event::Deploying { deployment: release.deployment_name() }],
        Phase::Gate => vec![Event::GateWaiting { timeout: release.gate.timeout.as_std() }],
        Phase::Stage { index } => {
            let stage = release.stages[index];
            vec![Event::StageStarted { index, weight: stage.weight, duration: stage.duration.as_std() }]
        }
        Phase::AwaitingApproval { index } => vec![Event::StagePassed { index }, Event::AwaitingApproval { index }],
        Phase::Promote => Vec::new(),
        Phase::Cleanup if promoted_said => Vec::new(),
        Phase::Cleanup => vec![Event::Promoted],
        Phase::ScaleDownDelay => {
            vec![Event::Promoted, Event::ScaleDownDelay { delay: release.promote.scale_down_delay.as_std() }]
        }
        Phase::RollingBack => vec![Event::RollingBack {
            reason: record.rollback_reason.unwrap_or(RollbackReason::Error),
            detail: record.detail.clone(),
        }],
        Phase::Done => match record.outcome {
            Some(Outcome::RolledBack(reason)) => vec![Event::RolledBack { reason }],
            Some(Outcome::Promoted) if !promoted_said => vec![Event::Promoted],
            _ => Vec::new(),
        },
    }
}

/// How the release ended, when it did: its outcome, or the approval stop.
fn ended(record: &RunRecord) -> Option<Outcome> {
    match (record.outcome, record.phase) {
        (Some(outcome), _) => Some(outcome),
        (None, Phase::AwaitingApproval { .. }) => Some(Outcome::AwaitingApproval),
        (None, _) => None,
    }
}

async fn wait(
    release: &Release,
    timeout: Option<Duration>,
    cluster: &ClusterArguments,
    log_format: LogFormat,
) -> Result<Outcome, WaitError> {
    let fence = WriteFence::new();
    let clients = fledge_kube_client::connect_clients(&connect_options(cluster, None, fence.clone()))
        .await
        .map_err(WaitError::Connect)?;
    let service = &release.service;
    let state = ClusterState::new(clients.fenced, clients.lock, &service.namespace, &service.name, fence);
    let writer = EventWriter::new(release, log_format);
    let report = writer.reporter();
    let say = |message: String| report(&Event::Warning { message });
    let deadline = timeout.map(|timeout| tokio::time::Instant::now() + timeout.as_std());
    let (mut seen, mut announced, mut failing, mut unattended_said) = (None::<Phase>, false, false, false);
    let finish = |record: &RunRecord, outcome: Outcome| {
        let detail = match outcome {
            Outcome::RollbackFailed => record.rollback_failure.clone(),
            _ => (!record.detail.is_empty()).then(|| record.detail.clone()),
        };
        let line = crate::views::release::render_result(release, outcome, detail.or(writer.detail()));
        let _ = writeln!(std::io::stdout().lock(), "{line}");
        outcome
    };
    loop {
        match state.load().await {
            Ok(Some(mut record)) if record.is_of(release) => {
                failing = false;
                // The run saves its end before it releases the lock: with the lock free, the record read after
                // that is the last one its process wrote.
                let unattended = ended(&record).is_none() && unattended(&state, release, &mut record).await;
                if seen != Some(record.phase) {
                    let before = seen.replace(record.phase);
                    for event in events_of(release, &record, before) {
                        report(&event);
                    }
                }
                if let Some(outcome) = ended(&record) {
                    return Ok(finish(&record, outcome));
                }
                match (unattended, &record.rollback_failure) {
                    (true, Some(failure)) => {
                        report(&Event::RollbackFailed { error: failure.clone() });
                        return Ok(finish(&record, Outcome::RollbackFailed));
                    }
                    (true, None) if !unattended_said => {
                        unattended_said = true;
                        say(format!(
                            "no process runs the release now (its lock is free): it stays in {} until `fledge run` resumes it or `fledge abort` rolls it back",
                            record.phase
                        ));
                    }
                    (true, None) => {}
                    (false, _) => unattended_said = false,
                }
            }
            Ok(_) if !announced => {
                announced = true;
                say(format!(
                    "waiting for the release of {} {} to start (no run record of it yet)",
                    service.name, service.version
                ));
            }
            Ok(_) => {}
            Err(error) if !failing => {
                failing = true;
                say(format!("{}; trying again every second", read_failed(&error)));
            }
            Err(_) => {}
        }
        if deadline.is_some_and(|deadline| tokio::time::Instant::now() + POLL_INTERVAL > deadline) {
            let timeout = timeout.expect("a deadline has a timeout");
            let line = if unattended_said {
                format!(
                    "{} {}: still in flight after {timeout} (--timeout), and no process runs it: `fledge run` resumes it, `fledge abort` rolls it back",
                    service.name, service.version
                )
            } else {
                format!(
                    "{} {}: still in flight after {timeout} (--timeout); another process runs it: `fledge status` shows where it is",
                    service.name, service.version
                )
            };
            let _ = writeln!(std::io::stdout().lock(), "{line}");
            return Ok(Outcome::Locked);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether no process holds the release lock; `record` is then read again. A lock that cannot be read counts as
/// held (the release goes on as far as anyone can tell).
async fn unattended(state: &ClusterState, release: &Release, record: &mut RunRecord) -> bool {
    if !matches!(state.lock_holder().await, Ok(None)) {
        return false;
    }
    match state.load().await {
        Ok(Some(last)) if last.is_of(release) => {
            *record = last;
            true
        }
        _ => false,
    }
}

fn read_failed(error: &PortError) -> String {
    format!("failed to read the run record: {}", fledge_core::error_chain(error.as_ref()))
}
