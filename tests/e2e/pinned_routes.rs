//! Routes pinned to the live version outside the managed route (a header-matched debug route, a tcp route), a route
//! with match conditions before the managed one, and a subset-level TLS policy: each choice of `traffic.pinnedRoutes`
//! leaves whole objects as expected after promotion and after a rollback, and never a route without pods.

use crate::support::{World, judged_strictly};
use serde_json::{Value, json};

/// bookinfo's DestinationRule and VirtualService as teams write them, and traffic that takes the debug route too.
fn rich(text: String) -> String {
    let start = text.find("  - apiVersion: networking.istio.io/v1\n    kind: DestinationRule").unwrap();
    let traffic = "  - {service: reviews, namespace: bookinfo, requestsPerSecond: 50}\n";
    assert!(text.contains(traffic), "the scenario's traffic line moved");
    let head = text[..start].replace(
        traffic,
        "  - service: reviews\n    namespace: bookinfo\n    requestsPerSecond: 50\n    requests:\n      - {weight: 95, path: /reviews/1}\n      - {weight: 5, path: /reviews/1, headers: {x-debug: \"1\"}}\n",
    );
    format!(
        "{head}{}",
        r#"  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews, namespace: bookinfo, labels: {team: books}}
    spec:
      host: reviews.bookinfo.svc.cluster.local
      trafficPolicy:
        connectionPool: {http: {http1MaxPendingRequests: 100}}
      subsets:
        - name: v1
          labels: {version: v1}
          trafficPolicy:
            tls: {mode: ISTIO_MUTUAL}
            loadBalancer: {simple: LEAST_REQUEST}
        - name: legacy
          labels: {version: legacy}
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews, namespace: bookinfo, annotations: {owner: books-team}}
    spec:
      hosts: [reviews]
      http:
        - name: debug
          match: [{headers: {x-debug: {exact: "1"}}}]
          route: [{destination: {host: reviews, subset: v1}}]
          headers: {response: {add: {x-debug-route: "yes"}}}
        - name: archive
          match: [{uri: {prefix: /archive/}}]
          route: [{destination: {host: ratings}}]
          timeout: 2s
        - name: primary
          match: [{uri: {prefix: /}}]
          route:
            - destination: {host: reviews, subset: v1, port: {number: 9080}}
              weight: 100
              headers: {request: {set: {x-route: primary}}}
          retries: {attempts: 2, perTryTimeout: 2s}
          timeout: 10s
      tcp:
        - match: [{port: 9090}]
          route: [{destination: {host: reviews, subset: v1, port: {number: 9090}}}]
"#
    )
}

/// The manifest for the rich world: the managed route is named (two http routes send to reviews).
fn manifest(world: &World, version: &str, tag: &str, pinned: &str) -> std::path::PathBuf {
    world.manifest(version, tag, |text| {
        format!("{text}traffic:\n  istio: {{route: primary}}\n  pinnedRoutes: {pinned}\n")
    })
}

/// The subsets of the DestinationRule, by name.
fn subset_names(rule: &Value) -> Vec<String> {
    rule["spec"]["subsets"].as_array().into_iter().flatten().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
}

/// `object` with `pointer` set to `value`.
fn with(mut object: Value, changes: &[(&str, Value)]) -> Value {
    for (pointer, value) in changes {
        *object.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = value.clone();
    }
    object
}

/// v1's subset, renamed.
fn copy_of_v1(rule: &Value, name: &str) -> Value {
    let mut subset = rule["spec"]["subsets"][0].clone();
    assert_eq!(subset["name"], "v1");
    subset["name"] = json!(name);
    subset["labels"]["version"] = json!(name);
    subset
}

#[tokio::test(flavor = "multi_thread")]
async fn move_points_pinned_routes_at_the_new_version_and_a_rollback_restores_every_object_exactly() {
    let world = World::start_with(3, rich).await;
    let (service, rule) =
        (world.object("virtualservice", "reviews").await, world.object("destinationrule", "reviews").await);
    // Requests the mesh could not deliver while the simulated cluster started (before v1's pods were Ready).
    let undelivered_at_start: Vec<Option<u64>> =
        ["NC", "UH", "NR"].iter().map(|flag| world.undelivered(flag)).collect();

    let plan = world.fledge(&["plan"], &manifest(&world, "v2", "2.0.0", "move")).await;
    assert_eq!(plan.code, 0, "{plan:#?}");
    for line in [
        "  adds      subset v2 in DestinationRule reviews, a copy of subset v1: labels version=v2, trafficPolicy {\"loadBalancer\":{\"simple\":\"LEAST_REQUEST\"},\"tls\":{\"mode\":\"ISTIO_MUTUAL\"}}\n",
        "  pinned    VirtualService reviews http route debug (#0): moved to v2 at promotion (traffic.pinnedRoutes: move)\n",
        "            VirtualService reviews tcp route #0: moved to v2 at promotion (traffic.pinnedRoutes: move)\n",
    ] {
        assert!(plan.stdout.contains(line), "`fledge plan` lacks {line:?}:\n{}", plan.stdout);
    }

    let promoted = world.fledge(&["run"], &manifest(&world, "v2", "2.0.0", "move")).await;
    assert_eq!(promoted.code, 0, "{promoted:#?}");
    let cleaned = promoted.event("cleaned-up").expect("cleaned up");
    assert_eq!(
        cleaned["moved"],
        json!(["VirtualService reviews http route debug (#0)", "VirtualService reviews tcp route #0"])
    );
    let expected_service = with(
        service.clone(),
        &[
            ("/spec/http/0/route/0/destination/subset", json!("v2")),
            ("/spec/http/2/route/0/destination/subset", json!("v2")),
            ("/spec/tcp/0/route/0/destination/subset", json!("v2")),
        ],
    );
    assert_eq!(world.object("virtualservice", "reviews").await, expected_service, "only the subsets fledge owns moved");
    let mut expected_rule = rule.clone();
    expected_rule["spec"]["subsets"] = json!([rule["spec"]["subsets"][1], copy_of_v1(&rule, "v2")]);
    assert_eq!(world.object("destinationrule", "reviews").await, expected_rule, "v1 removed, v2 a copy of v1");
    assert!(world.deployment("reviews-v1").await.is_none());
    assert_eq!(world.dangling_references().await, Vec::<String>::new());

    // A bad v3 from there: the rollback puts both objects back exactly as they were before it.
    let (service, rule) =
        (world.object("virtualservice", "reviews").await, world.object("destinationrule", "reviews").await);
    let rolled_back = world
        .fledge(
            &["run"],
            &world.manifest("v3", "2.0.0-errors", |text| {
                format!("{}traffic:\n  istio: {{route: primary}}\n", judged_strictly(text))
            }),
        )
        .await;
    assert_eq!(rolled_back.code, 11, "{rolled_back:#?}");
    assert_eq!(world.object("virtualservice", "reviews").await, service);
    assert_eq!(world.object("destinationrule", "reviews").await, rule);
    assert_eq!(world.dangling_references().await, Vec::<String>::new());
    assert_eq!(world.rules_seen.check_canary_subsets(), 2, "v2 and v3 were each a copy of the live subset");
    // Debug requests were served all along: none hit a missing subset or a subset without pods.
    for (flag, at_start) in ["NC", "UH", "NR"].iter().zip(undelivered_at_start) {
        if let (Some(now), Some(at_start)) = (world.undelivered(flag), at_start) {
            assert_eq!(now - at_start, 0, "{} requests ended with {flag} during the releases", now - at_start);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_leaves_pinned_routes_on_the_old_version_and_keeps_it_running() {
    let world = World::start_with(3, rich).await;
    let (service, rule) =
        (world.object("virtualservice", "reviews").await, world.object("destinationrule", "reviews").await);
    let plan = world.fledge(&["plan"], &manifest(&world, "v2", "2.0.0", "keep")).await;
    assert!(
        plan.stdout.contains("  pinned    VirtualService reviews http route debug (#0): stays on v1, which is kept for it (traffic.pinnedRoutes: keep)\n")
            && plan.stdout.contains("  promote   100% to v2; after 2s reviews-v1 and subset v1 are kept for the pinned routes\n"),
        "{}",
        plan.stdout
    );

    let promoted = world.fledge(&["run"], &manifest(&world, "v2", "2.0.0", "keep")).await;
    assert_eq!(promoted.code, 0, "{promoted:#?}");
    let expected_service = with(service, &[("/spec/http/2/route/0/destination/subset", json!("v2"))]);
    assert_eq!(world.object("virtualservice", "reviews").await, expected_service, "only the managed route moved");
    let mut expected_rule = rule.clone();
    expected_rule["spec"]["subsets"].as_array_mut().unwrap().push(copy_of_v1(&rule, "v2"));
    assert_eq!(world.object("destinationrule", "reviews").await, expected_rule, "v1 stays for the pinned routes");
    let live = world.deployment("reviews-v1").await.expect("reviews-v1 is kept");
    assert_eq!((live["spec"]["replicas"].as_i64(), live["status"]["readyReplicas"].as_i64()), (Some(3), Some(3)));
    assert_eq!(subset_names(&world.object("destinationrule", "reviews").await), ["v1", "legacy", "v2"]);
    assert_eq!(world.dangling_references().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn refuse_stops_the_release_at_preflight_and_names_the_pinned_routes() {
    let world = World::start_with(3, rich).await;
    let (service, rule) =
        (world.object("virtualservice", "reviews").await, world.object("destinationrule", "reviews").await);
    let refused = world.fledge(&["run"], &manifest(&world, "v2", "2.0.0", "refuse")).await;
    assert_eq!(refused.code, 3, "{refused:#?}");
    let failed = refused.event("preflight-failed").expect("preflight failed");
    assert_eq!(
        failed["error"],
        "failed to check the traffic route: unable to manage traffic of reviews in bookinfo: subset v1 is also routed to outside the managed route, by VirtualService reviews http route debug (#0), VirtualService reviews tcp route #0; traffic.pinnedRoutes is `refuse`: remove those references, or set it to `move` (point them at the new version at promotion) or `keep` (keep the old version for them)"
    );
    assert_eq!(world.object("virtualservice", "reviews").await, service);
    assert_eq!(world.object("destinationrule", "reviews").await, rule);
    assert!(world.deployment("reviews-v2").await.is_none(), "nothing was deployed");
}
