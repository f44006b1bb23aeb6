//! fledge-runner: the release state machine. It drives the ports of fledge-core (never kube or HTTP directly), so
//! every transition is tested with fakes and a paused clock.
//!
//! ```text
//!  lock ─▶ record? ──none/done──▶ preflight ─▶ deploy ─▶ gate ─▶ stage 1 … stage N ─▶ promote ─▶ delay ─▶ cleanup ─▶ done
//!           │                      (nothing                │        │ every interval: metrics round,      │
//!           │                       changed)               │        │ pods watched continuously           │
//!           ├─ in flight, same release ─▶ resume at its phase        ▼                                    ▼
//!           └─ in flight, other release ─▶ locked        failure, breach, signal, abort ──▶ rollback (own deadline)
//! ```
//!
//! The run record is written before each phase's effects. Running the same manifest again resumes where the record
//! says; an interrupted stage starts its clock again (the new version is observed for a whole stage at that weight
//! before going on). When the cluster disagrees with the record (the new Deployment is gone, someone changed the
//! weights), the release is rolled back.

pub mod events;
mod forward;
mod preflight;
mod rollback;

pub use events::Event;
pub use forward::{LOOK_INTERVAL, RESUME_READ_DEADLINE};
pub use preflight::{Plan, Preflight, PreflightFailure};

use fledge_core::ports::{HealthGate, MetricsAnalyzer, PortError, StateStore, TrafficRouting, Workloads};
use fledge_core::state::RunRecord;
use fledge_core::{Outcome, Release, RollbackReason};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The adapters a release runs on.
pub struct Ports<W, G, T, M, S> {
    /// Deployments.
    pub workloads: W,
    /// The crash-loop gate.
    pub gate: G,
    /// The Istio route.
    pub traffic: T,
    /// Prometheus.
    pub metrics: M,
    /// The run record and lock.
    pub state: S,
}

/// The adapters of a release as one type, so the runner is generic over one parameter.
pub trait Adapters: Send + Sync {
    /// Deployments.
    type Workloads: Workloads;
    /// The crash-loop gate.
    type Gate: HealthGate;
    /// The traffic provider.
    type Traffic: TrafficRouting;
    /// The metrics provider.
    type Metrics: MetricsAnalyzer;
    /// The run record and lock.
    type State: StateStore;

    /// Deployments.
    fn workloads(&self) -> &Self::Workloads;
    /// The crash-loop gate.
    fn gate(&self) -> &Self::Gate;
    /// The traffic provider.
    fn traffic(&self) -> &Self::Traffic;
    /// The metrics provider.
    fn metrics(&self) -> &Self::Metrics;
    /// The run record and lock.
    fn state(&self) -> &Self::State;
}

impl<W, G, T, M, S> Adapters for Ports<W, G, T, M, S>
where
    W: Workloads,
    G: HealthGate,
    T: TrafficRouting,
    M: MetricsAnalyzer,
    S: StateStore,
{
    type Workloads = W;
    type Gate = G;
    type Traffic = T;
    type Metrics = M;
    type State = S;

    fn workloads(&self) -> &W {
        &self.workloads
    }
    fn gate(&self) -> &G {
        &self.gate
    }
    fn traffic(&self) -> &T {
        &self.traffic
    }
    fn metrics(&self) -> &M {
        &self.metrics
    }
    fn state(&self) -> &S {
        &self.state
    }
}

/// What the gate of `P` keeps watching with once it passed.
type Monitor<P> = <<P as Adapters>::Gate as HealthGate>::Monitor;

/// How a run behaves.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// This run's identity, the lock holder: random per process.
    pub run_id: String,
    /// Continue a release waiting after an approval stage.
    pub approve: bool,
    /// The time a rollback may take, counted from when it starts.
    pub rollback_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions { run_id: "fledge".into(), approve: false, rollback_timeout: Duration::from_secs(120) }
    }
}

/// Receives every event.
pub type Reporter = Arc<dyn Fn(&Event) + Send + Sync>;

/// Runs one release.
pub struct Runner<'p, P> {
    release: Release,
    ports: &'p P,
    clock: Clock,
    options: RunOptions,
    reporter: Reporter,
    cancel: watch::Receiver<bool>,
}

/// Wall-clock time taken from tokio's clock: the wall time at the start plus tokio's elapsed time.
#[derive(Clone, Copy, Debug)]
struct Clock {
    wall: jiff::Timestamp,
    start: tokio::time::Instant,
}

impl Clock {
    fn start() -> Clock {
        Clock { wall: jiff::Timestamp::now(), start: tokio::time::Instant::now() }
    }

    fn now(&self) -> jiff::Timestamp {
        let elapsed = jiff::SignedDuration::try_from(self.start.elapsed()).unwrap_or(jiff::SignedDuration::MAX);
        self.wall.checked_add(elapsed).unwrap_or(jiff::Timestamp::MAX)
    }
}

/// Why the forward path stopped.
enum Stop {
    /// Roll back for this reason.
    RollBack { reason: RollbackReason, detail: String },
    /// End with this outcome, without rolling back.
    Finish(Outcome),
}

/// `failed to WHAT: causes`.
fn failed(what: &str, error: &PortError) -> String {
    format!("failed to {what}: {}", fledge_core::error_chain(error.as_ref()))
}

/// Resolves when `cancel` turns true; pending forever if it cannot (no sender left).
async fn cancelled(mut cancel: watch::Receiver<bool>) {
    if cancel.wait_for(|cancelled| *cancelled).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl<'p, P: Adapters> Runner<'p, P> {
    /// A runner of `release` on `ports`. Setting `cancel` to true rolls the release back (the first signal).
    pub fn new(
        release: Release,
        ports: &'p P,
        options: RunOptions,
        reporter: Reporter,
        cancel: watch::Receiver<bool>,
    ) -> Self {
        Runner { release, ports, options, reporter, cancel, clock: Clock::start() }
    }

    fn emit(&self, event: Event) {
        (self.reporter)(&event);
    }

    /// The time now, from tokio's clock (which tests pause and advance), anchored to the wall clock when the runner
    /// was made: the runner's only source of time.
    fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    async fn save(&self, record: &mut RunRecord) -> Result<(), PortError> {
        record.updated_at = self.now();
        self.ports.state().save(record).await
    }

    /// Takes the lock, runs `work`, releases the lock.
    async fn locked<F: Future<Output = Outcome>>(&self, work: impl FnOnce() -> F) -> Outcome {
        let outcome = match self.ports.state().lock(&self.options.run_id).await {
            Err(error) => {
                self.emit(Event::PreflightFailed { error: failed("take the release lock", &error) });
                Outcome::PreflightFailed
            }
            Ok(fledge_core::ports::Lock::HeldBy { holder }) => {
                self.emit(Event::Locked { holder });
                Outcome::Locked
            }
            Ok(fledge_core::ports::Lock::Acquired) => {
                // A lost lock stops the work at its next await, whatever it was doing; the adapters refuse every
                // write from the moment the lock counts as lost, so nothing more reaches the cluster meanwhile.
                let outcome = tokio::select! {
                    biased;
                    reason = self.ports.state().lost() => {
                        self.emit(Event::LockLost { reason });
                        None
                    }
                    outcome = work() => Some(outcome),
                };
                match outcome {
                    Some(outcome) => {
                        if let Err(error) = self.ports.state().unlock().await {
                            self.emit(Event::Warning {
                                message: failed("release the lock (it expires by itself)", &error),
                            });
                        }
                        outcome
                    }
                    None => Outcome::LockLost,
                }
            }
        };
        self.emit(Event::Finished { outcome });
        outcome
    }

    /// Runs the release to its outcome: a fresh release, or the one in flight resumed.
    pub async fn run(&self) -> Outcome {
        self.locked(|| self.run_locked()).await
    }

    async fn run_locked(&self) -> Outcome {
        let record = match self.ports.state().load().await {
            Ok(record) => record,
            Err(error) => {
                self.emit(Event::PreflightFailed { error: failed("read the run record", &error) });
                return Outcome::PreflightFailed;
            }
        };
        match record {
            Some(record) if record.in_flight() && !record.is_of(&self.release) => {
                self.emit(Event::InFlight { version: record.version.clone(), phase: record.phase });
                Outcome::Locked
            }
            Some(mut record) if record.in_flight() => {
                self.emit(Event::Resuming { phase: record.phase });
                self.resume(&mut record).await
            }
            Some(record) if record.is_of(&self.release) && record.outcome == Some(Outcome::Promoted) => {
                self.emit(Event::AlreadyPromoted);
                Outcome::Promoted
            }
            _ => self.fresh().await,
        }
    }
}
