//! The cases of the fault matrix: what is done to a release, and what fledge must answer.

use crate::lab::{Lab, routed_to};
use fledge_sim::faults::FaultSettings;
use fledge_sim::resources::{DEPLOYMENTS, VIRTUAL_SERVICES};
use fledge_testkit::TestPrometheus;
use serde_json::{Value, json};
use std::time::Duration;

/// One case: a name for the table, what it proves, and what is done.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) proves: String,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiFault {
    ServerErrors,
    Throttling,
    Latency,
    CutWatches,
    Gone,
    Conflicts,
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
            ApiFault::All => FaultSettings {
                error_rate: 0.1,
                throttle_rate: 0.1,
                retry_after_seconds: 1,
                latency_milliseconds: 50,
                conflict_rate: 0.1,
                cut_watches_after_seconds: Some(2.0),
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

/// Every case of the matrix.
pub(crate) fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: String, proves: String, script: Script| cases.push(Case { name, proves, script });
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
    ] {
        add(format!("hand edit: {edit:?}"), proves.into(), Script::HandEdit(edit));
    }
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
    let original = lab.virtual_service();
    let result = match script {
        Script::Release { tag, faults, expect } => release(lab, prometheus, tag, faults, expect, &mut observed).await,
        Script::Signal { signal, phase } => signal_case(lab, prometheus, signal, phase, &mut observed).await,
        Script::PrometheusOutage { seconds, expect } => outage(lab, seconds, expect, &mut observed).await,
        Script::PrometheusUnreachable => unreachable(lab, &mut observed).await,
        Script::HandEdit(edit) => hand_edit(lab, prometheus, edit, &original, &mut observed).await,
        Script::Concurrent(concurrent) => concurrent_case(lab, prometheus, concurrent, &mut observed).await,
    };
    if let Err(problem) = result {
        observed.problems.push(problem);
    }
    observed
}

/// The manifest's text for `tag`: a version with errors tolerates no failed round, so it is judged in its first
/// stage; a healthy one keeps the default (one failed round), as its 0.1% errors may fail a round by chance.
fn policy_for(tag: &str) -> impl FnOnce(String) -> String + '_ {
    move |text| {
        if tag == ERRORS { text.replace("  interval: 3s\n", "  interval: 3s\n  failureLimit: 0\n") } else { text }
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
    let original = lab.virtual_service();
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
    observed.invariant(lab, live_after(expect), &routed_to(&original, live_after(expect)));
    if faults == Some(ApiFault::Gone) && lab.sim.expired_watches() == 0 {
        observed.problems.push("no watch was answered 410 Gone: the case did not test what it names".into());
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
    let original = lab.virtual_service();
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
            observed.invariant(lab, live_after(final_expected), &routed_to(&original, live_after(final_expected)));
        }
        Signal::Term => {
            let first_expected = match phase {
                Phase::Cleanup => 0,
                Phase::RollingBack => 11,
                _ => 13,
            };
            observed.expect_code("the run signalled", &first, first_expected);
            observed.invariant(lab, live_after(first_expected), &routed_to(&original, live_after(first_expected)));
            let again = lab.fledge(&["run"], &manifest).await;
            observed.expect_code("the same command again", &again, final_expected);
            observed.invariant(lab, live_after(final_expected), &routed_to(&original, live_after(final_expected)));
        }
    }
    Ok(())
}

async fn outage(lab: &Lab, seconds: Option<u64>, expect: i32, observed: &mut Observed) -> Result<(), String> {
    let original = lab.virtual_service();
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
    observed.invariant(lab, live_after(expect), &routed_to(&original, live_after(expect)));
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
    let original = lab.virtual_service();
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
        match edit {
            HandEdit::Weights => lab.edit(VIRTUAL_SERVICES, "reviews", |service| {
                for entry in service["spec"]["http"][0]["route"].as_array_mut().into_iter().flatten() {
                    let weight = if entry["destination"]["subset"] == "v1" { 100 } else { 0 };
                    entry["weight"] = json!(weight);
                }
            }),
            HandEdit::OtherField => {
                lab.edit(VIRTUAL_SERVICES, "reviews", |service| service["spec"]["http"][0]["timeout"] = json!("3s"));
                expected_route["spec"]["http"][0]["timeout"] = json!("3s");
            }
            HandEdit::ScaleUp => lab.edit(DEPLOYMENTS, "reviews-v2", |deployment| {
                deployment["spec"]["replicas"] = json!(3);
            }),
            HandEdit::ScaleToZero => lab.edit(DEPLOYMENTS, "reviews-v2", |deployment| {
                deployment["spec"]["replicas"] = json!(0);
            }),
            HandEdit::Delete => lab.delete(DEPLOYMENTS, "reviews-v2"),
        }
    }
    let finished = running.finish().await;
    reached?;
    let expect = match edit {
        HandEdit::Weights | HandEdit::ScaleToZero | HandEdit::Delete => 14,
        HandEdit::OtherField | HandEdit::ScaleUp => 0,
    };
    observed.expect_code("the release", &finished, expect);
    observed.invariant(lab, live_after(expect), &routed_to(&expected_route, live_after(expect)));
    Ok(())
}

async fn concurrent_case(
    lab: &Lab,
    prometheus: &str,
    concurrent: Concurrent,
    observed: &mut Observed,
) -> Result<(), String> {
    let original = lab.virtual_service();
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
    observed.invariant(lab, live_after(expect.1), &routed_to(&original, live_after(expect.1)));
    Ok(())
}
