//! A kubectl session against fledge-sim of what makes it indistinguishable from a real API server for real clients:
//! kubectl's generator commands (protobuf bodies), the namespace lifecycle, ServiceAccount tokens and RBAC with
//! `auth can-i`, paged lists with expiring continue tokens and exact resourceVersions, and server-side dry runs.

mod support;

use fledge_sim::SimConfig;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use support::{TestCluster, bookinfo, eventually};

fn parse(output: &str) -> Value {
    serde_json::from_str(output).expect("kubectl printed JSON")
}

/// The object as a user wrote it and the server defaulted it: without what every write changes or the server makes
/// up (uid, resourceVersion, creationTimestamp, managedFields, generation).
fn as_stored(mut object: Value) -> Value {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for field in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"] {
            metadata.remove(field);
        }
    }
    object
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn generator_commands_send_protobuf_and_their_objects_are_stored() {
    let cluster = TestCluster::start(&bookinfo()).await;
    // Each of these sends its object as application/vnd.kubernetes.protobuf (kubectl logs its headers at -v=7).
    let created = cluster.kubectl(&["create", "namespace", "shop", "-v=7"]).await;
    let log = String::from_utf8_lossy(&created.stderr);
    assert!(created.status.success(), "{log}");
    assert!(log.contains("Content-Type: application/vnd.kubernetes.protobuf"), "a protobuf body:\n{log}");
    cluster.kubectl_ok(&["create", "configmap", "settings", "-n", "shop", "--from-literal=mode=fast"]).await;
    cluster
        .kubectl_ok(&["create", "secret", "generic", "credentials", "-n", "shop", "--from-literal=password=s3cret"])
        .await;
    cluster.kubectl_ok(&["create", "serviceaccount", "robot", "-n", "shop"]).await;
    cluster
        .kubectl_ok(&[
            "create",
            "deployment",
            "web",
            "-n",
            "shop",
            "--image=registry.example.com/bookinfo/reviews:2.0.0",
            "--replicas=2",
            "--port=9080",
        ])
        .await;
    cluster.kubectl_ok(&["scale", "deployment", "web", "-n", "shop", "--replicas=3"]).await;
    cluster.kubectl_ok(&["run", "shell", "-n", "shop", "--image=registry.example.com/bookinfo/reviews:2.0.0"]).await;

    let get = |kind: &'static str, name: &'static str| {
        let cluster = &cluster;
        async move { as_stored(parse(&cluster.kubectl_ok(&["get", kind, name, "-n", "shop", "-o", "json"]).await)) }
    };
    let namespace = as_stored(parse(&cluster.kubectl_ok(&["get", "namespace", "shop", "-o", "json"]).await));
    assert_eq!(
        namespace,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": "shop", "labels": { "kubernetes.io/metadata.name": "shop" } },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        })
    );
    assert_eq!(
        get("configmap", "settings").await,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": "settings", "namespace": "shop" },
            "data": { "mode": "fast" },
        })
    );
    assert_eq!(
        get("secret", "credentials").await,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": "credentials", "namespace": "shop" },
            "type": "Opaque",
            "data": { "password": "czNjcmV0" },
        })
    );
    assert_eq!(
        get("serviceaccount", "robot").await,
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "robot", "namespace": "shop" } })
    );
    let deployment = get("deployment", "web").await;
    assert_eq!(deployment["spec"]["replicas"], 3, "scaled: {deployment}");
    assert_eq!(deployment["spec"]["selector"], json!({ "matchLabels": { "app": "web" } }));
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{ "containerPort": 9080, "protocol": "TCP" }])
    );
    let pods = eventually("the Deployment's three pods and the shell pod running", Duration::from_secs(30), || async {
        let output = cluster.kubectl_ok(&["get", "pods", "-n", "shop", "-o", "json"]).await;
        let pods = parse(&output)["items"].as_array().cloned().unwrap_or_default();
        let running = pods.iter().filter(|pod| pod["status"]["phase"] == "Running").count();
        (running == 4).then_some(pods)
    })
    .await;
    assert!(pods.iter().any(|pod| pod["metadata"]["name"] == "shell"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_terminates_with_its_objects_and_refuses_new_ones_meanwhile() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let applied = cluster.file("namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
    cluster.kubectl_ok(&["apply", "-f", applied.to_str().unwrap()]).await;
    let listed = cluster.kubectl_ok(&["get", "namespace", "shop"]).await;
    assert!(listed.lines().nth(1).is_some_and(|row| row.split_whitespace().nth(1) == Some("Active")), "{listed}");
    cluster.kubectl_ok(&["create", "configmap", "settings", "-n", "shop", "--from-literal=mode=fast"]).await;
    // A pod held by a finalizer keeps the namespace terminating until the finalizer is removed.
    let held = cluster.file(
        "held.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: held, namespace: shop, finalizers: [example.com/hold]}\n\
         spec: {containers: [{name: app, image: registry.example.com/bookinfo/reviews:2.0.0}]}\n",
    );
    cluster.kubectl_ok(&["apply", "-f", held.to_str().unwrap()]).await;
    cluster.kubectl_ok(&["delete", "namespace", "shop", "--wait=false"]).await;

    let namespace = parse(&cluster.kubectl_ok(&["get", "namespace", "shop", "-o", "json"]).await);
    assert_eq!(namespace["status"]["phase"], "Terminating");
    assert!(namespace["metadata"]["deletionTimestamp"].is_string());
    let refused = cluster.kubectl(&["create", "configmap", "late", "-n", "shop"]).await;
    assert_eq!(
        stderr(&refused),
        "error: failed to create configmap: configmaps \"late\" is forbidden: unable to create new content in \
         namespace shop because it is being terminated\n"
    );
    eventually("the namespace's ConfigMap gone", Duration::from_secs(10), || async {
        let output = cluster.kubectl_ok(&["get", "configmaps", "-n", "shop", "-o", "name"]).await;
        output.is_empty().then_some(())
    })
    .await;

    cluster
        .kubectl_ok(&[
            "patch",
            "pod",
            "held",
            "-n",
            "shop",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ])
        .await;
    eventually("the namespace gone", Duration::from_secs(10), || async {
        let output = cluster.kubectl(&["get", "namespace", "shop"]).await;
        stderr(&output).contains("NotFound").then_some(())
    })
    .await;
}

/// A kubeconfig for ServiceAccount `shop/robot`.
fn robot_kubeconfig(cluster: &TestCluster) -> PathBuf {
    cluster.file("robot-kubeconfig", &cluster.sim.service_account_kubeconfig("shop", "robot"))
}

#[tokio::test(flavor = "multi_thread")]
async fn service_account_tokens_are_held_to_their_rbac_as_kubernetes_holds_them() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let rbac = cluster.file(
        "rbac.yaml",
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [get, list]}
  - {apiGroups: [apps], resources: [deployments/scale], verbs: [patch], resourceNames: [web]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: robot-reads, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: robot, namespace: shop}]
"#,
    );
    cluster.kubectl_ok(&["apply", "-f", rbac.to_str().unwrap()]).await;
    cluster.kubectl_ok(&["create", "configmap", "settings", "-n", "shop", "--from-literal=mode=fast"]).await;
    let robot = robot_kubeconfig(&cluster);
    let can_i = |arguments: &'static [&'static str]| {
        let (cluster, robot) = (&cluster, &robot);
        async move {
            let output = cluster.kubectl_as(robot, &[&["auth", "can-i"], arguments].concat()).await;
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
    };
    assert_eq!(can_i(&["list", "configmaps", "-n", "shop"]).await, "yes");
    assert_eq!(can_i(&["delete", "configmaps", "-n", "shop"]).await, "no");
    assert_eq!(can_i(&["list", "configmaps", "-n", "bookinfo"]).await, "no", "a Role holds in its namespace only");
    assert_eq!(can_i(&["patch", "deployments/scale", "-n", "shop", "--subresource=scale"]).await, "no");
    assert_eq!(can_i(&["patch", "deployments/web", "--subresource=scale", "-n", "shop"]).await, "yes");
    assert_eq!(can_i(&["create", "selfsubjectaccessreviews"]).await, "yes", "as system:basic-user grants");

    let read = cluster
        .kubectl_as(&robot, &["get", "configmap", "settings", "-n", "shop", "-o", "jsonpath={.data.mode}"])
        .await;
    assert_eq!(String::from_utf8_lossy(&read.stdout), "fast", "{}", stderr(&read));
    let deleted = cluster.kubectl_as(&robot, &["delete", "configmap", "settings", "-n", "shop"]).await;
    assert_eq!(
        stderr(&deleted),
        "Error from server (Forbidden): configmaps \"settings\" is forbidden: User \"system:serviceaccount:shop:robot\" \
         cannot delete resource \"configmaps\" in API group \"\" in the namespace \"shop\"\n"
    );
    let nodes = cluster.kubectl_as(&robot, &["get", "nodes"]).await;
    assert_eq!(
        stderr(&nodes),
        "Error from server (Forbidden): nodes is forbidden: User \"system:serviceaccount:shop:robot\" cannot list \
         resource \"nodes\" in API group \"\" at the cluster scope\n"
    );

    // A token whose ServiceAccount is gone is refused (401), as the token authenticator refuses it.
    cluster.kubectl_ok(&["delete", "serviceaccount", "robot", "-n", "shop"]).await;
    let gone = cluster.kubectl_as(&robot, &["get", "configmaps", "-n", "shop"]).await;
    assert!(stderr(&gone).contains("You must be logged in to the server (Unauthorized)"), "{}", stderr(&gone));
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_come_in_pages_from_one_snapshot_and_old_continue_tokens_expire() {
    let config = SimConfig { history_limit: 60, ..SimConfig::default() };
    let cluster = TestCluster::start_with(&bookinfo(), config).await;
    for index in 0..5 {
        cluster.kubectl_ok(&["create", "configmap", &format!("page-{index}"), "-n", "bookinfo"]).await;
    }
    let chunked = cluster.kubectl_ok(&["get", "configmaps", "-n", "bookinfo", "--chunk-size=2", "-o", "name"]).await;
    let names: Vec<&str> = chunked.lines().filter(|line| line.contains("page-")).collect();
    assert_eq!(names, (0..5).map(|index| format!("configmap/page-{index}")).collect::<Vec<_>>());
    // kubectl logs each request at -v=6: one list request per page, each asking for one object.
    let paged = cluster.kubectl(&["get", "pods", "-n", "bookinfo", "--chunk-size=1", "-v=6"]).await;
    let table = String::from_utf8_lossy(&paged.stdout);
    assert_eq!(table.lines().count(), 4, "a header and the three pods of reviews-v1, one page each:\n{table}");
    let log = String::from_utf8_lossy(&paged.stderr);
    let pages: Vec<&str> = log.lines().filter(|line| line.contains("/namespaces/bookinfo/pods?")).collect();
    assert_eq!(pages.len(), 3, "three pages:\n{log}");
    assert!(pages.iter().all(|line| line.contains("limit=1") && line.contains(" 200 OK")), "{pages:#?}");
    assert_eq!(pages.iter().filter(|line| line.contains("continue=")).count(), 2, "{pages:#?}");

    let first = parse(&cluster.kubectl_ok(&["get", "--raw", "/api/v1/namespaces/bookinfo/configmaps?limit=2"]).await);
    let revision = first["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
    let token = first["metadata"]["continue"].as_str().expect("a continue token").to_owned();
    let total = parse(&cluster.kubectl_ok(&["get", "configmaps", "-n", "bookinfo", "-o", "json"]).await)["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(first["metadata"]["remainingItemCount"], total - 2);

    // The rest of the list is the snapshot of the first page: a ConfigMap created since does not show.
    cluster.kubectl_ok(&["create", "configmap", "page-9", "-n", "bookinfo"]).await;
    let rest = parse(
        &cluster
            .kubectl_ok(&[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/bookinfo/configmaps?limit=100&continue={token}"),
            ])
            .await,
    );
    assert_eq!(rest["metadata"]["resourceVersion"], revision.as_str());
    let rest_names: Vec<&str> =
        rest["items"].as_array().unwrap().iter().filter_map(|item| item["metadata"]["name"].as_str()).collect();
    assert_eq!(rest_names.len(), total - 2);
    assert!(!rest_names.contains(&"page-9"));

    // A list at an exact resourceVersion shows the objects as they were.
    cluster.kubectl_ok(&["label", "configmap", "page-0", "-n", "bookinfo", "stage=late"]).await;
    let exact = parse(
        &cluster
            .kubectl_ok(&[
                "get",
                "--raw",
                &format!(
                    "/api/v1/namespaces/bookinfo/configmaps?resourceVersion={revision}&resourceVersionMatch=Exact"
                ),
            ])
            .await,
    );
    let page_0 = exact["items"].as_array().unwrap().iter().find(|item| item["metadata"]["name"] == "page-0").unwrap();
    assert!(page_0["metadata"].get("labels").is_none(), "page-0 as it was at {revision}: {page_0}");

    // Once the history no longer reaches the snapshot (60 changes here), the token has expired.
    for index in 0..70 {
        cluster
            .kubectl_ok(&["label", "configmap", "page-1", "-n", "bookinfo", &format!("round={index}"), "--overwrite"])
            .await;
    }
    let expired = cluster
        .kubectl(&["get", "--raw", &format!("/api/v1/namespaces/bookinfo/configmaps?limit=2&continue={token}")])
        .await;
    assert!(
        stderr(&expired).starts_with("Error from server (Expired): The provided continue parameter is too old"),
        "{}",
        stderr(&expired)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_dry_runs_answer_as_if_stored_and_store_nothing() {
    let cluster = TestCluster::start(&bookinfo()).await;
    let manifest = cluster.file(
        "v2.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: reviews-v2, namespace: bookinfo}\n\
         spec:\n  replicas: 2\n  selector: {matchLabels: {app: reviews, version: v2}}\n\
         \x20 template:\n    metadata: {labels: {app: reviews, version: v2}}\n\
         \x20   spec: {containers: [{name: reviews, image: registry.example.com/bookinfo/reviews:2.0.0}]}\n",
    );
    let path = manifest.to_str().unwrap();
    let applied = cluster.kubectl_ok(&["apply", "--dry-run=server", "-f", path, "-o", "json"]).await;
    let answered = parse(&applied);
    assert_eq!(answered["spec"]["strategy"]["type"], "RollingUpdate", "defaulted as if stored: {answered}");
    assert_eq!(answered["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"], "/dev/termination-log");
    let missing = cluster.kubectl(&["get", "deployment", "reviews-v2", "-n", "bookinfo"]).await;
    assert!(stderr(&missing).contains("NotFound"), "nothing stored: {}", stderr(&missing));

    let created = cluster.kubectl_ok(&["create", "configmap", "dry", "-n", "bookinfo", "--dry-run=server"]).await;
    assert_eq!(created, "configmap/dry created (server dry run)\n");
    let missing = cluster.kubectl(&["get", "configmap", "dry", "-n", "bookinfo"]).await;
    assert!(stderr(&missing).contains("NotFound"));

    let before = cluster.kubectl_ok(&["get", "deployment", "reviews-v1", "-n", "bookinfo", "-o", "json"]).await;
    cluster
        .kubectl_ok(&["scale", "deployment", "reviews-v1", "-n", "bookinfo", "--replicas=5", "--dry-run=server"])
        .await;
    cluster.kubectl_ok(&["delete", "deployment", "reviews-v1", "-n", "bookinfo", "--dry-run=server"]).await;
    let after = cluster.kubectl_ok(&["get", "deployment", "reviews-v1", "-n", "bookinfo", "-o", "json"]).await;
    // The status moves on as the pods start; what a stored scale or delete would change is the spec, the generation
    // and the object's existence.
    let (before, after) = (parse(&before), parse(&after));
    assert_eq!(
        (&after["spec"], &after["metadata"]["generation"], &after["metadata"]["uid"]),
        (&before["spec"], &before["metadata"]["generation"], &before["metadata"]["uid"]),
        "neither the scale nor the delete was stored"
    );

    let invalid = cluster
        .file("invalid.yaml", &std::fs::read_to_string(&manifest).unwrap().replace("replicas: 2", "replicas: -1"));
    let refused = cluster.kubectl(&["apply", "--dry-run=server", "-f", invalid.to_str().unwrap()]).await;
    assert!(
        stderr(&refused).contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "a dry run is validated as a write: {}",
        stderr(&refused)
    );
}
