//! `fledge`: multi-stage canary releases on Kubernetes with Istio and Prometheus, driven from a pipeline.
//!
//! ```text
//! argv ──clap──▶ Command ──▶ commands::* ──▶ Outcome ──▶ exit code (docs/exit-codes.md)
//! ```

mod adapters;
mod api_retry;
mod cli;
mod cluster;
mod commands;
mod error_report;
mod notify;
mod rehearsal;
mod release_report;
mod report;
mod simulation;
mod summary;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let arguments = cli::Arguments::parse();
    report::init_logging(arguments.log_format);
    let outcome = commands::run(arguments.command, arguments.log_format);
    std::process::ExitCode::from(outcome.exit_code().0)
}
