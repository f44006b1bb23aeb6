//! Launching a release, the same way for `run`, `abort`, `demo` and `rehearse`: the run's identity, its signals, its
//! listeners and the runner over the adapters.
//!
//! ```text
//!  SIGINT/SIGTERM #1 ──▶ cancel ──▶ runner rolls back ──▶ exit 13
//!  SIGINT/SIGTERM #2 ──▶ exit 20 at once; the run record stays for `fledge abort`
//! ```

use crate::adapters::ClusterPorts;
use crate::progress::EventWriter;
use fledge_core::{Outcome, Release};
use fledge_runner::{Reporter, RunOptions, Runner};
use std::io::Write as _;
use tokio::sync::watch;

/// Whether a launch listens to signals.
pub(crate) enum Signals {
    /// The first SIGINT or SIGTERM rolls back, the second exits at once (told through the writer).
    Handled(std::sync::Arc<EventWriter>),
    /// Signals are not the release's (a rehearsal inside another command).
    Ignored,
}

/// How to launch a release.
pub(crate) struct Launch {
    /// The run's identity: the lock holder, named in the user agent.
    pub(crate) run_id: String,
    /// Continue after an approval stage.
    pub(crate) approve: bool,
    /// Whether signals roll the release back.
    pub(crate) signals: Signals,
    /// Roll back whatever release of the service is in flight, instead of running this one.
    pub(crate) abort: bool,
}

/// Runs `release` on `ports` to its outcome, every event going to `reporter`.
pub(crate) async fn launch_release(
    release: &Release,
    ports: &ClusterPorts,
    reporter: Reporter,
    launch: Launch,
) -> Outcome {
    let cancel = match launch.signals {
        Signals::Handled(writer) => watch_signals(writer),
        // The sender lives as long as the release: nothing ever cancels it.
        Signals::Ignored => watch::channel(false).1,
    };
    let options = RunOptions { run_id: launch.run_id, approve: launch.approve, ..RunOptions::default() };
    let runner = Runner::new(release.clone(), ports, options, reporter, cancel);
    if launch.abort { runner.abort().await } else { runner.run().await }
}

/// A run id: unique per process, readable in `fledge status` and the Lease.
pub(crate) fn run_id() -> String {
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
