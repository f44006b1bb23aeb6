//! Retrying the Kubernetes API requests a busy or failing API server turns away, below every adapter:
//!
//! ```text
//!  adapter ─▶ kube::Client ─▶ ApiRetry ─▶ API server
//!                               │ 429, 503: wait its Retry-After (at most 10 s), else back off
//!                               │ 500, 502, 504: back off 100 ms, 200 ms, … 3 s
//!                               └ at most 8 retries, then the answer goes to the adapter
//! ```
//!
//! Retrying a write is safe in fledge: applies and merge patches are idempotent, guarded writes carry the
//! resourceVersion they read (a write that did land makes the retry conflict, and the adapter re-reads), and creates
//! and deletes treat "already exists" and "not found" as done.

use http::{HeaderMap, Request, Response, StatusCode};
use kube::client::Body;
use std::time::Duration;
use tower::BoxError;
use tower::retry::Policy;

/// Retries after the first answer at most this many times.
const MAX_RETRIES: u32 = 8;
/// The first back-off; it doubles with each retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// The longest `Retry-After` honoured; longer ones are cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The retry policy of one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct ApiRetry {
    retries: u32,
}

impl ApiRetry {
    /// How long to wait before retrying an answer with `status`, or `None` when it is not worth retrying.
    fn delay(&self, status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
        if self.retries >= MAX_RETRIES {
            return None;
        }
        let backoff = FIRST_BACKOFF.saturating_mul(1 << self.retries.min(8)).min(MAX_BACKOFF);
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                Some(retry_after(headers).map_or(backoff, |wait| wait.min(MAX_RETRY_AFTER)))
            }
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => Some(backoff),
            _ => None,
        }
    }
}

/// A `Retry-After` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds))
}

impl<Answer> Policy<Request<Body>, Response<Answer>, BoxError> for ApiRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut Request<Body>,
        result: &mut Result<Response<Answer>, BoxError>,
    ) -> Option<Self::Future> {
        let response = result.as_ref().ok()?;
        let delay = self.delay(response.status(), response.headers())?;
        self.retries += 1;
        tracing::debug!(status = %response.status(), retry = self.retries, ?delay, "retrying a Kubernetes API request");
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        let body = request.body().try_clone()?;
        let mut copy = Request::builder().method(request.method().clone()).uri(request.uri().clone());
        if let Some(headers) = copy.headers_mut() {
            headers.extend(request.headers().clone());
        }
        let mut copy = copy.version(request.version()).body(body).ok()?;
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, retry_after.parse().unwrap());
        headers
    }

    #[test]
    fn server_errors_back_off_doubling_up_to_the_cap() {
        let delays: Vec<Duration> = (0..MAX_RETRIES)
            .map(|retries| ApiRetry { retries }.delay(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new()).unwrap())
            .collect();
        assert_eq!(delays[..4], [100, 200, 400, 800].map(Duration::from_millis));
        assert_eq!(delays[MAX_RETRIES as usize - 1], MAX_BACKOFF);
        assert_eq!(ApiRetry { retries: MAX_RETRIES }.delay(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new()), None);
    }

    #[test]
    fn throttling_waits_the_servers_retry_after_within_a_cap() {
        let policy = ApiRetry::default();
        assert_eq!(policy.delay(StatusCode::TOO_MANY_REQUESTS, &headers("2")), Some(Duration::from_secs(2)));
        assert_eq!(policy.delay(StatusCode::SERVICE_UNAVAILABLE, &headers("3600")), Some(MAX_RETRY_AFTER));
        assert_eq!(policy.delay(StatusCode::TOO_MANY_REQUESTS, &headers("soon")), Some(FIRST_BACKOFF));
    }

    #[test]
    fn answers_a_retry_cannot_change_are_returned_at_once() {
        let policy = ApiRetry::default();
        for status in [StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::CONFLICT, StatusCode::FORBIDDEN] {
            assert_eq!(policy.delay(status, &HeaderMap::new()), None, "{status}");
        }
    }
}
