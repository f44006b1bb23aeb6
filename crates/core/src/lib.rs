//! fledge's domain, with no I/O: what a release is and how it ends.
//!
//! ```text
//!  manifest ──parse──▶ Release ──▶ runner ──▶ Phase … Phase ──▶ Outcome ──▶ exit code
//!                        │                      │
//!                        ├─ Weight, Duration    ├─ GateFailureKind (pod health)
//!                        └─ Percentage, names   └─ CheckVerdict (metrics)
//! ```
//!
//! Every other fledge crate shares these types. Nothing here talks to a network, a file system or a clock, so the
//! most important decisions of a release can be tested without any of them.

pub mod analysis;
pub mod counted_checks;
pub mod duration;
mod error_chain;
pub mod names;
pub mod notification;
pub mod outcome;
pub mod percentage;
pub mod phase;
pub mod ports;
pub mod query_template;
pub mod release;
pub mod round_noise;
pub mod sequential;
pub mod state;
pub mod statistics;
pub mod verdict;
pub mod weight;

pub use duration::Duration;
pub use error_chain::error_chain;

/// The field manager of every write fledge makes to a cluster (server-side apply and patches), so `managedFields`
/// shows what fledge owns.
pub const FIELD_MANAGER: &str = "fledge";
pub use outcome::{ExitCode, Outcome, RollbackReason};
pub use percentage::Percentage;
pub use phase::Phase;
pub use query_template::{QueryTemplate, TemplateError, TemplateValues};
pub use release::Release;
pub use verdict::{CheckVerdict, GateFailure, GateFailureKind};
pub use weight::{Weight, WeightsNotAsWritten};
