//! `fledge wait`: a pipeline step that did not start a release follows it to its end and exits with the code of the
//! process that ran it: promoted, rolled back, stopped for approval; and gives up at `--timeout`.

use crate::support::{Provider, World};
use serde_json::Value;

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
        text.replace("  interval: 3s\n", "  interval: 3s\n  failureLimit: 0\n")
            .replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 12s}")
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
