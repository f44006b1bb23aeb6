//! The HTTP face of the simulator: the Kubernetes API paths kubectl and kube::Client use, and the admin paths under
//! `/sim/` that tests use to inject faults.
//!
//! ```text
//! request ──faults──▶ path ──▶ discovery | objects (get, list, create, update, patch, delete, scale, log)
//!                                        | watch (stream of JSON events)
//!                     Accept: as=Table ──▶ table (server-side printing for kubectl get)
//! ```

mod admin;
pub mod discovery;
mod objects;
pub mod openapi;
pub mod path;
pub mod query;
pub mod table;
mod watch;

use crate::faults::{Faults, Injected};
use crate::status::ApiError;
use crate::store::Store;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;

/// Container logs, provided by the simulated kubelet.
pub trait PodLogs: Send + Sync {
    /// The log lines of one container of a pod (`previous`: of its last terminated instance). `None` when that
    /// container instance has no logs (never started, or no previous instance).
    fn lines(&self, pod: &Value, container: &str, previous: bool) -> Option<Vec<String>>;
}

/// What request handlers share.
pub struct ApiState {
    /// The objects.
    pub store: Arc<Store>,
    /// The fault layer.
    pub faults: Arc<Faults>,
    /// Container logs.
    pub logs: Arc<dyn PodLogs>,
    /// Kubernetes API requests served (the admin paths under `/sim/` are not counted).
    pub requests: std::sync::atomic::AtomicU64,
    /// Watches answered 410 Gone (their resourceVersion was compacted away).
    pub expired_watches: std::sync::atomic::AtomicU64,
}

/// The router serving every path.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Whether a write carries a resourceVersion precondition (a PUT or merge patch naming `metadata.resourceVersion`, a
/// JSON patch testing it). Only those can fail with "the object has been modified" on a real API server, which
/// retries unconditional updates and patches itself.
fn has_precondition(body: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(operations)) => {
            operations.iter().any(|operation| operation["path"] == "/metadata/resourceVersion")
        }
        Ok(object) => object
            .pointer("/metadata/resourceVersion")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|version| !version.is_empty()),
        Err(_) => false,
    }
}

async fn handle(
    State(state): State<Arc<ApiState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if let Some(admin_path) = path.strip_prefix("/sim/") {
        return admin::handle(&state, &method, admin_path, &body);
    }
    state.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let query = match query::Query::parse(uri.query()) {
        Ok(query) => query,
        Err(error) => return error_response(&error),
    };
    let is_guarded_write = matches!(method, Method::PUT | Method::PATCH) && has_precondition(&body);
    match state.faults.before_request(is_guarded_write).await {
        Injected::None => {}
        Injected::ServerError => return error_response(&ApiError::internal("fledge-sim: injected fault")),
        Injected::Throttle(seconds) => return error_response(&ApiError::too_many_requests(seconds)),
        Injected::Conflict => {
            if let Some(path::ApiPath::Resource(request)) = path::parse(&path) {
                let name = request.name.as_deref().unwrap_or_default();
                return error_response(&ApiError::conflict(request.resource.resource_type(), name));
            }
        }
    }
    let accept =
        headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or("application/json").to_owned();
    let Some(api_path) = path::parse(&path) else {
        return error_response(&ApiError::path_not_found());
    };
    let result = match api_path {
        path::ApiPath::Version => Ok(json_response(StatusCode::OK, &discovery::version())),
        path::ApiPath::Health => Ok(text_response(StatusCode::OK, "ok".into())),
        path::ApiPath::OpenApi(None) => Ok(json_response(StatusCode::OK, &openapi::index())),
        path::ApiPath::OpenApi(Some(document)) => openapi::document(&document)
            .map(|document| json_response(StatusCode::OK, &document))
            .ok_or_else(ApiError::path_not_found),
        path::ApiPath::CoreVersions if discovery::wants_aggregated(&accept) => {
            Ok(aggregated_response(discovery::aggregated(true)))
        }
        path::ApiPath::Groups if discovery::wants_aggregated(&accept) => {
            Ok(aggregated_response(discovery::aggregated(false)))
        }
        path::ApiPath::CoreVersions => Ok(json_response(StatusCode::OK, &discovery::core_versions())),
        path::ApiPath::Groups => Ok(json_response(StatusCode::OK, &discovery::groups())),
        path::ApiPath::CoreResources => Ok(json_response(StatusCode::OK, &discovery::resource_list("", "v1"))),
        path::ApiPath::Group(group) => Ok(json_response(StatusCode::OK, &discovery::group(&group))),
        path::ApiPath::GroupResources(group, version) => {
            Ok(json_response(StatusCode::OK, &discovery::resource_list(&group, &version)))
        }
        path::ApiPath::Resource(request) => {
            let context = objects::RequestContext {
                state: &state,
                request: &request,
                query: &query,
                accept: &accept,
                content_type: headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("application/json"),
                user_agent: headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok()),
            };
            objects::dispatch(&context, &method, &body).await
        }
    };
    result.unwrap_or_else(|error| error_response(&error))
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn aggregated_response(body: Value) -> Response {
    let mut response = json_response(StatusCode::OK, &body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE));
    response
}

/// A plain-text response.
pub(crate) fn text_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// An error as a `metav1.Status` response.
pub(crate) fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &error.to_status());
    if let Some(seconds) = error.retry_after_seconds
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
