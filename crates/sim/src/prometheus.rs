//! A local Prometheus server (the `prometheus` binary on `PATH`, Debian's package) scraping the simulator's Istio
//! metrics, for the demo, rehearsals and tests.
//!
//! ```text
//!  LocalPrometheus::start(targets) ─▶ temporary config + TSDB ─▶ prometheus --web.listen-address=127.0.0.1:PORT
//!                                                                  │ scrapes every target's /metrics every second
//!  ready once `up == 1` for every target ◀───────────────────────────┘
//! ```

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Why a local Prometheus could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The binary is not on `PATH`.
    #[error("failed to find `prometheus` on PATH; install it with `apt-get install -y prometheus`")]
    NotInstalled,
    /// Its directory or configuration could not be written.
    #[error("failed to write the Prometheus configuration in {}", dir.display())]
    Configure {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("failed to start {}", binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It did not scrape every target in time.
    #[error("Prometheus at {url} did not scrape {targets} within {timeout:?}")]
    NotReady {
        /// Its URL.
        url: String,
        /// The targets.
        targets: String,
        /// How long it was given.
        timeout: Duration,
    },
}

/// A Prometheus process with a temporary TSDB; killed and removed when dropped.
pub struct LocalPrometheus {
    process: Option<tokio::process::Child>,
    url: String,
    port: u16,
    dir: PathBuf,
    binary: PathBuf,
}

impl Drop for LocalPrometheus {
    fn drop(&mut self) {
        if let Some(process) = self.process.as_mut() {
            let _ = process.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long Prometheus may take to start and scrape every target once.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl LocalPrometheus {
    /// The `prometheus` binary on `PATH`.
    pub fn binary() -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths).map(|dir| dir.join("prometheus")).find(|path| path.is_file())
        })
    }

    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every second, and waits until it has
    /// scraped each of them.
    pub async fn start(targets: &[&str]) -> Result<LocalPrometheus, PrometheusError> {
        let binary = Self::binary().ok_or(PrometheusError::NotInstalled)?;
        let dir = std::env::temp_dir().join(format!(
            "fledge-prometheus-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let configure = |source| PrometheusError::Configure { dir: dir.clone(), source };
        std::fs::create_dir_all(&dir).map_err(configure)?;
        let quoted: Vec<String> = targets.iter().map(|target| format!("'{target}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: fledge-sim\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            quoted.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).map_err(configure)?;
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).map_err(configure)?.port();
        let mut prometheus =
            LocalPrometheus { process: None, url: format!("http://127.0.0.1:{port}"), port, dir, binary };
        prometheus.spawn()?;
        prometheus.wait_until_scraped(targets.len()).await.map_err(|()| PrometheusError::NotReady {
            url: prometheus.url.clone(),
            targets: targets.join(", "),
            timeout: READY_TIMEOUT,
        })?;
        Ok(prometheus)
    }

    /// The base URL of its HTTP API.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn spawn(&mut self) -> Result<(), PrometheusError> {
        let process = tokio::process::Command::new(&self.binary)
            .arg(format!("--config.file={}", self.dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", self.dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| PrometheusError::Spawn { binary: self.binary.clone(), source })?;
        self.process = Some(process);
        Ok(())
    }

    /// Stops the server, as an outage would: queries fail to connect until [`LocalPrometheus::restart`].
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill().await;
        }
    }

    /// Starts the server again on the same port with the same data, and waits until it answers.
    pub async fn restart(&mut self) -> Result<(), PrometheusError> {
        self.stop().await;
        self.spawn()?;
        self.wait_until_scraped(0).await.map_err(|()| PrometheusError::NotReady {
            url: self.url.clone(),
            targets: String::new(),
            timeout: READY_TIMEOUT,
        })
    }

    /// Waits until `up == 1` has at least `targets` series (0: until the API answers).
    async fn wait_until_scraped(&self, targets: usize) -> Result<(), ()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Some(up) = self.count_up().await
                && up >= targets
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(())
    }

    /// The number of targets scraped successfully, from a plain HTTP request (no client library needed).
    async fn count_up(&self) -> Option<usize> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        let request = "GET /api/v1/query?query=up%3D%3D1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
        json.pointer("/data/result").and_then(serde_json::Value::as_array).map(Vec::len)
    }
}
