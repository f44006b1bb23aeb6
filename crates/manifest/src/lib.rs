//! Release manifests: YAML in, a validated [`fledge_core::Release`] out, or every problem with its location.
//!
//! ```text
//! text ──document──▶ located YAML nodes ──sections──▶ typed values, defaults ──rules──▶ Release
//!        (bounded)                          │ (field tables: unknown fields, ranges, hints)
//!                                           └──────────────▶ Diagnostics: FILE:LINE:COLUMN: message + hint
//! ```
//!
//! Nothing here touches a cluster, the network or (apart from [`load`]) the file system: a manifest that fails
//! here stops a release before it starts.

mod diagnostic;
mod document;
mod fields;
mod reader;
mod redact;
mod schema;
mod sections;
mod suggest;

pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use document::MAX_MANIFEST_BYTES;
pub use schema::json_schema;
pub use sections::{API_VERSION, KIND};

use fledge_core::Release;
use std::path::{Path, PathBuf};

/// A manifest that passed validation, with any warnings found on the way.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The release it describes.
    pub release: Release,
    /// Warnings: valid, but probably not what was meant.
    pub warnings: Diagnostics,
}

/// Parses and validates a manifest's text. On failure every problem of the file is returned, in file order.
pub fn parse(source: &str) -> Result<Validated, Diagnostics> {
    let root = document::parse_document(source).map_err(|diagnostic| Diagnostics::new(vec![diagnostic]))?;
    let mut reader = reader::Reader::default();
    let release = sections::read_release(&mut reader, &root);
    let has_errors = reader.diagnostics.iter().any(Diagnostic::is_error);
    match release {
        Some(release) if !has_errors => Ok(Validated { release, warnings: Diagnostics::new(reader.diagnostics) }),
        _ => {
            debug_assert!(has_errors, "an invalid release must come with at least one error");
            if !has_errors {
                reader.diagnostics.push(Diagnostic::error(Location::START, "the manifest is invalid"));
            }
            Err(Diagnostics::new(reader.diagnostics))
        }
    }
}

/// Why a manifest file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read manifest {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest {} is larger than the limit of {MAX_MANIFEST_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size as the file system reports it (at least the limit plus one for streams).
        size: u64,
    },
    /// The file is not UTF-8 text.
    #[error("manifest {} is not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The manifest is invalid.
    #[error("manifest {} is invalid ({} errors)", path.display(), diagnostics.error_count())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Its text, for rendering the diagnostics.
        source_text: String,
        /// Every problem found.
        diagnostics: Diagnostics,
    },
}

/// Reads a manifest file (at most [`MAX_MANIFEST_BYTES`]) and validates it.
pub fn load(path: &Path) -> Result<Validated, LoadError> {
    use std::io::Read as _;
    let read_error = |source| LoadError::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read_error)?;
    // Read one byte past the limit through `take`, so a huge file or an endless stream (a pipe, /dev/zero) is
    // refused without being read into memory.
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |metadata| metadata.len());
        return Err(LoadError::TooLarge { path: path.to_owned(), size });
    }
    let source_text = String::from_utf8(bytes).map_err(|_| LoadError::NotText { path: path.to_owned() })?;
    parse(&source_text).map_err(|diagnostics| LoadError::Invalid { path: path.to_owned(), source_text, diagnostics })
}
