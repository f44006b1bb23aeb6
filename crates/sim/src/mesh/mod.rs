//! The mesh: requests to each service of the scenario's traffic, split by the VirtualService's weighted destinations
//! and the DestinationRule's subsets onto the Ready pods of each version, answered with each version's error rate
//! and latency, and counted in Istio's metrics.
//!
//! ```text
//! traffic (rps) ─▶ VirtualService route ─weights─▶ subset ─DestinationRule labels─▶ Ready pods
//!                                                   │ none Ready: 503 UH (client proxy reports it)
//!                                                   ▼
//!                              behaviour of the pod's image: error rate, latency ─▶ istio_* metrics
//! ```

pub mod telemetry;

use crate::resources;
use crate::scenario::{Scenario, TrafficSource};
use crate::store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use telemetry::{RequestLabels, Telemetry};
use tokio::sync::watch;

/// How often traffic is generated.
pub const TICK: Duration = Duration::from_millis(250);

/// Most requests simulated one by one per tick per service (larger rates are sampled).
const MAX_REQUESTS_PER_TICK: usize = 20_000;

/// One weighted destination of a route.
#[derive(Debug, Clone, PartialEq)]
struct Destination {
    subset: Option<String>,
    weight: f64,
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
    /// The metrics served on `/metrics`.
    pub telemetry: Telemetry,
    carry: Mutex<HashMap<String, f64>>,
    served: Mutex<HashMap<String, Served>>,
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

impl Mesh {
    /// A mesh over the store, with the scenario's traffic and behaviours.
    pub fn new(store: Arc<Store>, scenario: Arc<Scenario>) -> Mesh {
        Mesh {
            store,
            scenario,
            telemetry: Telemetry::default(),
            carry: Mutex::new(HashMap::new()),
            served: Mutex::new(HashMap::new()),
        }
    }

    /// What the pods of `workload` (a Deployment name) in `namespace` served so far: exact counts, as the
    /// generator produced them (Istio's counters carry the same numbers).
    pub fn served(&self, namespace: &str, workload: &str) -> Served {
        let served = self.served.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        served.get(&format!("{namespace}/{workload}")).copied().unwrap_or_default()
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

    /// The route's weighted destinations for the service's host.
    fn destinations(&self, source: &TrafficSource) -> Vec<Destination> {
        let fqdn = format!("{}.{}.svc.cluster.local", source.service, source.namespace);
        let host_matches = |host: &str| {
            host == source.service || host == fqdn || host == format!("{}.{}", source.service, source.namespace)
        };
        let (services, _) = self.store.list(resources::VIRTUAL_SERVICES, Some(&source.namespace), |service| {
            service
                .pointer("/spec/hosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(host_matches)
        });
        let Some(virtual_service) = services.first() else {
            return vec![Destination { subset: None, weight: 1.0 }];
        };
        let routes = virtual_service.pointer("/spec/http").and_then(Value::as_array).cloned().unwrap_or_default();
        // The first route without match conditions that routes to this host is where plain traffic goes.
        let route = routes
            .iter()
            .find(|route| route.get("match").is_none() && route_targets(route, &host_matches))
            .or_else(|| routes.iter().find(|route| route_targets(route, &host_matches)));
        let Some(route) = route else {
            return vec![Destination { subset: None, weight: 1.0 }];
        };
        let entries = route.get("route").and_then(Value::as_array).cloned().unwrap_or_default();
        let single = entries.len() == 1;
        entries
            .iter()
            .filter(|entry| host_matches(text(entry, "/destination/host")))
            .map(|entry| Destination {
                subset: entry.pointer("/destination/subset").and_then(Value::as_str).map(str::to_owned),
                weight: if single { 1.0 } else { entry.get("weight").and_then(Value::as_f64).unwrap_or(0.0).max(0.0) },
            })
            .collect()
    }

    fn serve(&self, source: &TrafficSource, count: usize) {
        let destinations = self.destinations(source);
        let total: f64 = destinations.iter().map(|destination| destination.weight).sum();
        if destinations.is_empty() || total <= 0.0 {
            return;
        }
        let selector = self
            .store
            .get(resources::SERVICES, &source.namespace, &source.service)
            .and_then(|service| service.pointer("/spec/selector").and_then(Value::as_object).cloned())
            .unwrap_or_else(|| serde_json::Map::from_iter([("app".to_owned(), Value::String(source.service.clone()))]));
        let (pods, _) = self.store.list(resources::PODS, Some(&source.namespace), |pod| {
            pod.pointer("/metadata/deletionTimestamp").is_none()
                && crate::cluster::is_ready_pod(pod)
                && selector.iter().all(|(key, value)| {
                    pod.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1"))) == Some(value)
                })
        });
        let rules = self.store.list(resources::DESTINATION_RULES, Some(&source.namespace), |rule| {
            let host = text(rule, "/spec/host");
            host == source.service || host == format!("{}.{}.svc.cluster.local", source.service, source.namespace)
        });
        let subset_labels = |name: &str| -> Option<serde_json::Map<String, Value>> {
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
        let mut by_destination: Vec<usize> = vec![0; destinations.len()];
        for _ in 0..simulated {
            let mut pick = rand::random::<f64>() * total;
            let index = destinations.iter().position(|destination| {
                pick -= destination.weight;
                pick < 0.0
            });
            by_destination[index.unwrap_or(destinations.len() - 1)] += 1;
        }
        for (destination, requests) in destinations.iter().zip(by_destination) {
            if requests == 0 {
                continue;
            }
            let (candidates, flag): (Vec<&Arc<Value>>, &str) = match &destination.subset {
                None => (pods.iter().collect(), "UH"),
                Some(subset) => match subset_labels(subset) {
                    None => (Vec::new(), "NC"),
                    Some(labels) => (
                        pods.iter()
                            .filter(|pod| {
                                labels.iter().all(|(key, value)| {
                                    pod.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1"))) == Some(value)
                                })
                            })
                            .collect(),
                        "UH",
                    ),
                },
            };
            if candidates.is_empty() {
                let labels = self.labels(source, None, "503", flag);
                self.telemetry.requests.get_or_create(&labels).inc_by((requests as f64 * scale).round() as u64);
                continue;
            }
            for _ in 0..requests {
                let pod = candidates[rand::random_range(0..candidates.len())];
                let behaviour = crate::cluster::pod_behaviour(&self.scenario, pod);
                let failed = behaviour.error_rate > 0.0 && rand::random::<f64>() < behaviour.error_rate;
                let code = if failed { "500" } else { "200" };
                let labels = self.labels(source, Some(pod), code, "-");
                let latency = sample_latency(behaviour.latency_median, behaviour.latency_p99);
                let count = scale.round().max(1.0) as u64;
                {
                    let mut served = self.served.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let entry =
                        served.entry(format!("{}/{}", source.namespace, labels.destination_workload)).or_default();
                    entry.requests += count;
                    entry.failed += if failed { count } else { 0 };
                }
                self.telemetry.requests.get_or_create(&labels).inc_by(count);
                self.telemetry.durations.get_or_create(&labels).observe(latency);
            }
        }
    }

    fn labels(&self, source: &TrafficSource, pod: Option<&Arc<Value>>, code: &str, flags: &str) -> RequestLabels {
        let fqdn = format!("{}.{}.svc.cluster.local", source.service, source.namespace);
        let unknown = || "unknown".to_owned();
        let (workload, app, version, principal) = match pod {
            Some(pod) => (
                crate::cluster::workload_name(pod),
                text(pod, "/metadata/labels/app").to_owned(),
                text(pod, "/metadata/labels/version").to_owned(),
                format!("spiffe://cluster.local/ns/{}/sa/default", source.namespace),
            ),
            None => (unknown(), unknown(), unknown(), unknown()),
        };
        let canonical_service = if pod.is_some() { app.clone() } else { unknown() };
        let canonical_revision = if pod.is_some() {
            if version.is_empty() { "latest".to_owned() } else { version.clone() }
        } else {
            unknown()
        };
        RequestLabels {
            reporter: if pod.is_some() { "destination" } else { "source" }.to_owned(),
            source_workload: "loadgenerator".into(),
            source_workload_namespace: source.namespace.clone(),
            source_principal: format!("spiffe://cluster.local/ns/{}/sa/loadgenerator", source.namespace),
            source_app: "loadgenerator".into(),
            source_version: "unknown".into(),
            source_canonical_service: "loadgenerator".into(),
            source_canonical_revision: "latest".into(),
            source_cluster: "Kubernetes".into(),
            destination_workload: workload,
            destination_workload_namespace: if pod.is_some() { source.namespace.clone() } else { unknown() },
            destination_principal: principal,
            destination_app: app,
            destination_version: version,
            destination_service: fqdn,
            destination_service_name: source.service.clone(),
            destination_service_namespace: source.namespace.clone(),
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

fn route_targets(route: &Value, host_matches: &impl Fn(&str) -> bool) -> bool {
    route
        .get("route")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|entry| host_matches(text(entry, "/destination/host")))
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
