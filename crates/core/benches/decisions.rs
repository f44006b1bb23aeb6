//! How many users a bad version hurts before each decision policy rolls it back, and how often each rolls back a
//! healthy one: fledge's decision code (the counted checks' sequential test, the rounds' thresholds and tally) fed
//! by a simulated service in virtual time.
//!
//! ```text
//!  100 rps, the new version at each stage's weight ──per second──▶ counters as Prometheus scrapes them (1 s)
//!     live: 0.1% errors, latency median 20 ms / p99 250 ms              │
//!     new: the scenario's errors or latency                             ├─▶ (a) CountedChecks::look, every second
//!                                                                       └─▶ (b)(c)(d) rounds every interval:
//!                                                                            rates over the window, StageTally
//! ```
//!
//! Run: `cargo bench -p fledge-core --bench decisions`. Prints a Markdown table (medians over the repetitions).

#![allow(clippy::print_stdout, reason = "a benchmark reports by printing")]

use fledge_core::Duration;
use fledge_core::analysis::{RoundVerdict, StageTally, TallyDecision, judge_absolute};
use fledge_core::counted_checks::{CountedChecks, CountedReading};
use fledge_core::release::{Analysis, BuiltinMetric, MetricCheck, MetricSource, NoDataPolicy, Threshold};
use fledge_core::sequential::{Counts, Regression};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RPS: u64 = 100;
const LIVE_ERRORS: f64 = 0.001;
/// examples/basic.yaml's stages: (weight %, seconds).
const STAGES: [(f64, u64); 4] = [(5.0, 120), (25.0, 300), (50.0, 300), (100.0, 300)];
/// Envoy's duration buckets (ms).
const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0,
    600000.0, 1800000.0, 3600000.0,
];
const SLOW_MS: f64 = 500.0;
const REPETITIONS: u64 = 30;

#[derive(Clone, Copy)]
struct Version {
    errors: f64,
    median_ms: f64,
    p99_ms: f64,
}

const LIVE: Version = Version { errors: LIVE_ERRORS, median_ms: 20.0, p99_ms: 250.0 };

fn latency(random: &mut StdRng, version: Version) -> f64 {
    let sigma = (version.p99_ms / version.median_ms).ln() / 2.326;
    let (u1, u2): (f64, f64) = (random.random::<f64>().max(f64::MIN_POSITIVE), random.random());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (version.median_ms.ln() + sigma * z).exp()
}

/// One second of the new version's requests, as its counters grew.
#[derive(Clone, Copy, Default)]
struct Second {
    requests: u64,
    failed: u64,
    slow: u64,
    /// Requests no slower than each bucket bound.
    buckets: [u64; 19],
}

/// A decision policy.
enum Policy {
    /// fledge's counted checks: success-rate, and slow-requests when `with_latency`.
    Counted { with_latency: bool },
    /// Rounds every `interval` s over a `window` s, rolling back after more than `failure_limit` failed rounds in a
    /// stage (fledge, Argo Rollouts' step analysis) or in the release (`across_stages`: Flagger's failed checks).
    Rounds { interval: u64, window: u64, failure_limit: u32, across_stages: bool },
}

/// A scenario: its name, the new version, and which of its requests count as bad.
type Scenario = (&'static str, Version, fn(&Second) -> u64);

struct Outcome {
    rolled_back_at: Option<u64>,
    bad_served: u64,
    requests_to_new: u64,
    seconds: u64,
}

/// The p99 as `histogram_quantile(0.99, ...)` computes it from bucket counts: linear within the bucket.
fn histogram_p99(buckets: &[u64; 19], total: u64) -> f64 {
    let rank = 0.99 * total as f64;
    let mut lower = (0.0, 0_u64);
    for (bound, count) in BUCKETS.iter().zip(buckets) {
        if *count as f64 >= rank {
            let (lower_bound, lower_count) = lower;
            let within = (*count - lower_count) as f64;
            return lower_bound + (bound - lower_bound) * (rank - lower_count as f64) / within.max(1.0);
        }
        lower = (*bound, *count);
    }
    BUCKETS[18]
}

fn counted_analysis(with_latency: bool) -> Analysis {
    let check = |name: &str, source| MetricCheck {
        name: name.into(),
        source,
        window: Duration::from_secs(1),
        threshold: Threshold::Sequential { detect: Regression::Points(0.01) },
    };
    Analysis {
        interval: Duration::from_secs(30),
        failure_limit: 1,
        min_requests: 20,
        no_data: NoDataPolicy::Hold,
        max_hold: Duration::from_secs(600),
        query_error_limit: 3,
        metrics: [
            check("success-rate", MetricSource::Builtin(BuiltinMetric::SuccessRate)),
            check("slow-requests", MetricSource::SlowRequests { slower_than: Duration::from_millis(500) }),
        ]
        .into_iter()
        .take(if with_latency { 2 } else { 1 })
        .collect(),
        data_plane: None,
        false_alarm: 0.01,
    }
}

fn release(random: &mut StdRng, new: Version, policy: &Policy, measure_bad: fn(&Second) -> u64) -> Outcome {
    let mut history: Vec<Second> = Vec::new();
    let (mut errors_new, mut errors_live) = (Counts::default(), Counts::default());
    let with_latency = matches!(policy, Policy::Counted { with_latency: true });
    let mut counted = CountedChecks::of(&counted_analysis(with_latency));
    let mut outcome = Outcome { rolled_back_at: None, bad_served: 0, requests_to_new: 0, seconds: 0 };
    let mut clock = 0_u64;
    let mut release_tally: Option<StageTally> = None;
    for (weight, duration) in STAGES {
        counted.start_stage(weight as u8);
        let (interval, window, failure_limit) = match policy {
            Policy::Counted { .. } => (30, 30, 1),
            Policy::Rounds { interval, window, failure_limit, .. } => (*interval, *window, *failure_limit),
        };
        if !matches!(policy, Policy::Rounds { across_stages: true, .. }) || release_tally.is_none() {
            release_tally = Some(StageTally::new(failure_limit, 3));
        }
        let tally = release_tally.as_mut().expect("set");
        let mut elapsed = 0;
        let mut since_round = 0;
        loop {
            // One second of traffic.
            let mut second = Second::default();
            for _ in 0..RPS {
                let to_new = random.random::<f64>() * 100.0 < weight;
                let version = if to_new { new } else { LIVE };
                let failed = random.random::<f64>() < version.errors;
                let took = latency(random, version);
                let slow = took > SLOW_MS;
                if to_new {
                    second.requests += 1;
                    second.failed += u64::from(failed);
                    second.slow += u64::from(slow);
                    for (bucket, bound) in second.buckets.iter_mut().zip(BUCKETS) {
                        *bucket += u64::from(took <= bound);
                    }
                    errors_new.new_total += 1;
                    errors_new.new_bad += u64::from(failed);
                    errors_new.live_bad += u64::from(slow); // slow requests of the new version, kept aside
                } else {
                    errors_live.live_total += 1;
                    errors_live.live_bad += u64::from(failed);
                    errors_live.new_bad += u64::from(slow);
                }
            }
            history.push(second);
            clock += 1;
            since_round += 1;
            outcome.requests_to_new += second.requests;
            outcome.bad_served += measure_bad(&second);
            let stop = |outcome: &mut Outcome| {
                outcome.rolled_back_at = Some(clock);
                outcome.seconds = clock;
            };
            match policy {
                Policy::Counted { .. } => {
                    let reading = |check: &str, bad_new: u64, bad_live: u64| CountedReading {
                        check: check.into(),
                        query: String::new(),
                        counts: Ok(Counts {
                            new_total: errors_new.new_total,
                            new_bad: bad_new,
                            live_total: errors_live.live_total,
                            live_bad: bad_live,
                        }),
                    };
                    let readings = vec![
                        reading("success-rate", errors_new.new_bad, errors_live.live_bad),
                        reading("slow-requests", errors_new.live_bad, errors_live.new_bad),
                    ];
                    if counted.look(readings).is_some() {
                        stop(&mut outcome);
                        return outcome;
                    }
                    if since_round == interval {
                        since_round = 0;
                        if elapsed < duration {
                            elapsed += interval;
                        }
                        if elapsed >= duration && counted.short_of_requests().is_empty() {
                            break;
                        }
                    }
                }
                Policy::Rounds { .. } => {
                    if since_round < interval {
                        continue;
                    }
                    since_round = 0;
                    let recent = &history[history.len().saturating_sub(window as usize)..];
                    let mut sum = Second::default();
                    for second in recent {
                        sum.requests += second.requests;
                        sum.failed += second.failed;
                        for (total, bucket) in sum.buckets.iter_mut().zip(second.buckets) {
                            *total += bucket;
                        }
                    }
                    let verdict = if sum.requests < 20 {
                        RoundVerdict::NoData
                    } else {
                        let success = 100.0 * (1.0 - sum.failed as f64 / sum.requests as f64);
                        let p99 = histogram_p99(&sum.buckets, sum.requests);
                        let verdicts =
                            [judge_absolute(success, Some(99.0), None), judge_absolute(p99, None, Some(500.0))];
                        RoundVerdict::of(verdicts, NoDataPolicy::Hold)
                    };
                    match tally.record(verdict) {
                        TallyDecision::RollBack(_) => {
                            stop(&mut outcome);
                            return outcome;
                        }
                        TallyDecision::Continue => elapsed += interval,
                        TallyDecision::Hold => {}
                    }
                    if elapsed >= duration {
                        break;
                    }
                }
            }
        }
    }
    outcome.seconds = clock;
    outcome
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) { (values[middle - 1] + values[middle]) / 2.0 } else { values[middle] }
}

fn main() {
    let policies: Vec<(&str, Policy)> = vec![
        (
            "(a) fledge counted success-rate + slow-requests (falseAlarm 1%, detect 1%)",
            Policy::Counted { with_latency: true },
        ),
        ("(a) fledge counted success-rate only (falseAlarm 1%, detect 1%)", Policy::Counted { with_latency: false }),
        (
            "(b) fledge today's defaults (30s, failureLimit 1)",
            Policy::Rounds { interval: 30, window: 30, failure_limit: 1, across_stages: false },
        ),
        (
            "(c) like Flagger's example (1m, threshold 5 failed checks per release)",
            Policy::Rounds { interval: 60, window: 60, failure_limit: 4, across_stages: true },
        ),
        (
            "(d) like Argo Rollouts (30s, failureLimit 0)",
            Policy::Rounds { interval: 30, window: 30, failure_limit: 0, across_stages: false },
        ),
        (
            "(d) like Argo Rollouts (30s, failureLimit 1)",
            Policy::Rounds { interval: 30, window: 30, failure_limit: 1, across_stages: false },
        ),
        (
            "(d) like Argo Rollouts (30s, failureLimit 2)",
            Policy::Rounds { interval: 30, window: 30, failure_limit: 2, across_stages: false },
        ),
        (
            "(d) like Argo Rollouts (30s, failureLimit 3)",
            Policy::Rounds { interval: 30, window: 30, failure_limit: 3, across_stages: false },
        ),
    ];
    let failed: fn(&Second) -> u64 = |second| second.failed;
    let slow: fn(&Second) -> u64 = |second| second.slow;
    let scenarios: Vec<Scenario> = vec![
        ("errors 1%", Version { errors: 0.01, ..LIVE }, failed),
        ("errors 2%", Version { errors: 0.02, ..LIVE }, failed),
        ("errors 5%", Version { errors: 0.05, ..LIVE }, failed),
        ("errors 20%", Version { errors: 0.20, ..LIVE }, failed),
        ("latency +300ms", Version { median_ms: 320.0, p99_ms: 550.0, ..LIVE }, slow),
    ];
    println!(
        "{RPS} rps, live version {:.1}% errors (latency median 20 ms, p99 250 ms), stages {STAGES:?} (weight %, s), 1 s scrapes, {REPETITIONS} repetitions per cell, medians.\n",
        LIVE_ERRORS * 100.0
    );
    println!(
        "bad requests served by the new version before the rollback (5xx; for latency, requests slower than 500 ms) / requests to the new version / seconds from the first stage's start to the rollback\n"
    );
    let mut header = "| policy |".to_owned();
    for (name, ..) in &scenarios {
        header.push_str(&format!(" {name} |"));
    }
    header.push_str(" healthy: false rollbacks | healthy: release minutes |");
    println!("{header}");
    println!("|{}", "---|".repeat(scenarios.len() + 3));
    for (seed_offset, (name, policy)) in policies.iter().enumerate() {
        let mut row = format!("| {name} |");
        for (index, (_, version, measure)) in scenarios.iter().enumerate() {
            let mut random = StdRng::seed_from_u64(1000 * seed_offset as u64 + index as u64);
            let runs: Vec<Outcome> =
                (0..REPETITIONS).map(|_| release(&mut random, *version, policy, *measure)).collect();
            let caught = runs.iter().filter(|run| run.rolled_back_at.is_some()).count();
            let mut bad: Vec<f64> = runs.iter().map(|run| run.bad_served as f64).collect();
            let mut requests: Vec<f64> = runs.iter().map(|run| run.requests_to_new as f64).collect();
            let mut seconds: Vec<f64> = runs.iter().map(|run| run.seconds as f64).collect();
            let missed =
                if caught < runs.len() { format!(" ({} promoted)", runs.len() - caught) } else { String::new() };
            row.push_str(&format!(
                " {:.0} / {:.0} / {:.0}s{missed} |",
                median(&mut bad),
                median(&mut requests),
                median(&mut seconds)
            ));
        }
        let mut random = StdRng::seed_from_u64(99_000 + seed_offset as u64);
        let healthy: Vec<Outcome> =
            (0..REPETITIONS).map(|_| release(&mut random, LIVE, policy, |second| second.failed)).collect();
        let false_rollbacks = healthy.iter().filter(|run| run.rolled_back_at.is_some()).count();
        let mut minutes: Vec<f64> = healthy.iter().map(|run| run.seconds as f64 / 60.0).collect();
        row.push_str(&format!(" {false_rollbacks} of {REPETITIONS} | {:.1} |", median(&mut minutes)));
        println!("{row}");
    }
}
