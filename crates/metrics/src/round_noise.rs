//! Preflight's warning about success-rate bounds that a version as healthy as the live one would fail by chance:
//! the requests one window holds at the first stage's weight, the failures the bound lets pass, and the share the
//! live version fails now (fledge-core's `round_noise` does the arithmetic).

use crate::checks::Analyzer;
use crate::prometheus::Answer;
use crate::queries;
use fledge_core::Duration;
use fledge_core::release::{BuiltinMetric, MetricSource, Threshold};
use fledge_core::round_noise::success_rate_noise;
use tokio::time::Instant;

/// A check that fails more rounds than this by chance is worth a warning.
const WORTH_A_WARNING: f64 = 0.01;

/// How far back the live version's failing share is measured.
const LIVE_LOOKBACK: Duration = Duration::from_secs(600);

impl Analyzer {
    /// A warning for each success-rate threshold that a version failing like the live one would fail in more than
    /// one round in a hundred, with `weight` percent of the traffic the live version serves now.
    pub async fn round_noise(&self, weight: u8, deadline: Instant) -> Vec<String> {
        let Some(live) = &self.target().previous else { return Vec::new() };
        let mut warnings = Vec::new();
        for check in self.checks() {
            let (MetricSource::Builtin(BuiltinMetric::SuccessRate), Threshold::Absolute { min: Some(min), .. }) =
                (&check.source, &check.threshold)
            else {
                continue;
            };
            let served = self.value_now(&queries::request_count(live, check.window), deadline).await;
            let failing = self.value_now(&queries::failing_share(live, LIVE_LOOKBACK), deadline).await;
            let (Some(served), Some(failing)) = (served, failing) else { continue };
            let requests = (served * f64::from(weight) / 100.0).round() as u64;
            let noise = success_rate_noise(requests, *min, failing);
            if noise.chance < WORTH_A_WARNING {
                continue;
            }
            warnings.push(format!(
                "check `{}` ({} over {}) would fail about {:.1}% of rounds by chance at {weight}% of the traffic: a window holds about {} requests of the new version and lets {} fail, and the live version {} fails {:.2}% of its requests now; a longer window, a lower bound or a counted check (`detect: 1%`) judges a version as healthy as it fairly",
                check.name,
                check.describe_threshold(),
                check.window,
                noise.chance * 100.0,
                noise.requests,
                noise.tolerated,
                live.deployment,
                failing * 100.0
            ));
        }
        warnings
    }

    /// The one finite value `query` answers now, if it does.
    async fn value_now(&self, query: &str, deadline: Instant) -> Option<f64> {
        match self.prometheus().instant(query, deadline).await.ok()?.answer {
            Answer::One(value) if value.is_finite() => Some(value),
            _ => None,
        }
    }
}
