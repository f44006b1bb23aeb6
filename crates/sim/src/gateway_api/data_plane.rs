//! What the mesh's proxies were last programmed with from the Gateway API: for each HTTPRoute, the spec the gateway
//! controller last processed (the one its status describes) and the parents that accepted it. The controller writes
//! it when it writes a route's status; the mesh reads it for every tick of traffic. A route changed since, but not
//! yet processed, still routes by its old spec, as in a real mesh before istiod's push.

use super::ParentKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A parent that accepted a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedParent {
    /// A Gateway or a Service.
    pub kind: ParentKind,
    /// The parent's namespace.
    pub namespace: String,
    /// The parent's name.
    pub name: String,
    /// The Gateway's listeners the route attached to (none for a Service).
    pub listeners: Vec<String>,
}

/// One HTTPRoute as the controller last processed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgrammedRoute {
    /// The route's namespace.
    pub namespace: String,
    /// The route's name.
    pub name: String,
    /// Its `metadata.creationTimestamp`: the oldest route wins ties of precedence.
    pub creation_timestamp: String,
    /// The `metadata.generation` processed.
    pub generation: i64,
    /// The `spec` processed.
    pub spec: Value,
    /// The parents that accepted it; a route no parent accepted does not route.
    pub parents: Vec<AttachedParent>,
}

impl ProgrammedRoute {
    /// Whether the parent `kind` `namespace/name` accepted the route.
    pub fn attached_to(&self, kind: ParentKind, namespace: &str, name: &str) -> bool {
        self.parents.iter().any(|parent| parent.kind == kind && parent.namespace == namespace && parent.name == name)
    }

    /// The route's rules.
    pub fn rules(&self) -> &[Value] {
        self.spec.get("rules").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
    }

    /// The route's `spec.hostnames`.
    pub fn hostnames(&self) -> Vec<&str> {
        self.spec.get("hostnames").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
    }
}

/// The HTTPRoutes the data plane routes by, by `(namespace, name)`: written by the gateway controller, read by the
/// mesh.
#[derive(Debug, Default)]
pub struct DataPlane {
    routes: Mutex<BTreeMap<(String, String), Arc<ProgrammedRoute>>>,
}

impl DataPlane {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Arc<ProgrammedRoute>>> {
        self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The route `namespace/name` as programmed, if it is.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<ProgrammedRoute>> {
        self.lock().get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Programs a route (replacing what it was programmed with before).
    pub fn program(&self, route: ProgrammedRoute) {
        let key = (route.namespace.clone(), route.name.clone());
        self.lock().insert(key, Arc::new(route));
    }

    /// Removes a deleted route.
    pub fn withdraw(&self, namespace: &str, name: &str) {
        self.lock().remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Every programmed route, by namespace and name.
    pub fn routes(&self) -> Vec<Arc<ProgrammedRoute>> {
        self.lock().values().cloned().collect()
    }

    /// The routes of `namespace` that Service `namespace/service` accepted (GAMMA: mesh traffic to the Service).
    pub fn routes_for_service(&self, namespace: &str, service: &str) -> Vec<Arc<ProgrammedRoute>> {
        self.lock()
            .values()
            .filter(|route| route.namespace == namespace && route.attached_to(ParentKind::Service, namespace, service))
            .cloned()
            .collect()
    }

    /// The routes, of any namespace, that Gateway `namespace/gateway` accepted.
    pub fn routes_for_gateway(&self, namespace: &str, gateway: &str) -> Vec<Arc<ProgrammedRoute>> {
        self.lock()
            .values()
            .filter(|route| route.attached_to(ParentKind::Gateway, namespace, gateway))
            .cloned()
            .collect()
    }
}
