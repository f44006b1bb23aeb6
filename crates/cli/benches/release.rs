//! What fledge itself adds to a release, measured on fledge-sim with a real Prometheus: orchestration overhead (run
//! time minus the gate, the stages and the scale-down delay), the time from SIGTERM to traffic restored, and the
//! Kubernetes API requests per minute of a release. Prints a table.
//!
//!     cargo bench -p fledge --bench release

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

#[tokio::main]
async fn main() {
    let mut overheads = Vec::new();
    let mut requests_per_minute = Vec::new();
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
        let gate = finished.event("gate-healthy").and_then(|event| event["elapsed"].as_f64()).unwrap_or(0.0);
        let overhead = total - gate - 15.0 - 2.0;
        let requests = world.api_requests().unwrap_or(0) - requests_before;
        println!(
            "run {}: {total:.2}s = gate {gate:.2}s + stages 15.00s + delay 2.00s + overhead {overhead:.2}s; {requests} API requests",
            run + 1
        );
        overheads.push(overhead);
        requests_per_minute.push(requests as f64 / (total / 60.0));
    }

    let world = World::start().await;
    let manifest = world.manifest("v2", "2.0.0", |text| text.replace("duration: 6s}", "duration: 60s}"));
    let mut running = world.spawn(&["run"], &manifest);
    running.wait_for("stage-started", Duration::from_secs(60), |_| true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let signalled = Instant::now();
    running.signal("TERM");
    let finished = running.finish().await;
    let abort = signalled.elapsed().as_secs_f64();
    assert_eq!(finished.code, 13, "{finished:#?}");
    assert_eq!(world.weights().await, [("v1".to_owned(), 100)]);

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| orchestration overhead (run time − gate − stages − delay), median of {RUNS} | {:.2} s |",
        median(overheads)
    );
    println!("| Kubernetes API requests per minute of a release, median | {:.0} |", median(requests_per_minute));
    println!("| SIGTERM → route restored, new version retired, process exited | {abort:.2} s |");
}
