//! Every simulated kubelet behaviour, observed the way a client would: pod status, conditions and events, with the
//! kubelet's exact strings.

mod support;

use fledge_sim::resources;
use serde_json::Value;
use std::time::Duration;
use support::{TestCluster, eventually};

/// A namespace, a scenario mapping image tags to behaviours, and one Deployment per test.
fn scenario(behaviours: &[(&str, &str)], injection: bool) -> String {
    let mut text = String::from(if behaviours.is_empty() {
        "timeScale: 20\nbehaviours: []\n"
    } else {
        "timeScale: 20\nbehaviours:\n"
    });
    for (tag, behaviour) in behaviours {
        text.push_str(&format!("  - {{image: 'registry.example.com/app:{tag}', behaviour: '{behaviour}'}}\n"));
    }
    let labels = if injection { ", labels: {istio-injection: enabled}" } else { "" };
    text.push_str(&format!("objects:\n  - {{apiVersion: v1, kind: Namespace, metadata: {{name: test{labels}}}}}\n"));
    text
}

async fn deploy(cluster: &TestCluster, name: &str, tag: &str, extra_spec: &str) {
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: test}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}, version: v1}}}}\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/app:{tag}\n{extra_spec}"
    );
    let path = cluster.file(&format!("{name}.yaml"), &deployment);
    cluster.kubectl_ok(&["apply", "--server-side", "-f", path.to_str().unwrap()]).await;
}

fn pods(cluster: &TestCluster, app: &str) -> Vec<Value> {
    let (pods, _) = cluster.sim.store().list(resources::PODS, Some("test"), |pod| {
        pod.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app)
    });
    pods.iter().map(|pod| (**pod).clone()).collect()
}

fn container<'p>(pod: &'p Value, name: &str) -> &'p Value {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|statuses| statuses.iter().find(|status| status["name"] == name))
        .unwrap_or(&Value::Null)
}

fn events_for(cluster: &TestCluster, pod: &Value) -> Vec<(String, String, String)> {
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    let (events, _) = cluster.sim.store().list(resources::EVENTS, Some("test"), |event| {
        event.pointer("/involvedObject/uid").and_then(Value::as_str) == Some(uid)
    });
    events
        .iter()
        .map(|event| {
            (
                event["type"].as_str().unwrap_or_default().to_owned(),
                event["reason"].as_str().unwrap_or_default().to_owned(),
                event["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn waiting_reason(cluster: &TestCluster, app: &str, reason: &str) -> Value {
    eventually(&format!("{app} waiting with {reason}"), Duration::from_secs(30), || async {
        pods(cluster, app)
            .into_iter()
            .find(|pod| container(pod, "app").pointer("/state/waiting/reason").and_then(Value::as_str) == Some(reason))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn image_pull_failures_alternate_between_err_image_pull_and_back_off() {
    let cluster =
        TestCluster::start(&scenario(&[("missing", "image-pull"), ("private", "image-pull-unauthorized")], false))
            .await;
    deploy(&cluster, "missing", "missing", "").await;
    deploy(&cluster, "private", "private", "").await;
    let pulling = waiting_reason(&cluster, "missing", "ErrImagePull").await;
    assert_eq!(
        container(&pulling, "app")["state"]["waiting"]["message"],
        "rpc error: code = NotFound desc = failed to pull and unpack image \"registry.example.com/app:missing\": failed to resolve reference \"registry.example.com/app:missing\": registry.example.com/app:missing: not found"
    );
    assert_eq!(pulling["status"]["phase"], "Pending");
    let backing_off = waiting_reason(&cluster, "missing", "ImagePullBackOff").await;
    let message = container(&backing_off, "app")["state"]["waiting"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Back-off pulling image \"registry.example.com/app:missing\": ErrImagePull: rpc error"),
        "{message}"
    );
    let events = events_for(&cluster, &backing_off);
    for (kind, reason, text) in [
        ("Normal", "Pulling", "Pulling image \"registry.example.com/app:missing\""),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Normal", "BackOff", "Back-off pulling image \"registry.example.com/app:missing\""),
        ("Warning", "Failed", "Error: ImagePullBackOff"),
    ] {
        assert!(
            events.iter().any(|event| event == &(kind.into(), reason.into(), text.into())),
            "{reason} {text} missing from {events:?}"
        );
    }
    let private = waiting_reason(&cluster, "private", "ErrImagePull").await;
    let message = container(&private, "app")["state"]["waiting"]["message"].as_str().unwrap().to_owned();
    assert!(message.ends_with("pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_images_and_missing_configuration_never_start() {
    let cluster = TestCluster::start(&scenario(&[("forced", "config-error=app-settings")], false)).await;
    deploy(&cluster, "forced", "forced", "").await;
    let forced = waiting_reason(&cluster, "forced", "CreateContainerConfigError").await;
    assert_eq!(container(&forced, "app")["state"]["waiting"]["message"], "configmap \"app-settings\" not found");

    // A real reference to a ConfigMap that does not exist, which then appears: the kubelet retries and starts.
    let env = "          envFrom:\n            - configMapRef: {name: settings}\n";
    deploy(&cluster, "referencing", "1", env).await;
    let missing = waiting_reason(&cluster, "referencing", "CreateContainerConfigError").await;
    assert_eq!(container(&missing, "app")["state"]["waiting"]["message"], "configmap \"settings\" not found");
    // The kubelet records the event after the pod's status: wait for it as a watcher of events would.
    eventually("the kubelet's Failed event", Duration::from_secs(10), || async {
        events_for(&cluster, &missing)
            .iter()
            .any(|(_, reason, message)| reason == "Failed" && message == "Error: configmap \"settings\" not found")
            .then_some(())
    })
    .await;
    let config_map = cluster.file(
        "settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: test}\ndata: {a: b}\n",
    );
    cluster.kubectl_ok(&["apply", "-f", config_map.to_str().unwrap()]).await;
    eventually("the container to start once the ConfigMap exists", Duration::from_secs(30), || async {
        pods(&cluster, "referencing").into_iter().find(|pod| container(pod, "app").pointer("/state/running").is_some())
    })
    .await;

    // An image reference the runtime cannot parse.
    let deployment = "apiVersion: v1\nkind: Pod\nmetadata: {name: shouting, namespace: test, labels: {app: shouting}}\nspec:\n  nodeName: sim-node-1\n  containers:\n    - {name: app, image: 'Registry/App:1'}\n";
    cluster.kubectl_ok(&["apply", "-f", cluster.file("pod.yaml", deployment).to_str().unwrap()]).await;
    let invalid = waiting_reason(&cluster, "shouting", "InvalidImageName").await;
    assert_eq!(
        container(&invalid, "app")["state"]["waiting"]["message"],
        "Failed to apply default image tag \"Registry/App:1\": couldn't parse image name \"Registry/App:1\": invalid reference format"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_memory_kills_show_in_the_last_state() {
    let cluster = TestCluster::start(&scenario(&[("hungry", "oom")], false)).await;
    deploy(&cluster, "hungry", "hungry", "").await;
    let pod = eventually("an OOMKilled restart", Duration::from_secs(30), || async {
        pods(&cluster, "hungry").into_iter().find(|pod| {
            container(pod, "app").pointer("/lastState/terminated/reason").and_then(Value::as_str) == Some("OOMKilled")
        })
    })
    .await;
    assert_eq!(container(&pod, "app")["lastState"]["terminated"]["exitCode"], 137);
    assert!(container(&pod, "app")["restartCount"].as_u64().unwrap() >= 1);
    assert_eq!(pod["status"]["phase"], "Running", "a crash-looping Deployment pod stays Running");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_back_off_grows_and_names_the_pod() {
    let cluster = TestCluster::start(&scenario(&[("crash", "crashloop")], false)).await;
    deploy(&cluster, "crash", "crash", "").await;
    let pod = eventually("a second back-off", Duration::from_secs(30), || async {
        pods(&cluster, "crash").into_iter().find(|pod| {
            container(pod, "app")
                .pointer("/state/waiting/message")
                .and_then(Value::as_str)
                .is_some_and(|message| message.starts_with("back-off 20s"))
        })
    })
    .await;
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap();
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap();
    assert_eq!(
        container(&pod, "app")["state"]["waiting"]["message"],
        format!("back-off 20s restarting failed container=app pod={name}_test({uid})")
    );
    assert_eq!(container(&pod, "app")["restartCount"], 2);
    assert_eq!(container(&pod, "app")["lastState"]["terminated"]["reason"], "Error");
    let ready =
        pod["status"]["conditions"].as_array().unwrap().iter().find(|condition| condition["type"] == "Ready").unwrap();
    assert_eq!(ready["message"], "containers with unready status: [app]");
}

#[tokio::test(flavor = "multi_thread")]
async fn unschedulable_pods_get_the_schedulers_condition_and_event() {
    let cluster = TestCluster::start(&scenario(&[("nowhere", "unschedulable")], false)).await;
    deploy(&cluster, "nowhere", "nowhere", "").await;
    let huge = "          resources: {requests: {cpu: '64', memory: 1Gi}}\n";
    deploy(&cluster, "huge", "1", huge).await;
    for app in ["nowhere", "huge"] {
        let pod = eventually("an Unschedulable condition", Duration::from_secs(20), || async {
            pods(&cluster, app).into_iter().find(|pod| {
                pod["status"]["conditions"]
                    .as_array()
                    .is_some_and(|conditions| conditions.iter().any(|condition| condition["reason"] == "Unschedulable"))
            })
        })
        .await;
        let condition = pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|condition| condition["type"] == "PodScheduled")
            .unwrap();
        let message = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
        assert_eq!((condition["status"].as_str(), condition["message"].as_str()), (Some("False"), Some(message)));
        assert!(
            events_for(&cluster, &pod)
                .iter()
                .any(|(kind, reason, text)| kind == "Warning" && reason == "FailedScheduling" && text == message)
        );
        assert!(pod.pointer("/spec/nodeName").is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecars_init_containers_slow_starts_and_flapping_readiness() {
    let cluster = TestCluster::start(&scenario(&[("slow", "slow-start=60s"), ("flaky", "flapping=20s")], true)).await;
    deploy(&cluster, "slow", "slow", "").await;
    deploy(&cluster, "flaky", "flaky", "").await;
    let started = eventually("the slow pod running but not ready", Duration::from_secs(20), || async {
        pods(&cluster, "slow").into_iter().find(|pod| container(pod, "app").pointer("/state/running").is_some())
    })
    .await;
    assert_eq!(container(&started, "app")["ready"], false);
    let names: Vec<&str> = started["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "istio-proxy"], "sorted by name");
    let init = &started["status"]["initContainerStatuses"][0];
    assert_eq!(
        (init["name"].as_str(), init["state"]["terminated"]["reason"].as_str()),
        (Some("istio-init"), Some("Completed"))
    );
    assert_eq!(started["metadata"]["labels"]["security.istio.io/tlsMode"], "istio");
    eventually("the slow pod ready after its start-up delay", Duration::from_secs(20), || async {
        pods(&cluster, "slow").into_iter().find(|pod| container(pod, "app")["ready"] == true)
    })
    .await;
    let flaky = eventually("an Unhealthy readiness event", Duration::from_secs(30), || async {
        pods(&cluster, "flaky").into_iter().find(|pod| {
            events_for(&cluster, pod).iter().any(|(kind, reason, message)| {
                kind == "Warning"
                    && reason == "Unhealthy"
                    && message == "Readiness probe failed: HTTP probe failed with statuscode: 503"
            })
        })
    })
    .await;
    assert!(flaky.pointer("/metadata/name").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_template_rolls_out_a_new_replica_set() {
    let cluster = TestCluster::start(&scenario(&[], false)).await;
    deploy(&cluster, "rolling", "1", "").await;
    cluster.kubectl_ok(&["rollout", "status", "deploy/rolling", "-n", "test", "--timeout", "30s"]).await;
    cluster.kubectl_ok(&["set", "image", "deploy/rolling", "-n", "test", "app=registry.example.com/app:2"]).await;
    cluster.kubectl_ok(&["rollout", "status", "deploy/rolling", "-n", "test", "--timeout", "30s"]).await;
    let replica_sets = cluster.kubectl_ok(&["get", "rs", "-n", "test", "-l", "app=rolling", "-o", "jsonpath={range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/revision}={.spec.replicas} {end}"]).await;
    let mut revisions: Vec<&str> = replica_sets.split_whitespace().collect();
    revisions.sort_unstable();
    assert_eq!(revisions, ["1=0", "2=1"]);
    let events = cluster
        .kubectl_ok(&[
            "get",
            "events",
            "-n",
            "test",
            "--field-selector",
            "involvedObject.kind=Deployment,reason=ScalingReplicaSet",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
    assert!(events.contains("Scaled down replica set rolling-") && events.contains("from 1 to 0"), "{events}");
}
