//! The run record and the release lock in the cluster: fledge-core's [`StateStore`] port.
//!
//! ```text
//!  ConfigMap fledge-release-<service>   data.record: the run record (JSON), written before each phase's effects
//!                                       data.abort:  the run id `fledge abort` asked to roll back
//!  Lease     fledge-release-<service>   holderIdentity: the run id; renewed every 5 s, taken over after 15 s
//! ```
//!
//! Both live in the release's namespace, so the RBAC a release needs stays in that namespace.

use fledge_core::FIELD_MANAGER;
use fledge_core::ports::{Lock, PortError, StateStore};
use fledge_core::state::RunRecord;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use std::sync::Mutex;
use std::time::Duration;

/// How long a lease lasts without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often a held lease is renewed.
pub const LEASE_RENEWAL: Duration = Duration::from_secs(5);

/// How many times taking the lock is decided again after a conflicting write.
const LEASE_ATTEMPTS: usize = 5;
const RECORD_KEY: &str = "record";
const ABORT_KEY: &str = "abort";

/// A failed operation on the run record or the lock.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading the record's ConfigMap failed.
    #[error("failed to read ConfigMap {namespace}/{name}")]
    Read {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the record's ConfigMap failed.
    #[error("failed to write ConfigMap {namespace}/{name}")]
    Write {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The record is not valid JSON of a run record.
    #[error(
        "failed to parse the run record in ConfigMap {namespace}/{name}; delete the ConfigMap only once the release is cleaned up by hand"
    )]
    Parse {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing the Lease failed.
    #[error("failed to {action} Lease {namespace}/{name}")]
    Lease {
        /// What was attempted.
        action: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The run record and lock of one service's releases.
pub struct ClusterState {
    config_maps: Api<ConfigMap>,
    leases: Api<Lease>,
    namespace: String,
    name: String,
    renewal: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for ClusterState {
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

impl ClusterState {
    /// The state of `service`'s releases in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, service: &str) -> ClusterState {
        ClusterState {
            config_maps: Api::namespaced(client.clone(), namespace),
            leases: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: format!("fledge-release-{service}"),
            renewal: Mutex::new(None),
        }
    }

    /// The name of the ConfigMap and the Lease.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn config_map(&self) -> Result<Option<ConfigMap>, StateError> {
        self.config_maps.get_opt(&self.name).await.map_err(|source| StateError::Read {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        })
    }

    /// Sets one key of the ConfigMap (a merge patch: the other key stays), creating the ConfigMap if needed.
    async fn write_key(&self, key: &str, value: &str) -> Result<(), StateError> {
        let write_error =
            |source| StateError::Write { namespace: self.namespace.clone(), name: self.name.clone(), source };
        let patch = serde_json::json!({ "data": { key: value } });
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PatchParams::default() };
        match self.config_maps.patch(&self.name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(error) if status_code(&error) == Some(404) => {
                let config_map = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        labels: Some([("app.kubernetes.io/managed-by".to_owned(), "fledge".to_owned())].into()),
                        ..ObjectMeta::default()
                    },
                    data: Some([(key.to_owned(), value.to_owned())].into()),
                    ..ConfigMap::default()
                };
                let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
                match self.config_maps.create(&params, &config_map).await {
                    Ok(_) => Ok(()),
                    // Created in between by another writer: patch it.
                    Err(error) if status_code(&error) == Some(409) => self
                        .config_maps
                        .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                        .map_err(write_error),
                    Err(source) => Err(write_error(source)),
                }
            }
            Err(source) => Err(write_error(source)),
        }
    }

    fn lease_error(&self, action: &'static str) -> impl Fn(kube::Error) -> StateError + '_ {
        move |source| StateError::Lease { action, namespace: self.namespace.clone(), name: self.name.clone(), source }
    }

    fn lease_spec(holder: &str, now: jiff::Timestamp, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }
    }

    /// Takes the lease for `holder` when it is free, expired or already ours. A write that conflicts (someone wrote
    /// the lease since it was read) is decided again on a fresh read.
    async fn take_lease(&self, holder: &str) -> Result<Lock, StateError> {
        for _ in 0..LEASE_ATTEMPTS {
            if let Some(lock) = self.try_take_lease(holder).await? {
                return Ok(lock);
            }
        }
        Ok(Lock::HeldBy { holder: "other runs taking the lock now".into() })
    }

    /// One attempt: `None` when the write conflicted.
    async fn try_take_lease(&self, holder: &str) -> Result<Option<Lock>, StateError> {
        let now = jiff::Timestamp::now();
        let existing = self.leases.get_opt(&self.name).await.map_err(self.lease_error("read"))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(Self::lease_spec(holder, now, None)),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Some(Lock::Acquired)),
                Err(error) if status_code(&error) == Some(409) => Ok(None),
                Err(error) => Err(self.lease_error("create")(error)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let current = spec.holder_identity.clone().unwrap_or_default();
        let renewed = spec.renew_time.as_ref().map(|time| time.0);
        let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
        let expired = renewed.is_none_or(|renewed| renewed + duration < now);
        if !current.is_empty() && current != holder && !expired {
            return Ok(Some(Lock::HeldBy { holder: current }));
        }
        let acquired = if current == holder { spec.acquire_time } else { None };
        lease.spec = Some(Self::lease_spec(holder, now, acquired));
        // The replace carries the resourceVersion read: a concurrent taker makes it fail with 409.
        match self.leases.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Some(Lock::Acquired)),
            Err(error) if status_code(&error) == Some(409) => Ok(None),
            Err(error) => Err(self.lease_error("take")(error)),
        }
    }

    fn start_renewal(&self, holder: &str) {
        let leases = self.leases.clone();
        let name = self.name.clone();
        let holder = holder.to_owned();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(LEASE_RENEWAL);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let lease = match leases.get_opt(&name).await {
                    Ok(Some(lease)) => lease,
                    Ok(None) => return,
                    Err(error) => {
                        tracing::warn!(%error, lease = %name, "failed to read the release lock; retrying");
                        continue;
                    }
                };
                if lease.spec.as_ref().and_then(|spec| spec.holder_identity.as_deref()) != Some(holder.as_str()) {
                    tracing::warn!(lease = %name, "the release lock was taken over by another run");
                    return;
                }
                let patch = serde_json::json!({ "spec": { "renewTime": MicroTime(jiff::Timestamp::now()) } });
                if let Err(error) = leases.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    tracing::warn!(%error, lease = %name, "failed to renew the release lock; retrying");
                }
            }
        });
        if let Some(previous) = self.renewal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(task) {
            previous.abort();
        }
    }
}

impl StateStore for ClusterState {
    async fn lock(&self, holder: &str) -> Result<Lock, PortError> {
        let lock = self.take_lease(holder).await?;
        if lock == Lock::Acquired {
            self.start_renewal(holder);
        }
        Ok(lock)
    }

    async fn unlock(&self) -> Result<(), PortError> {
        if let Some(task) = self.renewal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            task.abort();
        }
        let patch = serde_json::json!({ "spec": { "holderIdentity": null, "renewTime": null } });
        match self.leases.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(error) if status_code(&error) == Some(404) => Ok(()),
            Err(error) => Err(self.lease_error("release")(error).into()),
        }
    }

    async fn load(&self) -> Result<Option<RunRecord>, PortError> {
        let Some(config_map) = self.config_map().await? else { return Ok(None) };
        let Some(text) = config_map.data.as_ref().and_then(|data| data.get(RECORD_KEY)) else { return Ok(None) };
        let record = serde_json::from_str(text).map_err(|source| StateError::Parse {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        })?;
        Ok(Some(record))
    }

    async fn save(&self, record: &RunRecord) -> Result<(), PortError> {
        let text = serde_json::to_string_pretty(record).expect("a run record serializes");
        Ok(self.write_key(RECORD_KEY, &text).await?)
    }

    async fn request_abort(&self) -> Result<(), PortError> {
        let run_id = self.load().await?.map(|record| record.run_id).unwrap_or_default();
        Ok(self.write_key(ABORT_KEY, &run_id).await?)
    }

    async fn abort_requested(&self) -> Result<bool, PortError> {
        let Some(config_map) = self.config_map().await? else { return Ok(false) };
        let data = config_map.data.unwrap_or_default();
        let Some(asked) = data.get(ABORT_KEY).filter(|asked| !asked.is_empty()) else { return Ok(false) };
        let record: Option<RunRecord> = data.get(RECORD_KEY).and_then(|text| serde_json::from_str(text).ok());
        Ok(record.is_some_and(|record| &record.run_id == asked && record.in_flight()))
    }
}
