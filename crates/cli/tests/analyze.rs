//! `fledge analyze` against a real Prometheus scraping the bookinfo simulation, with reviews-v2 (10% errors) taking
//! half of the traffic: the table, and the exit code for a pass, a failure, no data and a query Prometheus rejects.

use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use fledge_testkit::{TestPrometheus, eventually};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// bookinfo, plus reviews-v2 (image tag `-errors`: 10% of requests fail) and reviews-v3 (no traffic), with the route
/// split 50/50 between v1 and v2.
fn scenario() -> Scenario {
    let mut text = std::fs::read_to_string(workspace().join("examples/sim/bookinfo.yaml")).unwrap();
    let subsets = "      subsets:\n";
    assert!(text.contains(subsets));
    text = text.replace(
        subsets,
        &format!("{subsets}        - name: v2\n          labels: {{version: v2}}\n        - name: v3\n          labels: {{version: v3}}\n"),
    );
    let route = "            - destination: {host: reviews, subset: v1}\n              weight: 100\n";
    assert!(text.contains(route));
    text = text.replace(
        route,
        "            - destination: {host: reviews, subset: v1}\n              weight: 50\n            - destination: {host: reviews, subset: v2}\n              weight: 50\n",
    );
    for (version, tag) in [("v2", "2.0.0-errors"), ("v3", "3.0.0")] {
        text.push_str(&format!(
            r#"  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: reviews-{version}, namespace: bookinfo, labels: {{app: reviews, version: {version}}}}}
    spec:
      replicas: 2
      selector: {{matchLabels: {{app: reviews, version: {version}}}}}
      template:
        metadata: {{labels: {{app: reviews, version: {version}}}}}
        spec: {{containers: [{{name: reviews, image: "registry.example.com/bookinfo/reviews:{tag}"}}]}}
"#
        ));
    }
    let mut scenario = Scenario::parse(&text).unwrap();
    scenario.time_scale = 20.0;
    scenario
}

struct Analysis {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn analyze(dir: &Path, prometheus: &str, version: &str, metrics: &str, extra: &[&str]) -> Analysis {
    let manifest = dir.join(format!("{version}.yaml"));
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: fledge/v1\nkind: Release\nservice: {{name: reviews, namespace: bookinfo, version: {version}}}\ndeploy: {{image: registry.example.com/bookinfo/reviews:x}}\nprometheus: {{url: \"{prometheus}\"}}\nanalysis:\n  interval: 5s\n{metrics}stages: [{{weight: 50, duration: 1m}}]\n"
        ),
    )
    .unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fledge"))
        .arg("analyze")
        .arg(&manifest)
        .args(extra)
        .output()
        .await
        .unwrap();
    Analysis {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

const BUILTINS: &str = "  metrics:\n    - {builtin: success-rate, min: 99, window: 20s}\n    - {builtin: latency-p99, max: 500, window: 20s}\n";

#[tokio::test(flavor = "multi_thread")]
async fn analyze_prints_the_round_and_exits_with_its_verdict() {
    let sim = Sim::start(SimConfig { scenario: scenario(), ..SimConfig::default() }).await.unwrap();
    let target = sim.metrics_url().trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let prometheus = TestPrometheus::start(&[&target]).await;
    let client = prometheus_http_query::Client::try_from(prometheus.url.as_str()).unwrap();
    for workload in ["reviews-v1", "reviews-v2"] {
        let query = format!(r#"sum(increase(istio_requests_total{{destination_workload="{workload}"}}[20s]))"#);
        eventually(&format!("traffic to {workload}"), Duration::from_secs(90), || async {
            let response = client.query(&query).get().await.ok()?;
            (response.data().as_vector()?.first()?.sample().value() > 300.0).then_some(())
        })
        .await;
    }
    let dir = tempfile::tempdir().unwrap();

    let healthy = analyze(dir.path(), &prometheus.url, "v1", BUILTINS, &[]).await;
    assert_eq!(healthy.code, 0, "{}{}", healthy.stdout, healthy.stderr);
    let lines: Vec<&str> = healthy.stdout.lines().collect();
    assert!(lines[0].starts_with("reviews v1 in bookinfo: 2 check(s) against http://127.0.0.1:"), "{lines:?}");
    assert!(lines[1].starts_with("CHECK") && lines[1].contains("THRESHOLD"), "{lines:?}");
    assert!(lines[2].starts_with("success-rate") && lines[2].contains("pass") && lines[2].contains(">= 99%"));
    assert!(lines[3].starts_with("latency-p99") && lines[3].contains("ms") && lines[3].contains("<= 500ms"));
    assert!(healthy.stdout.ends_with("round: passed\n"), "{}", healthy.stdout);

    let failing = analyze(dir.path(), &prometheus.url, "v2", BUILTINS, &["--previous-version", "v1"]).await;
    assert_eq!(failing.code, 11, "{}{}", failing.stdout, failing.stderr);
    assert!(failing.stdout.contains("compared with v1"), "{}", failing.stdout);
    assert!(failing.stdout.contains("\nsuccess-rate: FAIL\n"), "{}", failing.stdout);
    assert!(failing.stdout.contains(r#"destination_workload="reviews-v2""#), "the query is shown: {}", failing.stdout);
    assert!(failing.stdout.ends_with("round: failed\n"), "{}", failing.stdout);

    let json = analyze(dir.path(), &prometheus.url, "v2", BUILTINS, &["--output", "json"]).await;
    assert_eq!(json.code, 11);
    let round: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(round["verdict"], "failed");
    assert_eq!(round["checks"][0]["verdict"], "fail");
    assert!(round["checks"][0]["value"].as_f64().unwrap() < 99.0, "{round}");

    // A counted check judges the requests of the lookback as one look: 10% failing against 0.1%, at half the
    // traffic each, is far past the bound.
    let counted_check =
        "  metrics:\n    - {builtin: success-rate, detect: 1%}\n    - {builtin: slow-requests, slowerThan: 500ms}\n";
    let arguments = ["--previous-version", "v1", "--since", "20s", "--output", "json"];
    let counted = analyze(dir.path(), &prometheus.url, "v2", counted_check, &arguments).await;
    assert_eq!(counted.code, 11, "{}{}", counted.stdout, counted.stderr);
    let round: serde_json::Value = serde_json::from_str(&counted.stdout).unwrap();
    let check = &round["checks"][0];
    assert_eq!((&check["name"], &check["verdict"]), (&serde_json::json!("success-rate"), &serde_json::json!("fail")));
    let (new, live) = (check["value"].as_f64().unwrap(), check["previousValue"].as_f64().unwrap());
    assert!(new > 3.0 && live < 2.0, "the shares of failed requests (10% and 0.1%), in percent: {check}");
    assert!(check["detail"].as_str().unwrap().starts_with("evidence "), "{check}");
    // Neither version answers slower than 500 ms: Prometheus accepts the histogram query, and nothing is worse.
    let slow = &round["checks"][1];
    assert_eq!((&slow["name"], &slow["verdict"]), (&serde_json::json!("slow-requests"), &serde_json::json!("pass")));
    assert_eq!((slow["value"].as_f64(), slow["previousValue"].as_f64()), (Some(0.0), Some(0.0)), "{slow}");

    let idle = analyze(dir.path(), &prometheus.url, "v3", BUILTINS, &[]).await;
    assert_eq!(idle.code, 12, "no data under noData: hold: {}{}", idle.stdout, idle.stderr);
    assert!(idle.stdout.contains("0 request(s) to reviews-v3 in the last 20s"), "{}", idle.stdout);
    assert!(idle.stdout.ends_with("round: no data: a release would wait for data (noData: hold)\n"));

    let typo = "  metrics:\n    - name: typo\n      query: sum(rate(istio_requests_total{destination_workload=\"{{service}}-{{version}}\"}[{{window}}])\n      max: 1\n";
    let rejected = analyze(dir.path(), &prometheus.url, "v1", typo, &[]).await;
    assert_eq!(rejected.code, 3, "{}{}", rejected.stdout, rejected.stderr);
    assert!(
        rejected.stdout.contains("Prometheus refused the query (bad_data)")
            && rejected.stdout.contains("unclosed left parenthesis"),
        "Prometheus' own message: {}",
        rejected.stdout
    );
}
