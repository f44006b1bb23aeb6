//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`), resuming from a
//! resourceVersion, with `410 Gone` (as an `ERROR` event) for one the history no longer holds.

use super::objects::{RequestContext, selector_filter};
use super::table;
use crate::api_error::ApiError;
use crate::store::{Change, ChangeKind};
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

/// Longest a watch runs when the client gives no timeout (real servers pick 30 to 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

pub(super) async fn serve(context: &RequestContext<'_>) -> Result<Response, ApiError> {
    let filter = selector_filter(context)?;
    let store = context.state.store.clone();
    let resource = context.resource();
    let namespace = context.request.namespace.clone();
    let as_table = table::wants_table(context.accept);
    let query = context.query.clone();
    let api_version = resource.resource_type().api_version(&context.request.version);

    let in_scope = {
        let namespace = namespace.clone();
        move |object: &Value| {
            namespace.as_deref().is_none_or(|namespace| {
                object.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace)
            })
        }
    };
    let selected = move |object: &Value| in_scope(object) && filter(object);

    // Where to start: "" or "0" means "the current state, then changes" (synthetic ADDED events); a number means
    // "changes after that revision".
    let requested = query.resource_version.as_deref().filter(|version| !version.is_empty() && *version != "0");
    let (initial, since) = match requested {
        None => {
            let (items, revision) = store.list(resource, namespace.as_deref(), &selected);
            (items, revision)
        }
        Some(version) => {
            let revision = version
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {version}")))?;
            if query.send_initial_events {
                let (items, current) = store.list(resource, namespace.as_deref(), &selected);
                (items, current)
            } else {
                (Vec::new(), revision)
            }
        }
    };
    let (sender, receiver) = mpsc::channel::<Bytes>(256);
    let encode = {
        let query = query.clone();
        let api_version = api_version.clone();
        let columns_sent = std::sync::atomic::AtomicBool::new(false);
        move |event_type: &str, object: &Value| -> Bytes {
            let object = if as_table && event_type != "ERROR" && event_type != "BOOKMARK" {
                let first = !columns_sent.swap(true, std::sync::atomic::Ordering::Relaxed);
                table::table_with(resource, &[Arc::new(object.clone())], &query, None, first)
            } else {
                let mut object = object.clone();
                if event_type != "ERROR" {
                    object["apiVersion"] = json!(api_version);
                }
                object
            };
            let mut line = serde_json::to_vec(&json!({ "type": event_type, "object": object })).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        }
    };

    let replay = store.watch(since);
    if replay.is_err() {
        context.state.expired_watches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let lifetime = [query.timeout_seconds.map(Duration::from_secs), context.state.faults.watch_lifetime()]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut cuts = context.state.faults.watch_cuts();
    let bookmarks = query.allow_watch_bookmarks;
    let initial_events_end = query.send_initial_events;
    let kind = resource.resource_type().kind;

    tokio::spawn(async move {
        let (history, mut changes) = match replay {
            Ok(replay) => replay,
            Err(error) => {
                let _ = sender.send(encode("ERROR", &error.to_status())).await;
                return;
            }
        };
        let mut last_revision = since;
        for object in &initial {
            if sender.send(encode("ADDED", object)).await.is_err() {
                return;
            }
        }
        let bookmark = |revision: u64, initial_end: bool| {
            let mut metadata = json!({ "resourceVersion": revision.to_string() });
            if initial_end {
                metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
            }
            encode("BOOKMARK", &json!({ "kind": kind, "metadata": metadata }))
        };
        if initial_events_end && sender.send(bookmark(since, true)).await.is_err() {
            return;
        }
        for change in history.into_iter().filter(|change| change.resource == resource) {
            last_revision = change.revision;
            if let Some((event_type, object)) = event_for(&change, &selected)
                && sender.send(encode(event_type, object)).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + lifetime;
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = cuts.changed() => return,
                () = tokio::time::sleep_until(deadline) => return,
                () = sender.closed() => return,
                received = changes.recv() => match received {
                    Ok(change) => {
                        if change.revision <= last_revision || change.resource != resource {
                            continue;
                        }
                        last_revision = change.revision;
                        if let Some((event_type, object)) = event_for(&change, &selected)
                            && sender.send(encode(event_type, object)).await.is_err()
                        {
                            return;
                        }
                    }
                    // Fell behind the broadcast: end the stream; the client resumes from its last revision.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if sender.send(bookmark(last_revision.max(since), false)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });

    // The fault layer may cut the stream in the middle of an event, as a broken connection does.
    let faults = context.state.faults.clone();
    let stream = futures::stream::unfold((receiver, StreamState::Open), move |(mut receiver, state)| {
        let faults = faults.clone();
        async move {
            match state {
                StreamState::Done => None,
                StreamState::Cut => {
                    let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fledge-sim: watch cut");
                    Some((Err(error), (receiver, StreamState::Done)))
                }
                StreamState::Open => {
                    let bytes = receiver.recv().await?;
                    if bytes.len() > 1 && faults.cut_body() {
                        return Some((Ok(bytes.slice(..bytes.len() / 2)), (receiver, StreamState::Cut)));
                    }
                    Some((Ok(bytes), (receiver, StreamState::Open)))
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let content_type = if as_table { "application/json;as=Table;v=v1;g=meta.k8s.io" } else { "application/json" };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    Ok(response)
}

/// Where a watch stream is.
enum StreamState {
    /// Sending events.
    Open,
    /// Half an event was sent: the stream breaks next.
    Cut,
    /// Broken.
    Done,
}

/// The event a filtered watch sees for a change: an object moving into the selection is ADDED, one moving out is
/// DELETED, as a real server reports them.
fn event_for<'c>(change: &'c Change, selected: &impl Fn(&Value) -> bool) -> Option<(&'static str, &'c Value)> {
    let now = selected(&change.object);
    match change.kind {
        ChangeKind::Added => now.then_some(("ADDED", &*change.object)),
        ChangeKind::Deleted => now.then_some(("DELETED", &*change.object)),
        ChangeKind::Modified => {
            let before = change.previous.as_deref().is_some_and(selected);
            match (before, now) {
                (true, true) => Some(("MODIFIED", &*change.object)),
                (false, true) => Some(("ADDED", &*change.object)),
                (true, false) => Some(("DELETED", &*change.object)),
                (false, false) => None,
            }
        }
    }
}
