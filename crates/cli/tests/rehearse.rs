//! `fledge rehearse` on a small policy: a bad version is caught where the policy says, and the exposure it reports
//! is what the simulated traffic implies (requests = rate × weight × time at that weight; failures = the error rate).

use serde_json::Value;
use std::process::Command;

/// Rehearsed services fail 0.1% of requests: a 6 s window at 20% of 100 requests per second holds about 120, so the
/// bound sits where two chance failures still pass. The first stage has four rounds: the first errors of a new
/// version are not counted (Istio's series of 500s appears with the first one, and `rate()` needs two samples), so a
/// 10% version can pass a round or two before it fails two.
const POLICY: &str = "apiVersion: fledge/v1
kind: Release
service: {name: shop, namespace: store, version: v2}
deploy: {image: registry.example.com/shop:2.0.0, replicas: 2}
gate: {stableFor: 1s, timeout: 1m}
analysis:
  interval: 3s
  failureLimit: 1
  minRequests: 5
  metrics:
    - {builtin: success-rate, min: 98, window: 6s}
stages:
  - {weight: 20, duration: 12s}
  - {weight: 60, duration: 9s}
promote: {scaleDownDelay: 1s}
";

fn rehearse(scenario: &str) -> (i32, Vec<Value>) {
    rehearse_with(scenario, &[])
}

fn rehearse_with(scenario: &str, arguments: &[&str]) -> (i32, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("policy.yaml");
    std::fs::write(&manifest, POLICY).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fledge"))
        .arg("rehearse")
        .arg(&manifest)
        .args(["--scenario", scenario, "--rps", "100", "--output", "json"])
        .args(arguments)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rehearsals: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("{error}: {stdout}{}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code().unwrap(), rehearsals)
}

#[test]
fn a_version_with_errors_is_caught_at_stage_one_with_the_exposure_the_traffic_implies() {
    // 10%: at 20 requests per second a 5% rate leaves a 3 s round without a visible failure too often.
    let (code, rehearsals) = rehearse("errors=10%");
    assert_eq!(code, 0, "the policy caught it: {rehearsals:#?}");
    let rehearsal = &rehearsals[0];
    assert_eq!(rehearsal["outcome"], "rolled-back-metrics");
    assert_eq!(rehearsal["caughtAt"], "stage 1 (20%)");
    // Two failed 3 s rounds at 20% of 100 requests per second: about 6 s × 20 = 120 requests reached v2 (up to twice
    // that when the first rounds missed the first errors).
    let seconds_at_stage_one = rehearsal["timeToAbortSeconds"].as_f64().unwrap() - 1.0;
    let requests = rehearsal["requestsToNew"].as_u64().unwrap() as f64;
    let failed = rehearsal["failedRequests"].as_u64().unwrap() as f64;
    assert!((3.0..18.0).contains(&seconds_at_stage_one), "caught within the stage: {rehearsal}");
    assert!((60.0..=320.0).contains(&requests), "about 20 rps for a few seconds: {rehearsal}");
    let rate = failed / requests;
    assert!((0.03..=0.2).contains(&rate), "about 10% of them failed: {rehearsal}");
}

#[test]
fn the_same_policy_through_the_gateway_api_catches_the_same_version_at_the_same_stage() {
    let (code, rehearsals) = rehearse_with("errors=10%", &["--provider", "gateway-api"]);
    assert_eq!(code, 0, "the policy caught it: {rehearsals:#?}");
    let rehearsal = &rehearsals[0];
    assert_eq!(
        (rehearsal["outcome"].as_str(), rehearsal["caughtAt"].as_str()),
        (Some("rolled-back-metrics"), Some("stage 1 (20%)"))
    );
    let requests = rehearsal["requestsToNew"].as_u64().unwrap() as f64;
    assert!((60.0..=320.0).contains(&requests), "about 20 rps through the HTTPRoute for a few seconds: {rehearsal}");
}

#[test]
fn a_crash_looping_version_is_caught_before_any_request_reaches_it() {
    let (code, rehearsals) = rehearse("crashloop");
    assert_eq!(code, 0, "{rehearsals:#?}");
    let rehearsal = &rehearsals[0];
    assert_eq!(
        (rehearsal["outcome"].as_str(), rehearsal["caughtAt"].as_str()),
        (Some("rolled-back-pod-health"), Some("gate"))
    );
    assert_eq!((rehearsal["requestsToNew"].as_u64(), rehearsal["failedRequests"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn a_policy_that_misses_a_regression_fails_the_rehearsal() {
    // The policy checks only the success rate: a latency regression passes it, and the rehearsal says so.
    let (code, rehearsals) = rehearse("latency=+300ms");
    assert_eq!(code, 3, "{rehearsals:#?}");
    assert_eq!(rehearsals[0]["outcome"], "promoted");
    assert_eq!(rehearsals[0]["asExpected"], false);
}

#[test]
fn a_repeated_rehearsal_reports_every_run_of_a_counted_check() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("policy.yaml");
    let counted = POLICY
        .replace("    - {builtin: success-rate, min: 98, window: 6s}\n", "    - {builtin: success-rate, detect: 1%}\n");
    assert_ne!(counted, POLICY, "the policy gained a counted check");
    std::fs::write(&manifest, counted).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fledge"))
        .arg("rehearse")
        .arg(&manifest)
        .args(["--scenario", "errors=10%", "--rps", "100", "--repeat", "2", "--output", "json", "--report-html"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rehearsals: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("{error}: {stdout}{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(output.status.code(), Some(0), "{rehearsals:#?}");
    let runs: Vec<(u64, &str)> = rehearsals
        .iter()
        .map(|rehearsal| (rehearsal["repetition"].as_u64().unwrap(), rehearsal["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(runs, [(1, "rolled-back-metrics"), (2, "rolled-back-metrics")]);
    for rehearsal in &rehearsals {
        assert!(
            rehearsal["detail"]
                .as_str()
                .unwrap()
                .starts_with("a counted check's sequential test found the new version worse"),
            "{rehearsal}"
        );
        assert_eq!(rehearsal["caughtAt"], "stage 1 (20%)", "{rehearsal}");
    }
    for repetition in [1, 2] {
        let page = std::fs::read_to_string(dir.path().join(format!("errors_10_-{repetition}.html"))).unwrap();
        assert!(page.contains(r#"data-outcome="rolled-back-metrics""#), "{page}");
        assert!(page.contains(r#"<figure class="check" data-check="success-rate""#), "{page}");
    }
}
