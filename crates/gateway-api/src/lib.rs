//! fledge-gateway-api: shifting a service's traffic between two versions through a Gateway API HTTPRoute, one
//! Service per version, without damaging anything else in the route.
//!
//! ```text
//!  preflight ─▶ the managed rule's backendRefs as found (what to restore); the live Service selects version=<live>;
//!               every parent Accepted; no VirtualService for the service; references pinned to the live Service
//!  add version: Service <service>-<version> (a copy of the live one) ─▶ backendRef at weight 0
//!  set weight: JSON patch guarded by the resourceVersion read ─▶ read back ─▶ every parent Accepted and
//!              ResolvedRefs at the new generation (refused: the step fails with the parent's message)
//!  rollback: the rule's backendRefs as found; the new Service deleted
//!  promote:  100% new; pinned references moved (or the old version kept); the rule as found, naming the new
//!            Service; the old Service deleted
//! ```
//!
//! The pure parts ([`rule`]: the managed rule; [`backends`]: its backendRefs' weights and patches; [`acceptance`]: the parents' verdict; [`pinned`]: references to the
//! live Service; [`version_service`]: the new version's Service) decide and compute the JSON patches;
//! [`GatewayRouter`] reads and writes the objects.

pub mod acceptance;
pub mod backends;
mod error;
pub mod pinned;
mod port;
mod router;
pub mod rule;
pub mod version_service;

pub use error::{GatewayError, Kind};
pub use port::{GatewayApiRouting, SnapshotError};
pub use router::{GATEWAY_GROUP, GatewayRouter};
pub use rule::{RuleError, RuleSnapshot};
