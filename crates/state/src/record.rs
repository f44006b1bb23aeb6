//! The run record in a ConfigMap, and the lock of [`crate::lease`]: fledge-core's [`StateStore`] port.

use crate::lease::{ReleaseLock, Taken};
use fledge_core::FIELD_MANAGER;
use fledge_core::ports::{Lock, PortError, StateStore};
use fledge_core::state::RunRecord;
use fledge_kube_client::WriteFence;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use std::sync::Mutex;

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
    /// Taking, renewing or releasing the lock failed.
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),
}

/// The run record and lock of one service's releases.
pub struct ClusterState {
    config_maps: Api<ConfigMap>,
    lock: ReleaseLock,
    namespace: String,
    name: String,
    holder: Mutex<Option<String>>,
}

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

impl ClusterState {
    /// The state of `service`'s releases in `namespace`. `fence` is the write fence of `client`: writes wait while
    /// the lock is unconfirmed and are refused once it is lost, so no write of this process reaches the cluster after
    /// that. `lock_client` is the lock's own, without the fence (its renewals are what confirm the lock).
    pub fn new(
        client: kube::Client,
        lock_client: kube::Client,
        namespace: &str,
        service: &str,
        fence: WriteFence,
    ) -> ClusterState {
        let name = format!("fledge-release-{service}");
        ClusterState {
            config_maps: Api::namespaced(client, namespace),
            lock: ReleaseLock::new(Api::namespaced(lock_client, namespace), namespace, &name, fence),
            namespace: namespace.to_owned(),
            name,
            holder: Mutex::new(None),
        }
    }

    /// The name of the ConfigMap and the Lease.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run holding the release lock now, read without taking it; `None` when no process runs the release.
    pub async fn lock_holder(&self) -> Result<Option<String>, StateError> {
        Ok(self.lock.holder().await?)
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
}

impl StateStore for ClusterState {
    async fn lock(&self, holder: &str) -> Result<Lock, PortError> {
        match self.lock.take(holder).await.map_err(StateError::from)? {
            Taken::Ours => {
                *self.holder.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(holder.to_owned());
                Ok(Lock::Acquired)
            }
            Taken::Theirs(holder) => Ok(Lock::HeldBy { holder }),
        }
    }

    async fn unlock(&self) -> Result<(), PortError> {
        let holder = self.holder.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match holder {
            Some(holder) => Ok(self.lock.release(&holder).await.map_err(StateError::from)?),
            None => Ok(()),
        }
    }

    async fn lost(&self) -> String {
        self.lock.lost().await.reason
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
