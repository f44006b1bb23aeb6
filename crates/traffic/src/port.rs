//! fledge-core's [`TrafficRouting`] port, on a [`TrafficRouter`]. The snapshot travels through the run record as
//! JSON.

use crate::{TrafficRouter, TrafficSnapshot};
use fledge_core::ports::{PortError, Retirement, RouteWeights, TrafficPlan, TrafficRouting};
use fledge_core::{Release, Weight};

/// The run record's traffic snapshot could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("failed to read the traffic snapshot of the run record")]
pub struct SnapshotError(#[source] serde_json::Error);

/// Istio routing for the runner.
#[derive(Clone)]
pub struct IstioRouting {
    router: TrafficRouter,
}

impl IstioRouting {
    /// Routing through `router`.
    pub fn new(router: TrafficRouter) -> IstioRouting {
        IstioRouting { router }
    }
}

fn snapshot(value: &serde_json::Value) -> Result<TrafficSnapshot, PortError> {
    serde_json::from_value(value.clone()).map_err(|error| Box::new(SnapshotError(error)) as PortError)
}

impl TrafficRouting for IstioRouting {
    async fn preflight(&self, release: &Release, previous_version: Option<&str>) -> Result<TrafficPlan, PortError> {
        let version = &release.service.version;
        let snapshot = self.router.preflight(previous_version, version).await?;
        let subset = self.router.planned_subset(&snapshot, version).await?;
        let already =
            snapshot.subsets.as_array().into_iter().flatten().any(|existing| existing["name"] == version.as_str());
        let added = if already {
            format!(
                "subset {version} in DestinationRule {} (there already: kept, labelled version={version})",
                snapshot.destination_rule
            )
        } else {
            format!(
                "subset {version} in DestinationRule {}, a copy of subset {}: {}",
                snapshot.destination_rule,
                snapshot.live_subset,
                crate::subsets::describe_subset(&subset)
            )
        };
        Ok(TrafficPlan {
            live_version: snapshot.live_subset.clone(),
            route: format!(
                "VirtualService {}/{}, route {}",
                snapshot.namespace,
                snapshot.virtual_service,
                snapshot.route_label()
            ),
            adds: vec![added],
            pinned_routes: snapshot.pinned.clone(),
            snapshot: serde_json::to_value(&snapshot).expect("a snapshot serializes"),
        })
    }

    async fn add_version(&self, recorded: &serde_json::Value, version: &str) -> Result<(), PortError> {
        Ok(self.router.add_subset(&snapshot(recorded)?, version).await?)
    }

    async fn set_weight(&self, recorded: &serde_json::Value, version: &str, weight: Weight) -> Result<(), PortError> {
        self.router.set_weight(&snapshot(recorded)?, version, weight).await?;
        Ok(())
    }

    async fn weights(&self, recorded: &serde_json::Value, version: &str) -> Result<RouteWeights, PortError> {
        let snapshot = snapshot(recorded)?;
        let (live, new) = self.router.weights(&snapshot, version).await?;
        Ok(RouteWeights { live, new, share: snapshot.share })
    }

    async fn restore(&self, recorded: &serde_json::Value, version: &str) -> Result<(), PortError> {
        Ok(self.router.restore(&snapshot(recorded)?, version).await?)
    }

    async fn retire_live(&self, recorded: &serde_json::Value, version: &str) -> Result<Retirement, PortError> {
        Ok(self.router.retire_live(&snapshot(recorded)?, version).await?)
    }
}
