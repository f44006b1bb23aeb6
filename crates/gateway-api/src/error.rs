//! What can fail when fledge routes through the Gateway API: one variant per failed operation, each with the
//! route, Service or parent it concerns.

use crate::acceptance::Refusal;
use crate::router::{GATEWAY_GROUP, ISTIO_GROUP};
use crate::rule::RuleError;

/// The kinds of object the router reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An HTTPRoute.
    HttpRoute,
    /// A Service.
    Service,
    /// An Istio VirtualService (only read).
    VirtualService,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Kind::HttpRoute => "HTTPRoute",
            Kind::Service => "Service",
            Kind::VirtualService => "VirtualService",
        })
    }
}

/// A failed Gateway API traffic operation.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The release's traffic is not routed by the Gateway API.
    #[error("the release's traffic provider is {provider}, not gateway-api")]
    NotGatewayApi {
        /// The provider's name.
        provider: &'static str,
    },
    /// The Gateway API is not served.
    #[error("failed to find the Gateway API ({GATEWAY_GROUP}) in the cluster; are its CRDs installed?")]
    Discover(#[source] kube::Error),
    /// Istio's API could not be discovered (to check no VirtualService routes the service too).
    #[error("failed to discover Istio's {ISTIO_GROUP} API")]
    DiscoverIstio(#[source] kube::Error),
    /// The live version's Service is gone, so restoring the route would send its traffic to nothing.
    #[error(
        "Service {namespace}/{name} of the live version is gone: restoring the route to it would send the traffic to nothing; the route is left as it is"
    )]
    LiveServiceGone {
        /// Namespace.
        namespace: String,
        /// The Service.
        name: String,
    },
    /// Reading an object failed.
    #[error("failed to read {kind} {namespace}/{name}")]
    Read {
        /// What was read.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// An object does not exist.
    #[error("unable to find {kind} {namespace}/{name}")]
    NotFound {
        /// What was looked for.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// Listing objects of the namespace failed.
    #[error("failed to list the {kind}s of {namespace}")]
    List {
        /// What was listed.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The route does not allow the release.
    #[error("unable to manage traffic of {service} in {namespace}")]
    Rule {
        /// Service.
        service: String,
        /// Namespace.
        namespace: String,
        /// Why.
        #[source]
        source: RuleError,
    },
    /// The service is routed by a VirtualService too.
    #[error(
        "{service} in {namespace} is routed by HTTPRoute {http_route} and by VirtualService {}: Istio leaves the mix undefined; route the service with one of them",
        virtual_services.join(", ")
    )]
    RoutedByBoth {
        /// Service.
        service: String,
        /// Namespace.
        namespace: String,
        /// The HTTPRoute.
        http_route: String,
        /// The VirtualServices for the service's host.
        virtual_services: Vec<String>,
    },
    /// A write failed for good, or kept conflicting for longer than the write budget (30 s).
    #[error("failed to {action} in {kind} {namespace}/{name}")]
    Write {
        /// What was being done.
        action: String,
        /// What was written.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The last API error.
        #[source]
        source: kube::Error,
    },
    /// A parent refused the route.
    #[error("HTTPRoute {namespace}/{name} is refused {action}: {refusal}")]
    Refused {
        /// What was being done.
        action: String,
        /// Namespace.
        namespace: String,
        /// The HTTPRoute.
        name: String,
        /// The parent's refusal.
        refusal: Refusal,
    },
    /// The parents did not judge the route in time.
    #[error("HTTPRoute {namespace}/{name} was not accepted within {timeout} after fledge went to {action}: {waiting}")]
    NotAccepted {
        /// What was being done.
        action: String,
        /// Namespace.
        namespace: String,
        /// The HTTPRoute.
        name: String,
        /// The acceptance timeout.
        timeout: fledge_core::Duration,
        /// What was still awaited.
        waiting: String,
    },
    /// The weights read back are not what was written.
    #[error(transparent)]
    Verify(#[from] fledge_core::WeightsNotAsWritten),
}
