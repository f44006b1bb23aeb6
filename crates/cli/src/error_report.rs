//! Printing errors for people: the whole chain of causes, once, on stderr.

use std::error::Error;

/// `error: failed to read manifest x.yaml: No such file or directory (os error 2)`: the error and each source in
/// turn ([`fledge_core::error_chain`]).
pub(crate) fn render_chain(error: &(dyn Error + 'static)) -> String {
    format!("error: {}", fledge_core::error_chain(error))
}
