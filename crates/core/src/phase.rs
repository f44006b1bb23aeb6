//! The phases of a release, in the order a release walks them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a release is. Each phase is recorded in the cluster before its effects, so a run killed at any point can
/// be resumed or rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "phase")]
pub enum Phase {
    /// Checking the cluster and Prometheus; nothing has changed yet.
    Preflight,
    /// Applying the new version's Deployment and DestinationRule subset, at 0% traffic.
    Deploy,
    /// Waiting for the new pods to be Ready and stable.
    Gate,
    /// Shifting traffic and analysing metrics in stage `index` (0-based).
    Stage {
        /// Index into the release's stages.
        index: usize,
    },
    /// Stopped after stage `index` passed, waiting for `--approve`.
    AwaitingApproval {
        /// Index of the stage that passed.
        index: usize,
    },
    /// Sending 100% of traffic to the new version.
    Promote,
    /// Keeping the old version at 0% for the scale-down delay.
    ScaleDownDelay,
    /// Removing the old version's Deployment and subset.
    Cleanup,
    /// Restoring the original traffic and retiring the new version.
    RollingBack,
    /// Finished; the outcome is recorded.
    Done,
}

impl fmt::Display for Phase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Preflight => formatter.write_str("preflight"),
            Phase::Deploy => formatter.write_str("deploy"),
            Phase::Gate => formatter.write_str("gate"),
            Phase::Stage { index } => write!(formatter, "stage {}", index + 1),
            Phase::AwaitingApproval { index } => write!(formatter, "awaiting approval after stage {}", index + 1),
            Phase::Promote => formatter.write_str("promote"),
            Phase::ScaleDownDelay => formatter.write_str("scale-down delay"),
            Phase::Cleanup => formatter.write_str("cleanup"),
            Phase::RollingBack => formatter.write_str("rolling back"),
            Phase::Done => formatter.write_str("done"),
        }
    }
}
