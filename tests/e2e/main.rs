//! End to end: the `fledge` binary releases `reviews` on fledge-sim's bookinfo (or a real cluster, see support.rs)
//! with a real Prometheus, and each outcome leaves the cluster as it should: 100% on one healthy version.

mod gateway_api;
mod html_report;
mod permissions;
mod pinned_routes;
mod plan;
mod support;
mod wait;

use serde_json::Value;
use std::time::Duration;
use support::{Provider, Webhook, World, judged_strictly};

/// Each release test, once per traffic provider: `on_istio::NAME` and `on_gateway_api::NAME`.
macro_rules! on_both_providers {
    ($($test:ident),* $(,)?) => {
        mod on_istio {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(super::Provider::Istio).await;
                }
            )*
        }
        mod on_gateway_api {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(super::Provider::GatewayApi).await;
                }
            )*
        }
    };
}

on_both_providers!(
    a_healthy_release_is_promoted_and_the_old_version_removed,
    a_crash_looping_version_is_rolled_back_before_any_traffic,
    a_version_with_errors_is_rolled_back_at_the_first_stage_and_the_route_restored_exactly,
    a_counted_check_rolls_back_a_five_percent_error_version_before_the_first_round_would_end,
    a_slow_version_is_rolled_back_on_latency,
    a_version_that_crashes_during_stage_two_is_rolled_back_at_the_crash,
    an_approval_stage_stops_with_its_code_and_approve_finishes_the_release,
    sigterm_mid_stage_rolls_back_with_the_cancelled_code,
    a_run_killed_mid_stage_completes_when_the_same_command_runs_again,
    a_second_run_on_the_same_service_is_locked_out_and_the_first_unaffected,
);

fn stage_started(index: u64) -> impl Fn(&Value) -> bool {
    move |event| event["index"] == index
}

async fn a_healthy_release_is_promoted_and_the_old_version_removed(provider: Provider) {
    let world = World::start_on(provider).await;
    let manifest = world.manifest("v2", "2.0.0", |text| text);
    let finished = world.fledge(&["run"], &manifest).await;
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert_eq!(finished.stdout, "reviews v2: promoted\n");
    assert_eq!(world.weights().await, [("v2".to_owned(), 100)], "the route sends everything to v2");
    assert_eq!(world.routable_versions().await, ["v2"], "the old subset (or Service) is gone");
    assert!(world.deployment("reviews-v1").await.is_none(), "the old Deployment is deleted");
    assert!(world.deployment("reviews-v2").await.is_some());
    let stages: Vec<&Value> = finished.events.iter().filter(|event| event["event"] == "stage-passed").collect();
    assert_eq!(stages.len(), 2);
    assert_eq!(
        world.release_events("reviews-v2").await,
        ["GateHealthy", "StageStarted", "StagePassed", "StageStarted", "StagePassed", "Promoted"],
        "kubectl get events --field-selector involvedObject.name=reviews-v2 lists the release's steps in order"
    );
    let described = world.kubectl(&["describe", "deployment", "reviews-v2", "-n", "bookinfo"], None).await;
    let lines: Vec<&str> = described.lines().filter(|line| line.contains("  fledge  ")).collect();
    assert!(
        lines.len() == 6 && lines[0].contains("GateHealthy") && lines[5].contains("100% of traffic to v2"),
        "kubectl describe deployment shows the release: {described}"
    );

    let again = world.fledge(&["run"], &manifest).await;
    assert_eq!((again.code, again.stdout.as_str()), (0, "reviews v2: promoted\n"), "running it again is a no-op");
    assert!(again.event("already-promoted").is_some());
}

async fn a_crash_looping_version_is_rolled_back_before_any_traffic(provider: Provider) {
    let world = World::start_on(provider).await;
    let before = world.route().await;
    let manifest = world.manifest("v2", "2.0.0-crashloop", |text| text);
    let finished = world.fledge(&["run"], &manifest).await;
    assert_eq!(finished.code, 10, "{finished:#?}");
    assert!(finished.stdout.starts_with("reviews v2: rolled-back-pod-health: crash loop in pod reviews-v2-"));
    assert!(finished.event("stage-started").is_none(), "no traffic was shifted");
    let failed = finished.event("gate-failed").expect("the failure is reported");
    assert_eq!(failed["failure"]["kind"], "crash-loop");
    assert_eq!(world.route().await, before, "the route is untouched");
    assert_eq!(world.routable_versions().await, ["v1"]);
    let deployment = world.deployment("reviews-v2").await.expect("kept, scaled to zero");
    assert_eq!(deployment["spec"]["replicas"], 0);
}

async fn a_version_with_errors_is_rolled_back_at_the_first_stage_and_the_route_restored_exactly(provider: Provider) {
    let world = World::start_on(provider).await;
    let before = world.route_object().await;
    // 10% of requests fail, judged strictly; a 24 s first stage leaves rounds enough for the failures to show (the
    // rollback comes at the first round that counts them).
    let manifest = world.manifest("v2", "2.0.0-errors", |text| {
        judged_strictly(text).replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 24s}")
    });
    let (json, junit, html) = (world.path("report.json"), world.path("report.xml"), world.path("report.html"));
    let (json_arg, junit_arg, html_arg) =
        (json.display().to_string(), junit.display().to_string(), html.display().to_string());
    let arguments = ["run", "--report-json", &json_arg, "--report-junit", &junit_arg, "--report-html", &html_arg];
    let finished = world.fledge(&arguments, &manifest).await;
    assert_eq!(finished.code, 11, "{finished:#?}");
    check_reports(&world, &json, &junit).await;
    html_report::check_rendered(&html, &json).await;
    assert_eq!(world.release_events("reviews-v2").await, ["GateHealthy", "StageStarted", "RollingBack", "RolledBack"]);
    assert!(finished.stdout.contains("success-rate = "), "the failed check is named: {}", finished.stdout);
    let stages: Vec<&Value> = finished.events.iter().filter(|event| event["event"] == "stage-started").collect();
    assert_eq!(stages.len(), 1, "rolled back in the first stage");
    assert_eq!(world.route_object().await, before, "the route is exactly as before");
    assert_eq!(world.routable_versions().await, ["v1"]);
}

/// Seconds between two events' `time`.
fn seconds_between(from: &Value, to: &Value) -> f64 {
    let time = |event: &Value| event["time"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    (time(to) - time(from)).total(jiff::Unit::Second).unwrap()
}

async fn a_counted_check_rolls_back_a_five_percent_error_version_before_the_first_round_would_end(provider: Provider) {
    let world = World::start_on(provider).await;
    let before = world.route_object().await;
    // Today's schedule: a round every 30 s, two failed rounds to roll back. The counted check looks every second. Half
    // of the 50 requests per second go to the new version, so that about 4 s bring the four failures it needs on
    // average (at 20%, one release in about 200 would still be waiting at 30 s).
    let manifest = world.manifest("v2", "2.0.0-errors-5pct", |text| {
        text.replace(
            "  interval: 3s\n  minRequests: 5\n  metrics:\n    - {builtin: success-rate, min: 97, window: 9s}\n    - {builtin: latency-p99, max: 500, window: 9s}\n",
            "  interval: 30s\n  metrics:\n    - {builtin: success-rate, detect: 1%}\n",
        )
        .replace("  - {weight: 20, duration: 6s}\n  - {weight: 50, duration: 6s}\n", "  - {weight: 50, duration: 2m}\n")
    });
    assert!(std::fs::read_to_string(&manifest).unwrap().contains("detect: 1%"), "the manifest was rewritten");
    let finished = world.fledge(&["run"], &manifest).await;
    assert_eq!(finished.code, 11, "{finished:#?}");
    assert!(
        finished.stdout.starts_with("reviews v2: rolled-back-metrics: a counted check's sequential test found the new version worse: success-rate: the new version's bad requests "),
        "{}",
        finished.stdout
    );
    let started = finished.event("stage-started").expect("stage 1 started");
    let rolling_back = finished.event("rolling-back").expect("rolled back");
    let seconds = seconds_between(started, rolling_back);
    assert!(seconds < 30.0, "rolled back {seconds:.1} s into the stage, before the first 30 s round ended");
    let rounds: Vec<&Value> = finished.events.iter().filter(|event| event["event"] == "round").collect();
    assert_eq!(rounds.len(), 1, "only the look that decided: {rounds:#?}");
    assert_eq!(rounds[0]["decision"], serde_json::json!({"roll-back": "regression"}));
    assert_eq!(world.route_object().await, before, "the route is exactly as before");
    assert_eq!(world.routable_versions().await, ["v1"]);
}

async fn a_slow_version_is_rolled_back_on_latency(provider: Provider) {
    let world = World::start_on(provider).await;
    let manifest = world.manifest("v2", "2.0.0-slow", |text| text);
    let finished = world.fledge(&["run"], &manifest).await;
    assert_eq!(finished.code, 11, "{finished:#?}");
    assert!(finished.stdout.contains("latency-p99 = "), "{}", finished.stdout);
    assert_eq!(world.weights().await, [("v1".to_owned(), 100)]);
}

async fn a_version_that_crashes_during_stage_two_is_rolled_back_at_the_crash(provider: Provider) {
    let world = World::start_on(provider).await;
    // The container crashes 20 s (200 simulated seconds) after it starts: in the 30 s second stage.
    let manifest = world.manifest("v2", "2.0.0-crash-after-200s", |text| {
        text.replace("  - {weight: 50, duration: 6s}", "  - {weight: 50, duration: 30s}")
    });
    let finished = world.fledge(&["run"], &manifest).await;
    assert_eq!(finished.code, 10, "{finished:#?}");
    let stage_two = finished.events.iter().position(|event| event["event"] == "stage-started" && event["index"] == 1);
    let failed = finished.events.iter().position(|event| event["event"] == "gate-failed");
    assert!(stage_two.is_some() && failed > stage_two, "the pods failed during stage 2: {:#?}", finished.events);
    let failed = &finished.events[failed.unwrap()];
    assert_eq!(failed["failure"]["kind"], "crash-loop");
    // Rolled back on the watch event, not at the next 3 s check round: no round between the failure and rollback.
    let after_failure: Vec<&str> = finished
        .events
        .iter()
        .skip_while(|event| event["event"] != "gate-failed")
        .filter_map(|event| event["event"].as_str())
        .collect();
    assert_eq!(after_failure[..3], ["gate-failed", "rolling-back", "rolled-back"]);
    assert_eq!(world.weights().await, [("v1".to_owned(), 100)]);
}

async fn an_approval_stage_stops_with_its_code_and_approve_finishes_the_release(provider: Provider) {
    let world = World::start_on(provider).await;
    // Webhooks hear each step; the first post fails and is retried.
    let webhook = Webhook::start().await;
    // The webhook's URL (its path and query are its credential) comes from a file, as a mounted Secret would give it.
    let webhook_file = world.path("webhook-url");
    std::fs::write(&webhook_file, format!("{}\n", webhook.url)).unwrap();
    // Chat webhooks get their native messages: Slack's blocks, a Teams workflow's Adaptive Card.
    let (slack, teams) = (Webhook::start().await, Webhook::start().await);
    let (slack_file, teams_file) = (world.path("slack-url"), world.path("teams-url"));
    std::fs::write(&slack_file, &slack.url).unwrap();
    std::fs::write(&teams_file, &teams.url).unwrap();
    let manifest = world.manifest("v2", "2.0.0", |text| {
        format!(
            "{}notify:\n  - webhookFile: \"{}\"\n    on: [started, stage-passed, awaiting-approval, promoted, rolled-back]\n  - webhookFile: \"{}\"\n    format: slack\n    on: [awaiting-approval, promoted]\n  - webhookFile: \"{}\"\n    format: teams\n    on: [awaiting-approval, promoted]\n",
            text.replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 6s, approval: true}"),
            webhook_file.display(),
            slack_file.display(),
            teams_file.display()
        )
    });
    let waiting = world.fledge(&["run"], &manifest).await;
    assert_eq!(waiting.code, 4, "{waiting:#?}");
    assert_eq!(world.weights().await, [("v1".to_owned(), 80), ("v2".to_owned(), 20)], "traffic holds at 20%");

    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_fledge"))
        .args(["status"])
        .arg(&manifest)
        .arg("--kubeconfig")
        .arg(&world.kubeconfig)
        .output()
        .await
        .unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(status.contains("in flight: awaiting approval after stage 1"), "{status}");

    let approved = world.fledge(&["run", "--approve"], &manifest).await;
    assert_eq!(approved.code, 0, "{approved:#?}");
    assert_eq!(world.weights().await, [("v2".to_owned(), 100)]);
    assert_eq!(
        webhook.events(),
        ["started", "stage-passed", "awaiting-approval", "started", "stage-passed", "promoted"],
        "every subscribed event arrives; the first post failed with 500 and was retried"
    );
    // The first post to each failed and was retried; both messages arrived, whole.
    let slack_message = |title: &str, stage: &str| {
        serde_json::json!({
            "text": title,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Service*\nreviews"},
                    {"type": "mrkdwn", "text": "*Version*\nv2"},
                    {"type": "mrkdwn", "text": "*Namespace*\nbookinfo"},
                    {"type": "mrkdwn", "text": format!("*Stage*\n{stage}")},
                ]},
            ],
        })
    };
    let waiting_title = "fledge: reviews v2 waiting for approval after stage 1/2 (20%)";
    assert_eq!(
        *slack.bodies.lock().unwrap(),
        [
            slack_message(waiting_title, "stage 1/2 (20%)"),
            slack_message("fledge: reviews v2 promoted", "stage 2/2 (50%)")
        ]
    );
    let teams_messages = teams.bodies.lock().unwrap().clone();
    let card = |title: &str, stage: &str, verdict: &str| {
        serde_json::json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true, "text": title},
                        {"type": "FactSet", "facts": [
                            {"title": "Service", "value": "reviews"},
                            {"title": "Version", "value": "v2"},
                            {"title": "Namespace", "value": "bookinfo"},
                            {"title": "Stage", "value": stage},
                            {"title": "Verdict", "value": verdict},
                        ]},
                    ],
                },
            }],
        })
    };
    assert_eq!(
        teams_messages,
        [
            card(waiting_title, "stage 1/2 (20%)", "waiting for approval after stage 1/2 (20%)"),
            card("fledge: reviews v2 promoted", "stage 2/2 (50%)", "promoted")
        ]
    );
    let summary = world.step_summary();
    assert!(!support::SECRETS.iter().any(|secret| summary.contains(secret)), "no secret in the step summary");
}

async fn sigterm_mid_stage_rolls_back_with_the_cancelled_code(provider: Provider) {
    let world = World::start_on(provider).await;
    let before = world.route().await;
    let manifest = world.manifest("v2", "2.0.0", |text| text.replace("duration: 6s}", "duration: 30s}"));
    let mut running = world.spawn(&["run"], &manifest);
    running.wait_for("stage-started", Duration::from_secs(60), stage_started(0)).await;
    running.signal("TERM");
    let finished = running.finish().await;
    assert_eq!(finished.code, 13, "{finished:#?}");
    assert_eq!(world.route().await, before, "traffic restored");
    assert_eq!(world.routable_versions().await, ["v1"]);
}

async fn a_run_killed_mid_stage_completes_when_the_same_command_runs_again(provider: Provider) {
    let world = World::start_on(provider).await;
    let manifest = world.manifest("v2", "2.0.0", |text| text);
    let mut running = world.spawn(&["run"], &manifest);
    running.wait_for("stage-started", Duration::from_secs(60), stage_started(1)).await;
    running.signal("KILL");
    let killed = running.finish().await;
    assert_eq!(killed.code, -1, "killed by a signal");
    assert_eq!(world.weights().await, [("v1".to_owned(), 50), ("v2".to_owned(), 50)], "left mid-release");

    // The lock of the killed run expires 15 s after its last renewal; until then the run is refused as locked.
    let mut attempts = Vec::new();
    let resumed = loop {
        let finished = world.fledge(&["run"], &manifest).await;
        if finished.code != 5 || attempts.len() >= 15 {
            break finished;
        }
        attempts.push(finished.code);
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(resumed.code, 0, "{resumed:#?}");
    let resuming = resumed.event("resuming").expect("it resumed");
    assert_eq!(resuming["phase"]["phase"], "stage");
    assert_eq!(resuming["phase"]["index"], 1);
    assert!(resumed.event("deploying").is_none(), "not deployed again");
    assert_eq!(world.weights().await, [("v2".to_owned(), 100)]);
}

async fn a_second_run_on_the_same_service_is_locked_out_and_the_first_unaffected(provider: Provider) {
    let world = World::start_on(provider).await;
    let first_manifest = world.manifest("v2", "2.0.0", |text| text.replace("duration: 6s}", "duration: 9s}"));
    let second_manifest = world.manifest("v3", "3.0.0", |text| text);
    let mut first = world.spawn(&["run"], &first_manifest);
    first.wait_for("stage-started", Duration::from_secs(60), stage_started(0)).await;

    let same = world.fledge(&["run"], &first_manifest).await;
    assert_eq!(same.code, 5, "the same release, run twice at once: {same:#?}");
    assert!(same.event("locked").is_some());
    let other = world.fledge(&["run"], &second_manifest).await;
    assert_eq!(other.code, 5, "another version while one is in flight: {other:#?}");

    let finished = first.finish().await;
    assert_eq!(finished.code, 0, "{finished:#?}");
    assert!(finished.event("rolling-back").is_none());
    assert_eq!(world.weights().await, [("v2".to_owned(), 100)]);
}

/// The reports of a release rolled back at stage 1 of 2 on metrics: JSON fields, JUnit valid against the schema CI
/// systems read, the step summary.
async fn check_reports(world: &World, json: &std::path::Path, junit: &std::path::Path) {
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(report["schema"], "fledge.report/v1");
    assert_eq!((report["outcome"].as_str(), report["exitCode"].as_u64()), (Some("rolled-back-metrics"), Some(11)));
    assert_eq!(report["previousVersion"], "v1");
    assert_eq!(report["gate"]["healthy"], true);
    assert_eq!(report["stages"][0]["result"], "failed");
    assert_eq!(report["stages"][0]["weight"], 20);
    // The round that rolled back is the stage's last (an earlier one may pass on a handful of lucky requests).
    let rounds = report["stages"][0]["rounds"].as_array().expect("the stage's rounds");
    let check = &rounds.last().expect("at least one round")["checks"][0];
    assert_eq!((check["name"].as_str(), check["verdict"].as_str()), (Some("success-rate"), Some("fail")));
    assert!(check["value"].as_f64().unwrap() < 99.0 && check["query"].as_str().unwrap().contains("reviews-v2"));
    assert!(report["reason"].as_str().unwrap().contains("success-rate = "), "{report}");

    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/fixtures/junit.xsd");
    let validation = tokio::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&schema)
        .arg(junit)
        .output()
        .await
        .expect("xmllint runs (apt-get install -y libxml2-utils; .ci/run does)");
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(validation.status.success(), "{}\n{xml}", String::from_utf8_lossy(&validation.stderr));
    assert!(xml.contains(r#"<testcase classname="fledge.bookinfo.reviews" name="gate""#), "{xml}");
    assert!(xml.contains(r#"name="stage 1 (20%)""#) && xml.contains(r#"<failure message="#), "{xml}");
    assert!(xml.contains(r#"<testcase classname="fledge.bookinfo.reviews" name="stage 2 (50%)" time="0.000">"#));
    assert!(xml.contains(r#"<skipped message="not reached"/>"#), "{xml}");
    assert!(xml.contains(r#"tests="3" failures="1" errors="0" skipped="1""#), "{xml}");

    let summary = world.step_summary();
    assert!(summary.contains("fledge: reviews v2 in bookinfo: `rolled-back-metrics` (exit 11)"), "{summary}");
    assert!(summary.contains("| stage 1 | 20% | failed |"), "{summary}");
    // A mermaid chart per check, the failed round's value on its line and the threshold on another.
    let failed = check["value"].as_f64().unwrap();
    assert!(summary.contains("```mermaid\nxychart-beta\n    title \"success-rate per round (%)\"\n"), "{summary}");
    assert!(summary.contains(&format!("{failed:.2}]\n    line [")), "{summary}");
    assert!(summary.contains("    title \"latency-p99 per round (ms)\"\n"), "{summary}");
}
