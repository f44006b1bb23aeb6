//! One module per command; each returns the [`Outcome`] that becomes the exit code.

mod analyze;
mod completions;
mod demo;
mod gate;
mod plan;
mod rehearse;
mod release;
mod schema;
mod sim;
mod status;
mod validate;
mod wait;

use crate::cli::{Command, LogFormat};
use fledge_core::Outcome;

/// The outcome of a command that did what was asked. It shares exit code 0 with a promoted release.
pub(crate) const SUCCEEDED: Outcome = Outcome::Promoted;

/// Runs a command to its outcome.
pub(crate) fn run(command: Command, log_format: LogFormat) -> Outcome {
    match command {
        Command::Validate { files, output } => validate::run(&files, output),
        Command::Schema => schema::run(),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man => completions::man(),
        Command::Run { target, approve, reports } => {
            release::run(&target.file, approve, &reports, &target.cluster, log_format)
        }
        Command::Abort { target } => release::abort(&target.file, &target.cluster, log_format),
        Command::Plan { target } => plan::run(&target.file, &target.cluster),
        Command::Demo { gateway_api, prometheus_url, metrics_port } => {
            demo::run(gateway_api, prometheus_url, metrics_port, log_format)
        }
        Command::Rehearse { file, scenario, all, rps, speed, provider, repeat, report_html, output } => {
            rehearse::run(&file, scenario.as_deref(), all, rps, speed, provider, repeat, report_html.as_deref(), output)
        }
        Command::Status { target, output } => status::run(&target.file, output, &target.cluster),
        Command::Wait { target, timeout } => wait::run(&target.file, timeout, &target.cluster, log_format),
        Command::Gate { target, no_deploy } => gate::run(&target.file, no_deploy, &target.cluster),
        Command::Analyze { file, previous_version, since, output } => {
            analyze::run(&file, previous_version.as_deref(), since, output)
        }
        Command::Sim { kubeconfig, port, scenario, service_accounts } => {
            sim::run(&kubeconfig, port, scenario.as_deref(), &service_accounts)
        }
    }
}

/// Loads and validates one manifest; on failure prints why on stderr and returns the invalid-input outcome.
pub(crate) fn load_release(file: &std::path::Path) -> Result<fledge_core::Release, Outcome> {
    use std::io::Write as _;
    let name = file.display().to_string();
    match fledge_manifest::load(file) {
        Ok(validated) => Ok(validated.release),
        Err(fledge_manifest::LoadError::Invalid { source_text, diagnostics, .. }) => {
            let _ = write!(std::io::stderr().lock(), "{}", diagnostics.render(&name, &source_text));
            Err(Outcome::InvalidInput)
        }
        Err(error) => {
            let _ = writeln!(std::io::stderr().lock(), "{}", crate::error_report::render_chain(&error));
            Err(Outcome::InvalidInput)
        }
    }
}

/// Runs `work` to its outcome on a new async runtime. An error is printed once on stderr, with its causes, and
/// becomes the outcome `outcome_of` gives it.
pub(crate) fn block_on<E: std::error::Error + 'static>(
    work: impl std::future::Future<Output = Result<Outcome, E>>,
    outcome_of: impl FnOnce(&E) -> Outcome,
) -> Outcome {
    use std::io::Write as _;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            let error = RuntimeError(error);
            let _ = writeln!(std::io::stderr().lock(), "{}", crate::error_report::render_chain(&error));
            return Outcome::InternalError;
        }
    };
    match runtime.block_on(work) {
        Ok(outcome) => outcome,
        Err(error) => {
            let _ = writeln!(std::io::stderr().lock(), "{}", crate::error_report::render_chain(&error));
            outcome_of(&error)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("failed to start the async runtime")]
struct RuntimeError(#[source] std::io::Error);
