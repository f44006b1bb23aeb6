//! Located problems in a manifest and how they are printed.
//!
//! ```text
//! examples/bad.yaml:7:14: `gate.timeout` is not a duration: unknown unit `min`
//!   |
//! 7 |     timeout: 5min
//!   |              ^^^^
//!   = hint: write a whole number and a unit: 500ms, 30s, 5m, 1h or 1h30m
//! ```
//!
//! The first line is always `FILE:LINE:COLUMN: message`, the form editors and CI annotators recognise.

use std::fmt::Write as _;

/// A 1-based line and column (in characters) in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

impl Location {
    /// The first character of the file, for problems with the file as a whole.
    pub const START: Location = Location { line: 1, column: 1 };

    pub(crate) fn from_saphyr(location: serde_saphyr::Location) -> Location {
        let clamp = |value: u64| u32::try_from(value).unwrap_or(u32::MAX).max(1);
        Location { line: clamp(location.line()), column: clamp(location.column()) }
    }
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The manifest is invalid; nothing may run.
    Error,
    /// The manifest is valid but probably not what was meant.
    Warning,
}

/// One problem in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the offending key or value starts.
    pub location: Location,
    /// How many characters to underline from the location.
    pub width: u32,
    /// What is wrong, in lowercase, naming the field.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `location`.
    pub fn error(location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, location, width: 1, message: message.into(), hint: None }
    }

    /// A warning at `location`.
    pub fn warning(location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(location, message) }
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// The same diagnostic underlining `width` characters.
    pub fn with_width(mut self, width: u32) -> Diagnostic {
        self.width = width.max(1);
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic for a terminal or CI log: `FILE:LINE:COLUMN: message`, the source line with the
    /// offending text underlined (URLs in it redacted), and the hint.
    pub fn render(&self, file_name: &str, source: &str) -> String {
        let Location { line, column } = self.location;
        let label = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        let mut out = format!("{file_name}:{line}:{column}: {label}{}\n", self.message);
        if let Some(source_line) = source.lines().nth(line as usize - 1) {
            // A URL's credentials, query and (for a webhook) path never reach a terminal or a CI log.
            let redacted = crate::redact::line(source_line.trim_end());
            let source_line = redacted.as_str();
            let gutter = " ".repeat(line.to_string().len());
            let line_length = source_line.chars().count();
            let start = (column as usize - 1).min(line_length);
            let width = (self.width as usize).min(line_length.saturating_sub(start)).max(1);
            let _ = writeln!(out, "{gutter} |");
            let _ = writeln!(out, "{line} | {source_line}");
            let _ = writeln!(out, "{gutter} | {}{}", " ".repeat(start), "^".repeat(width));
            if let Some(hint) = &self.hint {
                let _ = writeln!(out, "{gutter} = hint: {hint}");
            }
        } else if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }
}

/// Every problem found in one manifest, in file order. Returned when a manifest has at least one error; warnings
/// alone do not stop a release.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn new(mut diagnostics: Vec<Diagnostic>) -> Diagnostics {
        diagnostics.sort_by_key(|diagnostic| (diagnostic.location, diagnostic.severity));
        diagnostics.dedup();
        Diagnostics(diagnostics)
    }

    /// The diagnostics in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// How many errors (not warnings) there are.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|diagnostic| diagnostic.is_error()).count()
    }

    /// True when there are no diagnostics.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Renders every diagnostic, one block each, followed by a count line.
    pub fn render(&self, file_name: &str, source: &str) -> String {
        let mut out: String = self.0.iter().map(|diagnostic| diagnostic.render(file_name, source)).collect();
        let errors = self.error_count();
        let warnings = self.0.len() - errors;
        if errors > 0 {
            let _ = write!(out, "{file_name}: {errors} error{}", if errors == 1 { "" } else { "s" });
            if warnings > 0 {
                let _ = write!(out, ", {warnings} warning{}", if warnings == 1 { "" } else { "s" });
            }
            out.push('\n');
        }
        out
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_source_line_underline_and_hint() {
        let source = "gate:\n  timeout: 5min\n";
        let diagnostic = Diagnostic::error(Location { line: 2, column: 12 }, "`gate.timeout` is not a duration")
            .with_width(4)
            .with_hint("write 5m");
        assert_eq!(
            diagnostic.render("release.yaml", source),
            "release.yaml:2:12: `gate.timeout` is not a duration\n  |\n2 |   timeout: 5min\n  |            ^^^^\n  = hint: write 5m\n"
        );
    }

    #[test]
    fn underline_never_runs_past_the_line() {
        let diagnostic = Diagnostic::error(Location { line: 1, column: 3 }, "x").with_width(99);
        assert!(diagnostic.render("f", "a: b\n").ends_with("  |   ^^\n"));
        let outside = Diagnostic::error(Location { line: 9, column: 1 }, "x").with_hint("h");
        assert_eq!(outside.render("f", "a: b\n"), "f:9:1: x\n  = hint: h\n");
    }
}
