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
    - {{builtin: success-rate, min: 99, window: 9s}}
    - {{builtin: latency-p99, max: 500, window: 9s}}
stages:
  - {{weight: 20, duration: 6s}}
  - {{weight: 50, duration: 6s}}
promote: {{scaleDownDelay: 2s}}
"#,
        image = image(tag)
    )
}

/// A cluster with bookinfo and a Prometheus that sees its traffic.
pub struct World {
    _sim: Option<Sim>,
    _prometheus: Option<TestPrometheus>,
    pub prometheus_url: String,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
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
        let dir = tempfile::tempdir().unwrap();
        if let Ok(kubeconfig) = std::env::var("FLEDGE_E2E_KUBECONFIG") {
            let prometheus_url = std::env::var("FLEDGE_E2E_PROMETHEUS")
                .expect("FLEDGE_E2E_PROMETHEUS must name the Prometheus that scrapes the cluster's Istio metrics");
            return World { _sim: None, _prometheus: None, prometheus_url, kubeconfig: kubeconfig.into(), dir };
        }
        let text = std::fs::read_to_string(workspace().join("examples/sim/bookinfo.yaml")).unwrap();
        let mut scenario = Scenario::parse(&text).unwrap();
        scenario.nodes = Some(nodes);
        let sim = Sim::start(SimConfig { scenario, ..SimConfig::default() }).await.expect("simulator starts");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, sim.kubeconfig()).unwrap();
        let target = sim.metrics_url().trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
        let prometheus = TestPrometheus::start(&[&target]).await;
        let world = World {
            prometheus_url: prometheus.url.clone(),
            _sim: Some(sim),
            _prometheus: Some(prometheus),
            kubeconfig,
            dir,
        };
        world.wait_for_live_traffic().await;
        world
    }

    /// Kubernetes API requests the simulator has served (`None` against a real cluster).
    pub fn api_requests(&self) -> Option<u64> {
        self._sim.as_ref().map(Sim::requests_served)
    }

    /// Waits until Prometheus has seen requests to the live version, so preflight and checks have data.
    async fn wait_for_live_traffic(&self) {
        let client = prometheus_http_query::Client::try_from(self.prometheus_url.as_str()).unwrap();
        let query =
            r#"sum(increase(istio_requests_total{reporter="destination",destination_service_name="reviews"}[10s]))"#;
        eventually("traffic to reviews in Prometheus", Duration::from_secs(60), || async {
            let response = client.query(query).get().await.ok()?;
            (response.data().as_vector()?.first()?.sample().value() > 50.0).then_some(())
        })
        .await;
    }

    /// Writes a release manifest of `version` with image tag `tag` ([`release_manifest`]), changed by `customize`.
    pub fn manifest(&self, version: &str, tag: &str, customize: impl FnOnce(String) -> String) -> PathBuf {
        let text = release_manifest("bookinfo", version, tag, &self.prometheus_url);
        let path = self.dir.path().join(format!("{version}-{}.yaml", tag.replace(['/', ':'], "_")));
        std::fs::write(&path, customize(text)).unwrap();
        path
    }

    /// `fledge ARGS MANIFEST --kubeconfig K --log-format json`, running.
    pub fn spawn(&self, args: &[&str], manifest: &Path) -> Running {
        spawn_fledge(args, manifest, &self.kubeconfig, &self.dir.path().join("step-summary.md"))
    }

    /// Runs `fledge ARGS MANIFEST` to its end.
    pub async fn fledge(&self, args: &[&str], manifest: &Path) -> Finished {
        self.spawn(args, manifest).finish().await
    }

    /// What the runs so far appended to `$GITHUB_STEP_SUMMARY`.
    pub fn step_summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("step-summary.md")).unwrap_or_default()
    }

    /// A file in the world's scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
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

    /// The VirtualService's spec.
    pub async fn route(&self) -> Value {
        self.kubectl_json(&["get", "virtualservice", "reviews", "-n", "bookinfo"]).await["spec"].clone()
    }

    /// The DestinationRule's subset names.
    pub async fn subsets(&self) -> Vec<String> {
        let rule = self.kubectl_json(&["get", "destinationrule", "reviews", "-n", "bookinfo"]).await;
        rule["spec"]["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|subset| subset["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// A Deployment, or `None`.
    pub async fn deployment(&self, name: &str) -> Option<Value> {
        let list = self.kubectl_json(&["get", "deployments", "-n", "bookinfo"]).await;
        list["items"].as_array().into_iter().flatten().find(|item| item["metadata"]["name"] == name).cloned()
    }

    /// The subsets and weights of the managed route: `[("v1", 80), ("v2", 20)]`.
    pub async fn weights(&self) -> Vec<(String, i64)> {
        let route = self.route().await;
        route["http"][0]["route"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| {
                (
                    entry["destination"]["subset"].as_str().unwrap_or_default().to_owned(),
                    entry["weight"].as_i64().unwrap_or(100),
                )
            })
            .collect()
    }
}

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
        match result {
            Ok(Some(event)) => event,
            _ => panic!("no `{name}` event within {deadline:?}; stderr so far:\n{}", self.seen.join("\n")),
        }
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
