//! The object store: every object as JSON, one resourceVersion counter, and a bounded history of changes that
//! watches replay from.
//!
//! ```text
//!  write ──▶ admission (defaults, validation) ──▶ objects[type][(namespace, name)]
//!                                                     │ revision += 1
//!                                                     ▼
//!                                     history (bounded) + broadcast ──▶ watches
//! ```
//!
//! Everything happens under one lock, so a read-modify-write (a patch, a controller's status update) is atomic and
//! every change gets a strictly increasing revision.
//!
//! Over 500 lines on purpose: every write path (create, update, modify, remove) and what it carries over from the
//! stored object must take the lock, bump the revision and record the change in one place; deletion semantics and
//! selectors are modules of their own.

mod delete;
pub mod selectors;

pub use delete::{DeleteOptions, Deleted, Propagation};

use crate::admission::{self, AdmissionConfig, Operation};
use crate::api_error::ApiError;
use crate::clock;
use crate::resources::{NAMESPACES, ResourceId};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// The start of a watch: the retained changes to replay, and a receiver for the changes to come.
pub type WatchStart = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted; the object is its last state.
    Deleted,
}

impl ChangeKind {
    /// The watch event type.
    pub fn event_type(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Change {
    /// The revision the change got.
    pub revision: u64,
    /// The object's type.
    pub resource: ResourceId,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (before it, for deletions, with the deletion's resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change (modifications only): lets a filtered watch turn a change that moves an object
    /// out of its selector into a DELETED event, as a real server does.
    pub previous: Option<Arc<Value>>,
}

impl Change {
    /// The object's namespace ("" for cluster-scoped objects).
    pub fn namespace(&self) -> &str {
        self.object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default()
    }
}

type Objects = BTreeMap<(String, String), Arc<Value>>;

struct State {
    revision: u64,
    objects: Vec<Objects>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Revision of the newest change dropped from the history: watches from an older revision get 410 Gone.
    compacted: u64,
}

/// The store of every object of the simulated cluster.
pub struct Store {
    admission: AdmissionConfig,
    state: Mutex<State>,
    changes: broadcast::Sender<Arc<Change>>,
}

/// How a write treats `.status` of types with a status subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteScope {
    /// A write to the object: its status is kept as stored.
    Main,
    /// A write to `/status`: only the status (and metadata labels/annotations) change.
    Status,
    /// A write of the whole object, spec and status together (the simulator's own controllers: binding a pod to a
    /// node sets its spec.nodeName and its PodScheduled condition).
    Whole,
}

impl Store {
    /// An empty store keeping the last `history_limit` changes for watches.
    pub fn new(history_limit: usize, admission: AdmissionConfig) -> Store {
        let (changes, _) = broadcast::channel(16_384);
        Store {
            admission,
            state: Mutex::new(State {
                revision: 1,
                objects: crate::resources::all().map(|_| BTreeMap::new()).collect(),
                history: VecDeque::new(),
                history_limit: history_limit.max(1),
                compacted: 0,
            }),
            changes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of the store as it is now, for a dry run (`dryRun=All`): writes to it are admitted, defaulted and
    /// answered as on the store itself, and no one else ever sees them.
    pub fn dry_run_copy(&self) -> Store {
        let state = self.lock();
        let (changes, _) = broadcast::channel(16);
        Store {
            admission: self.admission,
            state: Mutex::new(State {
                revision: state.revision,
                objects: state.objects.clone(),
                history: VecDeque::new(),
                history_limit: state.history_limit,
                compacted: state.revision,
            }),
            changes,
        }
    }

    /// The newest revision.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// One object.
    pub fn get(&self, resource: ResourceId, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.lock().objects[resource.0].get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Objects of a type, in one namespace or all, that pass `filter`, with the revision they were read at.
    pub fn list(
        &self,
        resource: ResourceId,
        namespace: Option<&str>,
        filter: impl Fn(&Value) -> bool,
    ) -> (Vec<Arc<Value>>, u64) {
        let state = self.lock();
        let objects = &state.objects[resource.0];
        let items = match namespace {
            Some(namespace) => objects
                .range((namespace.to_owned(), String::new())..)
                .take_while(|((object_namespace, _), _)| object_namespace == namespace)
                .map(|(_, object)| object)
                .filter(|object| filter(object))
                .cloned()
                .collect(),
            None => objects.values().filter(|object| filter(object)).cloned().collect(),
        };
        (items, state.revision)
    }

    /// The objects of a type as they were at `revision` (a list at an exact resourceVersion, or the rest of a paged
    /// list): the objects now, with every retained change after `revision` undone. `Err` 410 Gone when the history
    /// no longer reaches back that far, and 504 when `revision` is in the future.
    pub fn list_at(
        &self,
        resource: ResourceId,
        namespace: Option<&str>,
        filter: impl Fn(&Value) -> bool,
        revision: u64,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let state = self.lock();
        if revision > state.revision {
            return Err(ApiError::too_large_resource_version(revision, state.revision));
        }
        if revision < state.compacted {
            return Err(ApiError::expired(revision, state.compacted + 1));
        }
        let key = |object: &Value| {
            let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
            (text("/metadata/namespace"), text("/metadata/name"))
        };
        let mut objects = state.objects[resource.0].clone();
        for change in state.history.iter().rev().take_while(|change| change.revision > revision) {
            if change.resource != resource {
                continue;
            }
            match change.kind {
                ChangeKind::Added => {
                    objects.remove(&key(&change.object));
                }
                ChangeKind::Modified => {
                    if let Some(previous) = &change.previous {
                        objects.insert(key(previous), previous.clone());
                    }
                }
                ChangeKind::Deleted => {
                    objects.insert(key(&change.object), change.object.clone());
                }
            }
        }
        Ok(objects
            .into_iter()
            .filter(|((object_namespace, _), _)| namespace.is_none_or(|namespace| object_namespace == namespace))
            .map(|(_, object)| object)
            .filter(|object| filter(object))
            .collect())
    }

    /// How many objects of a type there are.
    pub fn count(&self, resource: ResourceId) -> usize {
        self.lock().objects[resource.0].len()
    }

    /// Creates an object. `namespace` is "" for cluster-scoped types. `manager`, for client writes, is recorded as
    /// the owner of the fields set (controllers pass `None`).
    pub fn create(
        &self,
        resource: ResourceId,
        namespace: &str,
        mut object: Value,
        manager: Option<&str>,
    ) -> Result<Arc<Value>, ApiError> {
        let resource_type = resource.resource_type();
        let mut state = self.lock();
        let namespace_object = if resource_type.namespaced {
            state.objects[NAMESPACES.0].get(&(String::new(), namespace.to_owned())).cloned()
        } else {
            None
        };
        if resource_type.namespaced {
            match &namespace_object {
                None => return Err(ApiError::not_found(NAMESPACES.resource_type(), namespace)),
                Some(existing) if existing.pointer("/metadata/deletionTimestamp").is_some() => {
                    return Err(ApiError::forbidden(
                        resource_type,
                        object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default(),
                        &format!(
                            "unable to create new content in namespace {namespace} because it is being terminated"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let metadata =
            object.as_object_mut().and_then(|object| object.get_mut("metadata")).and_then(Value::as_object_mut);
        let Some(metadata) = metadata else {
            return Err(ApiError::bad_request("metadata: Required value"));
        };
        if metadata.get("name").and_then(Value::as_str).is_none_or(str::is_empty)
            && let Some(prefix) = metadata.get("generateName").and_then(Value::as_str)
        {
            let name = format!("{prefix}{}", random_suffix(5));
            metadata.insert("name".into(), json!(name));
        }
        if resource_type.namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        metadata.insert("uid".into(), json!(new_uid()));
        metadata.insert("creationTimestamp".into(), json!(clock::now()));
        metadata.remove("deletionTimestamp");
        if resource_type.has_generation {
            metadata.insert("generation".into(), json!(1));
        } else {
            metadata.remove("generation");
        }
        admission::admit(&self.admission, resource, Operation::Create, None, namespace_object.as_deref(), &mut object)?;
        if let Some(manager) = manager {
            crate::patch::apply::record_update(None, &mut object, manager, None);
        }
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let key = (if resource_type.namespaced { namespace.to_owned() } else { String::new() }, name.clone());
        if state.objects[resource.0].contains_key(&key) {
            return Err(ApiError::already_exists(resource_type, &name));
        }
        Ok(self.commit(&mut state, resource, key, object, ChangeKind::Added))
    }

    /// Replaces an object with `new`, as an update (PUT) does.
    ///
    /// `new.metadata.resourceVersion`, when set, must be the stored one (optimistic concurrency). Identity fields
    /// (uid, creation time, name, namespace) are kept; for types with a status subresource, a main write keeps the
    /// stored status and a status write keeps everything but the status.
    pub fn update(
        &self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
        new: Value,
        scope: WriteScope,
        manager: Option<&str>,
    ) -> Result<Arc<Value>, ApiError> {
        self.modify(resource, namespace, name, scope, manager, |current: &mut Value| {
            let expected =
                new.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|version| !version.is_empty());
            if let Some(expected) = expected
                && Some(expected) != current.pointer("/metadata/resourceVersion").and_then(Value::as_str)
            {
                return Err(ApiError::conflict(resource.resource_type(), name));
            }
            *current = new;
            Ok(())
        })
    }

    /// Reads an object, changes it with `change` and writes it back, atomically. This is how patches and
    /// controllers write. A change that leaves the object as it was writes nothing and keeps its resourceVersion.
    /// `manager`, for client writes, is recorded as the owner of the fields changed.
    pub fn modify(
        &self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
        scope: WriteScope,
        manager: Option<&str>,
        change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let resource_type = resource.resource_type();
        let mut state = self.lock();
        let key = (if resource_type.namespaced { namespace.to_owned() } else { String::new() }, name.to_owned());
        let current =
            state.objects[resource.0].get(&key).cloned().ok_or_else(|| ApiError::not_found(resource_type, name))?;
        let mut new = (*current).clone();
        change(&mut new)?;
        let mut merged = carry_over(resource, &current, new, scope)?;
        admission::admit(&self.admission, resource, Operation::Update, Some(&current), None, &mut merged)?;
        if resource_type.has_generation && scope == WriteScope::Main && spec_of(&current) != spec_of(&merged) {
            let generation = current.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
            merged["metadata"]["generation"] = json!(generation);
        }
        if let Some(manager) = manager {
            let subresource = (scope == WriteScope::Status).then_some("status");
            crate::patch::apply::record_update(Some(&current), &mut merged, manager, subresource);
        }
        if same_object(&current, &merged) {
            return Ok(current);
        }
        // Deleting an object whose last finalizer is removed (for a namespace, also the namespace controller's
        // `spec.finalizers`, cleared once its objects are gone).
        let finalizers_done = ["/metadata/finalizers", "/spec/finalizers"]
            .iter()
            .filter(|pointer| **pointer == "/metadata/finalizers" || resource == NAMESPACES)
            .all(|pointer| merged.pointer(pointer).and_then(Value::as_array).is_none_or(Vec::is_empty));
        if merged.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers_done
            && !admission::waits_for_termination(resource, &merged)
        {
            return Ok(self.remove_locked(&mut state, resource, &key).unwrap_or(current));
        }
        Ok(self.commit(&mut state, resource, key, merged, ChangeKind::Modified))
    }

    /// Deletes an object now (no grace period, finalizers ignored), returning its last state.
    pub fn remove(&self, resource: ResourceId, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let resource_type = resource.resource_type();
        let mut state = self.lock();
        let key = (if resource_type.namespaced { namespace.to_owned() } else { String::new() }, name.to_owned());
        self.remove_locked(&mut state, resource, &key)
    }

    fn remove_locked(&self, state: &mut State, resource: ResourceId, key: &(String, String)) -> Option<Arc<Value>> {
        let removed = state.objects[resource.0].remove(key)?;
        state.revision += 1;
        let mut last = (*removed).clone();
        last["metadata"]["resourceVersion"] = json!(state.revision.to_string());
        let last = Arc::new(last);
        self.record(
            state,
            Change {
                revision: state.revision,
                resource,
                kind: ChangeKind::Deleted,
                object: last.clone(),
                previous: None,
            },
        );
        Some(last)
    }

    fn commit(
        &self,
        state: &mut State,
        resource: ResourceId,
        key: (String, String),
        mut object: Value,
        kind: ChangeKind,
    ) -> Arc<Value> {
        state.revision += 1;
        object["metadata"]["resourceVersion"] = json!(state.revision.to_string());
        let object = Arc::new(object);
        let previous = state.objects[resource.0].insert(key, object.clone());
        self.record(state, Change { revision: state.revision, resource, kind, object: object.clone(), previous });
        object
    }

    fn record(&self, state: &mut State, change: Change) {
        let change = Arc::new(change);
        state.history.push_back(change.clone());
        while state.history.len() > state.history_limit {
            if let Some(dropped) = state.history.pop_front() {
                state.compacted = dropped.revision;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.changes.send(change);
    }

    /// Starts a watch: the changes after `since` still in the history, and a receiver for the changes to come.
    /// Fails with 410 Gone when changes after `since` were already dropped.
    pub fn watch(&self, since: u64) -> Result<WatchStart, ApiError> {
        let state = self.lock();
        if since < state.compacted {
            return Err(ApiError::expired(since, state.compacted + 1));
        }
        let replay = state.history.iter().filter(|change| change.revision > since).cloned().collect();
        Ok((replay, self.changes.subscribe()))
    }

    /// Drops every change from the history: any watch resuming from a revision before now gets 410 Gone.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.compacted = state.revision;
        state.history.clear();
    }
}

/// Keeps what a client may not change: identity fields, and the status or the rest depending on the scope.
fn carry_over(resource: ResourceId, current: &Value, mut new: Value, scope: WriteScope) -> Result<Value, ApiError> {
    let resource_type = resource.resource_type();
    if !new.is_object() {
        return Err(ApiError::bad_request("the object must be a JSON object"));
    }
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    let name = current.pointer("/metadata/name").cloned().unwrap_or_default();
    if let Some(new_name) = new.pointer("/metadata/name").and_then(Value::as_str)
        && Some(new_name) != name.as_str()
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({new_name}) does not match the name on the URL ({})",
            name.as_str().unwrap_or_default()
        )));
    }
    // Clients cannot set or clear deletion fields; the store's own deletion (a whole-object write) does.
    let deletion_fields: &[&str] =
        if scope == WriteScope::Whole { &[] } else { &["deletionTimestamp", "deletionGracePeriodSeconds"] };
    for field in ["name", "namespace", "uid", "creationTimestamp", "generation"].iter().chain(deletion_fields) {
        let field = *field;
        match current["metadata"].get(field) {
            Some(value) => new["metadata"][field] = value.clone(),
            None => {
                if let Some(metadata) = new["metadata"].as_object_mut() {
                    metadata.remove(field);
                }
            }
        }
    }
    if resource_type.status_subresource && scope != WriteScope::Whole {
        match scope {
            WriteScope::Main => match current.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(object) = new.as_object_mut() {
                        object.remove("status");
                    }
                }
            },
            WriteScope::Status => {
                let status = new.get("status").cloned();
                let mut kept = current.clone();
                match status {
                    Some(status) => kept["status"] = status,
                    None => {
                        if let Some(object) = kept.as_object_mut() {
                            object.remove("status");
                        }
                    }
                }
                for field in ["labels", "annotations", "managedFields", "resourceVersion"] {
                    if let Some(value) = new["metadata"].get(field) {
                        kept["metadata"][field] = value.clone();
                    }
                }
                new = kept;
            }
            WriteScope::Whole => {}
        }
    }
    Ok(new)
}

/// The object without metadata and status: what `metadata.generation` counts changes of.
fn spec_of(object: &Value) -> Value {
    let mut spec = object.clone();
    if let Some(fields) = spec.as_object_mut() {
        fields.remove("metadata");
        fields.remove("status");
    }
    spec
}

/// Equal apart from the resourceVersion and managedFields timestamps: such a write changes nothing.
fn same_object(current: &Value, new: &Value) -> bool {
    let strip = |object: &Value| {
        let mut object = object.clone();
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("resourceVersion");
            if let Some(Value::Array(entries)) = metadata.get_mut("managedFields") {
                for entry in entries {
                    if let Some(entry) = entry.as_object_mut() {
                        entry.remove("time");
                    }
                }
            }
        }
        object
    };
    strip(current) == strip(new)
}

/// A random RFC 4122 version 4 UUID, as Kubernetes assigns to objects.
pub fn new_uid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes
        .iter()
        .enumerate()
        .map(|(index, byte)| match index {
            6 => format!("{:02x}", (byte & 0x0f) | 0x40),
            8 => format!("{:02x}", (byte & 0x3f) | 0x80),
            _ => format!("{byte:02x}"),
        })
        .collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The suffix alphabet Kubernetes uses for generated names (no vowels, no confusable characters).
pub fn random_suffix(length: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..length).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests;
