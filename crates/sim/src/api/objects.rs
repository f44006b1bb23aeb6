//! Requests on resource collections, objects and subresources.
//!
//! Over 500 lines on purpose: one short handler per verb (get, list, create, update, patch, delete, deletecollection,
//! scale, logs) beside the dispatch table that routes to them; split, they would be read side by side anyway.

use super::paging::ListOptions;
use super::{ApiState, json_response, table, text_response, watch};
use crate::api::path::ResourceRequest;
use crate::api::query::Query;
use crate::api_error::{ApiError, success_status};
use crate::patch::{self, PatchType, apply};
use crate::resources::{self, ResourceId, Subresource};
use crate::store::selectors::{FieldSelector, LabelSelector, supported_fields};
use crate::store::{DeleteOptions, Deleted, Propagation, WriteScope};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;

/// One request's context.
pub(super) struct RequestContext<'r> {
    pub(super) state: &'r ApiState,
    pub(super) request: &'r ResourceRequest,
    pub(super) query: &'r Query,
    pub(super) accept: &'r str,
    pub(super) content_type: &'r str,
    pub(super) user_agent: Option<&'r str>,
    /// Who asks (authenticated, and authorized for the request).
    pub(super) user: &'r crate::auth::User,
    /// For `dryRun=All`: a copy of the store the request writes to instead.
    pub(super) dry_run: Option<crate::store::Store>,
}

impl RequestContext<'_> {
    /// The store the request reads and writes: the cluster's, or its dry-run copy.
    pub(super) fn store(&self) -> &crate::store::Store {
        self.dry_run.as_ref().unwrap_or(&self.state.store)
    }

    fn namespace(&self) -> &str {
        self.request.namespace.as_deref().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.request.name.as_deref().unwrap_or_default()
    }

    pub(super) fn resource(&self) -> ResourceId {
        self.request.resource
    }

    fn manager(&self) -> String {
        apply::manager_name(self.query.field_manager.as_deref(), self.user_agent)
    }

    /// The object as served at the requested version: the stored object with that version's apiVersion.
    fn versioned(&self, object: &Value) -> Value {
        let mut object = object.clone();
        object["apiVersion"] = json!(self.resource().resource_type().api_version(&self.request.version));
        object
    }
}

pub(super) async fn dispatch(context: &RequestContext<'_>, method: &Method, body: &[u8]) -> Result<Response, ApiError> {
    let resource_type = context.resource().resource_type();
    let is_collection = context.request.name.is_none();
    if !resource_type.writable && !matches!(*method, Method::GET | Method::HEAD) {
        return Err(ApiError::method_not_allowed());
    }
    match (method.clone(), is_collection, context.request.subresource) {
        (Method::GET, true, _) if context.query.watch => watch::serve(context).await,
        (Method::GET, true, _) => list(context),
        (Method::POST, true, _) if context.resource() == resources::SELF_SUBJECT_ACCESS_REVIEWS => {
            access_review(context, body)
        }
        (Method::POST, true, _) => create(context, body),
        (Method::DELETE, true, _) => delete_collection(context),
        (Method::GET, false, None) => get(context),
        (Method::GET, false, Some(Subresource::Status)) => get(context),
        (Method::GET, false, Some(Subresource::Scale)) => get_scale(context),
        (Method::GET, false, Some(Subresource::Log)) => logs(context),
        (Method::PUT, false, Some(Subresource::Scale)) => update_scale(context, body),
        (Method::PATCH, false, Some(Subresource::Scale)) => patch_scale(context, body),
        (Method::PUT, false, subresource) => update(context, body, subresource),
        (Method::PATCH, false, subresource) => patch(context, body, subresource),
        (Method::DELETE, false, None) => delete(context, body),
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn get(context: &RequestContext<'_>) -> Result<Response, ApiError> {
    let object = context
        .state
        .store
        .get(context.resource(), context.namespace(), context.name())
        .ok_or_else(|| ApiError::not_found(context.resource().resource_type(), context.name()))?;
    if table::wants_table(context.accept) {
        let table = table::table(context.resource(), std::slice::from_ref(&object), context.query, None);
        return Ok(json_response(StatusCode::OK, &table));
    }
    Ok(json_response(StatusCode::OK, &context.versioned(&object)))
}

/// The label and field selectors of a request, as one filter.
pub(super) fn selector_filter(context: &RequestContext<'_>) -> Result<impl Fn(&Value) -> bool + use<>, ApiError> {
    let labels = LabelSelector::parse(context.query.label_selector.as_deref().unwrap_or_default())?;
    let fields = FieldSelector::parse(
        context.query.field_selector.as_deref().unwrap_or_default(),
        supported_fields(context.resource().resource_type().plural),
    )?;
    Ok(move |object: &Value| labels.matches(object) && fields.matches(object))
}

fn list(context: &RequestContext<'_>) -> Result<Response, ApiError> {
    let options = ListOptions::parse(context.query)?;
    let filter = selector_filter(context)?;
    let filtered = context.query.label_selector.is_some() || context.query.field_selector.is_some();
    let page =
        options.page(context.store(), context.resource(), context.request.namespace.as_deref(), filter, filtered)?;
    if table::wants_table(context.accept) {
        let mut table = table::table(context.resource(), &page.items, context.query, Some(page.revision));
        table["metadata"] = page.metadata();
        return Ok(json_response(StatusCode::OK, &table));
    }
    Ok(json_response(StatusCode::OK, &list_body(context, &page.items, page.metadata())))
}

/// A `*List` object. Built-in types' items carry no kind and apiVersion, as a real server sends them; custom
/// resources' items do.
pub(super) fn list_body(context: &RequestContext<'_>, items: &[Arc<Value>], metadata: Value) -> Value {
    let resource_type = context.resource().resource_type();
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut item = context.versioned(item);
            if !resource_type.custom
                && let Some(fields) = item.as_object_mut()
            {
                fields.remove("apiVersion");
                fields.remove("kind");
            }
            item
        })
        .collect();
    json!({
        "kind": resource_type.list_kind(),
        "apiVersion": resource_type.api_version(&context.request.version),
        "metadata": metadata,
        "items": items,
    })
}

/// Decodes a request body: JSON, YAML for the YAML media types, or Kubernetes' protobuf (built-in types only, as on
/// a real server: custom resources are JSON or YAML).
fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if content_type.contains("protobuf") {
        return super::protobuf::decode_object(body).map_err(|error| match error {
            super::protobuf::ProtobufError::NoEncoding(_) => {
                ApiError::unsupported_media_type(content_type, &["application/json", "application/yaml"])
            }
            other => ApiError::bad_request(format!("the body of the request could not be decoded: {other}")),
        });
    }
    if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(
            content_type,
            &["application/json", "application/yaml", super::protobuf::MEDIA_TYPE],
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    let value: Result<Value, String> = if content_type.contains("yaml") {
        serde_saphyr::from_str(text).map_err(|error| error.to_string())
    } else {
        serde_json::from_str(text).map_err(|error| error.to_string())
    };
    let value = value
        .map_err(|error| ApiError::bad_request(format!("the body of the request could not be decoded: {error}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body of the request must be an object"));
    }
    Ok(value)
}

/// Checks the body's apiVersion, kind and namespace against the URL.
fn check_identity(context: &RequestContext<'_>, object: &Value) -> Result<(), ApiError> {
    let resource_type = context.resource().resource_type();
    let expected = resource_type.api_version(&context.request.version);
    if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str)
        && api_version != expected
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(kind) = object.get("kind").and_then(Value::as_str)
        && kind != resource_type.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            resource_type.kind
        )));
    }
    if resource_type.namespaced
        && let Some(namespace) = object.pointer("/metadata/namespace").and_then(Value::as_str)
        && !namespace.is_empty()
        && namespace != context.namespace()
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn create(context: &RequestContext<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let resource_type = context.resource().resource_type();
    if resource_type.namespaced && context.request.namespace.is_none() {
        return Err(ApiError::method_not_allowed());
    }
    let object = decode_body(context.content_type, body)?;
    check_identity(context, &object)?;
    let manager = context.manager();
    let created = context.store().create(context.resource(), context.namespace(), object, Some(&manager))?;
    Ok(json_response(StatusCode::CREATED, &context.versioned(&created)))
}

/// A SelfSubjectAccessReview (`kubectl auth can-i`): may the asking user do what the review describes? Answered,
/// never stored.
fn access_review(context: &RequestContext<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let mut review = decode_body(context.content_type, body)?;
    let attributes = &review["spec"]["resourceAttributes"];
    let decision = if attributes.is_object() {
        let text = |key: &str| attributes[key].as_str().filter(|text| !text.is_empty()).map(str::to_owned);
        let wanted = crate::auth::Attributes {
            verb: text("verb").unwrap_or_default(),
            group: text("group").unwrap_or_default(),
            resource: text("resource").unwrap_or_default(),
            subresource: text("subresource"),
            name: text("name"),
            namespace: text("namespace"),
        };
        crate::auth::authorize(context.store(), context.user, &wanted)
    } else {
        // Non-resource URLs: discovery and the like are every authenticated user's; nothing else is granted.
        let path = review.pointer("/spec/nonResourceAttributes/path").and_then(Value::as_str).unwrap_or_default();
        let public = ["/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz"]
            .iter()
            .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")));
        let administrator = *context.user == crate::auth::User::Administrator;
        crate::auth::Decision {
            allowed: administrator || public,
            reason: if public { "ClusterRoleBinding \"system:discovery\"".into() } else { String::new() },
        }
    };
    review["status"] = json!({ "allowed": decision.allowed });
    if !decision.reason.is_empty() {
        review["status"]["reason"] = json!(decision.reason);
    }
    review["metadata"] = json!({ "creationTimestamp": null });
    Ok(json_response(StatusCode::CREATED, &review))
}

fn scope_of(subresource: Option<Subresource>) -> Result<WriteScope, ApiError> {
    match subresource {
        None => Ok(WriteScope::Main),
        Some(Subresource::Status) => Ok(WriteScope::Status),
        Some(_) => Err(ApiError::method_not_allowed()),
    }
}

fn update(context: &RequestContext<'_>, body: &[u8], subresource: Option<Subresource>) -> Result<Response, ApiError> {
    let scope = scope_of(subresource)?;
    let object = decode_body(context.content_type, body)?;
    check_identity(context, &object)?;
    let manager = context.manager();
    let updated = context.store().update(
        context.resource(),
        context.namespace(),
        context.name(),
        object,
        scope,
        Some(&manager),
    )?;
    Ok(json_response(StatusCode::OK, &context.versioned(&updated)))
}

fn patch(context: &RequestContext<'_>, body: &[u8], subresource: Option<Subresource>) -> Result<Response, ApiError> {
    let scope = scope_of(subresource)?;
    let resource_type = context.resource().resource_type();
    let patch_type = PatchType::from_content_type(context.content_type, resource_type)?;
    let store = &context.store();
    if patch_type == PatchType::Apply {
        return server_side_apply(context, body, scope);
    }
    let manager = context.manager();
    let patched =
        store.modify(context.resource(), context.namespace(), context.name(), scope, Some(&manager), |current| {
            let patched = patch::apply_patch(current, patch_type, body)?;
            // A patch that sets metadata.resourceVersion makes it a precondition, as on a real API server.
            let expected = patched.pointer("/metadata/resourceVersion").and_then(Value::as_str);
            if expected.is_some_and(|expected| !expected.is_empty())
                && expected != current.pointer("/metadata/resourceVersion").and_then(Value::as_str)
            {
                return Err(ApiError::conflict(resource_type, context.name()));
            }
            *current = patched;
            Ok(())
        })?;
    Ok(json_response(StatusCode::OK, &context.versioned(&patched)))
}

fn server_side_apply(context: &RequestContext<'_>, body: &[u8], scope: WriteScope) -> Result<Response, ApiError> {
    let resource_type = context.resource().resource_type();
    let Some(manager) = context.query.field_manager.as_deref().filter(|manager| !manager.is_empty()) else {
        return Err(ApiError::bad_request("PATCH requests with apply content type must include fieldManager"));
    };
    let applied = decode_body("application/apply-patch+yaml", body)?;
    check_identity(context, &applied)?;
    if applied.get("apiVersion").is_none() || applied.get("kind").is_none() {
        return Err(ApiError::bad_request("apiVersion and kind must be set in an apply patch"));
    }
    if let Some(name) = applied.pointer("/metadata/name").and_then(Value::as_str)
        && name != context.name()
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            context.name()
        )));
    }
    let mut applied = applied;
    applied["metadata"]["name"] = json!(context.name());
    let store = &context.store();
    for _attempt in 0..2 {
        let existing = store.get(context.resource(), context.namespace(), context.name());
        let result = match existing {
            None => {
                let object = apply::apply(resource_type, None, &applied, manager, context.query.force)?;
                store
                    .create(context.resource(), context.namespace(), object, None)
                    .map(|created| (StatusCode::CREATED, created))
            }
            Some(_) => store
                .modify(context.resource(), context.namespace(), context.name(), scope, None, |current| {
                    *current = apply::apply(resource_type, Some(current), &applied, manager, context.query.force)?;
                    Ok(())
                })
                .map(|updated| (StatusCode::OK, updated)),
        };
        match result {
            // Created or deleted between the read and the write: try once more.
            Err(error)
                if error.reason == "AlreadyExists"
                    || (error.reason == "NotFound" && error.message.contains(context.name())) =>
            {
                continue;
            }
            Err(error) => return Err(error),
            Ok((status, object)) => return Ok(json_response(status, &context.versioned(&object))),
        }
    }
    Err(ApiError::conflict(resource_type, context.name()))
}

fn delete_options(context: &RequestContext<'_>, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body: Value =
        if body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { decode_body(context.content_type, body)? };
    let propagation = context
        .query
        .propagation_policy
        .clone()
        .or_else(|| body.get("propagationPolicy").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| match body.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => Some("Orphan".to_owned()),
            Some(false) => Some("Background".to_owned()),
            None => None,
        });
    let propagation = match propagation.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Background\", \"Foreground\", \"Orphan\""
            )));
        }
    };
    Ok(DeleteOptions {
        propagation,
        grace_period_seconds: context
            .query
            .grace_period_seconds
            .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64)),
        precondition_uid: body.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_owned),
        precondition_resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn delete(context: &RequestContext<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let options = delete_options(context, body)?;
    let (status, object) = delete_one(context, context.namespace(), context.name(), &options)?;
    Ok(json_response(status, &object))
}

/// Deletes one object; the response is the marked object, or a Success status for objects gone at once (custom
/// resources answer with their last state, as a real server does).
fn delete_one(
    context: &RequestContext<'_>,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> Result<(StatusCode, Value), ApiError> {
    let resource_type = context.resource().resource_type();
    match context.store().delete(context.resource(), namespace, name, options)? {
        Deleted::Marked(object) => Ok((StatusCode::OK, context.versioned(&object))),
        Deleted::Removed(object) if resource_type.custom => Ok((StatusCode::OK, context.versioned(&object))),
        Deleted::Removed(object) => {
            let uid = object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
            Ok((StatusCode::OK, success_status(resource_type, name, uid)))
        }
    }
}

fn delete_collection(context: &RequestContext<'_>) -> Result<Response, ApiError> {
    let filter = selector_filter(context)?;
    let (items, _) = context.store().list(context.resource(), context.request.namespace.as_deref(), filter);
    let options = delete_options(context, b"")?;
    let mut deleted = Vec::new();
    for item in &items {
        let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let namespace = item.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        match delete_one(context, namespace, name, &options) {
            Ok(_) => deleted.push(item.clone()),
            Err(error) if error.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    let revision = context.store().revision();
    Ok(json_response(StatusCode::OK, &list_body(context, &deleted, json!({ "resourceVersion": revision.to_string() }))))
}

fn scale_of(context: &RequestContext<'_>, object: &Value) -> Value {
    let selector = object.pointer("/spec/selector/matchLabels").and_then(Value::as_object).map(|labels| {
        labels
            .iter()
            .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",")
    });
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": context.name(),
            "namespace": context.namespace(),
            "uid": object.pointer("/metadata/uid"),
            "resourceVersion": object.pointer("/metadata/resourceVersion"),
            "creationTimestamp": object.pointer("/metadata/creationTimestamp"),
        },
        "spec": { "replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0)) },
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector.unwrap_or_default(),
        },
    })
}

fn get_scale(context: &RequestContext<'_>) -> Result<Response, ApiError> {
    let object = context
        .state
        .store
        .get(context.resource(), context.namespace(), context.name())
        .ok_or_else(|| ApiError::not_found(context.resource().resource_type(), context.name()))?;
    Ok(json_response(StatusCode::OK, &scale_of(context, &object)))
}

fn set_replicas(
    context: &RequestContext<'_>,
    replicas: Value,
    expected_version: Option<String>,
) -> Result<Response, ApiError> {
    let resource_type = context.resource().resource_type();
    let Some(count) = replicas.as_i64() else {
        return Err(ApiError::bad_request("spec.replicas must be an integer"));
    };
    if count < 0 {
        return Err(ApiError::invalid(
            resource_type,
            context.name(),
            vec![crate::api_error::Cause {
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {count}: must be greater than or equal to 0"),
                field: "spec.replicas".into(),
            }],
        ));
    }
    let manager = context.manager();
    let updated = context.store().modify(
        context.resource(),
        context.namespace(),
        context.name(),
        WriteScope::Main,
        Some(&manager),
        |object| {
            if let Some(expected) = &expected_version
                && Some(expected.as_str()) != object.pointer("/metadata/resourceVersion").and_then(Value::as_str)
            {
                return Err(ApiError::conflict(resource_type, context.name()));
            }
            object["spec"]["replicas"] = json!(count);
            Ok(())
        },
    )?;
    Ok(json_response(StatusCode::OK, &scale_of(context, &updated)))
}

fn update_scale(context: &RequestContext<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let scale = decode_body(context.content_type, body)?;
    let version = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|version| !version.is_empty())
        .map(str::to_owned);
    set_replicas(context, scale.pointer("/spec/replicas").cloned().unwrap_or(Value::Null), version)
}

fn patch_scale(context: &RequestContext<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let resource_type = context.resource().resource_type();
    let current = context
        .state
        .store
        .get(context.resource(), context.namespace(), context.name())
        .ok_or_else(|| ApiError::not_found(resource_type, context.name()))?;
    let patch_type = PatchType::from_content_type(context.content_type, resource_type)?;
    let scale = scale_of(context, &current);
    let patched = match patch_type {
        PatchType::Apply => {
            let applied = decode_body("application/apply-patch+yaml", body)?;
            let mut patched = scale;
            json_patch::merge(&mut patched, &applied);
            patched
        }
        other => patch::apply_patch(&scale, other, body)?,
    };
    set_replicas(context, patched.pointer("/spec/replicas").cloned().unwrap_or(Value::Null), None)
}

fn logs(context: &RequestContext<'_>) -> Result<Response, ApiError> {
    let pod = context
        .state
        .store
        .get(resources::PODS, context.namespace(), context.name())
        .ok_or_else(|| ApiError::not_found(resources::PODS.resource_type(), context.name()))?;
    let containers: Vec<String> = ["containers", "initContainers"]
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().cloned().unwrap_or_default())
        .filter_map(|container| container.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let main_containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|container| container["name"].as_str())
        .collect();
    let container = match &context.query.container {
        Some(container) if containers.contains(container) => container.clone(),
        Some(container) => {
            return Err(ApiError::bad_request(format!(
                "container {container} is not valid for pod {}",
                context.name()
            )));
        }
        None if main_containers.len() == 1 => main_containers[0].to_owned(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                context.name(),
                main_containers.join(" ")
            )));
        }
    };
    let Some(lines) = context.state.logs.lines(&pod, &container, context.query.previous) else {
        let message = if context.query.previous {
            format!("previous terminated container \"{container}\" in pod \"{}\" not found", context.name())
        } else {
            let reason =
                crate::api::table::waiting_reason(&pod, &container).unwrap_or_else(|| "ContainerCreating".to_owned());
            format!("container \"{container}\" in pod \"{}\" is waiting to start: {reason}", context.name())
        };
        return Err(ApiError::bad_request(message));
    };
    let lines = match context.query.tail_lines {
        Some(tail) => lines[lines.len().saturating_sub(tail)..].to_vec(),
        None => lines,
    };
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    Ok(text_response(StatusCode::OK, text))
}
