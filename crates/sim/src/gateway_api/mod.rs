//! The Kubernetes Gateway API (`gateway.networking.k8s.io`) as Istio implements it: GatewayClass, Gateway and
//! HTTPRoute are served by the API and checked by their CRD schemas ([`schema`]); Istio's gateway controller
//! (`istio.io/gateway-controller`, [`controller`]) writes their status; the routes it processed program the data
//! plane ([`data_plane`]), which the mesh routes by with the Gateway API's matching rules ([`matching`]).
//!
//! ```text
//!  HTTPRoute write ─▶ schema (defaults, 422) ─▶ store ─▶ controller, after `statusDelayMilliseconds`:
//!                                                         ├─▶ status.parents (Accepted, ResolvedRefs): a /status
//!                                                         │   write, resourceVersion bumps, generation stays
//!                                                         └─▶ data plane: the spec that status describes
//!  traffic ─▶ mesh: a VirtualService for the host? ─▶ else routes accepted by Service S (GAMMA) ─▶ else routes
//!             accepted by the Gateway the request names ─▶ the rule of highest precedence ─▶ backend Services
//! ```
//!
//! A route's change takes effect only once its status is written, as in a real mesh, where istiod pushes the new
//! configuration to the proxies when it reports it in the status. Routes no parent accepted do not route.

pub mod controller;
pub mod data_plane;
pub mod matching;
pub mod schema;

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The API group.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// The controller name of Istio's Gateway API implementation: GatewayClasses naming it in `spec.controllerName` are
/// Istio's, and Istio signs its entries of route status with it.
pub const CONTROLLER_NAME: &str = "istio.io/gateway-controller";

/// How long the controller takes to process a change when the scenario does not say: real time, not scaled.
pub const DEFAULT_STATUS_DELAY: Duration = Duration::from_millis(300);

/// The cluster's domain, in the hostnames Istio reports (`reviews-v1.bookinfo.svc.cluster.local`).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The scenario's `gatewayAPI` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayApiSettings {
    /// Real milliseconds between a change the controller must process (a route's new generation, a backend that
    /// appeared) and its status write, which is also when the data plane takes the change; default 300.
    #[serde(default)]
    pub status_delay_milliseconds: Option<u64>,
}

impl GatewayApiSettings {
    /// The delay in force.
    pub fn status_delay(&self) -> Duration {
        self.status_delay_milliseconds.map_or(DEFAULT_STATUS_DELAY, Duration::from_millis)
    }
}

/// What a route's parentRef points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentKind {
    /// A Gateway (`gateway.networking.k8s.io`, the default): north-south traffic through a gateway.
    Gateway,
    /// A Service (core group): mesh traffic to that Service (GAMMA).
    Service,
    /// Anything else: not Istio's to handle here.
    Other,
}

/// One `spec.parentRefs` entry of a route, with the schema's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentReference {
    /// What it points at.
    pub kind: ParentKind,
    /// The parent's namespace: the entry's `namespace`, or the route's.
    pub namespace: String,
    /// The parent's name.
    pub name: String,
    /// The Gateway listener it names (`sectionName`), if any.
    pub section_name: Option<String>,
    /// The port it names, if any.
    pub port: Option<u64>,
}

impl ParentReference {
    /// Reads one entry of `spec.parentRefs` of a route in `route_namespace`.
    pub fn read(reference: &Value, route_namespace: &str) -> ParentReference {
        let group = reference.get("group").and_then(Value::as_str).unwrap_or(GROUP);
        let kind = reference.get("kind").and_then(Value::as_str).unwrap_or("Gateway");
        let kind = match (group, kind) {
            (GROUP, "Gateway") => ParentKind::Gateway,
            ("", "Service") => ParentKind::Service,
            _ => ParentKind::Other,
        };
        ParentReference {
            kind,
            namespace: reference.get("namespace").and_then(Value::as_str).unwrap_or(route_namespace).to_owned(),
            name: reference.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            section_name: reference.get("sectionName").and_then(Value::as_str).map(str::to_owned),
            port: reference.get("port").and_then(Value::as_u64),
        }
    }
}

/// One `backendRefs` entry of a route rule, with the schema's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendReference {
    /// The API group (`""`, the core group, by default).
    pub group: String,
    /// The kind (`Service` by default).
    pub kind: String,
    /// The backend's namespace: the entry's `namespace`, or the route's.
    pub namespace: String,
    /// The backend's name.
    pub name: String,
    /// The port, if any.
    pub port: Option<u64>,
    /// The relative weight (default 1; 0 sends it nothing).
    pub weight: u64,
}

impl BackendReference {
    /// Reads one entry of a rule's `backendRefs`, for a route in `route_namespace`.
    pub fn read(reference: &Value, route_namespace: &str) -> BackendReference {
        let text = |key: &str, default: &str| reference.get(key).and_then(Value::as_str).unwrap_or(default).to_owned();
        BackendReference {
            group: text("group", ""),
            kind: text("kind", "Service"),
            namespace: text("namespace", route_namespace),
            name: text("name", ""),
            port: reference.get("port").and_then(Value::as_u64),
            weight: reference.get("weight").and_then(Value::as_u64).unwrap_or(1),
        }
    }

    /// Whether it names a Service (core group, kind `Service`).
    pub fn is_service(&self) -> bool {
        self.group.is_empty() && self.kind == "Service"
    }

    /// The Service's hostname, as Istio names it in messages: `reviews-v1.bookinfo.svc.cluster.local`.
    pub fn hostname(&self) -> String {
        format!("{}.{}.svc.{CLUSTER_DOMAIN}", self.name, self.namespace)
    }
}

/// The backendRefs of one rule of a route in `route_namespace`, in order.
pub fn backend_references(rule: &Value, route_namespace: &str) -> Vec<BackendReference> {
    rule.get("backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|reference| BackendReference::read(reference, route_namespace))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_take_the_schema_defaults() {
        let gateway = ParentReference::read(&json!({ "name": "bookinfo-gateway", "sectionName": "http" }), "bookinfo");
        assert_eq!(gateway.kind, ParentKind::Gateway);
        assert_eq!((gateway.namespace.as_str(), gateway.section_name.as_deref()), ("bookinfo", Some("http")));
        let service = ParentReference::read(&json!({ "group": "", "kind": "Service", "name": "reviews" }), "bookinfo");
        assert_eq!(service.kind, ParentKind::Service);
        let other = ParentReference::read(&json!({ "group": "example.com", "kind": "Mesh", "name": "m" }), "b");
        assert_eq!(other.kind, ParentKind::Other);

        let backend = BackendReference::read(&json!({ "name": "reviews-v1", "port": 9080 }), "bookinfo");
        assert!(backend.is_service());
        assert_eq!((backend.weight, backend.port), (1, Some(9080)));
        assert_eq!(backend.hostname(), "reviews-v1.bookinfo.svc.cluster.local");
        assert_eq!(GatewayApiSettings::default().status_delay(), DEFAULT_STATUS_DELAY);
        let settings = GatewayApiSettings { status_delay_milliseconds: Some(50) };
        assert_eq!(settings.status_delay(), Duration::from_millis(50));
    }
}
