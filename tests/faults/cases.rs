//! The cases of the fault matrix: what is done to a release, and what fledge must answer.

use crate::lab::{Lab, Provider};
use fledge_sim::faults::FaultSettings;
use fledge_sim::resources::DEPLOYMENTS;
use fledge_testkit::{PrometheusFaults, PrometheusMode, TestPrometheus};
use serde_json::{Value, json};
use std::time::Duration;

/// One case: a name for the table, what it proves, the traffic provider it releases through, and what is done.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) proves: String,
    pub(crate) provider: Provider,
    pub(crate) script: Script,
}

/// The image tags of the bookinfo scenario used here.
const HEALTHY: &str = "2.0.0";
const ERRORS: &str = "2.0.0-errors";
const CRASH_LOOP: &str = "2.0.0-crashloop";

/// What a case does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Script {
    /// A release of an image tag under API faults (or none), to its verdict.
    Release { tag: &'static str, faults: Option<ApiFault>, expect: i32 },
    /// A signal to fledge when the release reaches a phase, then the same command again.
    Signal { signal: Signal, phase: Phase },
    /// Prometheus stops during stage 1 for some seconds (`None`: for good).
    PrometheusOutage { seconds: Option<u64>, expect: i32 },
    /// Prometheus cannot be reached at all.
    PrometheusUnreachable,
    /// A person changes something during stage 1.
    HandEdit(HandEdit),
    /// Another command while a release is in flight.
    Concurrent(Concurrent),
    /// The whole API unreachable for 10 s when the release reaches a point.
    ApiOutage { tag: &'static str, at: OutageAt, expect: i32 },
    /// Prometheus answering badly (through a proxy) from a point of the release, for some seconds.
    PrometheusFault { mode: PrometheusFault, tag: &'static str, expect: i32 },
    /// The run frozen (SIGSTOP) mid-stage past its lease; another run takes over and finishes; then SIGCONT.
    Takeover,
}

/// Where an API outage starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutageAt {
    /// A second into stage 1.
    Stage,
    /// During the gate.
    Gate,
    /// As the rollback starts (for a healthy version, after a SIGTERM mid-stage).
    Rollback,
}

/// How Prometheus misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrometheusFault {
    /// Answers 3 s late, past the manifest's 2 s `prometheus.timeout`.
    Slow,
    /// Good answers with a `warnings` field.
    Warnings,
    /// `200 OK` with a body that is not JSON.
    Garbage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiFault {
    ServerErrors,
    Throttling,
    Latency,
    CutWatches,
    Gone,
    Conflicts,
    CommitThenError,
    CommitThenDrop,
    CutBodies,
    NoAnswer,
    All,
}

impl ApiFault {
    fn describe(self) -> &'static str {
        match self {
            ApiFault::ServerErrors => "20% of API requests answered 500",
            ApiFault::Throttling => "20% of API requests answered 429 with Retry-After: 1",
            ApiFault::Latency => "300 ms added to every API request",
            ApiFault::CutWatches => "watch streams cut every 2 s",
            ApiFault::Gone => "watches cut every 0.3 s and the history compacted: resumes get 410 Gone",
            ApiFault::Conflicts => "30% of guarded writes (those carrying a resourceVersion) answered 409 Conflict",
            ApiFault::CommitThenError => "20% of writes committed, then answered 500",
            ApiFault::CommitThenDrop => "20% of writes committed, then their connection dropped before an answer",
            ApiFault::CutBodies => "20% of list answers and of watch events cut mid-body",
            ApiFault::NoAnswer => "0.5% of requests never answered (the client's 10 s attempt deadline ends them)",
            ApiFault::All => "all of these at once, at lower rates",
        }
    }

    fn settings(self) -> FaultSettings {
        let none = FaultSettings::default();
        match self {
            ApiFault::ServerErrors => FaultSettings { error_rate: 0.2, ..none },
            ApiFault::Throttling => FaultSettings { throttle_rate: 0.2, retry_after_seconds: 1, ..none },
            ApiFault::Latency => FaultSettings { latency_milliseconds: 300, ..none },
            ApiFault::CutWatches => FaultSettings { cut_watches_after_seconds: Some(2.0), ..none },
            ApiFault::Gone => FaultSettings { cut_watches_after_seconds: Some(0.3), ..none },
            ApiFault::Conflicts => FaultSettings { conflict_rate: 0.3, ..none },
            ApiFault::CommitThenError => FaultSettings { commit_then_error_rate: 0.2, ..none },
            ApiFault::CommitThenDrop => FaultSettings { commit_then_drop_rate: 0.2, ..none },
            ApiFault::CutBodies => FaultSettings { cut_body_rate: 0.2, ..none },
            // The first request after the faults are set is owed one, so each case meets at least one. At 3% a request
            // unanswered three times (its whole 30 s budget) failed about one run of the matrix in a hundred.
            ApiFault::NoAnswer => FaultSettings { no_answer_rate: 0.005, ..none },
            ApiFault::All => FaultSettings {
                error_rate: 0.1,
                throttle_rate: 0.1,
                retry_after_seconds: 1,
                latency_milliseconds: 50,
                conflict_rate: 0.1,
                cut_watches_after_seconds: Some(2.0),
                commit_then_error_rate: 0.05,
                commit_then_drop_rate: 0.05,
                cut_body_rate: 0.05,
                no_answer_rate: 0.01,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Kill,
    Term,
}

/// Where a release is when the signal comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Preflight,
    Deploy,
    Gate,
    Stage(usize),
    Promote,
    ScaleDownDelay,
    Cleanup,
    RollingBack,
}

impl Phase {
    const ALL: [Phase; 9] = [
        Phase::Preflight,
        Phase::Deploy,
        Phase::Gate,
        Phase::Stage(0),
        Phase::Stage(1),
        Phase::Promote,
        Phase::ScaleDownDelay,
        Phase::Cleanup,
        Phase::RollingBack,
    ];

    fn name(self) -> String {
        match self {
            Phase::Stage(index) => format!("stage {}", index + 1),
            Phase::ScaleDownDelay => "scale-down delay".into(),
            Phase::RollingBack => "rollback".into(),
            other => format!("{other:?}").to_lowercase(),
        }
    }

    /// The run record's phase (`Lab::phase`) that marks it; `None` for preflight, which has no record yet.
    fn recorded(self) -> Option<String> {
        match self {
            Phase::Preflight => None,
            Phase::Deploy => Some("deploy".into()),
            Phase::Gate => Some("gate".into()),
            Phase::Stage(index) => Some(format!("stage {index}")),
            Phase::Promote => Some("promote".into()),
            Phase::ScaleDownDelay => Some("scale-down-delay".into()),
            Phase::Cleanup => Some("cleanup".into()),
            Phase::RollingBack => Some("rolling-back".into()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandEdit {
    /// The route's weights set back to 100% on the live version.
    Weights,
    /// The managed route's timeout changed (a field fledge does not own).
    OtherField,
    /// The new Deployment scaled from 2 to 3.
    ScaleUp,
    /// The new Deployment scaled to 0.
    ScaleToZero,
    /// The new Deployment deleted.
    Delete,
    /// A rule other than the managed one edited (Gateway API: the `archive` rule's timeout).
    AnotherRule,
    /// A filter added to the managed route (a request header set).
    FilterAdded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Concurrent {
    /// The same release started again.
    SameRelease,
    /// A release of another version.
    OtherVersion,
    /// `fledge abort`.
    Abort,
}

/// Whether a case runs on the Gateway API too: the signal, kill -9, API-fault (the API unreachable included) and
/// hand-edit cases (and the baselines they are read against).
fn on_both_providers(script: &Script) -> bool {
    matches!(script, Script::Release { .. } | Script::Signal { .. } | Script::HandEdit(_) | Script::ApiOutage { .. })
}

/// Every case of the matrix: each on Istio, and those [`on_both_providers`] again on the Gateway API.
pub(crate) fn all() -> Vec<Case> {
    let istio = istio_cases();
    let mut cases = Vec::new();
    for case in &istio {
        if on_both_providers(&case.script) {
            cases.push(Case {
                name: format!("gateway-api: {}", case.name),
                proves: case.proves.clone(),
                provider: Provider::GatewayApi,
                script: case.script,
            });
        }
    }
    cases.push(Case {
        name: "gateway-api: hand edit: AnotherRule".into(),
        proves: "a hand edit of another rule of the HTTPRoute survives the release".into(),
        provider: Provider::GatewayApi,
        script: Script::HandEdit(HandEdit::AnotherRule),
    });
    let mut all = istio;
    all.extend(cases);
    all
}

fn istio_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: String, proves: String, script: Script| {
        cases.push(Case { name, proves, provider: Provider::Istio, script });
    };
    for (tag, expect, what) in [(HEALTHY, 0, "healthy"), (ERRORS, 11, "10% errors"), (CRASH_LOOP, 10, "crash loop")] {
        add(
            format!("baseline: {what}"),
            format!("without faults, a {what} version ends with exit {expect}"),
            Script::Release { tag, faults: None, expect },
        );
    }
    for fault in [
        ApiFault::ServerErrors,
        ApiFault::Throttling,
        ApiFault::Latency,
        ApiFault::CutWatches,
        ApiFault::Gone,
        ApiFault::Conflicts,
        ApiFault::CommitThenError,
        ApiFault::CommitThenDrop,
        ApiFault::CutBodies,
        ApiFault::NoAnswer,
        ApiFault::All,
    ] {
        for (tag, expect, what) in [(HEALTHY, 0, "healthy"), (ERRORS, 11, "errors"), (CRASH_LOOP, 10, "crash loop")] {
            if fault == ApiFault::All && tag != HEALTHY {
                continue;
            }
            add(
                format!("api {fault:?}: {what}"),
                format!("{}: the {what} version gets the same verdict as without faults", fault.describe()),
                Script::Release { tag, faults: Some(fault), expect },
            );
        }
    }
    for signal in [Signal::Kill, Signal::Term] {
        for phase in Phase::ALL {
            let proves = match (signal, phase) {
                (Signal::Kill, Phase::RollingBack) => {
                    "killed mid-rollback; running it again finishes the rollback".to_owned()
                }
                (Signal::Kill, _) => format!("killed in {}; running it again completes the release", phase.name()),
                (Signal::Term, Phase::Cleanup) => {
                    "SIGTERM during cleanup: the new version is live, cleanup finishes, exit 0".to_owned()
                }
                (Signal::Term, Phase::RollingBack) => "SIGTERM does not interrupt a rollback".to_owned(),
                (Signal::Term, _) => {
                    format!("SIGTERM in {} rolls back (13); running it again promotes", phase.name())
                }
            };
            let name = format!("{} in {}", if signal == Signal::Kill { "kill -9" } else { "SIGTERM" }, phase.name());
            add(name, proves, Script::Signal { signal, phase });
        }
    }
    add(
        "prometheus down 6 s".into(),
        "Prometheus stopped during stage 1 and restarted: the errored rounds hold the stage, then it passes".into(),
        Script::PrometheusOutage { seconds: Some(6), expect: 0 },
    );
    add(
        "prometheus down for good".into(),
        "Prometheus stopped during stage 1 for good: rolled back when errored rounds reach queryErrorLimit (11)".into(),
        Script::PrometheusOutage { seconds: None, expect: 11 },
    );
    add(
        "prometheus unreachable".into(),
        "Prometheus never reachable: preflight fails (3) and nothing in the cluster changes".into(),
        Script::PrometheusUnreachable,
    );
    for (edit, proves) in [
        (HandEdit::Weights, "weights set back by hand during a stage: the release stops and rolls back (14)"),
        (HandEdit::OtherField, "a hand edit of a field fledge does not own survives the release"),
        (HandEdit::ScaleUp, "the new Deployment scaled up by hand: the release still promotes"),
        (HandEdit::ScaleToZero, "the new Deployment scaled to 0 by hand: the release stops and rolls back (14)"),
        (HandEdit::Delete, "the new Deployment deleted by hand: the release stops and rolls back (14)"),
        (HandEdit::FilterAdded, "a filter added by hand to the managed route during the release survives it"),
    ] {
        add(format!("hand edit: {edit:?}"), proves.into(), Script::HandEdit(edit));
    }
    for (tag, at, expect, what) in [
        (HEALTHY, OutageAt::Stage, 0, "healthy, mid-stage"),
        (ERRORS, OutageAt::Stage, 11, "errors, mid-stage"),
        (CRASH_LOOP, OutageAt::Gate, 10, "crash loop, mid-gate"),
        (ERRORS, OutageAt::Rollback, 11, "errors, mid-rollback"),
        (CRASH_LOOP, OutageAt::Rollback, 10, "crash loop, mid-rollback"),
        (HEALTHY, OutageAt::Rollback, 13, "healthy, mid-rollback after SIGTERM"),
    ] {
        add(
            format!("api unreachable 10 s: {what}"),
            format!(
                "the API refuses connections for 10 s ({what}): requests are retried, the lock holds, exit {expect}"
            ),
            Script::ApiOutage { tag, at, expect },
        );
    }
    for mode in [PrometheusFault::Slow, PrometheusFault::Warnings, PrometheusFault::Garbage] {
        for (tag, expect, what) in [(HEALTHY, 0, "healthy"), (ERRORS, 11, "errors"), (CRASH_LOOP, 10, "crash loop")] {
            let how = match mode {
                PrometheusFault::Slow => "answering 3 s late, past prometheus.timeout (2 s), for 6 s",
                PrometheusFault::Warnings => "answering with a warnings field, for 6 s",
                PrometheusFault::Garbage => "answering 200 with a body that is not JSON, for 6 s",
            };
            add(
                format!("prometheus {mode:?}: {what}"),
                format!("Prometheus {how}: the {what} version gets the same verdict as without faults"),
                Script::PrometheusFault { mode, tag, expect },
            );
        }
    }
    add(
        "lock taken over: SIGSTOP past the lease".into(),
        "a run frozen mid-stage past its lease is taken over and finished by another; resumed, it writes nothing more and exits 6".into(),
        Script::Takeover,
    );
    for (concurrent, proves) in [
        (Concurrent::SameRelease, "the same release twice at once: the second is locked (5), the first promotes"),
        (Concurrent::OtherVersion, "another version while one is in flight: locked (5), the first promotes"),
        (Concurrent::Abort, "fledge abort during a stage: the run rolls back, both exit 13"),
    ] {
        add(format!("concurrent: {concurrent:?}"), proves.into(), Script::Concurrent(concurrent));
    }
    cases
}

/// What a case saw: the exit code of each fledge command, and every expectation that did not hold.
#[derive(Default)]
pub(crate) struct Observed {
    pub(crate) codes: Vec<i32>,
    pub(crate) problems: Vec<String>,
    pub(crate) invariant_checked: bool,
}

impl Observed {
    /// A case that failed before it could run.
    pub(crate) fn failed(problem: String) -> Observed {
        Observed { problems: vec![problem], ..Observed::default() }
    }

    /// Every expectation held and the invariant was checked.
    pub(crate) fn passed(&self) -> bool {
        self.invariant_checked && self.problems.is_empty()
    }

    fn expect_code(&mut self, what: &str, finished: &crate::support::Finished, expected: i32) {
        self.codes.push(finished.code);
        self.rollback_within_its_deadline(what, finished);
        if finished.code != expected {
            let last: Vec<String> = finished.events.iter().rev().take(4).rev().map(Value::to_string).collect();
            let other: Vec<&String> = finished.other.iter().rev().take(4).collect();
            self.problems.push(format!(
                "{what} exited {} (expected {expected}): {}; last events: {}; other: {other:?}",
                finished.code,
                finished.stdout.trim(),
                last.join(" ")
            ));
        }
    }

    /// A rollback that started ends (rolled back, or failed) within its own 2-minute deadline.
    fn rollback_within_its_deadline(&mut self, what: &str, finished: &crate::support::Finished) {
        let time = |name: &str| {
            finished
                .events
                .iter()
                .find(|event| event["event"] == name)
                .and_then(|event| event["time"].as_str()?.parse::<jiff::Timestamp>().ok())
        };
        let Some(started) = time("rolling-back") else { return };
        match time("rolled-back").or_else(|| time("rollback-failed")) {
            Some(ended) if ended.duration_since(started).as_secs_f64() <= 120.0 => {}
            Some(ended) => self.problems.push(format!(
                "{what}: the rollback took {:.0} s, more than its 2-minute deadline",
                ended.duration_since(started).as_secs_f64()
            )),
            None if matches!(finished.code, -1 | 6 | 20) => {}
            None => self.problems.push(format!("{what}: a rollback started and never ended")),
        }
    }

    fn invariant(&mut self, lab: &Lab, live: &str, expected: &Value) {
        self.invariant_checked = true;
        self.problems.extend(lab.invariant(live, expected));
    }
}

/// The live version a finished release leaves: the new one when promoted, otherwise the old one.
fn live_after(code: i32) -> &'static str {
    if code == 0 { "v2" } else { "v1" }
}

/// Runs a case on its lab; `prometheus` is the Prometheus scraping every lab.
pub(crate) async fn run(script: Script, lab: &Lab, prometheus: &str) -> Observed {
    let mut observed = Observed::default();
    let original = lab.route();
    let result = match script {
        Script::Release { tag, faults, expect } => release(lab, prometheus, tag, faults, expect, &mut observed).await,
        Script::Signal { signal, phase } => signal_case(lab, prometheus, signal, phase, &mut observed).await,
        Script::PrometheusOutage { seconds, expect } => outage(lab, seconds, expect, &mut observed).await,
        Script::PrometheusUnreachable => unreachable(lab, &mut observed).await,
        Script::HandEdit(edit) => hand_edit(lab, prometheus, edit, &original, &mut observed).await,
        Script::Concurrent(concurrent) => concurrent_case(lab, prometheus, concurrent, &mut observed).await,
        Script::ApiOutage { tag, at, expect } => api_outage(lab, prometheus, tag, at, expect, &mut observed).await,
        Script::PrometheusFault { mode, tag, expect } => {
            prometheus_fault(lab, prometheus, mode, tag, expect, &mut observed).await
        }
        Script::Takeover => takeover(lab, prometheus, &mut observed).await,
    };
    if let Err(problem) = result {
        observed.problems.push(problem);
    }
    observed
}

/// The manifest's text for `tag`: a version with errors tolerates no failed round, so it is judged in its first
/// stage (a healthy one tolerates three, [`Lab::manifest`]).
fn policy_for(tag: &str) -> impl FnOnce(String) -> String + '_ {
    move |text| {
        if tag == ERRORS { crate::support::judged_strictly(text) } else { text }
    }
}

async fn release(
    lab: &Lab,
    prometheus: &str,
    tag: &str,
    faults: Option<ApiFault>,
    expect: i32,
    observed: &mut Observed,
) -> Result<(), String> {
    let original = lab.route();
    let manifest = lab.manifest("v2", tag, prometheus, policy_for(tag));
    let _compaction = faults.filter(|fault| *fault == ApiFault::Gone).map(|_| {
        let store = lab.sim.store().clone();
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                store.compact();
            }
        }))
    });
    if let Some(fault) = faults {
        lab.set_faults(fault.settings());
    }
    let finished = lab.fledge(&["run"], &manifest).await;
    lab.set_faults(FaultSettings::default());
    observed.expect_code("the release", &finished, expect);
    observed.invariant(lab, live_after(expect), &lab.routed_to(&original, live_after(expect)));
    if faults == Some(ApiFault::Gone) && lab.sim.expired_watches() == 0 {
        observed.problems.push("no watch was answered 410 Gone: the case did not test what it names".into());
    }
    if let Some(fault) = faults {
        let injected = lab.sim.faults().injected();
        let counts = match fault {
            ApiFault::CommitThenError => vec![injected.commit_then_error],
            ApiFault::CommitThenDrop => vec![injected.commit_then_drop],
            ApiFault::CutBodies => vec![injected.cut_bodies],
            ApiFault::NoAnswer => vec![injected.no_answers],
            ApiFault::All => {
                vec![injected.commit_then_error, injected.commit_then_drop, injected.cut_bodies, injected.no_answers]
            }
            _ => vec![],
        };
        if counts.contains(&0) {
            observed.problems.push(format!("the simulator injected {injected:?}: the case did not test what it names"));
        }
    }
    Ok(())
}

/// Whether the release is in `phase` now, by its run record (preflight: the lock is taken, no record yet).
fn is_in(lab: &Lab, phase: Phase) -> bool {
    match phase.recorded() {
        None => lab.lock_holder().is_some() && lab.record().is_none(),
        Some(recorded) => lab.phase() == recorded,
    }
}

/// A background task that ends with its owner (also when a case times out).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits until the release is in `phase`; for a stage, a second into it (its weight set, a round under way). Fails
/// when fledge ended first, or when the phase is over by the time the wait ends.
async fn reach(lab: &Lab, running: &mut crate::support::Running, phase: Phase) -> Result<(), String> {
    lab.until(&phase.name(), Duration::from_secs(90), |lab| is_in(lab, phase)).await?;
    if let Phase::Stage(_) = phase {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if running.child.try_wait().ok().flatten().is_some() {
        return Err(format!("fledge ended before it could be interrupted in {}", phase.name()));
    }
    if !is_in(lab, phase) {
        return Err(format!("{} was over before the interruption (phase: {})", phase.name(), lab.phase()));
    }
    Ok(())
}

async fn signal_case(
    lab: &Lab,
    prometheus: &str,
    signal: Signal,
    phase: Phase,
    observed: &mut Observed,
) -> Result<(), String> {
    let original = lab.route();
    let tag = if phase == Phase::RollingBack { ERRORS } else { HEALTHY };
    let manifest = lab.manifest("v2", tag, prometheus, policy_for(tag));
    // Slow API requests widen the short phases (promotion, cleanup, rollback) so the signal lands inside them.
    lab.set_faults(FaultSettings { latency_milliseconds: 250, ..FaultSettings::default() });
    let mut running = lab.spawn(&["run"], &manifest);
    let reached = reach(lab, &mut running, phase).await;
    if reached.is_ok() {
        running.signal(if signal == Signal::Kill { "KILL" } else { "TERM" });
    }
    let first = running.finish().await;
    lab.set_faults(FaultSettings::default());
    reached?;
    let final_expected = if phase == Phase::RollingBack { 11 } else { 0 };
    match signal {
        Signal::Kill => {
            observed.expect_code("the killed run", &first, -1);
            let again = lab.run_until_unlocked(&manifest).await;
            observed.expect_code("the same command again", &again, final_expected);
            if phase != Phase::Preflight && again.event("resuming").is_none() {
                observed.problems.push("the second run did not resume the release in flight".into());
            }
            observed.invariant(lab, live_after(final_expected), &lab.routed_to(&original, live_after(final_expected)));
        }
        Signal::Term => {
            let first_expected = match phase {
                Phase::Cleanup => 0,
                Phase::RollingBack => 11,
                _ => 13,
            };
            observed.expect_code("the run signalled", &first, first_expected);
            observed.invariant(lab, live_after(first_expected), &lab.routed_to(&original, live_after(first_expected)));
            let again = lab.fledge(&["run"], &manifest).await;
            observed.expect_code("the same command again", &again, final_expected);
            observed.invariant(lab, live_after(final_expected), &lab.routed_to(&original, live_after(final_expected)));
        }
    }
    Ok(())
}

async fn outage(lab: &Lab, seconds: Option<u64>, expect: i32, observed: &mut Observed) -> Result<(), String> {
    let original = lab.route();
    let mut prometheus = TestPrometheus::start(&[&lab.metrics_target()]).await;
    crate::wait_for_traffic(&prometheus.url, &[lab.namespace.as_str()]).await;
    let manifest = lab.manifest("v2", HEALTHY, &prometheus.url, |text| match seconds {
        // A short outage is tolerated: 4 errored rounds in a row; for good, the default limit (3 in a row) rolls back.
        Some(_) => text.replace("  interval: 3s\n", "  interval: 3s\n  queryErrorLimit: 5\n"),
        None => text,
    });
    let mut running = lab.spawn(&["run"], &manifest);
    let reached = reach(lab, &mut running, Phase::Stage(0)).await;
    prometheus.stop().await;
    if let Some(seconds) = seconds {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        prometheus.restart().await;
    }
    let finished = running.finish().await;
    reached?;
    observed.expect_code("the release", &finished, expect);
    observed.invariant(lab, live_after(expect), &lab.routed_to(&original, live_after(expect)));
    let verdicts: Vec<&str> = finished
        .events
        .iter()
        .filter(|event| event["event"] == "round")
        .filter_map(|event| event["round"]["verdict"].as_str())
        .collect();
    let first_error = verdicts.iter().position(|verdict| *verdict == "errored");
    match (first_error, seconds) {
        (None, _) => observed.problems.push(format!("no round errored during the outage: {verdicts:?}")),
        (Some(at), Some(_)) if !verdicts[at..].contains(&"passed") => {
            observed.problems.push(format!("no round passed after Prometheus came back: {verdicts:?}"));
        }
        _ => {}
    }
    Ok(())
}

async fn unreachable(lab: &Lab, observed: &mut Observed) -> Result<(), String> {
    let original = lab.route();
    // Port 1: nothing listens there, and no test server is given a port below the ephemeral range.
    let manifest = lab.manifest("v2", HEALTHY, "http://127.0.0.1:1", |text| text);
    let finished = lab.fledge(&["run"], &manifest).await;
    observed.expect_code("the release", &finished, 3);
    observed.invariant(lab, "v1", &original);
    if lab.sim.store().get(DEPLOYMENTS, &lab.namespace, "reviews-v2").is_some() {
        observed.problems.push("Deployment reviews-v2 was created although preflight failed".into());
    }
    if lab.record().is_some() {
        observed.problems.push("a run record was written although preflight failed".into());
    }
    Ok(())
}

async fn hand_edit(
    lab: &Lab,
    prometheus: &str,
    edit: HandEdit,
    original: &Value,
    observed: &mut Observed,
) -> Result<(), String> {
    let manifest = lab.manifest("v2", HEALTHY, prometheus, |text| text);
    let mut running = lab.spawn(&["run"], &manifest);
    let reached = reach(lab, &mut running, Phase::Stage(0)).await;
    let mut expected_route = original.clone();
    if reached.is_ok() {
        match (edit, lab.provider) {
            (HandEdit::Weights, Provider::Istio) => lab.edit(lab.provider.route_resource(), "reviews", |service| {
                for entry in service["spec"]["http"][0]["route"].as_array_mut().into_iter().flatten() {
                    let weight = if entry["destination"]["subset"] == "v1" { 100 } else { 0 };
                    entry["weight"] = json!(weight);
                }
            }),
            (HandEdit::Weights, Provider::GatewayApi) => lab.edit(lab.provider.route_resource(), "reviews", |route| {
                for entry in route["spec"]["rules"][1]["backendRefs"].as_array_mut().into_iter().flatten() {
                    let weight = if entry["name"] == "reviews-v1" { 100 } else { 0 };
                    entry["weight"] = json!(weight);
                }
            }),
            (HandEdit::OtherField | HandEdit::AnotherRule | HandEdit::FilterAdded, provider) => {
                let (pointer, value) = match (edit, provider) {
                    (HandEdit::OtherField, Provider::Istio) => ("/spec/http/0/timeout", json!("3s")),
                    (HandEdit::OtherField, Provider::GatewayApi) => {
                        ("/spec/rules/1/timeouts", json!({"request": "3s"}))
                    }
                    (HandEdit::AnotherRule, _) => ("/spec/rules/0/timeouts", json!({"request": "5s"})),
                    (_, Provider::Istio) => {
                        ("/spec/http/0/headers", json!({"request": {"set": {"x-edited": "by-hand"}}}))
                    }
                    (_, Provider::GatewayApi) => (
                        "/spec/rules/1/filters",
                        json!([{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-edited", "value": "by-hand"}]}}]),
                    ),
                };
                lab.edit(lab.provider.route_resource(), "reviews", |route| set(route, pointer, value.clone()));
                set(&mut expected_route, pointer, value);
            }
            (HandEdit::ScaleUp, _) => lab.edit(DEPLOYMENTS, "reviews-v2", |deployment| {
                deployment["spec"]["replicas"] = json!(3);
            }),
            (HandEdit::ScaleToZero, _) => lab.edit(DEPLOYMENTS, "reviews-v2", |deployment| {
                deployment["spec"]["replicas"] = json!(0);
            }),
            (HandEdit::Delete, _) => lab.delete(DEPLOYMENTS, "reviews-v2"),
        }
    }
    let finished = running.finish().await;
    reached?;
    let expect = match edit {
        HandEdit::Weights | HandEdit::ScaleToZero | HandEdit::Delete => 14,
        HandEdit::OtherField | HandEdit::ScaleUp | HandEdit::AnotherRule | HandEdit::FilterAdded => 0,
    };
    observed.expect_code("the release", &finished, expect);
    observed.invariant(lab, live_after(expect), &lab.routed_to(&expected_route, live_after(expect)));
    Ok(())
}

async fn concurrent_case(
    lab: &Lab,
    prometheus: &str,
    concurrent: Concurrent,
    observed: &mut Observed,
) -> Result<(), String> {
    let original = lab.route();
    let manifest = lab.manifest("v2", HEALTHY, prometheus, |text| text);
    let mut running = lab.spawn(&["run"], &manifest);
    let reached = reach(lab, &mut running, Phase::Stage(0)).await;
    let second = match concurrent {
        Concurrent::SameRelease => lab.fledge(&["run"], &manifest).await,
        Concurrent::OtherVersion => lab.fledge(&["run"], &lab.manifest("v3", "3.0.0", prometheus, |text| text)).await,
        Concurrent::Abort => lab.fledge(&["abort"], &manifest).await,
    };
    let first = running.finish().await;
    reached?;
    let expect = if concurrent == Concurrent::Abort { (13, 13) } else { (5, 0) };
    observed.expect_code("the second command", &second, expect.0);
    observed.expect_code("the release", &first, expect.1);
    observed.invariant(lab, live_after(expect.1), &lab.routed_to(&original, live_after(expect.1)));
    Ok(())
}

async fn api_outage(
    lab: &Lab,
    prometheus: &str,
    tag: &str,
    at: OutageAt,
    expect: i32,
    observed: &mut Observed,
) -> Result<(), String> {
    let original = lab.route();
    let manifest = lab.manifest("v2", tag, prometheus, policy_for(tag));
    if at != OutageAt::Stage {
        // Slow API requests widen the gate and the rollback so the outage starts inside them.
        lab.set_faults(FaultSettings { latency_milliseconds: 250, ..FaultSettings::default() });
    }
    let mut running = lab.spawn(&["run"], &manifest);
    let reached = match at {
        OutageAt::Stage => reach(lab, &mut running, Phase::Stage(0)).await,
        OutageAt::Gate => reach(lab, &mut running, Phase::Gate).await,
        OutageAt::Rollback => {
            let signalled = if tag == HEALTHY {
                let reached = reach(lab, &mut running, Phase::Stage(0)).await;
                if reached.is_ok() {
                    running.signal("TERM");
                }
                reached
            } else {
                Ok(())
            };
            match signalled {
                Ok(()) => lab.until("the rollback", Duration::from_secs(90), |lab| lab.phase() == "rolling-back").await,
                error => error,
            }
        }
    };
    let mut during = Ok(());
    if reached.is_ok() {
        let outage = lab.sim.api_outage(Duration::from_secs(10)).await;
        let phase = lab.phase();
        let expected_phase = match at {
            OutageAt::Stage => "stage 0",
            OutageAt::Gate => "gate",
            OutageAt::Rollback => "rolling-back",
        };
        if phase != expected_phase {
            during = Err(format!("the outage started in {phase}, not in {expected_phase}"));
        }
        outage.ended().await;
    }
    let finished = running.finish().await;
    lab.set_faults(FaultSettings::default());
    reached?;
    during?;
    observed.expect_code("the release", &finished, expect);
    observed.invariant(lab, live_after(expect), &lab.routed_to(&original, live_after(expect)));
    Ok(())
}

async fn prometheus_fault(
    lab: &Lab,
    prometheus: &str,
    fault: PrometheusFault,
    tag: &str,
    expect: i32,
    observed: &mut Observed,
) -> Result<(), String> {
    let original = lab.route();
    let proxy = PrometheusFaults::start(prometheus).await;
    let url = proxy.url.clone();
    let manifest = lab.manifest("v2", tag, &url, |text| {
        // 2 s per query; a healthy version rides out the errored rounds (up to 4 in a row).
        let text = text.replace(
            &format!("prometheus: {{url: \"{url}\"}}"),
            &format!("prometheus: {{url: \"{url}\", timeout: 2s}}"),
        );
        let text = if tag == HEALTHY {
            text.replace("  interval: 3s\n", "  interval: 3s\n  queryErrorLimit: 5\n")
        } else {
            text
        };
        policy_for(tag)(text)
    });
    let mut running = lab.spawn(&["run"], &manifest);
    // A crash-looping version never reaches a stage: its fault starts once the release is under way.
    let reached = if tag == CRASH_LOOP {
        lab.until("the release under way", Duration::from_secs(90), |lab| lab.record().is_some()).await
    } else {
        reach(lab, &mut running, Phase::Stage(0)).await
    };
    let mode = match fault {
        PrometheusFault::Slow => PrometheusMode::Slow(Duration::from_secs(3)),
        PrometheusFault::Warnings => PrometheusMode::Warnings,
        PrometheusFault::Garbage => PrometheusMode::Garbage,
    };
    if reached.is_ok() {
        proxy.set(mode);
        // The fault lasts 6 s (two rounds), then Prometheus answers well again.
        tokio::time::sleep(Duration::from_secs(6)).await;
        proxy.set(PrometheusMode::Pass);
    }
    let finished = running.finish().await;
    reached?;
    observed.expect_code("the release", &finished, expect);
    observed.invariant(lab, live_after(expect), &lab.routed_to(&original, live_after(expect)));
    if tag != CRASH_LOOP && proxy.answered(mode) == 0 {
        observed.problems.push(format!("no query was answered {mode:?}: the case did not test what it names"));
    }
    let errored =
        finished.events.iter().any(|event| event["event"] == "round" && event["round"]["verdict"] == "errored");
    if tag == HEALTHY && fault != PrometheusFault::Warnings && !errored {
        observed.problems.push("no round errored while Prometheus answered badly".into());
    }
    Ok(())
}

async fn takeover(lab: &Lab, prometheus: &str, observed: &mut Observed) -> Result<(), String> {
    let original = lab.route();
    let manifest = lab.manifest("v2", HEALTHY, prometheus, |text| {
        text.replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 12s}")
    });
    let mut first = lab.spawn(&["run"], &manifest);
    let reached = reach(lab, &mut first, Phase::Stage(0)).await;
    let Some(holder) = lab.lock_holder().filter(|_| reached.is_ok()) else {
        let _ = first.finish().await;
        return reached.and(Err("the first run held no lock mid-stage".into()));
    };
    first.signal("STOP");
    let frozen_at = jiff::Timestamp::now();
    // The same command again: locked until the frozen run's lease expires, then it takes over and finishes.
    let second = lab.run_until_unlocked(&manifest).await;
    observed.expect_code("the run taking over", &second, 0);
    if second.event("resuming").is_none() {
        observed.problems.push("the second run did not resume the release in flight".into());
    }
    first.signal("CONT");
    let resumed = first.finish().await;
    observed.expect_code("the frozen run, resumed", &resumed, 6);
    let agent = format!("fledge/{} (run {holder})", env!("CARGO_PKG_VERSION"));
    let writes = lab.sim.writes();
    let taken_over_at =
        writes.iter().find(|write| write.at > frozen_at && write.user_agent != agent).map(|write| write.at);
    match taken_over_at {
        None => observed.problems.push("no other run wrote after the freeze: nothing took over".into()),
        Some(taken_over_at) => {
            let late: Vec<String> = writes
                .iter()
                .filter(|write| write.user_agent == agent && write.at >= taken_over_at)
                .map(|write| format!("{} {} at {}", write.method, write.path, write.at))
                .collect();
            if !late.is_empty() {
                observed.problems.push(format!("the frozen run wrote after the takeover: {late:?}"));
            }
        }
    }
    observed.invariant(lab, "v2", &lab.routed_to(&original, "v2"));
    Ok(())
}

/// Sets the field at `pointer` (its parent must exist) to `value`.
fn set(object: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a parent");
    let parent = object.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent} to set {key} in"));
    parent[key] = value;
}
