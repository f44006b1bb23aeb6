//! The gate against fledge-sim, for every behaviour the simulator offers: the verdict, its kind and the reason.

use fledge_core::{GateFailureKind, Release};
use fledge_deploy::Deployer;
use fledge_gate::{GateOutcome, GatePolicy, GateTarget, PodGate};
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use std::time::Duration;

async fn bookinfo() -> (Sim, kube::Client) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sim/bookinfo.yaml")).unwrap();
    let mut scenario = Scenario::parse(&text).unwrap();
    scenario.time_scale = 20.0;
    // An init container that crash-loops, for the init-container case.
    scenario.behaviours.insert(
        0,
        fledge_sim::scenario::BehaviourRule {
            image: "registry.example.com/tools/migrate:broken".into(),
            behaviour: "crashloop".into(),
        },
    );
    let sim = Sim::start(SimConfig { scenario, ..SimConfig::default() }).await.unwrap();
    let client = fledge_kube_client::client_for_url(sim.api_url(), &Default::default()).unwrap();
    (sim, client)
}

fn release(tag: &str, gate: &str, deploy_extra: &str) -> Release {
    release_of("v2", tag, gate, deploy_extra)
}

fn release_of(version: &str, tag: &str, gate: &str, deploy_extra: &str) -> Release {
    let text = format!(
        "apiVersion: fledge/v1\nkind: Release\nservice: {{name: reviews, namespace: bookinfo, version: {version}}}\ndeploy:\n  image: registry.example.com/bookinfo/reviews:{tag}\n  replicas: 2\n{deploy_extra}gate: {{{gate}}}\n"
    );
    fledge_manifest::parse(&text).unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render("test", &text))).release
}

async fn gate(client: &kube::Client, release: &Release) -> GateOutcome {
    let deployer = Deployer::new(client.clone(), &release.service.namespace);
    deployer.apply(release, None).await.unwrap();
    let mut gate = PodGate::start(client.clone(), GateTarget::for_release(release), GatePolicy::from(&release.gate));
    gate.wait_healthy(release.gate.timeout.as_std()).await.unwrap()
}

fn failed(outcome: GateOutcome) -> (fledge_core::GateFailure, fledge_gate::Diagnostics) {
    match outcome {
        GateOutcome::Failed { failure, diagnostics, .. } => (failure, diagnostics),
        GateOutcome::Healthy { .. } => panic!("expected a failure, the gate passed"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_version_passes_with_its_sidecar_sorted_first() {
    let (_sim, client) = bookinfo().await;
    let release = release("2.0.0", "timeout: 30s, stableFor: 2s", "");
    let outcome = gate(&client, &release).await;
    let GateOutcome::Healthy { elapsed } = outcome else { panic!("expected healthy: {outcome:?}") };
    assert!(elapsed >= Duration::from_secs(2), "stableFor is respected: {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loops_fail_with_the_container_exit_code_and_log() {
    let (_sim, client) = bookinfo().await;
    let (failure, diagnostics) = failed(gate(&client, &release("2.0.0-crashloop", "timeout: 30s", "")).await);
    assert_eq!((failure.kind, failure.container.as_deref()), (GateFailureKind::CrashLoop, Some("reviews")));
    assert!(failure.message.contains("last exit code 1 (general error)"), "{}", failure.message);
    let text = diagnostics.to_string();
    assert!(
        text.contains("ERROR fatal: unrecoverable error, exiting with code 1"),
        "the previous log is shown:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_memory_kills_are_their_own_kind() {
    let (_sim, client) = bookinfo().await;
    let (failure, diagnostics) = failed(gate(&client, &release("2.0.0-oom", "timeout: 30s", "")).await);
    assert_eq!((failure.kind, failure.reason.as_str()), (GateFailureKind::OutOfMemory, "OOMKilled"));
    assert!(diagnostics.to_string().contains("code 137 (SIGKILL: killed, usually for exceeding the memory limit)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_unauthorized_images_fail_at_once() {
    let (_sim, client) = bookinfo().await;
    let (failure, _) = failed(gate(&client, &release("2.0.0-image-pull", "timeout: 30s, pendingGrace: 20s", "")).await);
    assert_eq!(failure.kind, GateFailureKind::ImagePull);
    assert!(
        failure.message.ends_with("registry.example.com/bookinfo/reviews:2.0.0-image-pull: not found"),
        "{}",
        failure.message
    );
    // Re-applying the same version with another image: the first image's failing pods are being replaced and do
    // not count against the new template.
    let (failure, diagnostics) = failure_of(&client, "2.0.0-unauthorized").await;
    assert_eq!(failure.kind, GateFailureKind::ImagePull);
    assert!(failure.message.contains("pull access denied"), "{}", failure.message);
    assert!(diagnostics.to_string().contains("Failed"), "{diagnostics}");
}

async fn failure_of(client: &kube::Client, tag: &str) -> (fledge_core::GateFailure, fledge_gate::Diagnostics) {
    failed(gate(client, &release(tag, "timeout: 30s, pendingGrace: 20s", "")).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_errors_and_invalid_images_fail_at_once() {
    let (_sim, client) = bookinfo().await;
    let (failure, _) = failure_of(&client, "2.0.0-config-error").await;
    assert_eq!(
        (failure.kind, failure.reason.as_str(), failure.message.as_str()),
        (GateFailureKind::ConfigError, "CreateContainerConfigError", "configmap \"reviews-config\" not found")
    );
    // The manifest refuses invalid references, so an invalid image reaches the gate through a hand-made Deployment.
    let pod = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "reviews-v3", "namespace": "bookinfo" },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "reviews", "version": "v3" } },
            "template": { "metadata": { "labels": { "app": "reviews", "version": "v3" } },
                "spec": { "containers": [{ "name": "reviews", "image": "Registry.Example.com/Reviews:3" }] } } }
    });
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> = kube::Api::namespaced(client.clone(), "bookinfo");
    api.create(&Default::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
    let target = GateTarget {
        namespace: "bookinfo".into(),
        deployment: "reviews-v3".into(),
        selector: "app=reviews,version=v3".into(),
    };
    let policy = GatePolicy {
        max_restarts: 0,
        ignore_restarts_of: vec![],
        stable_for: Duration::from_secs(2),
        pending_grace: Duration::from_secs(20),
    };
    let (failure, _) =
        failed(PodGate::start(client.clone(), target, policy).wait_healthy(Duration::from_secs(30)).await.unwrap());
    assert_eq!((failure.kind, failure.reason.as_str()), (GateFailureKind::InvalidImage, "InvalidImageName"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unschedulable_pods_fail_after_the_pending_grace() {
    let (_sim, client) = bookinfo().await;
    let (failure, diagnostics) =
        failed(gate(&client, &release("2.0.0-unschedulable", "timeout: 30s, pendingGrace: 2s", "")).await);
    assert_eq!((failure.kind, failure.reason.as_str()), (GateFailureKind::Unschedulable, "Unschedulable"));
    assert!(failure.message.starts_with("0/3 nodes are available: 3 Insufficient cpu."), "{}", failure.message);
    assert!(diagnostics.to_string().contains("not scheduled: 0/3 nodes are available"), "{diagnostics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_progress_deadline_fails_a_rollout_that_cannot_progress() {
    let (_sim, client) = bookinfo().await;
    let outcome =
        gate(&client, &release("2.0.0-unschedulable", "timeout: 40s, pendingGrace: 30s", "  progressDeadline: 3s\n"))
            .await;
    let (failure, _) = failed(outcome);
    assert_eq!(failure.kind, GateFailureKind::ProgressDeadline);
    assert!(failure.message.ends_with("has timed out progressing."), "{}", failure.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn flapping_readiness_never_passes_stable_for_and_times_out_with_every_pods_state() {
    let (_sim, client) = bookinfo().await;
    let (failure, diagnostics) =
        failed(gate(&client, &release("2.0.0-flapping", "timeout: 6s, stableFor: 5s", "")).await);
    assert_eq!(failure.kind, GateFailureKind::Timeout);
    assert!(failure.message.starts_with("not healthy within 6s: "), "{}", failure.message);
    assert_eq!(diagnostics.pods.len(), 2, "every pod is described");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_starts_pass_when_the_timeout_allows() {
    let (_sim, client) = bookinfo().await;
    // slow-start=60s at time scale 20 is Ready after 3 s.
    let outcome = gate(&client, &release("2.0.0-slow-start", "timeout: 20s, stableFor: 1s", "")).await;
    let GateOutcome::Healthy { elapsed } = outcome else { panic!("expected healthy: {outcome:?}") };
    assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_init_container_crash_loop_fails() {
    let (_sim, client) = bookinfo().await;
    let template = "  template:\n    spec:\n      initContainers: [{name: migrate, image: 'registry.example.com/tools/migrate:broken'}]\n      containers: [{name: reviews, image: placeholder}]\n";
    let (failure, _) = failed(gate(&client, &release("2.0.0", "timeout: 30s", template)).await);
    assert_eq!((failure.kind, failure.container.as_deref()), (GateFailureKind::CrashLoop, Some("migrate")));
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_pods_are_never_healthy() {
    let (_sim, client) = bookinfo().await;
    let release = release("2.0.0", "timeout: 3s, stableFor: 1s", "");
    let deployer = Deployer::new(client.clone(), "bookinfo");
    deployer.apply(&release, None).await.unwrap();
    deployer.scale(&release.deployment_name(), 0).await.unwrap();
    let mut gate = PodGate::start(client.clone(), GateTarget::for_release(&release), GatePolicy::from(&release.gate));
    let (failure, _) = failed(gate.wait_healthy(Duration::from_secs(3)).await.unwrap());
    assert_eq!(failure.kind, GateFailureKind::Timeout);
    assert!(failure.message.contains("0 replicas"), "{}", failure.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_continuous_gate_reports_a_version_that_starts_crashing_later() {
    let (_sim, client) = bookinfo().await;
    // crash-after=30s at time scale 20: healthy for 1.5 s, then crashing.
    let release = release("2.0.0-crash-after-30s", "timeout: 20s, stableFor: 500ms", "");
    Deployer::new(client.clone(), "bookinfo").apply(&release, None).await.unwrap();
    let mut gate = PodGate::start(client.clone(), GateTarget::for_release(&release), GatePolicy::from(&release.gate));
    assert!(matches!(gate.wait_healthy(Duration::from_secs(20)).await.unwrap(), GateOutcome::Healthy { .. }));
    let mut continuous = gate.into_continuous();
    let failure =
        tokio::time::timeout(Duration::from_secs(20), continuous.failed()).await.expect("the crash is reported");
    assert_eq!(failure.kind, GateFailureKind::CrashLoop);
    assert!(!continuous.diagnose().await.pods.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gate_reaches_its_verdicts_through_cut_watches_410s_and_api_errors() {
    let (sim, client) = bookinfo().await;
    sim.faults().set(fledge_sim::faults::FaultSettings {
        cut_watches_after_seconds: Some(0.3),
        error_rate: 0.1,
        ..Default::default()
    });
    let store = sim.store().clone();
    let compactor = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(700)).await;
            store.compact();
        }
    });
    let healthy = release_of("v2", "2.0.0", "timeout: 40s, stableFor: 2s", "");
    let crashing = release_of("v3", "3.0.0-crashloop", "timeout: 40s", "");
    for release in [&healthy, &crashing] {
        // Applying may meet an injected error: retry as a pipeline would rerun.
        let deployer = Deployer::new(client.clone(), "bookinfo");
        let mut attempts = 0;
        while deployer.apply(release, Some("v1")).await.is_err() {
            attempts += 1;
            assert!(attempts < 20, "apply kept failing");
        }
    }
    let mut gate = PodGate::start(client.clone(), GateTarget::for_release(&healthy), GatePolicy::from(&healthy.gate));
    assert!(matches!(gate.wait_healthy(Duration::from_secs(40)).await.unwrap(), GateOutcome::Healthy { .. }));
    let mut gate = PodGate::start(client.clone(), GateTarget::for_release(&crashing), GatePolicy::from(&crashing.gate));
    let (failure, _) = failed(gate.wait_healthy(Duration::from_secs(40)).await.unwrap());
    assert_eq!(failure.kind, GateFailureKind::CrashLoop);
    compactor.abort();
}
