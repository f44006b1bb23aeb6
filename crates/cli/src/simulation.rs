//! A simulated world for `fledge demo` and `fledge rehearse`: fledge-sim in-process, a real Prometheus scraping its
//! Istio metrics, and a Kubernetes client for it.
//!
//! ```text
//!  Scenario ─▶ Sim (API + controllers + mesh) ◀── kube::Client ── runner adapters
//!                 └─ /metrics ◀── LocalPrometheus (or the user's, --prometheus-url) ◀── metric checks
//! ```

use fledge_metrics::{Answer, PrometheusClient};
use fledge_sim::prometheus::{LocalPrometheus, PrometheusError};
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig, StartError};
use std::net::SocketAddr;
use std::time::Duration;

/// Why the simulated world could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorldError {
    #[error("failed to start the simulated cluster")]
    Start(#[source] StartError),
    #[error("failed to start Prometheus (or pass --prometheus-url)")]
    Prometheus(#[source] PrometheusError),
    #[error("failed to create a client for the simulated cluster")]
    Client(#[source] fledge_kube_client::ConnectError),
    #[error("no traffic to {service} reached Prometheus at {url} within {timeout:?}; does it scrape {metrics}?")]
    NoTraffic { service: String, url: String, metrics: String, timeout: Duration },
}

/// The simulator and the Prometheus watching it.
pub(crate) struct SimulatedWorld {
    pub(crate) sim: Sim,
    _prometheus: Option<LocalPrometheus>,
    pub(crate) prometheus_url: String,
    /// The clients of a release on it.
    pub(crate) clients: fledge_kube_client::Clients,
    /// The write fence of the clients, for the release lock (one release at a time).
    pub(crate) fence: fledge_kube_client::WriteFence,
}

impl SimulatedWorld {
    /// Starts the simulator with `scenario`, its metrics on `metrics_port` (0: any), and a local Prometheus unless
    /// `prometheus_url` names one that scrapes that port.
    pub(crate) async fn start(
        scenario: Scenario,
        metrics_port: u16,
        prometheus_url: Option<String>,
    ) -> Result<SimulatedWorld, WorldError> {
        let config = SimConfig {
            scenario,
            metrics_address: SocketAddr::from(([127, 0, 0, 1], metrics_port)),
            ..SimConfig::default()
        };
        let sim = Sim::start(config).await.map_err(WorldError::Start)?;
        let (prometheus, prometheus_url) = match prometheus_url {
            Some(url) => (None, url),
            None => {
                let target = sim.metrics_url().trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
                let prometheus = LocalPrometheus::start(&[&target]).await.map_err(WorldError::Prometheus)?;
                let url = prometheus.url().to_owned();
                (Some(prometheus), url)
            }
        };
        let options = fledge_kube_client::ConnectOptions::default();
        let clients = fledge_kube_client::clients_for_url(sim.api_url(), &options).map_err(WorldError::Client)?;
        Ok(SimulatedWorld { sim, _prometheus: prometheus, prometheus_url, clients, fence: options.fence })
    }

    /// Waits until Prometheus has seen requests to `service` in `namespace`, so checks have data from the start.
    pub(crate) async fn wait_for_traffic(&self, namespace: &str, service: &str) -> Result<(), WorldError> {
        let settings = fledge_core::release::Prometheus {
            url: self.prometheus_url.clone(),
            timeout: fledge_core::Duration::from_secs(5),
            bearer_token_file: None,
            basic_auth: None,
            ca_file: None,
            insecure_skip_verify: false,
            headers: Default::default(),
        };
        let timeout = Duration::from_secs(60);
        let client = PrometheusClient::new(&settings).map_err(|_| self.no_traffic(service, timeout))?;
        let query = format!(
            r#"sum(increase(istio_requests_total{{reporter=~"destination|waypoint",destination_workload_namespace="{namespace}",destination_app="{service}"}}[10s]))"#
        );
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let attempt = tokio::time::Instant::now() + Duration::from_secs(5);
            if let Ok(answered) = client.instant(&query, attempt).await
                && matches!(answered.answer, Answer::One(requests) if requests > 0.0)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(self.no_traffic(service, timeout))
    }

    fn no_traffic(&self, service: &str, timeout: Duration) -> WorldError {
        WorldError::NoTraffic {
            service: service.to_owned(),
            url: self.prometheus_url.clone(),
            metrics: self.sim.metrics_url().to_owned(),
            timeout,
        }
    }
}
