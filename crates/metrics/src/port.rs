//! fledge-core's [`MetricsAnalyzer`] port: an [`Analyzer`] per call, aimed at the live version the runner found,
//! counting requests as the data plane preflight found reports them.

use crate::{AnalysisTarget, Analyzer, PrometheusClient};
use fledge_core::Release;
use fledge_core::analysis::Round;
use fledge_core::counted_checks::CountedReading;
use fledge_core::ports::{MetricsAnalyzer, PortError};
use fledge_core::release::DataPlane;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Prometheus analysis for the runner.
#[derive(Clone, Debug)]
pub struct PrometheusAnalysis {
    client: PrometheusClient,
    release: Release,
    /// The data plane, once known: the manifest's, or found by the first preflight or round.
    data_plane: Arc<Mutex<Option<DataPlane>>>,
}

impl PrometheusAnalysis {
    /// Analysis of `release`'s checks through `client`.
    pub fn new(client: PrometheusClient, release: Release) -> PrometheusAnalysis {
        let data_plane = Arc::new(Mutex::new(release.analysis.data_plane));
        PrometheusAnalysis { client, release, data_plane }
    }

    fn known_data_plane(&self) -> Option<DataPlane> {
        *self.data_plane.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The data plane: known, or found in Prometheus now (then remembered).
    async fn data_plane(&self, live_version: &str, deadline: tokio::time::Instant) -> DataPlane {
        if let Some(known) = self.known_data_plane() {
            return known;
        }
        let found = crate::data_plane::detect(&self.client, &self.release, Some(live_version), deadline).await;
        *self.data_plane.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(found);
        found
    }

    fn analyzer(&self, live_version: &str, data_plane: DataPlane) -> Analyzer {
        let target = AnalysisTarget::for_release(&self.release, Some(live_version), data_plane);
        Analyzer::new(self.client.clone(), self.release.analysis.clone(), target)
    }
}

impl MetricsAnalyzer for PrometheusAnalysis {
    async fn preflight(&self, live_version: &str, budget: Duration) -> Result<Vec<String>, PortError> {
        let deadline = tokio::time::Instant::now() + budget;
        let data_plane = self.data_plane(live_version, deadline).await;
        let analyzer = self.analyzer(live_version, data_plane);
        let mut warnings = analyzer.preflight(deadline).await?;
        if let Some(first) = self.release.stages.first() {
            warnings.extend(analyzer.round_noise(first.weight.percent(), deadline).await);
        }
        Ok(warnings)
    }

    fn queries(&self, live_version: &str) -> Vec<(String, String)> {
        let analyzer = self.analyzer(live_version, self.known_data_plane().unwrap_or(DataPlane::Sidecar));
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

    async fn counts(&self, live_version: &str, budget: Duration) -> Vec<CountedReading> {
        let deadline = tokio::time::Instant::now() + budget;
        let data_plane = self.data_plane(live_version, deadline).await;
        self.analyzer(live_version, data_plane).counts(deadline).await
    }

    async fn round(&self, live_version: &str, judge_since: jiff::Timestamp, budget: Duration) -> Round {
        let deadline = tokio::time::Instant::now() + budget;
        let data_plane = self.data_plane(live_version, deadline).await;
        self.analyzer(live_version, data_plane).round(judge_since, deadline).await
    }
}
