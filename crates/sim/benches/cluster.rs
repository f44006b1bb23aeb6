//! fledge-sim at scale: how long 1000 pods take to become Ready, the peak memory of the process, and the API
//! requests served per second. Run with `cargo bench -p fledge-sim --bench cluster`. Prints numbers; the machines are
//! shared and noisy, so nothing here is asserted.

#![allow(clippy::print_stdout, reason = "a benchmark reports by printing")]

use fledge_sim::resources;
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const DEPLOYMENTS: usize = 10;
const REPLICAS: usize = 100;

fn scenario() -> Scenario {
    let mut text = String::from(
        "timeScale: 20\nnodes: 12\nobjects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: bench}}\n",
    );
    for index in 0..DEPLOYMENTS {
        let _ = write!(
            text,
            "  - apiVersion: apps/v1\n    kind: Deployment\n    metadata: {{name: app-{index}, namespace: bench}}\n    spec:\n      replicas: {REPLICAS}\n      selector: {{matchLabels: {{app: app-{index}}}}}\n      template:\n        metadata: {{labels: {{app: app-{index}, version: v1}}}}\n        spec:\n          containers:\n            - {{name: app, image: 'registry.example.com/app:1'}}\n"
        );
    }
    Scenario::parse(&text).expect("benchmark scenario")
}

/// Peak and current resident memory of this process, in MiB (from /proc/self/status).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn measure(client: &kube::Client, path: &'static str, duration: Duration, workers: usize) -> f64 {
    let served = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let client = client.clone();
            let served = served.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let request = http::Request::get(path).body(Vec::new()).expect("request");
                    if client.request_text(request).await.is_ok() {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    served.load(Ordering::Relaxed) as f64 / duration.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let started = Instant::now();
    let sim = Sim::start(SimConfig { scenario: scenario(), ..SimConfig::default() }).await.expect("simulator starts");
    let total = DEPLOYMENTS * REPLICAS;
    loop {
        let (ready, _) = sim.store().list(resources::PODS, Some("bench"), fledge_sim::cluster::is_ready_pod);
        if ready.len() == total {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {} of {total} pods Ready after 5 minutes",
            ready.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready_after = started.elapsed();
    // Let the controllers run over the full cluster for a while before reading memory.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (peak, current) = memory_mib();
    println!("fledge-sim with {total} pods ({DEPLOYMENTS} Deployments x {REPLICAS}), time scale 20");
    println!("  all pods Ready after        {:.1}s", ready_after.as_secs_f64());
    println!("  peak resident memory        {peak:.1} MiB (target: under 100 MiB)");
    println!("  resident memory now         {current:.1} MiB");

    let client = kube::Client::try_from(kube::Config::new(sim.api_url().parse().expect("url"))).expect("client");
    let get =
        measure(&client, "/api/v1/namespaces/bench/pods?labelSelector=app%3Dapp-3&limit=1", Duration::from_secs(5), 8)
            .await;
    let list = measure(&client, "/api/v1/namespaces/bench/pods", Duration::from_secs(5), 4).await;
    let version = measure(&client, "/version", Duration::from_secs(3), 8).await;
    println!("  API requests per second (8 clients, while the controllers run):");
    println!("    GET /version                          {version:>8.0}");
    println!("    list 100 pods by label selector       {get:>8.0}");
    println!("    list all {total} pods (4 clients)       {list:>8.0}");
    let (peak, _) = memory_mib();
    println!("  peak resident memory after load   {peak:.1} MiB");
    sim.shutdown().await;
}
