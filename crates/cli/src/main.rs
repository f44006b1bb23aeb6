//! `fledge`: multi-stage canary releases on Kubernetes with Istio and Prometheus, driven from a pipeline.
//!
//! ```text
//! argv ──clap──▶ Command ──▶ commands::* ──▶ Outcome ──▶ exit code (docs/exit-codes.md)
//! ```

mod cli;
mod cluster;
mod commands;
mod error_report;
mod summary;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let arguments = cli::Arguments::parse();
    let outcome = commands::run(arguments.command);
    std::process::ExitCode::from(outcome.exit_code().0)
}
