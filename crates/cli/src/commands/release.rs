//! `fledge run FILE` and `fledge abort FILE`: a release (or its rollback) to its verdict, with signals handled
//! ([`crate::launch`]), reports written and webhooks told.

use crate::adapters::{SetupError, connect_ports};
use crate::cli::{ClusterArguments, LogFormat, ReportArguments};
use crate::cluster_events::ClusterEvents;
use crate::launch::{Launch, Signals, launch_release, run_id};
use crate::notify::Notifier;
use crate::progress::EventWriter;
use crate::reports::{Recorder, ReleaseReport};
use fledge_core::{Outcome, Release};
use std::io::Write as _;
use std::path::Path;

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
    let no_reports = ReportArguments { report_json: None, report_junit: None, report_html: None };
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
    if let Some(path) = &reports.report_html
        && let Err(error) = std::fs::write(path, report.html(release))
    {
        let _ = writeln!(stderr, "warning: failed to write the HTML report {}: {error}", path.display());
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()) {
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut file| file.write_all(report.markdown(release).as_bytes()));
        if let Err(error) = appended {
            let _ = writeln!(stderr, "warning: failed to append to $GITHUB_STEP_SUMMARY: {error}");
        }
    }
}

async fn release_to_outcome(
    release: Release,
    action: Action,
    reports: &ReportArguments,
    cluster: &ClusterArguments,
    log_format: LogFormat,
) -> Result<Outcome, SetupError> {
    let writer = EventWriter::new(&release, log_format);
    let run = run_id();
    let ports = connect_ports(&release, cluster, Some(&run), Some(writer.progress())).await?;
    let recorder = Recorder::new();
    let notifier = Notifier::new(&release);
    // Kubernetes Events regard the manifest's Deployment: only a run (abort may roll back another version).
    let cluster_events =
        matches!(action, Action::Run { .. }).then(|| ClusterEvents::new(&release, ports.workloads.client(), &run));
    let next = match &cluster_events {
        Some(events) => events.reporter(writer.reporter()),
        None => writer.reporter(),
    };
    let reporter = recorder.reporter(notifier.reporter(next));
    let launch = Launch {
        run_id: run,
        approve: matches!(action, Action::Run { approve: true }),
        signals: Signals::Handled(writer.clone()),
        abort: action == Action::Abort,
    };
    let outcome = launch_release(&release, &ports, reporter, launch).await;
    if let Some(events) = &cluster_events {
        events.drain().await;
    }
    notifier.drain().await;
    if matches!(action, Action::Run { .. }) {
        write_reports(&release, outcome, &recorder, reports);
    }
    let line = if outcome == Outcome::Promoted && action == Action::Abort {
        crate::views::release::render_nothing_to_abort(&release)
    } else {
        crate::views::release::render_result(&release, outcome, writer.detail())
    };
    let _ = writeln!(std::io::stdout().lock(), "{line}");
    Ok(outcome)
}
