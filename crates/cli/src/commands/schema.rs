//! `fledge schema`: the manifest's JSON Schema on stdout.

use crate::error_report::render_chain;
use fledge_core::Outcome;
use std::io::Write as _;

pub(super) fn run() -> Outcome {
    let schema = fledge_manifest::json_schema();
    let text = serde_json::to_string_pretty(&schema).expect("a JSON value always serializes");
    match writeln!(std::io::stdout().lock(), "{text}") {
        Ok(()) => super::SUCCEEDED,
        Err(error) => {
            let _ = writeln!(std::io::stderr().lock(), "{}", render_chain(&error));
            Outcome::InternalError
        }
    }
}
