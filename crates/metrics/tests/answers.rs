//! Property: whatever Prometheus answers (empty, NaN, infinities, huge numbers, several series, strings, range
//! vectors, errors, garbage), a round of checks never panics and never passes a check without a finite value.

use fledge_core::CheckVerdict;
use fledge_core::analysis::RoundVerdict;
use fledge_metrics::{AnalysisTarget, Analyzer, PrometheusClient};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

/// A sample value as Prometheus writes it, including the awkward ones.
fn sample_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("NaN".to_owned()),
        Just("+Inf".to_owned()),
        Just("-Inf".to_owned()),
        Just("1e308".to_owned()),
        Just("-1e308".to_owned()),
        Just("1e999".to_owned()),
        Just("".to_owned()),
        Just("abc".to_owned()),
        any::<f64>().prop_map(|value| value.to_string()),
        (0u32..=100).prop_map(|value| value.to_string()),
    ]
}

fn series() -> impl Strategy<Value = String> {
    (sample_value(), "[a-z]{0,3}")
        .prop_map(|(value, label)| format!(r#"{{"metric":{{"pod":"{label}"}},"value":[1700000000.5,"{value}"]}}"#))
}

/// The body of an answer to a query.
fn answer() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(series(), 0..4).prop_map(|series| format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            series.join(",")
        )),
        1 => sample_value().prop_map(|value| format!(
            r#"{{"status":"success","data":{{"resultType":"scalar","result":[1700000000,"{value}"]}}}}"#
        )),
        1 => "[a-z ]{0,10}".prop_map(|text| format!(
            r#"{{"status":"success","data":{{"resultType":"string","result":[1700000000,"{text}"]}}}}"#
        )),
        1 => prop::collection::vec(sample_value(), 0..4).prop_map(|values| {
            let values: Vec<String> = values.iter().enumerate().map(|(at, value)| format!(r#"[{at},"{value}"]"#)).collect();
            format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
                values.join(",")
            )
        }),
        1 => "[a-z :]{0,20}".prop_map(|message| format!(
            r#"{{"status":"error","errorType":"execution","error":"{message}"}}"#
        )),
        1 => ".{0,40}",
    ]
}

/// A Prometheus stand-in that answers every request with the body set last.
async fn server(body: Arc<Mutex<String>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut buffer = vec![0; 16 * 1024];
                let _ = socket.read(&mut buffer).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

/// An analyzer of four checks (absolute minimum and maximum, relative, custom); `min_requests` 0 turns the request
/// count off, so the answers meet the thresholds directly.
fn analyzer(url: &str, min_requests: u32) -> Analyzer {
    let text = format!(
        r#"apiVersion: fledge/v1
kind: Release
service: {{name: shop, namespace: shop, version: v2, previousVersion: v1}}
deploy: {{image: example.com/app:x}}
prometheus: {{url: "{url}", timeout: 1s}}
analysis:
  minRequests: {min_requests}
  metrics:
    - {{builtin: success-rate, min: 99}}
    - {{builtin: latency-p99, max: 500}}
    - {{name: errors-vs-before, query: 'sum(rate(errors{{version="{{{{version}}}}"}}[1m]))', compare: previous, maxIncrease: 50%}}
    - {{name: custom-min, query: 'vector(1)', min: 0}}
stages: [{{weight: 50, duration: 1m}}]
"#
    );
    let release = fledge_manifest::parse(&text)
        .unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render("test", &text)))
        .release;
    let client = PrometheusClient::new(&release.prometheus).expect("client");
    Analyzer::new(
        client,
        release.analysis.clone(),
        AnalysisTarget::for_release(&release, None, fledge_core::release::DataPlane::Sidecar),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_answer_panics_or_passes_a_check_without_a_finite_value(body in answer(), min_requests in prop_oneof![Just(0u32), Just(10)]) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let round = runtime.block_on(async {
            let answer = Arc::new(Mutex::new(body.clone()));
            let url = server(answer).await;
            analyzer(&url, min_requests).round(jiff::Timestamp::now(), Instant::now() + Duration::from_secs(3)).await
        });
        for check in &round.checks {
            if check.verdict == CheckVerdict::Pass {
                prop_assert!(
                    check.value.is_some_and(f64::is_finite),
                    "{} passed with {:?} on {body}", check.name, check.value
                );
            }
        }
        if round.verdict == RoundVerdict::Passed {
            prop_assert!(round.checks.iter().all(|check| check.verdict == CheckVerdict::Pass), "{round:?}");
        }
    }
}

#[tokio::test]
async fn infinities_and_nan_are_never_a_pass() {
    for (value, min_requests) in
        ["+Inf", "-Inf", "NaN", "1e999"].into_iter().flat_map(|value| [(value, 0), (value, 10)])
    {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{value}"]}}]}}}}"#
        );
        let url = server(Arc::new(Mutex::new(body))).await;
        let round =
            analyzer(&url, min_requests).round(jiff::Timestamp::now(), Instant::now() + Duration::from_secs(3)).await;
        for check in &round.checks {
            assert_ne!(check.verdict, CheckVerdict::Pass, "{} passed on {value}: {check:?}", check.name);
        }
        assert_ne!(round.verdict, RoundVerdict::Passed, "{value}");
    }
}
