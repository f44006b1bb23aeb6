//! Helpers for fledge's integration tests: a real Prometheus per test, scraping what the test names, and polling
//! with a deadline.
//!
//! ```text
//!  test ──start──▶ TestPrometheus (Debian's prometheus binary, temporary TSDB, 1 s scrapes) ──scrapes──▶ targets
//! ```
//!
//! Prometheus is required: when the binary is missing the test fails with the command that installs it, so a CI
//! run without Prometheus cannot pass by skipping.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The Prometheus binary on `PATH`; panics with the install command when it is missing.
pub fn prometheus_binary() -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("prometheus")).find(|path| path.is_file()));
    found.expect("prometheus is not installed; install it with `apt-get install -y prometheus` (.ci/run does)")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// A Prometheus server of a test; killed when dropped.
pub struct TestPrometheus {
    process: Option<tokio::process::Child>,
    /// The base URL of its HTTP API, like `http://127.0.0.1:41234`.
    pub url: String,
    port: u16,
    config: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestPrometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every second, and waits until every
    /// target has been scraped successfully.
    pub async fn start(targets: &[&str]) -> TestPrometheus {
        let dir = tempfile::tempdir().expect("temporary directory");
        let quoted: Vec<String> = targets.iter().map(|target| format!("'{target}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: test\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            quoted.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("configuration written");
        let port = free_port();
        let mut prometheus = TestPrometheus {
            process: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            config: config_path,
            data: dir.path().join("data"),
            _dir: dir,
        };
        prometheus.spawn();
        let expected = targets.len();
        let url = prometheus.url.clone();
        eventually("Prometheus to scrape every target", Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                let client = prometheus_http_query::Client::try_from(url.as_str()).ok()?;
                let response = client.query("up == 1").get().await.ok()?;
                let up = response.data().as_vector().map_or(0, Vec::len);
                (up >= expected).then_some(())
            }
        })
        .await;
        prometheus
    }

    fn spawn(&mut self) {
        let process = tokio::process::Command::new(prometheus_binary())
            .arg(format!("--config.file={}", self.config.display()))
            .arg(format!("--storage.tsdb.path={}", self.data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus starts");
        self.process = Some(process);
    }

    /// Stops the server (as a crash or an outage would): queries fail to connect until [`TestPrometheus::restart`].
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().await.expect("prometheus stops");
        }
    }

    /// Starts the server again on the same port, with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn();
        let url = self.url.clone();
        eventually("Prometheus to answer again", Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                let client = prometheus_http_query::Client::try_from(url.as_str()).ok()?;
                client.query("vector(1)").get().await.ok().map(|_| ())
            }
        })
        .await;
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
