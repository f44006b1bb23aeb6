//! `fledge run FILE` and `fledge abort FILE`: a release (or its rollback) to its verdict, with signals handled.
//!
//! ```text
//!  SIGINT/SIGTERM #1 ──▶ cancel ──▶ runner rolls back ──▶ exit 13
//!  SIGINT/SIGTERM #2 ──▶ exit 20 at once; the run record stays for `fledge abort`
//! ```

use crate::adapters::{SetupError, connect_ports};
use crate::cli::{ClusterArguments, LogFormat, ReportArguments};
use crate::notify::Notifier;
use crate::release_report::{Recorder, ReleaseReport};
use crate::report::EventWriter;
use fledge_core::{Outcome, Release};
use fledge_runner::{RunOptions, Runner};
use std::io::Write as _;
use std::path::Path;
use tokio::sync::watch;

/// What to do with the release.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Run { approve: bool },
    Abort,
}

pub(super) fn run(
    file: &Path,
    approve: bool,
    reports: &ReportArguments,
    cluster: &ClusterArguments,
    log_format: LogFormat,
) -> Outcome {
    drive(file, Action::Run { approve }, reports, cluster, log_format)
}

pub(super) fn abort(file: &Path, cluster: &ClusterArguments, log_format: LogFormat) -> Outcome {
    let no_reports = ReportArguments { report_json: None, report_junit: None };
    drive(file, Action::Abort, &no_reports, cluster, log_format)
}

fn drive(
    file: &Path,
    action: Action,
    reports: &ReportArguments,
    cluster: &ClusterArguments,
    log_format: LogFormat,
) -> Outcome {
    let release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    super::block_on(release_to_outcome(release, action, reports, cluster, log_format), |_setup| {
        Outcome::PreflightFailed
    })
}

/// Writes the report files asked for, and the step summary when `$GITHUB_STEP_SUMMARY` is set. A report that
/// cannot be written is a warning: it never changes the verdict.
fn write_reports(release: &Release, outcome: Outcome, recorder: &Recorder, reports: &ReportArguments) {
    let report = ReleaseReport::new(release, outcome, recorder);
    let mut stderr = std::io::stderr().lock();
    if let Some(path) = &reports.report_json
        && let Err(error) = std::fs::write(path, report.json() + "\n")
    {
        let _ = writeln!(stderr, "warning: failed to write the JSON report {}: {error}", path.display());
    }
    if let Some(path) = &reports.report_junit
        && let Err(error) = std::fs::write(path, report.junit(release))
    {
        let _ = writeln!(stderr, "warning: failed to write the JUnit report {}: {error}", path.display());
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()) {
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut file| file.write_all(report.markdown().as_bytes()));
        if let Err(error) = appended {
            let _ = writeln!(stderr, "warning: failed to append to $GITHUB_STEP_SUMMARY: {error}");
        }
    }
}

/// A run id: unique per process, readable in `fledge status` and the Lease.
pub(super) fn run_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "fledge".to_owned());
    format!("{host}-{}-{:06x}", std::process::id(), rand::random::<u32>() & 0xff_ffff)
}

/// Turns the first SIGINT or SIGTERM into a cancellation and the second into an immediate exit.
pub(super) fn watch_signals(writer: std::sync::Arc<EventWriter>) -> watch::Receiver<bool> {
    let (cancel, receiver) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
        else {
            return;
        };
        let mut received = 0;
        loop {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            received += 1;
            if received == 1 {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "received {name}: rolling back; send it again to exit at once and leave the rollback to `fledge abort`"
                );
                let _ = cancel.send(true);
            } else {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "received {name} again: exiting without finishing the rollback; run `fledge abort` on this manifest"
                );
                drop(writer);
                std::process::exit(i32::from(Outcome::RollbackFailed.exit_code().0));
            }
        }
    });
    receiver
}

async fn release_to_outcome(
    release: Release,
    action: Action,
    reports: &ReportArguments,
    cluster: &ClusterArguments,
    log_format: LogFormat,
) -> Result<Outcome, SetupError> {
    let writer = EventWriter::new(&release, log_format);
    let ports = connect_ports(&release, cluster, Some(writer.progress())).await?;
    let cancel = watch_signals(writer.clone());
    let options = RunOptions {
        run_id: run_id(),
        approve: matches!(action, Action::Run { approve: true }),
        ..RunOptions::default()
    };
    let recorder = Recorder::new();
    let notifier = Notifier::new(&release);
    let reporter = recorder.reporter(notifier.reporter(writer.reporter()));
    let runner = Runner::new(release.clone(), &ports, options, reporter, cancel);
    let outcome = match action {
        Action::Run { .. } => runner.run().await,
        Action::Abort => runner.abort().await,
    };
    notifier.drain().await;
    if matches!(action, Action::Run { .. }) {
        write_reports(&release, outcome, &recorder, reports);
    }
    let line = if outcome == Outcome::Promoted && action == Action::Abort {
        format!("{}: nothing to abort", release.service.name)
    } else {
        result_line(&release, outcome, writer.detail())
    };
    let _ = writeln!(std::io::stdout().lock(), "{line}");
    Ok(outcome)
}

/// The result of a release in one line: `reviews v3: rolled-back-metrics: <why>`.
pub(super) fn result_line(release: &Release, outcome: Outcome, detail: Option<String>) -> String {
    let service = format!("{} {}", release.service.name, release.service.version);
    match (outcome, detail) {
        (Outcome::Promoted | Outcome::AwaitingApproval | Outcome::Locked, _) | (_, None) => {
            format!("{service}: {outcome}")
        }
        (_, Some(detail)) => format!("{service}: {outcome}: {detail}"),
    }
}
