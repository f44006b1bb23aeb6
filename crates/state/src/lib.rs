//! fledge-state: what a release keeps in the cluster, so that any process can resume it or roll it back.
//!
//! ```text
//!  ConfigMap fledge-release-<service>   data.record: the run record (JSON), written before each phase's effects
//!                                       data.abort:  the run id `fledge abort` asked to roll back
//!  Lease     fledge-release-<service>   the release lock: renewed every 2 s, guarded; its fence stops every write
//!                                       of a run that lost it
//! ```
//!
//! Both live in the release's namespace, so the RBAC a release needs stays in that namespace. [`ClusterState`]
//! implements fledge-core's `StateStore` port; [`lease`] holds the lock.

pub mod lease;
mod record;

pub use record::{ClusterState, StateError};
