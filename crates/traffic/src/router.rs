//! The TrafficRouter: reads and writes the VirtualService and DestinationRule of one release.

use crate::routes::{self, RouteError, TrafficSnapshot};
use fledge_core::{FIELD_MANAGER, Release, Weight};
use kube::api::{Api, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;
use std::time::Duration;

/// The Istio API group.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// How long one guarded write keeps retrying conflicts, throttling and server errors before giving up.
const WRITE_BUDGET: Duration = Duration::from_secs(30);

/// A failed traffic operation.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// Istio's API is not served.
    #[error("failed to find Istio's {ISTIO_GROUP} API in the cluster")]
    Discover(#[source] kube::Error),
    /// Reading a resource failed.
    #[error("failed to read {kind} {namespace}/{name}")]
    Read {
        /// VirtualService or DestinationRule.
        kind: &'static str,
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
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
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
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The last API error.
        #[source]
        source: kube::Error,
    },
    /// The weights read back are not what was written.
    #[error(
        "weights in VirtualService {namespace}/{name} read back as {live}/{new}, not the {expected_live}/{expected_new} written"
    )]
    Verify {
        /// Namespace.
        namespace: String,
        /// VirtualService.
        name: String,
        /// Live weight read.
        live: i64,
        /// New weight read.
        new: i64,
        /// Live weight written.
        expected_live: i64,
        /// New weight written.
        expected_new: i64,
    },
}

/// A fraction in [0, 1) from the clock, enough to spread retries without a random-number dependency.
fn rand_fraction() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

/// Whether an error is worth another attempt: a conflict (the resourceVersion test failed or the object moved),
/// throttling, or a server-side error.
fn retryable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 409 | 422 | 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Routes one release's traffic.
#[derive(Clone)]
pub struct TrafficRouter {
    retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
    virtual_services: Api<DynamicObject>,
    destination_rules: Api<DynamicObject>,
    service: String,
    namespace: String,
    virtual_service: String,
    destination_rule: String,
    route: Option<String>,
}

impl TrafficRouter {
    /// A router for `release`, using the Istio API version the cluster prefers.
    pub async fn new(client: kube::Client, release: &Release) -> Result<TrafficRouter, TrafficError> {
        let group = kube::discovery::group(&client, ISTIO_GROUP).await.map_err(TrafficError::Discover)?;
        let version = group.preferred_version_or_latest().to_owned();
        let resource = |kind: &str, plural: &str| {
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(ISTIO_GROUP, &version, kind), plural)
        };
        let namespace = &release.service.namespace;
        Ok(TrafficRouter {
            retries: Default::default(),
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
            virtual_service: release.traffic.virtual_service.clone(),
            destination_rule: release.traffic.destination_rule.clone(),
            route: release.traffic.route.clone(),
        })
    }

    async fn read(&self, kind: &'static str) -> Result<Value, TrafficError> {
        let (api, name) = match kind {
            "VirtualService" => (&self.virtual_services, &self.virtual_service),
            _ => (&self.destination_rules, &self.destination_rule),
        };
        let read_error =
            |source| TrafficError::Read { kind, namespace: self.namespace.clone(), name: name.clone(), source };
        let object = api.get_opt(name).await.map_err(read_error)?.ok_or_else(|| TrafficError::NotFound {
            kind,
            namespace: self.namespace.clone(),
            name: name.clone(),
        })?;
        Ok(serde_json::to_value(object).unwrap_or_default())
    }

    /// How many writes were planned again after a conflict or a transient error.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The VirtualService as it is now.
    pub async fn virtual_service(&self) -> Result<Value, TrafficError> {
        self.read("VirtualService").await
    }

    /// The DestinationRule as it is now.
    pub async fn destination_rule(&self) -> Result<Value, TrafficError> {
        self.read("DestinationRule").await
    }

    fn route_error(&self, source: RouteError) -> TrafficError {
        TrafficError::Route { service: self.service.clone(), namespace: self.namespace.clone(), source }
    }

    /// Checks that traffic can be shifted and records what to restore: both resources exist, the DestinationRule is
    /// for the service, one http route sends the service's traffic, all of it to the live version's subset.
    pub async fn preflight(
        &self,
        previous_version: Option<&str>,
        new_version: &str,
    ) -> Result<TrafficSnapshot, TrafficError> {
        let virtual_service = self.virtual_service().await?;
        let destination_rule = self.destination_rule().await?;
        routes::snapshot(
            &virtual_service,
            &destination_rule,
            &self.service,
            &self.namespace,
            self.route.as_deref(),
            previous_version,
            new_version,
        )
        .map_err(|source| self.route_error(source))
    }

    /// Reads `kind`, plans a JSON patch with `plan` (None: nothing to do), applies it; on a conflict or a transient
    /// error, reads again and plans again, so only fledge's change is re-applied and other writers' edits stay.
    async fn guarded_write(
        &self,
        kind: &'static str,
        action: &str,
        plan: impl Fn(&Value) -> Result<Option<Vec<json_patch::PatchOperation>>, RouteError>,
    ) -> Result<(), TrafficError> {
        let (api, name) = match kind {
            "VirtualService" => (&self.virtual_services, &self.virtual_service),
            _ => (&self.destination_rules, &self.destination_rule),
        };
        let deadline = tokio::time::Instant::now() + WRITE_BUDGET;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let current = self.read(kind).await?;
            let Some(operations) = plan(&current).map_err(|source| self.route_error(source))? else { return Ok(()) };
            let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PatchParams::default() };
            match api.patch(name, &params, &Patch::Json::<()>(json_patch::Patch(operations))).await {
                Ok(_) => return Ok(()),
                Err(error) if retryable(&error) && tokio::time::Instant::now() < deadline => {
                    self.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!(%error, attempt, action, "traffic write conflicted or failed; re-reading");
                    // Exponential back-off from 20 ms to 1 s, with jitter so competing writers drift apart.
                    let base = Duration::from_millis(20u64 << attempt.min(6)).min(Duration::from_secs(1));
                    let jitter = base.mul_f64(rand_fraction());
                    tokio::time::sleep(base + jitter).await;
                }
                Err(source) => {
                    return Err(TrafficError::Write {
                        action: action.to_owned(),
                        kind,
                        namespace: self.namespace.clone(),
                        name: name.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// Adds subset `<version>` (labels `version: <version>`) to the DestinationRule, keeping everything else.
    pub async fn add_subset(&self, version: &str) -> Result<(), TrafficError> {
        self.guarded_write("DestinationRule", &format!("add subset {version}"), |rule| {
            Ok(routes::add_subset_patch(rule, version))
        })
        .await
    }

    /// Removes subset `name` from the DestinationRule, if it is there.
    pub async fn remove_subset(&self, snapshot: &TrafficSnapshot, name: &str) -> Result<(), TrafficError> {
        self.guarded_write("DestinationRule", &format!("remove subset {name}"), |rule| {
            Ok(routes::remove_subset_patch(rule, name, &snapshot.subsets))
        })
        .await
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
        self.guarded_write("VirtualService", &format!("set the weight of {new_version} to {canary}"), |service| {
            let current = routes::current_weights(service, snapshot, new_version)?;
            if current == (expected_live, expected_new) {
                return Ok(None);
            }
            routes::weight_patch(service, snapshot, new_version, canary).map(Some)
        })
        .await?;
        let (live, new) = self.weights(snapshot, new_version).await?;
        if (live, new) != (expected_live, expected_new) {
            return Err(TrafficError::Verify {
                namespace: self.namespace.clone(),
                name: self.virtual_service.clone(),
                live,
                new,
                expected_live,
                expected_new,
            });
        }
        Ok((live, new))
    }

    /// Puts the managed route's destinations back exactly as found and removes the new version's subset when fledge
    /// added it.
    pub async fn restore(&self, snapshot: &TrafficSnapshot, new_version: &str) -> Result<(), TrafficError> {
        self.guarded_write("VirtualService", "restore the managed route", |service| {
            let route =
                routes::find_route(service, &snapshot.service, &snapshot.namespace, snapshot.route_name.as_deref());
            let unchanged = route.is_ok_and(|index| {
                service.pointer(&format!("/spec/http/{index}/route")) == Some(&snapshot.destinations)
            });
            if unchanged { Ok(None) } else { routes::restore_patch(service, snapshot).map(Some) }
        })
        .await?;
        let had_subset = snapshot.subsets.as_array().into_iter().flatten().any(|subset| subset["name"] == new_version);
        if !had_subset {
            self.remove_subset(snapshot, new_version).await?;
        }
        Ok(())
    }

    /// After promotion and cleanup: removes the old version's destination (the new one keeps the whole share) and
    /// its subset.
    pub async fn retire_live(&self, snapshot: &TrafficSnapshot, new_version: &str) -> Result<(), TrafficError> {
        self.guarded_write(
            "VirtualService",
            &format!("remove the destination of {}", snapshot.live_subset),
            |service| {
                let (live, new) = routes::current_weights(service, snapshot, new_version)?;
                let index =
                    routes::find_route(service, &snapshot.service, &snapshot.namespace, snapshot.route_name.as_deref());
                let live_present = index.is_ok_and(|index| {
                    service.pointer(&format!("/spec/http/{index}/route")).and_then(Value::as_array).is_some_and(
                        |entries| {
                            entries.iter().any(|entry| {
                                entry.pointer("/destination/subset").and_then(Value::as_str)
                                    == Some(snapshot.live_subset.as_str())
                            })
                        },
                    )
                });
                if !live_present && new == snapshot.share && live == 0 {
                    return Ok(None);
                }
                routes::retire_live_patch(service, snapshot, new_version).map(Some)
            },
        )
        .await?;
        self.remove_subset(snapshot, &snapshot.live_subset).await
    }
}
