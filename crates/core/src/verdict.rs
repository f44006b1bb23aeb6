//! Verdicts: how a pod-health gate or a metric check judged the new version.
//!
//! A failed gate or check is a verdict, not an error: errors are reserved for fledge being unable to ask.

use serde::{Deserialize, Serialize};

/// Why the new version's pods failed the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateFailureKind {
    /// A container keeps exiting (CrashLoopBackOff, Error, StartError) beyond the restart limit.
    CrashLoop,
    /// A container was killed for exceeding its memory limit (OOMKilled).
    OutOfMemory,
    /// The image cannot be pulled (ErrImagePull, ImagePullBackOff: not found, unauthorized, unreachable).
    ImagePull,
    /// The image reference is invalid or may not be pulled (InvalidImageName, ErrImageNeverPull).
    InvalidImage,
    /// The container cannot be created from its configuration (CreateContainerConfigError: missing ConfigMap or
    /// Secret, bad reference).
    ConfigError,
    /// No node can take the pods (PodScheduled False, reason Unschedulable).
    Unschedulable,
    /// Kubernetes gave up on the rollout (Progressing False, reason ProgressDeadlineExceeded).
    ProgressDeadline,
    /// The ReplicaSet cannot create pods (ReplicaFailure: quota, admission webhook, security policy).
    ReplicaFailure,
    /// Pods did not become Ready and stable before the gate's timeout.
    Timeout,
}

impl GateFailureKind {
    /// Whether this failure is about time running out rather than a failure the pods showed.
    pub fn is_deadline(self) -> bool {
        matches!(self, GateFailureKind::ProgressDeadline | GateFailureKind::Timeout)
    }

    /// A short phrase for reports: "crash loop", "image pull failure", ...
    pub fn describe(self) -> &'static str {
        match self {
            GateFailureKind::CrashLoop => "crash loop",
            GateFailureKind::OutOfMemory => "out of memory",
            GateFailureKind::ImagePull => "image pull failure",
            GateFailureKind::InvalidImage => "invalid image",
            GateFailureKind::ConfigError => "container configuration error",
            GateFailureKind::Unschedulable => "unschedulable",
            GateFailureKind::ProgressDeadline => "progress deadline exceeded",
            GateFailureKind::ReplicaFailure => "replica failure",
            GateFailureKind::Timeout => "gate timeout",
        }
    }
}

/// The result of one metric check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckVerdict {
    /// The value is within the threshold.
    Pass,
    /// The value breaches the threshold.
    Fail,
    /// There was nothing to judge: no series, NaN, or too few requests.
    NoData,
    /// Prometheus could not be asked or refused the query. Never counted as a pass.
    Error,
}
