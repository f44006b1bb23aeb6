//! Rehearsals: a user's release policy against a simulated cluster shaped after its manifest, with time compressed.
//!
//! ```text
//!  Release ──scenario_for──▶ fledge-sim scenario: namespace, Service, live Deployment, VirtualService,
//!     │                       DestinationRule, traffic rps × speed, new image ─▶ the rehearsed behaviour
//!     └────compress────────▶ the same release with every duration ÷ speed
//! ```
//!
//! Traffic is multiplied by the speed and every window divided by it, so the request counts a check sees (and
//! `minRequests`) are those of the real release, and the exposure a rehearsal reports is in real-release requests.

use fledge_core::release::{Release, TemplateSource, TrafficProvider};
use fledge_core::{Duration, Outcome};
use fledge_sim::scenario::{BehaviourRule, Scenario, TrafficSource};
use serde_json::{Value, json};

/// The behaviours `--all` rehearses, the healthy one first.
pub(crate) const STANDARD_SET: [&str; 7] =
    ["healthy", "crashloop", "oom", "image-pull", "errors=5%", "latency=+300ms", "crash-after=2m"];

/// Every simulated container answers with this latency tail (20 ms median) and fails 0.1% of its requests, as a
/// real service would; a healthy new version is as good as the live one, not better.
const BASELINE: &str = "p99=250ms, errors=0.1%";

/// The fastest a rehearsal runs: kubelet timings and Prometheus' 1 s scrapes stay meaningful.
const MAX_SPEED: f64 = 10.0;

/// The speed for a release: its analysis interval becomes 3 s, between 1× and 10×.
pub(crate) fn default_speed(release: &Release) -> f64 {
    (release.analysis.interval.as_std().as_secs_f64() / 3.0).clamp(1.0, MAX_SPEED)
}

/// The live version of the rehearsal: the manifest's previous version, else `v1` (or `live`).
pub(crate) fn live_version(release: &Release) -> String {
    match &release.service.previous_version {
        Some(version) => version.clone(),
        None if release.service.version == "v1" => "live".to_owned(),
        None => "v1".to_owned(),
    }
}

fn scaled(duration: Duration, speed: f64) -> Duration {
    let millis = (duration.as_millis() as f64 / speed).round().max(1.0);
    Duration::from_millis(millis as u64)
}

/// The release with every duration divided by `speed`.
pub(crate) fn compress(release: &Release, speed: f64) -> Release {
    let mut fast = release.clone();
    fast.deploy.progress_deadline =
        Duration::from_secs(scaled(release.deploy.progress_deadline, speed).as_std().as_secs().max(1));
    fast.gate.timeout = scaled(release.gate.timeout, speed);
    fast.gate.stable_for = scaled(release.gate.stable_for, speed);
    fast.gate.pending_grace = scaled(release.gate.pending_grace, speed);
    fast.analysis.interval = scaled(release.analysis.interval, speed);
    fast.analysis.max_hold = scaled(release.analysis.max_hold, speed);
    for check in &mut fast.analysis.metrics {
        check.window = scaled(check.window, speed);
    }
    for stage in &mut fast.stages {
        stage.duration = scaled(stage.duration, speed);
        stage.approval = false;
    }
    fast.promote.scale_down_delay = scaled(release.promote.scale_down_delay, speed);
    fast.notify.clear();
    fast
}

fn deployment(release: &Release, name: &str, version: &str, replicas: u32, image: &str) -> Value {
    let service = &release.service;
    let container = release.deploy.container.clone().unwrap_or_else(|| service.name.clone());
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": service.namespace, "labels": {"app": service.name, "version": version}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": service.name, "version": version}},
            "template": {
                "metadata": {"labels": {"app": service.name, "version": version}},
                "spec": {"containers": [{
                    "name": container,
                    "image": image,
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
                }]}
            }
        }
    })
}

/// The simulated cluster for rehearsing `release` with its new version behaving as `behaviour`.
pub(crate) fn scenario_for(release: &Release, behaviour: &str, rps: f64, speed: f64) -> Scenario {
    let service = &release.service;
    let namespace = &service.namespace;
    let live = live_version(release);
    let replicas = release.deploy.replicas.unwrap_or(3);
    let live_image = format!("rehearsal.invalid/{}:live", service.name);
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": namespace, "labels": {"istio-injection": "enabled"}}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": service.name, "namespace": namespace, "labels": {"app": service.name}},
               "spec": {"selector": {"app": service.name}, "ports": [{"name": "http", "port": 80}]}}),
        deployment(release, &format!("{}-{live}", service.name), &live, replicas, &live_image),
    ];
    if let TemplateSource::Deployment(name) = &release.deploy.template_source {
        objects.push(deployment(release, name, "template", 0, &live_image));
    }
    match &release.traffic.provider {
        TrafficProvider::Istio(istio) => {
            objects.push(json!({
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": istio.destination_rule, "namespace": namespace},
                "spec": {"host": service.name, "subsets": [{"name": live, "labels": {"version": live}}]}
            }));
            objects.push(json!({
                "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": istio.virtual_service, "namespace": namespace},
                "spec": {"hosts": [service.name], "http": [{
                    "name": istio.route.clone().unwrap_or_else(|| "primary".to_owned()),
                    "route": [{"destination": {"host": service.name, "subset": live}}]
                }]}
            }));
        }
        TrafficProvider::GatewayApi(gateway) => {
            let live_service = gateway.service_name(&service.name, &live);
            objects.push(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": live_service, "namespace": namespace,
                             "labels": {"app": service.name, "version": live}},
                "spec": {"selector": {"app": service.name, "version": live}, "ports": [{"name": "http", "port": 80}]}
            }));
            objects.push(json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": gateway.http_route, "namespace": namespace},
                "spec": {
                    "parentRefs": [{"group": "", "kind": "Service", "name": service.name, "port": 80}],
                    "rules": [{
                        "name": gateway.rule.clone().unwrap_or_else(|| "primary".to_owned()),
                        "backendRefs": [{"name": live_service, "port": 80}]
                    }]
                }
            }));
        }
    }
    let rehearsed =
        if behaviour.trim() == "healthy" { BASELINE.to_owned() } else { format!("{BASELINE}, {behaviour}") };
    Scenario {
        time_scale: speed,
        behaviours: vec![
            BehaviourRule { image: release.deploy.image.clone(), behaviour: rehearsed },
            BehaviourRule { image: "*".into(), behaviour: BASELINE.into() },
        ],
        traffic: vec![TrafficSource {
            service: service.name.clone(),
            namespace: namespace.clone(),
            requests_per_second: rps * speed,
            requests: Vec::new(),
        }],
        objects,
        ..Scenario::default()
    }
}

/// What one rehearsal found.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rehearsal {
    /// The behaviour of the new version.
    pub(crate) scenario: String,
    /// Which run of the scenario this is, from 1 (`--repeat`).
    pub(crate) repetition: u32,
    /// How the release ended.
    pub(crate) outcome: Outcome,
    /// Whether the policy did what it should: caught a bad version, promoted a healthy one.
    pub(crate) as_expected: bool,
    /// Where the release was when it started rolling back: `gate`, `stage 2 (25%)`.
    pub(crate) caught_at: Option<String>,
    /// Real-time seconds from the start of the release to the rollback.
    pub(crate) time_to_abort_seconds: Option<f64>,
    /// Requests the new version served (in real-release terms).
    pub(crate) requests_to_new: u64,
    /// Of those, answered 5xx.
    pub(crate) failed_requests: u64,
    /// Why it rolled back.
    pub(crate) detail: Option<String>,
}

impl Rehearsal {
    /// Whether the behaviour is a healthy version (to be promoted).
    pub(crate) fn is_healthy(scenario: &str) -> bool {
        scenario.trim() == "healthy"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/basic.yaml")).unwrap();
        fledge_manifest::parse(&text).unwrap().release
    }

    #[test]
    fn compression_divides_every_duration_and_keeps_request_counts() {
        let release = release();
        let speed = default_speed(&release);
        assert_eq!(speed, 10.0, "a 30 s interval becomes 3 s");
        let fast = compress(&release, speed);
        assert_eq!(fast.analysis.interval, Duration::from_secs(3));
        assert_eq!(fast.stages[0].duration, Duration::from_secs(12), "2m / 10");
        assert_eq!(fast.gate.stable_for, Duration::from_secs(1));
        assert_eq!(fast.analysis.metrics[0].window, Duration::from_secs(3));
        let scenario = scenario_for(&release, "errors=5%", 100.0, speed);
        assert_eq!(scenario.traffic[0].requests_per_second, 1000.0, "10x the traffic for a tenth of the time");
        assert_eq!(scenario.behaviours[0].image, release.deploy.image);
        assert_eq!(scenario.behaviours[0].behaviour, "p99=250ms, errors=0.1%, errors=5%");
    }
}
