use super::*;

fn virtual_service() -> Value {
    json!({
        "metadata": { "name": "reviews", "resourceVersion": "7" },
        "spec": {
            "hosts": ["reviews"],
            "http": [
                { "name": "canary-header", "match": [{ "headers": { "x-test": { "exact": "1" } } }],
                  "route": [{ "destination": { "host": "ratings", "subset": "v1" } }] },
                { "name": "primary",
                  "retries": { "attempts": 2 },
                  "route": [
                      { "destination": { "host": "reviews", "subset": "v1", "port": { "number": 9080 } }, "weight": 80, "headers": { "request": { "set": { "x-from": "mesh" } } } },
                      { "destination": { "host": "legacy.other.svc.cluster.local" }, "weight": 20 }
                  ] }
            ]
        }
    })
}

fn destination_rule() -> Value {
    json!({ "metadata": { "name": "reviews", "resourceVersion": "9" },
            "spec": { "host": "reviews.bookinfo.svc.cluster.local", "trafficPolicy": { "tls": { "mode": "ISTIO_MUTUAL" } },
                      "subsets": [{ "name": "v1", "labels": { "version": "v1" } }] } })
}

fn taken() -> TrafficSnapshot {
    snapshot(&virtual_service(), &destination_rule(), "reviews", "bookinfo", None, None, "v2").unwrap()
}

fn apply(object: &Value, operations: Vec<PatchOperation>) -> Value {
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &operations).unwrap();
    patched
}

#[test]
fn finds_the_only_route_for_the_service_and_its_share() {
    let snapshot = taken();
    assert_eq!(
        (snapshot.route_index, snapshot.route_name.as_deref(), snapshot.live_subset.as_str(), snapshot.share),
        (1, Some("primary"), "v1", 80)
    );
}

#[test]
fn ambiguous_or_missing_routes_name_the_candidates() {
    let mut two = virtual_service();
    two["spec"]["http"][0]["route"][0]["destination"]["host"] = json!("reviews");
    let error = snapshot(&two, &destination_rule(), "reviews", "bookinfo", None, None, "v2").unwrap_err();
    assert_eq!(
        error.to_string(),
        "several http routes of VirtualService reviews send traffic to reviews: canary-header (#0), primary (#1); name the one to manage in traffic.istio.route"
    );
    assert!(snapshot(&two, &destination_rule(), "reviews", "bookinfo", Some("primary"), None, "v2").is_ok());
    let error =
        snapshot(&virtual_service(), &destination_rule(), "reviews", "bookinfo", Some("main"), None, "v2").unwrap_err();
    assert_eq!(
        error.to_string(),
        "VirtualService reviews has no http route named main (routes: canary-header (#0), primary (#1))"
    );
    let error = snapshot(&virtual_service(), &destination_rule(), "details", "bookinfo", None, None, "v2").unwrap_err();
    assert!(matches!(error, RouteError::HostMismatch { .. }), "{error}");
}

#[test]
fn the_live_version_must_be_one_subset_unless_named() {
    let mut split = virtual_service();
    split["spec"]["http"][1]["route"] = json!([
        { "destination": { "host": "reviews", "subset": "v1" }, "weight": 50 },
        { "destination": { "host": "reviews", "subset": "v0" }, "weight": 50 }
    ]);
    let error = snapshot(&split, &destination_rule(), "reviews", "bookinfo", None, None, "v2").unwrap_err();
    assert_eq!(
        error.to_string(),
        "route primary (#1) splits reviews's traffic over v1, v0; set service.previousVersion to the live one"
    );
    let error =
        snapshot(&virtual_service(), &destination_rule(), "reviews", "bookinfo", None, Some("v0"), "v2").unwrap_err();
    assert!(matches!(error, RouteError::LiveVersionNotRouted { .. }));
    let mut in_flight = virtual_service();
    in_flight["spec"]["http"][1]["route"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "destination": { "host": "reviews", "subset": "v2" }, "weight": 5 }));
    let error = snapshot(&in_flight, &destination_rule(), "reviews", "bookinfo", None, Some("v1"), "v2").unwrap_err();
    assert!(matches!(error, RouteError::NewVersionAlreadyRouted { weight: 5, .. }));
    let mut no_subset = destination_rule();
    no_subset["spec"]["subsets"] = json!([]);
    assert!(matches!(
        snapshot(&virtual_service(), &no_subset, "reviews", "bookinfo", None, None, "v2").unwrap_err(),
        RouteError::SubsetNotDefined { .. }
    ));
}

#[test]
fn weights_split_the_services_share_and_leave_everything_else() {
    let snapshot = taken();
    let original = virtual_service();
    let at_25 = apply(&original, weight_patch(&original, &snapshot, "v2", Weight::new(25).unwrap()).unwrap());
    assert_eq!(current_weights(&at_25, &snapshot, "v2").unwrap(), (60, 20));
    let route = &at_25["spec"]["http"][1]["route"];
    assert_eq!(route[1], original["spec"]["http"][1]["route"][1], "the other host keeps its 20");
    assert_eq!(
        route[2]["destination"],
        json!({ "host": "reviews", "subset": "v2", "port": { "number": 9080 } }),
        "a copy of the live destination"
    );
    assert_eq!(route[2]["headers"], route[0]["headers"]);
    assert_eq!(at_25["spec"]["http"][0], original["spec"]["http"][0]);
    assert_eq!(at_25["spec"]["http"][1]["retries"], original["spec"]["http"][1]["retries"]);
    let at_100 = apply(&at_25, weight_patch(&at_25, &snapshot, "v2", Weight::FULL).unwrap());
    assert_eq!(current_weights(&at_100, &snapshot, "v2").unwrap(), (0, 80));
    let restored = apply(&at_100, restore_patch(&at_100, &snapshot).unwrap());
    assert_eq!(restored, original);
    let retired = apply(&at_100, retire_live_patch(&at_100, &snapshot, "v2").unwrap());
    assert_eq!(retired["spec"]["http"][1]["route"].as_array().unwrap().len(), 2);
    assert_eq!(current_weights(&retired, &snapshot, "v2").unwrap(), (0, 80));
}

#[test]
fn a_single_unweighted_destination_holds_the_whole_route() {
    let mut simple = virtual_service();
    simple["spec"]["http"] = json!([{ "route": [{ "destination": { "host": "reviews", "subset": "v1" } }] }]);
    let snapshot = snapshot(&simple, &destination_rule(), "reviews", "bookinfo", None, None, "v2").unwrap();
    assert_eq!(snapshot.share, 100);
    let at_5 = apply(&simple, weight_patch(&simple, &snapshot, "v2", Weight::new(5).unwrap()).unwrap());
    assert_eq!(
        at_5["spec"]["http"][0]["route"],
        json!([
            { "destination": { "host": "reviews", "subset": "v1" }, "weight": 95 },
            { "destination": { "host": "reviews", "subset": "v2" }, "weight": 5 }
        ])
    );
    assert_eq!(
        apply(&at_5, restore_patch(&at_5, &snapshot).unwrap()),
        simple,
        "the weight field fledge added goes too"
    );
}

#[test]
fn writes_are_guarded_by_the_resource_version_read() {
    let snapshot = taken();
    let original = virtual_service();
    let operations = weight_patch(&original, &snapshot, "v2", Weight::new(10).unwrap()).unwrap();
    let mut moved = original.clone();
    moved["metadata"]["resourceVersion"] = json!("8");
    assert!(json_patch::patch(&mut moved, &operations).is_err(), "a write planned on version 7 fails on version 8");
}
