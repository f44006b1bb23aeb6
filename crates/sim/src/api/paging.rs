//! Lists as a real API server answers them: the `resourceVersion` and `resourceVersionMatch` a client asks for, and
//! pages of `limit` items whose `continue` token serves the rest from the first page's snapshot.
//!
//! ```text
//!  limit=2            ──▶ items 1-2 at revision R, continue {rv: R, start: key(2)}
//!  continue=…         ──▶ items 3-4 as they were at R (the store undoes later changes), continue …
//!  continue=… (old)   ──▶ 410 Expired once the history no longer reaches back to R
//! ```

use super::query::Query;
use crate::api_error::ApiError;
use crate::resources::ResourceId;
use crate::store::Store;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// Which state of the cluster a list reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// The newest state (no resourceVersion, or `0`: any state will do, and the newest is one).
    Newest,
    /// A state no older than this revision: the newest, once the server has reached it.
    NotOlderThan(u64),
    /// Exactly this revision.
    Exact(u64),
}

/// A list request's paging and version parameters, checked as a real server checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ListOptions {
    version: Version,
    limit: Option<usize>,
    resume: Option<Continue>,
}

/// What a continue token holds: the snapshot's revision and the key of the last item served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Continue {
    /// Always `meta.k8s.io/v1`, as in the API server's tokens.
    v: String,
    rv: u64,
    /// `namespace/name` of the last item served, followed by a NUL: the next page starts after it.
    start: String,
}

impl Continue {
    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(token: &str) -> Result<Continue, ApiError> {
        let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        let token: Continue = serde_json::from_slice(&bytes).map_err(|_| invalid("invalid continue token"))?;
        if token.v != "meta.k8s.io/v1" {
            return Err(invalid(&format!("server does not recognize this encoded key: {}", token.v)));
        }
        if token.rv == 0 {
            return Err(invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"));
        }
        Ok(token)
    }

    /// The (namespace, name) key the token's page ends at.
    fn last_key(&self) -> (String, String) {
        let start = self.start.trim_end_matches('\0');
        match start.split_once('/') {
            Some((namespace, name)) => (namespace.to_owned(), name.to_owned()),
            None => (String::new(), start.to_owned()),
        }
    }
}

/// One page of a list.
#[derive(Debug)]
pub(super) struct Page {
    /// The items, in key order.
    pub(super) items: Vec<Arc<Value>>,
    /// The revision the whole list is read at.
    pub(super) revision: u64,
    continue_token: Option<String>,
    remaining: Option<usize>,
}

impl Page {
    /// The list's `metadata`: resourceVersion, and `continue` with `remainingItemCount` when more items follow.
    pub(super) fn metadata(&self) -> Value {
        let mut metadata = json!({ "resourceVersion": self.revision.to_string() });
        if let Some(token) = &self.continue_token {
            metadata["continue"] = json!(token);
        }
        if let Some(remaining) = self.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
        metadata
    }
}

impl ListOptions {
    /// The options of `query`; 400 for the combinations a real server refuses.
    pub(super) fn parse(query: &Query) -> Result<ListOptions, ApiError> {
        let resource_version = query.resource_version.as_deref().filter(|version| !version.is_empty());
        let revision = |text: &str| {
            text.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {text}")))
        };
        let resume =
            query.continue_token.as_deref().filter(|token| !token.is_empty()).map(Continue::decode).transpose()?;
        if resume.is_some() {
            if resource_version.is_some_and(|version| version != "0") {
                return Err(ApiError::bad_request("specifying resource version is not allowed when using continue"));
            }
            if query.resource_version_match.is_some() {
                return Err(ApiError::bad_request("resourceVersionMatch is forbidden when continue is provided"));
            }
        }
        let version = match (query.resource_version_match.as_deref(), resource_version) {
            (Some(_), None) => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            (Some("Exact"), Some("0")) => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
            (Some("Exact"), Some(text)) => Version::Exact(revision(text)?),
            (Some("NotOlderThan") | None, Some(text)) => match revision(text)? {
                0 => Version::Newest,
                revision => Version::NotOlderThan(revision),
            },
            (Some(other), Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
            (None, None) => Version::Newest,
        };
        Ok(ListOptions { version, limit: query.limit.filter(|limit| *limit > 0), resume })
    }

    /// The page these options ask for. `filtered` says whether a selector applies: a real server then cannot count
    /// the remaining items and leaves `remainingItemCount` out.
    pub(super) fn page(
        &self,
        store: &Store,
        resource: ResourceId,
        namespace: Option<&str>,
        filter: impl Fn(&Value) -> bool,
        filtered: bool,
    ) -> Result<Page, ApiError> {
        let (items, revision) = match (&self.resume, self.version) {
            (Some(resume), _) => {
                let items = store
                    .list_at(resource, namespace, filter, resume.rv)
                    .map_err(|error| if error.code == 410 { ApiError::expired_continue() } else { error })?;
                let last = resume.last_key();
                let items = items.into_iter().filter(|item| key(item) > last).collect();
                (items, resume.rv)
            }
            (None, Version::Exact(revision)) => (store.list_at(resource, namespace, filter, revision)?, revision),
            (None, Version::NotOlderThan(revision)) if revision > store.revision() => {
                return Err(ApiError::too_large_resource_version(revision, store.revision()));
            }
            (None, Version::Newest | Version::NotOlderThan(_)) => store.list(resource, namespace, filter),
        };
        Ok(self.cut(items, revision, filtered))
    }

    fn cut(&self, mut items: Vec<Arc<Value>>, revision: u64, filtered: bool) -> Page {
        let Some(limit) = self.limit.filter(|limit| items.len() > *limit) else {
            return Page { items, revision, continue_token: None, remaining: None };
        };
        let remaining = items.len() - limit;
        items.truncate(limit);
        let (namespace, name) = items.last().map(|item| key(item)).unwrap_or_default();
        let start = if namespace.is_empty() { format!("{name}\0") } else { format!("{namespace}/{name}\0") };
        let token = Continue { v: "meta.k8s.io/v1".to_owned(), rv: revision, start };
        Page { items, revision, continue_token: Some(token.encode()), remaining: (!filtered).then_some(remaining) }
    }
}

fn key(object: &Value) -> (String, String) {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
    (text("/metadata/namespace"), text("/metadata/name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(query: &str) -> Result<ListOptions, ApiError> {
        ListOptions::parse(&Query::parse(Some(query))?)
    }

    #[test]
    fn a_continue_token_names_the_snapshot_and_the_last_item() {
        let token = Continue { v: "meta.k8s.io/v1".to_owned(), rv: 42, start: "bookinfo/reviews-v1\0".to_owned() };
        let decoded = Continue::decode(&token.encode()).unwrap();
        assert_eq!(decoded, token);
        assert_eq!(decoded.last_key(), ("bookinfo".to_owned(), "reviews-v1".to_owned()));
    }

    #[test]
    fn refuses_what_a_real_server_refuses() {
        let message = |query: &str| options(query).unwrap_err().message;
        assert_eq!(
            message("resourceVersionMatch=Exact"),
            "resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        assert_eq!(
            message("resourceVersionMatch=Exact&resourceVersion=0"),
            "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
        );
        assert_eq!(message("continue=bm9wZQ"), "continue key is not valid: invalid continue token");
        let token = Continue { v: "meta.k8s.io/v1".to_owned(), rv: 7, start: "a\0".to_owned() }.encode();
        assert_eq!(
            message(&format!("continue={token}&resourceVersion=7")),
            "specifying resource version is not allowed when using continue"
        );
        assert_eq!(options("resourceVersion=0&limit=5").unwrap().version, Version::Newest);
        assert_eq!(
            options("resourceVersion=9&resourceVersionMatch=NotOlderThan").unwrap().version,
            Version::NotOlderThan(9)
        );
    }
}
