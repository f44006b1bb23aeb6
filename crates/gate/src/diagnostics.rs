//! Why the gate failed, pod by pod and container by container: reasons, messages, exit codes with their meaning,
//! the last lines of the previous container's log, and recent Warning events. Printed for people, and returned as
//! data for reports.

use crate::assessment::{exit_code_meaning, is_evicted};
use fledge_core::error_chain;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// Lines of the previous container's log shown per container.
pub const LOG_LINES: i64 = 20;
/// Pods described at most (failing ones first).
pub const MAX_PODS: usize = 5;
/// Warning events shown per pod at most.
pub const MAX_EVENTS: usize = 8;

/// One container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDiagnostics {
    /// Container name.
    pub name: String,
    /// Whether it is an init container.
    pub init: bool,
    /// `waiting`, `running` or `terminated`.
    pub state: String,
    /// The state's reason (`CrashLoopBackOff`, `ErrImagePull` ...).
    pub reason: Option<String>,
    /// The state's message.
    pub message: Option<String>,
    /// Restarts so far.
    pub restarts: i32,
    /// Whether it is Ready.
    pub ready: bool,
    /// The last exit, from the current or the previous instance: code, meaning and reason.
    pub last_exit: Option<ExitDiagnostics>,
    /// The last lines of the previous (or, when none, the current) instance's log.
    pub log: Vec<String>,
    /// Why the log could not be read (RBAC without `pods/log`, for one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
}

/// How a container last exited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitDiagnostics {
    /// Exit code.
    pub code: i32,
    /// What the code usually means.
    pub meaning: String,
    /// The runtime's reason (`Error`, `OOMKilled` ...).
    pub reason: Option<String>,
}

/// A Warning event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDiagnostics {
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// How many times it happened.
    pub count: i32,
}

/// One pod's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDiagnostics {
    /// Pod name.
    pub name: String,
    /// Phase.
    pub phase: String,
    /// Node, when scheduled.
    pub node: Option<String>,
    /// Why it is not scheduled, when it is not.
    pub unschedulable: Option<String>,
    /// Evicted (not counted as the version's failure).
    pub evicted: Option<String>,
    /// Init containers first, then containers.
    pub containers: Vec<ContainerDiagnostics>,
    /// Recent Warning events.
    pub warnings: Vec<EventDiagnostics>,
    /// Why the events could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings_error: Option<String>,
}

/// The diagnostics of a gate's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostics {
    /// The pods described.
    pub pods: Vec<PodDiagnostics>,
    /// Pods not described (beyond [`MAX_PODS`]).
    pub omitted_pods: usize,
}

fn trouble(pod: &Pod) -> i32 {
    let statuses = pod.status.as_ref().map(|status| {
        status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .collect::<Vec<_>>()
    });
    let restarts: i32 = statuses.iter().flatten().map(|status| status.restart_count).sum();
    let waiting = statuses
        .iter()
        .flatten()
        .filter(|status| status.state.as_ref().is_some_and(|state| state.waiting.is_some()))
        .count() as i32;
    restarts + waiting * 10 + i32::from(!crate::assessment::is_ready(pod)) * 5
}

/// Describes the pods (the most troubled first), reading previous logs and Warning events from the cluster.
/// Reading errors leave the parts they concern empty: diagnostics never hide the verdict.
pub async fn collect(client: &kube::Client, namespace: &str, pods: &[Arc<Pod>]) -> Diagnostics {
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let event_api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut sorted: Vec<&Arc<Pod>> = pods.iter().collect();
    sorted.sort_by_key(|pod| (std::cmp::Reverse(trouble(pod)), pod.metadata.name.clone()));
    let mut described = Vec::new();
    for pod in sorted.iter().take(MAX_PODS) {
        described.push(describe(&pod_api, &event_api, pod).await);
    }
    Diagnostics { pods: described, omitted_pods: pods.len().saturating_sub(MAX_PODS) }
}

async fn describe(pod_api: &Api<Pod>, event_api: &Api<Event>, pod: &Pod) -> PodDiagnostics {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|condition| condition.type_ == "PodScheduled" && condition.status == "False")
        .map(|condition| condition.message.clone().unwrap_or_else(|| condition.reason.clone().unwrap_or_default()));
    let evicted = is_evicted(pod).then(|| status.message.clone().unwrap_or_else(|| "Evicted".into()));
    let mut containers = Vec::new();
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .map(|status| (true, status))
        .chain(status.container_statuses.iter().flatten().map(|status| (false, status)));
    for (init, container) in all {
        let state = container.state.clone().unwrap_or_default();
        let (state_name, reason, message) = if let Some(waiting) = &state.waiting {
            ("waiting", waiting.reason.clone(), waiting.message.clone())
        } else if let Some(terminated) = &state.terminated {
            ("terminated", terminated.reason.clone(), terminated.message.clone())
        } else {
            ("running", None, None)
        };
        let terminated =
            state.terminated.clone().or_else(|| container.last_state.as_ref().and_then(|last| last.terminated.clone()));
        let completed_init = init && state.terminated.as_ref().is_some_and(|terminated| terminated.exit_code == 0);
        let last_exit = terminated.filter(|_| !completed_init).map(|terminated| ExitDiagnostics {
            code: terminated.exit_code,
            meaning: exit_code_meaning(terminated.exit_code).to_owned(),
            reason: terminated.reason.clone(),
        });
        let has_previous = container.last_state.as_ref().is_some_and(|last| last.terminated.is_some());
        let failed_now = state.terminated.as_ref().is_some_and(|terminated| terminated.exit_code != 0);
        let interesting = has_previous || failed_now || container.restart_count > 0;
        let (log, log_error) = if interesting {
            let params = LogParams {
                container: Some(container.name.clone()),
                previous: has_previous,
                tail_lines: Some(LOG_LINES),
                ..LogParams::default()
            };
            match pod_api.logs(&name, &params).await {
                Ok(text) => (text.lines().map(str::to_owned).collect(), None),
                Err(error) => (Vec::new(), Some(error_chain(&error))),
            }
        } else {
            (Vec::new(), None)
        };
        containers.push(ContainerDiagnostics {
            name: container.name.clone(),
            init,
            state: state_name.to_owned(),
            reason,
            message,
            restarts: crate::assessment::restarts_counted(container),
            ready: container.ready,
            last_exit,
            log,
            log_error,
        });
    }
    let (mut warnings, mut warnings_error) = (Vec::new(), None);
    if let Some(uid) = &pod.metadata.uid {
        let params = ListParams::default().fields(&format!("involvedObject.uid={uid},type=Warning"));
        let listed = event_api.list(&params).await;
        if let Err(error) = &listed {
            warnings_error = Some(error_chain(error));
        }
        if let Ok(events) = listed {
            let mut events = events.items;
            events.sort_by_key(|event| {
                event.last_timestamp.clone().map(|time| time.0).or_else(|| event.event_time.clone().map(|time| time.0))
            });
            warnings = events
                .iter()
                .rev()
                .take(MAX_EVENTS)
                .map(|event| EventDiagnostics {
                    reason: event.reason.clone().unwrap_or_default(),
                    message: event.message.clone().unwrap_or_default(),
                    count: event.count.or_else(|| event.series.as_ref().and_then(|series| series.count)).unwrap_or(1),
                })
                .collect();
        }
    }
    PodDiagnostics {
        name,
        phase: status.phase.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|spec| spec.node_name.clone()),
        unschedulable,
        evicted,
        containers,
        warnings,
        warnings_error,
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pod in &self.pods {
            write!(formatter, "pod {} ({}", pod.name, pod.phase)?;
            if let Some(node) = &pod.node {
                write!(formatter, " on {node}")?;
            }
            writeln!(formatter, ")")?;
            if let Some(evicted) = &pod.evicted {
                writeln!(formatter, "  evicted: {evicted} (not counted against the version)")?;
            }
            if let Some(reason) = &pod.unschedulable {
                writeln!(formatter, "  not scheduled: {reason}")?;
            }
            for container in &pod.containers {
                let kind = if container.init { "init container" } else { "container" };
                write!(formatter, "  {kind} {}: {}", container.name, container.state)?;
                if let Some(reason) = &container.reason {
                    write!(formatter, " ({reason})")?;
                }
                write!(
                    formatter,
                    ", {} restart{}",
                    container.restarts,
                    if container.restarts == 1 { "" } else { "s" }
                )?;
                writeln!(formatter, "{}", if container.ready { ", ready" } else { "" })?;
                if let Some(message) = container.message.as_deref().filter(|message| !message.is_empty()) {
                    writeln!(formatter, "    message: {message}")?;
                }
                if let Some(exit) = &container.last_exit {
                    write!(formatter, "    last exit: code {} ({})", exit.code, exit.meaning)?;
                    if let Some(reason) = &exit.reason {
                        write!(formatter, ", reason {reason}")?;
                    }
                    writeln!(formatter)?;
                }
                if let Some(error) = &container.log_error {
                    writeln!(formatter, "    log not read: {error}")?;
                }
                if !container.log.is_empty() {
                    writeln!(formatter, "    last {} log lines:", container.log.len())?;
                    for line in &container.log {
                        writeln!(formatter, "      | {line}")?;
                    }
                }
            }
            if let Some(error) = &pod.warnings_error {
                writeln!(formatter, "  warning events not read: {error}")?;
            }
            if !pod.warnings.is_empty() {
                writeln!(formatter, "  warning events:")?;
                for event in &pod.warnings {
                    let times = if event.count > 1 { format!(" (x{})", event.count) } else { String::new() };
                    writeln!(formatter, "    {}{times}: {}", event.reason, event.message)?;
                }
            }
        }
        if self.omitted_pods > 0 {
            writeln!(formatter, "({} more pods not shown)", self.omitted_pods)?;
        }
        Ok(())
    }
}
