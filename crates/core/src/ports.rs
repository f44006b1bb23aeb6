//! The ports the runner drives. Each external system has one adapter crate that implements its port; the runner
//! sees only these traits, so it is tested with fakes and a paused clock.
//!
//! ```text
//!              ┌── Workloads ──────── fledge-deploy   (Deployments)
//!              ├── HealthGate ─────── fledge-gate     (pods, watched)
//!  runner ─────┼── TrafficRouting ─── fledge-traffic  (VirtualService, DestinationRule)
//!              │                  └─ fledge-gateway-api (HTTPRoute, a Service per version)
//!              ├── MetricsAnalyzer ── fledge-metrics  (Prometheus)
//!              └── StateStore ─────── fledge-deploy   (run record, Lease lock)
//! ```
//!
//! Every method that waits takes its time limit from the caller. Errors are boxed: the runner adds what it was
//! doing and prints the chain once.

use crate::analysis::Round;
use crate::release::CleanupPolicy;
use crate::state::RunRecord;
use crate::{GateFailure, Release, Weight};
use std::future::Future;
use std::time::Duration;

/// An adapter's error, with its causes.
pub type PortError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The live version's Deployment, as preflight found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveWorkload {
    /// Its name.
    pub deployment: String,
    /// Its replica count.
    pub replicas: u32,
}

/// Deployments of the service's versions.
pub trait Workloads: Send + Sync {
    /// Checks the Service exists and finds the live version's Deployment.
    fn preflight(
        &self,
        release: &Release,
        live_version: &str,
    ) -> impl Future<Output = Result<LiveWorkload, PortError>> + Send;

    /// Checks the API server would accept the new version's Deployment as [`deploy`](Self::deploy) would apply it,
    /// storing nothing (a server-side dry run).
    fn check_deploy(&self, release: &Release, live_version: &str)
    -> impl Future<Output = Result<(), PortError>> + Send;

    /// Applies the new version's Deployment; applying it again changes nothing.
    fn deploy(&self, release: &Release, live_version: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The replicas a Deployment asks for (`spec.replicas`), or `None` when it does not exist.
    fn desired_replicas(&self, deployment: &str) -> impl Future<Output = Result<Option<u32>, PortError>> + Send;

    /// Retires a Deployment that no longer takes traffic: delete it, scale it to zero, or keep it.
    fn retire(&self, deployment: &str, policy: CleanupPolicy) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The result of waiting for the new version's pods.
#[derive(Debug)]
pub enum GateResult<M> {
    /// Every pod is Ready and stable; the monitor keeps watching.
    Healthy {
        /// Watches the pods from now on.
        monitor: M,
        /// How long the gate took.
        elapsed: Duration,
    },
    /// A pod failed, or time ran out.
    Failed {
        /// What failed.
        failure: GateFailure,
        /// Per-pod diagnostics, for people.
        diagnostics: String,
    },
}

/// The crash-loop gate.
pub trait HealthGate: Send + Sync {
    /// Watches the new version's pods after the gate passed.
    type Monitor: HealthMonitor;

    /// Watches the new version's pods until every one is Ready and stable, or one fails, within `timeout`.
    fn wait_healthy(
        &self,
        release: &Release,
        timeout: Duration,
    ) -> impl Future<Output = Result<GateResult<Self::Monitor>, PortError>> + Send;
}

/// Keeps watching the new version's pods during the stages.
pub trait HealthMonitor: Send {
    /// Resolves when a pod fails; pending while the version stays healthy.
    fn failed(&mut self) -> impl Future<Output = GateFailure> + Send;

    /// Diagnostics of the pods as last seen, for people.
    fn diagnose(&self) -> impl Future<Output = String> + Send;
}

/// The route of the service, through its traffic provider.
pub trait TrafficRouting: Send + Sync {
    /// Checks the route can be shifted and records what to restore (serialized into the run record). Finds the
    /// live version: `previous_version`, or the version that takes all of the route's traffic.
    fn preflight(
        &self,
        release: &Release,
        previous_version: Option<&str>,
    ) -> impl Future<Output = Result<TrafficPlan, PortError>> + Send;

    /// Makes `version` routable at 0% of traffic (its subset or Service, a copy of the live one's), as `snapshot`
    /// planned it.
    fn add_version(
        &self,
        snapshot: &serde_json::Value,
        version: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Sends `weight` of the service's share to `version`, the rest to the live one; verifies it.
    fn set_weight(
        &self,
        snapshot: &serde_json::Value,
        version: &str,
        weight: Weight,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The weights of the route now.
    fn weights(
        &self,
        snapshot: &serde_json::Value,
        version: &str,
    ) -> impl Future<Output = Result<RouteWeights, PortError>> + Send;

    /// Puts the route back exactly as recorded and removes the subset (or Service) of `version` if it was added.
    fn restore(
        &self,
        snapshot: &serde_json::Value,
        version: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// After promotion of `version`: deals with the routes pinned to the old version as the manifest says (moves
    /// them to `version`, or keeps the old version for them), then removes the old version's destination and, unless
    /// it is kept, its subset. Says what it did; the runner retires the old Deployment only when nothing keeps it.
    fn retire_live(
        &self,
        snapshot: &serde_json::Value,
        version: &str,
    ) -> impl Future<Output = Result<Retirement, PortError>> + Send;
}

/// What retiring the old version from the routes did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retirement {
    /// Routes pinned to the old version that now send to the new one.
    pub moved: Vec<String>,
    /// Routes pinned to the old version that keep it alive (its Deployment running, its subset in place).
    pub kept_for: Vec<String>,
}

/// The weights of the managed route, out of the service's share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteWeights {
    /// The live version's weight.
    pub live: i64,
    /// The new version's weight.
    pub new: i64,
    /// The service's share of the route (100 when it has the whole route).
    pub share: i64,
}

impl RouteWeights {
    /// Whether the route splits the share as `weight` of it to the new version.
    pub fn is(&self, weight: Weight) -> bool {
        weight.split_share(self.share) == (self.live, self.new)
    }
}

/// What traffic preflight found.
#[derive(Clone, Debug, PartialEq)]
pub struct TrafficPlan {
    /// The live version.
    pub live_version: String,
    /// What to restore, opaque to the runner.
    pub snapshot: serde_json::Value,
    /// The route, as people name it: `reviews/reviews route #0`.
    pub route: String,
    /// What the release adds for the new version, as people read it (`subset v2 in DestinationRule reviews, ...`,
    /// `Service reviews-v2, ...`).
    pub adds: Vec<String>,
    /// Routes outside the managed one that send to the live version, as people name them.
    pub pinned_routes: Vec<String>,
}

/// Prometheus analysis.
pub trait MetricsAnalyzer: Send + Sync {
    /// Checks Prometheus answers and accepts every query; returns warnings (queries silent for the live version).
    fn preflight(
        &self,
        live_version: &str,
        budget: Duration,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;

    /// The rendered queries of every check, for `fledge plan`: `(check, query for the new version)`.
    fn queries(&self, live_version: &str) -> Vec<(String, String)>;

    /// Runs every check now, within `budget`; statistical checks compare samples since `judge_since`.
    fn round(
        &self,
        live_version: &str,
        judge_since: jiff::Timestamp,
        budget: Duration,
    ) -> impl Future<Output = Round> + Send;

    /// Reads the counters of every counted check (`analysis.metrics` with `detect`), both versions at one instant,
    /// within `budget`. Empty when the release has no counted check.
    fn counts(
        &self,
        live_version: &str,
        budget: Duration,
    ) -> impl Future<Output = Vec<crate::counted_checks::CountedReading>> + Send;
}

/// Who holds the release lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock {
    /// This run holds it now.
    Acquired,
    /// Another run holds it and renewed it recently.
    HeldBy {
        /// Its holder identity.
        holder: String,
    },
}

/// The run record and the lock, kept in the cluster.
pub trait StateStore: Send + Sync {
    /// Takes the lock for `holder`, or says who holds it. An expired lock is taken over. While held, the adapter
    /// renews it.
    fn lock(&self, holder: &str) -> impl Future<Output = Result<Lock, PortError>> + Send;

    /// Releases the lock (a lock already lost is not an error, and is not touched: another run holds it).
    fn unlock(&self) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Resolves, with the reason, when the lock this run holds is lost: another run took it over, or it could not be
    /// renewed in time. From then on the adapter refuses every write; pending while the lock is held (or not taken).
    fn lost(&self) -> impl Future<Output = String> + Send;

    /// The run record, if there is one.
    fn load(&self) -> impl Future<Output = Result<Option<RunRecord>, PortError>> + Send;

    /// Writes the run record.
    fn save(&self, record: &RunRecord) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Asks the run in flight to roll back (`fledge abort` while another process runs the release).
    fn request_abort(&self) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Whether an abort was requested since the record was started.
    fn abort_requested(&self) -> impl Future<Output = Result<bool, PortError>> + Send;
}
