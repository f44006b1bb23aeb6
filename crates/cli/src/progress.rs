//! Progress on stderr: a release's events as lines for people (with a live status line on a terminal) or as JSON
//! objects, one per line; and the logs of the adapters (tracing) in the same format.

use crate::cli::LogFormat;
use fledge_core::analysis::{Round, RoundVerdict, TallyDecision};
use fledge_core::release::CleanupPolicy;
use fledge_core::{CheckVerdict, Release};
use fledge_runner::{Event, Reporter};
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends fledge's own logs (warnings and errors) to stderr in `format`. Libraries' logs are left out: their
/// failures reach the user once, as the cause of fledge's error.
pub(crate) fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, filter::Targets, fmt};
    let own = Targets::new().with_target("fledge", tracing::Level::WARN);
    let layer = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(own)
            .boxed(),
        LogFormat::Json => fmt::layer().with_writer(std::io::stderr).json().with_filter(own).boxed(),
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// `1m30s`, `7.1s`.
fn short(duration: Duration) -> String {
    if duration < Duration::from_secs(60) {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        fledge_core::Duration::from_secs(duration.as_secs()).to_string()
    }
}

/// The checks of a round in a few words: `success-rate 99.9% pass, latency-p99 92.7ms pass`.
pub(crate) fn round_summary(round: &Round) -> String {
    round_summary_of(&round.checks)
}

/// [`round_summary`] of a list of checks.
pub(crate) fn round_summary_of(checks: &[fledge_core::analysis::CheckResult]) -> String {
    let checks: Vec<String> = checks
        .iter()
        .map(|check| {
            let verdict = match check.verdict {
                CheckVerdict::Pass => "pass",
                CheckVerdict::Fail => "FAIL",
                CheckVerdict::NoData => "no data",
                CheckVerdict::Error => "ERROR",
            };
            match check.value {
                Some(value) => format!("{} {value:.1}{} {verdict}", check.name, check.unit),
                None => format!("{} {verdict}", check.name),
            }
        })
        .collect();
    checks.join(", ")
}

/// What a reporter remembers for the final result line.
#[derive(Default)]
struct Seen {
    /// The last rollback's detail, or the preflight error.
    detail: Option<String>,
    /// Whether the live status line is on screen.
    status_line: bool,
}

/// Writes a release's events to stderr.
pub(crate) struct EventWriter {
    release: Release,
    format: LogFormat,
    terminal: bool,
    started: Instant,
    seen: Mutex<Seen>,
}

impl EventWriter {
    /// A writer for `release`'s events.
    pub(crate) fn new(release: &Release, format: LogFormat) -> Arc<EventWriter> {
        Arc::new(EventWriter {
            release: release.clone(),
            format,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            seen: Mutex::new(Seen::default()),
        })
    }

    /// The reporter the runner calls.
    pub(crate) fn reporter(self: &Arc<Self>) -> Reporter {
        let writer = self.clone();
        Arc::new(move |event: &Event| writer.write(event))
    }

    /// A progress line from an adapter (the gate's waiting state).
    pub(crate) fn progress(self: &Arc<Self>) -> fledge_gate::Progress {
        let writer = self.clone();
        Arc::new(move |line: &str| writer.line(&format!("gate: {line}"), true))
    }

    /// Why the release ended as it did, when it did not succeed.
    pub(crate) fn detail(&self) -> Option<String> {
        self.lock().detail.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, event: &Event) {
        match event {
            Event::RollingBack { detail, .. } => self.lock().detail = Some(detail.clone()),
            Event::PreflightFailed { error } => self.lock().detail = Some(error.clone()),
            Event::RollbackFailed { error } => self.lock().detail = Some(error.clone()),
            Event::LockLost { reason } => self.lock().detail = Some(format!("the release lock is lost: {reason}")),
            Event::ResumeFailed { error } => self.lock().detail = Some(error.clone()),
            _ => {}
        }
        match self.format {
            LogFormat::Json => {
                let mut object = serde_json::to_value(event).unwrap_or_default();
                if let Some(map) = object.as_object_mut() {
                    map.insert("time".into(), jiff::Timestamp::now().to_string().into());
                    map.insert("service".into(), self.release.service.name.clone().into());
                    map.insert("version".into(), self.release.service.version.clone().into());
                }
                let _ = writeln!(std::io::stderr().lock(), "{object}");
            }
            LogFormat::Text => {
                let transient = matches!(event, Event::Round { decision: TallyDecision::Continue, .. });
                if let Some(text) = self.describe(event) {
                    self.line(&text, transient);
                }
            }
        }
    }

    /// Writes a line; on a terminal, a `transient` line replaces the previous transient one.
    fn line(&self, text: &str, transient: bool) {
        let stamp = format!("[{:>7}]", short(self.started.elapsed()));
        let mut seen = self.lock();
        let mut stderr = std::io::stderr().lock();
        if self.format == LogFormat::Json {
            let object =
                serde_json::json!({ "event": "progress", "message": text, "time": jiff::Timestamp::now().to_string() });
            let _ = writeln!(stderr, "{object}");
            return;
        }
        if self.terminal && seen.status_line {
            let _ = write!(stderr, "\r\x1b[2K");
        }
        if self.terminal && transient {
            let _ = write!(stderr, "{stamp} {text}");
            seen.status_line = true;
        } else {
            let _ = writeln!(stderr, "{stamp} {text}");
            seen.status_line = false;
        }
        let _ = stderr.flush();
    }

    fn describe(&self, event: &Event) -> Option<String> {
        let release = &self.release;
        let version = &release.service.version;
        let stages = release.stages.len();
        Some(match event {
            Event::Locked { holder } => format!(
                "locked: another run ({holder}) holds the release lock of {}; wait for it, or see `fledge status`",
                release.service.name
            ),
            Event::InFlight { version: other, phase } => format!(
                "locked: the release of {other} is in flight ({phase}); finish it by running its manifest again, or roll it back with `fledge abort`"
            ),
            Event::AlreadyPromoted => {
                format!("{version} was promoted by an earlier run of this release; nothing to do")
            }
            Event::PreflightFailed { error } => format!("preflight failed, nothing was changed: {error}"),
            Event::PreflightPassed { live_version, route, warnings } => {
                let mut text = format!("preflight passed: live version {live_version}, {route}");
                for warning in warnings {
                    text.push_str(&format!("\nwarning: {warning}"));
                }
                text
            }
            Event::ResumeFailed { error } => format!("could not resume: {error}"),
            Event::Resuming { phase } => {
                format!("resuming the release in flight at {phase} (an interrupted stage starts its clock again)")
            }
            Event::Deploying { deployment } => format!("deploying {deployment} beside the live version (0% traffic)"),
            Event::GateWaiting { timeout } => {
                format!("gate: waiting up to {} for every new pod to be Ready and stable", short(*timeout))
            }
            Event::GateHealthy { elapsed } => format!("gate: healthy after {}", short(*elapsed)),
            Event::GateFailed { failure, diagnostics } => {
                format!("pods failed: {failure}\nhint: {}\n{}", failure.kind.hint(), diagnostics.trim_end())
            }
            Event::StageStarted { index, weight, duration } => {
                format!("stage {}/{stages}: {weight} of traffic to {version} for {}", index + 1, short(*duration))
            }
            Event::Round { index, round, decision, elapsed, duration } => {
                let state = match decision {
                    TallyDecision::Continue => format!("{} of {}", short(*elapsed), short(*duration)),
                    TallyDecision::Hold => "held: the stage clock waits".to_owned(),
                    TallyDecision::RollBack(abort) => abort.to_string(),
                };
                let verdict = match round.verdict {
                    RoundVerdict::Passed => "checks passed",
                    RoundVerdict::Failed => "checks FAILED",
                    RoundVerdict::NoData => "no data",
                    RoundVerdict::Errored => "query ERROR",
                };
                format!("stage {}/{stages}: {verdict} ({state}): {}", index + 1, round_summary(round))
            }
            Event::StagePassed { index } => format!("stage {}/{stages} passed", index + 1),
            Event::AwaitingApproval { index } => format!(
                "stage {}/{stages} passed; waiting for approval: run the same command with --approve to continue, or `fledge abort`",
                index + 1
            ),
            Event::Promoted => format!("promoted: 100% of traffic to {version}"),
            Event::ScaleDownDelay { delay } => {
                format!("keeping the old version at 0% for {} (promote.scaleDownDelay)", short(*delay))
            }
            Event::CleanedUp { deployment, policy, moved, kept_for } => {
                let mut text = if kept_for.is_empty() {
                    match policy {
                        CleanupPolicy::Delete => format!("cleaned up: deleted {deployment} and its subset"),
                        CleanupPolicy::ScaleToZero => {
                            format!("cleaned up: scaled {deployment} to 0, removed its subset")
                        }
                        CleanupPolicy::Keep => format!("cleaned up: removed the subset; {deployment} keeps running"),
                    }
                } else {
                    format!(
                        "cleaned up the managed route; {deployment} and its subset are kept (traffic.pinnedRoutes: keep) for {}",
                        kept_for.join(", ")
                    )
                };
                if !moved.is_empty() {
                    text.push_str(&format!(
                        "
moved to {version} (traffic.pinnedRoutes: move): {}",
                        moved.join(", ")
                    ));
                }
                text
            }
            Event::RollingBack { reason, detail } => {
                format!("rolling back ({}): {detail}", fledge_core::Outcome::RolledBack(*reason))
            }
            Event::RolledBack { .. } => "rolled back: the route is as it was before the release".to_owned(),
            Event::RollbackFailed { error } => {
                format!("rollback failed: {error}; a person must look: `fledge status`, then `fledge abort` to retry")
            }
            Event::AbortRequested { holder } => {
                format!("asked the run holding the lock ({holder}) to roll back; waiting for it")
            }
            Event::NothingToAbort => format!("nothing to abort: no release of {} is in flight", release.service.name),
            Event::Warning { message } => format!("warning: {message}"),
            Event::LockLost { reason } => format!(
                "stopped: the release lock is lost ({reason}); nothing more was written: the run holding the lock owns the release (see `fledge status`)"
            ),
            Event::Finished { .. } => return None,
        })
    }
}
