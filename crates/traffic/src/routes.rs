//! The pure part of traffic shifting: which http route fledge manages, what it found there, and the JSON patches that
//! change only the weights and subsets fledge owns.
//!
//! Rules (documented in docs/traffic.md):
//! - the managed route is the one named in the manifest, or else the only http route with a destination for the
//!   service's host (`reviews`, `reviews.<ns>`, `reviews.<ns>.svc[.cluster.local]`); anything else is ambiguous;
//! - the service's destinations in that route must send all of their weight to one subset, the live version (or the
//!   manifest names it); the new version's destination is a copy of the live one with its subset and weight changed;
//! - destinations to other hosts in the route keep their weights: fledge splits only the share of the route the
//!   service's destinations hold, so a route sending 20% elsewhere still sends 20% elsewhere;
//! - every write is a JSON patch that first tests the resourceVersion fledge read.

use fledge_core::Weight;
pub(crate) use fledge_kube_client::guarded::test_resource_version;
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Why the managed route or the live version cannot be determined, or a write cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The VirtualService has no http routes.
    #[error("VirtualService {virtual_service} has no http routes")]
    NoHttpRoutes {
        /// The VirtualService.
        virtual_service: String,
    },
    /// No http route has the name the manifest gives.
    #[error("VirtualService {virtual_service} has no http route named {name} (routes: {})", available.join(", "))]
    NamedRouteNotFound {
        /// The VirtualService.
        virtual_service: String,
        /// The name asked for.
        name: String,
        /// The routes there are.
        available: Vec<String>,
    },
    /// No http route sends traffic to the service.
    #[error("no http route of VirtualService {virtual_service} has a destination with host {service}")]
    NoRouteForService {
        /// The VirtualService.
        virtual_service: String,
        /// The service.
        service: String,
    },
    /// Several http routes send traffic to the service.
    #[error("several http routes of VirtualService {virtual_service} send traffic to {service}: {}; name the one to manage in traffic.istio.route", candidates.join(", "))]
    SeveralRoutes {
        /// The VirtualService.
        virtual_service: String,
        /// The service.
        service: String,
        /// The candidate routes (`#index` and name).
        candidates: Vec<String>,
    },
    /// A destination for the service has no subset: traffic cannot be split by version.
    #[error("route {route} sends traffic to {service} without a subset; give each version's destination a subset")]
    DestinationWithoutSubset {
        /// The route.
        route: String,
        /// The service.
        service: String,
    },
    /// The service's weight is split over several subsets and the manifest does not say which is live.
    #[error("route {route} splits {service}'s traffic over {}; set service.previousVersion to the live one", subsets.join(", "))]
    NoSingleLiveSubset {
        /// The route.
        route: String,
        /// The service.
        service: String,
        /// The subsets with weight.
        subsets: Vec<String>,
    },
    /// The manifest names a live version the route does not send to.
    #[error("route {route} has no destination for subset {version} of {service}")]
    LiveVersionNotRouted {
        /// The route.
        route: String,
        /// The service.
        service: String,
        /// The version.
        version: String,
    },
    /// The new version already takes traffic.
    #[error(
        "route {route} already sends {weight} to the new version {version}; a release of it is in flight or was left half-done"
    )]
    NewVersionAlreadyRouted {
        /// The route.
        route: String,
        /// The version.
        version: String,
        /// Its weight.
        weight: i64,
    },
    /// The service's destinations hold no weight at all.
    #[error("route {route} gives {service} a weight of 0; there is no traffic to shift")]
    NoShare {
        /// The route.
        route: String,
        /// The service.
        service: String,
    },
    /// The DestinationRule is for another host.
    #[error("DestinationRule {destination_rule} is for host {host}, not {service}")]
    HostMismatch {
        /// The DestinationRule.
        destination_rule: String,
        /// Its host.
        host: String,
        /// The service.
        service: String,
    },
    /// The live subset is not defined.
    #[error("DestinationRule {destination_rule} defines no subset {subset}")]
    SubsetNotDefined {
        /// The DestinationRule.
        destination_rule: String,
        /// The subset.
        subset: String,
    },
    /// Routes outside the managed one send to the live subset, and the manifest says to refuse the release then.
    #[error(
        "subset {subset} is also routed to outside the managed route, by {}; traffic.pinnedRoutes is `refuse`: remove those references, or set it to `move` (point them at the new version at promotion) or `keep` (keep the old version for them)",
        routes.join(", ")
    )]
    PinnedRoutesRefused {
        /// The live subset.
        subset: String,
        /// The routes pinned to it.
        routes: Vec<String>,
    },
    /// The managed route changed shape since the snapshot (renamed, removed, or no longer routing the service).
    #[error("the managed route {route} is no longer found in VirtualService {virtual_service}")]
    RouteChanged {
        /// The VirtualService.
        virtual_service: String,
        /// The route as snapshotted.
        route: String,
    },
}

/// What fledge found in the managed route and the DestinationRule at preflight: enough to find the route again, to
/// split its share, and to restore it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSnapshot {
    /// The VirtualService.
    pub virtual_service: String,
    /// The DestinationRule.
    pub destination_rule: String,
    /// Index of the managed route in `spec.http` at preflight.
    pub route_index: usize,
    /// Its name, if it has one.
    pub route_name: Option<String>,
    /// The route's `route` (its destinations) exactly as found.
    pub destinations: Value,
    /// The DestinationRule's `subsets` exactly as found (`null` when absent).
    pub subsets: Value,
    /// The live version's subset.
    pub live_subset: String,
    /// The total weight of the service's destinations in the route (100 when it is the only destination).
    pub share: i64,
    /// The service name.
    pub service: String,
    /// The namespace.
    pub namespace: String,
    /// Routes outside the managed one that send to the live subset, as found at preflight (for people: cleanup looks
    /// again).
    #[serde(default)]
    pub pinned: Vec<String>,
}

impl TrafficSnapshot {
    /// How the route is called in messages: its name, or `#index`.
    pub fn route_label(&self) -> String {
        route_label(self.route_index, self.route_name.as_deref())
    }
}

fn route_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name} (#{index})"),
        None => format!("#{index}"),
    }
}

pub use fledge_core::names::host_matches;

fn name_of(object: &Value) -> String {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn http_routes(virtual_service: &Value) -> &[Value] {
    virtual_service.pointer("/spec/http").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn destinations(route: &Value) -> &[Value] {
    route.get("route").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// The weight a destination effectively has: its weight, or 100 when it is the route's only destination.
fn effective_weight(entry: &Value, count: usize) -> i64 {
    entry.get("weight").and_then(Value::as_i64).unwrap_or(if count == 1 { 100 } else { 0 })
}

/// Finds the managed http route's index.
pub fn find_route(
    virtual_service: &Value,
    service: &str,
    namespace: &str,
    route_name: Option<&str>,
) -> Result<usize, RouteError> {
    let name = name_of(virtual_service);
    let routes = http_routes(virtual_service);
    if routes.is_empty() {
        return Err(RouteError::NoHttpRoutes { virtual_service: name });
    }
    let for_service = |route: &Value| {
        destinations(route).iter().any(|entry| {
            host_matches(
                entry.pointer("/destination/host").and_then(Value::as_str).unwrap_or_default(),
                service,
                namespace,
            )
        })
    };
    if let Some(wanted) = route_name {
        let index = routes.iter().position(|route| route.get("name").and_then(Value::as_str) == Some(wanted));
        let available = routes
            .iter()
            .enumerate()
            .map(|(index, route)| route_label(index, route.get("name").and_then(Value::as_str)))
            .collect();
        let index = index.ok_or_else(|| RouteError::NamedRouteNotFound {
            virtual_service: name.clone(),
            name: wanted.to_owned(),
            available,
        })?;
        if !for_service(&routes[index]) {
            return Err(RouteError::NoRouteForService { virtual_service: name, service: service.to_owned() });
        }
        return Ok(index);
    }
    let candidates: Vec<usize> =
        routes.iter().enumerate().filter(|(_, route)| for_service(route)).map(|(index, _)| index).collect();
    match candidates.as_slice() {
        [] => Err(RouteError::NoRouteForService { virtual_service: name, service: service.to_owned() }),
        [index] => Ok(*index),
        _ => Err(RouteError::SeveralRoutes {
            virtual_service: name,
            service: service.to_owned(),
            candidates: candidates
                .iter()
                .map(|index| route_label(*index, routes[*index].get("name").and_then(Value::as_str)))
                .collect(),
        }),
    }
}

/// Checks the VirtualService and DestinationRule and records what must be restored.
pub fn snapshot(
    virtual_service: &Value,
    destination_rule: &Value,
    service: &str,
    namespace: &str,
    route_name: Option<&str>,
    previous_version: Option<&str>,
    new_version: &str,
) -> Result<TrafficSnapshot, RouteError> {
    let rule_name = name_of(destination_rule);
    let rule_host = destination_rule.pointer("/spec/host").and_then(Value::as_str).unwrap_or_default();
    if !host_matches(rule_host, service, namespace) {
        return Err(RouteError::HostMismatch {
            destination_rule: rule_name,
            host: rule_host.to_owned(),
            service: service.to_owned(),
        });
    }
    let index = find_route(virtual_service, service, namespace, route_name)?;
    let route = &http_routes(virtual_service)[index];
    let label = route_label(index, route.get("name").and_then(Value::as_str));
    let entries = destinations(route);
    let ours: Vec<&Value> = entries
        .iter()
        .filter(|entry| {
            host_matches(
                entry.pointer("/destination/host").and_then(Value::as_str).unwrap_or_default(),
                service,
                namespace,
            )
        })
        .collect();
    if ours.iter().any(|entry| entry.pointer("/destination/subset").and_then(Value::as_str).is_none()) {
        return Err(RouteError::DestinationWithoutSubset { route: label, service: service.to_owned() });
    }
    let subset_of =
        |entry: &Value| entry.pointer("/destination/subset").and_then(Value::as_str).unwrap_or_default().to_owned();
    if let Some(entry) = ours.iter().find(|entry| subset_of(entry) == new_version) {
        let weight = effective_weight(entry, entries.len());
        if weight > 0 {
            return Err(RouteError::NewVersionAlreadyRouted { route: label, version: new_version.to_owned(), weight });
        }
    }
    let weighted: Vec<String> =
        ours.iter().filter(|entry| effective_weight(entry, entries.len()) > 0).map(|entry| subset_of(entry)).collect();
    let live_subset = match previous_version {
        Some(version) => {
            if !ours.iter().any(|entry| subset_of(entry) == version) {
                return Err(RouteError::LiveVersionNotRouted {
                    route: label,
                    service: service.to_owned(),
                    version: version.to_owned(),
                });
            }
            version.to_owned()
        }
        None => match weighted.as_slice() {
            [single] => single.clone(),
            [] => return Err(RouteError::NoShare { route: label, service: service.to_owned() }),
            _ => {
                return Err(RouteError::NoSingleLiveSubset {
                    route: label,
                    service: service.to_owned(),
                    subsets: weighted,
                });
            }
        },
    };
    let share: i64 = ours.iter().map(|entry| effective_weight(entry, entries.len())).sum();
    if share <= 0 {
        return Err(RouteError::NoShare { route: label, service: service.to_owned() });
    }
    let subsets = destination_rule.pointer("/spec/subsets").cloned().unwrap_or(Value::Null);
    let defined = subsets.as_array().into_iter().flatten().any(|subset| subset["name"] == live_subset.as_str());
    if !defined {
        return Err(RouteError::SubsetNotDefined { destination_rule: rule_name, subset: live_subset });
    }
    Ok(TrafficSnapshot {
        virtual_service: name_of(virtual_service),
        destination_rule: rule_name,
        route_index: index,
        route_name: route.get("name").and_then(Value::as_str).map(str::to_owned),
        destinations: route.get("route").cloned().unwrap_or(Value::Null),
        subsets,
        live_subset,
        share,
        service: service.to_owned(),
        namespace: namespace.to_owned(),
        pinned: Vec::new(),
    })
}

/// The managed route's current index: by name, or the only route for the service.
fn locate(virtual_service: &Value, snapshot: &TrafficSnapshot) -> Result<usize, RouteError> {
    let changed = || RouteError::RouteChanged {
        virtual_service: snapshot.virtual_service.clone(),
        route: snapshot.route_label(),
    };
    find_route(virtual_service, &snapshot.service, &snapshot.namespace, snapshot.route_name.as_deref())
        .map_err(|_| changed())
}

pub(crate) fn pointer(text: String) -> json_patch::jsonptr::PointerBuf {
    json_patch::jsonptr::PointerBuf::parse(&text).expect("pointers built here are valid")
}

fn subset_index(entries: &[Value], snapshot: &TrafficSnapshot, subset: &str) -> Option<usize> {
    entries.iter().position(|entry| {
        host_matches(
            entry.pointer("/destination/host").and_then(Value::as_str).unwrap_or_default(),
            &snapshot.service,
            &snapshot.namespace,
        ) && entry.pointer("/destination/subset").and_then(Value::as_str) == Some(subset)
    })
}

/// The weights of the live and new versions now: `(live, new)`, out of the service's share.
pub fn current_weights(
    virtual_service: &Value,
    snapshot: &TrafficSnapshot,
    new_version: &str,
) -> Result<(i64, i64), RouteError> {
    let index = locate(virtual_service, snapshot)?;
    let entries = destinations(&http_routes(virtual_service)[index]);
    let weight = |subset: &str| {
        subset_index(entries, snapshot, subset)
            .map_or(0, |position| effective_weight(&entries[position], entries.len()))
    };
    Ok((weight(&snapshot.live_subset), weight(new_version)))
}

/// The split of the service's share for a canary weight: `(live, new)`, summing to the share.
pub fn split(share: i64, canary: Weight) -> (i64, i64) {
    canary.split_share(share)
}

/// The JSON patch that sets the new version's weight (adding its destination, a copy of the live one, when needed).
pub fn weight_patch(
    virtual_service: &Value,
    snapshot: &TrafficSnapshot,
    new_version: &str,
    canary: Weight,
) -> Result<Vec<PatchOperation>, RouteError> {
    let index = locate(virtual_service, snapshot)?;
    let entries = destinations(&http_routes(virtual_service)[index]);
    let (live_weight, new_weight) = split(snapshot.share, canary);
    let live_position = subset_index(entries, snapshot, &snapshot.live_subset).ok_or_else(|| {
        RouteError::RouteChanged { virtual_service: snapshot.virtual_service.clone(), route: snapshot.route_label() }
    })?;
    let base = format!("/spec/http/{index}/route");
    let mut operations = vec![test_resource_version(virtual_service)];
    let set_weight = |position: usize, weight: i64| {
        let path = pointer(format!("{base}/{position}/weight"));
        if entries[position].get("weight").is_some() {
            PatchOperation::Replace(ReplaceOperation { path, value: json!(weight) })
        } else {
            PatchOperation::Add(AddOperation { path, value: json!(weight) })
        }
    };
    operations.push(set_weight(live_position, live_weight));
    match subset_index(entries, snapshot, new_version) {
        Some(position) => operations.push(set_weight(position, new_weight)),
        None => {
            let mut entry = entries[live_position].clone();
            entry["destination"]["subset"] = json!(new_version);
            entry["weight"] = json!(new_weight);
            operations.push(PatchOperation::Add(AddOperation { path: pointer(format!("{base}/-")), value: entry }));
        }
    }
    Ok(operations)
}

/// The JSON patch that puts the managed route's destinations back exactly as they were found.
pub fn restore_patch(virtual_service: &Value, snapshot: &TrafficSnapshot) -> Result<Vec<PatchOperation>, RouteError> {
    let index = locate(virtual_service, snapshot)?;
    Ok(vec![
        test_resource_version(virtual_service),
        PatchOperation::Replace(ReplaceOperation {
            path: pointer(format!("/spec/http/{index}/route")),
            value: snapshot.destinations.clone(),
        }),
    ])
}

/// After promotion: the JSON patch that removes the old version's destination, leaving the new one with the share.
pub fn retire_live_patch(
    virtual_service: &Value,
    snapshot: &TrafficSnapshot,
    new_version: &str,
) -> Result<Vec<PatchOperation>, RouteError> {
    let index = locate(virtual_service, snapshot)?;
    let entries = destinations(&http_routes(virtual_service)[index]);
    let base = format!("/spec/http/{index}/route");
    let mut operations = vec![test_resource_version(virtual_service)];
    let new_position = subset_index(entries, snapshot, new_version).ok_or_else(|| RouteError::RouteChanged {
        virtual_service: snapshot.virtual_service.clone(),
        route: snapshot.route_label(),
    })?;
    operations.push(PatchOperation::Replace(ReplaceOperation {
        path: pointer(format!("{base}/{new_position}/weight")),
        value: json!(snapshot.share),
    }));
    if let Some(live_position) = subset_index(entries, snapshot, &snapshot.live_subset) {
        operations.push(PatchOperation::Remove(RemoveOperation { path: pointer(format!("{base}/{live_position}")) }));
    }
    Ok(operations)
}

#[cfg(test)]
mod tests;
