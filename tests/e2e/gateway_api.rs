//! Releases through the Gateway API: an HTTPRoute written the way teams write them (several rules, matches, a
//! RequestHeaderModifier filter, timeouts, two parents: the Service for the mesh and a Gateway), one Service per
//! version. After promotion only the managed rule's backendRefs differ; after a rollback the route is exactly as
//! found and the canary Service is gone; a backend a parent refuses stops the release with the parent's words.

use crate::support::{World, judged_strictly};
use serde_json::{Value, json};
use std::time::Duration;

/// bookinfo on the Gateway API, with a rich HTTPRoute and a `ratings` Service for its archive rule.
fn rich(text: String) -> String {
    let start = text
        .find("  - apiVersion: gateway.networking.k8s.io/v1\n    kind: HTTPRoute")
        .expect("the scenario has an HTTPRoute");
    format!(
        "{}{}",
        &text[..start],
        r#"  - apiVersion: v1
    kind: Service
    metadata: {name: ratings, namespace: bookinfo, labels: {app: ratings}}
    spec:
      selector: {app: ratings}
      ports: [{name: http, port: 9080}]
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: reviews, namespace: bookinfo, labels: {team: books}, annotations: {owner: books-team}}
    spec:
      parentRefs:
        - {group: "", kind: Service, name: reviews, port: 9080}
        - {name: bookinfo-gateway}
      rules:
        - name: archive
          matches: [{path: {type: PathPrefix, value: /archive/}}]
          backendRefs: [{name: ratings, port: 9080}]
          timeouts: {request: 2s}
        - name: primary
          matches:
            - path: {type: PathPrefix, value: /}
            - headers: [{name: x-team, value: books}]
          filters:
            - type: RequestHeaderModifier
              requestHeaderModifier:
                set: [{name: x-route, value: primary}]
          backendRefs:
            - {name: reviews-v1, port: 9080}
          timeouts: {request: 10s, backendRequest: 4s}
"#
    )
}

async fn service(world: &World, name: &str) -> Option<Value> {
    let list = world.kubectl_json(&["get", "services", "-n", "bookinfo"]).await;
    list["items"].as_array().into_iter().flatten().find(|item| item["metadata"]["name"] == name).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_managed_rule_changes_at_promotion_and_a_rollback_restores_the_route_exactly() {
    let world = World::start_gateway_api(rich).await;
    let original = world.route_object().await;
    let undelivered_at_start: Vec<Option<u64>> =
        ["NC", "UH", "NR"].iter().map(|flag| world.undelivered(flag)).collect();

    let plan = world.fledge(&["plan"], &world.manifest("v2", "2.0.0", |text| text)).await;
    assert_eq!(plan.code, 0, "{plan:#?}");
    for line in [
        "  live      Deployment reviews-v1 (3 replicas); HTTPRoute bookinfo/reviews, rule primary (#1)\n",
        "  adds      Service reviews-v2, a copy of Service reviews-v1: ports http 9080→9080, selector app=reviews, version=v2\n",
        "            backendRef reviews-v2 in rule primary (#1) at weight 0, a copy of the backendRef of reviews-v1 (port, filters)\n",
        "  rollback  the rule's backendRefs restored as they are now, Service reviews-v2 deleted; reviews-v2: scale-to-zero\n",
    ] {
        assert!(plan.stdout.contains(line), "`fledge plan` lacks {line:?}:\n{}", plan.stdout);
    }

    let promoted = world.fledge(&["run"], &world.manifest("v2", "2.0.0", |text| text)).await;
    assert_eq!(promoted.code, 0, "{promoted:#?}");
    let mut expected = original.clone();
    expected["spec"]["rules"][1]["backendRefs"][0]["name"] = json!("reviews-v2");
    assert_eq!(world.route_object().await, expected, "only the managed rule's backendRefs differ");
    assert!(service(&world, "reviews-v1").await.is_none(), "the old version's Service is removed with it");
    let canary = service(&world, "reviews-v2").await.expect("the new version's Service");
    assert_eq!(canary["spec"]["selector"], json!({"app": "reviews", "version": "v2"}));
    assert_eq!(canary["spec"]["ports"], json!([{"name": "http", "port": 9080, "protocol": "TCP", "targetPort": 9080}]));
    assert!(world.deployment("reviews-v1").await.is_none());
    assert_eq!(world.dangling_backends().await, Vec::<String>::new());

    // A bad v3 from there: the rollback puts the route back exactly, and the canary Service is gone.
    let before = world.route_object().await;
    let services_before = world.service_names().await;
    let rolled_back = world.fledge(&["run"], &world.manifest("v3", "2.0.0-errors", judged_strictly)).await;
    assert_eq!(rolled_back.code, 11, "{rolled_back:#?}");
    assert_eq!(world.route_object().await, before, "the route is byte-identical to the one found");
    assert_eq!(world.service_names().await, services_before, "the canary Service reviews-v3 is gone");
    assert_eq!(world.dangling_backends().await, Vec::<String>::new());
    for (flag, at_start) in ["NC", "UH", "NR"].iter().zip(undelivered_at_start) {
        if let (Some(now), Some(at_start)) = (world.undelivered(flag), at_start) {
            assert_eq!(now - at_start, 0, "{} requests ended with {flag} during the releases", now - at_start);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_a_parent_refuses_stops_the_release_with_the_parents_message_and_traffic_restored() {
    let world = World::start_gateway_api(|text| text).await;
    let original = world.route_object().await;
    let store = world.sim().expect("a controller that prunes Services is simulated on fledge-sim").store().clone();
    // A GitOps controller pruning what is not in git: it deletes the canary Service as soon as it appears, so the
    // parents see a backendRef to a Service that does not exist.
    let pruner = tokio::spawn(async move {
        loop {
            if store.get(fledge_sim::resources::SERVICES, "bookinfo", "reviews-v2").is_some() {
                store.remove(fledge_sim::resources::SERVICES, "bookinfo", "reviews-v2");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let refused = world.fledge(&["run"], &world.manifest("v2", "2.0.0", |text| text)).await;
    pruner.abort();
    assert_eq!(refused.code, 14, "{refused:#?}");
    assert!(refused.event("rolled-back").is_some(), "rolled back: {refused:#?}");
    let rolling_back = refused.event("rolling-back").expect("rolling back");
    let detail = rolling_back["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(
            "Service reviews (port 9080) reports ResolvedRefs=False (BackendNotFound): backend(reviews-v2.bookinfo.svc.cluster.local) not found"
        ),
        "the parent's words are in the verdict: {rolling_back:#}"
    );
    assert_eq!(world.route_object().await, original, "traffic restored: the route as found");
    assert!(service(&world, "reviews-v2").await.is_none());
    assert_eq!(world.dangling_backends().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_looping_version_is_rolled_back_before_its_backend_takes_traffic() {
    let world = World::start_gateway_api(|text| text).await;
    let original = world.route_object().await;
    let finished = world.fledge(&["run"], &world.manifest("v2", "2.0.0-crashloop", |text| text)).await;
    assert_eq!(finished.code, 10, "{finished:#?}");
    assert!(finished.event("stage-started").is_none(), "no traffic was shifted");
    assert_eq!(world.route_object().await, original);
    assert!(service(&world, "reviews-v2").await.is_none(), "the canary Service is removed by the rollback");
    let deployment = world.deployment("reviews-v2").await.expect("kept, scaled to zero");
    assert_eq!(deployment["spec"]["replicas"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_routed_by_an_http_route_and_a_virtual_service_is_refused_at_preflight() {
    let world = World::start_gateway_api(|text| {
        format!(
            "{text}  - apiVersion: networking.istio.io/v1\n    kind: VirtualService\n    metadata: {{name: reviews-legacy, namespace: bookinfo}}\n    spec:\n      hosts: [reviews]\n      http: [{{route: [{{destination: {{host: reviews}}}}]}}]\n"
        )
    })
    .await;
    let refused = world.fledge(&["run"], &world.manifest("v2", "2.0.0", |text| text)).await;
    assert_eq!(refused.code, 3, "{refused:#?}");
    let failed = refused.event("preflight-failed").expect("preflight failed");
    assert_eq!(
        failed["error"],
        "failed to check the traffic route: reviews in bookinfo is routed by HTTPRoute reviews and by VirtualService reviews-legacy: Istio leaves the mix undefined; route the service with one of them"
    );
    assert!(world.deployment("reviews-v2").await.is_none(), "nothing was deployed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_istio_provider_refuses_a_service_an_http_route_routes_too() {
    let world = World::start_with(3, |text| {
        format!(
            "{text}  - apiVersion: gateway.networking.k8s.io/v1\n    kind: HTTPRoute\n    metadata: {{name: reviews-ingress, namespace: bookinfo}}\n    spec:\n      parentRefs: [{{name: bookinfo-gateway}}]\n      rules: [{{backendRefs: [{{name: reviews, port: 9080}}]}}]\n"
        )
    })
    .await;
    let virtual_service = world.object("virtualservices", "reviews").await;
    let refused = world.fledge(&["run"], &world.manifest("v2", "2.0.0", |text| text)).await;
    assert_eq!(refused.code, 3, "{refused:#?}");
    let failed = refused.event("preflight-failed").expect("preflight failed");
    assert_eq!(
        failed["error"],
        "failed to check the traffic route: reviews in bookinfo is routed by VirtualService reviews and by HTTPRoute reviews-ingress: Istio leaves the mix undefined; route the service with one of them"
    );
    assert!(world.deployment("reviews-v2").await.is_none(), "nothing was deployed");
    assert_eq!(world.object("virtualservices", "reviews").await, virtual_service, "the VirtualService is untouched");
}

/// The rich route with a `debug` rule first, pinned to the live version's Service by a header match.
fn with_debug_rule(text: String) -> String {
    rich(text).replace(
        "      rules:\n        - name: archive\n",
        "      rules:\n        - name: debug\n          matches: [{headers: [{name: x-debug, value: \"1\"}]}]\n          backendRefs: [{name: reviews-v1, port: 9080}]\n        - name: archive\n",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_pinned_to_the_live_service_is_moved_at_promotion_so_nothing_points_at_the_removed_service() {
    let world = World::start_gateway_api(with_debug_rule).await;
    let original = world.route_object().await;
    assert_eq!(original["spec"]["rules"][0]["backendRefs"][0]["name"], "reviews-v1", "the scenario pins a rule");
    // Two rules send to reviews now: the manifest names the one fledge manages.
    let manifest = world
        .manifest("v2", "2.0.0", |text| text.replace("{httpRoute: reviews}", "{httpRoute: reviews, rule: primary}"));

    let plan = world.fledge(&["plan"], &manifest).await;
    assert_eq!(plan.code, 0, "{plan:#?}");
    let pinned =
        "  pinned    HTTPRoute reviews rule debug (#0): moved to v2 at promotion (traffic.pinnedRoutes: move)\n";
    assert!(plan.stdout.contains(pinned), "`fledge plan` lacks {pinned:?}:\n{}", plan.stdout);

    let promoted = world.fledge(&["run"], &manifest).await;
    assert_eq!(promoted.code, 0, "{promoted:#?}");
    let mut expected = original.clone();
    expected["spec"]["rules"][0]["backendRefs"][0]["name"] = json!("reviews-v2");
    expected["spec"]["rules"][2]["backendRefs"][0]["name"] = json!("reviews-v2");
    assert_eq!(
        world.route_object().await,
        expected,
        "the managed rule and the pinned rule send to v2, nothing else changed"
    );
    assert!(service(&world, "reviews-v1").await.is_none(), "the old version's Service is removed");
    assert_eq!(world.dangling_backends().await, Vec::<String>::new(), "no backendRef to a missing Service");
}

#[tokio::test(flavor = "multi_thread")]
async fn refuse_stops_a_release_whose_live_service_a_rule_is_pinned_to() {
    let world = World::start_gateway_api(with_debug_rule).await;
    let original = world.route_object().await;
    let manifest = world.manifest("v2", "2.0.0", |text| {
        text.replace(
            "  gatewayAPI: {httpRoute: reviews}\n",
            "  gatewayAPI: {httpRoute: reviews, rule: primary}\n  pinnedRoutes: refuse\n",
        )
    });
    let refused = world.fledge(&["run"], &manifest).await;
    assert_eq!(refused.code, 3, "{refused:#?}");
    let failed = refused.event("preflight-failed").expect("preflight failed");
    assert!(failed["error"].as_str().unwrap().contains("HTTPRoute reviews rule debug (#0)"), "{failed}");
    assert_eq!(world.route_object().await, original, "the route is untouched");
    assert!(world.deployment("reviews-v2").await.is_none(), "nothing was deployed");
}
