//! The release's steps as Kubernetes Events regarding the new version's Deployment (fledge-deploy's
//! [`ReleaseEvents`]): `kubectl describe deployment reviews-v2` shows the release, and so do the cluster's event
//! pipelines.
//!
//! ```text
//!  runner events ──reason, type, message──▶ ReleaseEvents (in order, in the background) ──▶ core/v1 Events
//!  GateHealthy GateFailed StageStarted StagePassed AwaitingApproval Promoted RollingBack RolledBack RollbackFailed
//! ```

use fledge_core::{Outcome, Release};
use fledge_deploy::ReleaseEvents;
use fledge_deploy::release_events::EventType;
use fledge_runner::{Event, Reporter};
use std::sync::Arc;

/// Records a release's steps as Kubernetes Events.
#[derive(Clone)]
pub(crate) struct ClusterEvents {
    release: Release,
    events: Arc<ReleaseEvents>,
}

fn short(duration: std::time::Duration) -> fledge_core::Duration {
    fledge_core::Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

impl ClusterEvents {
    /// Events of `release` through `client`, reported by run `run_id`.
    pub(crate) fn new(release: &Release, client: kube::Client, run_id: &str) -> ClusterEvents {
        let events = ReleaseEvents::new(client, &release.service.namespace, &release.deployment_name(), run_id);
        ClusterEvents { release: release.clone(), events: Arc::new(events) }
    }

    /// A reporter that records the steps, then calls `next`.
    pub(crate) fn reporter(&self, next: Reporter) -> Reporter {
        let recorder = self.clone();
        Arc::new(move |event: &Event| {
            if let Some((reason, kind, message)) = recorder.describe(event) {
                recorder.events.record(reason, kind, message);
            }
            next(event);
        })
    }

    /// The Event of a step: its reason, type and message.
    fn describe(&self, event: &Event) -> Option<(&'static str, EventType, String)> {
        let (version, stages) = (&self.release.service.version, self.release.stages.len());
        Some(match event {
            Event::GateHealthy { elapsed } => {
                ("GateHealthy", EventType::Normal, format!("every pod is Ready and stable after {}", short(*elapsed)))
            }
            Event::GateFailed { failure, .. } => ("GateFailed", EventType::Warning, failure.to_string()),
            Event::StageStarted { index, weight, duration } => (
                "StageStarted",
                EventType::Normal,
                format!("stage {}/{stages}: {weight} of traffic to {version} for {}", index + 1, short(*duration)),
            ),
            Event::StagePassed { index } => {
                ("StagePassed", EventType::Normal, format!("stage {}/{stages} passed its analysis", index + 1))
            }
            Event::AwaitingApproval { index } => (
                "AwaitingApproval",
                EventType::Normal,
                format!("stage {}/{stages} passed; waiting for `fledge run --approve`", index + 1),
            ),
            Event::Promoted => ("Promoted", EventType::Normal, format!("100% of traffic to {version}")),
            Event::RollingBack { reason, detail } => {
                ("RollingBack", EventType::Warning, format!("{}: {detail}", Outcome::RolledBack(*reason)))
            }
            Event::RolledBack { reason } => (
                "RolledBack",
                EventType::Warning,
                format!("{}: traffic restored as it was before the release", Outcome::RolledBack(*reason)),
            ),
            Event::RollbackFailed { error } => ("RollbackFailed", EventType::Warning, error.clone()),
            _ => return None,
        })
    }

    /// Waits a little for Events still queued.
    pub(crate) async fn drain(&self) {
        self.events.drain().await;
    }
}
