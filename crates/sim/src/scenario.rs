//! Scenario files: what the simulated cluster contains at start, how containers behave by image, and how much
//! traffic each service receives.
//!
//! ```yaml
//! timeScale: 10                 # simulated waits (start-up, back-offs, crashes) run 10× faster
//! behaviours:                   # first match wins; unknown images are healthy
//!   - image: "*:crashloop"
//!     behaviour: crashloop
//! traffic:
//!   - service: reviews
//!     namespace: bookinfo
//!     requestsPerSecond: 20
//!     requests:                 # optional: the mix of requests, matched against the routes' `match`
//!       - {weight: 99, path: /reviews/1}
//!       - {weight: 1, path: /reviews/1, headers: {x-debug: "1"}}
//!       - {weight: 1, path: /, gateway: bookinfo-gateway}   # enters through that Gateway (Gateway API)
//! faults: {errorRate: 0.05}     # optional: API faults from the start
//! istioWeightRule: sum-to-100   # or non-negative (Istio 1.15 and later)
//! gatewayAPI:                   # optional: Istio's gateway controller
//!   statusDelayMilliseconds: 300  # real time from an HTTPRoute change to its status (and the mesh using it)
//! objects:                      # created in order at start
//!   - apiVersion: v1
//!     kind: Namespace
//!     metadata: {name: bookinfo, labels: {istio-injection: enabled}}
//! ```

use crate::behaviour::{Behaviour, BehaviourError, glob_matches};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A behaviour for the images matching a glob.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BehaviourRule {
    /// Glob over the container image reference (`*` matches anything).
    pub image: String,
    /// Comma-separated presets (see [`crate::behaviour`]).
    pub behaviour: String,
}

/// Requests a service receives from inside the mesh.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSource {
    /// The Service's name (its Istio host's short name).
    pub service: String,
    /// The Service's namespace.
    pub namespace: String,
    /// Requests per second.
    pub requests_per_second: f64,
    /// The kinds of request sent (path, method, headers), each with a relative weight; routes are chosen by their
    /// `match` for each kind. Default: every request is `GET /` without headers.
    #[serde(default)]
    pub requests: Vec<crate::mesh::routing::RequestKind>,
}

/// A scenario.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// How much faster than real time simulated waits run.
    #[serde(default = "one")]
    pub time_scale: f64,
    /// How many nodes the cluster has (default 3; each takes 110 pods, 4 CPUs, 16 GiB).
    #[serde(default)]
    pub nodes: Option<usize>,
    /// Behaviours by image, first match wins.
    #[serde(default)]
    pub behaviours: Vec<BehaviourRule>,
    /// Traffic per service.
    #[serde(default)]
    pub traffic: Vec<TrafficSource>,
    /// Objects created at start, in order.
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Faults in force from the start (change them at run time with `PUT /sim/faults`).
    #[serde(default)]
    pub faults: Option<crate::faults::FaultSettings>,
    /// The Istio webhook's weight rule: `sum-to-100` (Istio before 1.15, the default) or `non-negative`.
    #[serde(default)]
    pub istio_weight_rule: Option<String>,
    /// Settings of Istio's Gateway API controller (`gatewayAPI: {statusDelayMilliseconds: 300}`).
    #[serde(default, rename = "gatewayAPI")]
    pub gateway_api: Option<crate::gateway_api::GatewayApiSettings>,
}

fn one() -> f64 {
    1.0
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("failed to read scenario {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is invalid.
    #[error("failed to parse scenario {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with its location.
        message: String,
    },
    /// A behaviour is invalid.
    #[error("invalid behaviour for image `{image}` in scenario {}", path.display())]
    Behaviour {
        /// The file.
        path: PathBuf,
        /// The rule's image glob.
        image: String,
        /// The cause.
        #[source]
        source: BehaviourError,
    },
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        Scenario::parse(&text).map_err(|error| match error {
            ScenarioError::Parse { message, .. } => ScenarioError::Parse { path: path.to_owned(), message },
            ScenarioError::Behaviour { image, source, .. } => {
                ScenarioError::Behaviour { path: path.to_owned(), image, source }
            }
            other => other,
        })
    }

    /// Parses a scenario's text.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = serde_saphyr::from_str(text)
            .map_err(|error| ScenarioError::Parse { path: PathBuf::new(), message: error.to_string() })?;
        if let Some(rule) = &scenario.istio_weight_rule
            && !["sum-to-100", "non-negative"].contains(&rule.as_str())
        {
            return Err(ScenarioError::Parse {
                path: PathBuf::new(),
                message: format!("istioWeightRule must be sum-to-100 or non-negative, not `{rule}`"),
            });
        }
        for rule in &scenario.behaviours {
            Behaviour::parse(&rule.behaviour).map_err(|source| ScenarioError::Behaviour {
                path: PathBuf::new(),
                image: rule.image.clone(),
                source,
            })?;
        }
        Ok(scenario)
    }

    /// The behaviour of a container running `image`: the first matching rule's, or healthy.
    pub fn behaviour_for(&self, image: &str) -> Behaviour {
        self.behaviours
            .iter()
            .find(|rule| glob_matches(&rule.image, image))
            .and_then(|rule| Behaviour::parse(&rule.behaviour).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins_and_unknown_images_are_healthy() {
        let scenario = Scenario::parse(
            "timeScale: 5\nbehaviours:\n  - {image: '*:crashloop', behaviour: crashloop}\n  - {image: '*', behaviour: 'errors=1%'}\n",
        )
        .unwrap();
        assert_eq!(scenario.time_scale, 5.0);
        assert!(scenario.behaviour_for("a:crashloop").crash.is_some());
        assert_eq!(scenario.behaviour_for("a:1").error_rate, 0.01);
        assert_eq!(Scenario::default().behaviour_for("a:1"), Behaviour::default());
        assert!(Scenario::parse("behaviours:\n  - {image: x, behaviour: nope}\n").is_err());
        assert!(Scenario::parse("unknown: 1\n").is_err());
    }

    #[test]
    fn gateway_api_settings_and_gateway_requests_parse() {
        let scenario = Scenario::parse(
            "gatewayAPI: {statusDelayMilliseconds: 50}\ntraffic:\n  - {service: reviews, namespace: bookinfo, requestsPerSecond: 1, requests: [{gateway: bookinfo-gateway}]}\n",
        )
        .unwrap();
        let settings = scenario.gateway_api.clone().unwrap_or_default();
        assert_eq!(settings.status_delay(), std::time::Duration::from_millis(50));
        assert_eq!(scenario.traffic[0].requests[0].gateway.as_deref(), Some("bookinfo-gateway"));
        assert_eq!(Scenario::default().gateway_api, None);
        assert!(Scenario::parse("gatewayAPI: {statusDelay: 5s}\n").is_err(), "unknown settings are refused");
    }
}
