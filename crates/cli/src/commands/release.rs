//! `fledge run FILE` and `fledge abort FILE`: a release (or its rollback) to its verdict, with signals handled.
//!
//! ```text
//!  SIGINT/SIGTERM #1 ──▶ cancel ──▶ runner rolls back ──▶ exit 13
//!  SIGINT/SIGTERM #2 ──▶ exit 20 at once; the run record stays for `fledge abort`
//! ```

use crate::adapters::{SetupError, connect_ports};
use crate::cli::{ClusterArguments, LogFormat};
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

pub(super) fn run(file: &Path, approve: bool, cluster: &ClusterArguments, log_format: LogFormat) -> Outcome {
    drive(file, Action::Run { approve }, cluster, log_format)
}

pub(super) fn abort(file: &Path, cluster: &ClusterArguments, log_format: LogFormat) -> Outcome {
    drive(file, Action::Abort, cluster, log_format)
}

fn drive(file: &Path, action: Action, cluster: &ClusterArguments, log_format: LogFormat) -> Outcome {
    let release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    super::block_on(release_to_outcome(release, action, cluster, log_format), |_setup| Outcome::PreflightFailed)
}

/// A run id: unique per process, readable in `fledge status` and the Lease.
fn run_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "fledge".to_owned());
    format!("{host}-{}-{:06x}", std::process::id(), rand::random::<u32>() & 0xff_ffff)
}

/// Turns the first SIGINT or SIGTERM into a cancellation and the second into an immediate exit.
fn watch_signals(writer: std::sync::Arc<EventWriter>) -> watch::Receiver<bool> {
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
    let runner = Runner::new(release.clone(), &ports, options, writer.reporter(), cancel);
    let outcome = match action {
        Action::Run { .. } => runner.run().await,
        Action::Abort => runner.abort().await,
    };
    let service = format!("{} {}", release.service.name, release.service.version);
    let mut stdout = std::io::stdout().lock();
    let _ = match (outcome, writer.detail()) {
        (Outcome::Promoted, _) if action == Action::Abort => {
            writeln!(stdout, "{}: nothing to abort", release.service.name)
        }
        (Outcome::Promoted | Outcome::AwaitingApproval | Outcome::Locked, _) | (_, None) => {
            writeln!(stdout, "{service}: {outcome}")
        }
        (_, Some(detail)) => writeln!(stdout, "{service}: {outcome}: {detail}"),
    };
    Ok(outcome)
}
