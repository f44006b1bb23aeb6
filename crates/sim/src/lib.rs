//! fledge-sim: a simulated Kubernetes API server with a deployment controller, simulated kubelet behaviours and
//! synthetic Istio telemetry. It is the world fledge is tested in, and the engine of `fledge demo`.
//!
//! ```text
//!  kubectl / kube::Client ──HTTP──▶ api (discovery, CRUD, watch, patch, apply, tables, logs)
//!                                     │            ▲ faults (errors, latency, cut watches, 410)
//!                                     ▼            │
//!                                   store ◀──── cluster: deployment → replicaset → pods, scheduler,
//!                                     │                  kubelet behaviours, garbage collector, events
//!                                     ▼
//!                                   mesh: requests split by VirtualService weights ──▶ /metrics (Istio)
//! ```

pub mod admission;
pub mod clock;
pub mod istio;
pub mod patch;
pub mod resources;
pub mod status;
pub mod store;
