//! The world an end-to-end test runs in: fledge-sim with the bookinfo scenario and a real Prometheus scraping it,
//! or, when `FLEDGE_E2E_KUBECONFIG` is set, a real cluster and `FLEDGE_E2E_PROMETHEUS`.
//!
//! Against a real cluster, apply the objects of examples/sim/bookinfo.yaml first (namespace `bookinfo` with sidecar
//! injection, Service, Deployment `reviews-v1`, VirtualService and DestinationRule `reviews`) with traffic to
//! `reviews`, run the tests one at a time (`--test-threads=1`), and map the simulator's image tags to images that
//! behave that way with `FLEDGE_E2E_IMAGES=2.0.0=repo/app:good,2.0.0-errors=repo/app:errors,...`.

#![allow(
    unreachable_pub,
    dead_code,
    reason = "shared by the e2e tests and the release benchmark, which use different parts"
)]

use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use fledge_testkit::{TestPrometheus, eventually};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt as _;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The image for a tag of the bookinfo scenario (`2.0.0`, `2.0.0-errors`, ...).
pub fn image(tag: &str) -> String {
    let mapped = std::env::var("FLEDGE_E2E_IMAGES").ok().and_then(|pairs| {
        pairs
            .split(',')
            .find_map(|pair| pair.split_once('=').filter(|(key, _)| *key == tag).map(|(_, image)| image.to_owned()))
    });
    mapped.unwrap_or_else(|| format!("registry.example.com/bookinfo/reviews:{tag}"))
}

/// A time-compressed release of `reviews` in `namespace`: `version` with the bookinfo image tag `tag`, gate stable
/// for 2 s, 3 s rounds, two 6 s stages (20%, 50%), a 2 s scale-down delay.
///
/// The healthy reviews fail 0.1% of requests, as real services do. A 9 s window at 20% of 50 requests per second
/// holds about 90 of them, so one chance failure reads 98.9%: the success rate must stay above 97%, which a healthy
/// version misses about once in ten thousand windows and a 10% error version almost always.
pub fn release_manifest(namespace: &str, version: &str, tag: &str, prometheus: &str) -> String {
    format!(
        r#"apiVersion: fledge/v1
kind: Release
service: {{name: reviews, namespace: {namespace}, version: {version}}}
deploy: {{image: "{image}", replicas: 2}}
gate: {{stableFor: 2s, timeout: 1m}}
prometheus: {{url: "{prometheus}"}}
analysis:
  interval: 3s
  minRequests: 5
  metrics:
    - {{builtin: success-rate, min: 97, window: 9s}}
    - {{builtin: latency-p99, max: 500, window: 9s}}
stages:
  - {{weight: 20, duration: 6s}}
  - {{weight: 50, duration: 6s}}
promote: {{scaleDownDelay: 2s}}
"#,
        image = image(tag)
    )
}

/// [`release_manifest`]'s text judged for a version expected to fail its checks: no failed round tolerated and a
/// success rate of 99%, so the first round that counts its errors rolls it back. (Istio's 500s series of a new
/// version appears with its first failed request, and `rate()` cannot count a series' first sample: the first
/// errors of a 10% version are invisible, and the 97% a healthy version is judged by could miss it for a round or
/// two.) No healthy version is judged by this.
pub fn judged_strictly(text: String) -> String {
    let strict = text
        .replace("  interval: 3s\n", "  interval: 3s\n  failureLimit: 0\n")
        .replace("{builtin: success-rate, min: 97, window: 9s}", "{builtin: success-rate, min: 99, window: 9s}");
    assert!(
        strict.contains("failureLimit: 0") && strict.contains("success-rate, min: 99"),
        "the release manifest has the bounds this tightens: {text}"
    );
    strict
}

/// Which traffic provider a world's bookinfo is routed by, and its release manifests name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// A VirtualService and a DestinationRule (examples/sim/bookinfo.yaml).
    Istio,
    /// An HTTPRoute and a Service per version (examples/sim/bookinfo-gateway-api.yaml).
    GatewayApi,
}

impl Provider {
    fn scenario(self) -> &'static str {
        match self {
            Provider::Istio => "examples/sim/bookinfo.yaml",
            Provider::GatewayApi => "examples/sim/bookinfo-gateway-api.yaml",
        }
    }

    /// What a release manifest adds to name the provider (Istio is the default).
    fn traffic(self) -> &'static str {
        match self {
            Provider::Istio => "",
            Provider::GatewayApi => "traffic:\n  gatewayAPI: {httpRoute: reviews}\n",
        }
    }
}

/// A cluster with bookinfo and a Prometheus that sees its traffic.
pub struct World {
    /// The traffic provider bookinfo is routed by.
    pub provider: Provider,
    /// Every version of the DestinationRule `reviews` seen since the world started (first: its watch stops before
    /// the simulator does).
    pub rules_seen: RulesSeen,
    _sim: Option<Sim>,
    _prometheus: Option<TestPrometheus>,
    pub prometheus_url: String,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for World {
    /// Every release of every test: each subset a release added was a copy of the live one.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.rules_seen.check_canary_subsets();
        }
    }
}

/// Every version of the DestinationRule `reviews` a watch saw, in order.
#[derive(Clone, Default)]
pub struct RulesSeen(std::sync::Arc<std::sync::Mutex<Vec<Value>>>, std::sync::Arc<AbortOnDrop>);

/// A task that ends with its owner.
#[derive(Default)]
pub struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl RulesSeen {
    /// Watches the DestinationRule `reviews` in `namespace` through `kubeconfig`, from now on.
    pub async fn watch(kubeconfig: &Path, namespace: &str) -> RulesSeen {
        use futures::StreamExt as _;
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(config, &options).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let resource = kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("networking.istio.io", "v1", "DestinationRule"),
            "destinationrules",
        );
        let api = kube::Api::<kube::core::DynamicObject>::namespaced_with(client, namespace, &resource);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let (first, synced) = tokio::sync::oneshot::channel();
        let mut first = Some(first);
        let task = tokio::spawn(async move {
            let config = kube::runtime::watcher::Config::default().fields("metadata.name=reviews");
            // With back-off: a watch that fails (the cluster gone at the end of a test) waits between attempts.
            let mut events =
                std::pin::pin!(kube::runtime::WatchStreamExt::default_backoff(kube::runtime::watcher(api, config)));
            while let Some(event) = events.next().await {
                match event {
                    Ok(kube::runtime::watcher::Event::Apply(rule) | kube::runtime::watcher::Event::InitApply(rule)) => {
                        log.lock().unwrap().push(serde_json::to_value(rule).unwrap());
                    }
                    // Listed (a world routed by the Gateway API has no DestinationRule): watching from now on.
                    Ok(kube::runtime::watcher::Event::InitDone) => {
                        if let Some(first) = first.take() {
                            let _ = first.send(());
                        }
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), synced).await.unwrap().unwrap();
        RulesSeen(seen, std::sync::Arc::new(AbortOnDrop(Some(task))))
    }

    /// Checks that every subset a release added was a copy of the live subset as found at the start (its traffic
    /// policy and labels, but for its name and `version` label); returns how many such subsets were seen.
    pub fn check_canary_subsets(&self) -> usize {
        let seen = self.0.lock().unwrap();
        let Some(original) = seen.first() else { return 0 };
        let original_subsets = original["spec"]["subsets"].as_array().cloned().unwrap_or_default();
        let live = original_subsets.iter().find(|subset| subset["name"] == "v1").cloned().unwrap_or_default();
        let mut canaries = std::collections::BTreeSet::new();
        for rule in seen.iter() {
            for subset in rule["spec"]["subsets"].as_array().into_iter().flatten() {
                let name = subset["name"].as_str().unwrap_or_default();
                if original_subsets.iter().any(|original| original["name"] == name) {
                    continue;
                }
                let mut expected = live.clone();
                expected["name"] = Value::from(name);
                expected["labels"]["version"] = Value::from(name);
                assert_eq!(subset, &expected, "the canary subset {name} is not a copy of the live subset v1");
                canaries.insert(name.to_owned());
            }
        }
        canaries.len()
    }
}

/// Whether a pod is Ready and not being deleted.
fn is_ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
}

/// Every reference, in the namespace's VirtualServices, to a subset of `reviews` that is not defined in
/// `destination_rule`, or that selects no Ready pod: each would fail the requests it takes (503 NC or UH).
pub fn dangling_references(virtual_services: &[Value], destination_rule: &Value, pods: &[Value]) -> Vec<String> {
    let mut dangling = Vec::new();
    let subsets = destination_rule["spec"]["subsets"].as_array().cloned().unwrap_or_default();
    let ready = |pod: &&Value| is_ready(pod);
    let mut check = |where_: String, destination: &Value| {
        let host = destination["host"].as_str().unwrap_or_default();
        let Some(subset) = destination["subset"].as_str() else { return };
        if !(host == "reviews" || host.starts_with("reviews.")) {
            return;
        }
        let Some(definition) = subsets.iter().find(|defined| defined["name"] == subset) else {
            dangling.push(format!("{where_} sends to subset {subset}, which is not defined"));
            return;
        };
        let labels = definition["labels"].as_object().cloned().unwrap_or_default();
        let selected = pods
            .iter()
            .filter(ready)
            .filter(|pod| labels.iter().all(|(key, value)| &pod["metadata"]["labels"][key] == value))
            .count();
        if selected == 0 {
            dangling.push(format!("{where_} sends to subset {subset}, which selects no Ready pod"));
        }
    };
    for service in virtual_services {
        let name = service["metadata"]["name"].as_str().unwrap_or_default();
        for protocol in ["http", "tcp", "tls"] {
            for (index, route) in service["spec"][protocol].as_array().into_iter().flatten().enumerate() {
                for entry in route["route"].as_array().into_iter().flatten() {
                    check(format!("VirtualService {name} {protocol} route #{index}"), &entry["destination"]);
                }
                check(format!("VirtualService {name} {protocol} route #{index} mirror"), &route["mirror"]);
                for mirror in route["mirrors"].as_array().into_iter().flatten() {
                    check(format!("VirtualService {name} {protocol} route #{index} mirror"), &mirror["destination"]);
                }
            }
        }
    }
    dangling
}

/// Every backendRef, in the namespace's HTTPRoutes, to a Service of `reviews` (named `reviews-*`) that does not
/// exist or selects no Ready pod: each would fail the requests it takes (500, or 503 UH).
pub fn dangling_backends(http_routes: &[Value], services: &[Value], pods: &[Value]) -> Vec<String> {
    let mut dangling = Vec::new();
    for route in http_routes {
        let name = route["metadata"]["name"].as_str().unwrap_or_default();
        for (index, rule) in route["spec"]["rules"].as_array().into_iter().flatten().enumerate() {
            let mut references: Vec<&Value> = rule["backendRefs"].as_array().into_iter().flatten().collect();
            for filter in rule["filters"].as_array().into_iter().flatten() {
                references.push(&filter["requestMirror"]["backendRef"]);
            }
            for reference in references {
                let Some(backend) = reference["name"].as_str().filter(|backend| backend.starts_with("reviews-")) else {
                    continue;
                };
                let Some(service) = services.iter().find(|service| service["metadata"]["name"] == backend) else {
                    dangling.push(format!(
                        "HTTPRoute {name} rule #{index} sends to Service {backend}, which does not exist"
                    ));
                    continue;
                };
                let selector = service["spec"]["selector"].as_object().cloned().unwrap_or_default();
                let selected = pods
                    .iter()
                    .filter(|pod| {
                        is_ready(pod) && selector.iter().all(|(key, value)| &pod["metadata"]["labels"][key] == value)
                    })
                    .count();
                if selected == 0 {
                    dangling.push(format!(
                        "HTTPRoute {name} rule #{index} sends to Service {backend}, which selects no Ready pod"
                    ));
                }
            }
        }
    }
    dangling
}

/// The object without the bookkeeping every write changes (`resourceVersion`, `generation`, `managedFields`).
pub fn without_bookkeeping(mut object: Value) -> Value {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["resourceVersion", "generation", "managedFields"] {
            metadata.remove(field);
        }
    }
    object
}

/// How a `fledge` process ended.
#[derive(Debug)]
#[allow(dead_code, reason = "shown when an assertion fails")]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    /// The events it wrote on stderr (`--log-format json`), in order.
    pub events: Vec<Value>,
    /// stderr lines that were not JSON.
    pub other: Vec<String>,
}

impl Finished {
    /// The first event named `name`.
    pub fn event(&self, name: &str) -> Option<&Value> {
        self.events.iter().find(|event| event["event"] == name)
    }
}

impl World {
    pub async fn start() -> World {
        World::start_with_nodes(3).await
    }

    /// A world whose simulated cluster has `nodes` nodes (each takes 110 pods, 4 CPUs).
    pub async fn start_with_nodes(nodes: usize) -> World {
        World::start_with(nodes, |text| text).await
    }

    /// A world on bookinfo changed by `customize` (the scenario's text), with `nodes` nodes. Against a real cluster,
    /// the cluster must look like the customized scenario.
    pub async fn start_with(nodes: usize, customize: impl FnOnce(String) -> String) -> World {
        World::start_from(Provider::Istio, nodes, customize).await
    }

    /// A world on bookinfo routed by the Gateway API (examples/sim/bookinfo-gateway-api.yaml) changed by
    /// `customize`.
    pub async fn start_gateway_api(customize: impl FnOnce(String) -> String) -> World {
        World::start_from(Provider::GatewayApi, 3, customize).await
    }

    /// A world on bookinfo routed by `provider`, as its scenario describes it.
    pub async fn start_on(provider: Provider) -> World {
        World::start_from(provider, 3, |text| text).await
    }

    /// A world on the scenario of `provider` changed by `customize`, with `nodes` nodes.
    async fn start_from(provider: Provider, nodes: usize, customize: impl FnOnce(String) -> String) -> World {
        let file = provider.scenario();
        let dir = tempfile::tempdir().unwrap();
        if let Ok(kubeconfig) = std::env::var("FLEDGE_E2E_KUBECONFIG") {
            let prometheus_url = std::env::var("FLEDGE_E2E_PROMETHEUS")
                .expect("FLEDGE_E2E_PROMETHEUS must name the Prometheus that scrapes the cluster's Istio metrics");
            let kubeconfig = PathBuf::from(kubeconfig);
            let rules_seen = RulesSeen::watch(&kubeconfig, "bookinfo").await;
            return World { provider, _sim: None, _prometheus: None, prometheus_url, kubeconfig, dir, rules_seen };
        }
        let text = customize(std::fs::read_to_string(workspace().join(file)).unwrap());
        let mut scenario = Scenario::parse(&text).unwrap();
        scenario.nodes = Some(nodes);
        let sim = Sim::start(SimConfig { scenario, ..SimConfig::default() }).await.expect("simulator starts");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, sim.kubeconfig()).unwrap();
        let target = sim.metrics_url().trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
        let prometheus = TestPrometheus::start(&[&target]).await;
        let rules_seen = RulesSeen::watch(&kubeconfig, "bookinfo").await;
        let world = World {
            provider,
            prometheus_url: prometheus.url.clone(),
            _sim: Some(sim),
            _prometheus: Some(prometheus),
            kubeconfig,
            dir,
            rules_seen,
        };
        world.wait_for_live_traffic().await;
        world
    }

    /// Requests to `reviews` the mesh could not deliver, by Envoy's flag (`NR`, `NC`, `UH`; `None` against a real
    /// cluster, where Prometheus tells).
    pub fn undelivered(&self, flag: &str) -> Option<u64> {
        self._sim.as_ref().map(|sim| sim.undelivered("bookinfo", flag))
    }

    /// A kubeconfig that acts as ServiceAccount `namespace/name`, with a token: issued by the simulator, or by
    /// `kubectl create token` on a real cluster (the account must exist when the kubeconfig is used).
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("kubeconfig-{namespace}-{name}"));
        let text = match &self._sim {
            Some(sim) => sim.service_account_kubeconfig(namespace, name),
            None => {
                let token = self.kubectl(&["create", "token", name, "-n", namespace, "--duration", "2h"], None).await;
                let admin = self.kubectl_json(&["config", "view", "--minify", "--raw"]).await;
                let cluster = &admin["clusters"][0]["cluster"];
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{ "name": "cluster", "cluster": cluster }],
                    "users": [{ "name": name, "user": { "token": token.trim() } }],
                    "contexts": [{ "name": name, "context": { "cluster": "cluster", "user": name, "namespace": namespace } }],
                    "current-context": name,
                })
                .to_string()
            }
        };
        std::fs::write(&path, text).unwrap();
        path
    }

    /// What ServiceAccounts asked the API server for, with RBAC's decisions (`None` against a real cluster, where
    /// the audit log tells).
    pub fn accesses(&self) -> Option<Vec<fledge_sim::auth::Access>> {
        self._sim.as_ref().map(Sim::accesses)
    }

    /// The writes the simulator's API committed, in order (`None` against a real cluster).
    pub fn writes(&self) -> Option<Vec<fledge_sim::api::Write>> {
        self._sim.as_ref().map(Sim::writes)
    }

    /// Kubernetes API requests the simulator has served (`None` against a real cluster).
    pub fn api_requests(&self) -> Option<u64> {
        self._sim.as_ref().map(Sim::requests_served)
    }

    /// Waits until Prometheus has seen requests to the live version, so preflight and checks have data.
    async fn wait_for_live_traffic(&self) {
        let client = prometheus_http_query::Client::try_from(self.prometheus_url.as_str()).unwrap();
        let query = r#"sum(increase(istio_requests_total{reporter="destination",destination_app="reviews"}[10s]))"#;
        eventually("traffic to reviews in Prometheus", Duration::from_secs(60), || async {
            let response = client.query(query).get().await.ok()?;
            (response.data().as_vector()?.first()?.sample().value() > 50.0).then_some(())
        })
        .await;
    }

    /// Writes a release manifest of `version` with image tag `tag` ([`release_manifest`]) through the world's
    /// provider, changed by `customize`.
    pub fn manifest(&self, version: &str, tag: &str, customize: impl FnOnce(String) -> String) -> PathBuf {
        let text = release_manifest("bookinfo", version, tag, &self.prometheus_url) + self.provider.traffic();
        let path = self.dir.path().join(format!("{version}-{}.yaml", tag.replace(['/', ':'], "_")));
        std::fs::write(&path, customize(text)).unwrap();
        path
    }

    /// `fledge ARGS MANIFEST --kubeconfig K --log-format json`, running.
    pub fn spawn(&self, args: &[&str], manifest: &Path) -> Running {
        spawn_fledge(args, manifest, &self.kubeconfig, &self.dir.path().join("step-summary.md"))
    }

    /// `fledge ARGS MANIFEST` with another kubeconfig (a ServiceAccount's), running.
    pub fn spawn_as(&self, kubeconfig: &Path, args: &[&str], manifest: &Path) -> Running {
        spawn_fledge(args, manifest, kubeconfig, &self.dir.path().join("step-summary.md"))
    }

    /// Runs `fledge ARGS MANIFEST` to its end; every subset it added was a copy of the live one.
    pub async fn fledge(&self, args: &[&str], manifest: &Path) -> Finished {
        let finished = self.spawn(args, manifest).finish().await;
        self.rules_seen.check_canary_subsets();
        finished
    }

    /// The reasons of the Events fledge recorded regarding `deployment`, in the order `kubectl get events
    /// --field-selector involvedObject.name=DEPLOYMENT` lists them; each regards the Deployment by its uid.
    pub async fn release_events(&self, deployment: &str) -> Vec<String> {
        let selector = format!("involvedObject.name={deployment}");
        let events = self.kubectl_json(&["get", "events", "-n", "bookinfo", "--field-selector", &selector]).await;
        let uid = self.deployment(deployment).await.map(|found| found["metadata"]["uid"].clone());
        let items = events["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .filter(|event| event["source"]["component"] == "fledge")
            .inspect(|event| {
                assert_eq!(event["involvedObject"]["kind"], "Deployment", "{event}");
                if let Some(uid) = &uid {
                    assert_eq!(&event["involvedObject"]["uid"], uid, "regards the Deployment itself: {event}");
                }
            })
            .filter_map(|event| event["reason"].as_str().map(str::to_owned))
            .collect()
    }

    /// A namespaced object of bookinfo, without bookkeeping ([`without_bookkeeping`]).
    pub async fn object(&self, kind: &str, name: &str) -> Value {
        without_bookkeeping(self.kubectl_json(&["get", kind, name, "-n", "bookinfo"]).await)
    }

    /// Every route of bookinfo's VirtualServices that sends to a subset of `reviews` that is not defined or selects
    /// no Ready pod.
    pub async fn dangling_references(&self) -> Vec<String> {
        let services = self.kubectl_json(&["get", "virtualservices", "-n", "bookinfo"]).await;
        let rule = self.kubectl_json(&["get", "destinationrule", "reviews", "-n", "bookinfo"]).await;
        let pods = self.kubectl_json(&["get", "pods", "-n", "bookinfo"]).await;
        let items = |list: &Value| list["items"].as_array().cloned().unwrap_or_default();
        dangling_references(&items(&services), &rule, &items(&pods))
    }

    /// Every backendRef of bookinfo's HTTPRoutes to a Service of `reviews` that does not exist or selects no Ready
    /// pod.
    pub async fn dangling_backends(&self) -> Vec<String> {
        let routes = self.kubectl_json(&["get", "httproutes", "-n", "bookinfo"]).await;
        let services = self.kubectl_json(&["get", "services", "-n", "bookinfo"]).await;
        let pods = self.kubectl_json(&["get", "pods", "-n", "bookinfo"]).await;
        let items = |list: &Value| list["items"].as_array().cloned().unwrap_or_default();
        dangling_backends(&items(&routes), &items(&services), &items(&pods))
    }

    /// The names of bookinfo's Services.
    pub async fn service_names(&self) -> Vec<String> {
        let list = self.kubectl_json(&["get", "services", "-n", "bookinfo"]).await;
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The simulator, when the world runs on one.
    pub fn sim(&self) -> Option<&Sim> {
        self._sim.as_ref()
    }

    /// What the runs so far appended to `$GITHUB_STEP_SUMMARY`.
    pub fn step_summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("step-summary.md")).unwrap_or_default()
    }

    /// A file in the world's scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kubectl ARGS` with `stdin`, as the administrator; its stdout. Fails the test when kubectl fails.
    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        use tokio::io::AsyncWriteExt as _;
        let mut child = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs (apt-get install -y kubernetes-client)");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default().as_bytes()).await.unwrap();
        drop(input);
        let output = child.wait_with_output().await.unwrap();
        assert!(output.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `kubectl ARGS -o json`, parsed.
    pub async fn kubectl_json(&self, args: &[&str]) -> Value {
        let output = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .args(["-o", "json"])
            .output()
            .await
            .expect("kubectl runs (apt-get install -y kubernetes-client)");
        assert!(output.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The route `reviews` (the VirtualService, or the HTTPRoute) as a person wrote it and fledge changed it:
    /// without bookkeeping ([`without_bookkeeping`]) or status.
    pub async fn route_object(&self) -> Value {
        let kind = match self.provider {
            Provider::Istio => "virtualservice",
            Provider::GatewayApi => "httproute",
        };
        let mut route = self.object(kind, "reviews").await;
        route.as_object_mut().unwrap().remove("status");
        route
    }

    /// The route's spec.
    pub async fn route(&self) -> Value {
        self.route_object().await["spec"].clone()
    }

    /// The versions traffic can be sent to: the DestinationRule's subsets, or the versions with a Service of their
    /// own (`reviews-<version>`, selecting it).
    pub async fn routable_versions(&self) -> Vec<String> {
        match self.provider {
            Provider::Istio => {
                let rule = self.kubectl_json(&["get", "destinationrule", "reviews", "-n", "bookinfo"]).await;
                rule["spec"]["subsets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|subset| subset["name"].as_str().map(str::to_owned))
                    .collect()
            }
            Provider::GatewayApi => {
                let services = self.kubectl_json(&["get", "services", "-n", "bookinfo"]).await;
                services["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|service| {
                        service["metadata"]["name"].as_str().is_some_and(|name| name.starts_with("reviews-"))
                    })
                    .filter_map(|service| service["spec"]["selector"]["version"].as_str().map(str::to_owned))
                    .collect()
            }
        }
    }

    /// A Deployment, or `None`.
    pub async fn deployment(&self, name: &str) -> Option<Value> {
        let list = self.kubectl_json(&["get", "deployments", "-n", "bookinfo"]).await;
        list["items"].as_array().into_iter().flatten().find(|item| item["metadata"]["name"] == name).cloned()
    }

    /// The versions of the managed route (the VirtualService's first http route; the HTTPRoute's rule `primary`)
    /// and the share of its traffic each gets, in percent: `[("v1", 80), ("v2", 20)]`. (Istio's weights are those
    /// shares; a backendRef's weight is relative to the others', 1 when not written.)
    pub async fn weights(&self) -> Vec<(String, i64)> {
        let route = self.route().await;
        let (entries, version_of): (_, fn(&Value) -> String) = match self.provider {
            Provider::Istio => (route["http"][0]["route"].clone(), |entry| {
                entry["destination"]["subset"].as_str().unwrap_or_default().to_owned()
            }),
            Provider::GatewayApi => {
                let rules = route["rules"].as_array().cloned().unwrap_or_default();
                let primary = rules.into_iter().find(|rule| rule["name"] == "primary").unwrap_or_default();
                (primary["backendRefs"].clone(), |entry| {
                    entry["name"].as_str().unwrap_or_default().trim_start_matches("reviews-").to_owned()
                })
            }
        };
        let entries = entries.as_array().cloned().unwrap_or_default();
        // Istio's lone destination takes everything; a backendRef's weight defaults to 1.
        let default_weight = match self.provider {
            Provider::Istio => 100,
            Provider::GatewayApi => 1,
        };
        let weights: Vec<i64> =
            entries.iter().map(|entry| entry["weight"].as_i64().unwrap_or(default_weight)).collect();
        let total: i64 = weights.iter().sum();
        entries
            .iter()
            .zip(weights)
            .map(|(entry, weight)| (version_of(entry), if total > 0 { weight * 100 / total } else { 0 }))
            .collect()
    }
}

/// What no output of fledge may ever contain, in any test: the test webhooks' token and path (for Slack and Teams the
/// path is the credential). Every `Running::finish` checks stdout and stderr for them.
pub const SECRETS: [&str; 2] = ["secret-token", "/hooks/release"];

/// Starts `fledge ARGS MANIFEST --kubeconfig KUBECONFIG --log-format json`, with `$GITHUB_STEP_SUMMARY` at
/// `summary`; stdout and stderr are piped, and the process is killed when dropped.
pub fn spawn_fledge(args: &[&str], manifest: &Path, kubeconfig: &Path, summary: &Path) -> Running {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fledge"))
        .args(args)
        .arg(manifest)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--log-format", "json"])
        .env("GITHUB_STEP_SUMMARY", summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("fledge starts");
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    Running { child, lines: receiver, seen: Vec::new() }
}

/// A `fledge` process whose stderr events can be waited for.
pub struct Running {
    pub child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Waits for an event named `name` for which `matches` holds; fails the test after `deadline`.
    pub async fn wait_for(&mut self, name: &str, deadline: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        match self.try_wait_for(name, deadline, matches).await {
            Some(event) => event,
            None => panic!("no `{name}` event within {deadline:?}; stderr so far:\n{}", self.seen.join("\n")),
        }
    }

    /// Waits for an event named `name` for which `matches` holds: `None` when the process ended first or `deadline`
    /// passed.
    pub async fn try_wait_for(
        &mut self,
        name: &str,
        deadline: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let result = tokio::time::timeout(deadline, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["event"] == name
                    && matches(&event)
                {
                    return Some(event);
                }
            }
            None
        })
        .await;
        result.ok().flatten()
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill").args(["-s", signal, &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end.
    pub async fn finish(mut self) -> Finished {
        let mut stdout = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            use tokio::io::AsyncReadExt as _;
            let _ = pipe.read_to_string(&mut stdout).await;
        }
        let status = self.child.wait().await.unwrap();
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        for secret in SECRETS {
            let leaked: Vec<&String> = self.seen.iter().chain([&stdout]).filter(|line| line.contains(secret)).collect();
            assert!(leaked.is_empty(), "fledge printed a secret ({secret}): {leaked:?}");
        }
        let (mut events, mut other) = (Vec::new(), Vec::new());
        for line in self.seen {
            match serde_json::from_str::<Value>(&line) {
                Ok(event) if event.get("event").is_some() => events.push(event),
                _ => other.push(line),
            }
        }
        Finished { code: status.code().unwrap_or(-1), stdout, events, other }
    }
}

/// A webhook receiver that answers its first request with HTTP 500 and the others with 200, and keeps each body.
pub struct Webhook {
    pub url: String,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/release?token=secret-token", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            let mut answered = 0;
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Read the head, then the body by its Content-Length.
                let body = loop {
                    let Ok(read) = socket.read(&mut buffer).await else { break None };
                    if read == 0 {
                        break None;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|line| {
                                line.to_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break Some(body.to_owned());
                        }
                    }
                };
                answered += 1;
                let status = if answered == 1 { "500 Internal Server Error" } else { "200 OK" };
                if answered > 1
                    && let Some(body) = body.and_then(|body| serde_json::from_str(&body).ok())
                {
                    seen.lock().unwrap().push(body);
                }
                let _ = socket
                    .write_all(
                        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                    )
                    .await;
            }
        });
        Webhook { url, bodies }
    }

    /// The `event` field of every body received (after the failed first one), in order.
    pub fn events(&self) -> Vec<String> {
        self.bodies.lock().unwrap().iter().filter_map(|body| body["event"].as_str().map(str::to_owned)).collect()
    }
}
