//! Query parameters of API requests.

use crate::api_error::ApiError;

/// The query parameters fledge-sim understands; unknown ones are ignored, as a real server ignores most.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// `labelSelector`
    pub label_selector: Option<String>,
    /// `fieldSelector`
    pub field_selector: Option<String>,
    /// `watch=true`
    pub watch: bool,
    /// `resourceVersion`
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`: `Exact` or `NotOlderThan`
    pub resource_version_match: Option<String>,
    /// `limit` (lists)
    pub limit: Option<usize>,
    /// `continue` (lists)
    pub continue_token: Option<String>,
    /// `timeoutSeconds`
    pub timeout_seconds: Option<u64>,
    /// `allowWatchBookmarks=true`
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents=true`
    pub send_initial_events: bool,
    /// `fieldManager`
    pub field_manager: Option<String>,
    /// `force=true` (server-side apply)
    pub force: bool,
    /// `dryRun=All`
    pub dry_run: bool,
    /// `propagationPolicy` (also accepted in the DeleteOptions body)
    pub propagation_policy: Option<String>,
    /// `gracePeriodSeconds`
    pub grace_period_seconds: Option<i64>,
    /// `includeObject` for tables: `None`, `Metadata` (default) or `Object`
    pub include_object: Option<String>,
    /// `container` (logs)
    pub container: Option<String>,
    /// `previous=true` (logs)
    pub previous: bool,
    /// `tailLines` (logs)
    pub tail_lines: Option<usize>,
    /// `follow=true` (logs)
    pub follow: bool,
}

impl Query {
    /// Parses a query string.
    pub fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
            .map_err(|error| ApiError::bad_request(format!("invalid query: {error}")))?;
        let mut parsed = Query::default();
        let flag = |value: &str| matches!(value, "true" | "1" | "True");
        let number = |name: &str, value: &str| {
            value.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid {name}: {value}")))
        };
        for (name, value) in pairs {
            match name.as_str() {
                "labelSelector" => parsed.label_selector = Some(value),
                "fieldSelector" => parsed.field_selector = Some(value),
                "watch" => parsed.watch = flag(&value),
                "resourceVersion" => parsed.resource_version = Some(value),
                "resourceVersionMatch" => parsed.resource_version_match = Some(value),
                "limit" => parsed.limit = Some(number(&name, &value)?.max(0) as usize),
                "continue" => parsed.continue_token = Some(value),
                "timeoutSeconds" => parsed.timeout_seconds = Some(number(&name, &value)?.max(0) as u64),
                "allowWatchBookmarks" => parsed.allow_watch_bookmarks = flag(&value),
                "sendInitialEvents" => parsed.send_initial_events = flag(&value),
                "fieldManager" => parsed.field_manager = Some(value),
                "force" => parsed.force = flag(&value),
                "dryRun" => parsed.dry_run = value == "All",
                "propagationPolicy" => parsed.propagation_policy = Some(value),
                "gracePeriodSeconds" => parsed.grace_period_seconds = Some(number(&name, &value)?),
                "includeObject" => parsed.include_object = Some(value),
                "container" => parsed.container = Some(value),
                "previous" => parsed.previous = flag(&value),
                "tailLines" => parsed.tail_lines = Some(number(&name, &value)?.max(0) as usize),
                "follow" => parsed.follow = flag(&value),
                _ => {}
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parameters_clients_send() {
        let query = Query::parse(Some("labelSelector=app%3Dreviews%2Cversion+in+%28v1%29&watch=1&resourceVersion=42&timeoutSeconds=290&allowWatchBookmarks=true")).unwrap();
        assert_eq!(query.label_selector.as_deref(), Some("app=reviews,version in (v1)"));
        assert!(query.watch && query.allow_watch_bookmarks);
        assert_eq!((query.resource_version.as_deref(), query.timeout_seconds), (Some("42"), Some(290)));
        assert!(Query::parse(Some("tailLines=x")).is_err());
    }
}
