//! `fledge completions SHELL` and `fledge man`: shell completions and a man page, generated from the command line
//! itself (clap_complete, clap_mangen), so they never fall behind it.

use crate::cli::Arguments;
use clap::CommandFactory as _;
use fledge_core::Outcome;
use std::io::Write as _;

/// Writes the completion script of `shell` to stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut command = Arguments::command();
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(shell, &mut command, "fledge", &mut stdout);
    super::SUCCEEDED
}

/// Writes the man page (roff) to stdout.
pub(super) fn man() -> Outcome {
    let mut page = Vec::new();
    if let Err(error) = clap_mangen::Man::new(Arguments::command()).render(&mut page) {
        let _ = writeln!(std::io::stderr().lock(), "failed to render the man page: {error}");
        return Outcome::InternalError;
    }
    let _ = std::io::stdout().lock().write_all(&page);
    super::SUCCEEDED
}
