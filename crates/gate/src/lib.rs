//! fledge-gate: the crash-loop gate.
//!
//! ```text
//!  watch pods app=<service>,version=<version> ─┐
//!  watch Deployment <service>-<version> ───────┴─▶ assessment (every event, and a 250 ms tick for timers)
//!                                                    │ Healthy: every desired pod Ready for stableFor
//!                                                    │ Failed: classified at once, past maxRestarts, or past
//!                                                    │         pendingGrace; Timeout with every pod's state
//!                                                    ▼
//!                                                  diagnostics: reasons, exit codes, previous logs, Warning events
//! ```
//!
//! The assessment is pure ([`assessment`]): it sees pods and the Deployment as the watches deliver them and decides.
//! [`PodGate`] runs the watches; [`diagnostics`] explains a failure.

pub mod assessment;
pub mod diagnostics;
mod pod_gate;
mod port;

pub use assessment::{Assessment, Assessor, GatePolicy};
pub use diagnostics::Diagnostics;
pub use pod_gate::{ContinuousGate, GateError, GateOutcome, GateTarget, PodGate};
pub use port::{KubeHealthGate, Progress};
