//! What the runner tells reporters, in the order it happens.

use fledge_core::analysis::{Round, TallyDecision};
use fledge_core::release::CleanupPolicy;
use fledge_core::{GateFailure, Outcome, Phase, RollbackReason, Weight};
use serde::Serialize;
use std::time::Duration;

/// One step of a release.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "event", rename_all_fields = "camelCase")]
pub enum Event {
    /// Another run holds the release lock.
    Locked {
        /// Its holder identity.
        holder: String,
    },
    /// Another release of the service is in flight.
    InFlight {
        /// Its version.
        version: String,
        /// Where it is.
        phase: Phase,
    },
    /// The same release was promoted already; nothing to do.
    AlreadyPromoted,
    /// A preflight check failed; nothing was changed.
    PreflightFailed {
        /// Why, with causes.
        error: String,
    },
    /// Preflight passed.
    PreflightPassed {
        /// The live version.
        live_version: String,
        /// The managed route.
        route: String,
        /// Things to look at that do not stop the release.
        warnings: Vec<String>,
    },
    /// A release interrupted earlier carries on.
    Resuming {
        /// Where it was.
        phase: Phase,
    },
    /// A release in flight could not be resumed: the cluster could not be read to check it agrees with the record.
    /// Nothing was changed.
    ResumeFailed {
        /// Why, with causes.
        error: String,
    },
    /// The new version's Deployment and subset are being applied (0% traffic).
    Deploying {
        /// The Deployment.
        deployment: String,
    },
    /// Waiting for the new pods.
    GateWaiting {
        /// The gate's timeout.
        #[serde(serialize_with = "seconds")]
        timeout: Duration,
    },
    /// Every new pod is Ready and stable.
    GateHealthy {
        /// How long it took.
        #[serde(serialize_with = "seconds")]
        elapsed: Duration,
    },
    /// The new version's pods failed.
    GateFailed {
        /// What failed.
        failure: GateFailure,
        /// Per-pod diagnostics.
        diagnostics: String,
    },
    /// A stage started: its weight is set and read back.
    StageStarted {
        /// 0-based stage index.
        index: usize,
        /// The new version's weight.
        weight: Weight,
        /// The stage's analysis time.
        #[serde(serialize_with = "seconds")]
        duration: Duration,
    },
    /// A round of metric checks finished.
    Round {
        /// 0-based stage index.
        index: usize,
        /// The checks.
        round: Round,
        /// What the runner does about it.
        decision: TallyDecision,
        /// Analysis time the stage has counted.
        #[serde(serialize_with = "seconds")]
        elapsed: Duration,
        /// The stage's analysis time.
        #[serde(serialize_with = "seconds")]
        duration: Duration,
    },
    /// A stage's analysis passed.
    StagePassed {
        /// 0-based stage index.
        index: usize,
    },
    /// The release stopped after an approval stage.
    AwaitingApproval {
        /// 0-based index of the stage that passed.
        index: usize,
    },
    /// 100% of the route goes to the new version.
    Promoted,
    /// The old version stays at 0% for the scale-down delay.
    ScaleDownDelay {
        /// How long.
        #[serde(serialize_with = "seconds")]
        delay: Duration,
    },
    /// The old version was retired from the routes, and its Deployment as `policy` says unless `kept_for` holds
    /// routes still pinned to it.
    CleanedUp {
        /// Its Deployment.
        deployment: String,
        /// What was done with it (when nothing keeps it).
        policy: CleanupPolicy,
        /// Routes pinned to the old version that now send to the new one.
        moved: Vec<String>,
        /// Routes pinned to the old version that keep it (running, with its subset).
        kept_for: Vec<String>,
    },
    /// Rolling back.
    RollingBack {
        /// Why.
        reason: RollbackReason,
        /// The failure in a sentence.
        detail: String,
    },
    /// The route is back as it was, the new version retired.
    RolledBack {
        /// Why.
        reason: RollbackReason,
    },
    /// The rollback could not finish.
    RollbackFailed {
        /// Why, with causes.
        error: String,
    },
    /// An abort was asked of the run holding the lock.
    AbortRequested {
        /// That run's holder identity.
        holder: String,
    },
    /// There was nothing in flight to abort.
    NothingToAbort,
    /// The release lock was lost while the run held it: the run stops at once, writing nothing more.
    LockLost {
        /// Why it counts as lost.
        reason: String,
    },
    /// Something went wrong that does not stop the release, or that needs a person after it ended.
    Warning {
        /// What.
        message: String,
    },
    /// The run ended.
    Finished {
        /// How.
        outcome: Outcome,
    },
}

/// Durations as seconds (a number) in JSON.
fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}
