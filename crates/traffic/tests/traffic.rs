//! fledge-traffic against fledge-sim: stage weights applied and read back; a VirtualService rich in everything fledge
//! does not own is identical after a rollback and after a promotion (but for the managed weights and subsets);
//! concurrent writers keep their edits.

use fledge_core::{Release, Weight};
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use fledge_traffic::{TrafficError, TrafficRouter};
use serde_json::{Value, json};

const RICH_VIRTUAL_SERVICE: &str = r#"
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata:
      name: reviews
      namespace: bookinfo
      labels: {team: books, tier: backend}
      annotations: {owner: "books-team@example.com", note: "hand-written"}
    spec:
      hosts: [reviews, reviews.example.com]
      gateways: [mesh, bookinfo/gateway]
      http:
        - name: testers
          match:
            - headers: {x-tester: {exact: "yes"}}
          route:
            - destination: {host: reviews, subset: v1}
          fault:
            delay: {percentage: {value: 10.0}, fixedDelay: 2s}
        - name: primary
          match:
            - uri: {prefix: /}
          route:
            - destination: {host: reviews, subset: v1, port: {number: 9080}}
              weight: 90
              headers: {request: {set: {x-route: primary}}}
            - destination: {host: legacy-reviews.archive.svc.cluster.local}
              weight: 10
          retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
          timeout: 10s
          mirror: {host: reviews-shadow}
          mirrorPercentage: {value: 5.0}
          fault:
            abort: {percentage: {value: 0.1}, httpStatus: 503}
        - name: fallback
          route:
            - destination: {host: ratings}
      tcp:
        - match: [{port: 27017}]
          route:
            - destination: {host: mongo, port: {number: 27017}}
"#;

async fn cluster() -> (Sim, kube::Client) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sim/bookinfo.yaml")).unwrap();
    // Replace bookinfo's simple VirtualService with a rich one; name the route to manage since two route to reviews.
    let start = text.find("  - apiVersion: networking.istio.io/v1\n    kind: VirtualService").unwrap();
    let scenario = format!("{}{RICH_VIRTUAL_SERVICE}", &text[..start]);
    let mut scenario = Scenario::parse(&scenario).unwrap();
    scenario.traffic.clear();
    let sim = Sim::start(SimConfig { scenario, ..SimConfig::default() }).await.unwrap();
    let client = fledge_kube_client::client_for_url(sim.api_url(), &Default::default()).unwrap();
    (sim, client)
}

fn release(route: Option<&str>) -> Release {
    let route = route.map(|route| format!("traffic: {{istio: {{route: {route}}}}}\n")).unwrap_or_default();
    let text = format!(
        "apiVersion: fledge/v1\nkind: Release\nservice: {{name: reviews, namespace: bookinfo, version: v2}}\ndeploy: {{image: 'registry.example.com/reviews:2'}}\n{route}"
    );
    fledge_manifest::parse(&text).unwrap().release
}

/// The object without the bookkeeping a write always changes.
fn without_bookkeeping(mut object: Value) -> Value {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["resourceVersion", "generation", "managedFields"] {
            metadata.remove(field);
        }
    }
    object
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stage_is_applied_and_read_back_and_rollback_restores_the_original_exactly() {
    let (_sim, client) = cluster().await;
    let release = release(Some("primary"));
    let router = TrafficRouter::new(client, &release).await.unwrap();
    let original_service = without_bookkeeping(router.virtual_service().await.unwrap());
    let original_rule = without_bookkeeping(router.destination_rule().await.unwrap());
    let snapshot = router.preflight(None, "v2").await.unwrap();
    assert_eq!((snapshot.live_subset.as_str(), snapshot.share, snapshot.route_index), ("v1", 90, 1));
    router.add_subset(&snapshot, "v2").await.unwrap();
    for (percent, expected) in [(5, (85, 5)), (25, (67, 23)), (50, (45, 45)), (100, (0, 90))] {
        let written = router.set_weight(&snapshot, "v2", Weight::new(percent).unwrap()).await.unwrap();
        assert_eq!(written, expected, "stage {percent}%");
        assert_eq!(router.weights(&snapshot, "v2").await.unwrap(), expected);
        let service = router.virtual_service().await.unwrap();
        assert_eq!(service["spec"]["http"][1]["route"][1]["weight"], 10, "the other host keeps its weight");
    }
    router.restore(&snapshot, "v2").await.unwrap();
    assert_eq!(without_bookkeeping(router.virtual_service().await.unwrap()), original_service);
    assert_eq!(without_bookkeeping(router.destination_rule().await.unwrap()), original_rule);
}

#[tokio::test(flavor = "multi_thread")]
async fn promotion_changes_only_the_managed_destinations_and_subsets() {
    let (_sim, client) = cluster().await;
    let release = release(Some("primary"));
    let router = TrafficRouter::new(client, &release).await.unwrap();
    let original = without_bookkeeping(router.virtual_service().await.unwrap());
    let snapshot = router.preflight(None, "v2").await.unwrap();
    router.add_subset(&snapshot, "v2").await.unwrap();
    router.set_weight(&snapshot, "v2", Weight::new(50).unwrap()).await.unwrap();
    router.set_weight(&snapshot, "v2", Weight::FULL).await.unwrap();
    let retirement = router.retire_live(&snapshot, "v2").await.unwrap();
    assert_eq!(retirement.moved, ["VirtualService reviews http route testers (#0)"], "the pinned route is moved");
    assert!(retirement.kept_for.is_empty());
    let promoted = without_bookkeeping(router.virtual_service().await.unwrap());
    let mut expected = original.clone();
    expected["spec"]["http"][0]["route"][0]["destination"]["subset"] = json!("v2");
    assert_eq!(
        promoted["spec"]["http"][1]["route"],
        json!([
            { "destination": { "host": "legacy-reviews.archive.svc.cluster.local" }, "weight": 10 },
            { "destination": { "host": "reviews", "subset": "v2", "port": { "number": 9080 } }, "weight": 90, "headers": { "request": { "set": { "x-route": "primary" } } } }
        ])
    );
    expected["spec"]["http"][1]["route"] = promoted["spec"]["http"][1]["route"].clone();
    assert_eq!(promoted, expected, "everything but the managed destinations is as it was");
    let rule = router.destination_rule().await.unwrap();
    assert_eq!(
        rule["spec"]["subsets"],
        json!([{ "name": "v2", "labels": { "version": "v2" }, "trafficPolicy": { "loadBalancer": { "simple": "LEAST_REQUEST" } } }]),
        "the new subset is a copy of the live one's, traffic policy and all"
    );
    assert_eq!(rule["spec"]["trafficPolicy"]["connectionPool"]["http"]["http1MaxPendingRequests"], 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_keep_their_edits_and_fledge_retries_its_own() {
    let (sim, client) = cluster().await;
    let release = release(Some("primary"));
    let router = TrafficRouter::new(client.clone(), &release).await.unwrap();
    let snapshot = router.preflight(None, "v2").await.unwrap();
    router.add_subset(&snapshot, "v2").await.unwrap();
    // Besides the real contention below, 30% of writes get a spurious 409, as a busy API server gives.
    sim.faults().set(fledge_sim::faults::FaultSettings { conflict_rate: 0.3, ..Default::default() });
    // Another writer keeps editing the same VirtualService: an annotation, and a route it adds in front, which moves
    // the managed route's index.
    let api = kube::Api::<kube::core::DynamicObject>::namespaced_with(
        client.clone(),
        "bookinfo",
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService"),
            "virtualservices",
        ),
    );
    let writer = tokio::spawn(async move {
        let mut last = 0;
        for index in 1..=60 {
            let patch = json!({ "metadata": { "annotations": { "edited-by": "other", "edit": index.to_string() } } });
            if index == 30 {
                // The other writer retries its own conflicts too, until its route is in.
                loop {
                    let Ok(current) = api.get("reviews").await else { continue };
                    let mut service = serde_json::to_value(current).unwrap();
                    let version = service["metadata"]["resourceVersion"].clone();
                    let routes = service["spec"]["http"].as_array_mut().unwrap();
                    routes
                        .insert(0, json!({ "name": "inserted", "route": [{ "destination": { "host": "details" } }] }));
                    let insert = json!({ "metadata": { "resourceVersion": version }, "spec": { "http": routes } });
                    if api.patch("reviews", &Default::default(), &kube::api::Patch::Merge(&insert)).await.is_ok() {
                        break;
                    }
                }
            }
            if api.patch("reviews", &Default::default(), &kube::api::Patch::Merge(&patch)).await.is_ok() {
                last = index;
            }
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        last
    });
    for round in 0..30 {
        let weight = Weight::new([5, 25, 50, 75][round % 4]).unwrap();
        router.set_weight(&snapshot, "v2", weight).await.unwrap();
    }
    let last_edit = writer.await.unwrap();
    sim.faults().set(Default::default());
    let service = router.virtual_service().await.unwrap();
    assert_eq!(
        service["metadata"]["annotations"]["edit"],
        last_edit.to_string(),
        "the other writer's last edit stands"
    );
    assert_eq!(service["spec"]["http"][0]["name"], "inserted");
    assert_eq!(service["spec"]["http"][2]["name"], "primary");
    assert_eq!(router.weights(&snapshot, "v2").await.unwrap(), (67, 23), "the last round sets 25% of 90");
    assert!(router.retries() > 0, "some writes conflicted and were planned again");
    drop(sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_errors_name_what_to_fix() {
    let (_sim, client) = cluster().await;
    let router = TrafficRouter::new(client.clone(), &release(None)).await.unwrap();
    let error = router.preflight(None, "v2").await.unwrap_err();
    assert!(matches!(error, TrafficError::Route { .. }));
    let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert_eq!(
        chain,
        "unable to manage traffic of reviews in bookinfo: several http routes of VirtualService reviews send traffic to reviews: testers (#0), primary (#1); name the one to manage in traffic.istio.route"
    );
    let text = "apiVersion: fledge/v1\nkind: Release\nservice: {name: reviews, namespace: bookinfo, version: v2}\ndeploy: {image: 'r:2'}\ntraffic: {istio: {destinationRule: nothing}}\n";
    let missing = TrafficRouter::new(client, &fledge_manifest::parse(text).unwrap().release).await.unwrap();
    assert_eq!(
        missing.preflight(None, "v2").await.unwrap_err().to_string(),
        "unable to find DestinationRule bookinfo/nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_shows_no_difference_after_a_rollback_but_metadata_bookkeeping() {
    let (sim, client) = cluster().await;
    let dir = std::env::temp_dir().join(format!("fledge-traffic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig()).unwrap();
    let yaml = || {
        let output = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .args(["get", "virtualservice", "reviews", "-n", "bookinfo", "-o", "yaml"])
            .output()
            .expect("kubectl runs");
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let before = yaml();
    let router = TrafficRouter::new(client, &release(Some("primary"))).await.unwrap();
    let snapshot = router.preflight(None, "v2").await.unwrap();
    router.add_subset(&snapshot, "v2").await.unwrap();
    router.set_weight(&snapshot, "v2", Weight::new(25).unwrap()).await.unwrap();
    router.restore(&snapshot, "v2").await.unwrap();
    let after = yaml();
    let differences: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(old, new)| old != new).collect();
    assert_eq!(before.lines().count(), after.lines().count());
    for (old, new) in &differences {
        let bookkeeping = ["resourceVersion:", "generation:"]
            .iter()
            .any(|field| old.trim_start().starts_with(field) && new.trim_start().starts_with(field));
        assert!(bookkeeping, "unexpected difference:\n- {old}\n+ {new}");
    }
    assert!(!differences.is_empty(), "the resourceVersion did change");
    let _ = std::fs::remove_dir_all(&dir);
}
