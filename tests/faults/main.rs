//! The fault matrix: releases of `reviews` broken in every way we know (signals in each phase, API faults,
//! Prometheus outages, hand edits, concurrent runs), each ending with the same invariant: 100% of the route on one
//! version whose pods are Ready, nothing orphaned, the lock free, the run record closed, the exit code right and
//! the route as it was except what fledge owns. The signal, API-fault and hand-edit cases run on both traffic
//! providers: Istio (a VirtualService) and the Gateway API (an HTTPRoute, `gateway-api: ` cases).
//!
//! ```text
//!  case 1 ─▶ fledge-sim (bookinfo-01) ─┐
//!  case 2 ─▶ fledge-sim (bookinfo-02) ─┼─▶ one Prometheus scrapes every mesh (namespaces keep series apart)
//!  ...     (14 cases at a time)        ┘
//! ```
//!
//! `cargo test -p fledge --test faults [FILTER...]` runs the cases whose name contains a FILTER, prints a table and
//! `N passed, M failed`, and fails when a case fails. The table in docs/reliability.md comes from this output.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "the matrix prints its progress and its table")]

mod cases;
mod lab;
#[path = "../e2e/support.rs"]
mod support;

use cases::{Case, Observed};
use fledge_testkit::{TestPrometheus, eventually};
use lab::Lab;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many cases run at once: each is mostly waiting on its release's clock.
const PARALLEL: usize = 14;
/// How long one case may take before it counts as failed.
const CASE_DEADLINE: Duration = Duration::from_secs(240);

/// Waits until Prometheus has seen traffic to `reviews` in every one of `namespaces`.
pub(crate) async fn wait_for_traffic(prometheus: &str, namespaces: &[&str]) {
    let client = prometheus_http_query::Client::try_from(prometheus).unwrap();
    let query = r#"sum by (destination_workload_namespace) (increase(istio_requests_total{reporter="destination",destination_app="reviews"}[10s])) > 50"#;
    eventually("traffic to reviews in every namespace", Duration::from_secs(90), || async {
        let response = client.query(query).get().await.ok()?;
        let seen: Vec<String> = response
            .data()
            .as_vector()?
            .iter()
            .filter_map(|sample| sample.metric().get("destination_workload_namespace").cloned())
            .collect();
        namespaces.iter().all(|namespace| seen.iter().any(|seen| seen == namespace)).then_some(())
    })
    .await;
}

struct Row {
    number: usize,
    name: String,
    proves: String,
    observed: Observed,
    elapsed: Duration,
}

/// The verdict of the last command, by its exit code.
fn outcome_name(code: i32) -> &'static str {
    match code {
        -1 => "killed",
        0 => "promoted",
        1 => "internal-error",
        3 => "preflight-failed",
        5 => "locked",
        6 => "lock-lost",
        10 => "rolled-back-pod-health",
        11 => "rolled-back-metrics",
        12 => "rolled-back-deadline",
        13 => "rolled-back-cancelled",
        14 => "rolled-back-error",
        20 => "rollback-failed",
        _ => "other",
    }
}

fn print_table(rows: &[Row]) {
    println!("\n| case | what it proves | verdict | exit codes | invariant | time |");
    println!("|------|----------------|---------|------------|-----------|-----:|");
    for row in rows {
        let codes: Vec<String> = row.observed.codes.iter().map(ToString::to_string).collect();
        let verdict = row.observed.codes.last().map_or("none", |code| outcome_name(*code));
        let invariant = if !row.observed.invariant_checked {
            "not checked"
        } else if row.observed.problems.is_empty() {
            "holds"
        } else {
            "FAILED"
        };
        println!(
            "| {} | {} | {verdict} | {} | {invariant} | {:.0} s |",
            row.name,
            row.proves,
            codes.join(" → "),
            row.elapsed.as_secs_f64()
        );
    }
    for row in rows.iter().filter(|row| !row.observed.passed()) {
        println!("\n{}:", row.name);
        for problem in &row.observed.problems {
            println!("  - {problem}");
        }
    }
}

/// Runs one case on its lab in a task of its own (a panic fails the case, not the matrix), then shuts the lab down
/// (freeing the slot's port).
async fn run_case(lab: Lab, case: Case, prometheus: &str) -> Row {
    let start = Instant::now();
    let number = lab.number;
    let lab = Arc::new(lab);
    let task = {
        let (lab, url, script) = (lab.clone(), prometheus.to_owned(), case.script);
        tokio::spawn(async move {
            wait_for_traffic(&url, &[lab.namespace.as_str()]).await;
            cases::run(script, &lab, &url).await
        })
    };
    let abort = task.abort_handle();
    let observed = match tokio::time::timeout(CASE_DEADLINE, task).await {
        Ok(Ok(observed)) => observed,
        Ok(Err(error)) => Observed::failed(format!("the case panicked: {}", panic_message(error))),
        Err(_) => {
            abort.abort();
            Observed::failed(format!("the case did not finish within {CASE_DEADLINE:?}"))
        }
    };
    let elapsed = start.elapsed();
    eprintln!("{} {} ({:.0} s)", if observed.passed() { "passed" } else { "FAILED" }, case.name, elapsed.as_secs_f64());
    // An aborted task lets go of the lab when it is dropped; give it a moment.
    let mut lab = lab;
    for _ in 0..50 {
        match Arc::try_unwrap(lab) {
            Ok(owned) => {
                owned.sim.shutdown().await;
                break;
            }
            Err(shared) => lab = shared,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Row { number, name: case.name, proves: case.proves, observed, elapsed }
}

/// What a panicking case said.
fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(error) => error.to_string(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args().skip(1).filter(|argument| !argument.starts_with('-')).collect();
    let cases: Vec<Case> = cases::all()
        .into_iter()
        .filter(|case| filters.is_empty() || filters.iter().any(|filter| case.name.contains(filter.as_str())))
        .collect();
    let started = Instant::now();
    println!("fault matrix: {} cases, {PARALLEL} at a time", cases.len());
    // Each of the PARALLEL slots runs one case after another, each on a simulator of its own that serves its metrics
    // on the slot's port, so one Prometheus scrapes them all; the namespaces keep the cases' series apart.
    let mut queue: std::collections::VecDeque<(usize, Case)> =
        cases.into_iter().enumerate().map(|(index, case)| (index + 1, case)).collect();
    let mut first_labs = Vec::new();
    while first_labs.len() < PARALLEL
        && let Some((number, case)) = queue.pop_front()
    {
        let lab = Lab::start(number, case.provider, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a simulator starts");
        first_labs.push((lab, case));
    }
    let targets: Vec<String> = first_labs.iter().map(|(lab, _)| lab.metrics_target()).collect();
    let target_refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    let prometheus = TestPrometheus::start(&target_refs).await;
    let queue = Arc::new(std::sync::Mutex::new(queue));
    let mut slots = Vec::new();
    for (lab, case) in first_labs {
        let (queue, url) = (queue.clone(), prometheus.url.clone());
        slots.push(tokio::spawn(async move {
            let address = lab
                .sim
                .metrics_url()
                .trim_start_matches("http://")
                .trim_end_matches("/metrics")
                .parse()
                .expect("a socket address");
            let mut rows = vec![run_case(lab, case, &url).await];
            loop {
                let next = queue.lock().unwrap().pop_front();
                let Some((number, case)) = next else { return rows };
                match Lab::start_on_slot(number, case.provider, address).await {
                    Ok(lab) => rows.push(run_case(lab, case, &url).await),
                    Err(error) => rows.push(Row {
                        number,
                        name: case.name,
                        proves: case.proves,
                        observed: Observed::failed(error),
                        elapsed: Duration::ZERO,
                    }),
                }
            }
        }));
    }
    let mut rows = Vec::new();
    for slot in slots {
        rows.extend(slot.await.expect("a case does not panic"));
    }
    rows.sort_by_key(|row| row.number);
    print_table(&rows);
    let failed = rows.iter().filter(|row| !row.observed.passed()).count();
    println!("\n{} passed, {failed} failed ({:.0} s)", rows.len() - failed, started.elapsed().as_secs_f64());
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
