//! The GatewayRouter: reads and writes the HTTPRoute and the version Services of one release, and waits for the
//! route's parents to accept every change.

use crate::acceptance::{self, Acceptance};
use crate::error::{GatewayError, Kind};
use crate::pinned::{self, ManagedRule, PinnedReference};
use crate::rule::{self, RuleError, RuleSnapshot, Wanted};
use crate::{backends, version_service};
use fledge_core::release::{GatewayApiTraffic, PinnedRoutes, TrafficProvider};
use fledge_core::{FIELD_MANAGER, Release, Weight};
use fledge_kube_client::{GuardedError, Written, guarded_patch, optional_resource};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Istio's API group, whose VirtualServices must not route the service too.
pub(crate) const ISTIO_GROUP: &str = "networking.istio.io";

/// How often the route's status is read while its parents have not judged a change.
const ACCEPTANCE_POLL: Duration = Duration::from_millis(200);

/// Routes one release's traffic through an HTTPRoute.
#[derive(Clone)]
pub struct GatewayRouter {
    conflicts: Arc<AtomicU64>,
    routes: Api<DynamicObject>,
    services: Api<DynamicObject>,
    virtual_services: Option<Api<DynamicObject>>,
    service: String,
    namespace: String,
    traffic: GatewayApiTraffic,
    pinned_routes: PinnedRoutes,
}

fn value_of(object: DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

impl GatewayRouter {
    /// A router for `release`, whose traffic provider is the Gateway API, using the API version the cluster prefers.
    pub async fn new(client: kube::Client, release: &Release) -> Result<GatewayRouter, GatewayError> {
        let TrafficProvider::GatewayApi(traffic) = &release.traffic.provider else {
            return Err(GatewayError::NotGatewayApi { provider: release.traffic.provider.name() });
        };
        let namespace = &release.service.namespace;
        let group = kube::discovery::group(&client, GATEWAY_GROUP).await.map_err(GatewayError::Discover)?;
        let version = group.preferred_version_or_latest().to_owned();
        let routes = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(GATEWAY_GROUP, &version, "HTTPRoute"),
            "httproutes",
        );
        let virtual_services = optional_resource(&client, ISTIO_GROUP, "VirtualService", "virtualservices")
            .await
            .map_err(GatewayError::DiscoverIstio)?
            .map(|resource| Api::namespaced_with(client.clone(), namespace, &resource));
        let services = ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&());
        Ok(GatewayRouter {
            conflicts: Arc::default(),
            routes: Api::namespaced_with(client.clone(), namespace, &routes),
            services: Api::namespaced_with(client, namespace, &services),
            virtual_services,
            service: release.service.name.clone(),
            namespace: namespace.clone(),
            traffic: traffic.clone(),
            pinned_routes: release.traffic.pinned_routes,
        })
    }

    /// How many writes were planned again after a conflict.
    pub fn retries(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    fn api(&self, kind: Kind) -> &Api<DynamicObject> {
        match kind {
            Kind::HttpRoute => &self.routes,
            Kind::Service => &self.services,
            Kind::VirtualService => self.virtual_services.as_ref().unwrap_or(&self.routes),
        }
    }

    fn rule_error(&self, source: RuleError) -> GatewayError {
        GatewayError::Rule { service: self.service.clone(), namespace: self.namespace.clone(), source }
    }

    async fn read(&self, kind: Kind, name: &str) -> Result<Option<Value>, GatewayError> {
        let object = self.api(kind).get_opt(name).await.map_err(|source| GatewayError::Read {
            kind,
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            source,
        })?;
        Ok(object.map(value_of))
    }

    async fn list(&self, kind: Kind) -> Result<Vec<Value>, GatewayError> {
        let list = self.api(kind).list(&ListParams::default()).await.map_err(|source| GatewayError::List {
            kind,
            namespace: self.namespace.clone(),
            source,
        })?;
        Ok(list.items.into_iter().map(value_of).collect())
    }

    /// The HTTPRoute as it is now.
    pub async fn http_route(&self) -> Result<Value, GatewayError> {
        self.read(Kind::HttpRoute, &self.traffic.http_route).await?.ok_or_else(|| GatewayError::NotFound {
            kind: Kind::HttpRoute,
            namespace: self.namespace.clone(),
            name: self.traffic.http_route.clone(),
        })
    }

    /// The namespace's VirtualServices whose hosts name the service (none when Istio's API is not served).
    async fn virtual_services_of_service(&self) -> Result<Vec<String>, GatewayError> {
        if self.virtual_services.is_none() {
            return Ok(Vec::new());
        }
        let names = self
            .list(Kind::VirtualService)
            .await?
            .iter()
            .filter(|service| {
                service
                    .pointer("/spec/hosts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|host| fledge_core::names::host_matches(host, &self.service, &self.namespace))
            })
            .filter_map(|service| service.pointer("/metadata/name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        Ok(names)
    }

    /// The references to `live_service` in the namespace's HTTPRoutes outside the managed rule's backends.
    async fn pinned(&self, snapshot: &RuleSnapshot) -> Result<Vec<PinnedReference>, GatewayError> {
        let routes = self.list(Kind::HttpRoute).await?;
        let managed_route = routes
            .iter()
            .find(|route| route.pointer("/metadata/name").and_then(Value::as_str) == Some(&self.traffic.http_route))
            .ok_or_else(|| GatewayError::NotFound {
                kind: Kind::HttpRoute,
                namespace: self.namespace.clone(),
                name: self.traffic.http_route.clone(),
            })?;
        let rule_index = rule::locate(managed_route, snapshot).map_err(|source| self.rule_error(source))?;
        let managed = ManagedRule { http_route: &self.traffic.http_route, rule_index };
        Ok(pinned::find_pinned(&routes, managed, &self.namespace, &snapshot.live_service))
    }

    /// Checks that traffic can be shifted and records what to restore: the HTTPRoute exists and its parents accept
    /// it, one rule sends the service's traffic, all of it to the live version's Service, which selects only that
    /// version; no VirtualService routes the service too; finds the references pinned to the live Service and
    /// refuses them when the manifest says so.
    pub async fn preflight(
        &self,
        previous_version: Option<&str>,
        new_version: &str,
    ) -> Result<RuleSnapshot, GatewayError> {
        let route = self.http_route().await?;
        let virtual_services = self.virtual_services_of_service().await?;
        if !virtual_services.is_empty() {
            return Err(GatewayError::RoutedByBoth {
                service: self.service.clone(),
                namespace: self.namespace.clone(),
                http_route: self.traffic.http_route.clone(),
                virtual_services,
            });
        }
        let services = self.list(Kind::Service).await?;
        let wanted = Wanted {
            service: &self.service,
            namespace: &self.namespace,
            traffic: &self.traffic,
            previous_version,
            new_version,
        };
        let mut snapshot = rule::snapshot(&route, &services, wanted).map_err(|source| self.rule_error(source))?;
        self.await_acceptance("as found, before any change", route).await?;
        let pinned = self.pinned(&snapshot).await?;
        snapshot.pinned = pinned.iter().map(ToString::to_string).collect();
        if self.pinned_routes == PinnedRoutes::Refuse && !pinned.is_empty() {
            return Err(self.rule_error(RuleError::PinnedRoutesRefused {
                live_service: snapshot.live_service.clone(),
                routes: snapshot.pinned.clone(),
            }));
        }
        Ok(snapshot)
    }

    /// The Service the release creates for the new version, as it will be written.
    pub async fn planned_service(&self, snapshot: &RuleSnapshot, version: &str) -> Result<Value, GatewayError> {
        let live = self.read(Kind::Service, &snapshot.live_service).await?.ok_or_else(|| GatewayError::NotFound {
            kind: Kind::Service,
            namespace: self.namespace.clone(),
            name: snapshot.live_service.clone(),
        })?;
        Ok(version_service::version_service(&live, &snapshot.new_service, version))
    }

    /// Waits until every parent of the route accepted it at its generation, within the acceptance timeout;
    /// `route` is the route as last read or written.
    async fn await_acceptance(&self, action: &str, route: Value) -> Result<(), GatewayError> {
        let timeout = self.traffic.acceptance_timeout;
        let deadline = tokio::time::Instant::now() + timeout.as_std();
        let mut route = route;
        loop {
            match acceptance::judge(&route) {
                Acceptance::Accepted => return Ok(()),
                Acceptance::Refused(refusal) => {
                    return Err(GatewayError::Refused {
                        action: action.to_owned(),
                        namespace: self.namespace.clone(),
                        name: self.traffic.http_route.clone(),
                        refusal,
                    });
                }
                Acceptance::Pending(waiting) if tokio::time::Instant::now() >= deadline => {
                    return Err(GatewayError::NotAccepted {
                        action: action.to_owned(),
                        namespace: self.namespace.clone(),
                        name: self.traffic.http_route.clone(),
                        timeout,
                        waiting,
                    });
                }
                Acceptance::Pending(waiting) => tracing::debug!(%waiting, action, "waiting for the route's parents"),
            }
            tokio::time::sleep(ACCEPTANCE_POLL).await;
            route = self.http_route().await?;
        }
    }

    /// A guarded write of HTTPRoute `name` (see [`guarded_patch`]); then, for the managed route, waits for its
    /// parents to accept it.
    async fn write_route(
        &self,
        name: &str,
        action: &str,
        plan: impl Fn(&Value) -> Result<Option<Vec<json_patch::PatchOperation>>, RuleError>,
    ) -> Result<(), GatewayError> {
        let written = guarded_patch(&self.routes, name, FIELD_MANAGER, &self.conflicts, plan).await;
        let written = match written {
            Ok(written) => written,
            Err(GuardedError::Read(source)) => {
                return Err(GatewayError::Read {
                    kind: Kind::HttpRoute,
                    namespace: self.namespace.clone(),
                    name: name.to_owned(),
                    source,
                });
            }
            Err(GuardedError::NotFound) => {
                return Err(GatewayError::NotFound {
                    kind: Kind::HttpRoute,
                    namespace: self.namespace.clone(),
                    name: name.to_owned(),
                });
            }
            Err(GuardedError::Plan(source)) => return Err(self.rule_error(source)),
            Err(GuardedError::Write(source)) => {
                return Err(GatewayError::Write {
                    action: action.to_owned(),
                    kind: Kind::HttpRoute,
                    namespace: self.namespace.clone(),
                    name: name.to_owned(),
                    source,
                });
            }
        };
        if name != self.traffic.http_route {
            return Ok(());
        }
        let route = match written {
            Written::Unchanged(route) | Written::Patched(route) => route,
        };
        self.await_acceptance(&format!("after fledge went to {action}"), route).await
    }

    /// Creates the new version's Service (a copy of the live one), unless it is there; then adds its backendRef to
    /// the managed rule at weight 0, and waits for the parents to accept it.
    pub async fn add_version(&self, snapshot: &RuleSnapshot, version: &str) -> Result<(), GatewayError> {
        if let Some(existing) = self.read(Kind::Service, &snapshot.new_service).await? {
            // Made since preflight (or by an earlier attempt of this release): it must select the new version.
            if rule::version_of(&existing) != Some(version) {
                return Err(self.rule_error(RuleError::ServiceSelectsOther {
                    name: snapshot.new_service.clone(),
                    selector: rule::describe_selector(&existing),
                    service: self.service.clone(),
                    version: version.to_owned(),
                }));
            }
        } else {
            let service = self.planned_service(snapshot, version).await?;
            let object: DynamicObject = serde_json::from_value(service).expect("a Service is a DynamicObject");
            let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
            match self.services.create(&params, &object).await {
                Ok(_) => {}
                // Created by an earlier attempt whose answer was lost.
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(source) => {
                    return Err(GatewayError::Write {
                        action: format!("create Service {}", snapshot.new_service),
                        kind: Kind::Service,
                        namespace: self.namespace.clone(),
                        name: snapshot.new_service.clone(),
                        source,
                    });
                }
            }
        }
        let action = format!("add the backend of {version} at weight 0");
        self.write_route(&self.traffic.http_route, &action, |route| backends::add_backend_patch(route, snapshot)).await
    }

    /// The weights of the live and the new version now, as written.
    pub async fn weights(&self, snapshot: &RuleSnapshot) -> Result<(i64, i64), GatewayError> {
        let route = self.http_route().await?;
        backends::current_weights(&route, snapshot).map_err(|source| self.rule_error(source))
    }

    /// Sends `canary` of the rule's traffic to the new version and the rest to the live one, reads the weights
    /// back and checks them, and waits for the parents to accept the change. Returns the `(live, new)` weights.
    pub async fn set_weight(
        &self,
        snapshot: &RuleSnapshot,
        new_version: &str,
        canary: Weight,
    ) -> Result<(i64, i64), GatewayError> {
        let (expected_live, expected_new) = canary.split_share(100);
        let action = format!("set the weight of {new_version} to {canary}");
        self.write_route(&self.traffic.http_route, &action, |route| {
            if backends::current_weights(route, snapshot)? == (expected_live, expected_new) {
                return Ok(None);
            }
            backends::weight_patch(route, snapshot, canary).map(Some)
        })
        .await?;
        let (live, new) = self.weights(snapshot).await?;
        if (live, new) != (expected_live, expected_new) {
            return Err(GatewayError::Verify(fledge_core::WeightsNotAsWritten {
                kind: "HTTPRoute",
                namespace: self.namespace.clone(),
                name: self.traffic.http_route.clone(),
                live,
                new,
                expected_live,
                expected_new,
            }));
        }
        Ok((live, new))
    }

    async fn delete_service(&self, name: &str) -> Result<(), GatewayError> {
        match self.services.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(GatewayError::Write {
                action: format!("delete Service {name}"),
                kind: Kind::Service,
                namespace: self.namespace.clone(),
                name: name.to_owned(),
                source,
            }),
        }
    }

    /// Puts the managed rule's backendRefs back exactly as found, waits for the parents to accept it, then deletes
    /// the new version's Service if fledge created it.
    pub async fn restore(&self, snapshot: &RuleSnapshot) -> Result<(), GatewayError> {
        if self.read(Kind::Service, &snapshot.live_service).await?.is_none() {
            return Err(GatewayError::LiveServiceGone {
                namespace: self.namespace.clone(),
                name: snapshot.live_service.clone(),
            });
        }
        self.write_route(&self.traffic.http_route, "restore the managed rule", |route| {
            backends::restore_patch(route, snapshot)
        })
        .await?;
        if !snapshot.new_service_found {
            self.delete_service(&snapshot.new_service).await?;
        }
        Ok(())
    }

    /// Points the references pinned to the old version's Service at the new one, one guarded write per HTTPRoute.
    async fn move_pinned(&self, snapshot: &RuleSnapshot, pinned: &[PinnedReference]) -> Result<(), GatewayError> {
        let mut routes: Vec<&str> = pinned.iter().map(|reference| reference.http_route.as_str()).collect();
        routes.dedup();
        for name in routes {
            let action =
                format!("point the references to Service {} at {}", snapshot.live_service, snapshot.new_service);
            self.write_route(name, &action, |route| {
                let rule_index =
                    if name == self.traffic.http_route { rule::locate(route, snapshot)? } else { usize::MAX };
                let managed = ManagedRule { http_route: &self.traffic.http_route, rule_index };
                let found =
                    pinned::find_pinned(std::slice::from_ref(route), managed, &self.namespace, &snapshot.live_service);
                let found: Vec<&PinnedReference> = found.iter().collect();
                Ok(pinned::move_patch(route, &found, &snapshot.new_service))
            })
            .await?;
        }
        Ok(())
    }

    /// After promotion: deals with the references pinned to the old version's Service (`traffic.pinnedRoutes`:
    /// moved to the new version's, or kept, which keeps the old Service), then writes the managed rule as found,
    /// naming the new version's Service, and, when nothing keeps it, deletes the old version's Service.
    pub async fn retire_live(&self, snapshot: &RuleSnapshot) -> Result<fledge_core::ports::Retirement, GatewayError> {
        let pinned = self.pinned(snapshot).await?;
        let described: Vec<String> = pinned.iter().map(ToString::to_string).collect();
        let retirement = match self.pinned_routes {
            PinnedRoutes::Move => {
                self.move_pinned(snapshot, &pinned).await?;
                fledge_core::ports::Retirement { moved: described, kept_for: Vec::new() }
            }
            // References made since preflight, under `refuse`: keeping the old version is what breaks nothing.
            PinnedRoutes::Keep | PinnedRoutes::Refuse => {
                fledge_core::ports::Retirement { moved: Vec::new(), kept_for: described }
            }
        };
        let action = format!("remove the backend of {}", snapshot.live_version);
        self.write_route(&self.traffic.http_route, &action, |route| backends::retire_patch(route, snapshot)).await?;
        if retirement.kept_for.is_empty() {
            self.delete_service(&snapshot.live_service).await?;
        }
        Ok(retirement)
    }
}
