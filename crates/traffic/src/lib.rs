//! fledge-traffic: shifting a service's traffic between two versions through its Istio VirtualService and
//! DestinationRule, without damaging anything else in them.
//!
//! ```text
//!  preflight ─▶ snapshot of the managed route and the subsets (what to restore); routes pinned to the live subset;
//!              no HTTPRoute routing the service too
//!  add subset <version> to the DestinationRule: a copy of the live subset (policy and all), version=<version>
//!  set weight: JSON patch guarded by the resourceVersion read ─┬─ conflict: re-read, re-apply only fledge's change (30 s)
//!                                                              └─ read back and verify
//!  rollback: the managed route's destinations and the subsets as found
//!  promote:  100% new; pinned routes moved (or the old version kept); the old destination and subset removed
//! ```
//!
//! The pure parts ([`routes`]: the managed route; [`subsets`]: the DestinationRule; [`pinned`]: routes pinned to the
//! live version; [`http_routes`]: HTTPRoutes of the service) find what to change and compute the JSON patches; [`TrafficRouter`] reads and writes the resources.

pub mod http_routes;
pub mod pinned;
mod port;
mod router;
pub mod routes;
pub mod subsets;

pub use pinned::PinnedRoute;
pub use port::{IstioRouting, SnapshotError};
pub use router::{ISTIO_GROUP, Resource, TrafficError, TrafficRouter};
pub use routes::{RouteError, TrafficSnapshot};
