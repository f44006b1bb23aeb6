//! `promote:`, `rollback:` and `notify:` what happens when a release ends, and who hears about it.

use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Reader};
use fledge_core::Duration;
use fledge_core::release::{CleanupPolicy, MessageFormat, Notification, NotifyEvent, Promote, Rollback, WebhookSource};

const CLEANUP_CHOICES: &[&str] = &["delete", "scale-to-zero", "keep"];
const EVENT_CHOICES: &[&str] =
    &["started", "stage-passed", "awaiting-approval", "promoted", "rolled-back", "rollback-failed"];

pub(crate) static PROMOTE: Object = Object {
    fields: &[
        Field::new(
            "scaleDownDelay",
            Kind::Duration,
            "how long the old version keeps running at 0% after promotion, as a fast way back",
        )
        .default("30s"),
        Field::new("cleanup", Kind::Choice(CLEANUP_CHOICES), "what happens to the old version after the delay")
            .default("delete"),
    ],
    exactly_one_of: &[],
};

pub(crate) static ROLLBACK: Object = Object {
    fields: &[Field::new(
        "newVersion",
        Kind::Choice(CLEANUP_CHOICES),
        "what happens to the new version's Deployment once traffic is restored",
    )
    .default("scale-to-zero")],
    exactly_one_of: &[],
};

pub(crate) static NOTIFICATION: Object = Object {
    fields: &[
        Field::new(
            "webhook",
            Kind::Url,
            "URL that receives a JSON POST per event; it lands in git with the manifest, so prefer webhookFile or webhookEnv",
        ),
        Field::new(
            "webhookFile",
            Kind::Path,
            "file holding the webhook's URL (a mounted Secret), read when the release starts",
        ),
        Field::new(
            "webhookEnv",
            Kind::EnvironmentVariable,
            "environment variable holding the webhook's URL, read when the release starts",
        ),
        Field::new("on", Kind::List(&Kind::Choice(EVENT_CHOICES)), "the events sent; default: all of them"),
        Field::new(
            "format",
            Kind::Choice(&["json", "slack", "teams"]),
            "the message: fledge's JSON, a Slack incoming webhook's blocks, or a Teams workflow's Adaptive Card",
        )
        .default("json"),
    ],
    exactly_one_of: &["webhook", "webhookFile", "webhookEnv"],
};

fn cleanup_policy(name: &str) -> CleanupPolicy {
    match name {
        "delete" => CleanupPolicy::Delete,
        "keep" => CleanupPolicy::Keep,
        _ => CleanupPolicy::ScaleToZero,
    }
}

pub(super) fn read_promote(reader: &mut Reader, entries: &Entries<'_>) -> Option<Promote> {
    let scale_down_delay = entries.duration(reader, "scaleDownDelay").or(Duration::from_secs(30));
    let cleanup = entries.choice(reader, "cleanup").or("delete");
    Some(Promote { scale_down_delay: scale_down_delay?, cleanup: cleanup_policy(cleanup?) })
}

pub(super) fn read_rollback(reader: &mut Reader, entries: &Entries<'_>) -> Option<Rollback> {
    let new_version = entries.choice(reader, "newVersion").or("scale-to-zero");
    Some(Rollback { new_version: cleanup_policy(new_version?) })
}

pub(super) fn read_notify(reader: &mut Reader, top: &Entries<'_>) -> Option<Vec<Notification>> {
    let items = top.list(reader, "notify", "write a list of `- webhook: URL` entries").or(&[])?;
    let mut notifications = Vec::new();
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        let path = format!("notify[{index}]");
        let Some(entries) = reader.object(item, &path, &NOTIFICATION) else {
            valid = false;
            continue;
        };
        let url = entries.text(reader, "webhook").optional();
        let file = entries.path(reader, "webhookFile").optional();
        let env = entries.text(reader, "webhookEnv").optional();
        let on = read_events(reader, &entries);
        let format = entries.choice(reader, "format").or("json").map(|format| match format {
            "slack" => MessageFormat::Slack,
            "teams" => MessageFormat::Teams,
            _ => MessageFormat::Json,
        });
        let webhook = match (url, file, env) {
            (Some(Some(url)), Some(None), Some(None)) => Some(WebhookSource::Url(url)),
            (Some(None), Some(Some(file)), Some(None)) => Some(WebhookSource::File(file)),
            (Some(None), Some(None), Some(Some(env))) => Some(WebhookSource::Env(env)),
            // None of them, several, or an invalid one: reported by the reader already.
            _ => None,
        };
        match (webhook, on, format) {
            (Some(webhook), Some(on), Some(format)) => notifications.push(Notification { webhook, on, format }),
            _ => valid = false,
        }
    }
    valid.then_some(notifications)
}

fn read_events(reader: &mut Reader, entries: &Entries<'_>) -> Option<Vec<NotifyEvent>> {
    let Some(items) = entries.list(reader, "on", "write a list of events, like [promoted, rolled-back]").optional()?
    else {
        return Some(NotifyEvent::ALL.to_vec());
    };
    let path = entries.path_of("on");
    if items.is_empty() {
        reader.error(
            entries.get("on").expect("read above"),
            format!("`{path}` is empty"),
            "list at least one event, or omit `on` to send all of them",
        );
        return None;
    }
    let mut events = Vec::new();
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        let Some(name) = reader.choice(item, &format!("{path}[{index}]"), EVENT_CHOICES) else {
            valid = false;
            continue;
        };
        let event =
            NotifyEvent::ALL.into_iter().find(|event| event.manifest_name() == name).expect("choices match events");
        if events.contains(&event) {
            reader.error(item, format!("`{path}` lists `{name}` twice"), "list each event once");
            valid = false;
        }
        events.push(event);
    }
    valid.then_some(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_the_core_names() {
        let events: Vec<&str> = NotifyEvent::ALL.iter().map(|event| event.manifest_name()).collect();
        assert_eq!(events, EVENT_CHOICES);
        for choice in CLEANUP_CHOICES {
            assert_eq!(cleanup_policy(choice).manifest_name(), *choice);
        }
    }
}
