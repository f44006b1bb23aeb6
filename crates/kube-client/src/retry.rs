//! Retrying the Kubernetes API requests a busy, failing or briefly unreachable API server turns away, below every
//! adapter, within a time budget per request:
//!
//! ```text
//!  adapter ─▶ kube::Client ─▶ ApiRetry ─▶ fence ─▶ attempt (deadline, whole body) ─▶ API server
//!                               │ 429, 503: wait its Retry-After (at most 10 s), else back off
//!                               │ 500, 502, 504, no answer, connection refused or cut: back off 100 ms … 3 s
//!                               │ a write refused by the fence (lock lost): never
//!                               └ until the request's budget (30 s) would be spent; then the last answer
//! ```
//!
//! Retrying a write is safe in fledge, also after a failure that came after the server committed it (a 500, a
//! connection dropped before the answer): applies and merge patches are idempotent, guarded writes carry the
//! resourceVersion they read (a write that did land makes the retry conflict, and the adapter re-reads), and creates
//! and deletes treat "already exists" and "not found" as done.

use crate::fence::LockLost;
use http::{HeaderMap, Request, Response, StatusCode};
use kube::client::Body;
use std::time::Duration;
use tokio::time::Instant;
use tower::BoxError;
use tower::retry::Policy;

/// How long one request may keep being retried, from its first attempt.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(30);
/// The first back-off; it doubles with each retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// After this many retries of a request that got no answer, a warning says fledge is still trying.
const NOTICE_AFTER_RETRIES: u32 = 4;
/// The longest `Retry-After` honoured; longer ones are cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The retry policy of one request.
#[derive(Clone, Debug)]
pub struct ApiRetry {
    budget: Duration,
    started: Option<Instant>,
    retries: u32,
}

impl Default for ApiRetry {
    fn default() -> ApiRetry {
        ApiRetry::with_budget(REQUEST_BUDGET)
    }
}

/// What an attempt came to, as far as retrying goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    /// Answered with this status.
    Answered(StatusCode),
    /// No usable answer: refused, cut, or none within the attempt's deadline.
    Failed,
    /// Refused by the write fence: the lock is lost, no retry can help.
    Fenced,
}

impl ApiRetry {
    /// A policy that retries for up to `budget` from the first attempt.
    pub fn with_budget(budget: Duration) -> ApiRetry {
        ApiRetry { budget, started: None, retries: 0 }
    }

    /// How long to wait before the next attempt, or `None` when it is not worth one (or the budget is spent).
    fn delay(&self, attempt: Attempt, headers: Option<&HeaderMap>, elapsed: Duration) -> Option<Duration> {
        let backoff = FIRST_BACKOFF.saturating_mul(1 << self.retries.min(8)).min(MAX_BACKOFF);
        // Up to a fifth more, so clients that failed together do not retry together.
        let backoff = backoff + backoff.mul_f64(rand::random::<f64>() * 0.2);
        let delay = match attempt {
            Attempt::Answered(StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) => {
                headers.and_then(retry_after).map_or(backoff, |wait| wait.min(MAX_RETRY_AFTER))
            }
            Attempt::Answered(
                StatusCode::INTERNAL_SERVER_ERROR | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT,
            )
            | Attempt::Failed => backoff,
            Attempt::Answered(_) | Attempt::Fenced => return None,
        };
        (elapsed + delay < self.budget).then_some(delay)
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
        request: &mut Request<Body>,
        result: &mut Result<Response<Answer>, BoxError>,
    ) -> Option<Self::Future> {
        let started = *self.started.get_or_insert_with(Instant::now);
        let (attempt, headers) = match result {
            Ok(response) => (Attempt::Answered(response.status()), Some(response.headers())),
            Err(error) if error.is::<LockLost>() => (Attempt::Fenced, None),
            Err(_) => (Attempt::Failed, None),
        };
        let delay = self.delay(attempt, headers, started.elapsed())?;
        self.retries += 1;
        if attempt == Attempt::Failed && self.retries == NOTICE_AFTER_RETRIES {
            // A long wait deserves a word: the API server may be down, or the kubeconfig point at nothing.
            if let Err(error) = result {
                tracing::warn!(
                    uri = %request.uri(),
                    %error,
                    "the Kubernetes API is not answering; retrying for up to {:?}",
                    self.budget
                );
            }
        }
        match result {
            Ok(response) => {
                tracing::debug!(status = %response.status(), retry = self.retries, ?delay, "retrying a Kubernetes API request");
            }
            Err(error) => tracing::debug!(%error, retry = self.retries, ?delay, "retrying a Kubernetes API request"),
        }
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        // Called on the layer's shared policy: nothing of one request may be kept here (each request's retries run
        // on a clone of the policy, whose clock starts at its first retry decision).
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

    fn policy(retries: u32) -> ApiRetry {
        ApiRetry { retries, ..ApiRetry::default() }
    }

    #[test]
    fn server_errors_and_failed_attempts_back_off_doubling_up_to_the_cap_with_jitter() {
        for attempt in [Attempt::Answered(StatusCode::INTERNAL_SERVER_ERROR), Attempt::Failed] {
            let delays: Vec<Duration> =
                (0..8).map(|retries| policy(retries).delay(attempt, None, Duration::ZERO).unwrap()).collect();
            for (delay, base) in delays.iter().zip([100, 200, 400, 800, 1600, 3000, 3000, 3000]) {
                let base = Duration::from_millis(base);
                assert!(*delay >= base && *delay <= base.mul_f64(1.2), "{delay:?} for {base:?}");
            }
        }
    }

    #[test]
    fn retries_stop_when_the_next_wait_would_pass_the_budget() {
        let error = Attempt::Answered(StatusCode::INTERNAL_SERVER_ERROR);
        assert!(policy(0).delay(error, None, Duration::from_secs(29)).is_some());
        assert_eq!(policy(6).delay(error, None, Duration::from_secs(27)), None, "3 s more would pass 30 s");
        let short = ApiRetry::with_budget(Duration::from_secs(2));
        assert_eq!(short.delay(Attempt::Failed, None, Duration::from_millis(1950)), None);
    }

    #[test]
    fn throttling_waits_the_servers_retry_after_within_a_cap() {
        let throttled = Attempt::Answered(StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(policy(0).delay(throttled, Some(&headers("2")), Duration::ZERO), Some(Duration::from_secs(2)));
        let unavailable = Attempt::Answered(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(policy(0).delay(unavailable, Some(&headers("3600")), Duration::ZERO), Some(MAX_RETRY_AFTER));
        let soon = policy(0).delay(throttled, Some(&headers("soon")), Duration::ZERO).unwrap();
        assert!(soon >= FIRST_BACKOFF && soon < Duration::from_millis(121));
    }

    #[test]
    fn answers_a_retry_cannot_change_and_fenced_writes_are_returned_at_once() {
        for status in [StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::CONFLICT, StatusCode::FORBIDDEN] {
            assert_eq!(policy(0).delay(Attempt::Answered(status), None, Duration::ZERO), None, "{status}");
        }
        assert_eq!(policy(0).delay(Attempt::Fenced, None, Duration::ZERO), None);
    }
}
