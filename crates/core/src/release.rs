//! A validated release: what one manifest asks fledge to do, with every default filled in.
//!
//! `fledge-manifest` builds a [`Release`] only after every rule holds, so code that receives one can trust it:
//! names are valid Kubernetes and Istio names, stage weights rise strictly, the analysis interval fits in every
//! stage, and so on. The field names match the manifest's (camelCase when serialized).

use crate::{Duration, Percentage, Weight};
use serde::{Deserialize, Serialize};

mod traffic;
pub use traffic::{GatewayApiTraffic, IstioTraffic, PinnedRoutes, Traffic, TrafficProvider};

pub use crate::notification::{MessageFormat, Notification, NotifyEvent, WebhookSource, redacted_url, url_host};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One release of one service, validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// Which service, where, and which version is being released.
    pub service: Service,
    /// How the new version's Deployment is built.
    pub deploy: Deploy,
    /// The crash-loop gate: pod health before any traffic and during every stage.
    pub gate: Gate,
    /// How traffic is shifted: the provider and its resources.
    pub traffic: Traffic,
    /// Where metrics are read.
    pub prometheus: Prometheus,
    /// How metrics are judged during the stages.
    pub analysis: Analysis,
    /// The traffic stages, in order, with strictly increasing weights.
    pub stages: Vec<Stage>,
    /// What happens after the last stage passes.
    pub promote: Promote,
    /// What happens to the new version when the release is rolled back.
    pub rollback: Rollback,
    /// Webhooks told about the release's progress.
    pub notify: Vec<Notification>,
}

impl Release {
    /// The name of the new version's Deployment: `<service>-<version>`.
    pub fn deployment_name(&self) -> String {
        format!("{}-{}", self.service.name, self.service.version)
    }

    /// A digest of the release with every default filled in (FNV-1a, 64 bits, hex): the same manifest, however
    /// formatted, has the same digest. It tells a resumed run whether it carries on the same release.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("a release serializes");
        let hash = json.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        format!("{hash:016x}")
    }

    /// The weight at which analysis ends: the last stage's weight. Promotion always moves to 100% afterwards.
    pub fn final_stage_weight(&self) -> Weight {
        self.stages.last().map_or(Weight::ZERO, |stage| stage.weight)
    }
}

/// The service being released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The `app` label value, the Istio host's short name and the Deployment name prefix.
    pub name: String,
    /// The namespace of the Service, Deployments, VirtualService and DestinationRule.
    pub namespace: String,
    /// The new version: the `version` label of its pods and the name of its DestinationRule subset.
    pub version: String,
    /// The live version being replaced; `None` means "the subset that carries 100% of the route today".
    pub previous_version: Option<String>,
}

/// How the new version's Deployment is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deploy {
    /// The container image of the new version.
    pub image: String,
    /// Pod count; `None` means "the live version's replica count".
    pub replicas: Option<u32>,
    /// Where the pod template comes from.
    pub template_source: TemplateSource,
    /// The container whose image is replaced; `None` means "the container named like the service, or the only one".
    pub container: Option<String>,
    /// How long the Deployment may go without progress before Kubernetes marks it failed.
    pub progress_deadline: Duration,
}

/// Where the new version's pod template comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TemplateSource {
    /// Copy the live version's Deployment.
    LiveVersion,
    /// Copy the named Deployment in the release's namespace.
    Deployment(String),
    /// Use this PodTemplateSpec as given (JSON).
    Template(serde_json::Value),
}

/// The crash-loop gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Every pod must be Ready and stable within this time.
    pub timeout: Duration,
    /// How long every pod must stay Ready without interruption to count as stable.
    pub stable_for: Duration,
    /// How long a pod may stay pending (unschedulable, pulling its image, creating its containers) before the gate
    /// fails. Errors that cannot resolve themselves (a missing image, an invalid reference) fail at once.
    pub pending_grace: Duration,
    /// Restarts tolerated per container, counted from the gate's start.
    pub max_restarts: u32,
    /// Containers whose restarts alone do not fail the gate.
    pub ignore_restarts_of: Vec<String>,
}

/// How fledge reaches Prometheus. Credentials are only ever read from files, so a manifest never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prometheus {
    /// Base URL of the Prometheus HTTP API.
    pub url: String,
    /// Timeout of one query.
    pub timeout: Duration,
    /// A file holding a bearer token sent with every query.
    pub bearer_token_file: Option<PathBuf>,
    /// Basic authentication with a password read from a file.
    pub basic_auth: Option<BasicAuth>,
    /// A PEM file of certificate authorities trusted for an https URL.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification. Off unless asked for; never use it in production.
    pub insecure_skip_verify: bool,
    /// Extra request headers (for example a tenant header). Never credentials: those go in files.
    pub headers: BTreeMap<String, String>,
}

/// Basic authentication for Prometheus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// A file whose content (trailing newline removed) is the password.
    pub password_file: PathBuf,
}

/// How metrics are judged during the stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// How often checks run inside a stage.
    pub interval: Duration,
    /// Failed check rounds tolerated per stage; one more aborts the release.
    pub failure_limit: u32,
    /// Fewer requests than this to the new version in a check's window means "no data".
    pub min_requests: u64,
    /// What a check without data does.
    pub no_data: NoDataPolicy,
    /// With `noData: hold`, the longest a stage may wait for data before the release is rolled back.
    pub max_hold: Duration,
    /// Consecutive rounds with a query error before the release aborts. Errors never count as a pass.
    pub query_error_limit: u32,
    /// The checks, in manifest order.
    pub metrics: Vec<MetricCheck>,
    /// Which proxies report the builtins' requests; `None` means "what Prometheus shows for the live version".
    pub data_plane: Option<DataPlane>,
    /// The chance, per release, that counted checks roll back a version that is not worse (0.01: 1%). Split evenly
    /// over the counted checks.
    pub false_alarm: f64,
}

impl Analysis {
    /// The counted checks, judged by the sequential test.
    pub fn counted_checks(&self) -> impl Iterator<Item = &MetricCheck> {
        self.metrics.iter().filter(|check| check.is_counted())
    }

    /// The checks judged in rounds: thresholds, comparisons and the Mann-Whitney judge.
    pub fn round_checks(&self) -> impl Iterator<Item = &MetricCheck> {
        self.metrics.iter().filter(|check| !check.is_counted())
    }

    /// The false-alarm rate of each counted check's test: `false_alarm` split evenly over them.
    pub fn false_alarm_per_check(&self) -> f64 {
        self.false_alarm / self.counted_checks().count().max(1) as f64
    }
}

/// Istio's data plane, which decides which proxy reports a request to the service's pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataPlane {
    /// Sidecar proxies: the server's sidecar reports (`reporter="destination"`).
    Sidecar,
    /// Ambient mode: the service's waypoint proxy reports (`reporter="waypoint"`).
    Ambient,
}

impl DataPlane {
    /// The name used in manifests.
    pub fn manifest_name(self) -> &'static str {
        match self {
            DataPlane::Sidecar => "sidecar",
            DataPlane::Ambient => "ambient",
        }
    }

    /// The value of Istio's `reporter` label that counts each request once, as the server side saw it.
    pub fn reporter(self) -> &'static str {
        match self {
            DataPlane::Sidecar => "destination",
            DataPlane::Ambient => "waypoint",
        }
    }
}

/// What a check that has no data does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoDataPolicy {
    /// The stage clock stops until data arrives (bounded by `maxHold`).
    Hold,
    /// No data counts as a failed check.
    Fail,
    /// No data counts as a passed check.
    Pass,
}

/// One metric check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricCheck {
    /// Unique name within the release, used in reports.
    pub name: String,
    /// What is measured.
    pub source: MetricSource,
    /// The range of the query (`{{window}}`).
    pub window: Duration,
    /// How the value is judged.
    pub threshold: Threshold,
}

impl MetricCheck {
    /// Whether the check counts bad requests and is judged by the sequential test.
    pub fn is_counted(&self) -> bool {
        matches!(self.threshold, Threshold::Sequential { .. })
    }

    /// The unit of the check's values (`%`, `ms`), empty for custom queries. A counted check's values are shares
    /// of bad requests, in percent.
    pub fn unit(&self) -> &'static str {
        match (&self.source, &self.threshold) {
            (_, Threshold::Sequential { .. }) => "%",
            (MetricSource::Builtin(builtin), _) => builtin.unit(),
            (MetricSource::SlowRequests { .. } | MetricSource::Counted { .. }, _) => "%",
            (MetricSource::Query(_), _) => "",
        }
    }

    /// The threshold as a reader would write it: `>= 99%`, `at most +20% vs the previous version`.
    pub fn describe_threshold(&self) -> String {
        let unit = self.unit();
        match &self.threshold {
            Threshold::Absolute { min, max } => {
                let mut bounds = Vec::new();
                if let Some(min) = min {
                    bounds.push(format!(">= {min}{unit}"));
                }
                if let Some(max) = max {
                    bounds.push(format!("<= {max}{unit}"));
                }
                bounds.join(" and ")
            }
            Threshold::RelativeToPrevious { max_increase, max_decrease } => {
                let mut bounds = Vec::new();
                if let Some(increase) = max_increase {
                    bounds.push(format!("at most +{increase}"));
                }
                if let Some(decrease) = max_decrease {
                    bounds.push(format!("at most -{decrease}"));
                }
                format!("{} vs the previous version", bounds.join(" and "))
            }
            Threshold::Statistical { confidence, tolerance, fail_on } => {
                let direction = match fail_on {
                    Direction::Increase => "higher",
                    Direction::Decrease => "lower",
                    Direction::Either => "different",
                };
                format!(
                    "not {direction} than the previous version (Mann-Whitney, {}% confidence, {tolerance} tolerance)",
                    confidence * 100.0
                )
            }
            Threshold::Sequential { detect } => {
                let bad = match &self.source {
                    MetricSource::Builtin(BuiltinMetric::SuccessRate) => "failed requests".to_owned(),
                    MetricSource::SlowRequests { slower_than } => format!("requests slower than {slower_than}"),
                    _ => "bad requests".to_owned(),
                };
                format!("no more {bad} than the previous version, catching {detect} (sequential test)")
            }
        }
    }
}

/// What a metric check measures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum MetricSource {
    /// One of fledge's builtin Istio metrics.
    Builtin(BuiltinMetric),
    /// A PromQL template with `{{service}}`, `{{namespace}}`, `{{version}}`, `{{previousVersion}}`, `{{window}}`.
    Query(String),
    /// The share of requests slower than a bound of Istio's duration histogram (a counted check).
    SlowRequests {
        /// The bound: one of the histogram's bucket boundaries.
        slower_than: Duration,
    },
    /// Two counters of one version, as PromQL templates: its bad requests and all its requests (a counted check).
    Counted {
        /// The counter of bad requests.
        bad: String,
        /// The counter of all requests.
        total: String,
    },
}

/// fledge's builtin metrics, computed from Istio's standard telemetry of the versioned workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltinMetric {
    /// Percent of requests not answered with a 5xx code, 0 to 100.
    SuccessRate,
    /// 99th percentile request duration, in milliseconds.
    LatencyP99,
}

impl BuiltinMetric {
    /// Every builtin, in documentation order.
    pub const ALL: [BuiltinMetric; 2] = [BuiltinMetric::SuccessRate, BuiltinMetric::LatencyP99];

    /// The name used in manifests.
    pub fn manifest_name(self) -> &'static str {
        match self {
            BuiltinMetric::SuccessRate => "success-rate",
            BuiltinMetric::LatencyP99 => "latency-p99",
        }
    }

    /// The unit of the values, for display.
    pub fn unit(self) -> &'static str {
        match self {
            BuiltinMetric::SuccessRate => "%",
            BuiltinMetric::LatencyP99 => "ms",
        }
    }
}

/// How a metric's value is judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Threshold {
    /// The value must lie within these bounds (at least one is set).
    Absolute {
        /// Lowest passing value.
        min: Option<f64>,
        /// Highest passing value.
        max: Option<f64>,
    },
    /// The value is compared with the previous version's over the same window (at least one is set).
    RelativeToPrevious {
        /// Largest tolerated increase over the previous version.
        max_increase: Option<Percentage>,
        /// Largest tolerated decrease below the previous version.
        max_decrease: Option<Percentage>,
    },
    /// The new version's samples over the stage are compared with the previous version's by a two-sided
    /// Mann-Whitney U test, as Kayenta's judge does.
    Statistical {
        /// The confidence a difference needs before it counts (0.98: a 2% chance of judging noise a difference).
        confidence: f64,
        /// Differences of the medians smaller than this share of the previous version's median are tolerated.
        tolerance: Percentage,
        /// Which direction of difference fails the check.
        fail_on: Direction,
    },
    /// The bad requests of both versions, counted since the release's first stage, are judged after every look by
    /// a sequential test (`fledge_core::sequential`) whose false-alarm rate is `analysis.falseAlarm`.
    Sequential {
        /// The smallest regression worth catching; a stage passes only once its requests could have shown it.
        detect: crate::sequential::Regression,
    },
}

/// A direction of change of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Higher values (latency, errors).
    Increase,
    /// Lower values (success rate, throughput).
    Decrease,
    /// Any change.
    Either,
}

impl Direction {
    /// The name used in manifests.
    pub fn manifest_name(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
            Direction::Either => "either",
        }
    }
}

impl MetricSource {
    /// The direction in which this metric gets worse, when known: latency rises, the success rate falls.
    pub fn worse_direction(&self) -> Direction {
        match self {
            MetricSource::Builtin(BuiltinMetric::SuccessRate) => Direction::Decrease,
            MetricSource::Builtin(BuiltinMetric::LatencyP99) => Direction::Increase,
            MetricSource::Query(_) => Direction::Either,
            MetricSource::SlowRequests { .. } | MetricSource::Counted { .. } => Direction::Increase,
        }
    }
}

/// One traffic stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Share of the route's traffic sent to the new version during the stage (1 to 100).
    pub weight: Weight,
    /// How long the stage's analysis runs (stage time does not count while holding for data).
    pub duration: Duration,
    /// After this stage passes, stop and wait for `fledge run --approve` before going on.
    pub approval: bool,
}

/// What happens after the last stage passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promote {
    /// How long the old version keeps running at 0% after promotion (a fast way back).
    pub scale_down_delay: Duration,
    /// What happens to the old version after the delay.
    pub cleanup: CleanupPolicy,
}

/// What happens to a version's Deployment that no longer takes traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanupPolicy {
    /// Delete the Deployment (and its DestinationRule subset).
    Delete,
    /// Keep the Deployment with zero replicas.
    ScaleToZero,
    /// Leave it running, for debugging.
    Keep,
}

impl CleanupPolicy {
    /// The name used in manifests.
    pub fn manifest_name(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::ScaleToZero => "scale-to-zero",
            CleanupPolicy::Keep => "keep",
        }
    }
}

/// What happens to the new version on rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// The new version's Deployment after traffic is restored.
    pub new_version: CleanupPolicy,
}
