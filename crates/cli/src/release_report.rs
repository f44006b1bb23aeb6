//! Reports of a release for CI systems: JSON (every event, stage and check with timestamps), JUnit XML (a
//! testsuite per release, a testcase per gate and stage) and a Markdown summary (GitHub's step summary).
//!
//! ```text
//!  runner events ─▶ Recorder (timestamped) ─▶ ReleaseReport ─┬─▶ --report-json PATH
//!                                                             ├─▶ --report-junit PATH
//!                                                             └─▶ $GITHUB_STEP_SUMMARY (appended)
//! ```
//!
//! The JSON report's fields are documented in docs/reports.md.

use fledge_core::analysis::{CheckResult, RoundVerdict, TallyDecision};
use fledge_core::{Outcome, Release, Weight};
use fledge_runner::{Event, Reporter};
use serde::Serialize;
use std::fmt::Write as _;
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
    /// `passed`, `failed` (the release rolled back during it) or `interrupted` (the run ended otherwise).
    result: &'static str,
    rounds: Vec<RoundReport>,
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
            duration_seconds: (finished_at - started_at).get_milliseconds() as f64 / 1000.0,
            gate: None,
            stages: Vec::new(),
            events: Vec::new(),
        };
        for TimedEvent { at, event } in &events {
            report.absorb(*at, event);
        }
        for stage in &mut report.stages {
            if stage.result == "running" {
                stage.result = "interrupted";
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
                let running = self.stages.iter_mut().find(|stage| stage.result == "running");
                match (running, &mut self.gate) {
                    // Pods failing during a stage fail that stage.
                    (Some(stage), _) => {
                        stage.result = "failed";
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
                result: "running",
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
                    stage.result = "passed";
                    stage.ended_at = Some(at);
                }
            }
            Event::RollingBack { detail, .. } => {
                self.reason = Some(detail.clone());
                if let Some(stage) = self.stages.iter_mut().find(|stage| stage.result == "running") {
                    stage.result = "failed";
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

    fn seconds(from: jiff::Timestamp, to: Option<jiff::Timestamp>) -> f64 {
        to.map_or(0.0, |to| (to - from).get_milliseconds() as f64 / 1000.0)
    }

    /// The report as JUnit XML: one testsuite, a testcase for the gate and each stage (stages not reached are
    /// skipped), failures carrying the reason.
    pub(crate) fn junit(&self, release: &Release) -> String {
        let classname = format!("fledge.{}.{}", self.namespace, self.service);
        let failure_type = self.outcome.name();
        let reason = self.reason.clone().unwrap_or_else(|| self.outcome.name().to_owned());
        let mut cases = String::new();
        let (mut tests, mut failures, mut skipped) = (0, 0, 0);
        let mut case = |name: &str, time: f64, body: String| {
            tests += 1;
            if body.contains("<failure") {
                failures += 1;
            }
            if body.contains("<skipped") {
                skipped += 1;
            }
            let _ = write!(
                cases,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"",
                escape(&classname),
                escape(name)
            );
            if body.is_empty() {
                cases.push_str("/>\n");
            } else {
                let _ = write!(cases, ">\n{body}    </testcase>\n");
            }
        };
        let failure = |message: &str, text: &str| {
            format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                escape(message),
                escape(failure_type),
                escape(text)
            )
        };
        match &self.gate {
            Some(gate) => {
                let body = match &gate.failure {
                    Some(gate_failure) => {
                        failure(&gate_failure.to_string(), gate.diagnostics.as_deref().unwrap_or_default())
                    }
                    None if !gate.healthy => failure(&reason, ""),
                    None => String::new(),
                };
                case("gate", Self::seconds(gate.started_at, gate.ended_at), body);
            }
            None => case("gate", 0.0, "      <skipped message=\"not reached\"/>\n".into()),
        }
        for (index, stage) in release.stages.iter().enumerate() {
            let name = format!("stage {} ({})", index + 1, stage.weight);
            match self.stages.iter().rev().find(|reported| reported.index == index) {
                Some(reported) => {
                    let body = match reported.result {
                        "failed" => {
                            let rounds: Vec<String> = reported
                                .rounds
                                .iter()
                                .map(|round| {
                                    format!(
                                        "{}: {:?}: {}",
                                        round.at,
                                        round.verdict,
                                        crate::report::round_summary_of(&round.checks)
                                    )
                                })
                                .collect();
                            failure(&reason, &rounds.join("\n"))
                        }
                        "interrupted" => {
                            format!("      <skipped message=\"interrupted: {}\"/>\n", escape(self.outcome.name()))
                        }
                        _ => String::new(),
                    };
                    case(&name, Self::seconds(reported.started_at, reported.ended_at), body);
                }
                None => case(&name, 0.0, "      <skipped message=\"not reached\"/>\n".into()),
            }
        }
        let suite_time = self.duration_seconds;
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"fledge\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{suite_time:.3}\">\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{suite_time:.3}\" timestamp=\"{}\">\n    <properties>\n      <property name=\"outcome\" value=\"{}\"/>\n      <property name=\"exit-code\" value=\"{}\"/>\n    </properties>\n{cases}  </testsuite>\n</testsuites>\n",
            escape(&format!("release {} {} in {}", self.service, self.version, self.namespace)),
            self.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
            self.outcome.name(),
            self.exit_code
        )
    }

    /// A Markdown summary, for `$GITHUB_STEP_SUMMARY`.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let icon = match self.outcome {
            Outcome::Promoted => "✅",
            Outcome::AwaitingApproval => "⏸️",
            Outcome::RolledBack(_) => "↩️",
            _ => "❌",
        };
        let _ = writeln!(
            out,
            "### {icon} fledge: {} {} in {}: `{}` (exit {})\n",
            self.service, self.version, self.namespace, self.outcome, self.exit_code
        );
        if let Some(reason) = &self.reason {
            let _ = writeln!(out, "**Why:** {reason}\n");
        }
        let _ = writeln!(out, "| step | weight | result | time | last checks |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        if let Some(gate) = &self.gate {
            let result = if gate.healthy { "healthy" } else { "failed" };
            let _ = writeln!(out, "| gate | 0% | {result} | {:.1}s | |", Self::seconds(gate.started_at, gate.ended_at));
        }
        for stage in &self.stages {
            let checks =
                stage.rounds.last().map(|round| crate::report::round_summary_of(&round.checks)).unwrap_or_default();
            let _ = writeln!(
                out,
                "| stage {} | {} | {} | {:.1}s | {} |",
                stage.index + 1,
                stage.weight,
                stage.result,
                Self::seconds(stage.started_at, stage.ended_at),
                checks.replace('|', "\\|")
            );
        }
        out.push('\n');
        out
    }
}

/// Escapes text for XML attributes and content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            character if (character as u32) < 0x20 && !matches!(character, '\n' | '\r' | '\t') => {}
            character => out.push(character),
        }
    }
    out
}
