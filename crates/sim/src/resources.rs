//! The resource types the simulated API server serves, with what discovery says about each.

/// One served resource type.
#[derive(Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Versions served, preferred first. All versions share one storage and one schema.
    pub versions: &'static [&'static str],
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name used in URLs, e.g. `deployments`.
    pub plural: &'static str,
    /// Singular name, e.g. `deployment`.
    pub singular: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl, e.g. `deploy`.
    pub short_names: &'static [&'static str],
    /// Categories for kubectl, e.g. `all`.
    pub categories: &'static [&'static str],
    /// Subresources served besides the object itself.
    pub subresources: &'static [Subresource],
    /// Whether the object's `.status` is written through `/status` only (main writes keep the stored status).
    pub status_subresource: bool,
    /// Whether this is a custom resource (kept as sent; strategic merge patch unsupported, list items keep kind).
    pub custom: bool,
    /// Whether a spec change bumps `metadata.generation`.
    pub has_generation: bool,
    /// Whether clients may create, update and delete it (nodes, for example, are owned by the simulator).
    pub writable: bool,
}

/// A subresource of a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`
    Status,
    /// `/scale` (autoscaling/v1 Scale)
    Scale,
    /// `/log` (pods)
    Log,
}

impl Subresource {
    /// The URL segment.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Log => "log",
        }
    }
}

impl ResourceType {
    /// `group/version` for a version, or `version` in the core group.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() { version.to_owned() } else { format!("{}/{version}", self.group) }
    }

    /// The preferred version.
    pub fn preferred_version(&self) -> &'static str {
        self.versions[0]
    }

    /// `deployments.apps`, or `pods` in the core group: how error messages name the resource.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() { self.plural.to_owned() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// `Deployment.apps`, or `Pod`: how validation errors name the kind.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() { self.kind.to_owned() } else { format!("{}.{}", self.kind, self.group) }
    }

    /// The list kind, e.g. `DeploymentList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether the type serves a subresource.
    pub fn has(&self, subresource: Subresource) -> bool {
        self.subresources.contains(&subresource)
    }
}

const fn builtin(
    group: &'static str,
    versions: &'static [&'static str],
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        versions,
        kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        status_subresource: false,
        custom: false,
        has_generation: false,
        writable: true,
    }
}

/// Index of a resource type in [`RESOURCES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(pub usize);

impl ResourceId {
    /// The type's description.
    pub fn resource_type(self) -> &'static ResourceType {
        &RESOURCES[self.0]
    }
}

/// Namespaces.
pub const NAMESPACES: ResourceId = ResourceId(0);
/// Nodes.
pub const NODES: ResourceId = ResourceId(1);
/// Pods.
pub const PODS: ResourceId = ResourceId(2);
/// Services.
pub const SERVICES: ResourceId = ResourceId(3);
/// ConfigMaps.
pub const CONFIG_MAPS: ResourceId = ResourceId(4);
/// Secrets.
pub const SECRETS: ResourceId = ResourceId(5);
/// core/v1 Events.
pub const EVENTS: ResourceId = ResourceId(6);
/// Deployments.
pub const DEPLOYMENTS: ResourceId = ResourceId(7);
/// ReplicaSets.
pub const REPLICA_SETS: ResourceId = ResourceId(8);
/// Leases.
pub const LEASES: ResourceId = ResourceId(9);
/// Istio VirtualServices.
pub const VIRTUAL_SERVICES: ResourceId = ResourceId(10);
/// Istio DestinationRules.
pub const DESTINATION_RULES: ResourceId = ResourceId(11);
/// ServiceAccounts.
pub const SERVICE_ACCOUNTS: ResourceId = ResourceId(12);
/// RBAC Roles.
pub const ROLES: ResourceId = ResourceId(13);
/// RBAC ClusterRoles.
pub const CLUSTER_ROLES: ResourceId = ResourceId(14);
/// RBAC RoleBindings.
pub const ROLE_BINDINGS: ResourceId = ResourceId(15);
/// RBAC ClusterRoleBindings.
pub const CLUSTER_ROLE_BINDINGS: ResourceId = ResourceId(16);
/// batch/v1 Jobs (stored, never run).
pub const JOBS: ResourceId = ResourceId(17);
/// SelfSubjectAccessReviews: created, answered, never stored.
pub const SELF_SUBJECT_ACCESS_REVIEWS: ResourceId = ResourceId(18);
/// Gateway API GatewayClasses (cluster-scoped).
pub const GATEWAY_CLASSES: ResourceId = ResourceId(19);
/// Gateway API Gateways.
pub const GATEWAYS: ResourceId = ResourceId(20);
/// Gateway API HTTPRoutes.
pub const HTTP_ROUTES: ResourceId = ResourceId(21);

/// Every served resource type. The order matches the `ResourceId` constants above.
pub static RESOURCES: [ResourceType; 22] = [
    ResourceType {
        short_names: &["ns"],
        subresources: &[Subresource::Status],
        status_subresource: true,
        ..builtin("", &["v1"], "Namespace", "namespaces", "namespace", false)
    },
    ResourceType {
        short_names: &["no"],
        subresources: &[Subresource::Status],
        status_subresource: true,
        writable: false,
        ..builtin("", &["v1"], "Node", "nodes", "node", false)
    },
    ResourceType {
        short_names: &["po"],
        categories: &["all"],
        subresources: &[Subresource::Status, Subresource::Log],
        status_subresource: true,
        ..builtin("", &["v1"], "Pod", "pods", "pod", true)
    },
    ResourceType {
        short_names: &["svc"],
        categories: &["all"],
        subresources: &[Subresource::Status],
        status_subresource: true,
        ..builtin("", &["v1"], "Service", "services", "service", true)
    },
    ResourceType { short_names: &["cm"], ..builtin("", &["v1"], "ConfigMap", "configmaps", "configmap", true) },
    builtin("", &["v1"], "Secret", "secrets", "secret", true),
    ResourceType { short_names: &["ev"], ..builtin("", &["v1"], "Event", "events", "event", true) },
    ResourceType {
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[Subresource::Status, Subresource::Scale],
        status_subresource: true,
        has_generation: true,
        ..builtin("apps", &["v1"], "Deployment", "deployments", "deployment", true)
    },
    ResourceType {
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[Subresource::Status, Subresource::Scale],
        status_subresource: true,
        has_generation: true,
        ..builtin("apps", &["v1"], "ReplicaSet", "replicasets", "replicaset", true)
    },
    builtin("coordination.k8s.io", &["v1"], "Lease", "leases", "lease", true),
    ResourceType {
        short_names: &["vs"],
        categories: &["istio-io", "networking-istio-io"],
        custom: true,
        has_generation: true,
        subresources: &[Subresource::Status],
        status_subresource: true,
        ..builtin(
            "networking.istio.io",
            &["v1", "v1beta1", "v1alpha3"],
            "VirtualService",
            "virtualservices",
            "virtualservice",
            true,
        )
    },
    ResourceType {
        short_names: &["dr"],
        categories: &["istio-io", "networking-istio-io"],
        custom: true,
        has_generation: true,
        subresources: &[Subresource::Status],
        status_subresource: true,
        ..builtin(
            "networking.istio.io",
            &["v1", "v1beta1", "v1alpha3"],
            "DestinationRule",
            "destinationrules",
            "destinationrule",
            true,
        )
    },
    ResourceType {
        short_names: &["sa"],
        ..builtin("", &["v1"], "ServiceAccount", "serviceaccounts", "serviceaccount", true)
    },
    builtin("rbac.authorization.k8s.io", &["v1"], "Role", "roles", "role", true),
    builtin("rbac.authorization.k8s.io", &["v1"], "ClusterRole", "clusterroles", "clusterrole", false),
    builtin("rbac.authorization.k8s.io", &["v1"], "RoleBinding", "rolebindings", "rolebinding", true),
    builtin(
        "rbac.authorization.k8s.io",
        &["v1"],
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
    ),
    ResourceType {
        categories: &["all"],
        subresources: &[Subresource::Status],
        status_subresource: true,
        has_generation: true,
        ..builtin("batch", &["v1"], "Job", "jobs", "job", true)
    },
    builtin(
        "authorization.k8s.io",
        &["v1"],
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        false,
    ),
    ResourceType {
        short_names: &["gc"],
        categories: &["gateway-api"],
        custom: true,
        has_generation: true,
        subresources: &[Subresource::Status],
        status_subresource: true,
        ..builtin(
            "gateway.networking.k8s.io",
            &["v1", "v1beta1"],
            "GatewayClass",
            "gatewayclasses",
            "gatewayclass",
            false,
        )
    },
    ResourceType {
        short_names: &["gtw"],
        categories: &["gateway-api"],
        custom: true,
        has_generation: true,
        subresources: &[Subresource::Status],
        status_subresource: true,
        ..builtin("gateway.networking.k8s.io", &["v1", "v1beta1"], "Gateway", "gateways", "gateway", true)
    },
    ResourceType {
        categories: &["gateway-api"],
        custom: true,
        has_generation: true,
        subresources: &[Subresource::Status],
        status_subresource: true,
        ..builtin("gateway.networking.k8s.io", &["v1", "v1beta1"], "HTTPRoute", "httproutes", "httproute", true)
    },
];

/// The type served at `group`/`version`/`plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<ResourceId> {
    RESOURCES
        .iter()
        .position(|resource| {
            resource.group == group && resource.plural == plural && resource.versions.contains(&version)
        })
        .map(ResourceId)
}

/// Every type, with its id.
pub fn all() -> impl Iterator<Item = (ResourceId, &'static ResourceType)> {
    RESOURCES.iter().enumerate().map(|(index, resource)| (ResourceId(index), resource))
}

/// The API groups served, in discovery order, with their versions (preferred first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for resource in RESOURCES.iter().filter(|resource| !resource.group.is_empty()) {
        match groups.iter_mut().find(|(group, _)| *group == resource.group) {
            Some((_, versions)) => {
                for version in resource.versions {
                    if !versions.contains(version) {
                        versions.push(version);
                    }
                }
            }
            None => groups.push((resource.group, resource.versions.to_vec())),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_point_at_their_types() {
        assert_eq!(PODS.resource_type().plural, "pods");
        assert_eq!(DEPLOYMENTS.resource_type().plural, "deployments");
        assert_eq!(VIRTUAL_SERVICES.resource_type().kind, "VirtualService");
        assert_eq!(DESTINATION_RULES.resource_type().kind, "DestinationRule");
        assert_eq!(LEASES.resource_type().group, "coordination.k8s.io");
        assert_eq!(find("networking.istio.io", "v1beta1", "virtualservices"), Some(VIRTUAL_SERVICES));
        assert_eq!(find("apps", "v1", "pods"), None);
        assert_eq!(find("gateway.networking.k8s.io", "v1", "httproutes"), Some(HTTP_ROUTES));
        assert_eq!(find("gateway.networking.k8s.io", "v1beta1", "gateways"), Some(GATEWAYS));
        assert_eq!(GATEWAY_CLASSES.resource_type().kind, "GatewayClass");
        assert!(!GATEWAY_CLASSES.resource_type().namespaced);
        assert_eq!(RESOURCES.len(), HTTP_ROUTES.0 + 1, "the constants cover every type");
    }
}
