//! Preflight: every check a release needs before it changes anything, as one typed value. `fledge run` starts from
//! it, and `fledge plan` shows it.
//!
//! ```text
//!  traffic (route, live version, pinned routes) ─▶ workloads (Service, live Deployment, the new Deployment as a
//!  server-side dry run) ─▶ metrics (every query)
//! ```

use crate::{Adapters, Runner, failed};
use fledge_core::ports::{
    LiveWorkload, MetricsAnalyzer, PortError, StateStore, TrafficPlan, TrafficRouting, Workloads,
};
use fledge_core::{Phase, Release};
use std::time::Duration;

/// What preflight found: the release could start now.
#[derive(Clone, Debug, PartialEq)]
pub struct Preflight {
    /// The route, the live version, what the traffic provider adds and the pinned routes.
    pub traffic: TrafficPlan,
    /// The live version's Deployment.
    pub live: LiveWorkload,
    /// Things to look at that do not stop the release.
    pub warnings: Vec<String>,
    /// Every check's rendered query for the new version: `(check, query)`.
    pub queries: Vec<(String, String)>,
}

/// Why preflight failed. Nothing was changed.
#[derive(Debug)]
pub enum PreflightFailure {
    /// A step failed: `failed to {step}: {error}`.
    Step {
        /// What was being checked.
        step: &'static str,
        /// Why, with causes.
        error: PortError,
    },
    /// The new version is the live one already.
    NothingToRelease {
        /// The version.
        version: String,
    },
}

impl std::fmt::Display for PreflightFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreflightFailure::Step { step, error } => formatter.write_str(&failed(step, error)),
            PreflightFailure::NothingToRelease { version } => write!(
                formatter,
                "version {version} already takes all of the route's traffic: there is nothing to release"
            ),
        }
    }
}

/// What `fledge plan` finds: a release of the service in flight, or the preflight of this one.
#[derive(Debug)]
pub enum Plan {
    /// This release is in flight: running it resumes it.
    Resumes {
        /// Its phase.
        phase: Phase,
    },
    /// Another release of the service is in flight: this one would be locked out.
    Blocked {
        /// Its version.
        version: String,
        /// Its phase.
        phase: Phase,
    },
    /// The release could start now.
    Ready(Box<Preflight>),
}

/// How long the metrics preflight may take: a round's budget, at least 30 s.
pub(crate) fn metrics_budget(release: &Release) -> Duration {
    release.analysis.interval.as_std().max(Duration::from_secs(30))
}

impl<P: Adapters> Runner<'_, P> {
    /// Every check a release needs, changing nothing: the route, the live version and its Deployment, Prometheus
    /// and every query.
    pub async fn preflight(&self) -> Result<Preflight, PreflightFailure> {
        let release = &self.release;
        let step = |step: &'static str| move |error: PortError| PreflightFailure::Step { step, error };
        let traffic = self
            .ports
            .traffic()
            .preflight(release, release.service.previous_version.as_deref())
            .await
            .map_err(step("check the traffic route"))?;
        if traffic.live_version == release.service.version {
            return Err(PreflightFailure::NothingToRelease { version: release.service.version.clone() });
        }
        let live = self
            .ports
            .workloads()
            .preflight(release, &traffic.live_version)
            .await
            .map_err(step("check the workloads"))?;
        self.ports
            .workloads()
            .check_deploy(release, &traffic.live_version)
            .await
            .map_err(step("check the new version's Deployment"))?;
        let warnings = self
            .ports
            .metrics()
            .preflight(&traffic.live_version, metrics_budget(release))
            .await
            .map_err(step("check the metric queries"))?;
        let queries = self.ports.metrics().queries(&traffic.live_version);
        Ok(Preflight { traffic, live, warnings, queries })
    }

    /// What running the release would do now: resume it, be locked out by another in flight, or start after this
    /// preflight. Changes nothing.
    pub async fn plan(&self) -> Result<Plan, PreflightFailure> {
        let record = self
            .ports
            .state()
            .load()
            .await
            .map_err(|error| PreflightFailure::Step { step: "read the run record", error })?;
        match record {
            Some(record) if record.in_flight() && record.is_of(&self.release) => {
                Ok(Plan::Resumes { phase: record.phase })
            }
            Some(record) if record.in_flight() => Ok(Plan::Blocked { version: record.version, phase: record.phase }),
            _ => self.preflight().await.map(|preflight| Plan::Ready(Box::new(preflight))),
        }
    }
}
