//! Every transition of the release state machine, with fakes of the ports and tokio's paused clock: a release of
//! minutes runs in milliseconds, and time is asserted exactly.

mod fakes;

use fakes::{DeploymentState, Fake};
use fledge_core::analysis::RoundVerdict;
use fledge_core::{GateFailureKind, Outcome, Phase, Release, RollbackReason};
use fledge_runner::{Event, Ports, RunOptions, Runner};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Two stages (10% then 50%, 1 minute each), checks every 30 s, a 20 s scale-down delay.
fn release(extra: &str) -> Release {
    let text = format!(
        "apiVersion: fledge/v1\nkind: Release\nservice: {{name: reviews, namespace: bookinfo, version: v2}}\ndeploy: {{image: example.com/reviews:2}}\nstages:\n  - {{weight: 10, duration: 1m}}\n  - {{weight: 50, duration: 1m}}\npromote: {{scaleDownDelay: 20s}}\n{extra}"
    );
    fledge_manifest::parse(&text).unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render("test", &text))).release
}

struct Run {
    outcome: Outcome,
    events: Vec<Event>,
    took: Duration,
}

fn ports(fake: &Fake) -> Ports<Fake, Fake, Fake, Fake, Fake> {
    Ports {
        workloads: fake.clone(),
        gate: fake.clone(),
        traffic: fake.clone(),
        metrics: fake.clone(),
        state: fake.clone(),
    }
}

async fn run_with(fake: &Fake, release: Release, options: RunOptions, cancel: watch::Receiver<bool>) -> Run {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let ports = ports(fake);
    let runner = Runner::new(
        release,
        &ports,
        options,
        Arc::new(move |event: &Event| sink.lock().unwrap().push(event.clone())),
        cancel,
    );
    let start = Instant::now();
    let outcome = runner.run().await;
    let took = start.elapsed();
    let events = events.lock().unwrap().clone();
    Run { outcome, events, took }
}

async fn run(fake: &Fake, release: Release) -> Run {
    let (_cancel, receiver) = watch::channel(false);
    run_with(fake, release, RunOptions::default(), receiver).await
}

fn stage(index: usize) -> Phase {
    Phase::Stage { index }
}

#[tokio::test(start_paused = true)]
async fn a_healthy_release_walks_every_phase_and_promotes() {
    let fake = Fake::new();
    let run = run(&fake, release("")).await;
    assert_eq!(run.outcome, Outcome::Promoted);
    // 5 s gate, two 1-minute stages, 20 s delay.
    assert_eq!(run.took, Duration::from_secs(5 + 60 + 60 + 20));
    let world = fake.world();
    assert_eq!(
        world.saved_phases,
        [
            Phase::Deploy,
            Phase::Gate,
            stage(0),
            stage(1),
            Phase::Promote,
            Phase::ScaleDownDelay,
            Phase::Cleanup,
            Phase::Done
        ]
    );
    assert_eq!(world.weight, 100);
    assert_eq!(world.subsets, ["v2"], "the old subset is removed after promotion");
    assert_eq!(world.deployments.keys().collect::<Vec<_>>(), ["reviews-v2"], "the old Deployment is deleted");
    assert_eq!(world.rounds_run, 4, "two rounds per stage");
    assert_eq!(world.record.as_ref().unwrap().outcome, Some(Outcome::Promoted));
    assert_eq!(world.lock, None, "the lock is released");
    let effects: Vec<&str> = world.log.iter().map(String::as_str).filter(|step| !step.starts_with("save")).collect();
    assert_eq!(
        effects,
        [
            "metrics preflight",
            "add_subset v2",
            "deploy",
            "gate",
            "set_weight 10",
            "set_weight 50",
            "set_weight 100",
            "retire_live",
            "retire reviews-v1 delete"
        ]
    );
    assert!(matches!(run.events.last(), Some(Event::Finished { outcome: Outcome::Promoted })));
}

#[tokio::test(start_paused = true)]
async fn the_record_is_written_before_each_phase_effects() {
    let fake = Fake::new();
    run(&fake, release("")).await;
    let log = fake.world().log.clone();
    let position =
        |step: &str| log.iter().position(|logged| logged == step).unwrap_or_else(|| panic!("{step}: {log:?}"));
    assert!(position("save deploy") < position("add_subset v2"));
    assert!(position("save gate") < position("gate"));
    assert!(position("save stage 1") < position("set_weight 10"));
    assert!(position("save stage 2") < position("set_weight 50"));
    assert!(position("save promote") < position("set_weight 100"));
    assert!(position("save cleanup") < position("retire reviews-v1 delete"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_gate_rolls_back_before_any_traffic() {
    let fake = Fake::new();
    fake.world().gate_failure = Some(GateFailureKind::CrashLoop);
    let run = run(&fake, release("")).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::PodHealth));
    let world = fake.world();
    assert!(!world.log.iter().any(|step| step.starts_with("set_weight")), "no traffic shifted: {:?}", world.log);
    assert!(world.route_pristine && world.subsets == ["v1"], "route and subsets restored");
    assert_eq!(world.deployments["reviews-v2"], DeploymentState::ScaledToZero, "rollback.newVersion default");
    assert_eq!(world.deployments["reviews-v1"], DeploymentState::Running);
    assert!(run.events.iter().any(|event| matches!(event, Event::GateFailed { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_gate_timeout_rolls_back_as_a_deadline() {
    let fake = Fake::new();
    fake.world().gate_failure = Some(GateFailureKind::Timeout);
    let run = run(&fake, release("gate: {timeout: 2m}\n")).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Deadline));
    assert_eq!(run.took, Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn failed_rounds_beyond_the_limit_roll_back_on_metrics() {
    let fake = Fake::new();
    // Stage 1 passes with one tolerated failure; stage 2 fails twice.
    fake.world().rounds =
        [RoundVerdict::Passed, RoundVerdict::Failed, RoundVerdict::Failed, RoundVerdict::Failed].into();
    let run = run(&fake, release("analysis: {failureLimit: 1}\n")).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Metrics));
    let world = fake.world();
    assert_eq!(world.rounds_run, 4, "one failure per stage is tolerated; the second of a stage rolls back");
    assert_eq!(world.saved_phases.iter().filter(|phase| matches!(phase, Phase::Stage { .. })).count(), 2);
    assert!(world.route_pristine);
    let detail = match run.events.iter().find(|event| matches!(event, Event::RollingBack { .. })) {
        Some(Event::RollingBack { detail, .. }) => detail.clone(),
        other => panic!("{other:?}"),
    };
    assert!(detail.contains("success-rate = 97.00% (>= 99%)"), "the breach is named: {detail}");
}

#[tokio::test(start_paused = true)]
async fn failures_are_counted_per_stage() {
    let fake = Fake::new();
    // One failure in each stage: tolerated by failureLimit 1 in both.
    fake.world().rounds =
        [RoundVerdict::Failed, RoundVerdict::Passed, RoundVerdict::Passed, RoundVerdict::Failed, RoundVerdict::Passed]
            .into();
    let run = run(&fake, release("analysis: {failureLimit: 1}\n")).await;
    assert_eq!(run.outcome, Outcome::Promoted);
}

#[tokio::test(start_paused = true)]
async fn no_data_holds_the_stage_clock_until_max_hold() {
    let fake = Fake::new();
    fake.world().rounds =
        [RoundVerdict::NoData, RoundVerdict::NoData, RoundVerdict::Passed, RoundVerdict::Passed].into();
    let held = run(&fake, release("analysis: {maxHold: 2m}\n")).await;
    assert_eq!(held.outcome, Outcome::Promoted);
    assert_eq!(held.took, Duration::from_secs(5 + 60 + 60 + 60 + 20), "the first stage waited 1 minute for data");

    let fake = Fake::new();
    fake.world().rounds = std::iter::repeat_n(RoundVerdict::NoData, 10).collect();
    let starved = run(&fake, release("analysis: {maxHold: 1m30s}\n")).await;
    assert_eq!(starved.outcome, Outcome::RolledBack(RollbackReason::Deadline));
    assert_eq!(fake.world().rounds_run, 3, "30 s rounds until 1m30s of holding");
}

#[tokio::test(start_paused = true)]
async fn query_errors_roll_back_at_the_error_limit_and_never_pass() {
    let fake = Fake::new();
    fake.world().rounds = std::iter::repeat_n(RoundVerdict::Errored, 10).collect();
    let run = run(&fake, release("analysis: {queryErrorLimit: 3}\n")).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Metrics));
    assert_eq!(fake.world().rounds_run, 3);
    assert!(
        !run.events.iter().any(|event| matches!(event, Event::StagePassed { .. })),
        "a stage never passes on errors"
    );
}

#[tokio::test(start_paused = true)]
async fn pods_failing_mid_stage_roll_back_at_once_not_at_the_next_round() {
    let fake = Fake::new();
    // Pods crash 75 s after the gate: 15 s into stage 2.
    fake.world().crash_after = Some(Duration::from_secs(75));
    let run = run(&fake, release("")).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::PodHealth));
    assert_eq!(run.took, Duration::from_secs(5 + 75), "no wait for the next 30 s round");
    assert!(fake.world().route_pristine);
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_rolls_back_with_the_cancelled_outcome() {
    let fake = Fake::new();
    let (cancel, receiver) = watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(50)).await;
        cancel.send(true).unwrap();
        std::future::pending::<()>().await;
    });
    let run = run_with(&fake, release(""), RunOptions::default(), receiver).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Cancelled));
    assert_eq!(run.took, Duration::from_secs(50));
    let world = fake.world();
    assert!(world.route_pristine && world.subsets == ["v1"]);
    assert_eq!(world.record.as_ref().unwrap().outcome, Some(Outcome::RolledBack(RollbackReason::Cancelled)));
}

#[tokio::test(start_paused = true)]
async fn an_abort_request_from_another_process_rolls_back_at_the_next_round() {
    let fake = Fake::new();
    let shared = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(40)).await;
        shared.world().abort = true;
    });
    let run = run(&fake, release("")).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Cancelled));
    assert_eq!(run.took, Duration::from_secs(5 + 60), "seen at the round after the request");
}

/// Runs a release where, 40 s in (stage 1), someone changes the cluster with `edit`.
async fn edited_by_hand(edit: fn(&mut fakes::World)) -> (Fake, Run) {
    let fake = Fake::new();
    let shared = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(40)).await;
        edit(&mut shared.world());
    });
    let run = run(&fake, release("")).await;
    (fake, run)
}

#[tokio::test(start_paused = true)]
async fn weights_changed_by_hand_during_a_stage_stop_the_release_at_the_next_round() {
    let (fake, run) = edited_by_hand(|world| world.weight = 0).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Error));
    assert_eq!(run.took, Duration::from_secs(5 + 60), "seen at the round after the edit, not overridden");
    let detail = run.events.iter().find_map(|event| match event {
        Event::RollingBack { detail, .. } => Some(detail.clone()),
        _ => None,
    });
    assert!(detail.unwrap().contains("the route changed under the release"));
    assert!(fake.world().route_pristine);
}

#[tokio::test(start_paused = true)]
async fn the_new_deployment_scaled_to_zero_by_hand_stops_the_release() {
    let (_fake, run) = edited_by_hand(|world| {
        world.deployments.insert("reviews-v2".into(), DeploymentState::ScaledToZero);
    })
    .await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Error));
    let detail = run.events.iter().find_map(|event| match event {
        Event::RollingBack { detail, .. } => Some(detail.clone()),
        _ => None,
    });
    assert!(detail.unwrap().contains("Deployment reviews-v2 was scaled to 0"));
}

#[tokio::test(start_paused = true)]
async fn an_approval_stage_stops_and_approve_finishes_the_release() {
    let fake = Fake::new();
    let text = "stages:\n  - {weight: 10, duration: 1m, approval: true}\n  - {weight: 50, duration: 1m}\n";
    let approval = || {
        let mut release = release("");
        release.stages = fledge_manifest::parse(&format!(
            "apiVersion: fledge/v1\nkind: Release\nservice: {{name: reviews, namespace: bookinfo, version: v2}}\ndeploy: {{image: example.com/reviews:2}}\n{text}"
        ))
        .unwrap()
        .release
        .stages;
        release
    };
    let first = run(&fake, approval()).await;
    assert_eq!(first.outcome, Outcome::AwaitingApproval);
    assert_eq!(fake.world().weight, 10, "traffic holds at the approval stage's weight");
    assert_eq!(fake.world().lock, None, "the lock is released while waiting");
    assert_eq!(fake.world().record.as_ref().unwrap().phase, Phase::AwaitingApproval { index: 0 });

    let again = run(&fake, approval()).await;
    assert_eq!(again.outcome, Outcome::AwaitingApproval, "without --approve it keeps waiting");
    assert_eq!(again.took, Duration::ZERO);

    let (_cancel, receiver) = watch::channel(false);
    let approved = run_with(&fake, approval(), RunOptions { approve: true, ..RunOptions::default() }, receiver).await;
    assert_eq!(approved.outcome, Outcome::Promoted);
    assert_eq!(approved.took, Duration::from_secs(5 + 60 + 20), "the gate again, then only stage 2");
    assert_eq!(fake.world().weight, 100);
}

/// Runs until the record reaches stage 2, then drops the run, as `kill -9` would.
async fn killed_in_stage_two(fake: &Fake) {
    let (_cancel, receiver) = watch::channel(false);
    let interrupted = tokio::time::timeout(
        Duration::from_secs(5 + 60 + 45),
        run_with(fake, release(""), RunOptions::default(), receiver),
    )
    .await;
    assert!(interrupted.is_err(), "the first run is killed mid-stage");
    let mut world = fake.world();
    assert_eq!(world.record.as_ref().unwrap().phase, stage(1));
    world.lock = None; // the lease expired
}

#[tokio::test(start_paused = true)]
async fn a_killed_run_resumes_at_its_stage_when_run_again() {
    let fake = Fake::new();
    killed_in_stage_two(&fake).await;
    let resumed = run(&fake, release("")).await;
    assert_eq!(resumed.outcome, Outcome::Promoted);
    assert!(matches!(resumed.events[0], Event::Resuming { phase: Phase::Stage { index: 1 } }));
    assert_eq!(resumed.took, Duration::from_secs(5 + 60 + 20), "the gate again, stage 2 from its start, the delay");
    let log = fake.world().log.clone();
    assert_eq!(log.iter().filter(|step| *step == "deploy").count(), 1, "not deployed twice: {log:?}");
}

#[tokio::test(start_paused = true)]
async fn a_resume_rolls_back_when_the_cluster_disagrees_with_the_record() {
    let fake = Fake::new();
    killed_in_stage_two(&fake).await;
    fake.world().weight = 37; // someone edited the VirtualService
    let resumed = run(&fake, release("")).await;
    assert_eq!(resumed.outcome, Outcome::RolledBack(RollbackReason::Error));
    assert!(fake.world().route_pristine);

    let fake = Fake::new();
    killed_in_stage_two(&fake).await;
    fake.world().deployments.remove("reviews-v2");
    let resumed = run(&fake, release("")).await;
    assert_eq!(resumed.outcome, Outcome::RolledBack(RollbackReason::Error));
}

#[tokio::test(start_paused = true)]
async fn a_resume_that_cannot_read_the_cluster_ends_as_an_internal_error_without_rolling_back() {
    let fake = Fake::new();
    killed_in_stage_two(&fake).await;
    let log_before = fake.world().log.len();
    fake.world().reads_fail = true;
    let resumed = run(&fake, release("")).await;
    assert_eq!(resumed.outcome, Outcome::InternalError);
    assert!(resumed.took >= Duration::from_secs(50) && resumed.took <= fledge_runner::RESUME_READ_DEADLINE);
    {
        let world = fake.world();
        assert_eq!(world.log.len(), log_before, "nothing was changed: {:?}", &world.log[log_before..]);
        assert_eq!(world.record.as_ref().unwrap().phase, stage(1), "the record still says stage 2");
    }
    assert!(resumed.events.iter().any(|event| matches!(event, Event::ResumeFailed { .. })));

    fake.world().reads_fail = false;
    let again = run(&fake, release("")).await;
    assert_eq!(again.outcome, Outcome::Promoted, "once the cluster answers, running it again resumes");
}

#[tokio::test(start_paused = true)]
async fn another_run_or_another_version_in_flight_is_locked_out() {
    let fake = Fake::new();
    fake.world().lock = Some("other-run".into());
    let locked = run(&fake, release("")).await;
    assert_eq!(locked.outcome, Outcome::Locked);
    assert!(fake.world().log.is_empty(), "nothing was touched");

    let fake = Fake::new();
    killed_in_stage_two(&fake).await;
    let mut other = release("");
    other.service.version = "v3".into();
    let locked = run(&fake, other).await;
    assert_eq!(locked.outcome, Outcome::Locked);
    assert!(matches!(&locked.events[0], Event::InFlight { version, .. } if version == "v2"));
}

#[tokio::test(start_paused = true)]
async fn a_rollback_that_cannot_finish_is_reported_and_abort_finishes_it() {
    let fake = Fake::new();
    {
        let mut world = fake.world();
        world.gate_failure = Some(GateFailureKind::CrashLoop);
        world.failing.push("restore".into());
    }
    let failed = run(&fake, release("")).await;
    assert_eq!(failed.outcome, Outcome::RollbackFailed);
    let record = fake.world().record.clone().unwrap();
    assert_eq!(record.phase, Phase::RollingBack, "left for fledge abort");
    assert_eq!(record.outcome, None);
    let failure = record.rollback_failure.expect("the record says the rollback failed");
    assert!(failure.starts_with("failed to restore the route"), "{failure}");

    fake.world().failing.clear();
    let ports = ports(&fake);
    let (_cancel, receiver) = watch::channel(false);
    let runner = Runner::new(release(""), &ports, RunOptions::default(), Arc::new(|_: &Event| {}), receiver);
    assert_eq!(runner.abort().await, Outcome::RolledBack(RollbackReason::Cancelled));
    assert!(fake.world().route_pristine);
    assert_eq!(fake.world().record.as_ref().unwrap().rollback_failure, None, "the retry finished it");
    assert_eq!(runner.abort().await, Outcome::Promoted, "nothing left to abort: exit 0");
}

#[tokio::test(start_paused = true)]
async fn a_step_the_cluster_refuses_rolls_back_with_the_error_outcome() {
    let fake = Fake::new();
    fake.world().failing.push("set_weight 50".into());
    let run = run(&fake, release("")).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Error));
    assert!(fake.world().route_pristine);
}

#[tokio::test(start_paused = true)]
async fn running_a_promoted_release_again_changes_nothing() {
    let fake = Fake::new();
    assert_eq!(run(&fake, release("")).await.outcome, Outcome::Promoted);
    let log_length = fake.world().log.len();
    let again = run(&fake, release("")).await;
    assert_eq!(again.outcome, Outcome::Promoted);
    assert_eq!(fake.world().log.len(), log_length, "no effect");
    assert!(matches!(again.events[0], Event::AlreadyPromoted));
}

#[tokio::test(start_paused = true)]
async fn a_cleanup_that_fails_is_finished_by_running_again() {
    let fake = Fake::new();
    fake.world().failing.push("retire_live".into());
    let first = run(&fake, release("")).await;
    assert_eq!(first.outcome, Outcome::InternalError);
    assert_eq!(fake.world().weight, 100, "the new version stays live");
    assert_eq!(
        fake.world().deployments.get("reviews-v1"),
        Some(&DeploymentState::Running),
        "the old pods stay while routes may still send to them"
    );
    fake.world().failing.clear();
    let second = run(&fake, release("")).await;
    assert_eq!(second.outcome, Outcome::Promoted);
    assert_eq!(second.took, Duration::ZERO);
    assert_eq!(fake.world().subsets, ["v2"]);
}

#[tokio::test(start_paused = true)]
async fn abort_of_a_cleanup_that_failed_finishes_it_instead_of_routing_back_to_the_retired_version() {
    let fake = Fake::new();
    fake.world().failing.push("retire_live".into());
    assert_eq!(run(&fake, release("")).await.outcome, Outcome::InternalError);
    assert_eq!(fake.world().record.as_ref().unwrap().phase, Phase::Cleanup);

    fake.world().failing.clear();
    let ports = ports(&fake);
    let (_cancel, receiver) = watch::channel(false);
    let runner = Runner::new(release(""), &ports, RunOptions::default(), Arc::new(|_: &Event| {}), receiver);
    assert_eq!(runner.abort().await, Outcome::Promoted, "the new version stays live");
    let world = fake.world();
    assert_eq!(world.weight, 100);
    assert_eq!(world.subsets, ["v2"], "the cleanup finished");
    assert_eq!(world.record.as_ref().unwrap().phase, Phase::Done);
}

#[tokio::test(start_paused = true)]
async fn routes_pinned_to_the_old_version_keep_it_running_when_the_manifest_says_keep() {
    let fake = Fake::new();
    {
        let mut world = fake.world();
        world.pinned = vec!["VirtualService reviews http route debug (#0)".into()];
        world.keep_pinned = true;
    }
    let run = run(&fake, release("")).await;
    assert_eq!(run.outcome, Outcome::Promoted);
    let world = fake.world();
    assert_eq!(world.deployments.get("reviews-v1"), Some(&DeploymentState::Running), "kept for the pinned route");
    assert!(!world.log.iter().any(|step| step.starts_with("retire reviews-v1")), "{:?}", world.log);
    assert_eq!(world.subsets, ["v1", "v2"], "its subset stays");
    let cleaned = run.events.iter().find(|event| matches!(event, Event::CleanedUp { .. }));
    assert_eq!(
        cleaned,
        Some(&Event::CleanedUp {
            deployment: "reviews-v1".into(),
            policy: fledge_core::release::CleanupPolicy::Delete,
            moved: Vec::new(),
            kept_for: vec!["VirtualService reviews http route debug (#0)".into()],
        })
    );
}

#[tokio::test(start_paused = true)]
async fn routes_pinned_to_the_old_version_are_moved_before_it_is_retired() {
    let fake = Fake::new();
    fake.world().pinned = vec!["VirtualService reviews http route debug (#0)".into()];
    let run = run(&fake, release("")).await;
    assert_eq!(run.outcome, Outcome::Promoted);
    let world = fake.world();
    let position = |step: &str| world.log.iter().position(|logged| logged == step).unwrap();
    assert!(position("retire_live") < position("retire reviews-v1 delete"), "routes first, then the pods");
    assert!(run.events.iter().any(|event| matches!(event, Event::CleanedUp { moved, .. } if moved.len() == 1)));
}

#[tokio::test(start_paused = true)]
async fn a_run_that_loses_its_lock_stops_at_once_and_writes_nothing_more() {
    let fake = Fake::new();
    // 5 s gate, then stage 1 (1 minute): the lock is lost 40 s into it.
    fake.world().lose_lock_after = Some(Duration::from_secs(45));
    let run = run(&fake, release("")).await;
    assert_eq!(run.outcome, Outcome::LockLost);
    assert_eq!(run.took, Duration::from_secs(45), "stopped the moment the lock was lost");
    let world = fake.world();
    // The round at 35 s updated the record; at 45 s the loss stops everything: no rollback, no record written.
    assert_eq!(
        world.log,
        [
            "metrics preflight",
            "save deploy",
            "save deploy",
            "add_subset v2",
            "deploy",
            "save gate",
            "gate",
            "save stage 1",
            "set_weight 10",
            "save stage 1"
        ]
    );
    assert_eq!(world.lock.as_deref(), Some("another-run"), "not unlocked: the lock is the other run's");
    assert!(matches!(
        run.events.iter().rev().nth(1),
        Some(Event::LockLost { reason }) if reason == "it was taken over by run another-run"
    ));
    assert!(matches!(run.events.last(), Some(Event::Finished { outcome: Outcome::LockLost })));
}

/// Counters of a new version taking a tenth of the requests (`rate` per second of `10 × rate`), `new_bad_every`
/// seconds one of them failing (never, for 0), and a live version that never fails; a reading per second.
fn counters_per_second(
    seconds: u64,
    rate: u64,
    new_bad_every: u64,
) -> std::collections::VecDeque<fledge_core::sequential::Counts> {
    (0..seconds)
        .map(|second| fledge_core::sequential::Counts {
            new_total: rate * second,
            new_bad: second.checked_div(new_bad_every).unwrap_or(0),
            live_total: 9 * rate * second,
            live_bad: 0,
        })
        .collect()
}

const COUNTED: &str = "analysis: {metrics: [{name: errors, builtin: success-rate, detect: 1%}]}\n";

#[tokio::test(start_paused = true)]
async fn a_counted_check_rolls_back_at_the_look_its_evidence_crosses_before_any_round() {
    let fake = Fake::new();
    fake.world().counters = counters_per_second(600, 10, 2);
    let release = release(COUNTED);
    // The look at which the same readings cross, by the core's own count.
    let mut checks = fledge_core::counted_checks::CountedChecks::of(&release.analysis);
    let crossing = counters_per_second(600, 10, 2)
        .into_iter()
        .position(|counts| {
            let reading = fledge_core::counted_checks::CountedReading {
                check: "errors".into(),
                query: String::new(),
                counts: Ok(counts),
            };
            checks.look(vec![reading]).is_some()
        })
        .expect("crosses") as u64;
    assert!(crossing <= 10, "a tenth of the traffic failing 5% is caught within 10 s (3 to 5 failures): {crossing}");

    let run = run(&fake, release).await;
    assert_eq!(run.outcome, Outcome::RolledBack(RollbackReason::Metrics));
    assert_eq!(run.took, Duration::from_secs(5 + crossing), "a look every second from the stage's start");
    assert_eq!(fake.world().rounds_run, 0, "rolled back before the first 30 s round");
    let round = run.events.iter().rev().find_map(|event| match event {
        Event::Round { round, decision, .. } => Some((round.clone(), *decision)),
        _ => None,
    });
    let (round, decision) = round.expect("a round event");
    assert_eq!(
        decision,
        fledge_core::analysis::TallyDecision::RollBack(fledge_core::analysis::AnalysisAbort::Regression)
    );
    assert_eq!(round.checks.len(), 1);
    assert_eq!((round.checks[0].name.as_str(), round.checks[0].verdict), ("errors", fledge_core::CheckVerdict::Fail));
    assert_eq!(fake.world().weight, 0, "traffic restored");
}

#[tokio::test(start_paused = true)]
async fn a_resumed_release_carries_its_counted_evidence_on_from_the_last_round() {
    let fake = Fake::new();
    // One failure of the new version every 12 s: a test needs three of them (the evidence after two is 55, the
    // bound 100), 36 s from a fresh start. The first run saves two at its 30 s round and is killed at 33 s.
    fake.world().counters = counters_per_second(600, 10, 12);
    let (_cancel, receiver) = watch::channel(false);
    let interrupted = tokio::time::timeout(
        Duration::from_secs(5 + 35),
        run_with(&fake, release(COUNTED), RunOptions::default(), receiver),
    )
    .await;
    assert!(interrupted.is_err(), "killed after the first round, before the evidence is clear");
    let saved = {
        let mut world = fake.world();
        world.lock = None; // the lease expired
        world.record.as_ref().unwrap().counted_tests.clone()
    };
    let evidence = saved.get("errors").map(fledge_core::sequential::SequentialTest::evidence);
    assert!(evidence.is_some_and(|evidence| evidence > 10.0 && evidence < 100.0), "as of the first round: {saved:?}");

    let resumed = run(&fake, release(COUNTED)).await;
    assert_eq!(resumed.outcome, Outcome::RolledBack(RollbackReason::Metrics));
    assert!(matches!(resumed.events[0], Event::Resuming { phase: Phase::Stage { index: 0 } }));
    assert!(
        resumed.took < Duration::from_secs(5 + 15),
        "the next failure is enough with the first run's evidence: {:?}",
        resumed.took
    );
}

#[tokio::test(start_paused = true)]
async fn a_stage_holds_until_its_counted_checks_have_seen_enough_requests() {
    let fake = Fake::new();
    fake.world().counters = counters_per_second(2_000, 1, 0);
    let release = release(COUNTED);
    // 1 request per second to the new version, none failing: a one-point regression needs about this many.
    let needed = fledge_core::sequential::power(
        &fledge_core::sequential::Counts { new_total: 60, new_bad: 0, live_total: 540, live_bad: 0 },
        fledge_core::sequential::Regression::Points(0.01),
        0.01,
    )
    .new_requests_needed;
    assert!(needed > 60, "more than a 1-minute stage sees: {needed}");
    let run = run(&fake, release).await;
    assert_eq!(run.outcome, Outcome::Promoted);
    let warnings: Vec<&String> = run
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Warning { message } => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        warnings.first().is_some_and(
            |warning| warning.starts_with("stage 1 has run its 1m but holds: too few requests to judge: errors: ")
        ),
        "{warnings:?}"
    );
    // Each stage lasts until a 30 s round finds `needed` requests (1 per second): at least `needed` seconds.
    let stage_seconds = (run.took.as_secs() - 5 - 20) / 2;
    assert!(stage_seconds >= needed && stage_seconds <= needed + 31, "{stage_seconds} s for {needed} requests");
}
