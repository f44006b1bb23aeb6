//! Deciding, from the pods and the Deployment as the watches deliver them, whether the new version is healthy,
//! still starting, or failed, and why. Pure: time comes in as an argument.
//!
//! | what the status shows | decided |
//! |---|---|
//! | `InvalidImageName`, `ErrImageNeverPull`, `CreateContainerConfigError` (not the transient cache one), image pull errors saying not found / unauthorized, `RunContainerError`, Deployment `ProgressDeadlineExceeded` or `ReplicaFailure` | failed at once |
//! | restarts (`CrashLoopBackOff`, `Error`, `OOMKilled`, `StartError`) beyond `maxRestarts` since the gate started | failed (crash loop or out of memory) |
//! | other image pull errors, `Unschedulable`, containers still being created | failed after `pendingGrace` |
//! | every desired pod Ready without interruption for `stableFor`, rollout complete | healthy (never with zero pods) |

use fledge_core::{GateFailure, GateFailureKind};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The gate's rules, from the manifest's `gate` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePolicy {
    /// Restarts tolerated per container since the gate started.
    pub max_restarts: u32,
    /// Containers whose restarts do not count.
    pub ignore_restarts_of: Vec<String>,
    /// How long every pod must stay Ready.
    pub stable_for: Duration,
    /// How long a pod may stay pending before the gate fails.
    pub pending_grace: Duration,
}

impl From<&fledge_core::release::Gate> for GatePolicy {
    fn from(gate: &fledge_core::release::Gate) -> GatePolicy {
        GatePolicy {
            max_restarts: gate.max_restarts,
            ignore_restarts_of: gate.ignore_restarts_of.clone(),
            stable_for: gate.stable_for.as_std(),
            pending_grace: gate.pending_grace.as_std(),
        }
    }
}

/// The gate's view at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Every desired pod is Ready and stable, and the rollout is complete.
    Healthy,
    /// Not there yet; what is missing.
    Waiting(String),
    /// The new version failed.
    Failed(GateFailure),
}

/// What an exit code usually means.
pub fn exit_code_meaning(code: i32) -> &'static str {
    match code {
        0 => "exited normally",
        1 => "general error",
        2 => "misuse of a shell builtin or bad arguments",
        126 => "command found but not executable",
        127 => "command not found",
        128 => "invalid exit argument",
        130 => "SIGINT: interrupted",
        134 => "SIGABRT: aborted",
        137 => "SIGKILL: killed, usually for exceeding the memory limit",
        139 => "SIGSEGV: segmentation fault",
        143 => "SIGTERM: terminated",
        _ if code > 128 && code < 160 => "killed by a signal",
        _ => "application error",
    }
}

#[derive(Debug, Default)]
struct PodTrack {
    /// Restart counts when the gate first saw each container.
    baselines: HashMap<String, i32>,
    ready_since: Option<Instant>,
    /// Since when each pending condition has been seen.
    pending: HashMap<String, Instant>,
}

/// The pending clock of a pod waiting to be scheduled.
const SCHEDULING: &str = "scheduling";

impl PodTrack {
    /// Readiness now: the stable clock starts at the first Ready and stops at any interruption.
    fn note_readiness(&mut self, ready: bool, now: Instant) {
        if ready {
            self.ready_since.get_or_insert(now);
        } else {
            self.ready_since = None;
        }
    }

    /// How long the pending condition `key` has been seen (its clock starts now if it is new).
    fn pending_for(&mut self, key: &str, now: Instant) -> Duration {
        now.duration_since(*self.pending.entry(key.to_owned()).or_insert(now))
    }

    /// The restarts a container had when the gate first saw it: 0 for pods created after the gate started.
    fn baseline(&mut self, container: &ContainerStatus, created_after_start: bool) -> i32 {
        *self.baselines.entry(container.name.clone()).or_insert(if created_after_start {
            0
        } else {
            restarts_counted(container)
        })
    }
}

/// The worst failure seen so far.
#[derive(Default)]
struct Worst(Option<(Severity, GateFailure)>);

impl Worst {
    fn consider(&mut self, severity: Severity, failure: GateFailure) {
        if self.0.as_ref().is_none_or(|(worst, _)| severity > *worst) {
            self.0 = Some((severity, failure));
        }
    }
}

/// What a container's waiting reason means for the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonVerdict {
    /// Retrying cannot fix it: the gate fails at once.
    FailsAtOnce(GateFailureKind),
    /// It may resolve itself: the gate fails when it lasts longer than `pendingGrace`, on the clock named so.
    Pending {
        /// The clock it runs on (image pulls share one, whether erring or backing off).
        clock: &'static str,
        /// The failure when the grace runs out.
        kind: GateFailureKind,
    },
    /// Nothing the gate judges (running, or a reason of the restart counts: `CrashLoopBackOff`).
    Fine,
}

/// The reason table: what a container's waiting `reason` (and its `message`, for the errors whose reason alone does
/// not tell) means for the gate. Pure; the table at the top of this module says the same in words.
pub fn reason_verdict(reason: &str, message: &str) -> ReasonVerdict {
    match reason {
        "InvalidImageName" | "ErrImageNeverPull" => ReasonVerdict::FailsAtOnce(GateFailureKind::InvalidImage),
        // The kubelet's informer cache not synced yet is transient; a missing ConfigMap or Secret is not.
        "CreateContainerConfigError" if !(message.contains("failed to sync") && message.contains("cache")) => {
            ReasonVerdict::FailsAtOnce(GateFailureKind::ConfigError)
        }
        "CreateContainerConfigError" => {
            ReasonVerdict::Pending { clock: reason_clock(reason), kind: GateFailureKind::ConfigError }
        }
        "RunContainerError" => ReasonVerdict::FailsAtOnce(GateFailureKind::CrashLoop),
        "ErrImagePull" | "ImagePullBackOff" if pull_error_is_permanent(message) => {
            ReasonVerdict::FailsAtOnce(GateFailureKind::ImagePull)
        }
        "ErrImagePull" | "ImagePullBackOff" => {
            ReasonVerdict::Pending { clock: "image", kind: GateFailureKind::ImagePull }
        }
        "ContainerCreating" | "PodInitializing" => {
            ReasonVerdict::Pending { clock: reason_clock(reason), kind: GateFailureKind::ConfigError }
        }
        _ => ReasonVerdict::Fine,
    }
}

/// The pending clock of a waiting reason: its name.
fn reason_clock(reason: &str) -> &'static str {
    match reason {
        "CreateContainerConfigError" => "CreateContainerConfigError",
        "ContainerCreating" => "ContainerCreating",
        _ => "PodInitializing",
    }
}

/// The restarts of a container as the gate counts them, and as its diagnostics show them: the kubelet's restart
/// count, plus one when the container has just exited with an error and is about to be restarted.
pub fn restarts_counted(container: &ContainerStatus) -> i32 {
    let exited_with_error = container
        .state
        .as_ref()
        .and_then(|state| state.terminated.as_ref())
        .is_some_and(|terminated| terminated.exit_code != 0);
    container.restart_count + i32::from(exited_with_error)
}

/// The PodScheduled condition saying the pod cannot be scheduled, if it does.
fn unschedulable(status: &k8s_openapi::api::core::v1::PodStatus) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    status.conditions.iter().flatten().find(|condition| {
        condition.type_ == "PodScheduled"
            && condition.status == "False"
            && condition.reason.as_deref() == Some("Unschedulable")
    })
}

/// Severity of a failure candidate, for choosing which one to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Grace,
    Restarts,
    Immediate,
}

/// Keeps what the gate needs to remember between events: restart baselines, readiness and pending clocks.
#[derive(Debug)]
pub struct Assessor {
    policy: GatePolicy,
    started: jiff::Timestamp,
    pods: HashMap<String, PodTrack>,
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Whether the pod was evicted (phase Failed, reason Evicted): reported, but not the version's failure.
pub fn is_evicted(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .is_some_and(|status| status.phase.as_deref() == Some("Failed") && status.reason.as_deref() == Some("Evicted"))
}

fn is_terminal(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        .is_some_and(|phase| phase == "Succeeded" || phase == "Failed")
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|status| status.conditions.as_ref()).is_some_and(|conditions| {
        conditions.iter().any(|condition| condition.type_ == "Ready" && condition.status == "True")
    })
}

/// Whether a pod runs the Deployment's current template: every container of the template is in the pod with the same
/// image (the pod may have more, such as an injected sidecar).
pub fn is_current(pod: &Pod, deployment: &Deployment) -> bool {
    let Some(template) = deployment.spec.as_ref().and_then(|spec| spec.template.spec.as_ref()) else { return true };
    let Some(pod_spec) = pod.spec.as_ref() else { return true };
    let wanted = template.containers.iter().chain(template.init_containers.iter().flatten());
    let have: Vec<_> = pod_spec.containers.iter().chain(pod_spec.init_containers.iter().flatten()).collect();
    wanted.into_iter().all(|container| {
        have.iter().any(|candidate| candidate.name == container.name && candidate.image == container.image)
    })
}

/// The message patterns of image pull errors that retrying cannot fix.
fn pull_error_is_permanent(message: &str) -> bool {
    let message = message.to_lowercase();
    [
        "not found",
        "unauthorized",
        "pull access denied",
        "authorization failed",
        "manifest unknown",
        "denied:",
        "forbidden",
    ]
    .iter()
    .any(|pattern| message.contains(pattern))
}

impl Assessor {
    /// A fresh assessment starting now (`started`: the wall-clock start, so pods created later start from zero
    /// restarts even if the gate first sees them after a restart).
    pub fn new(policy: GatePolicy, started: jiff::Timestamp) -> Assessor {
        Assessor { policy, started, pods: HashMap::new() }
    }

    /// The policy.
    pub fn policy(&self) -> &GatePolicy {
        &self.policy
    }

    /// Assesses the pods and the Deployment as they are now.
    pub fn assess(&mut self, now: Instant, deployment: Option<&Deployment>, pods: &[Arc<Pod>]) -> Assessment {
        let live_uids: Vec<String> = pods.iter().filter_map(|pod| pod.metadata.uid.clone()).collect();
        self.pods.retain(|uid, _| live_uids.contains(uid));
        if let Some(failure) = deployment.and_then(deployment_failure) {
            return Assessment::Failed(failure);
        }
        // Pods of an older template of the same version (a release re-run with a fixed image) are being replaced:
        // their failures are not the current template's.
        let mut sorted: Vec<&Arc<Pod>> =
            pods.iter().filter(|pod| deployment.is_none_or(|deployment| is_current(pod, deployment))).collect();
        sorted.sort_by_key(|pod| pod_name(pod));
        let mut worst: Option<(Severity, GateFailure)> = None;
        for pod in sorted.iter().filter(|pod| !is_terminating(pod) && !is_terminal(pod)) {
            if let Some((severity, failure)) = self.assess_pod(now, pod)
                && worst.as_ref().is_none_or(|(worst_severity, _)| severity > *worst_severity)
            {
                worst = Some((severity, failure));
            }
        }
        if let Some((_, failure)) = worst {
            return Assessment::Failed(failure);
        }
        self.healthy_or_waiting(now, deployment, pods)
    }

    /// The worst failure of one pod now, if any: what its status says (the reason table, [`reason_verdict`]), how
    /// long it has been pending, and how often its containers restarted since the gate started.
    fn assess_pod(&mut self, now: Instant, pod: &Pod) -> Option<(Severity, GateFailure)> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let name = pod_name(pod);
        let created_after_start =
            pod.metadata.creation_timestamp.as_ref().is_some_and(|created| created.0 >= self.started);
        let policy = self.policy.clone();
        let track = self.pods.entry(uid).or_default();
        track.note_readiness(is_ready(pod), now);
        let status = pod.status.as_ref()?;
        let failure = |kind: GateFailureKind, container: Option<&str>, reason: &str, message: String| GateFailure {
            kind,
            pod: Some(name.clone()),
            container: container.map(str::to_owned),
            reason: reason.to_owned(),
            message,
        };
        let mut worst = Worst::default();
        let mut seen_pending: Vec<String> = Vec::new();

        if let Some(condition) = unschedulable(status) {
            seen_pending.push(SCHEDULING.into());
            if track.pending_for(SCHEDULING, now) >= policy.pending_grace {
                let message = condition.message.clone().unwrap_or_default();
                worst
                    .consider(Severity::Grace, failure(GateFailureKind::Unschedulable, None, "Unschedulable", message));
            }
        }
        let statuses =
            status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
        for container in statuses {
            let container_name = container.name.as_str();
            let baseline = track.baseline(container, created_after_start);
            let waiting = container.state.as_ref().and_then(|state| state.waiting.as_ref());
            let reason = waiting.and_then(|waiting| waiting.reason.as_deref()).unwrap_or_default();
            let message = waiting.and_then(|waiting| waiting.message.clone()).unwrap_or_default();
            match reason_verdict(reason, &message) {
                ReasonVerdict::FailsAtOnce(kind) => {
                    worst.consider(Severity::Immediate, failure(kind, Some(container_name), reason, message));
                }
                ReasonVerdict::Pending { clock, kind } => {
                    let key = format!("container:{container_name}:{clock}");
                    let since = track.pending_for(&key, now);
                    seen_pending.push(key);
                    if since >= policy.pending_grace {
                        let text = if kind == GateFailureKind::ConfigError && reason != "CreateContainerConfigError" {
                            let grace = fledge_core::Duration::from_millis(policy.pending_grace.as_millis() as u64);
                            format!(
                                "containers still being created after {grace} (pendingGrace); check the pod's events for FailedMount or sandbox errors"
                            )
                        } else {
                            message
                        };
                        worst.consider(Severity::Grace, failure(kind, Some(container_name), reason, text));
                    }
                }
                ReasonVerdict::Fine => {}
            }
            if policy.ignore_restarts_of.iter().any(|ignored| ignored == container_name) {
                continue;
            }
            let restarts = restarts_counted(container).saturating_sub(baseline);
            if restarts > policy.max_restarts as i32 {
                worst.consider(Severity::Restarts, restart_failure(&name, container, restarts, policy.max_restarts));
            }
        }
        track.pending.retain(|key, _| seen_pending.contains(key));
        worst.0
    }

    fn healthy_or_waiting(&self, now: Instant, deployment: Option<&Deployment>, pods: &[Arc<Pod>]) -> Assessment {
        let Some(deployment) = deployment else {
            return Assessment::Waiting("the Deployment does not exist yet".into());
        };
        let desired = deployment.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1).max(0) as usize;
        if desired == 0 {
            return Assessment::Waiting(
                "the Deployment asks for 0 replicas, so no pod can prove the version healthy".into(),
            );
        }
        let live: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|pod| !is_terminating(pod) && !is_terminal(pod) && is_current(pod, deployment))
            .collect();
        let ready = live.iter().filter(|pod| is_ready(pod)).count();
        let stable = live
            .iter()
            .filter(|pod| {
                let uid = pod.metadata.uid.as_deref().unwrap_or_default();
                self.pods
                    .get(uid)
                    .and_then(|track| track.ready_since)
                    .is_some_and(|since| now.duration_since(since) >= self.policy.stable_for)
            })
            .count();
        let rollout = fledge_deploy::rollout::status(deployment);
        if rollout == fledge_deploy::RolloutStatus::Complete && stable >= desired {
            return Assessment::Healthy;
        }
        let stable_for = fledge_core::Duration::from_millis(self.policy.stable_for.as_millis() as u64);
        let mut detail = format!("{ready}/{desired} pods Ready, {stable} stable for {stable_for}");
        if let fledge_deploy::RolloutStatus::Progressing(message) = rollout {
            detail.push_str("; ");
            detail.push_str(&message);
        }
        Assessment::Waiting(detail)
    }
}

fn restart_failure(pod: &str, container: &ContainerStatus, restarts: i32, limit: u32) -> GateFailure {
    let current = container.state.as_ref().and_then(|state| state.terminated.as_ref());
    let last = current.or_else(|| container.last_state.as_ref().and_then(|state| state.terminated.as_ref()));
    let waiting_reason =
        container.state.as_ref().and_then(|state| state.waiting.as_ref()).and_then(|waiting| waiting.reason.clone());
    let last_reason = last.and_then(|terminated| terminated.reason.clone()).unwrap_or_else(|| "Error".into());
    let out_of_memory = last_reason == "OOMKilled";
    let kind = if out_of_memory { GateFailureKind::OutOfMemory } else { GateFailureKind::CrashLoop };
    let exit = last.map_or_else(String::new, |terminated| {
        format!(
            "; last exit code {} ({}), reason {}",
            terminated.exit_code,
            exit_code_meaning(terminated.exit_code),
            last_reason
        )
    });
    GateFailure {
        kind,
        pod: Some(pod.to_owned()),
        container: Some(container.name.clone()),
        reason: if out_of_memory { "OOMKilled".to_owned() } else { waiting_reason.unwrap_or(last_reason) },
        message: format!("restarted {restarts} times since the gate started (maxRestarts {limit}){exit}"),
    }
}

fn deployment_failure(deployment: &Deployment) -> Option<GateFailure> {
    let conditions = deployment.status.as_ref()?.conditions.as_ref()?;
    let generation_observed = deployment.status.as_ref().and_then(|status| status.observed_generation).unwrap_or(0)
        >= deployment.metadata.generation.unwrap_or(0);
    for condition in conditions {
        if condition.type_ == "Progressing"
            && condition.reason.as_deref() == Some("ProgressDeadlineExceeded")
            && generation_observed
        {
            return Some(GateFailure {
                kind: GateFailureKind::ProgressDeadline,
                pod: None,
                container: None,
                reason: "ProgressDeadlineExceeded".into(),
                message: condition.message.clone().unwrap_or_default(),
            });
        }
        if condition.type_ == "ReplicaFailure" && condition.status == "True" {
            return Some(GateFailure {
                kind: GateFailureKind::ReplicaFailure,
                pod: None,
                container: None,
                reason: condition.reason.clone().unwrap_or_else(|| "FailedCreate".into()),
                message: condition.message.clone().unwrap_or_default(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests;
