//! The run record: what a release has done so far, kept in the cluster and written before each phase's effects, so
//! a run killed at any point is resumed or rolled back by running the same command again.

use crate::analysis::StageTally;
use crate::sequential::SequentialTest;
use crate::{Outcome, Phase, Release, RollbackReason};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One release's progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// A random id of the run that started the release.
    pub run_id: String,
    /// [`Release::digest`] of the manifest the release was started with.
    pub manifest_digest: String,
    /// The service.
    pub service: String,
    /// The namespace.
    pub namespace: String,
    /// The new version.
    pub version: String,
    /// The live version when the release started.
    pub previous_version: String,
    /// The live version's Deployment.
    pub previous_deployment: String,
    /// Where the release is. Written before the phase's effects.
    pub phase: Phase,
    /// The current stage's rounds so far (reset when a stage starts).
    pub tally: Option<StageTally>,
    /// Analysis time the current stage has counted, in seconds (rounds that held do not count).
    pub stage_elapsed_seconds: u64,
    /// Time the current stage has held for data, in seconds.
    pub stage_held_seconds: u64,
    /// The counted checks' sequential tests as of the last round, by check name: a run that resumes the release
    /// carries their evidence on, so that its false-alarm rate holds for the release, not for each run of it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counted_tests: BTreeMap<String, SequentialTest>,
    /// What the traffic adapter recorded at preflight to restore the route exactly.
    pub traffic_snapshot: serde_json::Value,
    /// Why the release is rolling back or was rolled back.
    pub rollback_reason: Option<RollbackReason>,
    /// A sentence on why: the failed check, the pod failure, the error.
    pub detail: String,
    /// How the release ended; `None` while in flight.
    pub outcome: Option<Outcome>,
    /// Why the last rollback could not finish (the release then waits in `RollingBack` for `fledge abort` or a
    /// resumed run, which clears it); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_failure: Option<String>,
    /// When the release started.
    pub started_at: jiff::Timestamp,
    /// When the record was last written.
    pub updated_at: jiff::Timestamp,
}

impl RunRecord {
    /// A record for a release that passed preflight and is about to deploy.
    pub fn start(
        release: &Release,
        run_id: &str,
        previous_version: &str,
        previous_deployment: &str,
        traffic_snapshot: serde_json::Value,
        now: jiff::Timestamp,
    ) -> RunRecord {
        RunRecord {
            run_id: run_id.to_owned(),
            manifest_digest: release.digest(),
            service: release.service.name.clone(),
            namespace: release.service.namespace.clone(),
            version: release.service.version.clone(),
            previous_version: previous_version.to_owned(),
            previous_deployment: previous_deployment.to_owned(),
            phase: Phase::Deploy,
            tally: None,
            stage_elapsed_seconds: 0,
            stage_held_seconds: 0,
            counted_tests: BTreeMap::new(),
            traffic_snapshot,
            rollback_reason: None,
            detail: String::new(),
            outcome: None,
            rollback_failure: None,
            started_at: now,
            updated_at: now,
        }
    }

    /// Whether the release is still in flight: started, not finished (an approval stop is in flight).
    pub fn in_flight(&self) -> bool {
        self.outcome.is_none()
    }

    /// Whether this record is of `release` as it is now: same version and same manifest.
    pub fn is_of(&self, release: &Release) -> bool {
        self.version == release.service.version && self.manifest_digest == release.digest()
    }
}
