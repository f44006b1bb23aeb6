//! The write fence: no request that changes the cluster leaves this process unless the release lock is known to be
//! ours. Reads stay allowed.
//!
//! ```text
//!  open ──lock taken──▶ held until T ──renewed at t──▶ held until t + renew deadline
//!                           │ now ≥ T, no renewal yet (a freeze, a partition, throttled renewals):
//!                           │ writes wait (a renewal that finds the lease still ours opens the fence again)
//!                           ▼ a renewal finds another holder
//!                         lost ──▶ every write fails with LockLost; `lost()` resolves
//! ```
//!
//! The fence sits in the client below the retry layer, so a retried write is checked again at each attempt. It
//! guards what the process sends; a write already on the wire when the deadline passes can still land, which is why
//! the renew deadline is shorter than the lease (another run takes over only after the whole lease).

use http::{Method, Request};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// Where the fence stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FenceState {
    /// No lock is held: writes are this process's own business (taking the lock, `fledge plan`).
    Open,
    /// The lock is held; writes pass until then, and wait after it until the lock is renewed or found lost.
    HeldUntil(Instant),
    /// The lock is lost, for this reason.
    Lost(Arc<str>),
}

/// A write refused because the release lock is lost, or could not be confirmed in time.
#[derive(Clone, Debug, thiserror::Error)]
#[error("refused to write: the release lock is lost ({reason})")]
pub struct LockLost {
    /// Why.
    pub reason: String,
}

/// The fence, shared by the client's layer and the lock's holder.
#[derive(Clone, Debug)]
pub struct WriteFence {
    state: Arc<watch::Sender<FenceState>>,
}

impl Default for WriteFence {
    fn default() -> WriteFence {
        WriteFence { state: Arc::new(watch::channel(FenceState::Open).0) }
    }
}

/// How long a write waits at a fence whose lock is neither confirmed nor lost.
pub const WRITE_PATIENCE: Duration = Duration::from_secs(30);

impl WriteFence {
    /// An open fence: nothing held yet.
    pub fn new() -> WriteFence {
        WriteFence::default()
    }

    /// The lock is held (taken, or renewed) and writes pass until `until` (unless it is lost already).
    pub fn hold_until(&self, until: Instant) {
        self.state.send_if_modified(|state| {
            if matches!(state, FenceState::Lost(_)) {
                return false;
            }
            *state = FenceState::HeldUntil(until);
            true
        });
    }

    /// The lock is lost: from now on every write is refused.
    pub fn lose(&self, reason: &str) {
        self.state.send_if_modified(|state| {
            if matches!(state, FenceState::Lost(_)) {
                return false;
            }
            *state = FenceState::Lost(reason.into());
            true
        });
    }

    /// The lock was released on purpose: writes are this process's own business again.
    pub fn release(&self) {
        self.state.send_if_modified(|state| {
            if matches!(state, FenceState::Lost(_)) {
                return false;
            }
            *state = FenceState::Open;
            true
        });
    }

    /// Until when writes pass, while the lock is held.
    pub fn held_until(&self) -> Option<Instant> {
        match &*self.state.borrow() {
            FenceState::HeldUntil(until) => Some(*until),
            _ => None,
        }
    }

    /// The loss, if the lock is lost.
    pub fn lost_now(&self) -> Option<LockLost> {
        match &*self.state.borrow() {
            FenceState::Lost(reason) => Some(LockLost { reason: reason.to_string() }),
            _ => None,
        }
    }

    /// Waits until a write may be sent: at once while the lock is confirmed (or none is held); while it is neither
    /// confirmed nor lost, until a renewal confirms it, for up to `patience`.
    pub async fn permit(&self, patience: Duration) -> Result<(), LockLost> {
        let mut changes = self.state.subscribe();
        let give_up = Instant::now() + patience;
        loop {
            let state = changes.borrow_and_update().clone();
            match state {
                FenceState::Open => return Ok(()),
                FenceState::HeldUntil(until) if Instant::now() < until => return Ok(()),
                FenceState::Lost(reason) => return Err(LockLost { reason: reason.to_string() }),
                FenceState::HeldUntil(_) => {
                    let waited = tokio::time::timeout_at(give_up, changes.changed()).await;
                    match waited {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => {
                            return Err(LockLost {
                                reason: format!("it could not be renewed within {patience:?} of a write"),
                            });
                        }
                    }
                }
            }
        }
    }

    /// Resolves when the lock is lost (a renewal found another holder).
    pub async fn lost(&self) -> LockLost {
        let mut changes = self.state.subscribe();
        loop {
            if let FenceState::Lost(reason) = &*changes.borrow_and_update() {
                return LockLost { reason: reason.to_string() };
            }
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Whether a request changes the cluster.
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The layer that puts a [`WriteFence`] in a client, above a cloneable service (the client's buffer).
#[derive(Clone, Debug)]
pub struct FenceLayer {
    fence: WriteFence,
}

impl FenceLayer {
    /// A layer passing every write through `fence`.
    pub fn new(fence: WriteFence) -> FenceLayer {
        FenceLayer { fence }
    }
}

impl<S> Layer<S> for FenceLayer {
    type Service = Fenced<S>;

    fn layer(&self, inner: S) -> Fenced<S> {
        Fenced { inner, fence: self.fence.clone() }
    }
}

/// A service whose writes pass the fence first.
#[derive(Clone, Debug)]
pub struct Fenced<S> {
    inner: S,
    fence: WriteFence,
}

impl<S, B> Service<Request<B>> for Fenced<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each call drives a clone of the inner service to readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        let fence = (is_write(request.method())).then(|| self.fence.clone());
        Box::pin(async move {
            if let Some(fence) = fence {
                fence.permit(WRITE_PATIENCE).await.map_err(|lost| Box::new(lost) as BoxError)?;
            }
            tower::ServiceExt::oneshot(inner, request).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn writes_pass_while_the_lock_is_confirmed_and_wait_for_a_renewal_after_its_deadline() {
        let fence = WriteFence::new();
        assert!(fence.permit(Duration::ZERO).await.is_ok(), "nothing held yet");
        fence.hold_until(Instant::now() + Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(fence.permit(Duration::ZERO).await.is_ok());
        tokio::time::advance(Duration::from_secs(2)).await;
        // Past the deadline: a write waits; a renewal lets it through.
        let waiting = {
            let fence = fence.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                (fence.permit(WRITE_PATIENCE).await, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        fence.hold_until(Instant::now() + Duration::from_secs(10));
        let (permitted, waited) = waiting.await.unwrap();
        assert!(permitted.is_ok());
        assert_eq!(waited, Duration::from_secs(3));
        // Unconfirmed for longer than the patience: refused.
        tokio::time::advance(Duration::from_secs(11)).await;
        let refused = fence.permit(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(refused.reason, "it could not be renewed within 5s of a write");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_lock_stays_lost_and_wakes_every_waiter() {
        let fence = WriteFence::new();
        fence.hold_until(Instant::now() + Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(11)).await;
        let (writer, watcher) = {
            let (first, second) = (fence.clone(), fence.clone());
            (
                tokio::spawn(async move { first.permit(WRITE_PATIENCE).await }),
                tokio::spawn(async move { second.lost().await }),
            )
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        fence.lose("it was taken over by run b");
        assert_eq!(writer.await.unwrap().unwrap_err().reason, "it was taken over by run b");
        assert_eq!(watcher.await.unwrap().reason, "it was taken over by run b");
        fence.hold_until(Instant::now() + Duration::from_secs(10));
        assert!(fence.permit(Duration::ZERO).await.is_err(), "a lost lock stays lost");
    }

    #[tokio::test]
    async fn the_layer_refuses_writes_but_not_reads_once_lost() {
        let fence = WriteFence::new();
        fence.lose("taken over by run b");
        let inner = tower::service_fn(|_: Request<()>| async { Ok::<_, BoxError>("sent") });
        let mut service = FenceLayer::new(fence).layer(inner);
        let get = Request::get("/api/v1/pods").body(()).unwrap();
        assert_eq!(tower::ServiceExt::ready(&mut service).await.unwrap().call(get).await.unwrap(), "sent");
        let patch = Request::patch("/api/v1/pods/a").body(()).unwrap();
        let refused = tower::ServiceExt::ready(&mut service).await.unwrap().call(patch).await.unwrap_err();
        assert_eq!(refused.to_string(), "refused to write: the release lock is lost (taken over by run b)");
    }
}
