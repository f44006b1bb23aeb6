//! One attempt of a request, bounded: its answer's headers must arrive within the attempt deadline, and for every
//! request but a watch, its whole body too. A server that accepts a connection and never answers, or a body cut
//! mid-stream, then fails the attempt here, where the retry layer above can try again, instead of surfacing later
//! as an error while the adapter decodes the body.
//!
//! Watches stream for minutes: only their headers are bounded; a watch stream that ends early or stalls is
//! kube-runtime's watcher's to restart (it relists, and times out an idle stream).

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use kube::client::{Body, DynBody};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{BoxError, Layer, Service};

/// How long an attempt may wait for its answer's headers.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// How long an attempt may take to read a (non-watch) answer's whole body.
pub const BODY_DEADLINE: Duration = Duration::from_secs(20);

/// An attempt that got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// No answer's headers arrived in time.
    #[error("the Kubernetes API did not answer within {0:?}")]
    NoAnswer(Duration),
    /// The body did not arrive whole in time.
    #[error("the Kubernetes API's answer did not arrive whole within {0:?}")]
    SlowBody(Duration),
    /// The body was cut.
    #[error("the Kubernetes API's answer was cut short")]
    CutBody(#[source] BoxError),
}

/// Whether the request is a watch (`watch=true` or `watch=1`).
fn is_watch<B>(request: &Request<B>) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|pair| matches!(pair, "watch=true" | "watch=1" | "watch=True")))
}

/// The layer bounding each attempt.
#[derive(Clone, Copy, Debug)]
pub struct AttemptLayer {
    answer: Duration,
    body: Duration,
}

impl Default for AttemptLayer {
    fn default() -> AttemptLayer {
        AttemptLayer { answer: ANSWER_DEADLINE, body: BODY_DEADLINE }
    }
}

impl<S> Layer<S> for AttemptLayer {
    type Service = Bounded<S>;

    fn layer(&self, inner: S) -> Bounded<S> {
        Bounded { inner, limits: *self }
    }
}

/// A service whose attempts are bounded.
#[derive(Clone, Debug)]
pub struct Bounded<S> {
    inner: S,
    limits: AttemptLayer,
}

impl<S> Service<Request<Body>> for Bounded<S>
where
    S: Service<Request<Body>, Response = Response<Box<DynBody>>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let watch = is_watch(&request);
        let limits = self.limits;
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = tokio::time::timeout(limits.answer, answer)
                .await
                .map_err(|_| Box::new(AttemptError::NoAnswer(limits.answer)) as BoxError)??;
            if watch {
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let bytes: Bytes = tokio::time::timeout(limits.body, body.collect())
                .await
                .map_err(|_| Box::new(AttemptError::SlowBody(limits.body)) as BoxError)?
                .map_err(|error| Box::new(AttemptError::CutBody(error)) as BoxError)?
                .to_bytes();
            let body = http_body_util::Full::new(bytes).map_err(|never| -> BoxError { match never {} });
            Ok(Response::from_parts(parts, Box::new(body) as Box<DynBody>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_told_apart_by_their_query() {
        let request = |uri: &str| Request::get(uri).body(()).unwrap();
        assert!(is_watch(&request("/api/v1/namespaces/a/pods?labelSelector=x&watch=true&resourceVersion=1")));
        assert!(is_watch(&request("/api/v1/pods?watch=1")));
        assert!(!is_watch(&request("/api/v1/pods?labelSelector=watch%3Dtrue")));
        assert!(!is_watch(&request("/api/v1/pods")));
    }
}
