//! The mesh routes each kind of request as Istio's sidecars do: by the first http route whose `match` holds, and a
//! route that sends to a subset that is not defined, or that selects no Ready pod, or no route at all, shows up in
//! Istio's metrics with Envoy's response flags (503 `NC`, 503 `UH`, 404 `NR`), reported by the client's proxy.

mod support;

use fledge_testkit::eventually;
use std::time::Duration;
use support::{TestCluster, bookinfo};

/// bookinfo with a VirtualService that routes by header, path and method, a DestinationRule defining subsets v1 and
/// v2 (no v2 pods), and four kinds of request.
fn scenario() -> String {
    let text = bookinfo();
    let start = text.find("  - apiVersion: networking.istio.io/v1\n    kind: DestinationRule").unwrap();
    let traffic = "traffic:\n  - {service: reviews, namespace: bookinfo, requestsPerSecond: 50}\n";
    let text = text[..start].replace(
        traffic,
        r#"traffic:
  - service: reviews
    namespace: bookinfo
    requestsPerSecond: 400
    requests:
      - {weight: 1, path: /reviews/1, headers: {X-Debug: "1"}}
      - {weight: 1, path: /api/reviews}
      - {weight: 1, path: /staging/reviews}
      - {weight: 1, path: /reviews/1}
      - {weight: 1, path: /reviews/1, method: POST}
"#,
    );
    assert!(text.contains("requestsPerSecond: 400"), "the scenario's traffic line moved");
    format!(
        "{text}{}",
        r#"  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews, namespace: bookinfo}
    spec:
      host: reviews
      subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews, namespace: bookinfo}
    spec:
      hosts: [reviews]
      http:
        - name: debug
          match: [{headers: {x-debug: {exact: "1"}}}]
          route: [{destination: {host: reviews, subset: v1}}]
        - name: api
          match: [{uri: {prefix: /api/}}]
          route: [{destination: {host: reviews, subset: v9}}]
        - name: staging
          match: [{uri: {regex: "/staging/.*"}}]
          route: [{destination: {host: reviews, subset: v2}}]
        - name: primary
          match: [{method: {exact: GET}}]
          route: [{destination: {host: reviews, subset: v1}}]
"#
    )
}

/// The mesh's metrics as Prometheus scrapes them.
async fn metrics(url: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = url.trim_start_matches("http://").trim_end_matches("/metrics");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: sim\r\n\r\n").await.unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

/// The sum of `istio_requests_total` series whose label text contains every one of `labels`.
fn requests_with(metrics: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("istio_requests_total{") && labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_take_the_first_matching_route_and_undeliverable_ones_carry_envoys_flags() {
    let cluster = TestCluster::start(&scenario()).await;
    let sim = &cluster.sim;
    let counts = || {
        (
            sim.undelivered("bookinfo", "NC"),
            sim.undelivered("bookinfo", "UH"),
            sim.undelivered("bookinfo", "NR"),
            sim.served("bookinfo", "reviews-v1").requests,
        )
    };
    // Until v1's pods are Ready its requests fail too (UH): count from when v1 serves.
    eventually("reviews-v1 serving", Duration::from_secs(60), || async {
        (sim.served("bookinfo", "reviews-v1").requests > 0).then_some(())
    })
    .await;
    let start = counts();
    eventually("every kind of request counted", Duration::from_secs(60), || async {
        let now = counts();
        (now.0 - start.0 >= 200 && now.1 - start.1 >= 200 && now.2 - start.2 >= 200 && now.3 - start.3 >= 400)
            .then_some(())
    })
    .await;
    let now = counts();
    let (no_cluster, no_upstream, no_route, served) =
        (now.0 - start.0, now.1 - start.1, now.2 - start.2, now.3 - start.3);
    // Each kind is a fifth of the requests; v1 serves two kinds (debug and primary).
    let total = (no_cluster + no_upstream + no_route + served) as f64;
    for (what, count, share) in
        [("NC", no_cluster, 0.2), ("UH", no_upstream, 0.2), ("NR", no_route, 0.2), ("v1", served, 0.4)]
    {
        let observed = count as f64 / total;
        assert!((observed - share).abs() < 0.1, "{what}: {count} of {total} ({observed:.2}, expected {share})");
    }
    assert_eq!(sim.served("bookinfo", "reviews-v2").requests, 0, "no pod of v2 exists");

    let text = metrics(sim.metrics_url()).await;
    for (code, flag) in [("503", "NC"), ("503", "UH"), ("404", "NR")] {
        let labels = [
            "reporter=\"source\"",
            "destination_service_name=\"reviews\"",
            &format!("response_code=\"{code}\"") as &str,
            &format!("response_flags=\"{flag}\""),
        ];
        assert!(requests_with(&text, &labels) > 0.0, "no {code} {flag} series in the metrics:\n{text}");
    }
}
