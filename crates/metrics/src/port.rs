//! fledge-core's [`MetricsAnalyzer`] port: an [`Analyzer`] per call, aimed at the live version the runner found.

use crate::{AnalysisTarget, Analyzer, PrometheusClient};
use fledge_core::Release;
use fledge_core::analysis::Round;
use fledge_core::ports::{MetricsAnalyzer, PortError};
use std::time::Duration;

/// Prometheus analysis for the runner.
#[derive(Clone, Debug)]
pub struct PrometheusAnalysis {
    client: PrometheusClient,
    release: Release,
}

impl PrometheusAnalysis {
    /// Analysis of `release`'s checks through `client`.
    pub fn new(client: PrometheusClient, release: Release) -> PrometheusAnalysis {
        PrometheusAnalysis { client, release }
    }

    fn analyzer(&self, live_version: &str) -> Analyzer {
        let target = AnalysisTarget::for_release(&self.release, Some(live_version));
        Analyzer::new(self.client.clone(), self.release.analysis.clone(), target)
    }
}

impl MetricsAnalyzer for PrometheusAnalysis {
    async fn preflight(&self, live_version: &str, budget: Duration) -> Result<Vec<String>, PortError> {
        Ok(self.analyzer(live_version).preflight(tokio::time::Instant::now() + budget).await?)
    }

    fn queries(&self, live_version: &str) -> Vec<(String, String)> {
        let analyzer = self.analyzer(live_version);
        analyzer
            .checks()
            .iter()
            .map(|check| {
                let query = analyzer
                    .query(check, &analyzer.target().canary)
                    .unwrap_or_else(|error| format!("(cannot render: {error})"));
                (check.name.clone(), query)
            })
            .collect()
    }

    async fn round(&self, live_version: &str, judge_since: jiff::Timestamp, budget: Duration) -> Round {
        self.analyzer(live_version).round(judge_since, tokio::time::Instant::now() + budget).await
    }
}
