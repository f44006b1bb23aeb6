//! Metric checks against a real Prometheus (Debian's `prometheus`, started per test) scraping fledge-sim's Istio
//! telemetry: pass, fail, no data and error each where they belong, and a typo caught by preflight with
//! Prometheus' own message. These tests fail, not skip, when Prometheus is missing.

use fledge_core::analysis::{AnalysisAbort, RoundVerdict, StageTally, TallyDecision};
use fledge_core::{CheckVerdict, Release};
use fledge_metrics::{AnalysisTarget, Analyzer, PreflightError, PrometheusClient, Round};
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use fledge_testkit::{TestPrometheus, eventually};
use std::time::Duration;
use tokio::time::Instant;

/// Every image has a realistic latency tail (p99 250 ms; the simulator's default is 80 ms), so that "+300 ms" moves
/// the p99 past 500 ms as it would in production; Istio's histogram cannot tell a 380 ms p99 from 497 ms.
const BEHAVIOURS: &str = r#"
behaviours:
  - {image: "example.com/app:errors", behaviour: "p99=250ms, errors=5%"}
  - {image: "example.com/app:one-percent", behaviour: "p99=250ms, errors=1%"}
  - {image: "example.com/app:slow", behaviour: "p99=250ms, latency=+300ms"}
  - {image: "example.com/app:plus-100ms", behaviour: "latency=+100ms"}
  - {image: "example.com/app:plus-300ms", behaviour: "latency=+300ms"}
  - {image: "example.com/app:*", behaviour: "p99=250ms"}
"#;

/// A namespace `shop` with one Service per case; `deployments` lists `(service, version, image tag)`. Services in
/// `traffic` receive `rps` requests per second, split across their Ready pods.
fn scenario(deployments: &[(&str, &str, &str)], traffic: &[(&str, u32)]) -> Scenario {
    let mut text = format!("timeScale: 20\n{BEHAVIOURS}\ntraffic:{}\n", if traffic.is_empty() { " []" } else { "" });
    for (service, rps) in traffic {
        text.push_str(&format!("  - {{service: {service}, namespace: shop, requestsPerSecond: {rps}}}\n"));
    }
    text.push_str(
        "objects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {istio-injection: enabled}}}\n",
    );
    let mut services: Vec<&str> = deployments.iter().map(|(service, _, _)| *service).collect();
    services.dedup();
    for service in services {
        text.push_str(&format!(
            "  - {{apiVersion: v1, kind: Service, metadata: {{name: {service}, namespace: shop}}, spec: {{selector: {{app: {service}}}, ports: [{{port: 80}}]}}}}\n"
        ));
    }
    for (service, version, tag) in deployments {
        text.push_str(&format!(
            r#"  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: {service}-{version}, namespace: shop}}
    spec:
      replicas: 2
      selector: {{matchLabels: {{app: {service}, version: {version}}}}}
      template:
        metadata: {{labels: {{app: {service}, version: {version}}}}}
        spec: {{containers: [{{name: app, image: "example.com/app:{tag}"}}]}}
"#
        ));
    }
    Scenario::parse(&text).expect("valid scenario")
}

struct World {
    sim: Sim,
    prometheus: TestPrometheus,
}

async fn start(deployments: &[(&str, &str, &str)], traffic: &[(&str, u32)]) -> World {
    let sim = Sim::start(SimConfig { scenario: scenario(deployments, traffic), ..SimConfig::default() })
        .await
        .expect("simulator starts");
    let target = sim.metrics_url().trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let prometheus = TestPrometheus::start(&[&target]).await;
    World { sim, prometheus }
}

/// A release of `service` version `version` (previous `v1`) with this `analysis:` block.
fn release(world: &World, service: &str, version: &str, analysis: &str) -> Release {
    let text = format!(
        "apiVersion: fledge/v1\nkind: Release\nservice: {{name: {service}, namespace: shop, version: {version}, previousVersion: v1}}\ndeploy: {{image: example.com/app:x}}\nprometheus: {{url: \"{}\", timeout: 2s}}\nanalysis:\n{analysis}\nstages: [{{weight: 50, duration: 1m}}]\n",
        world.prometheus.url
    );
    fledge_manifest::parse(&text).unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render("test", &text))).release
}

fn analyzer(release: &Release) -> Analyzer {
    let client = PrometheusClient::new(&release.prometheus).expect("client");
    Analyzer::new(
        client,
        release.analysis.clone(),
        AnalysisTarget::for_release(release, None, fledge_core::release::DataPlane::Sidecar),
    )
}

async fn round(analyzer: &Analyzer, since: jiff::Timestamp) -> Round {
    analyzer.round(since, Instant::now() + Duration::from_secs(5)).await
}

/// Waits until Prometheus has seen `requests` requests to each deployment over the last `window`.
async fn wait_for_requests(world: &World, deployments: &[&str], window: &str, requests: f64) {
    let client = prometheus_http_query::Client::try_from(world.prometheus.url.as_str()).unwrap();
    for deployment in deployments {
        let query = format!(
            r#"sum(increase(istio_requests_total{{reporter="destination",destination_workload="{deployment}"}}[{window}]))"#
        );
        eventually(&format!("{requests} requests to {deployment} in Prometheus"), Duration::from_secs(90), || async {
            let response = client.query(&query).get().await.ok()?;
            let value = response.data().as_vector()?.first()?.sample().value();
            (value >= requests).then_some(())
        })
        .await;
    }
}

fn verdicts(round: &Round) -> Vec<(&str, CheckVerdict)> {
    round.checks.iter().map(|check| (check.name.as_str(), check.verdict)).collect()
}

fn check<'r>(round: &'r Round, name: &str) -> &'r fledge_core::analysis::CheckResult {
    round.checks.iter().find(|check| check.name == name).unwrap_or_else(|| panic!("no check {name}: {round:?}"))
}

const BUILTINS: &str = "  interval: 2s\n  metrics:\n    - {builtin: success-rate, min: 99, window: 20s}\n    - {builtin: latency-p99, max: 500, window: 20s}\n";

#[tokio::test(flavor = "multi_thread")]
async fn healthy_passes_and_errors_or_latency_fail_their_builtin_checks() {
    let world = start(
        &[("healthy", "v2", "good"), ("errors", "v2", "errors"), ("slow", "v2", "slow")],
        &[("healthy", 60), ("errors", 60), ("slow", 60)],
    )
    .await;
    // A whole 20 s window of requests: with half of one, the slow version's p99 (2.8% of requests over 500 ms) can
    // land under 500 ms by chance once in 500 runs.
    wait_for_requests(&world, &["healthy-v2", "errors-v2", "slow-v2"], "20s", 1100.0).await;
    let since = jiff::Timestamp::now();

    let healthy = round(&analyzer(&release(&world, "healthy", "v2", BUILTINS)), since).await;
    assert_eq!(healthy.verdict, RoundVerdict::Passed, "{healthy:#?}");
    let success = check(&healthy, "success-rate");
    assert!(success.value.unwrap() >= 99.0 && success.value.unwrap() <= 100.0, "{success:?}");
    assert!(success.query.contains(r#"destination_workload="healthy-v2""#), "the query is scoped: {}", success.query);
    assert!(success.query.contains(r#"destination_workload_namespace="shop""#));

    let errors = round(&analyzer(&release(&world, "errors", "v2", BUILTINS)), since).await;
    assert_eq!(verdicts(&errors), [("success-rate", CheckVerdict::Fail), ("latency-p99", CheckVerdict::Pass)]);
    let rate = check(&errors, "success-rate").value.unwrap();
    assert!((91.0..98.0).contains(&rate), "5% errors give a success rate near 95%: {rate}");
    assert_eq!(errors.verdict, RoundVerdict::Failed);

    let slow = round(&analyzer(&release(&world, "slow", "v2", BUILTINS)), since).await;
    assert_eq!(verdicts(&slow), [("success-rate", CheckVerdict::Pass), ("latency-p99", CheckVerdict::Fail)]);
    let p99 = check(&slow, "latency-p99");
    assert!(p99.value.unwrap() > 500.0, "{p99:?}");
    assert_eq!(p99.threshold, "<= 500ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relative_check_and_the_judge_catch_a_doubled_latency_an_absolute_threshold_misses() {
    let world = start(
        &[
            ("regress", "v1", "plus-100ms"),
            ("regress", "v2", "plus-300ms"),
            // A p99 inside a histogram bucket: at a bucket's edge (the `good` preset's 250 ms) the quantile swings
            // between buckets and two equal versions look different to the judge.
            ("steady", "v1", "plus-100ms"),
            ("steady", "v2", "plus-100ms"),
        ],
        &[("regress", 200), ("steady", 400)],
    )
    .await;
    let since = jiff::Timestamp::now();
    wait_for_requests(&world, &["regress-v1", "regress-v2", "steady-v1", "steady-v2"], "20s", 1500.0).await;
    // Enough history for the judge: one sample per 2 s interval, at least 5 of each version.
    tokio::time::sleep(Duration::from_secs(12)).await;

    let analysis = "  interval: 2s\n  metrics:\n    - {name: absolute, builtin: latency-p99, max: 1000, window: 20s}\n    - {name: relative, builtin: latency-p99, compare: previous, maxIncrease: 50%, window: 20s}\n    - {name: judged, builtin: latency-p99, compare: previous, judge: {}, window: 20s}\n";
    let regress = round(&analyzer(&release(&world, "regress", "v2", analysis)), since).await;
    assert_eq!(
        verdicts(&regress),
        [("absolute", CheckVerdict::Pass), ("relative", CheckVerdict::Fail), ("judged", CheckVerdict::Fail)],
        "{regress:#?}"
    );
    let relative = check(&regress, "relative");
    let (value, previous) = (relative.value.unwrap(), relative.previous_value.unwrap());
    assert!(value < 1000.0 && value / previous > 1.6, "about 2x: {value} vs {previous}");
    assert!(check(&regress, "judged").detail.starts_with("High"), "{:?}", check(&regress, "judged"));

    let steady = round(&analyzer(&release(&world, "steady", "v2", analysis)), since).await;
    assert_eq!(steady.verdict, RoundVerdict::Passed, "two equal versions pass every comparison: {steady:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_traffic_is_no_data_and_each_policy_does_what_it_says() {
    let world = start(&[("idle", "v1", "good"), ("idle", "v2", "good")], &[]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let since = jiff::Timestamp::now();
    for (policy, expected) in
        [("hold", RoundVerdict::NoData), ("fail", RoundVerdict::Failed), ("pass", RoundVerdict::Passed)]
    {
        let analysis = format!("  noData: {policy}\n{BUILTINS}");
        let round = round(&analyzer(&release(&world, "idle", "v2", &analysis)), since).await;
        assert_eq!(round.verdict, expected, "noData: {policy}: {round:#?}");
        assert!(round.checks.iter().all(|check| check.verdict == CheckVerdict::NoData && check.value.is_none()));
        assert!(
            check(&round, "success-rate")
                .detail
                .contains("0 request(s) to idle-v2 in the last 20s, fewer than analysis.minRequests (20)"),
            "{round:#?}"
        );
    }
    // Without a request minimum the builtins still have nothing to judge: 0/0 is NaN, no buckets is no series.
    let analysis = format!("  minRequests: 0\n{BUILTINS}");
    let round = round(&analyzer(&release(&world, "idle", "v2", &analysis)), since).await;
    assert_eq!(verdicts(&round), [("success-rate", CheckVerdict::NoData), ("latency-p99", CheckVerdict::NoData)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_series_are_an_error_naming_them() {
    let world = start(&[("shop", "v1", "good"), ("shop", "v2", "good")], &[("shop", 40)]).await;
    wait_for_requests(&world, &["shop-v1", "shop-v2"], "20s", 200.0).await;
    let analysis = "  interval: 2s\n  metrics:\n    - name: by-version\n      query: sum by (destination_version) (rate(istio_requests_total{reporter=\"destination\",destination_service_name=\"{{service}}\"}[{{window}}]))\n      min: 0\n      window: 20s\n";
    let round = round(&analyzer(&release(&world, "shop", "v2", analysis)), jiff::Timestamp::now()).await;
    let result = check(&round, "by-version");
    assert_eq!(result.verdict, CheckVerdict::Error, "{result:?}");
    assert!(result.detail.contains("returned 2 series"), "{}", result.detail);
    assert!(result.detail.contains(r#"{destination_version="v1"}"#), "the series are named: {}", result.detail);
    assert_eq!(round.verdict, RoundVerdict::Errored);
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_stopped_mid_analysis_is_an_error_never_a_pass_and_the_error_limit_rolls_back() {
    let mut world = start(&[("healthy", "v2", "good")], &[("healthy", 60)]).await;
    wait_for_requests(&world, &["healthy-v2"], "20s", 300.0).await;
    let analysis = format!("  queryErrorLimit: 3\n{BUILTINS}");
    let release = release(&world, "healthy", "v2", &analysis);
    let analyzer = analyzer(&release);
    let mut tally = StageTally::new(release.analysis.failure_limit, release.analysis.query_error_limit);
    let since = jiff::Timestamp::now();
    assert_eq!(tally.record(round(&analyzer, since).await.verdict), TallyDecision::Continue);

    world.prometheus.stop().await;
    let mut decisions = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let round = analyzer.round(since, started + Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_secs(4), "retries stay within the deadline");
        assert!(round.checks.iter().all(|check| check.verdict == CheckVerdict::Error), "{round:#?}");
        assert!(check(&round, "success-rate").detail.contains("failed to reach Prometheus at"), "{round:#?}");
        decisions.push(tally.record(round.verdict));
    }
    assert_eq!(
        decisions,
        [
            TallyDecision::Hold,
            TallyDecision::Hold,
            TallyDecision::RollBack(AnalysisAbort::QueryErrorLimit { consecutive_errors: 3 })
        ]
    );

    world.prometheus.restart().await;
    let recovered = eventually("checks to pass again after Prometheus restarts", Duration::from_secs(60), || async {
        let round = round(&analyzer, since).await;
        (round.verdict == RoundVerdict::Passed).then_some(round)
    })
    .await;
    assert!(recovered.checks.iter().all(|check| check.value.is_some()));
    drop(world.sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_that_never_answers_times_out_as_an_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts connections and never answers.
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let text = format!(
        "apiVersion: fledge/v1\nkind: Release\nservice: {{name: shop, namespace: shop, version: v2}}\ndeploy: {{image: example.com/app:x}}\nprometheus: {{url: \"http://{address}\", timeout: 500ms}}\n"
    );
    let release = fledge_manifest::parse(&text).unwrap().release;
    let analyzer = analyzer(&release);
    let round = analyzer.round(jiff::Timestamp::now(), Instant::now() + Duration::from_secs(2)).await;
    assert_eq!(round.verdict, RoundVerdict::Errored);
    assert!(check(&round, "success-rate").detail.contains("did not answer within 500ms"), "{round:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_shows_prometheus_own_message_for_a_typo_and_warns_about_silent_queries() {
    let world = start(&[("shop", "v1", "good")], &[("shop", 40)]).await;
    wait_for_requests(&world, &["shop-v1"], "20s", 100.0).await;
    let typo = "  metrics:\n    - name: typo\n      query: sum(rate(istio_requests_total{destination_workload=\"{{service}}-{{version}}\"}[{{window}}])\n      max: 1\n    - {builtin: success-rate, min: 99}\n";
    let error = analyzer(&release(&world, "shop", "v2", typo))
        .preflight(Instant::now() + Duration::from_secs(5))
        .await
        .expect_err("a typo fails preflight");
    let PreflightError::Rejected { rejections } = &error else { panic!("expected a rejection: {error:?}") };
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0].check, "typo");
    assert!(rejections[0].message.contains("unclosed left parenthesis"), "Prometheus' message: {error}");

    let silent = "  metrics:\n    - name: silent\n      query: sum(rate(no_such_metric{version=\"{{version}}\"}[{{window}}]))\n      max: 1\n    - {builtin: success-rate, min: 99}\n";
    let warnings = analyzer(&release(&world, "shop", "v2", silent))
        .preflight(Instant::now() + Duration::from_secs(5))
        .await
        .expect("a query that returns nothing is only a warning");
    assert_eq!(warnings.len(), 1, "the live version's success rate has data: {warnings:?}");
    assert!(warnings[0].contains("check `silent` returns no series for the live version shop-v1"), "{warnings:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_tries_a_counted_check_as_the_release_reads_it() {
    let world = start(&[("shop", "v1", "good")], &[("shop", 40)]).await;
    wait_for_requests(&world, &["shop-v1"], "20s", 100.0).await;
    let preflight = |analysis: String| {
        let analyzer = analyzer(&release(&world, "shop", "v2", &analysis));
        async move { analyzer.preflight(Instant::now() + Duration::from_secs(5)).await }
    };
    let requests = r#"sum(istio_requests_total{destination_workload=\"{{service}}-{{version}}\"})"#;
    let counted = |bad: &str, total: &str| {
        format!(
            "  metrics:\n    - {{builtin: success-rate, detect: 1%}}\n    - {{builtin: slow-requests, slowerThan: 500ms}}\n    - {{name: custom, bad: \"{bad}\", total: \"{total}\"}}\n"
        )
    };

    // The live version has never failed a request: no series of bad requests, and that is no warning.
    let failed =
        r#"sum(istio_requests_total{destination_workload=\"{{service}}-{{version}}\",response_code=~\"5.*\"})"#;
    let warnings = preflight(counted(failed, requests)).await.expect("every counter is accepted");
    assert_eq!(warnings, Vec::<String>::new(), "a live version without failures counts its requests");

    // A typo in `total`, which is read only beside `bad`, is Prometheus' to name.
    let typo = r#"sum(istio_requests_total{destination_workload=\"{{service}}-{{version}}\"}"#;
    let error = preflight(counted(failed, typo)).await.expect_err("a typo in total fails preflight");
    let PreflightError::Rejected { rejections } = &error else { panic!("expected a rejection: {error:?}") };
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0].check, "custom");
    assert!(rejections[0].message.starts_with("its total counter: "), "the counter is named: {error}");
    assert!(rejections[0].message.contains("unclosed left parenthesis"), "Prometheus' message: {error}");

    // A `total` that counts nothing of the live version is a warning naming the counter.
    let silent = r#"sum(no_such_metric{version=\"{{version}}\"})"#;
    let warnings = preflight(counted(failed, silent)).await.expect("a silent counter is only a warning");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "check `custom` counts no requests of the live version shop-v1 now (no series for its total counter)"
        ),
        "{warnings:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_warns_about_a_bound_a_version_as_healthy_as_the_live_one_fails_by_chance() {
    let world = start(&[("shop", "v1", "one-percent")], &[("shop", 40)]).await;
    wait_for_requests(&world, &["shop-v1"], "20s", 600.0).await;
    // 10% of 40 requests per second over 10 s: about 40 requests, of which the live version fails 1%.
    let checks = "  metrics:\n    - {name: strict, builtin: success-rate, min: 99, window: 10s}\n    - {name: tolerant, builtin: success-rate, min: 80, window: 10s}\n";
    let analyzer = analyzer(&release(&world, "shop", "v2", checks));
    let warnings = analyzer.round_noise(10, Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(warnings.len(), 1, "only the strict bound: {warnings:?}");
    let warning = &warnings[0];
    assert!(warning.starts_with("check `strict` (>= 99% over 10s) would fail about "), "{warning}");
    assert!(warning.contains("% of rounds by chance at 10% of the traffic: a window holds about "), "{warning}");
    assert!(
        warning.contains(" requests of the new version and lets 0 fail, and the live version shop-v1 fails "),
        "{warning}"
    );
    let chance: f64 = warning["check `strict` (>= 99% over 10s) would fail about ".len()..]
        .split('%')
        .next()
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("a chance: {warning}"));
    // 1 - 0.99^40 is 33%; the live share is measured over the requests so far.
    assert!((5.0..80.0).contains(&chance), "{warning}");
}
