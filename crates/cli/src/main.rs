//! `fledge`: multi-stage canary releases on Kubernetes with Istio and Prometheus, driven from a pipeline.
//!
//! ```text
//! argv ──clap──▶ Command ──▶ commands::* ──▶ Outcome ──▶ exit code (docs/exit-codes.md)
//! ```

mod adapters;
mod cli;
mod cluster_events;
mod commands;
mod error_report;
mod launch;
mod notify;
mod progress;
mod rehearsal;
mod reports;
mod simulation;
mod views;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let arguments = cli::Arguments::parse();
    progress::init_logging(arguments.log_format);
    let outcome = commands::run(arguments.command, arguments.log_format);
    std::process::ExitCode::from(outcome.exit_code().0)
}
