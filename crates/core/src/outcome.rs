//! How a release ends, and the exit code that tells a pipeline.
//!
//! The exit code is the release verdict: a pipeline gates on it. The table is documented in `docs/exit-codes.md`,
//! and a test keeps the two in step.

use crate::GateFailureKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The end of one `fledge` invocation. Serialized as its [name](Outcome::name): `rolled-back-metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Outcome {
    /// The new version is live with 100% of traffic (or, for `fledge validate`, every file is valid).
    Promoted,
    /// fledge itself failed in a way it did not expect. Report it as a bug, with the log.
    InternalError,
    /// The manifest or the command line is invalid. Nothing touched a cluster.
    InvalidInput,
    /// A preflight check failed. Nothing changed in the cluster.
    PreflightFailed,
    /// The release stopped after an approval stage, traffic held; run again with `--approve` to continue.
    AwaitingApproval,
    /// Another run holds the release lock for this service.
    Locked,
    /// This run lost the release lock while it ran (frozen or cut off past the renew deadline, or taken over): it
    /// stopped at once without another write; the run holding the lock now owns the release.
    LockLost,
    /// Rolled back, traffic restored, because of the reason given.
    RolledBack(RollbackReason),
    /// A rollback could not finish; the cluster needs a person. The state record says what is left.
    RollbackFailed,
}

/// Why a release was rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackReason {
    /// The new version's pods failed (crash loop, OOM, image pull, configuration, unschedulable).
    PodHealth,
    /// A metric check failed beyond the failure limit, or queries kept failing.
    Metrics,
    /// Something took too long: gate timeout, progress deadline, waiting for data.
    Deadline,
    /// A signal or `fledge abort` asked for it.
    Cancelled,
    /// fledge could not go on: the cluster or Prometheus refused a step it needed (a write failed, the release's
    /// resources changed under it).
    Error,
}

impl RollbackReason {
    /// The rollback reason for a failed gate.
    pub fn for_gate_failure(kind: GateFailureKind) -> RollbackReason {
        if kind.is_deadline() { RollbackReason::Deadline } else { RollbackReason::PodHealth }
    }
}

/// A process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExitCode(pub u8);

impl Outcome {
    /// Every outcome, in exit-code order.
    pub const ALL: [Outcome; 13] = [
        Outcome::Promoted,
        Outcome::InternalError,
        Outcome::InvalidInput,
        Outcome::PreflightFailed,
        Outcome::AwaitingApproval,
        Outcome::Locked,
        Outcome::LockLost,
        Outcome::RolledBack(RollbackReason::PodHealth),
        Outcome::RolledBack(RollbackReason::Metrics),
        Outcome::RolledBack(RollbackReason::Deadline),
        Outcome::RolledBack(RollbackReason::Cancelled),
        Outcome::RolledBack(RollbackReason::Error),
        Outcome::RollbackFailed,
    ];

    /// The process exit code for this outcome.
    pub fn exit_code(self) -> ExitCode {
        ExitCode(match self {
            Outcome::Promoted => 0,
            Outcome::InternalError => 1,
            Outcome::InvalidInput => 2,
            Outcome::PreflightFailed => 3,
            Outcome::AwaitingApproval => 4,
            Outcome::Locked => 5,
            Outcome::LockLost => 6,
            Outcome::RolledBack(RollbackReason::PodHealth) => 10,
            Outcome::RolledBack(RollbackReason::Metrics) => 11,
            Outcome::RolledBack(RollbackReason::Deadline) => 12,
            Outcome::RolledBack(RollbackReason::Cancelled) => 13,
            Outcome::RolledBack(RollbackReason::Error) => 14,
            Outcome::RollbackFailed => 20,
        })
    }

    /// A stable kebab-case name for reports and logs.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::InternalError => "internal-error",
            Outcome::InvalidInput => "invalid-input",
            Outcome::PreflightFailed => "preflight-failed",
            Outcome::AwaitingApproval => "awaiting-approval",
            Outcome::Locked => "locked",
            Outcome::LockLost => "lock-lost",
            Outcome::RolledBack(RollbackReason::PodHealth) => "rolled-back-pod-health",
            Outcome::RolledBack(RollbackReason::Metrics) => "rolled-back-metrics",
            Outcome::RolledBack(RollbackReason::Deadline) => "rolled-back-deadline",
            Outcome::RolledBack(RollbackReason::Cancelled) => "rolled-back-cancelled",
            Outcome::RolledBack(RollbackReason::Error) => "rolled-back-error",
            Outcome::RollbackFailed => "rollback-failed",
        }
    }

    /// Whether the cluster is left as fledge intends it (promoted, rolled back, untouched, or held for approval).
    pub fn cluster_is_consistent(self) -> bool {
        !matches!(self, Outcome::RollbackFailed | Outcome::InternalError)
    }
}

impl From<Outcome> for &'static str {
    fn from(outcome: Outcome) -> &'static str {
        outcome.name()
    }
}

/// A text that names no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown outcome `{0}`")]
pub struct UnknownOutcome(pub String);

impl TryFrom<String> for Outcome {
    type Error = UnknownOutcome;
    fn try_from(name: String) -> Result<Outcome, UnknownOutcome> {
        Outcome::ALL.into_iter().find(|outcome| outcome.name() == name).ok_or(UnknownOutcome(name))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn outcomes_serialize_as_their_names() {
        let json = serde_json::to_string(&Outcome::RolledBack(RollbackReason::Metrics)).unwrap();
        assert_eq!(json, r#""rolled-back-metrics""#);
        for outcome in Outcome::ALL {
            let back: Outcome = serde_json::from_str(&serde_json::to_string(&outcome).unwrap()).unwrap();
            assert_eq!(back, outcome);
        }
        assert!(serde_json::from_str::<Outcome>(r#""promotd""#).is_err());
    }

    #[test]
    fn every_outcome_has_its_own_exit_code() {
        let codes: BTreeSet<u8> = Outcome::ALL.iter().map(|outcome| outcome.exit_code().0).collect();
        assert_eq!(codes.len(), Outcome::ALL.len());
        assert_eq!(Outcome::Promoted.exit_code(), ExitCode(0));
        assert_eq!(Outcome::InvalidInput.exit_code(), ExitCode(2));
    }

    #[test]
    fn deadlines_and_pod_failures_roll_back_for_different_reasons() {
        assert_eq!(RollbackReason::for_gate_failure(GateFailureKind::Timeout), RollbackReason::Deadline);
        assert_eq!(RollbackReason::for_gate_failure(GateFailureKind::ProgressDeadline), RollbackReason::Deadline);
        assert_eq!(RollbackReason::for_gate_failure(GateFailureKind::CrashLoop), RollbackReason::PodHealth);
        assert_eq!(RollbackReason::for_gate_failure(GateFailureKind::Unschedulable), RollbackReason::PodHealth);
    }

    /// docs/exit-codes.md is what pipeline authors read; every row must match the code, and every outcome must have
    /// a row.
    #[test]
    fn documented_table_matches_the_code() {
        let document = include_str!("../../../docs/exit-codes.md");
        let rows: Vec<(u8, String)> = document
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells.get(1)?.parse::<u8>().ok()?;
                let name = cells.get(2)?.trim_matches('`').to_owned();
                Some((code, name))
            })
            .collect();
        let expected: Vec<(u8, String)> =
            Outcome::ALL.iter().map(|outcome| (outcome.exit_code().0, outcome.name().to_owned())).collect();
        assert_eq!(rows, expected);
    }
}
