//! One module per command; each returns the [`Outcome`] that becomes the exit code.

mod gate;
mod schema;
mod sim;
mod validate;

use crate::cli::Command;
use fledge_core::Outcome;

/// The outcome of a command that did what was asked. It shares exit code 0 with a promoted release.
pub(crate) const SUCCEEDED: Outcome = Outcome::Promoted;

/// Runs a command to its outcome.
pub(crate) fn run(command: Command) -> Outcome {
    match command {
        Command::Validate { files, output } => validate::run(&files, output),
        Command::Schema => schema::run(),
        Command::Gate { file, no_deploy, cluster } => gate::run(&file, no_deploy, &cluster),
        Command::Sim { kubeconfig, port, scenario } => sim::run(&kubeconfig, port, scenario.as_deref()),
    }
}
