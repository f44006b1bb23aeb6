//! The simulator's own endpoints, under `/sim/`: fault injection and history compaction for tests.

use super::{ApiState, error_response, json_response};
use crate::api_error::ApiError;
use crate::faults::FaultSettings;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

pub(super) fn handle(state: &ApiState, method: &Method, path: &str, body: &[u8]) -> Response {
    match (method.clone(), path) {
        (Method::GET, "faults") => json_response(StatusCode::OK, &json!(state.faults.settings())),
        (Method::PUT, "faults") => match serde_json::from_slice::<FaultSettings>(body) {
            Ok(settings) => {
                state.faults.set(settings);
                json_response(StatusCode::OK, &json!(state.faults.settings()))
            }
            Err(error) => error_response(&ApiError::bad_request(format!("invalid fault settings: {error}"))),
        },
        (Method::POST, "cut-watches") => {
            state.faults.cut_watches();
            json_response(StatusCode::OK, &json!({ "cut": true }))
        }
        (Method::POST, "compact") => {
            state.store.compact();
            json_response(StatusCode::OK, &json!({ "compactedThrough": state.store.revision() }))
        }
        _ => error_response(&ApiError::path_not_found()),
    }
}
