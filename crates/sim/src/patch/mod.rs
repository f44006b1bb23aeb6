//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902, `test` included), strategic merge patch, and
//! server-side apply.

pub mod apply;
pub mod field_set;
pub mod strategic;

use crate::api_error::ApiError;
use crate::resources::ResourceType;
use serde_json::Value;

/// The patch formats, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (also `+json` and `+cbor` in newer servers; YAML covers JSON)
    Apply,
}

const ACCEPTED: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/strategic-merge-patch+json",
];

impl PatchType {
    /// The patch type of a Content-Type header, if the resource accepts it.
    pub fn from_content_type(content_type: &str, resource: &ResourceType) -> Result<PatchType, ApiError> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        let patch_type = match media_type {
            "application/merge-patch+json" => PatchType::Merge,
            "application/json-patch+json" => PatchType::Json,
            "application/strategic-merge-patch+json" if !resource.custom => PatchType::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
            _ => {
                let accepted: Vec<&str> = ACCEPTED
                    .iter()
                    .copied()
                    .filter(|accepted| !(resource.custom && accepted.contains("strategic")))
                    .collect();
                return Err(ApiError::unsupported_media_type(media_type, &accepted));
            }
        };
        Ok(patch_type)
    }
}

/// Applies a merge, JSON or strategic merge patch to a copy of `current`.
pub fn apply_patch(current: &Value, patch_type: PatchType, body: &[u8]) -> Result<Value, ApiError> {
    let mut patched = current.clone();
    match patch_type {
        PatchType::Merge => {
            let patch: Value = parse_json(body)?;
            json_patch::merge(&mut patched, &patch);
        }
        PatchType::Json => {
            let operations: Vec<json_patch::PatchOperation> = serde_json::from_slice(body)
                .map_err(|error| ApiError::bad_request(format!("error decoding patch: {error}")))?;
            json_patch::patch(&mut patched, &operations).map_err(|error| ApiError {
                code: 422,
                reason: "Invalid",
                message: format!("the server rejected our request due to an error in our request: {error}"),
                details: None,
                retry_after_seconds: None,
            })?;
        }
        PatchType::Strategic => {
            let patch: Value = parse_json(body)?;
            strategic::merge(&mut patched, &patch).map_err(ApiError::bad_request)?;
        }
        PatchType::Apply => unreachable!("server-side apply is handled by patch::apply"),
    }
    Ok(patched)
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("error decoding patch: {error}")))?;
    if !patch.is_object() {
        return Err(ApiError::bad_request("error decoding patch: the patch must be a JSON object"));
    }
    Ok(patch)
}
