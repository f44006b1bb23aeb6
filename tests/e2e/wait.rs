//! `fledge wait`: a pipeline step that did not start a release follows it to its end and exits with the code of the
//! process that ran it: promoted, rolled back, stopped for approval, a rollback that failed; says when no process
//! runs the release any more; and gives up at `--timeout`.

use crate::permissions::{apply_istio_rbac, istio_rule_for};
use crate::support::{Provider, World, judged_strictly};
use serde_json::Value;
use std::time::Duration;

/// The `stage-started` indexes among `events`, in order.
fn stages_started(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter(|event| event["event"] == "stage-started")
        .filter_map(|event| event["index"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn fledge_wait_exits_with_the_code_of_the_release_another_process_runs() {
    let world = World::start_on(Provider::Istio).await;

    // Started before the release: it waits for the run record, then follows it.
    let healthy = world.manifest("v2", "2.0.0", |text| text);
    let waiting = world.spawn(&["wait", "--timeout", "5m"], &healthy);
    let run = world.fledge(&["run"], &healthy).await;
    let waited = waiting.finish().await;
    assert_eq!((run.code, waited.code), (0, 0), "{waited:#?}");
    assert_eq!(waited.stdout, run.stdout, "the same result line");
    assert_eq!(stages_started(&waited.events), [0, 1], "the progress of both stages: {:#?}", waited.events);
    assert!(waited.events.iter().any(|event| event["event"] == "promoted"), "{:#?}", waited.events);

    // Rolled back on its metrics.
    let errors = world.manifest("v3", "3.0.0-errors", |text| {
        judged_strictly(text).replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 24s}")
    });
    let waiting = world.spawn(&["wait"], &errors);
    let run = world.fledge(&["run"], &errors).await;
    let waited = waiting.finish().await;
    assert_eq!((run.code, waited.code), (11, 11), "{waited:#?}");
    assert_eq!(waited.stdout, run.stdout, "the same result line, with the reason");
    assert!(waited.events.iter().any(|event| event["event"] == "rolled-back"), "{:#?}", waited.events);

    // Stopped for approval: the release waits, and so does its verdict.
    let approval = world.manifest("v4", "4.0.0", |text| {
        text.replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 6s, approval: true}")
    });
    let waiting = world.spawn(&["wait"], &approval);
    let run = world.fledge(&["run"], &approval).await;
    let waited = waiting.finish().await;
    assert_eq!((run.code, waited.code), (4, 4), "{waited:#?}");
    let approved = world.fledge(&["run", "--approve"], &approval).await;
    assert_eq!(approved.code, 0, "{approved:#?}");

    // Nothing runs this one: it gives up with the code of a release still in flight elsewhere.
    let never = world.manifest("v5", "5.0.0", |text| text);
    let waited = world.fledge(&["wait", "--timeout", "2s"], &never).await;
    assert_eq!(waited.code, 5, "{waited:#?}");
    assert_eq!(
        waited.stdout,
        "reviews v5: still in flight after 2s (--timeout); another process runs it: `fledge status` shows where it is\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fledge_wait_exits_20_with_the_run_whose_rollback_the_api_server_refused() {
    let world = World::start_on(Provider::Istio).await;
    let before = world.route_object().await;
    apply_istio_rbac(&world).await;
    let kubeconfig = world.service_account_kubeconfig("bookinfo", "fledge").await;
    let manifest = world.manifest("v2", "2.0.0", |text| {
        text.replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 5m}")
    });
    let mut running = world.spawn_as(&kubeconfig, &["run"], &manifest);
    running.try_wait_for("stage-started", Duration::from_secs(90), |_| true).await.expect("stage 1 started");
    let waiting = world.spawn(&["wait", "--timeout", "5m"], &manifest);

    // The ServiceAccount may no longer change VirtualServices: the rollback SIGTERM asks for cannot restore the route.
    let rule = format!(r#"[{{"op": "remove", "path": "/rules/{}"}}]"#, istio_rule_for("virtualservices"));
    world.kubectl(&["patch", "role", "fledge", "-n", "bookinfo", "--type", "json", "-p", &rule], None).await;
    running.signal("TERM");
    let run = running.finish().await;
    let waited = waiting.finish().await;
    assert_eq!((run.code, waited.code), (20, 20), "{waited:#?}");
    assert!(run.stdout.starts_with("reviews v2: rollback-failed: failed to restore the route: "), "{}", run.stdout);
    assert_eq!(waited.stdout, run.stdout, "the same result line, with the error");
    assert!(waited.events.iter().any(|event| event["event"] == "rollback-failed"), "{:#?}", waited.events);
    assert_eq!(world.weights().await, [("v1".to_owned(), 80), ("v2".to_owned(), 20)], "left as the run left it");
    let status = world.fledge(&["status"], &manifest).await;
    assert!(status.stdout.contains("in flight: rolling back"), "{}", status.stdout);
    assert!(
        status.stdout.contains("\n  rollback  could not finish: failed to restore the route: "),
        "{}",
        status.stdout
    );

    // A person gives the permission back and retries the rollback.
    apply_istio_rbac(&world).await;
    let aborted = world.fledge(&["abort"], &manifest).await;
    assert_eq!(aborted.code, 13, "{aborted:#?}");
    assert_eq!(world.route_object().await, before, "the route is exactly as before");
    assert_eq!(world.routable_versions().await, ["v1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn fledge_wait_says_when_no_process_runs_the_release_and_follows_the_run_that_resumes_it() {
    let world = World::start_on(Provider::Istio).await;
    let manifest = world.manifest("v2", "2.0.0", |text| {
        text.replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 1m}")
    });
    let mut killed = world.spawn(&["run"], &manifest);
    killed.try_wait_for("stage-started", Duration::from_secs(90), |_| true).await.expect("stage 1 started");
    killed.signal("KILL");
    killed.finish().await;

    // The killed run's lease expires 15 s after its last renewal; then nobody runs the release.
    let waited = world.fledge(&["wait", "--timeout", "25s"], &manifest).await;
    assert_eq!(waited.code, 5, "{waited:#?}");
    assert_eq!(
        waited.stdout,
        "reviews v2: still in flight after 25s (--timeout), and no process runs it: `fledge run` resumes it, `fledge abort` rolls it back\n"
    );
    let warnings: Vec<&str> = waited
        .events
        .iter()
        .filter(|event| event["event"] == "warning")
        .filter_map(|event| event["message"].as_str())
        .collect();
    assert_eq!(
        warnings,
        [
            "no process runs the release now (its lock is free): it stays in stage 1 until `fledge run` resumes it or `fledge abort` rolls it back"
        ],
        "said once"
    );

    let waiting = world.spawn(&["wait", "--timeout", "5m"], &manifest);
    let resumed = world.fledge(&["run"], &manifest).await;
    let waited = waiting.finish().await;
    assert_eq!((resumed.code, waited.code), (0, 0), "{waited:#?}");
    assert_eq!(waited.stdout, resumed.stdout);
}
