//! Who hears about a release: the manifest's `notify` entries, where their webhook URLs come from, and how such a
//! URL may be shown (never its path or query: for Slack and Teams, the path is the credential).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A webhook told about the release's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Where the URL that receives a JSON POST per event comes from.
    pub webhook: WebhookSource,
    /// The events sent to it.
    pub on: Vec<NotifyEvent>,
    /// The shape of each message.
    pub format: MessageFormat,
}

/// The shape of a webhook's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageFormat {
    /// fledge's own JSON: the event, the release, the event's details (docs/reports.md).
    Json,
    /// A Slack incoming webhook's message: a fallback text and Block Kit blocks.
    Slack,
    /// A Microsoft Teams workflow webhook's message: an Adaptive Card.
    Teams,
}

/// Where a webhook's URL comes from. The URL is a secret (for Slack and Teams its path is the credential), so it can
/// live outside the manifest, which lives in git: in a file (a mounted Secret) or an environment variable. It
/// serializes with a URL's path and query replaced by `***` (`fledge validate --output json` prints releases).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookSource {
    /// Written in the manifest.
    Url(String),
    /// Read from this file when the release starts (surrounding white space removed).
    File(PathBuf),
    /// Read from this environment variable when the release starts.
    Env(String),
}

impl WebhookSource {
    /// Where the URL comes from, for messages; never the URL's path or query.
    pub fn describe(&self) -> String {
        match self {
            WebhookSource::Url(url) => format!("the webhook at {}", url_host(url)),
            WebhookSource::File(path) => format!("the webhook in file {}", path.display()),
            WebhookSource::Env(name) => format!("the webhook in ${name}"),
        }
    }
}

impl Serialize for WebhookSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            WebhookSource::Url(url) => map.serialize_entry("url", &redacted_url(url))?,
            WebhookSource::File(path) => map.serialize_entry("file", path)?,
            WebhookSource::Env(name) => map.serialize_entry("env", name)?,
        }
        map.end()
    }
}

/// A secret URL as it may be shown: its scheme and host, the rest `***` (`https://hooks.slack.com/***`).
pub fn redacted_url(url: &str) -> String {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let host = url_host(url);
    if scheme.is_empty() { format!("{host}/***") } else { format!("{scheme}://{host}/***") }
}

/// The host (and port) of a URL, without credentials, path or query: what messages may show of a secret URL.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

/// Release events a webhook can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// The release started (after preflight).
    Started,
    /// A stage's analysis passed.
    StagePassed,
    /// The release stopped at an approval stage.
    AwaitingApproval,
    /// The new version is live.
    Promoted,
    /// The release was rolled back.
    RolledBack,
    /// A rollback could not finish; someone must look at the cluster.
    RollbackFailed,
}

impl NotifyEvent {
    /// Every event, in the order a release can emit them.
    pub const ALL: [NotifyEvent; 6] = [
        NotifyEvent::Started,
        NotifyEvent::StagePassed,
        NotifyEvent::AwaitingApproval,
        NotifyEvent::Promoted,
        NotifyEvent::RolledBack,
        NotifyEvent::RollbackFailed,
    ];

    /// The name used in manifests.
    pub fn manifest_name(self) -> &'static str {
        match self {
            NotifyEvent::Started => "started",
            NotifyEvent::StagePassed => "stage-passed",
            NotifyEvent::AwaitingApproval => "awaiting-approval",
            NotifyEvent::Promoted => "promoted",
            NotifyEvent::RolledBack => "rolled-back",
            NotifyEvent::RollbackFailed => "rollback-failed",
        }
    }
}
