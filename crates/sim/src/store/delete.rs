//! Deletion as a real API server does it: at once when nothing holds the object, otherwise marked with a deletion
//! timestamp that finalizers, foreground or orphan propagation, or a kubelet stopping a pod must clear.

use super::{Store, WriteScope};
use crate::api_error::ApiError;
use crate::resources::{self, ResourceId};
use serde_json::{Value, json};
use std::sync::Arc;

/// How dependents are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// The garbage collector deletes dependents after the owner is gone.
    #[default]
    Background,
    /// Dependents are deleted first; the owner stays (with a `foregroundDeletion` finalizer) until they are gone.
    Foreground,
    /// Dependents lose their owner reference and stay.
    Orphan,
}

/// Options of one deletion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Dependents' fate.
    pub propagation: Propagation,
    /// Grace period for pods; `None` uses the pod's `terminationGracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the uid matches.
    pub precondition_uid: Option<String>,
    /// Delete only if the resourceVersion matches.
    pub precondition_resource_version: Option<String>,
}

/// What a deletion did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone; its last state.
    Removed(Arc<Value>),
    /// The object is marked for deletion and still there.
    Marked(Arc<Value>),
}

impl Store {
    /// Deletes an object with `options`.
    pub fn delete(
        &self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let resource_type = resource.resource_type();
        let current = self.get(resource, namespace, name).ok_or_else(|| ApiError::not_found(resource_type, name))?;
        let uid = current.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(expected) = &options.precondition_uid
            && *expected != uid
        {
            let message = format!("Precondition failed: UID in precondition: {expected}, UID in object meta: {uid}");
            return Err(ApiError::conflict_with(resource_type, name, message, Vec::new()));
        }
        let actual_version = current.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
        if let Some(expected) = &options.precondition_resource_version
            && expected != actual_version
        {
            let message = format!(
                "Precondition failed: ResourceVersion in precondition: {expected}, ResourceVersion in object meta: {actual_version}"
            );
            return Err(ApiError::conflict_with(resource_type, name, message, Vec::new()));
        }
        let extra_finalizer = match options.propagation {
            Propagation::Foreground => Some("foregroundDeletion"),
            Propagation::Orphan => Some("orphan"),
            Propagation::Background => None,
        };
        let has_finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|finalizers| !finalizers.is_empty());
        let graceful =
            crate::admission::waits_for_termination(resource, &current) && options.grace_period_seconds != Some(0);
        let is_namespace = resource == resources::NAMESPACES;
        if !(has_finalizers || extra_finalizer.is_some() || graceful || is_namespace) {
            let removed =
                self.remove(resource, namespace, name).ok_or_else(|| ApiError::not_found(resource_type, name))?;
            return Ok(Deleted::Removed(removed));
        }
        let grace = options
            .grace_period_seconds
            .or_else(|| current.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
            .unwrap_or(30)
            .max(0);
        let marked = self.modify(resource, namespace, name, WriteScope::Whole, None, |object| {
            if object.pointer("/metadata/deletionTimestamp").is_none() {
                let grace = if graceful { grace } else { 0 };
                let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                object["metadata"]["deletionTimestamp"] = json!(crate::clock::timestamp(when));
                object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            }
            if let Some(finalizer) = extra_finalizer {
                let metadata = object["metadata"].as_object_mut().expect("objects have metadata");
                let finalizers = metadata.entry("finalizers").or_insert(json!([]));
                if let Some(list) = finalizers.as_array_mut()
                    && !list.iter().any(|existing| existing == finalizer)
                {
                    list.push(json!(finalizer));
                }
            }
            if is_namespace {
                object["status"]["phase"] = json!("Terminating");
            }
            Ok(())
        });
        match marked {
            Ok(marked) if marked.pointer("/metadata/deletionTimestamp").is_some() => Ok(Deleted::Marked(marked)),
            // Marking removed it (nothing held it after all).
            Ok(last) => Ok(Deleted::Removed(last)),
            Err(error) => Err(error),
        }
    }
}
