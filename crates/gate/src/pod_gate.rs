//! The gate over the cluster: watches the new version's pods and Deployment and assesses on every event (and on a
//! short tick, for the clocks: stableFor, pendingGrace), until a verdict or the timeout.

use crate::assessment::{Assessment, Assessor, GatePolicy};
use crate::diagnostics::{self, Diagnostics};
use fledge_core::{GateFailure, GateFailureKind, Release};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the clocks are checked between watch events.
const TICK: Duration = Duration::from_millis(250);

/// What the gate watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateTarget {
    /// Namespace.
    pub namespace: String,
    /// The new version's Deployment.
    pub deployment: String,
    /// The label selector of its pods: `app=<service>,version=<version>`.
    pub selector: String,
}

impl GateTarget {
    /// The new version of a release.
    pub fn for_release(release: &Release) -> GateTarget {
        GateTarget {
            namespace: release.service.namespace.clone(),
            deployment: release.deployment_name(),
            selector: format!("app={},version={}", release.service.name, release.service.version),
        }
    }
}

/// The gate's verdict.
#[derive(Debug, Clone)]
pub enum GateOutcome {
    /// Every desired pod is Ready and stable.
    Healthy {
        /// How long the gate took.
        elapsed: Duration,
    },
    /// The new version failed.
    Failed {
        /// Why.
        failure: GateFailure,
        /// The state of the pods, their previous logs and Warning events.
        diagnostics: Diagnostics,
        /// How long the gate took.
        elapsed: Duration,
    },
}

/// The gate could not watch at all.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No watch succeeded before the timeout, or the API server refused one.
    #[error("failed to watch the pods of Deployment {namespace}/{deployment}")]
    Watch {
        /// Namespace.
        namespace: String,
        /// The Deployment.
        deployment: String,
        /// The last watch error.
        #[source]
        source: watcher::Error,
    },
}

/// Which watch an event came from.
enum Source {
    Pods(Result<bool, watcher::Error>),
    Deployment(Result<bool, watcher::Error>),
}

type Events = Pin<Box<dyn Stream<Item = Source> + Send>>;

/// A gate over one version's pods.
pub struct PodGate {
    client: kube::Client,
    target: GateTarget,
    assessor: Assessor,
    pods: Store<Pod>,
    deployments: Store<Deployment>,
    events: Events,
    pods_synced: bool,
    deployment_synced: bool,
    progress: Option<ProgressReport>,
}

/// A callback told what the gate waits for.
type ProgressReport = Box<dyn FnMut(&str) + Send>;

fn synced<K>(event: &watcher::Event<K>) -> bool {
    matches!(event, watcher::Event::InitDone | watcher::Event::Apply(_) | watcher::Event::Delete(_))
}

/// Whether the API server refused the watch (401, 403): retrying will not help.
fn refused(error: &watcher::Error) -> bool {
    let code = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::WatchError(status) => status.code,
        _ => 0,
    };
    matches!(code, 401 | 403)
}

impl PodGate {
    /// Starts watching `target` under `policy`. Restarts count from now.
    pub fn start(client: kube::Client, target: GateTarget, policy: GatePolicy) -> PodGate {
        let pod_api: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
        let deployment_api: Api<Deployment> = Api::namespaced(client.clone(), &target.namespace);
        let (pods, pod_writer) = reflector::store();
        let (deployments, deployment_writer) = reflector::store();
        let pod_events =
            reflector::reflector(pod_writer, watcher(pod_api, watcher::Config::default().labels(&target.selector)))
                .default_backoff()
                .map(|event| Source::Pods(event.map(|event| synced(&event))));
        let deployment_events = reflector::reflector(
            deployment_writer,
            watcher(deployment_api, watcher::Config::default().fields(&format!("metadata.name={}", target.deployment))),
        )
        .default_backoff()
        .map(|event| Source::Deployment(event.map(|event| synced(&event))));
        PodGate {
            client,
            target,
            assessor: Assessor::new(policy, jiff::Timestamp::now()),
            pods,
            deployments,
            events: Box::pin(futures::stream::select(pod_events, deployment_events)),
            pods_synced: false,
            deployment_synced: false,
            progress: None,
        }
    }

    /// Calls `report` with a line whenever what the gate waits for changes (for progress output).
    pub fn on_progress(mut self, report: impl FnMut(&str) + Send + 'static) -> PodGate {
        self.progress = Some(Box::new(report));
        self
    }

    /// The pods as last seen.
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.pods.state()
    }

    fn assess(&mut self) -> Option<Assessment> {
        if !(self.pods_synced && self.deployment_synced) {
            return None;
        }
        let deployment = self.deployments.state().into_iter().next();
        let pods = self.pods.state();
        Some(self.assessor.assess(std::time::Instant::now(), deployment.as_deref(), &pods))
    }

    /// Handles one watch event; returns the last watch error, if the event was one.
    fn absorb(&mut self, source: Source) -> Option<watcher::Error> {
        match source {
            Source::Pods(Ok(synced)) => self.pods_synced |= synced,
            Source::Deployment(Ok(synced)) => self.deployment_synced |= synced,
            Source::Pods(Err(error)) | Source::Deployment(Err(error)) => {
                tracing::debug!(%error, "gate watch error; retrying with backoff");
                return Some(error);
            }
        }
        None
    }

    /// Waits until the pods are healthy, a failure is classified, or `timeout` passes (a `Timeout` failure with the
    /// state of every pod). Fails if no watch ever succeeded, or at once when the API server refuses one (401, 403).
    pub async fn wait_healthy(&mut self, timeout: Duration) -> Result<GateOutcome, GateError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut ticker = tokio::time::interval(TICK);
        let mut last_error: Option<watcher::Error> = None;
        let mut last_detail = String::new();
        loop {
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => {
                    if !(self.pods_synced && self.deployment_synced) && let Some(source) = last_error {
                        return Err(GateError::Watch { namespace: self.target.namespace.clone(), deployment: self.target.deployment.clone(), source });
                    }
                    let timeout_text = fledge_core::Duration::from_millis(timeout.as_millis() as u64);
                    let detail = if last_detail.is_empty() { "no status seen".to_owned() } else { last_detail };
                    let failure = GateFailure {
                        kind: GateFailureKind::Timeout,
                        pod: None,
                        container: None,
                        reason: "Timeout".into(),
                        message: format!("not healthy within {timeout_text}: {detail}"),
                    };
                    let diagnostics = diagnostics::collect(&self.client, &self.target.namespace, &self.pods.state()).await;
                    return Ok(GateOutcome::Failed { failure, diagnostics, elapsed: started.elapsed() });
                }
                event = self.events.next() => match event {
                    Some(source) => {
                        if let Some(error) = self.absorb(source) {
                            // Waiting does not make a refused watch work: the gate fails at once.
                            if refused(&error) {
                                return Err(GateError::Watch {
                                    namespace: self.target.namespace.clone(),
                                    deployment: self.target.deployment.clone(),
                                    source: error,
                                });
                            }
                            last_error = Some(error);
                        }
                    }
                    None => return Err(GateError::Watch {
                        namespace: self.target.namespace.clone(),
                        deployment: self.target.deployment.clone(),
                        source: last_error.unwrap_or(watcher::Error::NoResourceVersion),
                    }),
                },
                _ = ticker.tick() => {}
            }
            match self.assess() {
                None => {}
                Some(Assessment::Healthy) => return Ok(GateOutcome::Healthy { elapsed: started.elapsed() }),
                Some(Assessment::Failed(failure)) => {
                    let diagnostics =
                        diagnostics::collect(&self.client, &self.target.namespace, &self.pods.state()).await;
                    return Ok(GateOutcome::Failed { failure, diagnostics, elapsed: started.elapsed() });
                }
                Some(Assessment::Waiting(detail)) if detail != last_detail => {
                    if let Some(report) = self.progress.as_mut() {
                        report(&detail);
                    }
                    last_detail = detail;
                }
                Some(Assessment::Waiting(_)) => {}
            }
        }
    }

    /// Keeps watching after the gate passed: restarts (counted since the gate started), unrecoverable start errors,
    /// pods stuck pending and Deployment failures are reported the moment the watch delivers them.
    pub fn into_continuous(mut self) -> ContinuousGate {
        let (sender, receiver) = tokio::sync::watch::channel(None);
        let pods = self.pods.clone();
        let client = self.client.clone();
        let namespace = self.target.namespace.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    biased;
                    event = self.events.next() => match event {
                        Some(source) => { self.absorb(source); }
                        None => return,
                    },
                    _ = ticker.tick() => {}
                }
                if let Some(Assessment::Failed(failure)) = self.assess() {
                    let _ = sender.send(Some(failure));
                    return;
                }
            }
        });
        ContinuousGate { receiver, task, pods, client, namespace }
    }
}

/// A gate that keeps watching through the stages of a release. Dropping it stops the watches.
pub struct ContinuousGate {
    receiver: tokio::sync::watch::Receiver<Option<GateFailure>>,
    task: tokio::task::JoinHandle<()>,
    pods: Store<Pod>,
    client: kube::Client,
    namespace: String,
}

impl ContinuousGate {
    /// The failure seen so far, if any.
    pub fn failure(&self) -> Option<GateFailure> {
        self.receiver.borrow().clone()
    }

    /// Waits for a failure. Pending forever while the version stays healthy.
    pub async fn failed(&mut self) -> GateFailure {
        loop {
            if let Some(failure) = self.receiver.borrow_and_update().clone() {
                return failure;
            }
            if self.receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The diagnostics of the pods as last seen.
    pub async fn diagnose(&self) -> Diagnostics {
        diagnostics::collect(&self.client, &self.namespace, &self.pods.state()).await
    }
}

impl Drop for ContinuousGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}
