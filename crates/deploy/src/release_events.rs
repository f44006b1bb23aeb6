//! Kubernetes Events about the new version's Deployment: each step of the release as an Event regarding
//! `<service>-<version>`, so `kubectl describe deployment` and the cluster's event pipelines show the release.
//!
//! ```text
//!  record(reason, message) ──queue (in order)──▶ one background task ──▶ POST core/v1 Event
//!                                                  (the Deployment's uid looked up once it exists)
//! ```
//!
//! Best effort: an Event that cannot be written is a warning, never a reason to stop or change the release. Writes
//! go through the release's fenced client, so a run that lost its lock writes no Event either.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::PostParams;
use std::time::Duration;
use tokio::sync::mpsc;

/// The component Events name as their source.
pub const COMPONENT: &str = "fledge";

/// How long the end of a run waits for Events still queued.
const DRAIN: Duration = Duration::from_secs(5);

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// A step as planned.
    Normal,
    /// A rollback or a failure.
    Warning,
}

struct Recorded {
    reason: &'static str,
    kind: EventType,
    message: String,
    at: k8s_openapi::jiff::Timestamp,
}

/// Records Events regarding one Deployment, in order, in the background.
pub struct ReleaseEvents {
    queue: std::sync::Mutex<Option<mpsc::UnboundedSender<Recorded>>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ReleaseEvents {
    /// Events regarding Deployment `deployment` of `namespace`, reported by instance `instance` (the run id).
    pub fn new(client: kube::Client, namespace: &str, deployment: &str, instance: &str) -> ReleaseEvents {
        let (queue, mut received) = mpsc::unbounded_channel::<Recorded>();
        let events: Api<Event> = Api::namespaced(client.clone(), namespace);
        let deployments: Api<Deployment> = Api::namespaced(client, namespace);
        let (namespace, deployment, instance) = (namespace.to_owned(), deployment.to_owned(), instance.to_owned());
        let task = tokio::spawn(async move {
            let mut uid: Option<String> = None;
            while let Some(recorded) = received.recv().await {
                if uid.is_none() {
                    uid = deployments.get_opt(&deployment).await.ok().flatten().and_then(|found| found.metadata.uid);
                }
                let event = event(&namespace, &deployment, uid.clone(), &instance, recorded);
                if let Err(error) = events.create(&PostParams::default(), &event).await {
                    tracing::warn!("failed to record a Kubernetes Event regarding Deployment {deployment}: {error}");
                }
            }
        });
        ReleaseEvents { queue: std::sync::Mutex::new(Some(queue)), task: std::sync::Mutex::new(Some(task)) }
    }

    /// Queues an Event (nothing once drained).
    pub fn record(&self, reason: &'static str, kind: EventType, message: String) {
        let queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(queue) = queue.as_ref() {
            let _ = queue.send(Recorded { reason, kind, message, at: k8s_openapi::jiff::Timestamp::now() });
        }
    }

    /// Waits a little for the queued Events to be written; what is left is abandoned.
    pub async fn drain(&self) {
        // Closing the queue ends the task once it has written what was queued.
        drop(self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
        let task = self.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(task) = task
            && tokio::time::timeout(DRAIN, task).await.is_err()
        {
            tracing::warn!("gave up on Kubernetes Events still queued after {DRAIN:?}");
        }
    }
}

/// The core/v1 Event: named `<deployment>.<nanoseconds as hex>` (as client-go's recorder names them), so names
/// sort in the order the steps happened.
fn event(namespace: &str, deployment: &str, uid: Option<String>, instance: &str, recorded: Recorded) -> Event {
    let time = Time(recorded.at);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{deployment}.{:x}", recorded.at.as_nanosecond())),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("apps/v1".to_owned()),
            kind: Some("Deployment".to_owned()),
            name: Some(deployment.to_owned()),
            namespace: Some(namespace.to_owned()),
            uid,
            ..ObjectReference::default()
        },
        reason: Some(recorded.reason.to_owned()),
        message: Some(recorded.message),
        type_: Some(match recorded.kind {
            EventType::Normal => "Normal".to_owned(),
            EventType::Warning => "Warning".to_owned(),
        }),
        source: Some(EventSource { component: Some(COMPONENT.to_owned()), host: None }),
        reporting_component: Some(COMPONENT.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        first_timestamp: Some(time.clone()),
        last_timestamp: Some(time),
        count: Some(1),
        ..Event::default()
    }
}
