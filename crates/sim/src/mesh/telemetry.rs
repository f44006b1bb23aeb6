//! Istio's standard metrics, as the proxies export them: `istio_requests_total` and the
//! `istio_request_duration_milliseconds` histogram, with Istio's label names and Envoy's default buckets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Envoy's default histogram buckets, in milliseconds.
pub const DURATION_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0,
    600000.0, 1800000.0, 3600000.0,
];

/// The labels of one request series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `destination` (server proxy), `source` (client proxy) or `waypoint` (the ambient mesh's waypoint proxy).
    pub reporter: String,
    /// Client workload.
    pub source_workload: String,
    /// Client namespace.
    pub source_workload_namespace: String,
    /// Client identity.
    pub source_principal: String,
    /// Client `app` label.
    pub source_app: String,
    /// Client `version` label.
    pub source_version: String,
    /// Client canonical service.
    pub source_canonical_service: String,
    /// Client canonical revision.
    pub source_canonical_revision: String,
    /// Client cluster.
    pub source_cluster: String,
    /// Server workload: the Deployment name.
    pub destination_workload: String,
    /// Server namespace.
    pub destination_workload_namespace: String,
    /// Server identity.
    pub destination_principal: String,
    /// Server `app` label.
    pub destination_app: String,
    /// Server `version` label.
    pub destination_version: String,
    /// Service FQDN.
    pub destination_service: String,
    /// Service name.
    pub destination_service_name: String,
    /// Service namespace.
    pub destination_service_namespace: String,
    /// Server canonical service.
    pub destination_canonical_service: String,
    /// Server canonical revision.
    pub destination_canonical_revision: String,
    /// Server cluster.
    pub destination_cluster: String,
    /// `http`.
    pub request_protocol: String,
    /// HTTP status code.
    pub response_code: String,
    /// Envoy response flags (`-`, `UH`, `NC`, `NR`).
    pub response_flags: String,
    /// `mutual_tls` (destination) or `unknown` (source).
    pub connection_security_policy: String,
}

/// The metrics and their registry.
pub struct Telemetry {
    /// `istio_requests_total`
    pub requests: Family<RequestLabels, Counter>,
    /// `istio_request_duration_milliseconds`
    pub durations: Family<RequestLabels, Histogram>,
    registry: Registry,
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        let mut registry = Registry::default();
        registry.register("istio_requests", "Total number of requests handled by an Istio proxy", requests.clone());
        registry.register(
            "istio_request_duration_milliseconds",
            "Duration of requests, in milliseconds",
            durations.clone(),
        );
        Telemetry { requests, durations, registry }
    }
}

impl Telemetry {
    /// The OpenMetrics text of every series.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
