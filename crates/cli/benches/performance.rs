//! fledge's performance table, measured in one run on fledge-sim with a real Prometheus:
//!
//! - orchestration overhead: a release's run time minus its gate, stages and scale-down delay;
//! - Kubernetes API requests per minute of a release;
//! - SIGTERM mid-stage → route restored, new version retired, process exited;
//! - a crash-looping version: `deploying` → the gate's verdict (includes the simulated start and first crash);
//! - peak memory (VmHWM) of `fledge run` releasing a 1000-replica canary;
//! - `fledge validate examples/basic.yaml`, whole process.
//!
//!     cargo bench -p fledge --bench performance

#![allow(clippy::print_stdout, reason = "a benchmark prints its results")]

#[path = "../../../tests/e2e/support.rs"]
mod support;

use std::time::{Duration, Instant};
use support::World;

const RUNS: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn seconds(event: Option<&serde_json::Value>, field: &str) -> f64 {
    event.and_then(|event| event[field].as_f64()).unwrap_or(0.0)
}

fn event_time(event: Option<&serde_json::Value>) -> Option<jiff::Timestamp> {
    event.and_then(|event| event["time"].as_str()).and_then(|time| time.parse().ok())
}

/// The highest resident memory of process `pid` so far, in KiB, from /proc.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn overhead_and_requests() -> (f64, f64) {
    let (mut overheads, mut per_minute) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let world = World::start().await;
        // Three 5 s stages, checks every 2.5 s, a 2 s delay.
        let manifest = world.manifest(&format!("v{}", run + 2), "2.0.0", |text| {
            text.replace("  interval: 3s\n", "  interval: 2500ms\n").replace(
                "  - {weight: 20, duration: 6s}\n  - {weight: 50, duration: 6s}\n",
                "  - {weight: 10, duration: 5s}\n  - {weight: 30, duration: 5s}\n  - {weight: 60, duration: 5s}\n",
            )
        });
        let requests_before = world.api_requests().unwrap_or(0);
        let started = Instant::now();
        let finished = world.fledge(&["run"], &manifest).await;
        let total = started.elapsed().as_secs_f64();
        assert_eq!(finished.code, 0, "{finished:#?}");
        let gate = seconds(finished.event("gate-healthy"), "elapsed");
        let overhead = total - gate - 15.0 - 2.0;
        let requests = world.api_requests().unwrap_or(0) - requests_before;
        println!(
            "release {}: {total:.2}s = gate {gate:.2}s + stages 15.00s + delay 2.00s + overhead {overhead:.2}s; {requests} API requests",
            run + 1
        );
        overheads.push(overhead);
        per_minute.push(requests as f64 / (total / 60.0));
    }
    (median(overheads), median(per_minute))
}

async fn abort_latency() -> f64 {
    let world = World::start().await;
    let manifest = world.manifest("v2", "2.0.0", |text| text.replace("duration: 6s}", "duration: 60s}"));
    let mut running = world.spawn(&["run"], &manifest);
    running.wait_for("stage-started", Duration::from_secs(60), |_| true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let signalled = Instant::now();
    running.signal("TERM");
    let finished = running.finish().await;
    let latency = signalled.elapsed().as_secs_f64();
    assert_eq!(finished.code, 13, "{finished:#?}");
    assert_eq!(world.weights().await, [("v1".to_owned(), 100)]);
    latency
}

async fn crash_loop_verdict() -> f64 {
    let world = World::start().await;
    let manifest = world.manifest("v2", "2.0.0-crashloop", |text| text);
    let finished = world.fledge(&["run"], &manifest).await;
    assert_eq!(finished.code, 10, "{finished:#?}");
    let (Some(deploying), Some(failed)) =
        (event_time(finished.event("deploying")), event_time(finished.event("gate-failed")))
    else {
        panic!("no deploying or gate-failed event: {finished:#?}")
    };
    failed.duration_since(deploying).as_secs_f64()
}

async fn thousand_replicas_peak_mib() -> (f64, f64) {
    let world = World::start_with_nodes(30).await;
    let manifest = world.manifest("v2", "2.0.0", |text| {
        text.replace("replicas: 2}", "replicas: 1000}").replace("timeout: 1m}", "timeout: 5m}")
    });
    let started = Instant::now();
    let mut running = world.spawn(&["run"], &manifest);
    let pid = running.child.id().expect("running");
    let mut peak = 0;
    loop {
        if let Some(kib) = peak_kib(pid) {
            peak = peak.max(kib);
        }
        if let Ok(Some(_)) = running.child.try_wait() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let finished = running.finish().await;
    assert_eq!(finished.code, 0, "{finished:#?}");
    (peak as f64 / 1024.0, started.elapsed().as_secs_f64())
}

fn validate_millis() -> f64 {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic.yaml");
    let times: Vec<f64> = (0..21)
        .map(|_| {
            let started = Instant::now();
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_fledge"))
                .arg("validate")
                .arg(&manifest)
                .output()
                .unwrap();
            assert!(output.status.success());
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    median(times)
}

#[tokio::main]
async fn main() {
    let (overhead, requests_per_minute) = overhead_and_requests().await;
    let abort = abort_latency().await;
    let verdict = crash_loop_verdict().await;
    let (peak, thousand) = thousand_replicas_peak_mib().await;
    let validate = validate_millis();

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| orchestration overhead (run time − gate − stages − delay), median of {RUNS} releases | {overhead:.2} s |"
    );
    println!("| Kubernetes API requests per minute of a release, median | {requests_per_minute:.0} |");
    println!("| SIGTERM mid-stage → route restored, new version retired, process exited | {abort:.2} s |");
    println!("| crash-looping version: deploy → gate verdict (simulated start and crash included) | {verdict:.2} s |");
    println!(
        "| peak memory of `fledge run` with a 1000-replica canary (whole release {thousand:.0} s) | {peak:.1} MiB |"
    );
    println!("| `fledge validate examples/basic.yaml`, whole process, median of 21 | {validate:.1} ms |");
}
