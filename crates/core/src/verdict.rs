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

/// Why the gate failed, in terms an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateFailure {
    /// The kind of failure.
    pub kind: GateFailureKind,
    /// The pod that failed, when one did (not for deployment-level failures or a timeout).
    pub pod: Option<String>,
    /// The container that failed, when one did.
    pub container: Option<String>,
    /// The Kubernetes reason, as written in the status: `CrashLoopBackOff`, `ErrImagePull`, `Unschedulable` ...
    pub reason: String,
    /// What happened, in a sentence: the status message, or a summary of what was waited for.
    pub message: String,
}

impl std::fmt::Display for GateFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.kind.describe())?;
        match (&self.pod, &self.container) {
            (Some(pod), Some(container)) => write!(formatter, " in pod {pod}, container {container}")?,
            (Some(pod), None) => write!(formatter, " in pod {pod}")?,
            _ => {}
        }
        write!(formatter, ": {}", self.reason)?;
        if !self.message.is_empty() {
            write!(formatter, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl GateFailureKind {
    /// What an operator can do about this kind of failure.
    pub fn hint(self) -> &'static str {
        match self {
            GateFailureKind::CrashLoop => {
                "the container keeps exiting: read its last log lines; check its command, configuration and the services it needs"
            }
            GateFailureKind::OutOfMemory => {
                "the container exceeds its memory limit: raise resources.limits.memory or reduce its memory use"
            }
            GateFailureKind::ImagePull => {
                "the image cannot be pulled: check that the repository and tag exist and that imagePullSecrets grant access"
            }
            GateFailureKind::InvalidImage => {
                "the image reference is invalid or may not be pulled: fix deploy.image or imagePullPolicy"
            }
            GateFailureKind::ConfigError => {
                "the container cannot be created: create the ConfigMap, Secret or volume it refers to, or fix the reference"
            }
            GateFailureKind::Unschedulable => {
                "no node can take the pods: free capacity, lower the pods' resource requests, or fix nodeSelector, affinity and tolerations"
            }
            GateFailureKind::ProgressDeadline => {
                "the rollout made no progress within deploy.progressDeadline: see the pod states for what holds it"
            }
            GateFailureKind::ReplicaFailure => {
                "the ReplicaSet cannot create pods: check quotas, admission webhooks and pod security rules"
            }
            GateFailureKind::Timeout => {
                "the pods did not become Ready and stable within gate.timeout: see their states; raise the timeout if start-up is slow"
            }
        }
    }
}
