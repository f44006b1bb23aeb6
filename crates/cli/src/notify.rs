//! Webhooks: the manifest's `notify` entries get a JSON POST per subscribed event, retried, in the background. A
//! webhook that fails never blocks or changes the release or its rollback; at the end, fledge waits a few seconds
//! for posts still in flight, then gives up on them.

use fledge_core::Release;
use fledge_core::release::{NotifyEvent, WebhookSource, url_host};
use fledge_runner::{Event, Reporter};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Attempts per post.
const ATTEMPTS: u32 = 3;
/// Timeout of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of a run waits for posts in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// Posts release events to webhooks.
#[derive(Clone)]
pub(crate) struct Notifier {
    release: Release,
    targets: Arc<Vec<Target>>,
    client: reqwest::Client,
    pending: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// A webhook with its URL at hand.
struct Target {
    url: String,
    on: Vec<NotifyEvent>,
}

/// A webhook's URL, from the manifest, its file or its environment variable; `Err` says why it cannot be had,
/// without the URL.
fn resolve(source: &WebhookSource) -> Result<String, String> {
    resolve_with(source, |name| std::env::var(name).ok())
}

/// [`resolve`], with the environment variables `variable` gives.
fn resolve_with(source: &WebhookSource, variable: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let url = match source {
        WebhookSource::Url(url) => url.clone(),
        WebhookSource::File(path) => std::fs::read_to_string(path)
            .map_err(|error| format!("failed to read file {}: {error}", path.display()))?
            .trim()
            .to_owned(),
        WebhookSource::Env(name) => variable(name).ok_or_else(|| format!("${name} is not set"))?.trim().to_owned(),
    };
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err("it does not hold an http:// or https:// URL".to_owned())
    }
}

/// The subscription an event falls under, if any.
fn subscription(event: &Event) -> Option<NotifyEvent> {
    Some(match event {
        Event::PreflightPassed { .. } | Event::Resuming { .. } => NotifyEvent::Started,
        Event::StagePassed { .. } => NotifyEvent::StagePassed,
        Event::AwaitingApproval { .. } => NotifyEvent::AwaitingApproval,
        Event::CleanedUp { .. } => NotifyEvent::Promoted,
        Event::RolledBack { .. } => NotifyEvent::RolledBack,
        Event::RollbackFailed { .. } => NotifyEvent::RollbackFailed,
        _ => return None,
    })
}

/// Where a webhook points, without its path and query (which may carry a token): for messages.
fn host_of(url: &str) -> &str {
    url_host(url)
}

impl Notifier {
    /// A notifier for `release`'s `notify` entries, their URLs read now; one that cannot be read is left out, with
    /// a warning that names where it should have come from (never the URL).
    pub(crate) fn new(release: &Release) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent(concat!("fledge/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let mut targets = Vec::new();
        for (index, notification) in release.notify.iter().enumerate() {
            match resolve(&notification.webhook) {
                Ok(url) => targets.push(Target { url, on: notification.on.clone() }),
                Err(reason) => tracing::warn!(
                    "notify[{index}]: {} cannot be used: {reason}; no events are posted to it",
                    notification.webhook.describe()
                ),
            }
        }
        Notifier { release: release.clone(), targets: Arc::new(targets), client, pending: Arc::default() }
    }

    /// A reporter that posts subscribed events, then calls `next`.
    pub(crate) fn reporter(&self, next: Reporter) -> Reporter {
        let notifier = self.clone();
        Arc::new(move |event: &Event| {
            notifier.notify(event);
            next(event);
        })
    }

    fn notify(&self, event: &Event) {
        let Some(kind) = subscription(event) else { return };
        let targets: Vec<&Target> = self.targets.iter().filter(|target| target.on.contains(&kind)).collect();
        if targets.is_empty() {
            return;
        }
        let service = &self.release.service;
        let mut body = serde_json::json!({
            "event": kind.manifest_name(),
            "service": service.name,
            "namespace": service.namespace,
            "version": service.version,
            "time": jiff::Timestamp::now().to_string(),
        });
        if let (Some(object), Ok(serde_json::Value::Object(details))) =
            (body.as_object_mut(), serde_json::to_value(event))
        {
            object.insert("details".into(), serde_json::Value::Object(details));
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for target in targets {
            let (client, url, body) = (self.client.clone(), target.url.clone(), body.clone());
            pending.push(tokio::spawn(async move { post(client, url, body).await }));
        }
    }

    /// Waits a little for posts in flight; those still unfinished are abandoned.
    pub(crate) async fn drain(&self) {
        let tasks: Vec<_> = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(DRAIN, all).await.is_err() {
            tracing::warn!("gave up on webhook posts still in flight after {DRAIN:?}");
        }
    }
}

async fn post(client: reqwest::Client, url: String, body: Vec<u8>) {
    for attempt in 1..=ATTEMPTS {
        let result = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match result {
            Ok(_) => return,
            Err(error) => {
                let status = error.status().map_or_else(|| "no answer".to_owned(), |status| status.to_string());
                tracing::warn!(host = host_of(&url), attempt, %status, "failed to post a release event to a webhook");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_come_from_the_manifest_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("webhook");
        std::fs::write(&file, "https://hooks.example.com/services/T0/B0/X\n").unwrap();
        assert_eq!(resolve(&WebhookSource::File(file)).unwrap(), "https://hooks.example.com/services/T0/B0/X");
        let missing = resolve(&WebhookSource::File(dir.path().join("missing"))).unwrap_err();
        assert!(missing.starts_with("failed to read file "), "{missing}");
        assert_eq!(
            resolve(&WebhookSource::Env("FLEDGE_TEST_UNSET_WEBHOOK".into())).unwrap_err(),
            "$FLEDGE_TEST_UNSET_WEBHOOK is not set"
        );
        let environment = |name: &str| (name == "SLACK_WEBHOOK").then(|| " https://hooks.example.com/T0/B0/Y\n".into());
        assert_eq!(
            resolve_with(&WebhookSource::Env("SLACK_WEBHOOK".into()), environment).unwrap(),
            "https://hooks.example.com/T0/B0/Y"
        );
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "secret-but-not-a-url").unwrap();
        let refused = resolve(&WebhookSource::File(garbage)).unwrap_err();
        assert!(!refused.contains("secret"), "the file's contents are never shown: {refused}");
    }

    #[test]
    fn messages_name_the_host_not_the_token() {
        assert_eq!(host_of("https://hooks.example.com/services/T000/B000/XXXX?token=1"), "hooks.example.com");
        assert_eq!(host_of("http://user:secret@hooks.example.com:8080/x"), "hooks.example.com:8080");
    }
}
