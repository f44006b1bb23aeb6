//! kube::Client and kube_runtime watchers against fledge-sim: no object is lost through cut watch streams and a
//! forced 410 Gone, and the fault layer answers with real error responses.

mod support;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{TestCluster, eventually};

const NAMESPACE_SCENARIO: &str = "objects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: watched}}\n";

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({ "metadata": { "name": name }, "data": { "index": name } })).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reflector_keeps_every_object_through_cut_streams_and_410() {
    let cluster = TestCluster::start(NAMESPACE_SCENARIO).await;
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "watched");
    let (reader, writer) = reflector::store();
    let stream =
        reflector(writer, watcher(api.clone(), watcher::Config::default())).default_backoff().applied_objects();
    let consumer = tokio::spawn(stream.for_each(|_| async {}));

    let mut expected = BTreeSet::new();
    for index in 0..60 {
        let name = format!("settings-{index:02}");
        api.create(&PostParams::default(), &config_map(&name)).await.unwrap();
        expected.insert(name);
        if index % 7 == 6 {
            let gone = format!("settings-{:02}", index - 3);
            api.delete(&gone, &DeleteParams::default()).await.unwrap();
            expected.remove(&gone);
        }
        if index % 10 == 9 {
            // Cut every open watch; the reflector resumes from its last resourceVersion.
            cluster.sim.faults().cut_watches();
        }
        if index % 20 == 19 {
            // Drop the history too: the resume gets 410 Gone and the watcher must list again.
            cluster.sim.store().compact();
            cluster.sim.faults().cut_watches();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually("the reflector to hold exactly the live config maps", Duration::from_secs(20), || async {
        let held: BTreeSet<String> = reader.state().iter().filter_map(|map| map.metadata.name.clone()).collect();
        (held == expected).then_some(())
    })
    .await;
    consumer.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_resumed_from_a_compacted_version_gets_410_gone() {
    let cluster = TestCluster::start(NAMESPACE_SCENARIO).await;
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "watched");
    let created = api.create(&PostParams::default(), &config_map("old")).await.unwrap();
    let version = created.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &config_map("new")).await.unwrap();
    cluster.sim.store().compact();
    let mut events = api.watch(&kube::api::WatchParams::default(), &version).await.unwrap().boxed();
    let first = events.next().await.expect("an event").expect("a decoded event");
    match first {
        kube::api::WatchEvent::Error(error) => {
            assert_eq!(error.code, 410);
            assert_eq!(error.reason, "Expired");
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_resume_from_a_version_in_the_history_without_gaps() {
    let cluster = TestCluster::start(NAMESPACE_SCENARIO).await;
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "watched");
    let first = api.create(&PostParams::default(), &config_map("a")).await.unwrap();
    let version = first.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &config_map("b")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let params = kube::api::WatchParams::default().timeout(2);
    let events: Vec<String> = api
        .watch(&params, &version)
        .await
        .unwrap()
        .filter_map(|event| async move {
            match event.ok()? {
                kube::api::WatchEvent::Added(map) => Some(format!("ADDED {}", map.metadata.name.unwrap())),
                kube::api::WatchEvent::Deleted(map) => Some(format!("DELETED {}", map.metadata.name.unwrap())),
                kube::api::WatchEvent::Modified(map) => Some(format!("MODIFIED {}", map.metadata.name.unwrap())),
                _ => None,
            }
        })
        .collect()
        .await;
    assert_eq!(events, ["ADDED b", "DELETED a"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_are_real_error_responses_and_can_be_changed_at_run_time() {
    let cluster = TestCluster::start(NAMESPACE_SCENARIO).await;
    let http = |method: &str, path: &str, body: &str| {
        let url = format!("{}{path}", cluster.sim.api_url());
        let method = method.to_owned();
        let body = body.to_owned();
        async move {
            tokio::process::Command::new("curl")
                .args(["-s", "-i", "-X", &method, "-H", "Content-Type: application/json", "-d", &body, &url])
                .output()
                .await
                .expect("curl runs")
        }
    };
    let set = http("PUT", "/sim/faults", r#"{"throttleRate": 1.0, "retryAfterSeconds": 7}"#).await;
    assert!(String::from_utf8_lossy(&set.stdout).contains("\"throttleRate\":1.0"));
    let throttled = http("GET", "/api/v1/namespaces/watched/configmaps", "").await;
    let response = String::from_utf8_lossy(&throttled.stdout).to_lowercase();
    assert!(response.starts_with("http/1.1 429"), "{response}");
    assert!(response.contains("retry-after: 7"), "{response}");
    assert!(response.contains("\"reason\":\"toomanyrequests\""), "{response}");

    http("PUT", "/sim/faults", r#"{"errorRate": 0.5}"#).await;
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "watched");
    let mut failures = 0;
    for _ in 0..100 {
        if let Err(kube::Error::Api(status)) = api.list(&Default::default()).await {
            assert_eq!(status.code, 500);
            failures += 1;
        }
    }
    assert!((25..=75).contains(&failures), "about half of 100 requests should fail, {failures} did");

    http("PUT", "/sim/faults", "{}").await;
    assert!(api.list(&Default::default()).await.is_ok());
    let unknown = http("PUT", "/sim/faults", r#"{"nonsense": 1}"#).await;
    assert!(String::from_utf8_lossy(&unknown.stdout).starts_with("HTTP/1.1 400"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_patch_naming_a_stale_resource_version_conflicts_and_injected_conflicts_spare_unguarded_writes() {
    let cluster = TestCluster::start(NAMESPACE_SCENARIO).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, "watched");
    let config_map: ConfigMap =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": "c" }, "data": { "a": "1" } })).unwrap();
    let created = api.create(&PostParams::default(), &config_map).await.unwrap();
    let stale = created.metadata.resource_version.clone().unwrap();
    let merge = |value: &str, version: Option<&str>| {
        let mut patch = serde_json::json!({ "data": { "a": value } });
        if let Some(version) = version {
            patch["metadata"] = serde_json::json!({ "resourceVersion": version });
        }
        patch
    };
    let params = kube::api::PatchParams::default();
    api.patch("c", &params, &kube::api::Patch::Merge(&merge("2", Some(&stale)))).await.unwrap();
    let error = api.patch("c", &params, &kube::api::Patch::Merge(&merge("3", Some(&stale)))).await.unwrap_err();
    assert!(matches!(&error, kube::Error::Api(status) if status.code == 409), "{error:?}");
    assert_eq!(api.get("c").await.unwrap().data.unwrap()["a"], "2", "the stale write was refused");

    // Every guarded write conflicts; unguarded ones never do (a real API server retries those itself).
    cluster.sim.faults().set(fledge_sim::faults::FaultSettings { conflict_rate: 1.0, ..Default::default() });
    for value in ["4", "5", "6"] {
        api.patch("c", &params, &kube::api::Patch::Merge(&merge(value, None))).await.unwrap();
    }
    let current = api.get("c").await.unwrap().metadata.resource_version.unwrap();
    let error = api.patch("c", &params, &kube::api::Patch::Merge(&merge("7", Some(&current)))).await.unwrap_err();
    assert!(matches!(&error, kube::Error::Api(status) if status.code == 409), "{error:?}");
}
