//! How fast the gate reaches a verdict, and what it costs the API server, against fledge-sim — side by side with a
//! faithful port of the original design (list the pods and read each one every 10 s; crash loop when container 0 has
//! `restart_count > 0`; image errors from container 0's waiting reason, read once; healthy when every pod is in phase
//! Running). Run with `cargo bench -p fledge-gate --bench verdict`. Prints numbers; asserts nothing.

#![allow(clippy::print_stdout, reason = "a benchmark reports by printing")]

use fledge_core::GateFailureKind;
use fledge_gate::{GateOutcome, GatePolicy, GateTarget, PodGate};
use fledge_sim::scenario::Scenario;
use fledge_sim::store::ChangeKind;
use fledge_sim::{Sim, SimConfig, resources};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TRIALS: usize = 20;
const REPLICAS: i32 = 2;
const BASELINE_PERIOD: Duration = Duration::from_secs(10);
const BASELINE_GIVE_UP: Duration = Duration::from_secs(40);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    CrashLoop,
    ImagePull,
}

impl Case {
    fn tag(self) -> &'static str {
        match self {
            Case::CrashLoop => "crashloop",
            Case::ImagePull => "missing",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Case::CrashLoop => "crash loop",
            Case::ImagePull => "image pull",
        }
    }
    /// Whether a pod status shows this failure for the first time.
    fn failing(self, pod: &Value) -> bool {
        let statuses = pod.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
        statuses.iter().filter(|status| status["name"] == "reviews").any(|status| match self {
            Case::CrashLoop => {
                status.pointer("/state/terminated/exitCode").and_then(Value::as_i64).is_some_and(|code| code != 0)
            }
            Case::ImagePull => status.pointer("/state/waiting/reason").and_then(Value::as_str) == Some("ErrImagePull"),
        })
    }
}

fn scenario() -> Scenario {
    Scenario::parse(
        "timeScale: 10\nnodes: 6\nbehaviours:\n  - {image: '*:crashloop', behaviour: crashloop}\n  - {image: '*:missing', behaviour: image-pull}\nobjects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: bench, labels: {istio-injection: enabled}}}\n  - {apiVersion: v1, kind: Namespace, metadata: {name: plain}}\n",
    )
    .expect("scenario")
}

fn deployment(name: &str, tag: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name, "version": "v1" } },
            "template": { "metadata": { "labels": { "app": name, "version": "v1" } },
                "spec": { "containers": [{ "name": "reviews", "image": format!("registry.example.com/reviews:{tag}") }] } }
        }
    }))
    .expect("deployment")
}

fn target(name: &str) -> GateTarget {
    GateTarget { namespace: "bench".into(), deployment: name.into(), selector: format!("app={name},version=v1") }
}

fn policy() -> GatePolicy {
    GatePolicy {
        max_restarts: 0,
        ignore_restarts_of: vec![],
        stable_for: Duration::from_secs(5),
        pending_grace: Duration::from_secs(120),
    }
}

/// Records when a pod of `app` first shows the failing status (read from the store, in process: no API requests).
fn watch_first_failure(sim: &Sim, app: String, case: Case) -> tokio::task::JoinHandle<Instant> {
    let (_, mut changes) = sim.store().watch(sim.store().revision()).expect("watch");
    tokio::spawn(async move {
        loop {
            let change = changes.recv().await.expect("changes");
            if change.resource == resources::PODS
                && change.kind != ChangeKind::Deleted
                && change.object.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app.as_str())
                && case.failing(&change.object)
            {
                return Instant::now();
            }
        }
    })
}

struct Trial {
    correct: bool,
    latency: Option<Duration>,
    requests: u64,
}

async fn fledge_trial(sim: &Sim, client: &kube::Client, case: Case, index: usize) -> Trial {
    let name = format!("fledge-{}-{index}", case.tag());
    let failing = watch_first_failure(sim, name.clone(), case);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "bench");
    api.create(&Default::default(), &deployment(&name, case.tag(), REPLICAS)).await.expect("create");
    let before = sim.requests_served();
    let started = Instant::now();
    let mut gate = PodGate::start(client.clone(), target(&name), policy());
    let outcome = gate.wait_healthy(Duration::from_secs(60)).await.expect("gate");
    let decided = Instant::now();
    let requests = sim.requests_served() - before;
    let _ = started;
    let expected = match case {
        Case::CrashLoop => GateFailureKind::CrashLoop,
        Case::ImagePull => GateFailureKind::ImagePull,
    };
    let correct = matches!(&outcome, GateOutcome::Failed { failure, .. } if failure.kind == expected);
    // Diagnostics read logs and events: those requests are part of the verdict's cost.
    let failing_at = tokio::time::timeout(Duration::from_secs(1), failing).await.ok().and_then(Result::ok);
    let latency = failing_at.map(|at| decided.saturating_duration_since(at));
    Trial { correct, latency, requests }
}

/// The original design, ported: every 10 s list the pods, read each one, look at container 0.
async fn baseline_trial(
    sim: &Sim,
    client: kube::Client,
    namespace: &str,
    case: Case,
    index: usize,
    requests: &std::sync::atomic::AtomicU64,
) -> Trial {
    let name = format!("baseline-{namespace}-{}-{index}", case.tag());
    let failing = watch_first_failure(sim, name.clone(), case);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    deployments.create(&Default::default(), &deployment(&name, case.tag(), REPLICAS)).await.expect("create");
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let started = Instant::now();
    let mut waiting_reason_read = false;
    let verdict: Option<&str> = loop {
        tokio::time::sleep(BASELINE_PERIOD).await;
        let list = pods.list(&ListParams::default().labels(&format!("app={name}"))).await.expect("list");
        requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut all_running = !list.items.is_empty();
        let mut verdict = None;
        for item in &list.items {
            let pod = pods.get(item.metadata.name.as_deref().unwrap_or_default()).await.expect("get");
            requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let status = pod.status.unwrap_or_default();
            let first = status.container_statuses.as_ref().and_then(|statuses| statuses.first()).cloned();
            if let Some(first) = &first {
                if first.restart_count > 0 {
                    verdict = Some("crash loop");
                }
                if !waiting_reason_read {
                    let reason = first
                        .state
                        .as_ref()
                        .and_then(|state| state.waiting.as_ref())
                        .and_then(|waiting| waiting.reason.clone());
                    if matches!(reason.as_deref(), Some("ErrImagePull" | "ImagePullBackOff")) {
                        verdict = Some("image pull");
                    }
                }
            }
            all_running &= status.phase.as_deref() == Some("Running");
        }
        waiting_reason_read = true;
        if verdict.is_some() {
            break verdict;
        }
        if all_running {
            break Some("healthy");
        }
        if started.elapsed() >= BASELINE_GIVE_UP {
            break None;
        }
    };
    let decided = Instant::now();
    let failing_at = tokio::time::timeout(Duration::from_secs(1), failing).await.ok().and_then(Result::ok);
    let correct = verdict == Some(case.name());
    Trial {
        correct,
        latency: failing_at.filter(|_| correct).map(|at| decided.saturating_duration_since(at)),
        requests: 0,
    }
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort();
    Some(samples[((samples.len() - 1) as f64 * fraction).round() as usize])
}

fn report(label: &str, trials: &[Trial], requests: u64) {
    let correct = trials.iter().filter(|trial| trial.correct).count();
    let mut latencies: Vec<Duration> =
        trials.iter().filter(|trial| trial.correct).filter_map(|trial| trial.latency).collect();
    let show = |value: Option<Duration>| {
        value.map_or_else(|| "-".to_owned(), |value| format!("{:.0} ms", value.as_secs_f64() * 1000.0))
    };
    let p50 = percentile(&mut latencies, 0.5);
    let p99 = percentile(&mut latencies, 0.99);
    println!(
        "  {label:<44} {correct:>2}/{:<2} right   p50 {:>9}   p99 {:>9}   {:>5.1} requests per verdict",
        trials.len(),
        show(p50),
        show(p99),
        requests as f64 / trials.len() as f64
    );
}

/// Requests per pod-minute of watching a healthy version: fledge's continuous gate and the original poller, side
/// by side over the same window.
async fn steady_state(sim: &Sim, client: &kube::Client, replicas: i32, window: Duration) {
    let fledge_name = format!("steady-fledge-{replicas}");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "bench");
    api.create(&Default::default(), &deployment(&fledge_name, "1.0.0", replicas)).await.expect("create");
    let mut gate = PodGate::start(
        client.clone(),
        target(&fledge_name),
        GatePolicy { stable_for: Duration::from_secs(1), ..policy() },
    );
    let before = sim.requests_served();
    assert!(matches!(gate.wait_healthy(Duration::from_secs(60)).await.expect("gate"), GateOutcome::Healthy { .. }));
    let continuous = gate.into_continuous();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let baseline_name = format!("steady-fledge-{replicas}");
    let mut polled = 0u64;
    let started = Instant::now();
    while started.elapsed() < window {
        tokio::time::sleep(BASELINE_PERIOD).await;
        let list = pods.list(&ListParams::default().labels(&format!("app={baseline_name}"))).await.expect("list");
        polled += 1;
        for item in &list.items {
            pods.get(item.metadata.name.as_deref().unwrap_or_default()).await.expect("get");
            polled += 1;
        }
    }
    let fledge_requests = sim.requests_served() - before - polled;
    drop(continuous);
    let pod_minutes = f64::from(replicas) * window.as_secs_f64() / 60.0;
    println!(
        "  {replicas:>3} pods for {:.0}s: fledge gate {fledge_requests} requests ({:.2} per pod-minute), original design {polled} requests ({:.2} per pod-minute)",
        window.as_secs_f64(),
        fledge_requests as f64 / pod_minutes,
        polled as f64 / pod_minutes
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let sim = Sim::start(SimConfig { scenario: scenario(), ..SimConfig::default() }).await.expect("simulator");
    let client = fledge_kube_client::client_for_url(sim.api_url(), &Default::default()).expect("client");
    println!(
        "gate verdicts against fledge-sim: {TRIALS} trials per case, {REPLICAS} pods each, istio-proxy sidecar injected"
    );
    println!("latency: from the failing status appearing in the store to the verdict");
    for case in [Case::CrashLoop, Case::ImagePull] {
        println!("{}:", case.name());
        let mut trials = Vec::new();
        for index in 0..TRIALS {
            trials.push(fledge_trial(&sim, &client, case, index).await);
        }
        let requests: u64 = trials.iter().map(|trial| trial.requests).sum();
        report("fledge gate (watch), with sidecar", &trials, requests);
        // The baseline's trials run side by side: each waits 10 s per poll.
        for (namespace, label) in [
            ("bench", "original design (10 s poll), with sidecar"),
            ("plain", "original design (10 s poll), no sidecar"),
        ] {
            let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let runs: Vec<_> = (0..TRIALS)
                .map(|index| {
                    let client = client.clone();
                    let counter = counter.clone();
                    let sim = &sim;
                    async move { baseline_trial(sim, client, namespace, case, index, &counter).await }
                })
                .collect();
            let trials = futures::future::join_all(runs).await;
            report(label, &trials, counter.load(std::sync::atomic::Ordering::Relaxed));
        }
    }
    println!("requests per pod-minute while a healthy version is watched:");
    for replicas in [2, 20] {
        steady_state(&sim, &client, replicas, Duration::from_secs(30)).await;
    }

    println!("API requests of one healthy gate, by pod count (the watch costs the same for 1 pod or 50):");
    for (index, replicas) in [1, 10, 50].into_iter().enumerate() {
        let name = format!("scale-{index}");
        let api: Api<Deployment> = Api::namespaced(client.clone(), "bench");
        api.create(&Default::default(), &deployment(&name, "1.0.0", replicas)).await.expect("create");
        let before = sim.requests_served();
        let started = Instant::now();
        let mut gate = PodGate::start(
            client.clone(),
            target(&name),
            GatePolicy { stable_for: Duration::from_secs(2), ..policy() },
        );
        let outcome = gate.wait_healthy(Duration::from_secs(60)).await.expect("gate");
        let healthy = matches!(outcome, GateOutcome::Healthy { .. });
        println!(
            "  {replicas:>3} pods: {} after {:.1}s, {} API requests",
            if healthy { "healthy" } else { "NOT healthy" },
            started.elapsed().as_secs_f64(),
            sim.requests_served() - before
        );
    }
    sim.shutdown().await;
}
