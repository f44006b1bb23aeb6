//! The data plane: in Istio's ambient mode the waypoint reports requests (`reporter="waypoint"`), with sidecars the
//! server's sidecar (`reporter="destination"`). Without `analysis.dataPlane`, preflight finds which one Prometheus
//! has for the live version and every builtin then reads it; a data plane set wrong is seen at preflight, not in the
//! middle of a release. Against a real Prometheus scraping fledge-sim (fails, never skips, without Prometheus).

use fledge_core::ports::MetricsAnalyzer;
use fledge_metrics::{PrometheusAnalysis, PrometheusClient};
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use fledge_testkit::{TestPrometheus, eventually};
use std::time::Duration;

/// Namespace `shop` (ambient or with sidecars) with `app` v1 receiving 50 requests per second.
fn scenario(ambient: bool) -> Scenario {
    let labels = if ambient { "{istio.io/dataplane-mode: ambient}" } else { "{istio-injection: enabled}" };
    Scenario::parse(&format!(
        r#"timeScale: 20
traffic:
  - {{service: app, namespace: shop, requestsPerSecond: 50}}
objects:
  - {{apiVersion: v1, kind: Namespace, metadata: {{name: shop, labels: {labels}}}}}
  - {{apiVersion: v1, kind: Service, metadata: {{name: app, namespace: shop}}, spec: {{selector: {{app: app}}, ports: [{{port: 80}}]}}}}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: app-v1, namespace: shop}}
    spec:
      replicas: 2
      selector: {{matchLabels: {{app: app, version: v1}}}}
      template:
        metadata: {{labels: {{app: app, version: v1}}}}
        spec: {{containers: [{{name: app, image: "example.com/app:1"}}]}}
"#
    ))
    .expect("valid scenario")
}

/// A release of `app` v2 replacing v1, with `extra` in its `analysis:` block.
fn release(prometheus: &str, extra: &str) -> fledge_core::Release {
    let text = format!(
        "apiVersion: fledge/v1\nkind: Release\nservice: {{name: app, namespace: shop, version: v2}}\ndeploy: {{image: example.com/app:2}}\nprometheus: {{url: \"{prometheus}\", timeout: 2s}}\nanalysis:\n  interval: 2s\n  metrics:\n    - {{builtin: success-rate, min: 99, window: 20s}}\n{extra}stages: [{{weight: 50, duration: 1m}}]\n"
    );
    fledge_manifest::parse(&text).unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render("test", &text))).release
}

async fn world(ambient: bool) -> (Sim, TestPrometheus) {
    let sim = Sim::start(SimConfig { scenario: scenario(ambient), ..SimConfig::default() }).await.expect("starts");
    let target = sim.metrics_url().trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let prometheus = TestPrometheus::start(&[&target]).await;
    let client = prometheus_http_query::Client::try_from(prometheus.url.as_str()).unwrap();
    eventually("requests to app-v1 in Prometheus", Duration::from_secs(90), || async {
        let response = client
            .query(r#"sum(increase(istio_requests_total{destination_workload="app-v1"}[20s]))"#)
            .get()
            .await
            .ok()?;
        (response.data().as_vector()?.first()?.sample().value() > 100.0).then_some(())
    })
    .await;
    (sim, prometheus)
}

async fn preflight(release: fledge_core::Release) -> (Vec<String>, Vec<(String, String)>) {
    let analysis = PrometheusAnalysis::new(PrometheusClient::new(&release.prometheus).unwrap(), release);
    let warnings = analysis.preflight("v1", Duration::from_secs(10)).await.expect("preflight passes");
    (warnings, analysis.queries("v1"))
}

#[tokio::test(flavor = "multi_thread")]
async fn on_an_ambient_mesh_the_waypoints_reports_are_found_and_read() {
    let (_sim, prometheus) = world(true).await;
    let (warnings, queries) = preflight(release(&prometheus.url, "")).await;
    assert_eq!(warnings, Vec::<String>::new(), "the live version is measured");
    assert_eq!(
        queries,
        [(
            "success-rate".to_owned(),
            r#"100 * sum(rate(istio_requests_total{reporter="waypoint",destination_workload_namespace="shop",destination_workload="app-v2",response_code!~"5.*"}[20s])) / sum(rate(istio_requests_total{reporter="waypoint",destination_workload_namespace="shop",destination_workload="app-v2"}[20s]))"#.to_owned()
        )]
    );

    // Set wrong, the data plane is seen at preflight: the live version has no sidecar reports.
    let (warnings, queries) = preflight(release(&prometheus.url, "  dataPlane: sidecar\n")).await;
    assert!(queries[0].1.contains(r#"reporter="destination""#), "{queries:?}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("for the live version app-v1 now"), "{warnings:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_sidecars_the_servers_sidecar_reports_are_read() {
    let (_sim, prometheus) = world(false).await;
    let (warnings, queries) = preflight(release(&prometheus.url, "")).await;
    assert_eq!(warnings, Vec::<String>::new());
    assert!(queries[0].1.contains(r#"reporter="destination""#), "{queries:?}");
}
