//! Pinned routes: every place, outside the managed route's destinations, that sends the service's traffic to the
//! live version's subset by name. A header-matched debug route, a tcp or tls route, a mirror, another VirtualService
//! of the namespace routing the same host: when the old version is retired, each would point at a subset that no
//! longer exists (Istio answers 503 `NC`). `traffic.pinnedRoutes` says what a release does with them (docs/traffic.md).

use crate::routes::{host_matches, pointer, test_resource_version};
use json_patch::{PatchOperation, ReplaceOperation};
use serde_json::{Value, json};

/// One place that sends to the live subset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedRoute {
    /// The VirtualService holding it.
    pub virtual_service: String,
    /// `http`, `tcp` or `tls`.
    pub protocol: &'static str,
    /// The route's index in that list.
    pub route_index: usize,
    /// The route's name, if it has one.
    pub route_name: Option<String>,
    /// `destination` (one of the route's destinations) or `mirror`.
    pub place: &'static str,
    /// The JSON pointer of the `subset` field.
    pub subset_path: String,
}

impl std::fmt::Display for PinnedRoute {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "VirtualService {} {} route ", self.virtual_service, self.protocol)?;
        match &self.route_name {
            Some(name) => write!(formatter, "{name} (#{})", self.route_index)?,
            None => write!(formatter, "#{}", self.route_index)?,
        }
        if self.place == "mirror" {
            write!(formatter, " (its mirror)")?;
        }
        Ok(())
    }
}

/// What is excluded from the search: the managed route's own destinations, in its VirtualService.
#[derive(Clone, Copy, Debug)]
pub struct ManagedRoute<'a> {
    /// The managed VirtualService's name.
    pub virtual_service: &'a str,
    /// The managed http route's index now.
    pub route_index: usize,
}

/// Every place in `virtual_services` (the namespace's) that sends to `subset` of the service by name, but the
/// managed route's destinations.
pub fn find_pinned(
    virtual_services: &[Value],
    managed: ManagedRoute<'_>,
    service: &str,
    namespace: &str,
    subset: &str,
) -> Vec<PinnedRoute> {
    let pins = |destination: &Value| {
        host_matches(destination["host"].as_str().unwrap_or_default(), service, namespace)
            && destination["subset"].as_str() == Some(subset)
    };
    let mut found = Vec::new();
    for virtual_service in virtual_services {
        let name = virtual_service.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        for protocol in ["http", "tcp", "tls"] {
            let routes = virtual_service.pointer(&format!("/spec/{protocol}")).and_then(Value::as_array);
            for (index, route) in routes.into_iter().flatten().enumerate() {
                let is_managed = name == managed.virtual_service && protocol == "http" && index == managed.route_index;
                let pinned = |place: &'static str, subset_path: String| PinnedRoute {
                    virtual_service: name.to_owned(),
                    protocol,
                    route_index: index,
                    route_name: route.get("name").and_then(Value::as_str).map(str::to_owned),
                    place,
                    subset_path,
                };
                let destinations = route.get("route").and_then(Value::as_array).into_iter().flatten();
                for (position, entry) in destinations.enumerate() {
                    if !is_managed && pins(&entry["destination"]) {
                        let path = format!("/spec/{protocol}/{index}/route/{position}/destination/subset");
                        found.push(pinned("destination", path));
                    }
                }
                if protocol == "http" {
                    if pins(&route["mirror"]) {
                        found.push(pinned("mirror", format!("/spec/http/{index}/mirror/subset")));
                    }
                    let mirrors = route.get("mirrors").and_then(Value::as_array).into_iter().flatten();
                    for (position, mirror) in mirrors.enumerate() {
                        if pins(&mirror["destination"]) {
                            let path = format!("/spec/http/{index}/mirrors/{position}/destination/subset");
                            found.push(pinned("mirror", path));
                        }
                    }
                }
            }
        }
    }
    found
}

/// The JSON patch of one VirtualService that points each of `pinned` (found in it) at `version`, guarded by the
/// resourceVersion read; `None` when there is nothing to move.
pub fn move_patch(virtual_service: &Value, pinned: &[&PinnedRoute], version: &str) -> Option<Vec<PatchOperation>> {
    if pinned.is_empty() {
        return None;
    }
    let mut operations = vec![test_resource_version(virtual_service)];
    for place in pinned {
        operations.push(PatchOperation::Replace(ReplaceOperation {
            path: pointer(place.subset_path.clone()),
            value: json!(version),
        }));
    }
    Some(operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Vec<Value> {
        vec![
            json!({ "metadata": { "name": "reviews", "resourceVersion": "4" }, "spec": { "hosts": ["reviews"],
                "http": [
                    { "name": "debug", "match": [{ "headers": { "x-debug": { "exact": "1" } } }],
                      "route": [{ "destination": { "host": "reviews", "subset": "v1" } }] },
                    { "name": "primary",
                      "route": [{ "destination": { "host": "reviews", "subset": "v1" }, "weight": 100 }],
                      "mirror": { "host": "reviews.bookinfo.svc.cluster.local", "subset": "v1" } },
                    { "route": [{ "destination": { "host": "ratings", "subset": "v1" } }],
                      "mirrors": [{ "destination": { "host": "reviews", "subset": "v1" } }] }
                ],
                "tcp": [{ "route": [{ "destination": { "host": "reviews", "subset": "v1", "port": { "number": 9090 } } }] }],
                "tls": [{ "match": [{ "sniHosts": ["reviews.example.com"] }],
                          "route": [{ "destination": { "host": "reviews", "subset": "legacy" } }] }] } }),
            json!({ "metadata": { "name": "gateway", "resourceVersion": "8" }, "spec": { "hosts": ["reviews.example.com"],
                "gateways": ["bookinfo-gateway"],
                "http": [{ "route": [{ "destination": { "host": "reviews.bookinfo", "subset": "v1" } }] }] } }),
        ]
    }

    #[test]
    fn every_reference_to_the_live_subset_outside_the_managed_destinations_is_found() {
        let managed = ManagedRoute { virtual_service: "reviews", route_index: 1 };
        let found = find_pinned(&services(), managed, "reviews", "bookinfo", "v1");
        let described: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            described,
            [
                "VirtualService reviews http route debug (#0)",
                "VirtualService reviews http route primary (#1) (its mirror)",
                "VirtualService reviews http route #2 (its mirror)",
                "VirtualService reviews tcp route #0",
                "VirtualService gateway http route #0",
            ]
        );
        assert!(find_pinned(&services(), managed, "reviews", "bookinfo", "v3").is_empty());
    }

    #[test]
    fn moving_changes_only_the_subset_fields() {
        let services = services();
        let managed = ManagedRoute { virtual_service: "reviews", route_index: 1 };
        let found = find_pinned(&services, managed, "reviews", "bookinfo", "v1");
        let in_reviews: Vec<&PinnedRoute> = found.iter().filter(|pin| pin.virtual_service == "reviews").collect();
        let mut moved = services[0].clone();
        json_patch::patch(&mut moved, &move_patch(&services[0], &in_reviews, "v2").unwrap()).unwrap();
        let mut expected = services[0].clone();
        expected["spec"]["http"][0]["route"][0]["destination"]["subset"] = json!("v2");
        expected["spec"]["http"][1]["mirror"]["subset"] = json!("v2");
        expected["spec"]["http"][2]["mirrors"][0]["destination"]["subset"] = json!("v2");
        expected["spec"]["tcp"][0]["route"][0]["destination"]["subset"] = json!("v2");
        assert_eq!(moved, expected);
        assert!(find_pinned(&[moved], managed, "reviews", "bookinfo", "v1").is_empty());
        assert!(move_patch(&services[0], &[], "v2").is_none());
    }
}
