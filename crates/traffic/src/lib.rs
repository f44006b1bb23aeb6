//! fledge-traffic: shifting a service's traffic between two versions through its Istio VirtualService and
//! DestinationRule, without damaging anything else in them.
//!
//! ```text
//!  preflight ─▶ snapshot of the managed route and the subsets (what to restore)
//!  add subset <version> to the DestinationRule (labels version=<version>)
//!  set weight: JSON patch guarded by the resourceVersion read ─┬─ conflict: re-read, re-apply only fledge's change (30 s)
//!                                                              └─ read back and verify
//!  rollback: the managed route's destinations and the subsets as found
//!  promote:  100% new, then remove the old destination and subset
//! ```
//!
//! The pure part ([`routes`]) finds the managed route and computes the JSON patches; [`TrafficRouter`] reads and
//! writes the resources.

mod port;
mod router;
pub mod routes;

pub use port::{IstioRouting, SnapshotError};
pub use router::{ISTIO_GROUP, TrafficError, TrafficRouter};
pub use routes::{RouteError, TrafficSnapshot};
