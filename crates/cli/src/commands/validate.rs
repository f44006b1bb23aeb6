//! `fledge validate FILE...`: every problem of every file on stderr, a summary of each valid release on stdout.

use crate::cli::OutputFormat;
use crate::error_report::render_chain;
use crate::views::validate as summary;
use fledge_core::Outcome;
use fledge_manifest::LoadError;
use std::io::Write as _;
use std::path::PathBuf;

pub(super) fn run(files: &[PathBuf], output: OutputFormat) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let mut all_valid = true;
    let mut json_results = Vec::new();
    for path in files {
        let name = path.display().to_string();
        match fledge_manifest::load(path) {
            Ok(validated) => {
                if !validated.warnings.is_empty() {
                    let source = std::fs::read_to_string(path).unwrap_or_default();
                    let _ = write!(stderr, "{}", validated.warnings.render(&name, &source));
                }
                match output {
                    OutputFormat::Text => {
                        let _ = write!(stdout, "{}", summary::render(&name, &validated.release));
                    }
                    OutputFormat::Json => json_results.push(serde_json::json!({
                        "file": name,
                        "release": validated.release,
                        "warnings": validated.warnings.iter().map(|warning| serde_json::json!({
                            "line": warning.location.line,
                            "column": warning.location.column,
                            "message": warning.message,
                            "hint": warning.hint,
                        })).collect::<Vec<_>>(),
                    })),
                }
            }
            Err(LoadError::Invalid { source_text, diagnostics, .. }) => {
                all_valid = false;
                let _ = write!(stderr, "{}", diagnostics.render(&name, &source_text));
            }
            Err(error) => {
                all_valid = false;
                let _ = writeln!(stderr, "{}", render_chain(&error));
            }
        }
    }
    if output == OutputFormat::Json {
        let text = serde_json::to_string_pretty(&json_results).expect("releases always serialize");
        let _ = writeln!(stdout, "{text}");
    }
    if stdout.flush().is_err() {
        return Outcome::InternalError;
    }
    if all_valid { super::SUCCEEDED } else { Outcome::InvalidInput }
}
