//! Fault injection for reliability tests, as real API servers and networks fail: errors and throttling before a
//! request is processed; a write committed and then answered 500, or its connection dropped before any answer;
//! list and watch bodies cut mid-stream; requests never answered; added latency; spurious write conflicts; watch
//! streams cut short; forced 410 Gone; and (through `Sim::api_outage`) the whole API unreachable for a while. Set
//! at start or changed at run time through the admin endpoint (`GET`/`PUT /sim/faults`, `POST /sim/cut-watches`,
//! `POST /sim/compact`).
//!
//! The faults that act on an answer (after a commit, cut bodies, no answer) are counted, so a test can tell that its
//! fault happened; and each time the settings name one of them, the first request it can apply to gets it for
//! sure, so a short run cannot slip through by chance.

use serde::{Deserialize, Serialize};
use std::sync::{Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The faults in force. All rates are fractions of requests from 0 to 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Requests answered `500 InternalError` (watches included, before they start).
    pub error_rate: f64,
    /// Requests answered `429 TooManyRequests` with `Retry-After`.
    pub throttle_rate: f64,
    /// The `Retry-After` of throttled requests, in seconds.
    pub retry_after_seconds: u64,
    /// Latency added to every request, in milliseconds.
    pub latency_milliseconds: u64,
    /// Writes with a resourceVersion precondition (PUT, PATCH) answered `409 Conflict` as if the object had changed
    /// (a real API server retries unconditional writes itself).
    pub conflict_rate: f64,
    /// Watch streams end after this many seconds (clients must resume).
    pub cut_watches_after_seconds: Option<f64>,
    /// Writes processed and committed, then answered `500 InternalError` (the client cannot tell it landed).
    pub commit_then_error_rate: f64,
    /// Writes processed and committed, then their connection dropped without an answer.
    pub commit_then_drop_rate: f64,
    /// List answers cut in the middle of their body; for watches, the chance per event that the stream is cut in
    /// the middle of that event.
    pub cut_body_rate: f64,
    /// Requests (watches too) accepted and never answered: the client's own deadline must end them.
    pub no_answer_rate: f64,
}

/// What the fault layer decides for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Serve it.
    None,
    /// Answer 500.
    ServerError,
    /// Answer 429 with this Retry-After.
    Throttle(u64),
    /// Answer 409 Conflict.
    Conflict,
    /// Never answer.
    NoAnswer,
}

/// What the fault layer decides for a write, after it was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCommit {
    /// Answer as usual.
    Answer,
    /// Answer 500 instead.
    ServerError,
    /// Drop the connection without an answer.
    DropConnection,
}

/// How many times each fault that acts on an answer was injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectedCounts {
    /// Writes committed, then answered 500.
    pub commit_then_error: u64,
    /// Writes committed, then their connection dropped.
    pub commit_then_drop: u64,
    /// List answers and watch events cut in the middle.
    pub cut_bodies: u64,
    /// Requests never answered.
    pub no_answers: u64,
}

/// The counted faults.
#[derive(Debug, Clone, Copy)]
enum Counted {
    CommitThenError,
    CommitThenDrop,
    CutBody,
    NoAnswer,
}

impl Counted {
    const ALL: [Counted; 4] = [Counted::CommitThenError, Counted::CommitThenDrop, Counted::CutBody, Counted::NoAnswer];

    fn rate(self, settings: &FaultSettings) -> f64 {
        match self {
            Counted::CommitThenError => settings.commit_then_error_rate,
            Counted::CommitThenDrop => settings.commit_then_drop_rate,
            Counted::CutBody => settings.cut_body_rate,
            Counted::NoAnswer => settings.no_answer_rate,
        }
    }

    fn count(self, counts: &mut InjectedCounts) -> &mut u64 {
        match self {
            Counted::CommitThenError => &mut counts.commit_then_error,
            Counted::CommitThenDrop => &mut counts.commit_then_drop,
            Counted::CutBody => &mut counts.cut_bodies,
            Counted::NoAnswer => &mut counts.no_answers,
        }
    }
}

/// The counted faults injected so far, and those owed to the next request they can apply to.
#[derive(Debug, Default)]
struct Tally {
    counts: InjectedCounts,
    owed: [bool; Counted::ALL.len()],
}

impl Tally {
    fn owe(&mut self, settings: &FaultSettings) {
        for kind in Counted::ALL {
            self.owed[kind as usize] = kind.rate(settings) > 0.0;
        }
    }
}

/// The fault layer's state.
pub struct Faults {
    settings: RwLock<FaultSettings>,
    tally: Mutex<Tally>,
    cut: watch::Sender<u64>,
}

impl Faults {
    /// A fault layer with these settings.
    pub fn new(settings: FaultSettings) -> Faults {
        let mut tally = Tally::default();
        tally.owe(&settings);
        Faults { settings: RwLock::new(settings), tally: Mutex::new(tally), cut: watch::channel(0).0 }
    }

    /// How many times each counted fault was injected so far.
    pub fn injected(&self) -> InjectedCounts {
        self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).counts
    }

    /// Whether to inject `kind` now, given the settings in force: when it is owed, or by chance at its rate.
    fn roll_counted(&self, kind: Counted, settings: &FaultSettings) -> bool {
        let rate = kind.rate(settings);
        if rate <= 0.0 {
            return false;
        }
        let mut tally = self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let hit = std::mem::take(&mut tally.owed[kind as usize]) || rand::random::<f64>() < rate;
        if hit {
            *kind.count(&mut tally.counts) += 1;
        }
        hit
    }

    /// The settings in force.
    pub fn settings(&self) -> FaultSettings {
        self.settings.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the settings.
    pub fn set(&self, settings: FaultSettings) {
        self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).owe(&settings);
        *self.settings.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = settings;
    }

    /// Decides the fault for a request, after waiting the added latency.
    pub async fn before_request(&self, is_guarded_write: bool) -> Injected {
        let settings = self.settings();
        if settings.latency_milliseconds > 0 {
            tokio::time::sleep(Duration::from_millis(settings.latency_milliseconds)).await;
        }
        let roll = |rate: f64| rate > 0.0 && rand::random::<f64>() < rate;
        if roll(settings.error_rate) {
            Injected::ServerError
        } else if roll(settings.throttle_rate) {
            Injected::Throttle(settings.retry_after_seconds.max(1))
        } else if is_guarded_write && roll(settings.conflict_rate) {
            Injected::Conflict
        } else if self.roll_counted(Counted::NoAnswer, &settings) {
            Injected::NoAnswer
        } else {
            Injected::None
        }
    }

    /// Decides what happens to the answer of a write that was committed.
    pub fn after_commit(&self) -> AfterCommit {
        let settings = self.settings();
        if self.roll_counted(Counted::CommitThenError, &settings) {
            AfterCommit::ServerError
        } else if self.roll_counted(Counted::CommitThenDrop, &settings) {
            AfterCommit::DropConnection
        } else {
            AfterCommit::Answer
        }
    }

    /// Whether to cut this body (a list answer, or the next watch event) in the middle.
    pub fn cut_body(&self) -> bool {
        self.roll_counted(Counted::CutBody, &self.settings())
    }

    /// How long a watch may run before the fault layer cuts it.
    pub fn watch_lifetime(&self) -> Option<Duration> {
        self.settings()
            .cut_watches_after_seconds
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
            .map(Duration::from_secs_f64)
    }

    /// Ends every open watch stream now.
    pub fn cut_watches(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// A receiver that changes when watches are cut.
    pub fn watch_cuts(&self) -> watch::Receiver<u64> {
        self.cut.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_fault_hits_the_first_request_it_can_after_it_is_set_and_is_counted() {
        // A rate of one in a billion: after the owed first hit, the fault is all but never injected by chance.
        let rare = 1e-9;
        let faults = Faults::new(FaultSettings { commit_then_drop_rate: rare, ..FaultSettings::default() });
        assert_eq!(faults.after_commit(), AfterCommit::DropConnection, "owed from the start");
        assert_eq!(faults.after_commit(), AfterCommit::Answer);
        assert!(!faults.cut_body(), "no rate, nothing owed");

        faults.set(FaultSettings { cut_body_rate: rare, commit_then_error_rate: rare, ..FaultSettings::default() });
        assert!(faults.cut_body(), "owed again once set");
        assert!(!faults.cut_body());
        assert_eq!(faults.after_commit(), AfterCommit::ServerError);
        assert_eq!(faults.after_commit(), AfterCommit::Answer);
        assert_eq!(
            faults.injected(),
            InjectedCounts { commit_then_error: 1, commit_then_drop: 1, cut_bodies: 1, no_answers: 0 }
        );
    }
}
