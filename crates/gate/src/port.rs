//! fledge-core's [`HealthGate`] port: a [`PodGate`] until healthy, then a [`ContinuousGate`] through the stages.

use crate::{ContinuousGate, GateOutcome, GatePolicy, GateTarget, PodGate};
use fledge_core::ports::{GateResult, HealthGate, HealthMonitor, PortError};
use fledge_core::{GateFailure, Release};
use std::sync::Arc;
use std::time::Duration;

/// Receives progress lines while the gate waits (`1/2 pods Ready ...`).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// The crash-loop gate for the runner.
#[derive(Clone)]
pub struct KubeHealthGate {
    client: kube::Client,
    progress: Option<Progress>,
}

impl KubeHealthGate {
    /// A gate that watches through `client`.
    pub fn new(client: kube::Client) -> KubeHealthGate {
        KubeHealthGate { client, progress: None }
    }

    /// Reports what the gate waits for.
    pub fn on_progress(mut self, progress: Progress) -> KubeHealthGate {
        self.progress = Some(progress);
        self
    }
}

impl HealthGate for KubeHealthGate {
    type Monitor = ContinuousGate;

    async fn wait_healthy(
        &self,
        release: &Release,
        timeout: Duration,
    ) -> Result<GateResult<ContinuousGate>, PortError> {
        let mut gate =
            PodGate::start(self.client.clone(), GateTarget::for_release(release), GatePolicy::from(&release.gate));
        if let Some(progress) = self.progress.clone() {
            gate = gate.on_progress(move |line| progress(line));
        }
        Ok(match gate.wait_healthy(timeout).await? {
            GateOutcome::Healthy { elapsed } => GateResult::Healthy { monitor: gate.into_continuous(), elapsed },
            GateOutcome::Failed { failure, diagnostics, .. } => {
                GateResult::Failed { failure, diagnostics: diagnostics.to_string() }
            }
        })
    }
}

impl HealthMonitor for ContinuousGate {
    async fn failed(&mut self) -> GateFailure {
        ContinuousGate::failed(self).await
    }

    async fn diagnose(&self) -> String {
        ContinuousGate::diagnose(self).await.to_string()
    }
}
