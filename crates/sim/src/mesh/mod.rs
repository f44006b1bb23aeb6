//! The mesh: requests to each service of the scenario's traffic, routed as Istio's proxies route them, answered by
//! the Ready pods they reach with each pod's error rate and latency, and counted in Istio's metrics.
//!
//! A kind of request to Service S of namespace N takes, in this order: the VirtualService for host S in N (the
//! first http route whose `match` holds, split by its weighted destinations over the DestinationRule's subsets);
//! else the HTTPRoutes of N that Service S accepted (GAMMA); else, for a request that names a Gateway, the
//! HTTPRoutes that Gateway accepted; else every Ready pod of S. HTTPRoutes route as Istio's gateway controller last
//! processed them (see [`crate::gateway_api`]): the rule of highest precedence, split by its backendRefs' weights
//! over backend Services, each reaching the Ready pods its selector selects. Istio leaves a VirtualService and an
//! HTTPRoute for the same host undefined; here the VirtualService wins.
//!
//! (Over 500 lines with its unit tests; the code, about 520 lines, is one request's path through both providers'
//! routing, the pods and the telemetry labels, which share its `Target` and `Destination`; matching is in `routing`.)
//!
//! ```text
//! traffic (rps, kinds of request)
//!   ├─ VirtualService for S ─▶ route by match ─weights─▶ subset ─DestinationRule labels─▶ Ready pods
//!   │    no route matches: 404 NR ◀──┘    subset not defined: 503 NC ◀─┘       none Ready: 503 UH ◀─┘
//!   └─ else HTTPRoutes of S (GAMMA), or of the request's Gateway ─▶ rule by precedence ─weights─▶ backend Service
//!        no rule matches: 404 NR ◀──┘  all weights 0: 500 ◀──┘  no such Service: 500 NC ◀──┘ ─selector─▶ Ready pods
//!                                                                                        none Ready: 503 UH ◀──┘
//!   (the client proxy reports what is not delivered; a waypoint in ambient namespaces)
//!   behaviour of the pod's image: error rate, latency ─▶ istio_* metrics, reporter destination (waypoint in ambient)
//! ```

pub mod routing;
pub mod telemetry;

use crate::gateway_api::data_plane::{DataPlane, ProgrammedRoute};
use crate::gateway_api::{backend_references, matching};
use crate::resources;
use crate::scenario::{Scenario, TrafficSource};
use crate::store::Store;
use routing::RequestKind;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use telemetry::{RequestLabels, Telemetry};
use tokio::sync::watch;

/// How often traffic is generated.
pub const TICK: Duration = Duration::from_millis(250);

/// Most requests simulated one by one per tick per service (larger rates are sampled).
const MAX_REQUESTS_PER_TICK: usize = 20_000;

/// Where a destination's requests go.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// The traffic source's Service, narrowed to a DestinationRule subset (none: every Ready pod of it).
    Subset(Option<String>),
    /// A backend Service of an HTTPRoute rule. `permitted` is false for a reference Istio does not serve (another
    /// namespace without a ReferenceGrant, a kind other than Service): its requests are answered 500.
    Backend {
        /// The Service's namespace.
        namespace: String,
        /// The Service's name.
        name: String,
        /// Whether the reference may be served at all.
        permitted: bool,
    },
}

/// One weighted destination of a route.
#[derive(Debug, Clone, PartialEq)]
struct Destination {
    target: Target,
    weight: f64,
}

/// Where one kind of request goes.
#[derive(Debug, Clone, PartialEq)]
enum Routing {
    /// No http route or HTTPRoute rule matches it: 404 `NR`.
    NoRoute,
    /// The matched route's destinations (none: a VirtualService route that sends it to other hosts only).
    To(Vec<Destination>),
    /// An HTTPRoute rule whose backendRefs all weigh 0, or that has none: the proxy answers 500 itself.
    DirectResponse,
}

/// The Service requests are counted against in the metrics, and who reports them.
#[derive(Debug, Clone, Copy)]
struct Counted<'a> {
    /// The Service's name.
    service: &'a str,
    /// Its namespace.
    namespace: &'a str,
    /// Whether that namespace is in Istio's ambient mode: its waypoint reports, not sidecars.
    ambient: bool,
}

/// Whether a host names the service: `reviews`, `reviews.<ns>`, `reviews.<ns>.svc` or the FQDN.
fn host_matches(host: &str, service: &str, namespace: &str) -> bool {
    host == service
        || host == format!("{service}.{namespace}")
        || host == format!("{service}.{namespace}.svc")
        || host == format!("{service}.{namespace}.svc.cluster.local")
}

/// Whether an object carries every label of `labels`.
fn has_labels(object: &Value, labels: &Map<String, Value>) -> bool {
    labels
        .iter()
        .all(|(key, value)| object.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1"))) == Some(value))
}

/// Where the requests of `kind` go by the HTTPRoutes `routes`: the rule of highest precedence, split over its
/// backendRefs of weight above 0.
fn http_route_routing(routes: &[Arc<ProgrammedRoute>], kind: &RequestKind) -> Routing {
    let Some((route, rule)) = matching::select_rule(routes, kind) else { return Routing::NoRoute };
    let destinations: Vec<Destination> = backend_references(rule, &route.namespace)
        .into_iter()
        .filter(|backend| backend.weight > 0)
        .map(|backend| Destination {
            weight: backend.weight as f64,
            target: Target::Backend {
                permitted: backend.is_service() && backend.namespace == route.namespace,
                namespace: backend.namespace,
                name: backend.name,
            },
        })
        .collect();
    if destinations.is_empty() { Routing::DirectResponse } else { Routing::To(destinations) }
}

/// Requests one workload served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Every request.
    pub requests: u64,
    /// Those answered 5xx.
    pub failed: u64,
}

/// The traffic generator and its metrics.
pub struct Mesh {
    store: Arc<Store>,
    scenario: Arc<Scenario>,
    /// The HTTPRoutes Istio's gateway controller processed.
    data_plane: Arc<DataPlane>,
    /// The metrics served on `/metrics`.
    pub telemetry: Telemetry,
    carry: Mutex<HashMap<String, f64>>,
    served: Mutex<HashMap<String, Served>>,
    /// Requests the mesh could not deliver, by `namespace/flag` (`NR`, `NC`, `UH`, `-`).
    undelivered: Mutex<HashMap<String, u64>>,
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

impl Mesh {
    /// A mesh over the store, with the scenario's traffic and behaviours, routing by the HTTPRoutes `data_plane`
    /// holds (the gateway controller's, [`crate::cluster::Cluster::gateway_data_plane`]).
    pub fn new(store: Arc<Store>, scenario: Arc<Scenario>, data_plane: Arc<DataPlane>) -> Mesh {
        Mesh {
            store,
            scenario,
            data_plane,
            telemetry: Telemetry::default(),
            carry: Mutex::new(HashMap::new()),
            served: Mutex::new(HashMap::new()),
            undelivered: Mutex::new(HashMap::new()),
        }
    }

    /// What the pods of `workload` (a Deployment name) in `namespace` served so far: exact counts, as the
    /// generator produced them (Istio's counters carry the same numbers).
    pub fn served(&self, namespace: &str, workload: &str) -> Served {
        let served = self.served.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        served.get(&format!("{namespace}/{workload}")).copied().unwrap_or_default()
    }

    /// Requests to services of `namespace` the mesh could not deliver so far, with Envoy's response flag `flag`:
    /// `NR` (no route matched: 404), `NC` (the route's subset is not defined: 503; an HTTPRoute backend that is not
    /// a Service here: 500), `UH` (no Ready pod: 503), `-` (an HTTPRoute rule whose backends all weigh 0: 500).
    pub fn undelivered(&self, namespace: &str, flag: &str) -> u64 {
        let undelivered = self.undelivered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        undelivered.get(&format!("{namespace}/{flag}")).copied().unwrap_or_default()
    }

    /// Counts `requests` that could not be delivered, in Istio's metrics (reported by the client's proxy, or the
    /// waypoint) and here.
    fn undeliverable(&self, source: &TrafficSource, counted: &Counted<'_>, code: &str, flag: &str, requests: u64) {
        let labels = self.labels(source, counted, None, code, flag);
        self.telemetry.requests.get_or_create(&labels).inc_by(requests);
        let mut undelivered = self.undelivered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *undelivered.entry(format!("{}/{flag}", source.namespace)).or_default() += requests;
    }

    /// Whether the namespace is in Istio's ambient mode (`istio.io/dataplane-mode: ambient`).
    fn is_ambient(&self, namespace: &str) -> bool {
        self.store
            .get(resources::NAMESPACES, "", namespace)
            .is_some_and(|object| text(&object, "/metadata/labels/istio.io~1dataplane-mode") == "ambient")
    }

    /// The Ready pods of `namespace` that carry every label of `selector`.
    fn ready_pods(&self, namespace: &str, selector: &Map<String, Value>) -> Vec<Arc<Value>> {
        let (pods, _) = self.store.list(resources::PODS, Some(namespace), |pod| {
            pod.pointer("/metadata/deletionTimestamp").is_none()
                && crate::cluster::is_ready_pod(pod)
                && has_labels(pod, selector)
        });
        pods
    }

    /// Generates `elapsed` worth of traffic.
    pub fn tick(&self, elapsed: Duration) {
        for source in &self.scenario.traffic {
            let count = {
                let mut carry = self.carry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let key = format!("{}/{}", source.namespace, source.service);
                let total = carry.get(&key).copied().unwrap_or(0.0)
                    + source.requests_per_second.max(0.0) * elapsed.as_secs_f64();
                let whole = total.floor();
                carry.insert(key, total - whole);
                whole as usize
            };
            if count > 0 {
                self.serve(source, count);
            }
        }
    }

    /// Where each kind of the source's requests goes: by the VirtualService for the service's host, else by the
    /// HTTPRoutes of the Service (GAMMA), else by those of the Gateway the kind names, else to every Ready pod.
    fn routing(&self, source: &TrafficSource, kinds: &[RequestKind]) -> Vec<Routing> {
        let host_matches = |host: &str| host_matches(host, &source.service, &source.namespace);
        let (services, _) = self.store.list(resources::VIRTUAL_SERVICES, Some(&source.namespace), |service| {
            routing::applies_to_mesh(service)
                && service
                    .pointer("/spec/hosts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(host_matches)
        });
        let Some(virtual_service) = services.first() else {
            let mesh_routes = self.data_plane.routes_for_service(&source.namespace, &source.service);
            return kinds.iter().map(|kind| self.gateway_api_routing(source, &mesh_routes, kind)).collect();
        };
        let labels = BTreeMap::from([("app".to_owned(), "loadgenerator".to_owned())]);
        let client =
            routing::Source { namespace: &source.namespace, labels: &labels, host: &source.service, port: 9080 };
        kinds
            .iter()
            .map(|kind| {
                let Some(route) = routing::select_route(virtual_service, kind, &client) else {
                    return Routing::NoRoute;
                };
                let entries = route.get("route").and_then(Value::as_array).cloned().unwrap_or_default();
                let single = entries.len() == 1;
                let destinations: Vec<Destination> = entries
                    .iter()
                    .filter(|entry| host_matches(text(entry, "/destination/host")))
                    .map(|entry| Destination {
                        target: Target::Subset(
                            entry.pointer("/destination/subset").and_then(Value::as_str).map(str::to_owned),
                        ),
                        weight: if single {
                            1.0
                        } else {
                            entry.get("weight").and_then(Value::as_f64).unwrap_or(0.0).max(0.0)
                        },
                    })
                    .filter(|destination| destination.weight > 0.0)
                    .collect();
                Routing::To(destinations)
            })
            .collect()
    }

    /// Where a kind of request goes when no VirtualService routes it: by the Service's HTTPRoutes (`mesh_routes`),
    /// else by those of the Gateway it names (for its Host header), else to every Ready pod of the Service.
    fn gateway_api_routing(
        &self,
        source: &TrafficSource,
        mesh_routes: &[Arc<ProgrammedRoute>],
        kind: &RequestKind,
    ) -> Routing {
        if !mesh_routes.is_empty() {
            return http_route_routing(mesh_routes, kind);
        }
        if let Some(gateway) = &kind.gateway {
            let (namespace, name) = gateway.split_once('/').unwrap_or((source.namespace.as_str(), gateway.as_str()));
            let host =
                kind.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case("host")).map(|(_, value)| value.as_str());
            let routes: Vec<Arc<ProgrammedRoute>> = self
                .data_plane
                .routes_for_gateway(namespace, name)
                .into_iter()
                .filter(|route| matching::serves_host(route, host))
                .collect();
            if !routes.is_empty() {
                return http_route_routing(&routes, kind);
            }
        }
        Routing::To(vec![Destination { target: Target::Subset(None), weight: 1.0 }])
    }

    fn serve(&self, source: &TrafficSource, count: usize) {
        let default_kind = [RequestKind::default()];
        let kinds: &[RequestKind] = if source.requests.is_empty() { &default_kind } else { &source.requests };
        let kind_weights: f64 = kinds.iter().map(|kind| kind.weight.max(0.0)).sum();
        if kind_weights <= 0.0 {
            return;
        }
        let routings = self.routing(source, kinds);
        let selector = self
            .store
            .get(resources::SERVICES, &source.namespace, &source.service)
            .and_then(|service| service.pointer("/spec/selector").and_then(Value::as_object).cloned())
            .unwrap_or_else(|| Map::from_iter([("app".to_owned(), Value::String(source.service.clone()))]));
        let pods = self.ready_pods(&source.namespace, &selector);
        let rules = self.store.list(resources::DESTINATION_RULES, Some(&source.namespace), |rule| {
            host_matches(text(rule, "/spec/host"), &source.service, &source.namespace)
        });
        let subset_labels = |name: &str| -> Option<Map<String, Value>> {
            rules.0.iter().find_map(|rule| {
                rule.pointer("/spec/subsets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|subset| subset["name"] == name)
                    .map(|subset| subset.get("labels").and_then(Value::as_object).cloned().unwrap_or_default())
            })
        };
        let simulated = count.min(MAX_REQUESTS_PER_TICK);
        let scale = count as f64 / simulated as f64;
        // Requests by (kind, destination); a kind without a route counts under destination `usize::MAX`.
        let mut by_destination: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        for _ in 0..simulated {
            let mut pick = rand::random::<f64>() * kind_weights;
            let kind = kinds
                .iter()
                .position(|kind| {
                    pick -= kind.weight.max(0.0);
                    pick < 0.0
                })
                .unwrap_or(kinds.len() - 1);
            let destination = match &routings[kind] {
                Routing::NoRoute | Routing::DirectResponse => usize::MAX,
                Routing::To(destinations) => {
                    let total: f64 = destinations.iter().map(|destination| destination.weight).sum();
                    if destinations.is_empty() || total <= 0.0 {
                        // The route sends this service's host nothing (its destinations are other hosts).
                        continue;
                    }
                    let mut pick = rand::random::<f64>() * total;
                    destinations
                        .iter()
                        .position(|destination| {
                            pick -= destination.weight;
                            pick < 0.0
                        })
                        .unwrap_or(destinations.len() - 1)
                }
            };
            *by_destination.entry((kind, destination)).or_default() += 1;
        }
        let ambient = self.is_ambient(&source.namespace);
        let to_source = Counted { service: &source.service, namespace: &source.namespace, ambient };
        for ((kind, index), requests) in by_destination {
            let scaled = (requests as f64 * scale).round() as u64;
            let destination = match &routings[kind] {
                Routing::To(destinations) if index != usize::MAX => &destinations[index],
                Routing::DirectResponse => {
                    self.undeliverable(source, &to_source, "500", "-", scaled);
                    continue;
                }
                _ => {
                    self.undeliverable(source, &to_source, "404", "NR", scaled);
                    continue;
                }
            };
            let (counted, candidates, undelivered_code, flag): (Counted<'_>, Vec<Arc<Value>>, &str, &str) =
                match &destination.target {
                    Target::Subset(None) => (to_source, pods.clone(), "503", "UH"),
                    Target::Subset(Some(subset)) => match subset_labels(subset) {
                        None => (to_source, Vec::new(), "503", "NC"),
                        Some(labels) => {
                            let selected = pods.iter().filter(|pod| has_labels(pod, &labels)).cloned().collect();
                            (to_source, selected, "503", "UH")
                        }
                    },
                    Target::Backend { namespace, name, permitted } => {
                        let ambient = if *namespace == source.namespace { ambient } else { self.is_ambient(namespace) };
                        let counted = Counted { service: name.as_str(), namespace: namespace.as_str(), ambient };
                        let service =
                            if *permitted { self.store.get(resources::SERVICES, namespace, name) } else { None };
                        match service {
                            None => (counted, Vec::new(), "500", "NC"),
                            Some(service) => {
                                let selected = match service.pointer("/spec/selector").and_then(Value::as_object) {
                                    Some(selector) if !selector.is_empty() => self.ready_pods(namespace, selector),
                                    _ => Vec::new(),
                                };
                                (counted, selected, "503", "UH")
                            }
                        }
                    }
                };
            if candidates.is_empty() {
                self.undeliverable(source, &counted, undelivered_code, flag, scaled);
                continue;
            }
            for _ in 0..requests {
                let pod = &candidates[rand::random_range(0..candidates.len())];
                let behaviour = crate::cluster::pod_behaviour(&self.scenario, pod);
                let failed = behaviour.error_rate > 0.0 && rand::random::<f64>() < behaviour.error_rate;
                let code = if failed { "500" } else { "200" };
                let labels = self.labels(source, &counted, Some(pod), code, "-");
                let latency = sample_latency(behaviour.latency_median, behaviour.latency_p99);
                let count = scale.round().max(1.0) as u64;
                {
                    let mut served = self.served.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let entry =
                        served.entry(format!("{}/{}", counted.namespace, labels.destination_workload)).or_default();
                    entry.requests += count;
                    entry.failed += if failed { count } else { 0 };
                }
                self.telemetry.requests.get_or_create(&labels).inc_by(count);
                self.telemetry.durations.get_or_create(&labels).observe(latency);
            }
        }
    }

    /// The labels of requests to `counted`'s Service: served by `pod` (reported by its sidecar, or the waypoint in
    /// ambient mode), or not delivered (`None`: reported by the client's sidecar, or the waypoint).
    fn labels(
        &self,
        source: &TrafficSource,
        counted: &Counted<'_>,
        pod: Option<&Arc<Value>>,
        code: &str,
        flags: &str,
    ) -> RequestLabels {
        let fqdn = format!("{}.{}.svc.cluster.local", counted.service, counted.namespace);
        let unknown = || "unknown".to_owned();
        let (workload, app, version, principal) = match pod {
            Some(pod) => (
                crate::cluster::workload_name(pod),
                text(pod, "/metadata/labels/app").to_owned(),
                text(pod, "/metadata/labels/version").to_owned(),
                format!("spiffe://cluster.local/ns/{}/sa/default", counted.namespace),
            ),
            None => (unknown(), unknown(), unknown(), unknown()),
        };
        let canonical_service = if pod.is_some() { app.clone() } else { unknown() };
        let canonical_revision = if pod.is_some() {
            if version.is_empty() { "latest".to_owned() } else { version.clone() }
        } else {
            unknown()
        };
        let reporter = match (counted.ambient, pod.is_some()) {
            (true, _) => "waypoint",
            (false, true) => "destination",
            (false, false) => "source",
        };
        RequestLabels {
            reporter: reporter.to_owned(),
            source_workload: "loadgenerator".into(),
            source_workload_namespace: source.namespace.clone(),
            source_principal: format!("spiffe://cluster.local/ns/{}/sa/loadgenerator", source.namespace),
            source_app: "loadgenerator".into(),
            source_version: "unknown".into(),
            source_canonical_service: "loadgenerator".into(),
            source_canonical_revision: "latest".into(),
            source_cluster: "Kubernetes".into(),
            destination_workload: workload,
            destination_workload_namespace: if pod.is_some() { counted.namespace.to_owned() } else { unknown() },
            destination_principal: principal,
            destination_app: app,
            destination_version: version,
            destination_service: fqdn,
            destination_service_name: counted.service.to_owned(),
            destination_service_namespace: counted.namespace.to_owned(),
            destination_canonical_service: canonical_service,
            destination_canonical_revision: canonical_revision,
            destination_cluster: "Kubernetes".into(),
            request_protocol: "http".into(),
            response_code: code.into(),
            response_flags: flags.into(),
            connection_security_policy: if pod.is_some() { "mutual_tls" } else { "unknown" }.into(),
        }
    }

    /// Generates traffic every [`TICK`] until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = interval.tick() => {
                    let now = Instant::now();
                    let elapsed = now - last;
                    last = now;
                    let mesh = self.clone();
                    if tokio::task::spawn_blocking(move || mesh.tick(elapsed)).await.is_err() {
                        tracing::error!("fledge-sim traffic generator panicked");
                        return;
                    }
                }
            }
        }
    }
}

/// A latency in milliseconds from a log-normal distribution with this median and 99th percentile.
fn sample_latency(median: Duration, p99: Duration) -> f64 {
    let median = median.as_secs_f64() * 1000.0;
    let p99 = (p99.as_secs_f64() * 1000.0).max(median * 1.0001);
    let sigma = (p99 / median).ln() / 2.326;
    // Box-Muller.
    let (u1, u2): (f64, f64) = (rand::random::<f64>().max(f64::MIN_POSITIVE), rand::random());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (median.ln() + sigma * z).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::AdmissionConfig;
    use crate::gateway_api::GatewayApiSettings;
    use crate::gateway_api::controller::GatewayController;
    use crate::store::WriteScope;
    use serde_json::json;

    /// Namespace bookinfo (with `labels`) holding the Services reviews (every version), reviews-v1 and reviews-v2,
    /// one Ready pod of each version, and an HTTPRoute `reviews` of the Service reviews with `rules`, processed by the
    /// gateway controller; a mesh sending 20 000 requests per second to reviews (`requests`: the YAML of the kinds).
    fn routed(labels: Value, rules: Value, requests: &str) -> (Arc<Store>, GatewayController, Mesh) {
        let store = Arc::new(Store::new(1_000, AdmissionConfig::default()));
        let namespace = json!({ "metadata": { "name": "bookinfo", "labels": labels } });
        store.create(resources::NAMESPACES, "", namespace, None).unwrap();
        let service = |name: &str, selector: Value| json!({ "metadata": { "name": name }, "spec": { "selector": selector, "ports": [{ "port": 9080 }] } });
        store.create(resources::SERVICES, "bookinfo", service("reviews", json!({ "app": "reviews" })), None).unwrap();
        for version in ["v1", "v2"] {
            let selector = json!({ "app": "reviews", "version": version });
            store
                .create(resources::SERVICES, "bookinfo", service(&format!("reviews-{version}"), selector), None)
                .unwrap();
            let pod = json!({
                "metadata": { "name": format!("reviews-{version}"), "labels": { "app": "reviews", "version": version } },
                "spec": { "containers": [{ "name": "reviews", "image": "registry.example.com/reviews:1" }] },
                "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] },
            });
            store.create(resources::PODS, "bookinfo", pod, None).unwrap();
        }
        let route = json!({ "metadata": { "name": "reviews" }, "spec": {
            "parentRefs": [{ "group": "", "kind": "Service", "name": "reviews", "port": 9080 }],
            "rules": rules,
        } });
        store.create(resources::HTTP_ROUTES, "bookinfo", route, None).unwrap();
        let controller = GatewayController::new(store.clone(), &GatewayApiSettings::default());
        let start = Instant::now();
        controller.reconcile(start);
        controller.reconcile(start + Duration::from_secs(1));
        let traffic =
            format!("traffic:\n  - {{service: reviews, namespace: bookinfo, requestsPerSecond: 20000{requests}}}\n");
        let scenario = Scenario::parse(&traffic).unwrap();
        let mesh = Mesh::new(store.clone(), Arc::new(scenario), controller.data_plane());
        (store, controller, mesh)
    }

    fn backend(name: &str, weight: u64) -> Value {
        json!({ "name": name, "port": 9080, "weight": weight })
    }

    fn served(mesh: &Mesh, workload: &str) -> u64 {
        mesh.served("bookinfo", workload).requests
    }

    #[test]
    fn an_http_route_of_the_service_splits_requests_by_weight_over_backend_services() {
        let rules = json!([{ "backendRefs": [backend("reviews-v1", 90), backend("reviews-v2", 10)] }]);
        let (_store, _controller, mesh) = routed(json!({}), rules, "");
        mesh.tick(Duration::from_secs(1));
        let (v1, v2) = (served(&mesh, "reviews-v1"), served(&mesh, "reviews-v2"));
        assert_eq!(v1 + v2, 20_000, "every request is served");
        assert!((17_400..=18_600).contains(&v1), "reviews-v1 served {v1} of 20000, expected about 18000");
        let metrics = mesh.telemetry.render();
        for label in [
            "destination_service_name=\"reviews-v1\"",
            "destination_service_name=\"reviews-v2\"",
            "destination_service=\"reviews-v1.bookinfo.svc.cluster.local\"",
            "reporter=\"destination\"",
        ] {
            assert!(metrics.contains(label), "{label} missing from the metrics:\n{metrics}");
        }
        assert!(!metrics.contains("destination_service_name=\"reviews\""), "the backend Service is reported");
        assert_eq!(mesh.undelivered("bookinfo", "NC"), 0);
    }

    #[test]
    fn missing_backends_unmatched_requests_and_zero_weights_are_not_delivered() {
        let rules = json!([
            { "matches": [{ "path": { "type": "Exact", "value": "/reviews/1" } }],
              "backendRefs": [backend("reviews-v1", 1), backend("reviews-v3", 1)] },
            { "matches": [{ "path": { "type": "PathPrefix", "value": "/zero" } }], "backendRefs": [backend("reviews-v2", 0)] },
        ]);
        let requests = ", requests: [{path: /reviews/1}, {path: /zero/1}, {path: /other}]";
        let (_store, _controller, mesh) = routed(json!({ "istio.io/dataplane-mode": "ambient" }), rules, requests);
        mesh.tick(Duration::from_secs(1));
        let (v1, missing) = (served(&mesh, "reviews-v1"), mesh.undelivered("bookinfo", "NC"));
        let (refused, unrouted) = (mesh.undelivered("bookinfo", "-"), mesh.undelivered("bookinfo", "NR"));
        assert_eq!(v1 + missing + refused + unrouted, 20_000);
        assert_eq!(served(&mesh, "reviews-v2"), 0, "a backend of weight 0 gets nothing");
        for (what, count, expected) in
            [("reviews-v1", v1, 3_333), ("NC", missing, 3_333), ("-", refused, 6_667), ("NR", unrouted, 6_667)]
        {
            assert!(count.abs_diff(expected) < 700, "{what}: {count}, expected about {expected}");
        }
        let metrics = mesh.telemetry.render();
        assert!(metrics.contains("reporter=\"waypoint\""), "ambient namespaces report through the waypoint");
        assert!(!metrics.contains("reporter=\"destination\""));
        assert!(metrics.contains("response_code=\"500\""));
    }

    #[test]
    fn a_virtual_service_wins_and_a_route_change_waits_for_the_controller() {
        let rules = json!([{ "backendRefs": [backend("reviews-v3", 1)] }]);
        let (store, controller, mesh) = routed(json!({}), rules, "");
        let virtual_service = json!({ "metadata": { "name": "reviews" }, "spec": { "hosts": ["reviews"], "http": [
            { "route": [{ "destination": { "host": "reviews" } }] }
        ] } });
        store.create(resources::VIRTUAL_SERVICES, "bookinfo", virtual_service, None).unwrap();
        mesh.tick(Duration::from_secs(1));
        assert_eq!(mesh.undelivered("bookinfo", "NC"), 0, "the VirtualService routes, not the HTTPRoute");
        assert_eq!(served(&mesh, "reviews-v1") + served(&mesh, "reviews-v2"), 20_000);

        store.remove(resources::VIRTUAL_SERVICES, "bookinfo", "reviews");
        mesh.tick(Duration::from_secs(1));
        assert_eq!(mesh.undelivered("bookinfo", "NC"), 20_000, "reviews-v3 does not exist");

        store
            .modify(resources::HTTP_ROUTES, "bookinfo", "reviews", WriteScope::Main, None, |route| {
                route["spec"]["rules"][0]["backendRefs"][0]["name"] = json!("reviews-v1");
                Ok(())
            })
            .unwrap();
        mesh.tick(Duration::from_secs(1));
        assert_eq!(mesh.undelivered("bookinfo", "NC"), 40_000, "the change is not processed yet");
        let start = Instant::now();
        controller.reconcile(start);
        controller.reconcile(start + Duration::from_secs(1));
        let before = served(&mesh, "reviews-v1");
        mesh.tick(Duration::from_secs(1));
        assert_eq!(served(&mesh, "reviews-v1") - before, 20_000, "processed: reviews-v1 serves everything");
        assert_eq!(mesh.undelivered("bookinfo", "NC"), 40_000);
    }

    #[test]
    fn latency_samples_follow_median_and_p99() {
        let mut samples: Vec<f64> =
            (0..20_000).map(|_| sample_latency(Duration::from_millis(20), Duration::from_millis(80))).collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        assert!((17.0..23.0).contains(&median), "median {median}");
        assert!((65.0..95.0).contains(&p99), "p99 {p99}");
    }
}
