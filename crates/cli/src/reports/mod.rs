//! Reports of a release for CI systems: JSON (every event, stage and check with timestamps), JUnit XML (a
//! testsuite per release, a testcase per gate and stage) and a Markdown summary (GitHub's step summary).
//!
//! ```text
//!  runner events ─▶ Recorder (timestamped) ─▶ ReleaseReport ─┬─▶ --report-json PATH
//!                                                             ├─▶ --report-junit PATH
//!                                                             ├─▶ --report-html PATH (charts, no script)
//!                                                             └─▶ $GITHUB_STEP_SUMMARY (appended)
//! ```
//!
//! The JSON report's fields are documented in docs/reports.md. This module builds the report from the events; the
//! JSON is its serialization, [`junit`] and [`markdown`] render the other two.

mod html;
mod junit;
mod markdown;

use fledge_core::analysis::{CheckResult, RoundVerdict, TallyDecision};
use fledge_core::{Outcome, Release, Weight};
use fledge_runner::{Event, Reporter};
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// The version of the JSON report's shape.
pub(crate) const REPORT_SCHEMA: &str = "fledge.report/v1";

/// Collects every event with the time it happened, and passes it on.
#[derive(Clone)]
pub(crate) struct Recorder {
    events: Arc<Mutex<Vec<TimedEvent>>>,
}

/// An event and when it happened.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TimedEvent {
    at: jiff::Timestamp,
    #[serde(flatten)]
    event: Event,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder { events: Arc::default() }
    }

    /// A reporter that records, then calls `next`.
    pub(crate) fn reporter(&self, next: Reporter) -> Reporter {
        let events = self.events.clone();
        Arc::new(move |event: &Event| {
            events
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(TimedEvent { at: jiff::Timestamp::now(), event: event.clone() });
            next(event);
        })
    }

    fn events(&self) -> Vec<TimedEvent> {
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// One round of checks in a stage.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RoundReport {
    at: jiff::Timestamp,
    verdict: RoundVerdict,
    decision: TallyDecision,
    checks: Vec<CheckResult>,
}

/// One stage.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StageReport {
    index: usize,
    weight: Weight,
    started_at: jiff::Timestamp,
    ended_at: Option<jiff::Timestamp>,
    result: StageResult,
    rounds: Vec<RoundReport>,
}

/// How a stage ended, in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StageResult {
    /// Still under way when the event came (never in a finished report).
    Running,
    /// Its analysis passed.
    Passed,
    /// The release rolled back during it.
    Failed,
    /// The run ended otherwise during it (a signal, an approval stop, a lost lock).
    Interrupted,
}

impl StageResult {
    /// The word in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StageResult::Running => "running",
            StageResult::Passed => "passed",
            StageResult::Failed => "failed",
            StageResult::Interrupted => "interrupted",
        }
    }
}

/// The gate.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GateReport {
    started_at: jiff::Timestamp,
    ended_at: Option<jiff::Timestamp>,
    healthy: bool,
    failure: Option<fledge_core::GateFailure>,
    diagnostics: Option<String>,
}

/// A whole release, for files.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReleaseReport {
    schema: &'static str,
    service: String,
    namespace: String,
    version: String,
    previous_version: Option<String>,
    outcome: Outcome,
    exit_code: u8,
    reason: Option<String>,
    started_at: jiff::Timestamp,
    finished_at: jiff::Timestamp,
    duration_seconds: f64,
    gate: Option<GateReport>,
    stages: Vec<StageReport>,
    events: Vec<TimedEvent>,
}

impl ReleaseReport {
    /// The report of `release`, which ended with `outcome`, from its recorded events.
    pub(crate) fn new(release: &Release, outcome: Outcome, recorder: &Recorder) -> ReleaseReport {
        let events = recorder.events();
        let now = jiff::Timestamp::now();
        let started_at = events.first().map_or(now, |event| event.at);
        let finished_at = events.last().map_or(now, |event| event.at);
        let mut report = ReleaseReport {
            schema: REPORT_SCHEMA,
            service: release.service.name.clone(),
            namespace: release.service.namespace.clone(),
            version: release.service.version.clone(),
            previous_version: release.service.previous_version.clone(),
            outcome,
            exit_code: outcome.exit_code().0,
            reason: None,
            started_at,
            finished_at,
            duration_seconds: finished_at.duration_since(started_at).as_secs_f64(),
            gate: None,
            stages: Vec::new(),
            events: Vec::new(),
        };
        for TimedEvent { at, event } in &events {
            report.absorb(*at, event);
        }
        for stage in &mut report.stages {
            if stage.result == StageResult::Running {
                stage.result = StageResult::Interrupted;
            }
        }
        report.events = events;
        report
    }

    fn absorb(&mut self, at: jiff::Timestamp, event: &Event) {
        match event {
            Event::PreflightPassed { live_version, .. } => self.previous_version = Some(live_version.clone()),
            Event::GateWaiting { .. } => {
                self.gate = Some(GateReport {
                    started_at: at,
                    ended_at: None,
                    healthy: false,
                    failure: None,
                    diagnostics: None,
                });
            }
            Event::GateHealthy { .. } => {
                if let Some(gate) = &mut self.gate {
                    gate.ended_at = Some(at);
                    gate.healthy = true;
                }
            }
            Event::GateFailed { failure, diagnostics } => {
                let running = self.stages.iter_mut().find(|stage| stage.result == StageResult::Running);
                match (running, &mut self.gate) {
                    // Pods failing during a stage fail that stage.
                    (Some(stage), _) => {
                        stage.result = StageResult::Failed;
                        stage.ended_at = Some(at);
                    }
                    (None, Some(gate)) => {
                        gate.ended_at = Some(at);
                        gate.failure = Some(failure.clone());
                        gate.diagnostics = Some(diagnostics.clone());
                    }
                    (None, None) => {}
                }
            }
            Event::StageStarted { index, weight, .. } => self.stages.push(StageReport {
                index: *index,
                weight: *weight,
                started_at: at,
                ended_at: None,
                result: StageResult::Running,
                rounds: Vec::new(),
            }),
            Event::Round { round, decision, .. } => {
                if let Some(stage) = self.stages.last_mut() {
                    stage.rounds.push(RoundReport {
                        at,
                        verdict: round.verdict,
                        decision: *decision,
                        checks: round.checks.clone(),
                    });
                }
            }
            Event::StagePassed { index } => {
                if let Some(stage) = self.stages.iter_mut().rev().find(|stage| stage.index == *index) {
                    stage.result = StageResult::Passed;
                    stage.ended_at = Some(at);
                }
            }
            Event::RollingBack { detail, .. } => {
                self.reason = Some(detail.clone());
                if let Some(stage) = self.stages.iter_mut().find(|stage| stage.result == StageResult::Running) {
                    stage.result = StageResult::Failed;
                    stage.ended_at = Some(at);
                }
            }
            Event::PreflightFailed { error } | Event::RollbackFailed { error } => self.reason = Some(error.clone()),
            _ => {}
        }
    }

    /// The report as pretty JSON.
    pub(crate) fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }

    /// Seconds from `from` to `to` (0 when it did not end).
    fn seconds(from: jiff::Timestamp, to: Option<jiff::Timestamp>) -> f64 {
        to.map_or(0.0, |to| to.duration_since(from).as_secs_f64())
    }
}
