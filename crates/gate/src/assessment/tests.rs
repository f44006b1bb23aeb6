use super::*;
use serde_json::{Value, json};

const SECOND: Duration = Duration::from_secs(1);

fn policy() -> GatePolicy {
    GatePolicy {
        max_restarts: 0,
        ignore_restarts_of: vec![],
        stable_for: Duration::from_secs(10),
        pending_grace: Duration::from_secs(60),
    }
}

fn started() -> jiff::Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn deployment(replicas: i32, ready: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": "reviews-v2", "generation": 1 },
        "spec": { "replicas": replicas, "selector": {}, "template": {} },
        "status": { "observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "availableReplicas": ready, "readyReplicas": ready }
    }))
    .unwrap()
}

fn container(name: &str, state: Value, restarts: i32, ready: bool) -> Value {
    json!({ "name": name, "image": "x", "imageID": "", "ready": ready, "restartCount": restarts, "state": state })
}

fn running() -> Value {
    json!({ "running": { "startedAt": "2026-01-01T00:00:01Z" } })
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({ "waiting": { "reason": reason, "message": message } })
}

fn pod(name: &str, ready: bool, containers: Vec<Value>, extra_status: Value) -> Arc<Pod> {
    let mut status = json!({
        "phase": "Running",
        "conditions": [
            { "type": "Ready", "status": if ready { "True" } else { "False" } },
            { "type": "PodScheduled", "status": "True" }
        ],
        "containerStatuses": containers,
    });
    if let (Some(status), Value::Object(extra)) = (status.as_object_mut(), extra_status) {
        status.extend(extra);
    }
    Arc::new(
        serde_json::from_value(json!({
            "metadata": { "name": name, "uid": format!("uid-{name}"), "creationTimestamp": "2026-01-01T00:00:02Z" },
            "spec": { "containers": [] },
            "status": status,
        }))
        .unwrap(),
    )
}

fn healthy_pod(name: &str) -> Arc<Pod> {
    // The kubelet sorts statuses by name: istio-proxy comes before reviews.
    pod(
        name,
        true,
        vec![container("istio-proxy", running(), 0, true), container("reviews", running(), 0, true)],
        json!({}),
    )
}

fn failed(assessment: Assessment) -> GateFailure {
    match assessment {
        Assessment::Failed(failure) => failure,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn healthy_only_after_every_pod_is_ready_for_stable_for_even_with_the_sidecar_first() {
    let mut assessor = Assessor::new(policy(), started());
    let start = Instant::now();
    let pods = vec![healthy_pod("a"), healthy_pod("b")];
    assert!(matches!(assessor.assess(start, Some(&deployment(2, 2)), &pods), Assessment::Waiting(_)));
    assert!(matches!(assessor.assess(start + 9 * SECOND, Some(&deployment(2, 2)), &pods), Assessment::Waiting(_)));
    assert_eq!(assessor.assess(start + 10 * SECOND, Some(&deployment(2, 2)), &pods), Assessment::Healthy);
}

#[test]
fn zero_pods_or_zero_replicas_is_never_healthy() {
    let mut assessor = Assessor::new(policy(), started());
    let start = Instant::now();
    let waiting = assessor.assess(start + 100 * SECOND, Some(&deployment(2, 0)), &[]);
    assert_eq!(waiting, Assessment::Waiting("0/2 pods Ready, 0 stable for 10s; Waiting for deployment \"reviews-v2\" rollout to finish: 0 of 2 updated replicas are available...".into()));
    assert!(matches!(assessor.assess(start + 100 * SECOND, Some(&deployment(0, 0)), &[]), Assessment::Waiting(_)));
    assert!(matches!(assessor.assess(start + 100 * SECOND, None, &[healthy_pod("a")]), Assessment::Waiting(_)));
}

#[test]
fn flapping_readiness_restarts_the_stability_clock() {
    let mut assessor = Assessor::new(policy(), started());
    let start = Instant::now();
    let ready = vec![healthy_pod("a")];
    let unready = vec![pod("a", false, vec![container("reviews", running(), 0, false)], json!({}))];
    for step in 0..10 {
        let at = start + Duration::from_secs(step * 8);
        let pods = if step % 2 == 0 { &ready } else { &unready };
        assert!(matches!(assessor.assess(at, Some(&deployment(1, 1)), pods), Assessment::Waiting(_)), "step {step}");
    }
}

#[test]
fn restarts_beyond_the_limit_fail_with_the_container_and_exit_code() {
    let mut assessor = Assessor::new(GatePolicy { max_restarts: 1, ..policy() }, started());
    let now = Instant::now();
    let mut crashed = container(
        "reviews",
        waiting("CrashLoopBackOff", "back-off 10s restarting failed container=reviews pod=a_ns(uid)"),
        1,
        false,
    );
    crashed["lastState"] = json!({ "terminated": { "exitCode": 1, "reason": "Error" } });
    let pods = vec![pod("a", false, vec![container("istio-proxy", running(), 0, true), crashed.clone()], json!({}))];
    assert!(
        matches!(assessor.assess(now, Some(&deployment(1, 0)), &pods), Assessment::Waiting(_)),
        "one restart is allowed"
    );
    crashed["restartCount"] = json!(2);
    let pods = vec![pod("a", false, vec![container("istio-proxy", running(), 0, true), crashed], json!({}))];
    let failure = failed(assessor.assess(now, Some(&deployment(1, 0)), &pods));
    assert_eq!(failure.kind, GateFailureKind::CrashLoop);
    assert_eq!(
        (failure.pod.as_deref(), failure.container.as_deref(), failure.reason.as_str()),
        (Some("a"), Some("reviews"), "CrashLoopBackOff")
    );
    assert_eq!(
        failure.message,
        "restarted 2 times since the gate started (maxRestarts 1); last exit code 1 (general error), reason Error"
    );
}

#[test]
fn the_first_crash_fails_at_once_with_max_restarts_zero() {
    let mut assessor = Assessor::new(policy(), started());
    let terminated = json!({ "terminated": { "exitCode": 137, "reason": "OOMKilled" } });
    let pods = vec![pod("a", false, vec![container("reviews", terminated, 0, false)], json!({}))];
    let failure = failed(assessor.assess(Instant::now(), Some(&deployment(1, 0)), &pods));
    assert_eq!((failure.kind, failure.reason.as_str()), (GateFailureKind::OutOfMemory, "OOMKilled"));
    assert!(
        failure.message.contains("137 (SIGKILL: killed, usually for exceeding the memory limit)"),
        "{}",
        failure.message
    );
}

#[test]
fn ignored_containers_may_restart_and_restarts_count_from_the_gates_start() {
    let mut assessor =
        Assessor::new(GatePolicy { ignore_restarts_of: vec!["istio-proxy".into()], ..policy() }, started());
    let now = Instant::now();
    let mut old = pod(
        "old",
        true,
        vec![container("istio-proxy", running(), 7, true), container("reviews", running(), 5, true)],
        json!({}),
    );
    Arc::get_mut(&mut old).unwrap().metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2025-12-31T00:00:00Z".parse().unwrap()));
    assert!(matches!(
        assessor.assess(now, Some(&deployment(1, 1)), std::slice::from_ref(&old)),
        Assessment::Waiting(_)
    ));
    let mut restarted = (*old).clone();
    restarted.status.as_mut().unwrap().container_statuses.as_mut().unwrap()[0].restart_count = 9;
    assert!(
        matches!(assessor.assess(now, Some(&deployment(1, 1)), &[Arc::new(restarted.clone())]), Assessment::Waiting(_)),
        "istio-proxy is ignored"
    );
    restarted.status.as_mut().unwrap().container_statuses.as_mut().unwrap()[1].restart_count = 6;
    let failure = failed(assessor.assess(now, Some(&deployment(1, 1)), &[Arc::new(restarted)]));
    assert_eq!(failure.message, "restarted 1 times since the gate started (maxRestarts 0)");
}

#[test]
fn an_init_container_crash_loop_fails() {
    let mut assessor = Assessor::new(policy(), started());
    let pods = vec![pod(
        "a",
        false,
        vec![container("reviews", waiting("PodInitializing", ""), 0, false)],
        json!({ "phase": "Pending", "initContainerStatuses": [container("migrate", waiting("CrashLoopBackOff", "back-off 10s"), 1, false)] }),
    )];
    let failure = failed(assessor.assess(Instant::now(), Some(&deployment(1, 0)), &pods));
    assert_eq!((failure.kind, failure.container.as_deref()), (GateFailureKind::CrashLoop, Some("migrate")));
}

#[test]
fn unrecoverable_start_errors_fail_at_once() {
    let cases = [
        ("InvalidImageName", "couldn't parse image name", GateFailureKind::InvalidImage),
        (
            "ErrImageNeverPull",
            "Container image \"x\" is not present with pull policy of Never",
            GateFailureKind::InvalidImage,
        ),
        ("CreateContainerConfigError", "configmap \"settings\" not found", GateFailureKind::ConfigError),
        (
            "ErrImagePull",
            "rpc error: code = NotFound desc = failed to pull and unpack image: not found",
            GateFailureKind::ImagePull,
        ),
        (
            "ImagePullBackOff",
            "Back-off pulling image \"x\": ErrImagePull: pull access denied, repository does not exist or may require authorization",
            GateFailureKind::ImagePull,
        ),
    ];
    for (reason, message, kind) in cases {
        let mut assessor = Assessor::new(policy(), started());
        let pods = vec![pod(
            "a",
            false,
            vec![container("reviews", waiting(reason, message), 0, false)],
            json!({ "phase": "Pending" }),
        )];
        let failure = failed(assessor.assess(Instant::now(), Some(&deployment(1, 0)), &pods));
        assert_eq!((failure.kind, failure.reason.as_str(), failure.message.as_str()), (kind, reason, message));
    }
}

#[test]
fn transient_problems_fail_only_after_the_pending_grace() {
    let cases = [
        ("ErrImagePull", "failed to do request: dial tcp 1.2.3.4:443: i/o timeout", GateFailureKind::ImagePull),
        (
            "CreateContainerConfigError",
            "failed to sync configmap cache: timed out waiting for the condition",
            GateFailureKind::ConfigError,
        ),
        ("ContainerCreating", "", GateFailureKind::ConfigError),
    ];
    for (reason, message, kind) in cases {
        let mut assessor = Assessor::new(policy(), started());
        let start = Instant::now();
        let pods = vec![pod(
            "a",
            false,
            vec![container("reviews", waiting(reason, message), 0, false)],
            json!({ "phase": "Pending" }),
        )];
        assert!(matches!(assessor.assess(start, Some(&deployment(1, 0)), &pods), Assessment::Waiting(_)), "{reason}");
        assert!(
            matches!(assessor.assess(start + 59 * SECOND, Some(&deployment(1, 0)), &pods), Assessment::Waiting(_)),
            "{reason}"
        );
        let failure = failed(assessor.assess(start + 60 * SECOND, Some(&deployment(1, 0)), &pods));
        assert_eq!((failure.kind, failure.reason.as_str()), (kind, reason));
    }
}

#[test]
fn unschedulable_pods_fail_after_the_grace_with_the_schedulers_message() {
    let mut assessor = Assessor::new(policy(), started());
    let start = Instant::now();
    let message = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    let pods = vec![Arc::new(
        serde_json::from_value::<Pod>(json!({
            "metadata": { "name": "a", "uid": "uid-a" },
            "status": { "phase": "Pending", "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message }] }
        }))
        .unwrap(),
    )];
    assert!(matches!(assessor.assess(start, Some(&deployment(1, 0)), &pods), Assessment::Waiting(_)));
    let failure = failed(assessor.assess(start + 61 * SECOND, Some(&deployment(1, 0)), &pods));
    assert_eq!(
        (failure.kind, failure.reason.as_str(), failure.message.as_str()),
        (GateFailureKind::Unschedulable, "Unschedulable", message)
    );
}

#[test]
fn deployment_conditions_fail_the_gate() {
    let mut stuck = deployment(2, 0);
    stuck.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(json!({
        "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"reviews-v2-abc\" has timed out progressing."
    }))
    .unwrap()]);
    let failure = failed(Assessor::new(policy(), started()).assess(Instant::now(), Some(&stuck), &[]));
    assert_eq!(
        (failure.kind, failure.message.as_str()),
        (GateFailureKind::ProgressDeadline, "ReplicaSet \"reviews-v2-abc\" has timed out progressing.")
    );
    let mut quota = deployment(2, 0);
    quota.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(json!({
        "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "pods \"reviews-v2-abc-\" is forbidden: exceeded quota: compute"
    }))
    .unwrap()]);
    let failure = failed(Assessor::new(policy(), started()).assess(Instant::now(), Some(&quota), &[]));
    assert_eq!((failure.kind, failure.reason.as_str()), (GateFailureKind::ReplicaFailure, "FailedCreate"));
}

#[test]
fn evicted_and_terminating_pods_are_not_the_versions_failure() {
    let mut assessor = Assessor::new(policy(), started());
    let evicted = pod(
        "evicted",
        false,
        vec![container("reviews", json!({ "terminated": { "exitCode": 137, "reason": "Error" } }), 0, false)],
        json!({ "phase": "Failed", "reason": "Evicted" }),
    );
    assert!(is_evicted(&evicted));
    let assessment = assessor.assess(Instant::now(), Some(&deployment(1, 0)), &[evicted]);
    assert!(matches!(assessment, Assessment::Waiting(_)), "{assessment:?}");
}

/// One pod's state in a generated sequence.
#[derive(Clone, Copy, Debug)]
enum PodState {
    Ready,
    RunningNotReady,
    CrashLoop,
    ImagePull,
    Creating,
    OomKilled,
    Unschedulable,
}

fn pod_in(name: &str, state: PodState, restarts: i32) -> Arc<Pod> {
    let app = |state: Value, ready: bool| vec![container("reviews", state, restarts, ready)];
    match state {
        PodState::Ready => pod(name, true, app(running(), true), json!({})),
        PodState::RunningNotReady => pod(name, false, app(running(), false), json!({})),
        PodState::CrashLoop => pod(name, false, app(waiting("CrashLoopBackOff", "back-off 10s"), false), json!({})),
        PodState::ImagePull => pod(name, false, app(waiting("ImagePullBackOff", "Back-off pulling"), false), json!({})),
        PodState::Creating => pod(name, false, app(waiting("ContainerCreating", ""), false), json!({})),
        PodState::OomKilled => {
            pod(name, false, app(json!({ "terminated": { "reason": "OOMKilled", "exitCode": 137 } }), false), json!({}))
        }
        PodState::Unschedulable => pod(
            name,
            false,
            vec![],
            json!({ "phase": "Pending", "conditions": [
                { "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes" }
            ] }),
        ),
    }
}

/// One observation: how far time moved, the two pods (or none), and the Deployment's Ready count (or no Deployment).
type Step = (u64, Option<[(PodState, i32); 2]>, Option<i32>);

fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
    use proptest::prelude::*;
    // Weighted towards Ready pods without restarts and a Ready Deployment, so that sequences do reach Healthy (about
    // a third of them) and the property is exercised, not only the failures.
    let state = prop_oneof![
        12 => Just(PodState::Ready),
        1 => Just(PodState::RunningNotReady),
        1 => Just(PodState::CrashLoop),
        1 => Just(PodState::ImagePull),
        1 => Just(PodState::Creating),
        1 => Just(PodState::OomKilled),
        1 => Just(PodState::Unschedulable),
    ];
    let restarts = prop_oneof![8 => Just(0i32), 1 => 1..3i32];
    let pod = (state, restarts);
    let ready_replicas = prop_oneof![3 => Just(2i32), 1 => 0..2i32];
    let step = (0u64..15, prop::option::weighted(0.9, [pod.clone(), pod]), prop::option::weighted(0.9, ready_replicas));
    prop::collection::vec(step, 1..30)
}

proptest::proptest! {
    /// Whatever the pods go through, the gate never panics, and it says Healthy only when both pods and the
    /// Deployment are Ready now and both pods have been Ready for `stableFor` without a break.
    #[test]
    fn no_pod_sequence_panics_or_is_healthy_without_stable_ready_pods(steps in steps()) {
        for (assessment, ready_replicas, now, all_ready_since) in assess_sequence(&steps) {
            if assessment == Assessment::Healthy {
                proptest::prop_assert!(ready_replicas == Some(2), "healthy with {ready_replicas:?} Ready replicas");
                proptest::prop_assert!(all_ready_since.is_some(), "healthy without both pods Ready");
                let since = all_ready_since.unwrap_or(now);
                proptest::prop_assert!(now.duration_since(since) >= policy().stable_for, "healthy before stableFor");
            }
        }
    }
}

/// The assessments of a sequence, with whether both pods were Ready at each step and since when without a break.
fn assess_sequence(steps: &[Step]) -> Vec<(Assessment, Option<i32>, Instant, Option<Instant>)> {
    let mut assessor = Assessor::new(policy(), started());
    let mut now = Instant::now();
    let mut all_ready_since: Option<Instant> = None;
    let mut seen = Vec::new();
    for (advance, pods, ready_replicas) in steps {
        now += Duration::from_secs(*advance);
        let pods: Vec<Arc<Pod>> = pods
            .map(|pods| {
                pods.iter().zip(["a", "b"]).map(|((state, restarts), name)| pod_in(name, *state, *restarts)).collect()
            })
            .unwrap_or_default();
        let all_ready = pods.len() == 2 && pods.iter().all(|pod| is_ready(pod));
        all_ready_since = if all_ready { all_ready_since.or(Some(now)) } else { None };
        let deployment = ready_replicas.map(|ready| deployment(2, ready));
        seen.push((assessor.assess(now, deployment.as_ref(), &pods), *ready_replicas, now, all_ready_since));
    }
    seen
}

#[test]
fn the_generated_sequences_reach_healthy_often_enough_to_test_the_property() {
    use proptest::strategy::{Strategy as _, ValueTree as _};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let healthy = (0..200)
        .filter(|_| {
            let steps = steps().new_tree(&mut runner).unwrap().current();
            assess_sequence(&steps).iter().any(|(assessment, ..)| *assessment == Assessment::Healthy)
        })
        .count();
    assert!(healthy >= 20, "only {healthy} of 200 generated sequences reach Healthy");
}
