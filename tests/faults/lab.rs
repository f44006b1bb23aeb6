//! One case's world: a simulated cluster of its own with bookinfo in a namespace of its own (`bookinfo-NN`), so
//! that one Prometheus can scrape every case's mesh without their series meeting, routed by Istio or by the Gateway
//! API; and the invariant every case ends with.

use crate::support::{Finished, Running, release_manifest, spawn_fledge};
use fledge_sim::faults::FaultSettings;
use fledge_sim::resources::{
    CONFIG_MAPS, DEPLOYMENTS, DESTINATION_RULES, HTTP_ROUTES, LEASES, PODS, ResourceId, SERVICES, VIRTUAL_SERVICES,
};
use fledge_sim::scenario::Scenario;
use fledge_sim::store::WriteScope;
use fledge_sim::{Sim, SimConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The service every case releases, and the name of its run record and lock.
const SERVICE: &str = "reviews";
const STATE_OBJECT: &str = "fledge-release-reviews";

/// The traffic provider a case releases through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Provider {
    /// A VirtualService and a DestinationRule (examples/sim/bookinfo.yaml).
    Istio,
    /// An HTTPRoute and one Service per version (examples/sim/bookinfo-gateway-api.yaml).
    GatewayApi,
}

impl Provider {
    /// The resource type of the route.
    pub(crate) fn route_resource(self) -> ResourceId {
        match self {
            Provider::Istio => VIRTUAL_SERVICES,
            Provider::GatewayApi => HTTP_ROUTES,
        }
    }
}

/// A case's simulated cluster.
pub(crate) struct Lab {
    pub(crate) number: usize,
    pub(crate) provider: Provider,
    pub(crate) namespace: String,
    pub(crate) sim: Sim,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) dir: tempfile::TempDir,
}

impl Lab {
    /// A simulator with bookinfo in namespace `bookinfo-NN`, serving its mesh's metrics on `metrics_address` (port
    /// 0: any), where the matrix's Prometheus scrapes one lab after another.
    pub(crate) async fn start(
        number: usize,
        provider: Provider,
        metrics_address: std::net::SocketAddr,
    ) -> Result<Lab, String> {
        let namespace = format!("bookinfo-{number:02}");
        let file = match provider {
            Provider::Istio => "../../examples/sim/bookinfo.yaml",
            Provider::GatewayApi => "../../examples/sim/bookinfo-gateway-api.yaml",
        };
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .expect("the bookinfo scenario is readable");
        let text = text
            .replace("namespace: bookinfo", &format!("namespace: {namespace}"))
            .replace("name: bookinfo\n", &format!("name: {namespace}\n"));
        let text = match provider {
            Provider::Istio => {
                // A tcp route pinned to the live version beside the managed http route: promotion must move it
                // (the default `traffic.pinnedRoutes: move`), a rollback leave it, and nothing may point at a
                // retired subset.
                let managed_route_end = "          retries: {attempts: 2, perTryTimeout: 2s}\n          timeout: 10s\n";
                assert!(
                    text.ends_with(managed_route_end),
                    "the bookinfo scenario no longer ends with its managed route"
                );
                format!(
                    "{text}      tcp:\n        - match: [{{port: 9090}}]\n          route: [{{destination: {{host: reviews, subset: v1, port: {{number: 9090}}}}}}]\n"
                )
            }
            Provider::GatewayApi => text,
        };
        let mut scenario = Scenario::parse(&text).expect("the bookinfo scenario parses");
        if provider == Provider::GatewayApi {
            gateway_api_extras(&mut scenario, &namespace);
        }
        let sim = Sim::start(SimConfig { scenario, metrics_address, ..SimConfig::default() })
            .await
            .map_err(|error| format!("the simulator did not start: {error}"))?;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, sim.kubeconfig()).unwrap();
        Ok(Lab { number, provider, namespace, sim, kubeconfig, dir })
    }

    /// [`Lab::start`], tried again for up to 5 s while the slot's port is still held by the previous case's
    /// simulator.
    pub(crate) async fn start_on_slot(
        number: usize,
        provider: Provider,
        metrics_address: std::net::SocketAddr,
    ) -> Result<Lab, String> {
        let mut attempts = 0;
        loop {
            match Lab::start(number, provider, metrics_address).await {
                Ok(lab) => return Ok(lab),
                Err(error) if attempts >= 50 => return Err(error),
                Err(_) => attempts += 1,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `host:port` Prometheus scrapes for this lab's mesh.
    pub(crate) fn metrics_target(&self) -> String {
        self.sim.metrics_url().trim_start_matches("http://").trim_end_matches("/metrics").to_owned()
    }

    /// A time-compressed release of `reviews` `version` with image tag `tag` ([`release_manifest`]) in this lab's
    /// namespace, changed by `customize`.
    pub(crate) fn manifest(
        &self,
        version: &str,
        tag: &str,
        prometheus: &str,
        customize: impl FnOnce(String) -> String,
    ) -> PathBuf {
        let mut text = release_manifest(&self.namespace, version, tag, prometheus);
        if !tag.contains('-') {
            // A healthy version fails 0.1% of requests, and faults make rounds error or hold: tolerating a few failed
            // rounds keeps the healthy cases about what they test (the release's bound, 97%, already takes two chance
            // failures in a 9 s window of about 90 requests).
            text = text.replace("  interval: 3s\n", "  interval: 3s\n  failureLimit: 3\n");
        }
        if self.provider == Provider::GatewayApi {
            text.push_str("traffic:\n  gatewayAPI: {acceptanceTimeout: 20s}\n");
        }
        let path = self.dir.path().join(format!("{version}-{tag}.yaml"));
        std::fs::write(&path, customize(text)).unwrap();
        path
    }

    /// `fledge ARGS MANIFEST` against this lab, running.
    pub(crate) fn spawn(&self, args: &[&str], manifest: &Path) -> Running {
        spawn_fledge(args, manifest, &self.kubeconfig, &self.dir.path().join("step-summary.md"))
    }

    /// `fledge ARGS MANIFEST` to its end.
    pub(crate) async fn fledge(&self, args: &[&str], manifest: &Path) -> Finished {
        self.spawn(args, manifest).finish().await
    }

    /// `fledge run MANIFEST` again and again while the lock of a killed run has not expired (exit 5), at most 40 s.
    pub(crate) async fn run_until_unlocked(&self, manifest: &Path) -> Finished {
        let started = tokio::time::Instant::now();
        loop {
            let finished = self.fledge(&["run"], manifest).await;
            if finished.code != 5 || started.elapsed() > Duration::from_secs(40) {
                return finished;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Sets the simulated API server's faults.
    pub(crate) fn set_faults(&self, faults: FaultSettings) {
        self.sim.faults().set(faults);
    }

    fn object(&self, resource: fledge_sim::resources::ResourceId, name: &str) -> Option<Value> {
        self.sim.store().get(resource, &self.namespace, name).map(|object| (*object).clone())
    }

    /// The route `reviews`: the VirtualService, or the HTTPRoute.
    pub(crate) fn route(&self) -> Value {
        self.object(self.provider.route_resource(), SERVICE).expect("the route exists")
    }

    /// `original` (the route as found) with everything fledge owns sending to `live`: for Istio the managed http
    /// route and the tcp route pinned to the live version, for the Gateway API the managed rule's backend.
    pub(crate) fn routed_to(&self, original: &Value, live: &str) -> Value {
        let mut expected = original.clone();
        let (pointers, value): (&[&str], String) = match self.provider {
            Provider::Istio => (
                &["/spec/http/0/route/0/destination/subset", "/spec/tcp/0/route/0/destination/subset"],
                live.to_owned(),
            ),
            Provider::GatewayApi => (&["/spec/rules/1/backendRefs/0/name"], format!("{SERVICE}-{live}")),
        };
        for pointer in pointers {
            if let Some(route) = expected.pointer_mut(pointer) {
                *route = Value::from(value.as_str());
            }
        }
        expected
    }

    /// The run record fledge keeps, parsed.
    pub(crate) fn record(&self) -> Option<Value> {
        let config_map = self.object(CONFIG_MAPS, STATE_OBJECT)?;
        serde_json::from_str(config_map["data"]["record"].as_str()?).ok()
    }

    /// The record's phase: `stage 0`, `gate`, `rolling-back`, or `none` without a record.
    pub(crate) fn phase(&self) -> String {
        match self.record() {
            None => "none".to_owned(),
            Some(record) => match record["phase"]["index"].as_u64() {
                Some(index) => format!("{} {index}", record["phase"]["phase"].as_str().unwrap_or_default()),
                None => record["phase"]["phase"].as_str().unwrap_or_default().to_owned(),
            },
        }
    }

    /// The lock's holder, when held.
    pub(crate) fn lock_holder(&self) -> Option<String> {
        let lease = self.object(LEASES, STATE_OBJECT)?;
        lease["spec"]["holderIdentity"].as_str().filter(|holder| !holder.is_empty()).map(str::to_owned)
    }

    /// Waits until `ready` holds of the lab, polling every 20 ms; an error names `what` after `deadline`.
    pub(crate) async fn until(
        &self,
        what: &str,
        deadline: Duration,
        ready: impl Fn(&Lab) -> bool,
    ) -> Result<(), String> {
        let started = tokio::time::Instant::now();
        while !ready(self) {
            if started.elapsed() > deadline {
                return Err(format!("{what} did not happen within {deadline:?} (phase: {})", self.phase()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Changes an object as a person with kubectl would.
    pub(crate) fn edit(
        &self,
        resource: fledge_sim::resources::ResourceId,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        self.sim
            .store()
            .modify(resource, &self.namespace, name, WriteScope::Main, Some("kubectl-edit"), |object| {
                change(object);
                Ok(())
            })
            .expect("the hand edit is accepted");
    }

    /// Deletes an object as a person with kubectl would.
    pub(crate) fn delete(&self, resource: fledge_sim::resources::ResourceId, name: &str) {
        self.sim.store().remove(resource, &self.namespace, name);
    }

    /// Checks what must hold when a case ends; `expected` is how the VirtualService must look (the original, with
    /// the live version's subset and any hand edit of fields fledge does not own). Returns every violation.
    pub(crate) fn invariant(&self, live: &str, expected: &Value) -> Vec<String> {
        let mut violations = Vec::new();
        let store = self.sim.store();
        let route = self.route();
        if route["spec"] != expected["spec"] {
            violations.push(format!("the route is not as expected: {} (expected {})", route["spec"], expected["spec"]));
        }
        for key in ["labels", "annotations"] {
            if route["metadata"][key] != expected["metadata"][key] {
                violations.push(format!("the route's {key} changed: {}", route["metadata"][key]));
            }
        }
        match self.provider {
            Provider::Istio => {
                let rule = self.object(DESTINATION_RULES, SERVICE).expect("the DestinationRule exists");
                let subsets: Vec<&str> = rule["spec"]["subsets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["name"].as_str())
                    .collect();
                if subsets != [live] {
                    violations.push(format!("the DestinationRule's subsets are {subsets:?}, expected only {live}"));
                }
                let (services, _) = store.list(VIRTUAL_SERVICES, Some(&self.namespace), |_| true);
                let services: Vec<Value> = services.iter().map(|service| (**service).clone()).collect();
                let (all_pods, _) = store.list(PODS, Some(&self.namespace), |_| true);
                let all_pods: Vec<Value> = all_pods.iter().map(|pod| (**pod).clone()).collect();
                violations.extend(crate::support::dangling_references(&services, &rule, &all_pods));
            }
            Provider::GatewayApi => {
                let (services, _) = store.list(SERVICES, Some(&self.namespace), |_| true);
                let services: Vec<Value> = services.iter().map(|service| (**service).clone()).collect();
                let mut names: Vec<&str> =
                    services.iter().filter_map(|service| service["metadata"]["name"].as_str()).collect();
                names.sort_unstable();
                let live_service = format!("{SERVICE}-{live}");
                let mut expected_names = vec!["ratings", SERVICE, live_service.as_str()];
                expected_names.sort_unstable();
                if names != expected_names {
                    violations.push(format!("the Services are {names:?}, expected {expected_names:?}"));
                }
                let (all_pods, _) = store.list(PODS, Some(&self.namespace), |_| true);
                let all_pods: Vec<Value> = all_pods.iter().map(|pod| (**pod).clone()).collect();
                violations.extend(crate::support::dangling_backends(
                    std::slice::from_ref(&route),
                    &services,
                    &all_pods,
                ));
                if let fledge_gateway_api::acceptance::Acceptance::Refused(refusal) =
                    fledge_gateway_api::acceptance::judge(&route)
                {
                    violations.push(format!("the HTTPRoute is refused: {refusal}"));
                }
            }
        }
        let live_deployment = format!("{SERVICE}-{live}");
        let (deployments, _) = store.list(DEPLOYMENTS, Some(&self.namespace), |_| true);
        let mut live_found = false;
        for deployment in &deployments {
            let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
            let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
            if name == live_deployment {
                live_found = true;
                let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
                if replicas < 1 || ready != replicas {
                    violations.push(format!("{name} has {ready} of {replicas} replicas Ready"));
                }
            } else if replicas > 0 {
                violations.push(format!("{name} is orphaned: {replicas} replicas beside the live {live_deployment}"));
            }
        }
        if !live_found {
            violations.push(format!("the live Deployment {live_deployment} is missing"));
        }
        let (pods, _) = store.list(PODS, Some(&self.namespace), |pod| {
            pod["metadata"]["labels"]["version"] == live && pod["metadata"]["deletionTimestamp"].is_null()
        });
        let unready = pods
            .iter()
            .filter(|pod| {
                !pod["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
            })
            .count();
        if pods.is_empty() || unready > 0 {
            violations.push(format!("{unready} of the {} pods of {live} are not Ready", pods.len()));
        }
        if let Some(holder) = self.lock_holder() {
            violations.push(format!("the lock is still held by {holder}"));
        }
        if let Some(record) = self.record()
            && record["phase"]["phase"] != "done"
        {
            violations.push(format!("the run record is open: phase {}", self.phase()));
        }
        violations
    }
}

/// The Gateway API lab's extras: a second rule before the managed one (an `archive` path to `ratings`, whose Service
/// exists), so hand edits of another rule can be tried, and the managed rule named `primary`.
fn gateway_api_extras(scenario: &mut Scenario, namespace: &str) {
    let route = scenario
        .objects
        .iter_mut()
        .find(|object| object["kind"] == "HTTPRoute")
        .expect("the Gateway API scenario has an HTTPRoute");
    let primary = route["spec"]["rules"][0].clone();
    route["spec"]["rules"] = serde_json::json!([
        {
            "name": "archive",
            "matches": [{ "path": { "type": "PathPrefix", "value": "/archive/" } }],
            "backendRefs": [{ "name": "ratings", "port": 9080 }],
            "timeouts": { "request": "2s" }
        },
        primary
    ]);
    scenario.objects.push(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "ratings", "namespace": namespace, "labels": { "app": "ratings" } },
        "spec": { "selector": { "app": "ratings" }, "ports": [{ "name": "http", "port": 9080 }] }
    }));
}
