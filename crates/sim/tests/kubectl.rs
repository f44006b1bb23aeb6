//! The real kubectl against fledge-sim: reads, selectors, watches, server-side apply, every patch type, cascading
//! deletes, rollout status, crash loops, describe and logs.

mod support;

use std::time::Duration;
use support::{TestCluster, bookinfo, eventually};
use tokio::io::AsyncBufReadExt as _;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v2
  namespace: bookinfo
  labels: {app: reviews, version: v2}
spec:
  replicas: 2
  progressDeadlineSeconds: PROGRESS
  selector:
    matchLabels: {app: reviews, version: v2}
  template:
    metadata:
      labels: {app: reviews, version: v2}
    spec:
      containers:
        - name: reviews
          image: IMAGE
"#;

fn deployment(image: &str, progress_deadline_seconds: u32) -> String {
    DEPLOYMENT.replace("IMAGE", image).replace("PROGRESS", &progress_deadline_seconds.to_string())
}

fn rows(output: &str) -> Vec<Vec<String>> {
    output.lines().skip(1).map(|line| line.split_whitespace().map(str::to_owned).collect()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_list_with_label_selectors() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let namespaces = cluster.kubectl_ok(&["get", "namespaces"]).await;
    assert!(namespaces.contains("bookinfo ") && namespaces.contains("Active"), "{namespaces}");
    let pods = eventually("three Running reviews-v1 pods", Duration::from_secs(20), || async {
        let output = cluster.kubectl_ok(&["get", "pods", "-n", "bookinfo", "-l", "app=reviews"]).await;
        let rows = rows(&output);
        (rows.len() == 3 && rows.iter().all(|row| row[1] == "2/2" && row[2] == "Running")).then_some(output)
    })
    .await;
    assert!(pods.starts_with("NAME "), "{pods}");
    let set_based = cluster.kubectl_ok(&["get", "pods", "-n", "bookinfo", "-l", "version in (v1,v9),app"]).await;
    assert_eq!(rows(&set_based).len(), 3);
    let none = cluster.kubectl(&["get", "pods", "-n", "bookinfo", "-l", "version!=v1"]).await;
    assert_eq!(String::from_utf8_lossy(&none.stderr).trim(), "No resources found in bookinfo namespace.");
    let deployment = cluster.kubectl_ok(&["get", "deployment", "reviews-v1", "-n", "bookinfo", "-o", "json"]).await;
    let deployment: serde_json::Value = serde_json::from_str(&deployment).unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    let virtual_services = cluster.kubectl_ok(&["get", "virtualservices", "-n", "bookinfo"]).await;
    assert_eq!(
        rows(&virtual_services)[0][..2],
        ["reviews".to_owned(), "[\"reviews\"]".to_owned()],
        "{virtual_services}"
    );
    let short = cluster.kubectl_ok(&["get", "vs,dr", "-n", "bookinfo", "-o", "name"]).await;
    assert_eq!(short, "virtualservice.networking.istio.io/reviews\ndestinationrule.networking.istio.io/reviews\n");
}

/// The lines `kubectl get -w --output-watch-events` prints (split into fields) up to and including `KIND NAME`;
/// fails when that takes longer than 30 s.
async fn watched_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    kind: &str,
    name: &str,
) -> Vec<Vec<String>> {
    let mut seen = Vec::new();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("kubectl's output") {
            let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            let done = fields.first().is_some_and(|first| first == kind) && fields.get(1).is_some_and(|it| it == name);
            seen.push(fields);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the watch printed no {kind} {name}: {seen:?}");
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_streams_additions_changes_and_deletions() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let mut watch = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--cache-dir")
        .arg(cluster.dir.path().join("watch-cache"))
        .args(["get", "configmaps", "-n", "bookinfo", "-w", "--output-watch-events"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl watch starts");
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().expect("piped")).lines();
    // The watch prints what it lists, then what it is told: once it printed a ConfigMap created now, it watches,
    // and every later change reaches it.
    cluster.kubectl_ok(&["create", "configmap", "ready", "-n", "bookinfo"]).await;
    watched_until(&mut lines, "ADDED", "ready").await;
    cluster
        .kubectl_ok(&[
            "create",
            "-n",
            "bookinfo",
            "-f",
            cluster
                .file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n")
                .to_str()
                .unwrap(),
        ])
        .await;
    cluster
        .kubectl_ok(&[
            "patch",
            "configmap",
            "settings",
            "-n",
            "bookinfo",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ])
        .await;
    cluster.kubectl_ok(&["delete", "configmap", "settings", "-n", "bookinfo"]).await;
    let printed = watched_until(&mut lines, "DELETED", "settings").await;
    watch.start_kill().unwrap();
    let events: Vec<Vec<String>> =
        printed.into_iter().filter(|fields| fields.get(1).is_some_and(|name| name == "settings")).collect();
    let kinds: Vec<&str> = events.iter().map(|fields| fields[0].as_str()).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"], "{events:?}");
    assert_eq!(events[1][2], "2", "the DATA column counts both keys: {events:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_apply_patches_and_cascading_delete() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let manifest = cluster.file("v2.yaml", &deployment("registry.example.com/bookinfo/reviews:2.0.0", 600));
    let applied = cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest.to_str().unwrap()]).await;
    assert_eq!(applied, "deployment.apps/reviews-v2 serverside-applied\n");
    let generation = |json: &str| {
        serde_json::from_str::<serde_json::Value>(json).unwrap()["metadata"]["generation"].as_i64().unwrap()
    };
    let first = cluster.kubectl_ok(&["get", "deploy", "reviews-v2", "-n", "bookinfo", "-o", "json"]).await;
    // Applying the same intent again changes nothing.
    cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest.to_str().unwrap()]).await;
    let second = cluster.kubectl_ok(&["get", "deploy", "reviews-v2", "-n", "bookinfo", "-o", "json"]).await;
    assert_eq!(generation(&first), generation(&second));

    // A field changed by another manager conflicts with the next apply.
    cluster.kubectl_ok(&["scale", "deploy", "reviews-v2", "-n", "bookinfo", "--replicas", "3"]).await;
    let conflict = cluster.kubectl(&["apply", "--server-side", "-f", manifest.to_str().unwrap()]).await;
    assert!(!conflict.status.success());
    let message = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        message.contains("Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"),
        "{message}"
    );

    // Strategic merge patches containers by name; merge and JSON patches work on the same object.
    cluster.kubectl_ok(&["patch", "deploy", "reviews-v2", "-n", "bookinfo", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"logger","image":"registry.example.com/logger:1"}]}}}}"#]).await;
    cluster
        .kubectl_ok(&[
            "patch",
            "deploy",
            "reviews-v2",
            "-n",
            "bookinfo",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"team":"books"}}}"#,
        ])
        .await;
    cluster
        .kubectl_ok(&[
            "patch",
            "deploy",
            "reviews-v2",
            "-n",
            "bookinfo",
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":3},{"op":"replace","path":"/spec/replicas","value":1}]"#,
        ])
        .await;
    let failed_test = cluster
        .kubectl(&[
            "patch",
            "deploy",
            "reviews-v2",
            "-n",
            "bookinfo",
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":7}]"#,
        ])
        .await;
    assert!(!failed_test.status.success());
    let patched: serde_json::Value = serde_json::from_str(
        &cluster.kubectl_ok(&["get", "deploy", "reviews-v2", "-n", "bookinfo", "-o", "json"]).await,
    )
    .unwrap();
    let containers: Vec<&str> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|container| container["name"].as_str().unwrap())
        .collect();
    assert_eq!(containers, ["reviews", "logger"]);
    assert_eq!(patched["metadata"]["labels"]["team"], "books");
    assert_eq!(patched["spec"]["replicas"], 1);

    // Deleting the Deployment takes its ReplicaSets and pods with it.
    eventually("reviews-v2 pods", Duration::from_secs(20), || async {
        let pods = cluster.kubectl_ok(&["get", "pods", "-n", "bookinfo", "-l", "version=v2", "-o", "name"]).await;
        (!pods.is_empty()).then_some(())
    })
    .await;
    cluster.kubectl_ok(&["delete", "deploy", "reviews-v2", "-n", "bookinfo"]).await;
    eventually("reviews-v2 replicasets and pods gone", Duration::from_secs(20), || async {
        let left = cluster.kubectl_ok(&["get", "rs,pods", "-n", "bookinfo", "-l", "version=v2", "-o", "name"]).await;
        left.is_empty().then_some(())
    })
    .await;
    let v1 = cluster.kubectl_ok(&["get", "pods", "-n", "bookinfo", "-l", "version=v1", "-o", "name"]).await;
    assert_eq!(v1.lines().count(), 3, "the other version is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_status_succeeds_for_a_healthy_image() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let manifest = cluster.file("v2.yaml", &deployment("registry.example.com/bookinfo/reviews:2.0.0", 600));
    cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest.to_str().unwrap()]).await;
    let status =
        cluster.kubectl_ok(&["rollout", "status", "deployment/reviews-v2", "-n", "bookinfo", "--timeout", "60s"]).await;
    assert!(status.ends_with("deployment \"reviews-v2\" successfully rolled out\n"), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loops_show_in_get_pods_and_fail_rollout_status_at_the_progress_deadline() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let manifest = cluster.file("v2.yaml", &deployment("registry.example.com/bookinfo/reviews:2.0.0-crashloop", 15));
    cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest.to_str().unwrap()]).await;
    let restarts = |output: &str| -> Vec<u32> {
        rows(output).iter().filter(|row| row[2] == "CrashLoopBackOff").filter_map(|row| row[3].parse().ok()).collect()
    };
    let first = eventually("pods in CrashLoopBackOff", Duration::from_secs(30), || async {
        let output = cluster.kubectl_ok(&["get", "pods", "-n", "bookinfo", "-l", "version=v2"]).await;
        let counts = restarts(&output);
        (counts.len() == 2).then(|| counts.into_iter().max().unwrap())
    })
    .await;
    eventually("RESTARTS rising", Duration::from_secs(30), || async {
        let output = cluster.kubectl_ok(&["get", "pods", "-n", "bookinfo", "-l", "version=v2"]).await;
        restarts(&output).into_iter().max().filter(|count| *count > first).map(|_| ())
    })
    .await;
    let status =
        cluster.kubectl(&["rollout", "status", "deployment/reviews-v2", "-n", "bookinfo", "--timeout", "90s"]).await;
    assert!(!status.status.success());
    assert_eq!(
        String::from_utf8_lossy(&status.stderr).trim(),
        "error: deployment \"reviews-v2\" exceeded its progress deadline"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_pod_shows_state_and_events_and_logs_show_the_crash() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let manifest = cluster.file("v2.yaml", &deployment("registry.example.com/bookinfo/reviews:2.0.0-crashloop", 600));
    cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest.to_str().unwrap()]).await;
    let pod = eventually("a restarted pod", Duration::from_secs(30), || async {
        let output = cluster.kubectl_ok(&["get", "pods", "-n", "bookinfo", "-l", "version=v2"]).await;
        rows(&output)
            .into_iter()
            .find(|row| row[3].parse::<u32>().is_ok_and(|count| count >= 2))
            .map(|row| row[0].clone())
    })
    .await;
    let description = cluster.kubectl_ok(&["describe", "pod", &pod, "-n", "bookinfo"]).await;
    for expected in [
        "/10.0.",
        "Last State:     Terminated",
        "Reason:       Error",
        "Exit Code:    1",
        "default-scheduler  Successfully assigned bookinfo/",
        "Back-off restarting failed container reviews in pod",
        "Started container reviews",
    ] {
        assert!(description.contains(expected), "`{expected}` missing from:\n{description}");
    }
    let previous =
        cluster.kubectl_ok(&["logs", &pod, "-n", "bookinfo", "-c", "reviews", "--previous", "--tail", "1"]).await;
    assert!(previous.ends_with("ERROR fatal: unrecoverable error, exiting with code 1\n"), "{previous}");
    let ambiguous = cluster.kubectl(&["logs", &pod, "-n", "bookinfo", "-c", "nothing"]).await;
    assert!(!ambiguous.status.success());
}
