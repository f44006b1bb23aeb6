//! The HTTP face of the simulator: the Kubernetes API paths kubectl and kube::Client use, and the admin paths under
//! `/sim/` that tests use to inject faults.
//!
//! ```text
//! request ──faults──▶ path ──▶ discovery | objects (get, list, create, update, patch, delete, scale, log)
//!  (server.rs: a hand                    | watch (stream of JSON events)
//!   on each connection) Accept: as=Table ──▶ table (server-side printing for kubectl get)
//!                                  committed writes ──▶ the write log (user agent), faults after commit
//! ```

mod admin;
pub mod discovery;
mod objects;
pub mod openapi;
mod paging;
pub mod path;
pub mod protobuf;
pub mod query;
pub(crate) mod server;
pub mod table;
pub(crate) mod tls;
mod watch;

use crate::api_error::ApiError;
use crate::faults::{AfterCommit, Faults, Injected};
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
    /// Every write committed through the API, in order.
    pub writes: std::sync::Mutex<Vec<Write>>,
    /// The tokens issued to ServiceAccounts.
    pub tokens: crate::auth::Tokens,
    /// What ServiceAccounts asked for, allowed or not.
    pub accesses: crate::auth::AccessLog,
}

/// A write the API committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// When.
    pub at: jiff::Timestamp,
    /// The client's `User-Agent` (empty without one): fledge names its run in it.
    pub user_agent: String,
    /// `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The request's path.
    pub path: String,
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
    connection: Option<axum::Extension<server::DropConnection>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_write = matches!(method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
        && !is_dry_run(&uri, &method, &body);
    let is_list = !is_write && is_list_path(&uri);
    let response = serve(&state, &method, &uri, &headers, body).await;
    if is_write && response.status().is_success() && !uri.path().starts_with("/sim/") {
        let user_agent = headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok()).unwrap_or_default();
        let write = Write {
            at: jiff::Timestamp::now(),
            user_agent: user_agent.to_owned(),
            method: method.to_string(),
            path: uri.path().to_owned(),
        };
        state.writes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(write);
        match state.faults.after_commit() {
            AfterCommit::Answer => {}
            AfterCommit::ServerError => {
                return error_response(&ApiError::internal("fledge-sim: injected fault after the write was committed"));
            }
            AfterCommit::DropConnection => {
                if let Some(axum::Extension(connection)) = connection {
                    connection.now();
                }
                return std::future::pending().await;
            }
        }
    }
    if is_list && response.status().is_success() && state.faults.cut_body() {
        return cut_in_the_middle(response).await;
    }
    if prefers_protobuf(&headers) && response.status().is_success() {
        return as_protobuf(response).await;
    }
    response
}

/// Whether a write asks for a dry run: `dryRun=All` in its query, or (deletes) in its DeleteOptions body.
fn is_dry_run(uri: &Uri, method: &Method, body: &[u8]) -> bool {
    if matches!(*method, Method::GET | Method::HEAD) {
        return false;
    }
    let in_query = uri.query().is_some_and(|query| query.split('&').any(|pair| pair == "dryRun=All"));
    let in_options = *method == Method::DELETE
        && serde_json::from_slice::<Value>(body).is_ok_and(|options| {
            options["dryRun"].as_array().is_some_and(|values| values.iter().any(|value| value == "All"))
        });
    in_query || in_options
}

/// Whether the client lists protobuf first in `Accept` (kubectl's generator commands, Go informers).
fn prefers_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .and_then(|accept| accept.split(',').next())
        .is_some_and(|first| first.trim().starts_with(protobuf::MEDIA_TYPE))
}

/// A JSON answer re-encoded in protobuf when its object has an encoding; otherwise as it is (every client that asks
/// for protobuf lists JSON as its fallback).
async fn as_protobuf(response: Response) -> Response {
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value == "application/json");
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let encoded = serde_json::from_slice::<Value>(&bytes).ok().and_then(|object| protobuf::encode_object(&object).ok());
    match encoded {
        Some(encoded) => {
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(protobuf::MEDIA_TYPE));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(encoded))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// Whether a GET names a collection, not a watch (`/api/v1/namespaces/x/pods`, `/apis/g/v/pods`).
fn is_list_path(uri: &Uri) -> bool {
    let watching =
        uri.query().is_some_and(|query| query.split('&').any(|pair| matches!(pair, "watch=true" | "watch=1")));
    !watching && matches!(path::parse(uri.path()), Some(path::ApiPath::Resource(request)) if request.name.is_none())
}

/// The response with only the first half of its body, then the connection cut.
async fn cut_in_the_middle(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        vec![Ok(half), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fledge-sim: body cut"))];
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
}

async fn serve(state: &Arc<ApiState>, method: &Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
    let (method, uri, headers) = (method.clone(), uri.clone(), headers.clone());
    let state = state.clone();
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
        Injected::NoAnswer => return std::future::pending().await,
        Injected::Conflict => {
            if let Some(path::ApiPath::Resource(request)) = path::parse(&path) {
                let name = request.name.as_deref().unwrap_or_default();
                return error_response(&ApiError::conflict(request.resource.resource_type(), name));
            }
        }
    }
    let accept =
        headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or("application/json").to_owned();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    let Some(user) = state.tokens.authenticate(authorization, &state.store) else {
        return error_response(&ApiError::unauthorized());
    };
    let Some(api_path) = path::parse(&path) else {
        return error_response(&ApiError::path_not_found());
    };
    if let path::ApiPath::Resource(request) = &api_path {
        let mut needed = vec![attributes(&method, &query, request)];
        if applies_a_new_object(&headers, request, &state.store) {
            needed.push(crate::auth::Attributes { verb: "create".into(), ..needed[0].clone() });
        }
        for attributes in &needed {
            let allowed = crate::auth::authorize(&state.store, &user, attributes).allowed;
            state.accesses.record(&user, attributes, allowed);
            if !allowed {
                return error_response(&ApiError::rbac_forbidden(attributes, &user));
            }
        }
    }
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
                user: &user,
                dry_run: is_dry_run(&uri, &method, &body).then(|| state.store.dry_run_copy()),
            };
            objects::dispatch(&context, &method, &body).await
        }
    };
    result.unwrap_or_else(|error| error_response(&error))
}

/// What a resource request does, as RBAC names it.
fn attributes(method: &Method, query: &query::Query, request: &path::ResourceRequest) -> crate::auth::Attributes {
    let resource_type = request.resource.resource_type();
    let verb = match (method.clone(), request.name.is_some()) {
        (Method::GET | Method::HEAD, _) if query.watch => "watch",
        (Method::GET | Method::HEAD, true) => "get",
        (Method::GET | Method::HEAD, false) => "list",
        (Method::POST, _) => "create",
        (Method::PUT, _) => "update",
        (Method::PATCH, _) => "patch",
        (Method::DELETE, true) => "delete",
        (Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    };
    crate::auth::Attributes {
        verb: verb.into(),
        group: resource_type.group.to_owned(),
        resource: resource_type.plural.to_owned(),
        subresource: request.subresource.map(|subresource| subresource.name().to_owned()),
        name: request.name.clone(),
        namespace: request.namespace.clone(),
    }
}

/// Whether a request is a server-side apply that would create its object: it needs `create` besides `patch`.
fn applies_a_new_object(headers: &HeaderMap, request: &path::ResourceRequest, store: &crate::store::Store) -> bool {
    let applying = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.starts_with("application/apply-patch"));
    applying
        && request.subresource.is_none()
        && request.name.as_deref().is_some_and(|name| {
            store.get(request.resource, request.namespace.as_deref().unwrap_or_default(), name).is_none()
        })
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
