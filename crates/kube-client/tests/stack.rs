//! fledge's client stack against fledge-sim's faults, as a real API server and network produce them: a write
//! committed and then answered 500 or its connection dropped, list bodies cut mid-stream, a request never answered,
//! the whole API unreachable for a while; and the write fence, which keeps every write of a run that lost its lock
//! from reaching the server.

use fledge_kube_client::{ConnectOptions, WriteFence, client_for_url};
use fledge_sim::faults::FaultSettings;
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use std::time::{Duration, Instant};

async fn sim() -> Sim {
    let scenario = Scenario::parse(
        "objects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: bookinfo}}\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: base, namespace: bookinfo}, data: {a: '1'}}\n",
    )
    .unwrap();
    Sim::start(SimConfig { scenario, ..SimConfig::default() }).await.unwrap()
}

fn config_maps(sim: &Sim, options: &ConnectOptions) -> Api<ConfigMap> {
    Api::namespaced(client_for_url(sim.api_url(), options).unwrap(), "bookinfo")
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({ "metadata": { "name": name }, "data": { "k": "v" } })).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_answered_500_or_dropped_after_commit_are_retried_to_a_clear_end() {
    let sim = sim().await;
    let options = ConnectOptions { run_id: Some("run-a".into()), ..ConnectOptions::default() };
    let api = config_maps(&sim, &options);
    // Every write lands and then fails: an idempotent merge patch ends as the last answer, the change in place.
    sim.faults().set(FaultSettings { commit_then_error_rate: 1.0, ..FaultSettings::default() });
    let patch = Patch::Merge(serde_json::json!({ "data": { "a": "2" } }));
    let started = Instant::now();
    let error = api.patch("base", &PatchParams::default(), &patch).await.unwrap_err();
    assert!(matches!(&error, kube::Error::Api(status) if status.code == 500), "{error}");
    assert!(started.elapsed() < Duration::from_secs(31), "retried within the 30 s budget: {:?}", started.elapsed());
    sim.faults().set(FaultSettings::default());
    assert_eq!(api.get("base").await.unwrap().data.unwrap()["a"], "2", "the write landed");

    // Half of the writes are committed and then their connection dropped: a create retried after a drop finds
    // the object there (409 AlreadyExists), which the adapters count as done.
    sim.faults().set(FaultSettings { commit_then_drop_rate: 0.5, ..FaultSettings::default() });
    let mut outcomes = Vec::new();
    for index in 0..20 {
        let created = api.create(&PostParams::default(), &config_map(&format!("made-{index}"))).await;
        outcomes.push(match created {
            Ok(_) => "created",
            Err(kube::Error::Api(status)) if status.code == 409 => "already exists",
            Err(error) => panic!("create {index}: {error}"),
        });
    }
    sim.faults().set(FaultSettings::default());
    assert!(outcomes.contains(&"already exists"), "some creates were dropped after commit: {outcomes:?}");
    let names: Vec<String> =
        api.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|c| c.metadata.name).collect();
    assert_eq!(names.iter().filter(|name| name.starts_with("made-")).count(), 20, "every create landed once");
    let writes = sim.writes();
    assert!(writes.iter().all(|write| write.user_agent == "fledge/0.1.0 (run run-a)"), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_list_bodies_unanswered_requests_and_an_outage_are_ridden_out() {
    let sim = sim().await;
    let api = config_maps(&sim, &ConnectOptions::default());
    sim.faults().set(FaultSettings { cut_body_rate: 0.5, ..FaultSettings::default() });
    for _ in 0..20 {
        let list = api.list(&ListParams::default()).await.expect("a cut body is read again");
        assert_eq!(list.items.len(), 1);
    }
    assert!(sim.faults().injected().cut_bodies > 0, "bodies were cut");

    sim.faults().set(FaultSettings { no_answer_rate: 1.0, ..FaultSettings::default() });
    let waiting = tokio::spawn({
        let api = api.clone();
        async move {
            let started = Instant::now();
            let answer = api.get("base").await;
            (answer.map(|_| ()), started.elapsed())
        }
    });
    // Once the first attempt is left unanswered, the server answers again; that attempt waits its 10 s deadline.
    tokio::time::timeout(Duration::from_secs(5), async {
        while sim.faults().injected().no_answers == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the request reached the server");
    sim.faults().set(FaultSettings::default());
    let (answer, took) = waiting.await.unwrap();
    answer.expect("answered after the unanswered attempt");
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(20),
        "one attempt timed out, not two: {took:?}"
    );

    let outage = sim.api_outage(Duration::from_secs(4)).await;
    let started = Instant::now();
    let answer = api.get("base").await.map(|_| ());
    let took = started.elapsed();
    outage.ended().await;
    answer.expect("answered once the API listens again");
    assert!(took >= Duration::from_secs(3), "it waited out the outage: {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_fence_keeps_every_write_from_the_server_but_not_reads() {
    let sim = sim().await;
    let fence = WriteFence::new();
    let options = ConnectOptions { run_id: Some("run-b".into()), fence: fence.clone(), ..ConnectOptions::default() };
    let api = config_maps(&sim, &options);
    fence.hold_until(tokio::time::Instant::now() + Duration::from_secs(30));
    api.create(&PostParams::default(), &config_map("before")).await.unwrap();
    fence.lose("it was taken over by run c");
    let error = api.create(&PostParams::default(), &config_map("after")).await.unwrap_err();
    assert_eq!(
        format!("{error}"),
        "ServiceError: refused to write: the release lock is lost (it was taken over by run c)"
    );
    assert!(api.get_opt("before").await.unwrap().is_some(), "reads still work");
    let paths: Vec<String> = sim.writes().into_iter().map(|write| write.path).collect();
    assert_eq!(paths, ["/api/v1/namespaces/bookinfo/configmaps"], "only the write before the loss reached the server");
}
