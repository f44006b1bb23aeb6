//! A real Prometheus (Debian's `prometheus`, started here) scrapes fledge-sim's Istio metrics every second: the
//! standard success-rate and p99-latency queries return data, and each version's share of requests follows the
//! VirtualService weights.

mod support;

use fledge_testkit::TestPrometheus;
use std::time::Duration;
use support::{TestCluster, bookinfo, eventually};

/// Requests to each version of reviews over the last 30 s.
const SHARES: &str = r#"sum by (destination_version) (increase(istio_requests_total{reporter="destination",destination_service_name="reviews"}[30s]))"#;

/// bookinfo with a healthy reviews-v2 beside v1, and the route split 80/20.
fn split_scenario() -> String {
    let mut scenario = bookinfo();
    let subsets = "      subsets:\n";
    assert!(scenario.contains(subsets));
    scenario = scenario.replace(subsets, "      subsets:\n        - name: v2\n          labels: {version: v2}\n");
    scenario = scenario.replace(
        "            - destination: {host: reviews, subset: v1}\n              weight: 100\n",
        "            - destination: {host: reviews, subset: v1}\n              weight: 80\n            - destination: {host: reviews, subset: v2}\n              weight: 20\n",
    );
    scenario.push_str(
        r#"  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: reviews-v2, namespace: bookinfo, labels: {app: reviews, version: v2}}
    spec:
      replicas: 2
      selector: {matchLabels: {app: reviews, version: v2}}
      template:
        metadata: {labels: {app: reviews, version: v2}}
        spec:
          containers:
            - {name: reviews, image: "registry.example.com/bookinfo/reviews:2.0.0"}
"#,
    );
    scenario
}

type Samples = Vec<(std::collections::HashMap<String, String>, f64)>;

async fn try_query(prometheus: &TestPrometheus, promql: &str) -> Result<Samples, prometheus_http_query::Error> {
    let client = prometheus_http_query::Client::try_from(prometheus.url.as_str())?;
    let response = client.query(promql).get().await?;
    let samples = response.data().as_vector().map(Vec::as_slice).unwrap_or_default();
    Ok(samples.iter().map(|sample| (sample.metric().clone(), sample.sample().value())).collect())
}

async fn query(prometheus: &TestPrometheus, promql: &str) -> Samples {
    try_query(prometheus, promql).await.unwrap_or_else(|error| panic!("query {promql} failed: {error}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_sees_istio_metrics_and_shares_follow_the_weights() {
    let cluster = TestCluster::start(&split_scenario()).await;
    let target = cluster.sim.metrics_url().trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let prometheus = TestPrometheus::start(&[&target]).await;
    // Both versions serve, and 30 s of their traffic (50 requests per second) is in Prometheus.
    eventually("30 s of traffic to both versions in Prometheus", Duration::from_secs(120), || async {
        let shares = try_query(&prometheus, SHARES).await.ok()?;
        let total: f64 = shares.iter().map(|(_, value)| value).sum();
        (shares.len() == 2 && total > 1400.0).then_some(())
    })
    .await;

    let success_rate = query(
        &prometheus,
        r#"sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v1",response_code!~"5.*"}[30s])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v1"}[30s])) * 100"#,
    )
    .await;
    assert_eq!(success_rate.len(), 1, "{success_rate:?}");
    assert!((97.0..=100.0).contains(&success_rate[0].1), "success rate {success_rate:?}");

    let p99 = query(
        &prometheus,
        r#"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v2"}[30s])) by (le))"#,
    )
    .await;
    assert_eq!(p99.len(), 1, "{p99:?}");
    assert!(p99[0].1.is_finite() && p99[0].1 > 10.0 && p99[0].1 < 250.0, "p99 {p99:?}");

    let shares = query(&prometheus, SHARES).await;
    let total: f64 = shares.iter().map(|(_, value)| value).sum();
    let share = |version: &str| {
        shares
            .iter()
            .find(|(labels, _)| labels.get("destination_version").map(String::as_str) == Some(version))
            .map_or(0.0, |(_, value)| value / total * 100.0)
    };
    assert!(total > 1000.0, "expected 50 rps for 30 s, got {total}");
    assert!((share("v1") - 80.0).abs() <= 5.0, "v1 share {} of {shares:?}", share("v1"));
    assert!((share("v2") - 20.0).abs() <= 5.0, "v2 share {} of {shares:?}", share("v2"));
}
