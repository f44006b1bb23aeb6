//! Istio's gateway controller (`istio.io/gateway-controller`), run on every tick of the control plane.
//!
//! ```text
//! GatewayClass naming the controller ─▶ status: Accepted ("Handled by Istio controller")
//! Gateway of such a class ─▶ status: Accepted, Programmed, addresses (<name>-istio.<ns>.svc.cluster.local),
//!                            listeners with attachedRoutes
//! HTTPRoute, once it needs it (a new generation, a parent or backend appeared or went) and statusDelay passed:
//!     status.parents: per parentRef Istio handles ─ Accepted:     the Service exists │ the Gateway exists and a
//!                                                                 listener takes it (port, sectionName, hostnames,
//!                                                                 allowedRoutes)
//!                                                 ─ ResolvedRefs: every backendRef of weight > 0 a Service here
//!     data plane: the spec that status describes, and the parents that accepted it
//! ```
//!
//! Reasons and messages are Istio's (`NoMatchingParent` `parent service: "x" not found`, `NotAllowedByListeners`
//! `hostnames matched parent hostname "", but namespace "other" is not allowed by the parent`, `BackendNotFound`
//! `backend(reviews-v3.bookinfo.svc.cluster.local) not found`, `RefNotPermitted`, `InvalidKind`). Two departures:
//! a parentRef to a Gateway that does not exist gets an entry (`NoMatchingParent`, `parent gateway: "x" not found`)
//! where Istio writes none, so a typo shows; and several backend problems are one ResolvedRefs condition with their
//! messages joined by `; `, where Istio reports one. ReferenceGrants are not served, so a backendRef to another
//! namespace is always `RefNotPermitted`. No gateway Deployment or Service is created.
//!
//! (Over 500 lines with its unit tests, which are about 290; the code reconciles three kinds from one snapshot.)

use super::data_plane::{AttachedParent, DataPlane, ProgrammedRoute};
use super::matching::hostnames_match;
use super::{
    CLUSTER_DOMAIN, CONTROLLER_NAME, GROUP, GatewayApiSettings, ParentKind, ParentReference, backend_references,
};
use crate::api_error::ApiError;
use crate::resources::{self, ResourceId};
use crate::store::selectors::LabelSelector;
use crate::store::{Store, WriteScope};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The reason of a parent that does not take a route, or of a parentRef that names nothing.
const NO_MATCHING_PARENT: &str = "NoMatchingParent";
/// The reason of a Gateway whose listeners do not allow the route.
const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
/// The reason of a Gateway whose listeners' hostnames match none of the route's.
const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn key_of(object: &Value) -> (String, String) {
    (text(object, "/metadata/namespace").to_owned(), text(object, "/metadata/name").to_owned())
}

fn generation(object: &Value) -> i64 {
    object.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0)
}

/// A condition of Gateway API status, without its lastTransitionTime (stamped when written).
fn condition(kind: &str, holds: bool, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": kind,
        "status": if holds { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    })
}

/// Gives each condition the lastTransitionTime of the previous condition of its type if its status is unchanged,
/// or `now`.
fn stamp_conditions(conditions: Option<&mut Value>, previous: Option<&Value>, now: &str) {
    for condition in conditions.and_then(Value::as_array_mut).into_iter().flatten() {
        let kept = previous
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|old| old["type"] == condition["type"] && old["status"] == condition["status"])
            .and_then(|old| old.get("lastTransitionTime"))
            .cloned();
        condition["lastTransitionTime"] = kept.unwrap_or_else(|| json!(now));
    }
}

/// The value without any `lastTransitionTime`: what a status says, whenever it was written.
fn without_times(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| *key != "lastTransitionTime")
                .map(|(key, value)| (key.clone(), without_times(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        other => other.clone(),
    }
}

/// Why a parent does not accept a route, or a reference does not resolve.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    reason: &'static str,
    message: String,
}

impl Refusal {
    fn new(reason: &'static str, message: String) -> Refusal {
        Refusal { reason, message }
    }
}

/// What the controller reads of the cluster, once per pass.
struct Snapshot {
    classes: HashMap<String, Arc<Value>>,
    gateways: HashMap<(String, String), Arc<Value>>,
    services: HashSet<(String, String)>,
    namespaces: HashMap<String, Arc<Value>>,
}

impl Snapshot {
    fn read(store: &Store) -> Snapshot {
        let live = |object: &Value| object.pointer("/metadata/deletionTimestamp").is_none();
        let (classes, _) = store.list(resources::GATEWAY_CLASSES, None, live);
        let (gateways, _) = store.list(resources::GATEWAYS, None, live);
        let (services, _) = store.list(resources::SERVICES, None, live);
        let (namespaces, _) = store.list(resources::NAMESPACES, None, |_| true);
        Snapshot {
            classes: classes.into_iter().map(|class| (text(&class, "/metadata/name").to_owned(), class)).collect(),
            gateways: gateways.into_iter().map(|gateway| (key_of(&gateway), gateway)).collect(),
            services: services.iter().map(|service| key_of(service)).collect(),
            namespaces: namespaces
                .into_iter()
                .map(|namespace| (text(&namespace, "/metadata/name").to_owned(), namespace))
                .collect(),
        }
    }

    /// Whether the Gateway's class is Istio's.
    fn is_istio(&self, gateway: &Value) -> bool {
        self.classes
            .get(text(gateway, "/spec/gatewayClassName"))
            .is_some_and(|class| text(class, "/spec/controllerName") == CONTROLLER_NAME)
    }
}

/// What the controller concludes about one route.
struct Evaluation {
    /// Its entries of `status.parents`, conditions without lastTransitionTime, in parentRef order.
    entries: Vec<Value>,
    /// The parents that accepted it.
    attached: Vec<AttachedParent>,
}

/// Istio's gateway controller: writes the status of GatewayClasses, Gateways and HTTPRoutes, and programs the data
/// plane with the routes it processed.
pub struct GatewayController {
    store: Arc<Store>,
    delay: Duration,
    data_plane: Arc<DataPlane>,
    /// Routes whose status (and programming) is out of date, by `(namespace, name)`: since when.
    pending: Mutex<HashMap<(String, String), Instant>>,
}

impl GatewayController {
    /// A controller over `store`, with the scenario's settings.
    pub fn new(store: Arc<Store>, settings: &GatewayApiSettings) -> GatewayController {
        GatewayController {
            store,
            delay: settings.status_delay(),
            data_plane: Arc::new(DataPlane::default()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The data plane it programs, which the mesh routes by.
    pub fn data_plane(&self) -> Arc<DataPlane> {
        self.data_plane.clone()
    }

    /// One pass, as of `now`: class and Gateway status at once; each HTTPRoute whose status is out of date gets it,
    /// and the data plane its spec, once it has been out of date for the status delay (routes deleted that long ago
    /// leave the data plane).
    pub fn reconcile(&self, now: Instant) {
        let snapshot = Snapshot::read(&self.store);
        self.reconcile_classes(&snapshot);
        self.reconcile_routes(&snapshot, now);
        self.reconcile_gateways(&snapshot);
    }

    fn reconcile_classes(&self, snapshot: &Snapshot) {
        for class in snapshot.classes.values() {
            if text(class, "/spec/controllerName") != CONTROLLER_NAME {
                continue;
            }
            let conditions =
                json!([condition("Accepted", true, "Accepted", "Handled by Istio controller", generation(class))]);
            self.write_status(resources::GATEWAY_CLASSES, class, json!({ "conditions": conditions }));
        }
    }

    fn reconcile_routes(&self, snapshot: &Snapshot, now: Instant) {
        let (routes, _) = self
            .store
            .list(resources::HTTP_ROUTES, None, |route| route.pointer("/metadata/deletionTimestamp").is_none());
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut present = HashSet::new();
        for route in &routes {
            let key = key_of(route);
            present.insert(key.clone());
            let evaluation = evaluate(snapshot, route);
            let route_generation = generation(route);
            let programmed = self.data_plane.get(&key.0, &key.1);
            let reported: Vec<Value> = route
                .pointer("/status/parents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|parent| parent["controllerName"] == CONTROLLER_NAME)
                .map(without_times)
                .collect();
            let up_to_date = programmed.is_some_and(|programmed| {
                programmed.generation == route_generation && programmed.parents == evaluation.attached
            }) && reported == evaluation.entries;
            if up_to_date {
                pending.remove(&key);
                continue;
            }
            let since = *pending.entry(key.clone()).or_insert(now);
            if now.saturating_duration_since(since) < self.delay {
                continue;
            }
            if self.write_route_status(route, &evaluation) {
                self.data_plane.program(ProgrammedRoute {
                    namespace: key.0.clone(),
                    name: key.1.clone(),
                    creation_timestamp: text(route, "/metadata/creationTimestamp").to_owned(),
                    generation: route_generation,
                    spec: route.get("spec").cloned().unwrap_or(Value::Null),
                    parents: evaluation.attached,
                });
                pending.remove(&key);
            }
        }
        for programmed in self.data_plane.routes() {
            let key = (programmed.namespace.clone(), programmed.name.clone());
            if present.contains(&key) {
                continue;
            }
            let since = *pending.entry(key.clone()).or_insert(now);
            if now.saturating_duration_since(since) >= self.delay {
                self.data_plane.withdraw(&key.0, &key.1);
                pending.remove(&key);
            }
        }
        pending.retain(|key, _| present.contains(key) || self.data_plane.get(&key.0, &key.1).is_some());
    }

    /// Writes the route's `status.parents` through `/status`: the entries of other controllers kept, ours replaced.
    /// False when the route changed meanwhile (the next pass evaluates it again).
    fn write_route_status(&self, route: &Value, evaluation: &Evaluation) -> bool {
        let (namespace, name) = key_of(route);
        let route_generation = generation(route);
        let now = crate::clock::now();
        let written =
            self.store.modify(resources::HTTP_ROUTES, &namespace, &name, WriteScope::Status, None, |object| {
                if generation(object) != route_generation {
                    return Err(ApiError::conflict(resources::HTTP_ROUTES.resource_type(), &name));
                }
                let previous = object.pointer("/status/parents").and_then(Value::as_array).cloned().unwrap_or_default();
                let ours = |parent: &Value| parent["controllerName"] == CONTROLLER_NAME;
                if evaluation.entries.is_empty() && !previous.iter().any(ours) {
                    // No parent Istio handles, and nothing of ours to remove: the route is not Istio's to touch.
                    return Ok(());
                }
                let mut parents: Vec<Value> = previous.iter().filter(|parent| !ours(parent)).cloned().collect();
                for entry in &evaluation.entries {
                    let mut entry = entry.clone();
                    let old = previous.iter().find(|parent| ours(parent) && parent["parentRef"] == entry["parentRef"]);
                    stamp_conditions(entry.get_mut("conditions"), old.and_then(|old| old.get("conditions")), &now);
                    parents.push(entry);
                }
                if !object.get("status").is_some_and(Value::is_object) {
                    object["status"] = json!({});
                }
                object["status"]["parents"] = Value::Array(parents);
                Ok(())
            });
        written.is_ok()
    }

    fn reconcile_gateways(&self, snapshot: &Snapshot) {
        let routes = self.data_plane.routes();
        for gateway in snapshot.gateways.values() {
            if !snapshot.is_istio(gateway) {
                continue;
            }
            let (namespace, name) = key_of(gateway);
            let gateway_generation = generation(gateway);
            let service = format!("{name}-istio.{namespace}.svc.{CLUSTER_DOMAIN}");
            let specified =
                gateway.pointer("/spec/listeners").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let listeners: Vec<Value> = specified
                .iter()
                .map(|listener| {
                    let listener_name = text(listener, "/name");
                    let attached = routes
                        .iter()
                        .filter(|route| {
                            route.parents.iter().any(|parent| {
                                parent.kind == ParentKind::Gateway
                                    && parent.namespace == namespace
                                    && parent.name == name
                                    && parent.listeners.iter().any(|attached| attached == listener_name)
                            })
                        })
                        .count();
                    let protocol = text(listener, "/protocol");
                    let kinds = supported_kinds(protocol);
                    let accepted = if kinds.as_array().is_some_and(|kinds| !kinds.is_empty()) {
                        condition("Accepted", true, "Accepted", "No errors found", gateway_generation)
                    } else {
                        let message = format!("protocol {protocol:?} is unsupported");
                        condition("Accepted", false, "UnsupportedProtocol", &message, gateway_generation)
                    };
                    json!({
                        "name": listener_name,
                        "attachedRoutes": attached,
                        "supportedKinds": kinds,
                        "conditions": [
                            accepted,
                            condition("Conflicted", false, "NoConflicts", "No errors found", gateway_generation),
                            condition("Programmed", true, "Programmed", "No errors found", gateway_generation),
                            condition("ResolvedRefs", true, "ResolvedRefs", "No errors found", gateway_generation),
                        ],
                    })
                })
                .collect();
            let mut ports: Vec<u64> =
                specified.iter().filter_map(|listener| listener.get("port").and_then(Value::as_u64)).collect();
            ports.sort_unstable();
            ports.dedup();
            let assigned: Vec<String> = ports.iter().map(|port| format!("{service}:{port}")).collect();
            let programmed = format!("Resource programmed, assigned to service(s) {}", assigned.join(", "));
            let status = json!({
                "addresses": [{ "type": "Hostname", "value": service }],
                "conditions": [
                    condition("Accepted", true, "Accepted", "Resource accepted", gateway_generation),
                    condition("Programmed", true, "Programmed", &programmed, gateway_generation),
                ],
                "listeners": listeners,
            });
            self.write_status(resources::GATEWAYS, gateway, status);
        }
    }

    /// Writes `status` (conditions not yet stamped) as the object's whole status through `/status`, unless the object
    /// says that already.
    fn write_status(&self, resource: ResourceId, object: &Value, mut status: Value) {
        let previous = object.get("status").cloned().unwrap_or(Value::Null);
        let now = crate::clock::now();
        stamp_conditions(status.get_mut("conditions"), previous.get("conditions"), &now);
        if let Some(listeners) = status.get_mut("listeners").and_then(Value::as_array_mut) {
            for listener in listeners {
                let old = previous
                    .get("listeners")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|old| old["name"] == listener["name"]);
                stamp_conditions(listener.get_mut("conditions"), old.and_then(|old| old.get("conditions")), &now);
            }
        }
        if status == previous {
            return;
        }
        let (namespace, name) = key_of(object);
        let _ = self.store.modify(resource, &namespace, &name, WriteScope::Status, None, |current| {
            current["status"] = status;
            Ok(())
        });
    }
}

/// The route kinds a listener of this protocol takes, as Istio lists them.
fn supported_kinds(protocol: &str) -> Value {
    match protocol {
        "HTTP" | "HTTPS" => json!([{ "group": GROUP, "kind": "HTTPRoute" }, { "group": GROUP, "kind": "GRPCRoute" }]),
        "TCP" => json!([{ "group": GROUP, "kind": "TCPRoute" }]),
        "TLS" => json!([{ "group": GROUP, "kind": "TLSRoute" }]),
        _ => json!([]),
    }
}

/// The route's status entries and accepting parents, as things stand.
fn evaluate(snapshot: &Snapshot, route: &Value) -> Evaluation {
    let namespace = text(route, "/metadata/namespace");
    let route_generation = generation(route);
    let hostnames: Vec<&str> = route
        .pointer("/spec/hostnames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let unresolved = unresolved_references(snapshot, route, namespace);
    let mut entries = Vec::new();
    let mut attached = Vec::new();
    for reference in route.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten() {
        let parent = ParentReference::read(reference, namespace);
        let key = (parent.namespace.clone(), parent.name.clone());
        let accepted: Result<Vec<String>, Refusal> = match parent.kind {
            ParentKind::Other => continue,
            ParentKind::Service if snapshot.services.contains(&key) => Ok(Vec::new()),
            ParentKind::Service => {
                Err(Refusal::new(NO_MATCHING_PARENT, format!("parent service: {:?} not found", parent.name)))
            }
            ParentKind::Gateway => match snapshot.gateways.get(&key) {
                None => Err(Refusal::new(NO_MATCHING_PARENT, format!("parent gateway: {:?} not found", parent.name))),
                Some(gateway) if !snapshot.is_istio(gateway) => continue,
                Some(gateway) => attach(snapshot, gateway, &parent, namespace, &hostnames),
            },
        };
        let accepted_condition = match &accepted {
            Ok(listeners) if listeners.len() > 1 => {
                let message = format!("Route was valid, bound to {} parents", listeners.len());
                condition("Accepted", true, "Accepted", &message, route_generation)
            }
            Ok(_) => condition("Accepted", true, "Accepted", "Route was valid", route_generation),
            Err(refusal) => condition("Accepted", false, refusal.reason, &refusal.message, route_generation),
        };
        let resolved_condition = match &unresolved {
            None => condition("ResolvedRefs", true, "ResolvedRefs", "All references resolved", route_generation),
            Some(refusal) => condition("ResolvedRefs", false, refusal.reason, &refusal.message, route_generation),
        };
        entries.push(json!({
            "parentRef": reference,
            "controllerName": CONTROLLER_NAME,
            "conditions": [accepted_condition, resolved_condition],
        }));
        if let Ok(listeners) = accepted {
            attached.push(AttachedParent {
                kind: parent.kind,
                namespace: parent.namespace,
                name: parent.name,
                listeners,
            });
        }
    }
    Evaluation { entries, attached }
}

/// The listeners of an Istio Gateway that take the route, or why none does: the most relevant kind of refusal
/// (listeners not allowing it before hostnames that do not match before a port or sectionName that names no
/// listener, as Istio ranks them), the messages of that kind joined.
fn attach(
    snapshot: &Snapshot,
    gateway: &Value,
    parent: &ParentReference,
    route_namespace: &str,
    hostnames: &[&str],
) -> Result<Vec<String>, Refusal> {
    let gateway_namespace = text(gateway, "/metadata/namespace");
    let mut bound = Vec::new();
    let mut refusals: Vec<Refusal> = Vec::new();
    for listener in gateway.pointer("/spec/listeners").and_then(Value::as_array).into_iter().flatten() {
        let name = text(listener, "/name");
        let listener_hostname = text(listener, "/hostname");
        if let Some(port) = parent.port
            && listener.get("port").and_then(Value::as_u64) != Some(port)
        {
            refusals.push(Refusal::new(NO_MATCHING_PARENT, format!("port {port} not found")));
            continue;
        }
        if let Some(section) = &parent.section_name
            && section != name
        {
            refusals.push(Refusal::new(NO_MATCHING_PARENT, format!("sectionName {section:?} not found")));
            continue;
        }
        let hostname_matches = listener_hostname.is_empty()
            || hostnames.is_empty()
            || hostnames.iter().any(|hostname| hostnames_match(listener_hostname, hostname));
        if !hostname_matches {
            let message = format!("no hostnames matched parent hostname {listener_hostname:?}");
            refusals.push(Refusal::new(NO_MATCHING_LISTENER_HOSTNAME, message));
            continue;
        }
        if !namespace_allowed(snapshot, listener, gateway_namespace, route_namespace) {
            let message = format!(
                "hostnames matched parent hostname {listener_hostname:?}, but namespace {route_namespace:?} is not allowed by the parent"
            );
            refusals.push(Refusal::new(NOT_ALLOWED_BY_LISTENERS, message));
            continue;
        }
        if !takes_http_routes(listener) {
            refusals.push(Refusal::new(NOT_ALLOWED_BY_LISTENERS, format!("kind {GROUP}/v1/HTTPRoute is not allowed")));
            continue;
        }
        bound.push(name.to_owned());
    }
    if !bound.is_empty() {
        return Ok(bound);
    }
    let reason = [NOT_ALLOWED_BY_LISTENERS, NO_MATCHING_LISTENER_HOSTNAME, NO_MATCHING_PARENT]
        .into_iter()
        .find(|reason| refusals.iter().any(|refusal| refusal.reason == *reason))
        .unwrap_or(NO_MATCHING_PARENT);
    let messages: Vec<&str> =
        refusals.iter().filter(|refusal| refusal.reason == reason).map(|refusal| refusal.message.as_str()).collect();
    let message = if messages.is_empty() { "no listeners".to_owned() } else { messages.join("; ") };
    Err(Refusal { reason, message })
}

/// Whether a listener's `allowedRoutes.namespaces` admits routes of `route_namespace`: `Same` (the default), `All`,
/// or `Selector` (the namespace's labels).
fn namespace_allowed(snapshot: &Snapshot, listener: &Value, gateway_namespace: &str, route_namespace: &str) -> bool {
    match listener.pointer("/allowedRoutes/namespaces/from").and_then(Value::as_str).unwrap_or("Same") {
        "All" => true,
        "Selector" => {
            let none = Value::Null;
            let selector = listener.pointer("/allowedRoutes/namespaces/selector").unwrap_or(&none);
            snapshot
                .namespaces
                .get(route_namespace)
                .is_some_and(|namespace| LabelSelector::from_object(selector).matches(namespace))
        }
        _ => gateway_namespace == route_namespace,
    }
}

/// Whether a listener takes HTTPRoutes: an HTTP or HTTPS listener whose `allowedRoutes.kinds`, if any, name them.
fn takes_http_routes(listener: &Value) -> bool {
    let kinds =
        listener.pointer("/allowedRoutes/kinds").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    matches!(text(listener, "/protocol"), "HTTP" | "HTTPS")
        && (kinds.is_empty()
            || kinds.iter().any(|kind| {
                kind.get("group").and_then(Value::as_str).unwrap_or(GROUP) == GROUP
                    && text(kind, "/kind") == "HTTPRoute"
            }))
}

/// Why the route's backendRefs (those of weight above 0: Istio builds no destination for the others) do not all
/// resolve, if they do not: the first problem's reason, every distinct message joined by `; `.
fn unresolved_references(snapshot: &Snapshot, route: &Value, namespace: &str) -> Option<Refusal> {
    let mut problems: Vec<Refusal> = Vec::new();
    for rule in route.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten() {
        for backend in backend_references(rule, namespace).into_iter().filter(|backend| backend.weight > 0) {
            let problem = if backend.namespace != namespace {
                Refusal::new(
                    "RefNotPermitted",
                    format!(
                        "backendRef {}/{} not accessible to a HTTPRoute in namespace {namespace:?} (missing a ReferenceGrant?)",
                        backend.name, backend.namespace
                    ),
                )
            } else if !backend.is_service() {
                Refusal::new(
                    "InvalidKind",
                    format!("referencing unsupported backendRef: group {:?} kind {:?}", backend.group, backend.kind),
                )
            } else if !snapshot.services.contains(&(backend.namespace.clone(), backend.name.clone())) {
                Refusal::new("BackendNotFound", format!("backend({}) not found", backend.hostname()))
            } else {
                continue;
            };
            if !problems.iter().any(|known| known.message == problem.message) {
                problems.push(problem);
            }
        }
    }
    let reason = problems.first()?.reason;
    let messages: Vec<&str> = problems.iter().map(|problem| problem.message.as_str()).collect();
    Some(Refusal { reason, message: messages.join("; ") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::AdmissionConfig;
    use crate::resources::{GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES, NAMESPACES, SERVICES};

    const DELAY: Duration = crate::gateway_api::DEFAULT_STATUS_DELAY;

    fn cluster() -> (Arc<Store>, GatewayController) {
        let store = Arc::new(Store::new(1_000, AdmissionConfig::default()));
        store.create(NAMESPACES, "", json!({ "metadata": { "name": "bookinfo" } }), None).unwrap();
        store
            .create(NAMESPACES, "", json!({ "metadata": { "name": "other", "labels": { "shared": "yes" } } }), None)
            .unwrap();
        for name in ["reviews", "reviews-v1", "reviews-v2"] {
            let service = json!({ "metadata": { "name": name }, "spec": { "selector": { "app": "reviews" }, "ports": [{ "port": 9080 }] } });
            store.create(SERVICES, "bookinfo", service, None).unwrap();
        }
        let class = json!({ "metadata": { "name": "istio" }, "spec": { "controllerName": CONTROLLER_NAME } });
        store.create(GATEWAY_CLASSES, "", class, None).unwrap();
        let other = json!({ "metadata": { "name": "other" }, "spec": { "controllerName": "example.com/other" } });
        store.create(GATEWAY_CLASSES, "", other, None).unwrap();
        let gateway = |name: &str, class: &str| {
            json!({ "metadata": { "name": name }, "spec": { "gatewayClassName": class, "listeners": [
                { "name": "http", "port": 80, "protocol": "HTTP" }
            ] } })
        };
        store.create(GATEWAYS, "bookinfo", gateway("bookinfo-gateway", "istio"), None).unwrap();
        store.create(GATEWAYS, "bookinfo", gateway("foreign-gateway", "other"), None).unwrap();
        let controller = GatewayController::new(store.clone(), &GatewayApiSettings::default());
        (store, controller)
    }

    fn route(name: &str, parents: Value, backends: Value) -> Value {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": { "name": name },
            "spec": { "parentRefs": parents, "rules": [{ "name": "primary", "backendRefs": backends }] },
        })
    }

    fn mesh_parent() -> Value {
        json!([{ "group": "", "kind": "Service", "name": "reviews", "port": 9080 }])
    }

    fn backend(name: &str, weight: u64) -> Value {
        json!({ "name": name, "port": 9080, "weight": weight })
    }

    /// The route's conditions for its parent `index`: `(type, status, reason, message)`.
    fn conditions(store: &Store, namespace: &str, name: &str, index: usize) -> Vec<(String, String, String, String)> {
        let route = store.get(HTTP_ROUTES, namespace, name).unwrap();
        route["status"]["parents"][index]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|condition| {
                let field = |key: &str| condition[key].as_str().unwrap_or_default().to_owned();
                (field("type"), field("status"), field("reason"), field("message"))
            })
            .collect()
    }

    fn owned(items: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
        items.iter().map(|(a, b, c, d)| ((*a).into(), (*b).into(), (*c).into(), (*d).into())).collect()
    }

    #[test]
    fn a_route_is_accepted_after_the_delay_and_programs_the_data_plane() {
        let (store, controller) = cluster();
        let created = store
            .create(HTTP_ROUTES, "bookinfo", route("reviews", mesh_parent(), json!([backend("reviews-v1", 1)])), None)
            .unwrap();
        let start = Instant::now();
        controller.reconcile(start);
        assert!(
            store
                .get(HTTP_ROUTES, "bookinfo", "reviews")
                .unwrap()
                .get("status")
                .is_none_or(|status| status.get("parents").is_none())
        );
        assert!(controller.data_plane().get("bookinfo", "reviews").is_none(), "not programmed before the delay");

        controller.reconcile(start + DELAY);
        let written = store.get(HTTP_ROUTES, "bookinfo", "reviews").unwrap();
        assert_eq!(
            conditions(&store, "bookinfo", "reviews", 0),
            owned(&[
                ("Accepted", "True", "Accepted", "Route was valid"),
                ("ResolvedRefs", "True", "ResolvedRefs", "All references resolved"),
            ])
        );
        let parent = &written["status"]["parents"][0];
        assert_eq!(parent["controllerName"], CONTROLLER_NAME);
        assert_eq!(parent["parentRef"], mesh_parent()[0]);
        assert_eq!(parent["conditions"][0]["observedGeneration"], 1);
        assert!(parent["conditions"][0]["lastTransitionTime"].is_string());
        assert_eq!(written["metadata"]["generation"], 1, "a status write keeps the generation");
        assert_ne!(written["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
        let programmed = controller.data_plane().get("bookinfo", "reviews").unwrap();
        assert!(programmed.attached_to(ParentKind::Service, "bookinfo", "reviews"));
        assert_eq!(controller.data_plane().routes_for_service("bookinfo", "reviews").len(), 1);

        let version = written["metadata"]["resourceVersion"].clone();
        controller.reconcile(start + DELAY * 3);
        let again = store.get(HTTP_ROUTES, "bookinfo", "reviews").unwrap();
        assert_eq!(again["metadata"]["resourceVersion"], version, "an up-to-date status is not written again");
    }

    #[test]
    fn missing_backends_and_parents_are_reported_with_istios_reasons() {
        let (store, controller) = cluster();
        let parents = json!([
            { "group": "", "kind": "Service", "name": "reviews" },
            { "group": "", "kind": "Service", "name": "ratings" },
            { "name": "missing-gateway" },
            { "name": "foreign-gateway" },
            { "name": "bookinfo-gateway", "sectionName": "https" },
        ]);
        let backends = json!([
            backend("reviews-v1", 90),
            backend("reviews-v3", 10),
            backend("reviews-v4", 0),
            { "group": "example.com", "kind": "Bucket", "name": "b" },
            { "name": "reviews", "namespace": "other", "port": 9080 },
        ]);
        store.create(HTTP_ROUTES, "bookinfo", route("reviews", parents, backends), None).unwrap();
        let start = Instant::now();
        controller.reconcile(start);
        controller.reconcile(start + DELAY);
        let written = store.get(HTTP_ROUTES, "bookinfo", "reviews").unwrap();
        assert_eq!(
            written["status"]["parents"].as_array().unwrap().len(),
            4,
            "no entry for another controller's gateway"
        );
        let resolved = (
            "ResolvedRefs",
            "False",
            "BackendNotFound",
            "backend(reviews-v3.bookinfo.svc.cluster.local) not found; referencing unsupported backendRef: group \"example.com\" kind \"Bucket\"; backendRef reviews/other not accessible to a HTTPRoute in namespace \"bookinfo\" (missing a ReferenceGrant?)",
        );
        assert_eq!(
            conditions(&store, "bookinfo", "reviews", 0),
            owned(&[("Accepted", "True", "Accepted", "Route was valid"), resolved])
        );
        assert_eq!(
            conditions(&store, "bookinfo", "reviews", 1)[0],
            owned(&[("Accepted", "False", "NoMatchingParent", "parent service: \"ratings\" not found")])[0]
        );
        assert_eq!(
            conditions(&store, "bookinfo", "reviews", 2)[0],
            owned(&[("Accepted", "False", "NoMatchingParent", "parent gateway: \"missing-gateway\" not found")])[0]
        );
        assert_eq!(
            conditions(&store, "bookinfo", "reviews", 3)[0],
            owned(&[("Accepted", "False", "NoMatchingParent", "sectionName \"https\" not found")])[0]
        );
        let programmed = controller.data_plane().get("bookinfo", "reviews").unwrap();
        assert_eq!(programmed.parents.len(), 1, "only the Service reviews accepted it");
    }

    #[test]
    fn listeners_admit_routes_of_their_namespace_or_of_selected_namespaces() {
        let (store, controller) = cluster();
        let parents = json!([{ "name": "bookinfo-gateway", "namespace": "bookinfo" }]);
        store.create(HTTP_ROUTES, "other", route("shared", parents, json!([])), None).unwrap();
        let start = Instant::now();
        controller.reconcile(start);
        controller.reconcile(start + DELAY);
        assert_eq!(
            conditions(&store, "other", "shared", 0)[0],
            owned(&[(
                "Accepted",
                "False",
                "NotAllowedByListeners",
                "hostnames matched parent hostname \"\", but namespace \"other\" is not allowed by the parent"
            )])[0]
        );
        assert!(controller.data_plane().routes_for_gateway("bookinfo", "bookinfo-gateway").is_empty());
        let gateway = store.get(GATEWAYS, "bookinfo", "bookinfo-gateway").unwrap();
        assert_eq!(gateway["status"]["listeners"][0]["attachedRoutes"], 0);

        store
            .modify(GATEWAYS, "bookinfo", "bookinfo-gateway", WriteScope::Main, None, |gateway| {
                gateway["spec"]["listeners"][0]["allowedRoutes"] =
                    json!({ "namespaces": { "from": "Selector", "selector": { "matchLabels": { "shared": "yes" } } } });
                Ok(())
            })
            .unwrap();
        let later = start + DELAY * 2;
        controller.reconcile(later);
        assert_eq!(conditions(&store, "other", "shared", 0)[0].2, "NotAllowedByListeners", "not before the delay");
        controller.reconcile(later + DELAY);
        assert_eq!(conditions(&store, "other", "shared", 0)[0].1, "True");
        assert_eq!(controller.data_plane().routes_for_gateway("bookinfo", "bookinfo-gateway").len(), 1);
        let gateway = store.get(GATEWAYS, "bookinfo", "bookinfo-gateway").unwrap();
        assert_eq!(gateway["status"]["listeners"][0]["attachedRoutes"], 1);
        assert_eq!(gateway["status"]["addresses"][0]["value"], "bookinfo-gateway-istio.bookinfo.svc.cluster.local");
        assert_eq!(gateway["status"]["conditions"][1]["type"], "Programmed");
        let foreign = store.get(GATEWAYS, "bookinfo", "foreign-gateway").unwrap();
        assert!(foreign.get("status").is_none_or(|status| status.get("conditions").is_none()), "not Istio's gateway");
        let class = store.get(GATEWAY_CLASSES, "", "istio").unwrap();
        assert_eq!(class["status"]["conditions"][0]["message"], "Handled by Istio controller");
    }

    #[test]
    fn a_spec_change_takes_effect_when_its_status_is_written() {
        let (store, controller) = cluster();
        let backends = json!([backend("reviews-v1", 100), backend("reviews-v2", 0)]);
        store.create(HTTP_ROUTES, "bookinfo", route("reviews", mesh_parent(), backends), None).unwrap();
        let start = Instant::now();
        controller.reconcile(start);
        controller.reconcile(start + DELAY);
        let first = store.get(HTTP_ROUTES, "bookinfo", "reviews").unwrap();
        let accepted_at = first["status"]["parents"][0]["conditions"][0]["lastTransitionTime"].clone();

        let changed = store
            .modify(HTTP_ROUTES, "bookinfo", "reviews", WriteScope::Main, None, |route| {
                route["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(10);
                Ok(())
            })
            .unwrap();
        assert_eq!(changed["metadata"]["generation"], 2);
        let later = start + DELAY * 2;
        controller.reconcile(later);
        let pending = store.get(HTTP_ROUTES, "bookinfo", "reviews").unwrap();
        assert_eq!(pending["status"]["parents"][0]["conditions"][0]["observedGeneration"], 1);
        let programmed = controller.data_plane().get("bookinfo", "reviews").unwrap();
        assert_eq!(programmed.generation, 1, "the data plane keeps the processed spec until the status is written");
        assert_eq!(programmed.spec["rules"][0]["backendRefs"][1]["weight"], 0);

        controller.reconcile(later + DELAY);
        let written = store.get(HTTP_ROUTES, "bookinfo", "reviews").unwrap();
        assert_eq!(written["status"]["parents"][0]["conditions"][0]["observedGeneration"], 2);
        assert_eq!(written["status"]["parents"][0]["conditions"][1]["observedGeneration"], 2);
        assert_eq!(written["metadata"]["generation"], 2);
        assert_eq!(
            written["status"]["parents"][0]["conditions"][0]["lastTransitionTime"], accepted_at,
            "a condition whose status did not change keeps its transition time"
        );
        let programmed = controller.data_plane().get("bookinfo", "reviews").unwrap();
        assert_eq!(programmed.generation, 2);
        assert_eq!(programmed.spec["rules"][0]["backendRefs"][1]["weight"], 10);

        store.remove(HTTP_ROUTES, "bookinfo", "reviews");
        let gone = later + DELAY * 2;
        controller.reconcile(gone);
        assert!(controller.data_plane().get("bookinfo", "reviews").is_some(), "withdrawn after the delay");
        controller.reconcile(gone + DELAY);
        assert!(controller.data_plane().get("bookinfo", "reviews").is_none());
    }

    #[test]
    fn the_gateway_api_example_scenario_is_accepted() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sim/bookinfo-gateway-api.yaml");
        let scenario = crate::scenario::Scenario::load(&path).unwrap();
        let store = Arc::new(Store::new(1_000, AdmissionConfig::default()));
        for object in &scenario.objects {
            let resource = crate::resources::all()
                .find(|(_, resource)| object["kind"] == resource.kind)
                .map(|(id, _)| id)
                .unwrap();
            let namespace = if resource.resource_type().namespaced { "bookinfo" } else { "" };
            store.create(resource, namespace, object.clone(), None).unwrap();
        }
        let controller = GatewayController::new(store.clone(), &scenario.gateway_api.clone().unwrap_or_default());
        let start = Instant::now();
        controller.reconcile(start);
        controller.reconcile(start + Duration::from_secs(1));
        assert_eq!(
            conditions(&store, "bookinfo", "reviews", 0),
            owned(&[
                ("Accepted", "True", "Accepted", "Route was valid"),
                ("ResolvedRefs", "True", "ResolvedRefs", "All references resolved"),
            ])
        );
        let class = store.get(GATEWAY_CLASSES, "", "istio").unwrap();
        assert_eq!(class["status"]["conditions"][0]["status"], "True");
        let gateway = store.get(GATEWAYS, "bookinfo", "bookinfo-gateway").unwrap();
        assert_eq!(gateway["status"]["conditions"][0]["status"], "True");
    }
}
