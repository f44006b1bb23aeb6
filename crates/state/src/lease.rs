//! The release lock: a Lease held as kube-runtime's leader election holds one, and a write fence that closes the
//! moment the lock may no longer be ours.
//!
//! ```text
//!  take ─▶ held: every 2 s a renewal, guarded by the resourceVersion it read, on its own deadline
//!            │ renewed: writes pass until (send time + 10 s renew deadline)
//!            │ no renewal within the renew deadline (a freeze, a partition, throttling): writes wait at the fence
//!            │   until a renewal finds the lease still ours (the lock was kept: writes go on)
//!            ▼ a renewal finds another holder
//!          lost: the fence refuses every write, `lost()` resolves; the runner stops without touching anything
//! ```
//!
//! Another run takes the lock over only when the Lease's `renewTime` is older than its 15 s duration, so a run that
//! stops writing 10 s after its last renewal leaves 5 s for a write already on the wire to land; and a renewal is a
//! replace guarded by the resourceVersion it read, so it cannot undo a takeover that happened in between.

use fledge_kube_client::{LockLost, WriteFence};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long a lease lasts without renewal: another run may take it over after that.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long after a renewal was sent this run may still write; past it, writes wait for the next renewal.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often a held lease is renewed.
pub const RENEW_PERIOD: Duration = Duration::from_secs(2);

/// How long taking or releasing the lock is decided again, on a fresh read, after conflicting writes.
const CONFLICT_BUDGET: Duration = Duration::from_secs(10);

/// Who holds the lease after an attempt to take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// This run holds it.
    Ours,
    /// Another run holds it and renewed it recently.
    Theirs(String),
}

/// A failed Lease operation.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} Lease {namespace}/{name}")]
pub struct LeaseError {
    /// What was attempted.
    pub action: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// The lock of one service's releases.
pub(crate) struct ReleaseLock {
    leases: Api<Lease>,
    namespace: String,
    name: String,
    fence: WriteFence,
    renewal: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for ReleaseLock {
    fn drop(&mut self) {
        if let Some(task) = self.renewal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            task.abort();
        }
    }
}

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn spec(holder: &str, now: jiff::Timestamp, acquired: Option<MicroTime>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_owned()),
        lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
        acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        ..LeaseSpec::default()
    }
}

fn holder_of(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref().and_then(|spec| spec.holder_identity.as_deref()).filter(|holder| !holder.is_empty())
}

/// The holder of `lease` at `now` when it renewed the lease within its duration: `None` when free or expired.
fn live_holder(lease: &Lease, now: jiff::Timestamp) -> Option<&str> {
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
    holder_of(lease).filter(|_| renewed + duration >= now)
}

impl ReleaseLock {
    pub(crate) fn new(leases: Api<Lease>, namespace: &str, name: &str, fence: WriteFence) -> ReleaseLock {
        ReleaseLock { leases, namespace: namespace.to_owned(), name: name.to_owned(), fence, renewal: Mutex::new(None) }
    }

    fn error(&self, action: &'static str) -> impl Fn(kube::Error) -> LeaseError + '_ {
        move |source| LeaseError { action, namespace: self.namespace.clone(), name: self.name.clone(), source }
    }

    /// Takes the lease for `holder` when it is free, expired or already ours, and keeps it renewed. A write that
    /// conflicts (someone wrote the lease since it was read) is decided again on a fresh read.
    pub(crate) async fn take(&self, holder: &str) -> Result<Taken, LeaseError> {
        let deadline = Instant::now() + CONFLICT_BUDGET;
        for attempt in 1.. {
            let sent = Instant::now();
            if let Some(taken) = self.try_take(holder).await? {
                if taken == Taken::Ours {
                    self.fence.hold_until(sent + RENEW_DEADLINE);
                    self.start_renewal(holder);
                }
                return Ok(taken);
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(fledge_kube_client::conflict_backoff(attempt)).await;
        }
        Ok(Taken::Theirs("other runs taking the lock now".into()))
    }

    /// One attempt: `None` when the write conflicted.
    async fn try_take(&self, holder: &str) -> Result<Option<Taken>, LeaseError> {
        let now = jiff::Timestamp::now();
        let existing = self.leases.get_opt(&self.name).await.map_err(self.error("read"))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec(holder, now, None)),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Some(Taken::Ours)),
                Err(error) if status_code(&error) == Some(409) => Ok(None),
                Err(error) => Err(self.error("create")(error)),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        let holder_now = current.holder_identity.clone().unwrap_or_default();
        if let Some(live) = live_holder(&lease, now)
            && live != holder
        {
            return Ok(Some(Taken::Theirs(live.to_owned())));
        }
        let acquired = if holder_now == holder { current.acquire_time } else { None };
        lease.spec = Some(spec(holder, now, acquired));
        // The replace carries the resourceVersion read: a concurrent taker makes it fail with 409.
        match self.leases.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Some(Taken::Ours)),
            Err(error) if status_code(&error) == Some(409) => Ok(None),
            Err(error) => Err(self.error("take")(error)),
        }
    }

    /// Renews the lease every [`RENEW_PERIOD`], each renewal within what is left of the renew deadline; the fence
    /// makes writes wait past the deadline, and refuses them once a renewal finds another holder.
    fn start_renewal(&self, holder: &str) {
        let leases = self.leases.clone();
        let name = self.name.clone();
        let holder = holder.to_owned();
        let fence = self.fence.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RENEW_PERIOD);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if fence.lost_now().is_some() {
                    return;
                }
                let sent = Instant::now();
                // A renewal that has not answered by the fence's deadline could not have kept writes going anyway;
                // once past it (writes wait), each renewal gets a whole renew deadline.
                let budget = fence
                    .held_until()
                    .map(|until| until.saturating_duration_since(sent))
                    .filter(|left| !left.is_zero())
                    .unwrap_or(RENEW_DEADLINE);
                match tokio::time::timeout(budget, renew(&leases, &name, &holder)).await {
                    Ok(Ok(Renewal::Renewed)) => fence.hold_until(sent + RENEW_DEADLINE),
                    Ok(Ok(Renewal::TakenOver(other))) => {
                        let reason = match other {
                            Some(other) => format!("it was taken over by run {other}"),
                            None => "another run took it over (and has released it since)".to_owned(),
                        };
                        tracing::warn!(lease = %name, %reason, "the release lock is lost");
                        fence.lose(&reason);
                        return;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, lease = %name, "failed to renew the release lock; trying again");
                    }
                    Err(_) => tracing::warn!(lease = %name, "renewing the release lock took too long; trying again"),
                }
            }
        });
        if let Some(previous) = self.renewal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(task) {
            previous.abort();
        }
    }

    /// Who holds the lock now (read only): a run that renewed it within its duration, or `None`.
    pub(crate) async fn holder(&self) -> Result<Option<String>, LeaseError> {
        let lease = self.leases.get_opt(&self.name).await.map_err(self.error("read"))?;
        Ok(lease.as_ref().and_then(|lease| live_holder(lease, jiff::Timestamp::now())).map(str::to_owned))
    }

    /// Resolves when the lock is lost.
    pub(crate) async fn lost(&self) -> LockLost {
        self.fence.lost().await
    }

    /// Releases the lease when it is still ours (a lock lost meanwhile belongs to another run: nothing is written).
    pub(crate) async fn release(&self, holder: &str) -> Result<(), LeaseError> {
        if let Some(task) = self.renewal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            task.abort();
        }
        if self.fence.lost_now().is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + CONFLICT_BUDGET;
        for attempt in 1.. {
            let Some(mut lease) = self.leases.get_opt(&self.name).await.map_err(self.error("read"))? else {
                break;
            };
            if holder_of(&lease) != Some(holder) {
                break;
            }
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = None;
            }
            match self.leases.replace(&self.name, &PostParams::default(), &lease).await {
                Ok(_) => break,
                Err(error) if status_code(&error) == Some(409) && Instant::now() < deadline => {
                    tokio::time::sleep(fledge_kube_client::conflict_backoff(attempt)).await;
                }
                Err(error) if status_code(&error) == Some(404) => break,
                Err(error) => return Err(self.error("release")(error)),
            }
        }
        self.fence.release();
        Ok(())
    }
}

/// What a renewal found.
enum Renewal {
    /// Renewed.
    Renewed,
    /// Another run holds the lease (`None`: nobody does, so another run took it and released it).
    TakenOver(Option<String>),
}

/// One guarded renewal: read the lease; when it is still ours, write the new renewTime with the resourceVersion
/// read, reading again after a conflict.
async fn renew(leases: &Api<Lease>, name: &str, holder: &str) -> Result<Renewal, kube::Error> {
    loop {
        let mut lease = leases.get(name).await?;
        match holder_of(&lease) {
            Some(current) if current == holder => {}
            other => return Ok(Renewal::TakenOver(other.map(str::to_owned))),
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        }
        match leases.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => return Ok(Renewal::Renewed),
            Err(error) if status_code(&error) == Some(409) => continue,
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests;
