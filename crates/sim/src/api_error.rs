//! API errors as a real API server reports them: `metav1.Status` objects with the right code and reason.

use crate::resources::ResourceType;
use serde_json::{Value, json};

/// One invalid field of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldManagerConflict` ...
    pub reason: &'static str,
    /// What is wrong.
    pub message: String,
    /// The field path, e.g. `spec.replicas`.
    pub field: String,
}

/// A failed API request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// The machine-readable reason (`NotFound`, `Conflict` ...).
    pub reason: &'static str,
    /// The human-readable message, as a real server words it.
    pub message: String,
    /// `details`, when the error is about one object.
    pub details: Option<Value>,
    /// Seconds to wait before retrying (429 and some 5xx).
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into(), details: None, retry_after_seconds: None }
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    fn object_details(resource: &ResourceType, name: &str) -> Value {
        let mut details = json!({ "name": name, "kind": resource.plural });
        if !resource.group.is_empty() {
            details["group"] = json!(resource.group);
        }
        details
    }

    /// 404: `deployments.apps "x" not found`.
    pub fn not_found(resource: &ResourceType, name: &str) -> ApiError {
        ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", resource.qualified_plural()))
            .with_details(Self::object_details(resource, name))
    }

    /// 404 for a URL that names no resource.
    pub fn path_not_found() -> ApiError {
        ApiError::new(404, "NotFound", "the server could not find the requested resource").with_details(
            json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": "404 page not found" }] }),
        )
    }

    /// 409: `pods "x" already exists`.
    pub fn already_exists(resource: &ResourceType, name: &str) -> ApiError {
        ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", resource.qualified_plural()))
            .with_details(Self::object_details(resource, name))
    }

    /// 409: the optimistic-concurrency conflict of an update with a stale resourceVersion.
    pub fn conflict(resource: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                resource.qualified_plural()
            ),
        )
        .with_details(Self::object_details(resource, name))
    }

    /// 409: a conflict with a free-form message (precondition failures, apply conflicts).
    pub fn conflict_with(resource: &ResourceType, name: &str, message: String, causes: Vec<Cause>) -> ApiError {
        let mut details = Self::object_details(resource, name);
        if !causes.is_empty() {
            details["causes"] = causes_json(&causes);
        }
        ApiError::new(409, "Conflict", message).with_details(details)
    }

    /// 422: `Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1: must be ...`.
    pub fn invalid(resource: &ResourceType, name: &str, causes: Vec<Cause>) -> ApiError {
        let summary: Vec<String> = causes.iter().map(|cause| format!("{}: {}", cause.field, cause.message)).collect();
        let summary = if summary.len() == 1 { summary[0].clone() } else { format!("[{}]", summary.join(", ")) };
        let mut details = json!({ "name": name, "kind": resource.kind, "causes": causes_json(&causes) });
        if !resource.group.is_empty() {
            details["group"] = json!(resource.group);
        }
        ApiError::new(422, "Invalid", format!("{} \"{name}\" is invalid: {summary}", resource.qualified_kind()))
            .with_details(details)
    }

    /// 410 for a watch or list from a resourceVersion older than the retained history.
    pub fn expired(requested: u64, oldest: u64) -> ApiError {
        ApiError::new(410, "Expired", format!("too old resource version: {requested} ({oldest})"))
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// 405.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    }

    /// 415.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                if accepted.is_empty() { content_type.to_owned() } else { accepted.join(", ") }
            ),
        )
    }

    /// 406.
    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::new(406, "NotAcceptable", message)
    }

    /// 403 for objects the simulator owns.
    pub fn forbidden(resource: &ResourceType, name: &str, why: &str) -> ApiError {
        ApiError::new(403, "Forbidden", format!("{} \"{name}\" is forbidden: {why}", resource.qualified_plural()))
            .with_details(Self::object_details(resource, name))
    }

    /// 504: a list at a resourceVersion the server has not reached.
    pub fn too_large_resource_version(requested: u64, current: u64) -> ApiError {
        ApiError::new(504, "Timeout", format!("Too large resource version: {requested}, current: {current}"))
            .with_details(json!({ "causes": [{ "reason": "ResourceVersionTooLarge", "message": "Too large resource version" }], "retryAfterSeconds": 1 }))
    }

    /// 410: a continue token older than the retained history.
    pub fn expired_continue() -> ApiError {
        ApiError::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        )
    }

    /// 401: a token the server did not issue, or of a ServiceAccount that is gone.
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403, as RBAC denies a request.
    pub fn rbac_forbidden(attributes: &crate::auth::Attributes, user: &crate::auth::User) -> ApiError {
        let mut details = json!({ "group": attributes.group, "kind": attributes.resource });
        if let Some(name) = &attributes.name {
            details["name"] = json!(name);
        }
        ApiError::new(403, "Forbidden", attributes.forbidden_message(user)).with_details(details)
    }

    /// 500, as injected by the fault layer or for a simulator bug.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// 429 with Retry-After.
    pub fn too_many_requests(retry_after_seconds: u64) -> ApiError {
        ApiError {
            retry_after_seconds: Some(retry_after_seconds),
            details: Some(json!({ "retryAfterSeconds": retry_after_seconds })),
            ..ApiError::new(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            )
        }
    }

    /// The `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty()
            && let Some(status) = status.as_object_mut()
        {
            status.remove("reason");
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|cause| json!({ "reason": cause.reason, "message": cause.message, "field": cause.field }))
            .collect(),
    )
}

/// A successful deletion, as the server answers for objects deleted at once.
pub fn success_status(resource: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = json!({ "name": name, "kind": resource.plural, "uid": uid });
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, PODS};

    #[test]
    fn messages_match_a_real_server() {
        assert_eq!(ApiError::not_found(DEPLOYMENTS.resource_type(), "x").message, "deployments.apps \"x\" not found");
        assert_eq!(
            ApiError::not_found(PODS.resource_type(), "x").to_status()["details"],
            json!({"name": "x", "kind": "pods"})
        );
        let invalid = ApiError::invalid(
            DEPLOYMENTS.resource_type(),
            "x",
            vec![Cause {
                reason: "FieldValueInvalid",
                message: "Invalid value: -1: must be greater than or equal to 0".into(),
                field: "spec.replicas".into(),
            }],
        );
        assert_eq!(
            invalid.message,
            "Deployment.apps \"x\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(invalid.code, 422);
    }
}
