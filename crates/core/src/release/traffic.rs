//! The traffic section of a release: which provider shifts the service's traffic, the resources it edits, and what
//! happens to routes pinned to the live version.

use crate::Duration;
use serde::{Deserialize, Serialize};

/// How fledge shifts the service's traffic: the provider and its resources, and what happens to references to the
/// live version outside the managed route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// The traffic provider and the resources it edits.
    pub provider: TrafficProvider,
    /// What a release does with routes outside the managed one that send to the live version.
    pub pinned_routes: PinnedRoutes,
}

/// The traffic provider: exactly one per release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TrafficProvider {
    /// An Istio VirtualService split over DestinationRule subsets.
    Istio(IstioTraffic),
    /// A Gateway API HTTPRoute split over one Service per version.
    GatewayApi(GatewayApiTraffic),
}

impl TrafficProvider {
    /// The provider's name in manifests and on the command line: `istio` or `gateway-api`.
    pub fn name(&self) -> &'static str {
        match self {
            TrafficProvider::Istio(_) => "istio",
            TrafficProvider::GatewayApi(_) => "gateway-api",
        }
    }
}

/// The Istio resources fledge shifts traffic with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioTraffic {
    /// VirtualService name.
    pub virtual_service: String,
    /// DestinationRule name.
    pub destination_rule: String,
    /// Name of the http route to manage; `None` means "the only route whose destinations are this service".
    pub route: Option<String>,
}

/// The Gateway API route fledge shifts traffic with, and how it names each version's Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiTraffic {
    /// HTTPRoute name.
    pub http_route: String,
    /// Name of the rule to manage; `None` means "the only rule whose backends are this service's".
    pub rule: Option<String>,
    /// The name of a version's Service: `{service}` and `{version}` replaced (default `{service}-{version}`).
    pub version_service: String,
    /// How long every parent of the route may take to accept a change before the change counts as refused.
    pub acceptance_timeout: Duration,
}

impl IstioTraffic {
    /// The defaults for `service`: the VirtualService and DestinationRule named like it, the only route for it.
    pub fn for_service(service: &str) -> IstioTraffic {
        IstioTraffic { virtual_service: service.to_owned(), destination_rule: service.to_owned(), route: None }
    }
}

impl GatewayApiTraffic {
    /// The default naming of the version Services.
    pub const DEFAULT_VERSION_SERVICE: &str = "{service}-{version}";
    /// The default acceptance timeout.
    pub const DEFAULT_ACCEPTANCE_TIMEOUT: Duration = Duration::from_secs(30);

    /// The defaults for `service`: the HTTPRoute named like it, the only rule for it, `{service}-{version}`.
    pub fn for_service(service: &str) -> GatewayApiTraffic {
        GatewayApiTraffic {
            http_route: service.to_owned(),
            rule: None,
            version_service: Self::DEFAULT_VERSION_SERVICE.to_owned(),
            acceptance_timeout: Self::DEFAULT_ACCEPTANCE_TIMEOUT,
        }
    }

    /// The name of the Service of `version` of `service`.
    pub fn service_name(&self, service: &str, version: &str) -> String {
        self.version_service.replace("{service}", service).replace("{version}", version)
    }
}

/// What a release does with routes, outside the managed one, that send to the live version's subset by name (a
/// header-matched debug route, a tcp route, another VirtualService of the host). Without a choice, promotion would
/// leave them pointing at a subset that no longer exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinnedRoutes {
    /// At promotion, before the old version is retired, point them at the new version.
    #[default]
    Move,
    /// Leave them on the old version, and keep the old version (its Deployment, running, and its subset) for them.
    Keep,
    /// Refuse the release at preflight (exit 3) while such routes exist.
    Refuse,
}

impl PinnedRoutes {
    /// The name used in manifests.
    pub fn manifest_name(self) -> &'static str {
        match self {
            PinnedRoutes::Move => "move",
            PinnedRoutes::Keep => "keep",
            PinnedRoutes::Refuse => "refuse",
        }
    }
}
