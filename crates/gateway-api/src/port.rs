//! fledge-core's [`TrafficRouting`] port, on a [`GatewayRouter`]. The snapshot travels through the run record as
//! JSON.

use crate::backends;
use crate::rule::RuleSnapshot;
use crate::{GatewayRouter, version_service};
use fledge_core::ports::{PortError, Retirement, RouteWeights, TrafficPlan, TrafficRouting};
use fledge_core::{Release, Weight};

/// The run record's traffic snapshot could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("failed to read the Gateway API traffic snapshot of the run record")]
pub struct SnapshotError(#[source] serde_json::Error);

/// Gateway API routing for the runner.
#[derive(Clone)]
pub struct GatewayApiRouting {
    router: GatewayRouter,
}

impl GatewayApiRouting {
    /// Routing through `router`.
    pub fn new(router: GatewayRouter) -> GatewayApiRouting {
        GatewayApiRouting { router }
    }
}

fn snapshot(value: &serde_json::Value) -> Result<RuleSnapshot, PortError> {
    serde_json::from_value(value.clone()).map_err(|error| Box::new(SnapshotError(error)) as PortError)
}

impl TrafficRouting for GatewayApiRouting {
    async fn preflight(&self, release: &Release, previous_version: Option<&str>) -> Result<TrafficPlan, PortError> {
        let version = &release.service.version;
        let snapshot = self.router.preflight(previous_version, version).await?;
        let rule = snapshot.rule_label();
        let service = if snapshot.new_service_found {
            format!("Service {} (there already: kept, selecting version={version})", snapshot.new_service)
        } else {
            let planned = self.router.planned_service(&snapshot, version).await?;
            format!(
                "Service {}, a copy of Service {}: {}",
                snapshot.new_service,
                snapshot.live_service,
                version_service::describe(&planned)
            )
        };
        let backend = format!(
            "backendRef {} in rule {rule} at weight 0, a copy of the backendRef of {} (port, filters)",
            snapshot.new_service, snapshot.live_service
        );
        Ok(TrafficPlan {
            live_version: snapshot.live_version.clone(),
            route: format!("HTTPRoute {}/{}, rule {rule}", snapshot.namespace, snapshot.http_route),
            adds: vec![service, backend],
            pinned_routes: snapshot.pinned.clone(),
            snapshot: serde_json::to_value(&snapshot).expect("a snapshot serializes"),
        })
    }

    async fn add_version(&self, recorded: &serde_json::Value, version: &str) -> Result<(), PortError> {
        Ok(self.router.add_version(&snapshot(recorded)?, version).await?)
    }

    async fn set_weight(&self, recorded: &serde_json::Value, version: &str, weight: Weight) -> Result<(), PortError> {
        self.router.set_weight(&snapshot(recorded)?, version, weight).await?;
        Ok(())
    }

    async fn weights(&self, recorded: &serde_json::Value, _version: &str) -> Result<RouteWeights, PortError> {
        let (live, new) = backends::as_percent(self.router.weights(&snapshot(recorded)?).await?);
        Ok(RouteWeights { live, new, share: 100 })
    }

    async fn restore(&self, recorded: &serde_json::Value, _version: &str) -> Result<(), PortError> {
        Ok(self.router.restore(&snapshot(recorded)?).await?)
    }

    async fn retire_live(&self, recorded: &serde_json::Value, _version: &str) -> Result<Retirement, PortError> {
        Ok(self.router.retire_live(&snapshot(recorded)?).await?)
    }
}
