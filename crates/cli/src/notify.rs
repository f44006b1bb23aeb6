//! Webhooks: the manifest's `notify` entries get a JSON POST per subscribed event, retried, in the background. A
//! webhook that fails never blocks or changes the release or its rollback; at the end, fledge waits a few seconds
//! for posts still in flight, then gives up on them.

use fledge_core::Release;
use fledge_core::release::{MessageFormat, NotifyEvent, WebhookSource, url_host};
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
    progress: Arc<Mutex<Progress>>,
}

/// A webhook with its URL at hand.
struct Target {
    url: String,
    on: Vec<NotifyEvent>,
    format: MessageFormat,
}

/// Where the release is, as the events so far tell: for chat messages.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// `stage 2/3 (25%)`.
    stage: Option<String>,
    /// Why it is rolling back.
    reason: Option<String>,
}

/// One message about a release event, before its shape is chosen.
struct Message<'a> {
    kind: NotifyEvent,
    release: &'a Release,
    progress: &'a Progress,
    /// The event's fields (fledge's JSON `details`).
    details: serde_json::Value,
    time: jiff::Timestamp,
}

impl Message<'_> {
    /// The verdict so far, in words: `promoted`, `rolled back (rolled-back-metrics)`, `stage 1/2 (20%) passed`.
    fn verdict(&self) -> String {
        match self.kind {
            NotifyEvent::Started => "started".to_owned(),
            NotifyEvent::StagePassed => {
                format!("{} passed", self.progress.stage.as_deref().unwrap_or("a stage"))
            }
            NotifyEvent::AwaitingApproval => {
                format!("waiting for approval after {}", self.progress.stage.as_deref().unwrap_or("a stage"))
            }
            NotifyEvent::Promoted => "promoted".to_owned(),
            NotifyEvent::RolledBack => match self.details["reason"].as_str() {
                Some(reason) => format!("rolled back ({})", fledge_core::Outcome::RolledBack(rollback_reason(reason))),
                None => "rolled back".to_owned(),
            },
            NotifyEvent::RollbackFailed => "ROLLBACK FAILED: a person must look (fledge status)".to_owned(),
        }
    }

    /// The message in `format`.
    fn body(&self, format: MessageFormat) -> serde_json::Value {
        let service = &self.release.service;
        let title = format!("fledge: {} {} {}", service.name, service.version, self.verdict());
        let stage = self.progress.stage.clone().unwrap_or_else(|| "-".to_owned());
        let reason = match self.kind {
            NotifyEvent::RolledBack | NotifyEvent::RollbackFailed => self.progress.reason.clone(),
            _ => None,
        };
        match format {
            MessageFormat::Json => {
                let mut body = serde_json::json!({
                    "event": self.kind.manifest_name(),
                    "service": service.name,
                    "namespace": service.namespace,
                    "version": service.version,
                    "time": self.time.to_string(),
                });
                body["details"] = self.details.clone();
                body
            }
            MessageFormat::Slack => {
                let mut blocks = vec![
                    serde_json::json!({"type": "header", "text": {"type": "plain_text", "text": title}}),
                    serde_json::json!({"type": "section", "fields": [
                        {"type": "mrkdwn", "text": format!("*Service*\n{}", service.name)},
                        {"type": "mrkdwn", "text": format!("*Version*\n{}", service.version)},
                        {"type": "mrkdwn", "text": format!("*Namespace*\n{}", service.namespace)},
                        {"type": "mrkdwn", "text": format!("*Stage*\n{stage}")},
                    ]}),
                ];
                if let Some(reason) = &reason {
                    blocks.push(
                        serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Reason*\n{reason}")}}),
                    );
                }
                serde_json::json!({"text": title, "blocks": blocks})
            }
            MessageFormat::Teams => {
                let mut body = vec![
                    serde_json::json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true, "text": title}),
                    serde_json::json!({"type": "FactSet", "facts": [
                        {"title": "Service", "value": service.name},
                        {"title": "Version", "value": service.version},
                        {"title": "Namespace", "value": service.namespace},
                        {"title": "Stage", "value": stage},
                        {"title": "Verdict", "value": self.verdict()},
                    ]}),
                ];
                if let Some(reason) = &reason {
                    body.push(serde_json::json!({"type": "TextBlock", "wrap": true, "text": reason}));
                }
                serde_json::json!({
                    "type": "message",
                    "attachments": [{
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": null,
                        "content": {
                            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard",
                            "version": "1.4",
                            "body": body,
                        },
                    }],
                })
            }
        }
    }
}

/// A rollback reason from its JSON name.
fn rollback_reason(name: &str) -> fledge_core::RollbackReason {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).unwrap_or(fledge_core::RollbackReason::Error)
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
                Ok(url) => targets.push(Target { url, on: notification.on.clone(), format: notification.format }),
                Err(reason) => tracing::warn!(
                    "notify[{index}]: {} cannot be used: {reason}; no events are posted to it",
                    notification.webhook.describe()
                ),
            }
        }
        Notifier {
            release: release.clone(),
            targets: Arc::new(targets),
            client,
            pending: Arc::default(),
            progress: Arc::default(),
        }
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
        let progress = {
            let mut progress = self.progress.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match event {
                Event::StageStarted { index, weight, .. } => {
                    progress.stage = Some(format!("stage {}/{} ({weight})", index + 1, self.release.stages.len()));
                }
                Event::RollingBack { detail, .. } => progress.reason = Some(detail.clone()),
                Event::RollbackFailed { error } => progress.reason = Some(error.clone()),
                _ => {}
            }
            progress.clone()
        };
        let Some(kind) = subscription(event) else { return };
        let targets: Vec<&Target> = self.targets.iter().filter(|target| target.on.contains(&kind)).collect();
        if targets.is_empty() {
            return;
        }
        let message = Message {
            kind,
            release: &self.release,
            progress: &progress,
            details: serde_json::to_value(event).unwrap_or_default(),
            time: jiff::Timestamp::now(),
        };
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for target in targets {
            let body = serde_json::to_vec(&message.body(target.format)).unwrap_or_default();
            let (client, url) = (self.client.clone(), target.url.clone());
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
    fn chat_messages_of_a_rollback_carry_the_reason() {
        let text = "apiVersion: fledge/v1\nkind: Release\nservice: {name: reviews, namespace: bookinfo, version: v3}\ndeploy: {image: example.com/reviews:3}\nstages: [{weight: 20, duration: 1m}, {weight: 50, duration: 1m}]\n";
        let release = fledge_manifest::parse(text).unwrap().release;
        let reason = "1 check round(s) failed: success-rate = 91.77% (>= 99%)";
        let progress = Progress { stage: Some("stage 1/2 (20%)".into()), reason: Some(reason.into()) };
        let event = Event::RolledBack { reason: fledge_core::RollbackReason::Metrics };
        let message = Message {
            kind: NotifyEvent::RolledBack,
            release: &release,
            progress: &progress,
            details: serde_json::to_value(&event).unwrap(),
            time: jiff::Timestamp::UNIX_EPOCH,
        };
        let title = "fledge: reviews v3 rolled back (rolled-back-metrics)";
        assert_eq!(
            message.body(MessageFormat::Slack),
            serde_json::json!({"text": title, "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Service*\nreviews"},
                    {"type": "mrkdwn", "text": "*Version*\nv3"},
                    {"type": "mrkdwn", "text": "*Namespace*\nbookinfo"},
                    {"type": "mrkdwn", "text": "*Stage*\nstage 1/2 (20%)"},
                ]},
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Reason*\n{reason}")}},
            ]})
        );
        let card = message.body(MessageFormat::Teams);
        let body = &card["attachments"][0]["content"]["body"];
        assert_eq!(
            body[1]["facts"][4],
            serde_json::json!({"title": "Verdict", "value": "rolled back (rolled-back-metrics)"})
        );
        assert_eq!(body[2], serde_json::json!({"type": "TextBlock", "wrap": true, "text": reason}));
        assert_eq!(
            message.body(MessageFormat::Json),
            serde_json::json!({
                "event": "rolled-back", "service": "reviews", "namespace": "bookinfo", "version": "v3",
                "time": "1970-01-01T00:00:00Z", "details": {"event": "rolled-back", "reason": "metrics"},
            })
        );
    }

    #[test]
    fn messages_name_the_host_not_the_token() {
        assert_eq!(host_of("https://hooks.example.com/services/T000/B000/XXXX?token=1"), "hooks.example.com");
        assert_eq!(host_of("http://user:secret@hooks.example.com:8080/x"), "hooks.example.com:8080");
    }
}
