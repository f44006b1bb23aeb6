//! Printing errors for people: the whole chain of causes, once, on stderr.

use std::error::Error;
use std::fmt::Write as _;

/// `error: failed to read manifest x.yaml: No such file or directory (os error 2)`: the error and each source in
/// turn, joined with `: `.
pub(crate) fn render_chain(error: &dyn Error) -> String {
    let mut out = format!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read manifest release.yaml")]
    struct ReadFailed {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn prints_every_cause_once() {
        let error = ReadFailed { source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file") };
        assert_eq!(render_chain(&error), "error: failed to read manifest release.yaml: no such file");
    }
}
