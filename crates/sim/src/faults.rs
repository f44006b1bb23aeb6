//! Fault injection for reliability tests, as real API servers and networks fail: errors and throttling before a
//! request is processed; a write committed and then answered 500, or its connection dropped before any answer;
//! list and watch bodies cut mid-stream; requests never answered; added latency; spurious write conflicts; watch
//! streams cut short; forced 410 Gone; and (through `Sim::api_outage`) the whole API unreachable for a while. Set
//! at start or changed at run time through the admin endpoint (`GET`/`PUT /sim/faults`, `POST /sim/cut-watches`,
//! `POST /sim/compact`).

use serde::{Deserialize, Serialize};
use std::sync::RwLock;
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

/// The fault layer's state.
pub struct Faults {
    settings: RwLock<FaultSettings>,
    cut: watch::Sender<u64>,
}

impl Faults {
    /// A fault layer with these settings.
    pub fn new(settings: FaultSettings) -> Faults {
        Faults { settings: RwLock::new(settings), cut: watch::channel(0).0 }
    }

    /// The settings in force.
    pub fn settings(&self) -> FaultSettings {
        self.settings.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the settings.
    pub fn set(&self, settings: FaultSettings) {
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
        } else if roll(settings.no_answer_rate) {
            Injected::NoAnswer
        } else {
            Injected::None
        }
    }

    /// Decides what happens to the answer of a write that was committed.
    pub fn after_commit(&self) -> AfterCommit {
        let settings = self.settings();
        let roll = |rate: f64| rate > 0.0 && rand::random::<f64>() < rate;
        if roll(settings.commit_then_error_rate) {
            AfterCommit::ServerError
        } else if roll(settings.commit_then_drop_rate) {
            AfterCommit::DropConnection
        } else {
            AfterCommit::Answer
        }
    }

    /// Whether to cut this body (a list answer, or the next watch event) in the middle.
    pub fn cut_body(&self) -> bool {
        let rate = self.settings().cut_body_rate;
        rate > 0.0 && rand::random::<f64>() < rate
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
