//! The TrafficRouter: reads and writes the VirtualService and DestinationRule of one release.

use crate::http_routes;
use crate::pinned::{self, ManagedRoute, PinnedRoute};
use crate::routes::{self, RouteError, TrafficSnapshot};
use crate::subsets;
use fledge_core::release::{PinnedRoutes, TrafficProvider};
use fledge_core::{FIELD_MANAGER, Release, Weight};
use fledge_kube_client::{GuardedError, guarded_patch, optional_resource};
use kube::api::{Api, ListParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

/// The Istio API group.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// The Gateway API group, whose HTTPRoutes must not route the service too.
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The Istio resources the router reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A VirtualService.
    VirtualService,
    /// A DestinationRule.
    DestinationRule,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Resource::VirtualService => "VirtualService",
            Resource::DestinationRule => "DestinationRule",
        })
    }
}

/// A failed traffic operation.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The release's traffic is not routed by Istio.
    #[error("the release's traffic provider is {provider}, not istio")]
    NotIstio {
        /// The provider's name.
        provider: &'static str,
    },
    /// Istio's API is not served.
    #[error("failed to find Istio's {ISTIO_GROUP} API in the cluster")]
    Discover(#[source] kube::Error),
    /// The Gateway API could not be discovered (to check no HTTPRoute routes the service too).
    #[error("failed to discover the Gateway API ({GATEWAY_GROUP})")]
    DiscoverGatewayApi(#[source] kube::Error),
    /// Reading a resource failed.
    #[error("failed to read {kind} {namespace}/{name}")]
    Read {
        /// VirtualService or DestinationRule.
        kind: Resource,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A resource does not exist.
    #[error("unable to find {kind} {namespace}/{name}")]
    NotFound {
        /// VirtualService or DestinationRule.
        kind: Resource,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// Listing the namespace's VirtualServices failed.
    #[error("failed to list the VirtualServices of {namespace}")]
    List {
        /// Namespace.
        namespace: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Listing the namespace's HTTPRoutes failed.
    #[error("failed to list the HTTPRoutes of {namespace}")]
    ListHttpRoutes {
        /// Namespace.
        namespace: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The service is routed by an HTTPRoute too.
    #[error(
        "{service} in {namespace} is routed by VirtualService {virtual_service} and by HTTPRoute {}: Istio leaves the mix undefined; route the service with one of them",
        http_routes.join(", ")
    )]
    RoutedByBoth {
        /// Service.
        service: String,
        /// Namespace.
        namespace: String,
        /// The VirtualService.
        virtual_service: String,
        /// The HTTPRoutes that route the service.
        http_routes: Vec<String>,
    },
    /// The resources do not allow the release.
    #[error("unable to manage traffic of {service} in {namespace}")]
    Route {
        /// Service.
        service: String,
        /// Namespace.
        namespace: String,
        /// Why.
        #[source]
        source: RouteError,
    },
    /// A write failed for good, or kept conflicting for longer than the write budget (30 s).
    #[error("failed to {action} in {kind} {namespace}/{name}")]
    Write {
        /// What was being done.
        action: String,
        /// VirtualService or DestinationRule.
        kind: Resource,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The last API error.
        #[source]
        source: kube::Error,
    },
    /// The weights read back are not what was written.
    #[error(transparent)]
    Verify(#[from] fledge_core::WeightsNotAsWritten),
}

/// Routes one release's traffic.
#[derive(Clone)]
pub struct TrafficRouter {
    retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
    virtual_services: Api<DynamicObject>,
    destination_rules: Api<DynamicObject>,
    http_routes: Option<Api<DynamicObject>>,
    service: String,
    namespace: String,
    virtual_service: String,
    destination_rule: String,
    route: Option<String>,
    pinned_routes: PinnedRoutes,
}

impl TrafficRouter {
    /// A router for `release`, whose traffic provider is Istio, using the Istio API version the cluster prefers.
    pub async fn new(client: kube::Client, release: &Release) -> Result<TrafficRouter, TrafficError> {
        let TrafficProvider::Istio(istio) = &release.traffic.provider else {
            return Err(TrafficError::NotIstio { provider: release.traffic.provider.name() });
        };
        let group = kube::discovery::group(&client, ISTIO_GROUP).await.map_err(TrafficError::Discover)?;
        let version = group.preferred_version_or_latest().to_owned();
        let resource = |kind: &str, plural: &str| {
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(ISTIO_GROUP, &version, kind), plural)
        };
        let namespace = &release.service.namespace;
        let http_routes = optional_resource(&client, GATEWAY_GROUP, "HTTPRoute", "httproutes")
            .await
            .map_err(TrafficError::DiscoverGatewayApi)?
            .map(|resource| Api::namespaced_with(client.clone(), namespace, &resource));
        Ok(TrafficRouter {
            retries: Default::default(),
            http_routes,
            virtual_services: Api::namespaced_with(
                client.clone(),
                namespace,
                &resource("VirtualService", "virtualservices"),
            ),
            destination_rules: Api::namespaced_with(
                client,
                namespace,
                &resource("DestinationRule", "destinationrules"),
            ),
            service: release.service.name.clone(),
            namespace: namespace.clone(),
            virtual_service: istio.virtual_service.clone(),
            destination_rule: istio.destination_rule.clone(),
            route: istio.route.clone(),
            pinned_routes: release.traffic.pinned_routes,
        })
    }

    fn api(&self, kind: Resource) -> &Api<DynamicObject> {
        match kind {
            Resource::VirtualService => &self.virtual_services,
            Resource::DestinationRule => &self.destination_rules,
        }
    }

    async fn read(&self, kind: Resource, name: &str) -> Result<Value, TrafficError> {
        let read_error =
            |source| TrafficError::Read { kind, namespace: self.namespace.clone(), name: name.to_owned(), source };
        let object = self.api(kind).get_opt(name).await.map_err(read_error)?.ok_or_else(|| TrafficError::NotFound {
            kind,
            namespace: self.namespace.clone(),
            name: name.to_owned(),
        })?;
        Ok(serde_json::to_value(object).unwrap_or_default())
    }

    /// Every VirtualService of the namespace, in one request.
    async fn all_virtual_services(&self) -> Result<Vec<Value>, TrafficError> {
        let list = self
            .virtual_services
            .list(&ListParams::default())
            .await
            .map_err(|source| TrafficError::List { namespace: self.namespace.clone(), source })?;
        Ok(list.items.into_iter().map(|item| serde_json::to_value(item).unwrap_or_default()).collect())
    }

    /// The namespace's HTTPRoutes that route the service (none when the Gateway API is not served).
    async fn http_routes_of_service(&self) -> Result<Vec<String>, TrafficError> {
        let Some(api) = &self.http_routes else {
            return Ok(Vec::new());
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|source| TrafficError::ListHttpRoutes { namespace: self.namespace.clone(), source })?;
        let routes: Vec<Value> =
            list.items.into_iter().map(|item| serde_json::to_value(item).unwrap_or_default()).collect();
        Ok(http_routes::routing_the_service(&routes, &self.service, &self.namespace))
    }

    /// How many writes were planned again after a conflict.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The VirtualService as it is now.
    pub async fn virtual_service(&self) -> Result<Value, TrafficError> {
        self.read(Resource::VirtualService, &self.virtual_service).await
    }

    /// The DestinationRule as it is now.
    pub async fn destination_rule(&self) -> Result<Value, TrafficError> {
        self.read(Resource::DestinationRule, &self.destination_rule).await
    }

    fn route_error(&self, source: RouteError) -> TrafficError {
        TrafficError::Route { service: self.service.clone(), namespace: self.namespace.clone(), source }
    }

    /// The routes of the namespace's VirtualServices pinned to `subset`, outside the managed route's destinations.
    async fn pinned(&self, snapshot: &TrafficSnapshot, subset: &str) -> Result<Vec<PinnedRoute>, TrafficError> {
        let services = self.all_virtual_services().await?;
        let managed = services
            .iter()
            .find(|service| service.pointer("/metadata/name").and_then(Value::as_str) == Some(&self.virtual_service))
            .ok_or_else(|| TrafficError::NotFound {
                kind: Resource::VirtualService,
                namespace: self.namespace.clone(),
                name: self.virtual_service.clone(),
            })?;
        let route_index = routes::find_route(managed, &self.service, &self.namespace, snapshot.route_name.as_deref())
            .map_err(|source| self.route_error(source))?;
        let managed = ManagedRoute { virtual_service: &self.virtual_service, route_index };
        Ok(pinned::find_pinned(&services, managed, &self.service, &self.namespace, subset))
    }

    /// Checks that traffic can be shifted and records what to restore: both resources exist, no HTTPRoute routes the
    /// service too, the DestinationRule is for the service, one http route sends the service's traffic, all of it to
    /// the live version's subset; finds the routes pinned to the live version and refuses them when the manifest says
    /// so.
    pub async fn preflight(
        &self,
        previous_version: Option<&str>,
        new_version: &str,
    ) -> Result<TrafficSnapshot, TrafficError> {
        let virtual_service = self.virtual_service().await?;
        let http_routes = self.http_routes_of_service().await?;
        if !http_routes.is_empty() {
            return Err(TrafficError::RoutedByBoth {
                service: self.service.clone(),
                namespace: self.namespace.clone(),
                virtual_service: self.virtual_service.clone(),
                http_routes,
            });
        }
        let destination_rule = self.destination_rule().await?;
        let mut snapshot = routes::snapshot(
            &virtual_service,
            &destination_rule,
            &self.service,
            &self.namespace,
            self.route.as_deref(),
            previous_version,
            new_version,
        )
        .map_err(|source| self.route_error(source))?;
        let pinned = self.pinned(&snapshot, &snapshot.live_subset.clone()).await?;
        snapshot.pinned = pinned.iter().map(ToString::to_string).collect();
        if self.pinned_routes == PinnedRoutes::Refuse && !pinned.is_empty() {
            return Err(self.route_error(RouteError::PinnedRoutesRefused {
                subset: snapshot.live_subset.clone(),
                routes: snapshot.pinned.clone(),
            }));
        }
        Ok(snapshot)
    }

    /// Reads `kind` `name`, plans a JSON patch with `plan` (None: nothing to do), applies it; on a conflict, reads
    /// again and plans again, so only fledge's change is re-applied and other writers' edits stay.
    async fn guarded_write(
        &self,
        kind: Resource,
        name: &str,
        action: &str,
        plan: impl Fn(&Value) -> Result<Option<Vec<json_patch::PatchOperation>>, RouteError>,
    ) -> Result<(), TrafficError> {
        let written = guarded_patch(self.api(kind), name, FIELD_MANAGER, &self.retries, plan).await;
        match written {
            Ok(_) => Ok(()),
            Err(GuardedError::Read(source)) => {
                Err(TrafficError::Read { kind, namespace: self.namespace.clone(), name: name.to_owned(), source })
            }
            Err(GuardedError::NotFound) => {
                Err(TrafficError::NotFound { kind, namespace: self.namespace.clone(), name: name.to_owned() })
            }
            Err(GuardedError::Plan(source)) => Err(self.route_error(source)),
            Err(GuardedError::Write(source)) => Err(TrafficError::Write {
                action: action.to_owned(),
                kind,
                namespace: self.namespace.clone(),
                name: name.to_owned(),
                source,
            }),
        }
    }

    /// Adds subset `<version>` to the DestinationRule: a copy of the live subset (its traffic policy and labels) with
    /// `version: <version>`, keeping everything else.
    pub async fn add_subset(&self, snapshot: &TrafficSnapshot, version: &str) -> Result<(), TrafficError> {
        self.guarded_write(
            Resource::DestinationRule,
            &self.destination_rule,
            &format!("add subset {version}"),
            |rule| Ok(subsets::add_subset_patch(rule, &snapshot.live_subset, version)),
        )
        .await
    }

    /// Removes subset `name` from the DestinationRule, if it is there.
    pub async fn remove_subset(&self, snapshot: &TrafficSnapshot, name: &str) -> Result<(), TrafficError> {
        self.guarded_write(
            Resource::DestinationRule,
            &self.destination_rule,
            &format!("remove subset {name}"),
            |rule| Ok(subsets::remove_subset_patch(rule, name, &snapshot.subsets)),
        )
        .await
    }

    /// The subset the release adds for `version`, as it will be written (a copy of the live one).
    pub async fn planned_subset(&self, snapshot: &TrafficSnapshot, version: &str) -> Result<Value, TrafficError> {
        Ok(subsets::canary_subset(&self.destination_rule().await?, &snapshot.live_subset, version))
    }

    /// The weights of the live and the new version now, out of the service's share.
    pub async fn weights(&self, snapshot: &TrafficSnapshot, new_version: &str) -> Result<(i64, i64), TrafficError> {
        let virtual_service = self.virtual_service().await?;
        routes::current_weights(&virtual_service, snapshot, new_version).map_err(|source| self.route_error(source))
    }

    /// Sends `canary` of the service's share to the new version and the rest to the live one, then reads the weights
    /// back and checks them. Returns the `(live, new)` weights written.
    pub async fn set_weight(
        &self,
        snapshot: &TrafficSnapshot,
        new_version: &str,
        canary: Weight,
    ) -> Result<(i64, i64), TrafficError> {
        let (expected_live, expected_new) = routes::split(snapshot.share, canary);
        let action = format!("set the weight of {new_version} to {canary}");
        self.guarded_write(Resource::VirtualService, &self.virtual_service, &action, |service| {
            let current = routes::current_weights(service, snapshot, new_version)?;
            if current == (expected_live, expected_new) {
                return Ok(None);
            }
            routes::weight_patch(service, snapshot, new_version, canary).map(Some)
        })
        .await?;
        let (live, new) = self.weights(snapshot, new_version).await?;
        if (live, new) != (expected_live, expected_new) {
            return Err(TrafficError::Verify(fledge_core::WeightsNotAsWritten {
                kind: "VirtualService",
                namespace: self.namespace.clone(),
                name: self.virtual_service.clone(),
                live,
                new,
                expected_live,
                expected_new,
            }));
        }
        Ok((live, new))
    }

    /// Puts the managed route's destinations back exactly as found, and the new version's subset: removed when
    /// fledge added it, as it was when it was there before.
    pub async fn restore(&self, snapshot: &TrafficSnapshot, new_version: &str) -> Result<(), TrafficError> {
        self.guarded_write(Resource::VirtualService, &self.virtual_service, "restore the managed route", |service| {
            let route =
                routes::find_route(service, &snapshot.service, &snapshot.namespace, snapshot.route_name.as_deref());
            let unchanged = route.is_ok_and(|index| {
                service.pointer(&format!("/spec/http/{index}/route")) == Some(&snapshot.destinations)
            });
            if unchanged { Ok(None) } else { routes::restore_patch(service, snapshot).map(Some) }
        })
        .await?;
        let action = format!("restore subset {new_version}");
        self.guarded_write(Resource::DestinationRule, &self.destination_rule, &action, |rule| {
            Ok(subsets::restore_subset_patch(rule, new_version, &snapshot.subsets))
        })
        .await
    }

    /// Points the routes pinned to the old version at `new_version`, one guarded write per VirtualService.
    async fn move_pinned(
        &self,
        snapshot: &TrafficSnapshot,
        pinned: &[PinnedRoute],
        new_version: &str,
    ) -> Result<(), TrafficError> {
        let mut services: Vec<&str> = pinned.iter().map(|pin| pin.virtual_service.as_str()).collect();
        services.dedup();
        for name in services {
            let action = format!("point the routes pinned to {} at {new_version}", snapshot.live_subset);
            self.guarded_write(Resource::VirtualService, name, &action, |service| {
                let route_index = if name == self.virtual_service {
                    routes::find_route(service, &snapshot.service, &snapshot.namespace, snapshot.route_name.as_deref())?
                } else {
                    0 // another VirtualService: nothing in it is managed
                };
                let managed = ManagedRoute { virtual_service: &self.virtual_service, route_index };
                let found = pinned::find_pinned(
                    std::slice::from_ref(service),
                    managed,
                    &snapshot.service,
                    &snapshot.namespace,
                    &snapshot.live_subset,
                );
                let found: Vec<&PinnedRoute> = found.iter().collect();
                Ok(pinned::move_patch(service, &found, new_version))
            })
            .await?;
        }
        Ok(())
    }

    /// After promotion: deals with the routes pinned to the old version (`traffic.pinnedRoutes`: moved to the new
    /// version, or kept on the old one, which then keeps its subset), then removes the old version's destination
    /// from the managed route (the new one keeps the whole share) and, when nothing keeps it, its subset.
    pub async fn retire_live(
        &self,
        snapshot: &TrafficSnapshot,
        new_version: &str,
    ) -> Result<fledge_core::ports::Retirement, TrafficError> {
        let pinned = self.pinned(snapshot, &snapshot.live_subset).await?;
        let described: Vec<String> = pinned.iter().map(ToString::to_string).collect();
        let retirement = match self.pinned_routes {
            PinnedRoutes::Move => {
                self.move_pinned(snapshot, &pinned, new_version).await?;
                fledge_core::ports::Retirement { moved: described, kept_for: Vec::new() }
            }
            // Routes pinned since preflight, under `refuse`: keeping the old version is what breaks nothing.
            PinnedRoutes::Keep | PinnedRoutes::Refuse => {
                fledge_core::ports::Retirement { moved: Vec::new(), kept_for: described }
            }
        };
        let action = format!("remove the destination of {}", snapshot.live_subset);
        self.guarded_write(Resource::VirtualService, &self.virtual_service, &action, |service| {
            let (live, new) = routes::current_weights(service, snapshot, new_version)?;
            let index =
                routes::find_route(service, &snapshot.service, &snapshot.namespace, snapshot.route_name.as_deref());
            let live_present = index.is_ok_and(|index| {
                service.pointer(&format!("/spec/http/{index}/route")).and_then(Value::as_array).is_some_and(|entries| {
                    entries.iter().any(|entry| {
                        entry.pointer("/destination/subset").and_then(Value::as_str)
                            == Some(snapshot.live_subset.as_str())
                    })
                })
            });
            if !live_present && new == snapshot.share && live == 0 {
                return Ok(None);
            }
            routes::retire_live_patch(service, snapshot, new_version).map(Some)
        })
        .await?;
        if retirement.kept_for.is_empty() {
            self.remove_subset(snapshot, &snapshot.live_subset).await?;
        }
        Ok(retirement)
    }
}
