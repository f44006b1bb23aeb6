//! Helpers for fledge's integration tests: a real Prometheus per test, scraping what the test names, and polling
//! with a deadline.
//!
//! ```text
//!  test ──start──▶ TestPrometheus (fledge-sim's LocalPrometheus: Debian's prometheus, temporary TSDB, 1 s scrapes)
//!        ──start──▶ PrometheusFaults (a proxy in front of it: slow, warnings, garbage)
//! ```
//!
//! Prometheus is required: when the binary is missing the test fails with the command that installs it, so a CI
//! run without Prometheus cannot pass by skipping.

mod prometheus_faults;

pub use prometheus_faults::{PrometheusFaults, PrometheusMode};

use fledge_sim::prometheus::LocalPrometheus;
use std::future::Future;
use std::time::Duration;

/// A Prometheus server of a test; killed when dropped.
pub struct TestPrometheus {
    server: LocalPrometheus,
    /// The base URL of its HTTP API, like `http://127.0.0.1:41234`.
    pub url: String,
}

impl TestPrometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every second, and waits until every
    /// target has been scraped; fails the test when Prometheus is missing or does not come up.
    pub async fn start(targets: &[&str]) -> TestPrometheus {
        let server = LocalPrometheus::start(targets)
            .await
            .unwrap_or_else(|error| panic!("{error} (.ci/run installs it; these tests never skip)"));
        TestPrometheus { url: server.url().to_owned(), server }
    }

    /// Stops the server (as a crash or an outage would): queries fail to connect until [`TestPrometheus::restart`].
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Starts the server again on the same port, with the same data.
    pub async fn restart(&mut self) {
        self.server.restart().await.expect("Prometheus restarts");
    }
}

/// Polls `check` every 200 ms until it yields a value; fails the test after `deadline`, naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
