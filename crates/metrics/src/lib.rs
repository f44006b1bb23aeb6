//! fledge-metrics: the Prometheus adapter. It asks Prometheus about the new and the previous version and turns the
//! answers into check results; fledge-core judges them.
//!
//! ```text
//!  Release.analysis ──▶ Analyzer ──PromQL (queries)──▶ PrometheusClient ──HTTP──▶ Prometheus
//!                         │  ◀── Answer: empty │ value │ several series │ QueryError
//!                         ▼
//!                      CheckResult (Pass │ Fail │ NoData │ Error, value, threshold, query, time) ──▶ RoundVerdict
//! ```
//!
//! "Bad", "no data" and "could not ask" stay apart: a breached threshold is Fail; no series, NaN or fewer than
//! `minRequests` requests is NoData; anything that kept Prometheus from answering is Error, after retries within
//! the caller's deadline, and is never a pass.

pub mod checks;
pub mod data_plane;
mod port;
pub mod preflight;
pub mod prometheus;
pub mod queries;
mod round_noise;

pub use checks::{AnalysisTarget, Analyzer};
pub use fledge_core::analysis::Round;
pub use port::PrometheusAnalysis;
pub use preflight::{PreflightError, Rejection};
pub use prometheus::{Answer, ClientError, PrometheusClient, QueryError};
pub use queries::Workload;
