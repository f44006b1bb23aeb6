//! The simulated kubelet: runs each pod bound to a simulated node through the life its behaviour prescribes, and
//! writes pod status, events and container logs with the strings a real kubelet (1.32, containerd) uses.
//!
//! Over 500 lines on purpose: the container state machine below, with every status string and event message a real
//! kubelet writes for each transition, reads as one table.
//!
//! ```text
//! container: Waiting(ContainerCreating) ─pull─▶ Running ─crash─▶ Terminated ─▶ Running (first restart at once)
//!               │        │                         │                  └────▶ Waiting(CrashLoopBackOff 10s, 20s … 5m)
//!               │        └─fail─▶ ErrImagePull ⇄ ImagePullBackOff
//!               ├─▶ InvalidImageName        └─▶ ready after `ready_after`, flapping if asked
//!               └─▶ CreateContainerConfigError (missing ConfigMap/Secret; retried)
//! ```

use super::Cluster;
use super::events::{EventType, Reporter};
use super::nodes::node_ip;
use crate::behaviour::{Behaviour, CrashKind, PullFailure};
use crate::clock;
use crate::resources;
use crate::store::WriteScope;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Back-off of crash loops and image pulls: 10s doubling to 5m.
fn back_off(step: u32) -> Duration {
    Duration::from_secs(10u64.saturating_mul(1 << step.min(5)).min(300))
}

/// Go's `time.Duration.String()` for whole seconds: `10s`, `1m20s`, `5m0s`.
fn go_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds < 60 { format!("{seconds}s") } else { format!("{}m{}s", seconds / 60, seconds % 60) }
}

/// `docker.io/library/nginx:latest` for `nginx`: the reference containerd reports.
fn normalized_image(image: &str) -> String {
    let (name, tag) = match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), format!(":{tag}")),
        _ if image.contains('@') => (image.to_owned(), String::new()),
        _ => (image.to_owned(), ":latest".to_owned()),
    };
    let first = name.split('/').next().unwrap_or_default();
    let qualified = if name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        name
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{qualified}{tag}")
}

fn valid_image_reference(image: &str) -> bool {
    !image.is_empty()
        && !image.chars().any(char::is_whitespace)
        && image
            .split(['@', ':'])
            .next()
            .is_some_and(|repository| repository == repository.to_lowercase() && !repository.is_empty())
}

fn hex_digest(seed: &str, length: usize) -> String {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = String::new();
    while out.len() < length {
        for byte in seed.bytes().chain(out.len().to_le_bytes()) {
            state ^= u64::from(byte);
            state = state.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{state:016x}"));
    }
    out.truncate(length);
    out
}

#[derive(Debug, Clone)]
enum State {
    /// Not started: ContainerCreating / PodInitializing.
    Created,
    /// Pulling the image until the instant.
    Pulling {
        until: Instant,
        started: Instant,
    },
    /// Waiting with a reason, until the instant (then retried).
    Waiting {
        reason: String,
        message: String,
        until: Option<Instant>,
    },
    Running {
        since: Instant,
        started_at: String,
    },
    /// Just exited; shown briefly before a restart or back-off.
    Terminated {
        terminated: Value,
        until: Instant,
        exit_code: i64,
    },
}

#[derive(Debug, Clone)]
struct Container {
    name: String,
    image: String,
    init: bool,
    behaviour: Behaviour,
    state: State,
    restart_count: u32,
    last_terminated: Option<Value>,
    container_id: Option<String>,
    ready: bool,
    pull_failures: u32,
    logs: Vec<String>,
    previous_logs: Option<Vec<String>>,
    flap_toggled_at: Option<Instant>,
}

struct PodRuntime {
    node: String,
    node_index: usize,
    ip: String,
    start_time: String,
    sandbox_ready: Instant,
    init: Vec<Container>,
    main: Vec<Container>,
    terminating_since: Option<Instant>,
    transitions: HashMap<&'static str, (String, String)>,
}

/// A container's logs by pod uid and container name.
type LogKey = (String, String);

/// The current and the previous instance's log lines.
type ContainerLogs = (Vec<String>, Option<Vec<String>>);

/// The kubelets of every simulated node, and the container logs they keep.
#[derive(Default)]
pub(super) struct Kubelet {
    pods: HashMap<String, PodRuntime>,
    logs: HashMap<LogKey, ContainerLogs>,
}

impl Kubelet {
    /// Log lines of a container (`previous`: of its last terminated instance).
    pub(super) fn lines(&self, uid: &str, container: &str, previous: bool) -> Option<Vec<String>> {
        let (current, prior) = self.logs.get(&(uid.to_owned(), container.to_owned()))?;
        if previous { prior.clone() } else { Some(current.clone()) }
    }
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn run(cluster: &Cluster) {
    let store = &cluster.store;
    let (pods, _) =
        store.list(resources::PODS, None, |pod| cluster.nodes.iter().any(|node| node == text(pod, "/spec/nodeName")));
    let mut kubelet = cluster.kubelet.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let live: std::collections::HashSet<String> =
        pods.iter().map(|pod| text(pod, "/metadata/uid").to_owned()).collect();
    kubelet.pods.retain(|uid, _| live.contains(uid));
    kubelet.logs.retain(|(uid, _), _| live.contains(uid));
    for pod in pods {
        let uid = text(&pod, "/metadata/uid").to_owned();
        if !kubelet.pods.contains_key(&uid) {
            let runtime = new_runtime(cluster, &pod);
            kubelet.pods.insert(uid.clone(), runtime);
        }
        let mut events: Vec<(Option<String>, EventType, &'static str, String)> = Vec::new();
        let runtime = kubelet.pods.get_mut(&uid).expect("inserted above");
        let finished = advance(cluster, &pod, runtime, &mut events);
        let node = runtime.node.clone();
        let status = pod_status(&pod, runtime);
        let mut log_updates = Vec::new();
        for container in runtime.init.iter().chain(&runtime.main) {
            log_updates.push((
                (uid.clone(), container.name.clone()),
                (container.logs.clone(), container.previous_logs.clone()),
            ));
        }
        kubelet.logs.extend(log_updates);
        let namespace = text(&pod, "/metadata/namespace").to_owned();
        let name = text(&pod, "/metadata/name").to_owned();
        if finished {
            let held =
                pod.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|list| !list.is_empty());
            if !held {
                store.remove(resources::PODS, &namespace, &name);
                kubelet.pods.remove(&uid);
                continue;
            }
            // A finalizer holds the pod: the kubelet is done with it and moves it to a terminal phase, as a real
            // kubelet does; the API server keeps it until its last finalizer is removed.
            let _ = store.modify(resources::PODS, &namespace, &name, WriteScope::Whole, None, |object| {
                if object.pointer("/status/phase").and_then(Value::as_str) != Some("Succeeded") {
                    object["status"]["phase"] = json!("Failed");
                }
                Ok(())
            });
            continue;
        }
        let written = store.modify(resources::PODS, &namespace, &name, WriteScope::Status, None, |object| {
            object["status"] = status;
            Ok(())
        });
        let object = written.ok().unwrap_or(pod);
        for (container, event_type, reason, message) in events {
            let field_path = container.as_deref().map(|container| {
                let list = if object
                    .pointer("/spec/initContainers")
                    .and_then(Value::as_array)
                    .is_some_and(|init| init.iter().any(|spec| spec["name"] == container))
                {
                    "initContainers"
                } else {
                    "containers"
                };
                format!("spec.{list}{{{container}}}")
            });
            cluster.events.record(
                &object,
                field_path.as_deref(),
                Reporter::Kubelet(node.clone()),
                event_type,
                reason,
                &message,
            );
        }
    }
}

fn new_runtime(cluster: &Cluster, pod: &Value) -> PodRuntime {
    let node_name = text(pod, "/spec/nodeName");
    let node_index = cluster.nodes.iter().position(|name| name == node_name).unwrap_or(0);
    let containers = |list: &str, init: bool| -> Vec<Container> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|spec| {
                let image = spec["image"].as_str().unwrap_or_default().to_owned();
                Container {
                    name: spec["name"].as_str().unwrap_or_default().to_owned(),
                    behaviour: cluster.scenario.behaviour_for(&image),
                    image,
                    init,
                    state: State::Created,
                    restart_count: 0,
                    last_terminated: None,
                    container_id: None,
                    ready: false,
                    pull_failures: 0,
                    logs: Vec::new(),
                    previous_logs: None,
                    flap_toggled_at: None,
                }
            })
            .collect()
    };
    let mut counter = cluster.ip_counter.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *counter += 1;
    let ip = format!("10.244.{node_index}.{}", (*counter % 250) + 2);
    PodRuntime {
        node: cluster.nodes[node_index].clone(),
        node_index,
        ip,
        start_time: clock::now(),
        sandbox_ready: Instant::now() + cluster.scale.real(Duration::from_millis(300)),
        init: containers("initContainers", true),
        main: containers("containers", false),
        terminating_since: None,
        transitions: HashMap::new(),
    }
}

/// A missing ConfigMap, Secret or key the container's environment refers to, as the kubelet words it.
fn config_error(cluster: &Cluster, namespace: &str, spec: &Value) -> Option<String> {
    let store = &cluster.store;
    let lookup = |kind: &str, name: &str| {
        let resource = if kind == "configmap" { resources::CONFIG_MAPS } else { resources::SECRETS };
        store.get(resource, namespace, name)
    };
    for source in spec["envFrom"].as_array().into_iter().flatten() {
        for (field, kind) in [("configMapRef", "configmap"), ("secretRef", "secret")] {
            if let Some(reference) = source.get(field) {
                let name = reference["name"].as_str().unwrap_or_default();
                if reference["optional"] != true && lookup(kind, name).is_none() {
                    return Some(format!("{kind} \"{name}\" not found"));
                }
            }
        }
    }
    for variable in spec["env"].as_array().into_iter().flatten() {
        for (field, kind, display) in
            [("configMapKeyRef", "configmap", "ConfigMap"), ("secretKeyRef", "secret", "Secret")]
        {
            if let Some(reference) = variable.pointer(&format!("/valueFrom/{field}")) {
                let name = reference["name"].as_str().unwrap_or_default();
                let key = reference["key"].as_str().unwrap_or_default();
                if reference["optional"] == true {
                    continue;
                }
                match lookup(kind, name) {
                    None => return Some(format!("{kind} \"{name}\" not found")),
                    Some(object) => {
                        let present = object.pointer(&format!("/data/{key}")).is_some()
                            || object.pointer(&format!("/binaryData/{key}")).is_some();
                        if !present {
                            return Some(format!("couldn't find key {key} in {display} {namespace}/{name}"));
                        }
                    }
                }
            }
        }
    }
    None
}

type Events = Vec<(Option<String>, EventType, &'static str, String)>;

/// Starts a container again (its image is on the node already), counting the restart.
fn restart_container(container: &mut Container, now: Instant, events: &mut Events, image: &str) {
    container.restart_count += 1;
    start_container(container, now, events, format!("Container image \"{image}\" already present on machine"));
}

/// Records an event of container `name`.
fn event(events: &mut Events, name: &str, kind: EventType, reason: &'static str, message: String) {
    events.push((Some(name.to_owned()), kind, reason, message));
}

/// Advances a pod; returns true when a deleted pod has finished terminating and can be removed.
fn advance(cluster: &Cluster, pod: &Value, runtime: &mut PodRuntime, events: &mut Events) -> bool {
    let now = Instant::now();
    let scale = cluster.scale;
    let namespace = text(pod, "/metadata/namespace").to_owned();
    let pod_label = format!("{}_{}({})", text(pod, "/metadata/name"), namespace, text(pod, "/metadata/uid"));

    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        let since = *runtime.terminating_since.get_or_insert_with(|| {
            for container in runtime.init.iter().chain(&runtime.main) {
                if matches!(container.state, State::Running { .. }) {
                    events.push((
                        Some(container.name.clone()),
                        EventType::Normal,
                        "Killing",
                        format!("Stopping container {}", container.name),
                    ));
                }
            }
            now
        });
        let grace = pod.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_u64).unwrap_or(30);
        let stop_after = scale.real(Duration::from_secs(grace.min(2))).max(Duration::from_millis(200));
        if now >= since + stop_after {
            return true;
        }
        for container in runtime.main.iter_mut().chain(runtime.init.iter_mut()) {
            container.ready = false;
        }
        return false;
    }
    if now < runtime.sandbox_ready {
        return false;
    }
    // Init containers run one after another; the main containers start once all have completed.
    let mut init_done = true;
    for index in 0..runtime.init.len() {
        let completed = matches!(&runtime.init[index].state, State::Terminated { exit_code: 0, .. })
            || runtime.init[index].last_terminated.as_ref().is_some_and(|_| false);
        if completed {
            continue;
        }
        let container = &mut runtime.init[index];
        let spec = pod.pointer(&format!("/spec/initContainers/{index}")).cloned().unwrap_or_default();
        advance_container(cluster, container, &spec, &namespace, &pod_label, now, events);
        init_done = false;
        break;
    }
    if init_done {
        for (index, container) in runtime.main.iter_mut().enumerate() {
            let spec = pod.pointer(&format!("/spec/containers/{index}")).cloned().unwrap_or_default();
            advance_container(cluster, container, &spec, &namespace, &pod_label, now, events);
        }
    }
    let _ = runtime.node_index;
    false
}

fn start_container(container: &mut Container, now: Instant, events: &mut Events, pulled_message: String) {
    events.push((Some(container.name.clone()), EventType::Normal, "Pulled", pulled_message));
    events.push((
        Some(container.name.clone()),
        EventType::Normal,
        "Created",
        format!("Created container: {}", container.name),
    ));
    events.push((
        Some(container.name.clone()),
        EventType::Normal,
        "Started",
        format!("Started container {}", container.name),
    ));
    container.container_id = Some(format!(
        "containerd://{}",
        hex_digest(&format!("{}{:?}{}", container.name, now, container.restart_count), 64)
    ));
    let started_at = clock::now();
    // The last instance's logs stay readable as `--previous` once a new instance starts.
    if container.restart_count > 0 {
        container.previous_logs = Some(std::mem::take(&mut container.logs));
    }
    container.logs = start_logs(container);
    container.state = State::Running { since: now, started_at };
    container.ready = false;
    container.flap_toggled_at = None;
}

fn start_logs(container: &Container) -> Vec<String> {
    let time = clock::now();
    let mut lines = vec![
        format!("{time} INFO starting {} ({})", container.name, container.image),
        format!("{time} INFO configuration loaded"),
    ];
    if !container.init {
        lines.push(format!("{time} INFO listening on :9080"));
    }
    lines
}

#[allow(clippy::too_many_lines)]
fn advance_container(
    cluster: &Cluster,
    container: &mut Container,
    spec: &Value,
    namespace: &str,
    pod_label: &str,
    now: Instant,
    events: &mut Events,
) {
    let scale = cluster.scale;
    let name = container.name.clone();
    let image = container.image.clone();
    match container.state.clone() {
        State::Created => {
            if container.behaviour.invalid_image || !valid_image_reference(&image) {
                let message = format!(
                    "Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": invalid reference format"
                );
                event(events, &name, EventType::Warning, "InspectFailed", message.clone());
                event(events, &name, EventType::Warning, "Failed", "Error: InvalidImageName".into());
                container.state = State::Waiting { reason: "InvalidImageName".into(), message, until: None };
                return;
            }
            event(events, &name, EventType::Normal, "Pulling", format!("Pulling image \"{image}\""));
            container.state = State::Pulling { until: now + scale.real(container.behaviour.pull), started: now };
        }
        State::Pulling { until, started } => {
            if now < until {
                return;
            }
            if let Some(failure) = container.behaviour.pull_failure {
                let normalized = normalized_image(&image);
                let error = match failure {
                    PullFailure::NotFound => format!(
                        "rpc error: code = NotFound desc = failed to pull and unpack image \"{normalized}\": failed to resolve reference \"{normalized}\": {normalized}: not found"
                    ),
                    PullFailure::Unauthorized => format!(
                        "failed to pull and unpack image \"{normalized}\": failed to resolve reference \"{normalized}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"
                    ),
                };
                event(
                    events,
                    &name,
                    EventType::Warning,
                    "Failed",
                    format!("Failed to pull image \"{image}\": {error}"),
                );
                event(events, &name, EventType::Warning, "Failed", "Error: ErrImagePull".into());
                let wait = scale.real(back_off(container.pull_failures));
                container.pull_failures += 1;
                container.state =
                    State::Waiting { reason: "ErrImagePull".into(), message: error, until: Some(now + wait) };
                return;
            }
            if let Some(message) =
                container.behaviour.config_error.clone().or_else(|| config_error(cluster, namespace, spec))
            {
                event(
                    events,
                    &name,
                    EventType::Normal,
                    "Pulled",
                    format!("Container image \"{image}\" already present on machine"),
                );
                event(events, &name, EventType::Warning, "Failed", format!("Error: {message}"));
                container.state = State::Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message,
                    until: Some(now + scale.real(Duration::from_secs(10))),
                };
                return;
            }
            let pulled_in = (until - started).mul_f64(scale.factor());
            let millis = pulled_in.as_millis();
            let duration =
                if millis >= 1000 { format!("{:.3}s", pulled_in.as_secs_f64()) } else { format!("{millis}ms") };
            let size = 20_000_000 + (u64::from_str_radix(&hex_digest(&image, 6), 16).unwrap_or(0) % 60_000_000);
            let message = format!(
                "Successfully pulled image \"{image}\" in {duration} ({duration} including waiting). Image size: {size} bytes."
            );
            start_container(container, now, events, message);
        }
        State::Waiting { reason, message, until } => {
            let Some(until) = until else { return };
            if now < until {
                return;
            }
            match reason.as_str() {
                "ErrImagePull" => {
                    // The back-off window: ImagePullBackOff until it expires, then another attempt.
                    let wait = scale.real(back_off(container.pull_failures.saturating_sub(1)));
                    event(events, &name, EventType::Normal, "BackOff", format!("Back-off pulling image \"{image}\""));
                    event(events, &name, EventType::Warning, "Failed", "Error: ImagePullBackOff".into());
                    container.state = State::Waiting {
                        reason: "ImagePullBackOff".into(),
                        message: format!("Back-off pulling image \"{image}\": ErrImagePull: {message}"),
                        until: Some(now + wait),
                    };
                }
                "ImagePullBackOff" => {
                    event(events, &name, EventType::Normal, "Pulling", format!("Pulling image \"{image}\""));
                    container.state =
                        State::Pulling { until: now + scale.real(container.behaviour.pull), started: now };
                }
                "CreateContainerConfigError" => {
                    container.state = State::Pulling { until: now, started: now };
                }
                "CrashLoopBackOff" => {
                    restart_container(container, now, events, &image);
                }
                _ => {}
            }
        }
        State::Running { since, started_at } => {
            let running_for = scale.simulated(now.duration_since(since));
            let crash = match (container.behaviour.crash, container.init) {
                (Some((after, kind)), _) if running_for >= after => Some(kind),
                (None, true) if running_for >= Duration::from_secs(1) => None,
                _ => {
                    update_readiness(container, running_for, now, scale, events);
                    return;
                }
            };
            let (exit_code, reason) = match crash {
                Some(CrashKind::Error) => (1, "Error"),
                Some(CrashKind::OutOfMemory) => (137, "OOMKilled"),
                None => (0, "Completed"),
            };
            let time = clock::now();
            match crash {
                Some(CrashKind::Error) => {
                    container.logs.push(format!("{time} ERROR fatal: unrecoverable error, exiting with code 1"))
                }
                Some(CrashKind::OutOfMemory) => container.logs.push(format!("{time} INFO allocating request buffers")),
                None => container.logs.push(format!("{time} INFO done")),
            }
            let terminated = json!({
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": started_at,
                "finishedAt": time,
                "containerID": container.container_id,
            });
            container.ready = false;
            container.state = State::Terminated { terminated, until: now + Duration::from_millis(300), exit_code };
        }
        State::Terminated { terminated, until, exit_code } => {
            if exit_code == 0 && container.init {
                return;
            }
            if now < until {
                return;
            }
            container.last_terminated = Some(terminated);
            if container.restart_count == 0 {
                // The first restart happens at once.
                restart_container(container, now, events, &image);
            } else {
                let wait = back_off(container.restart_count - 1);
                event(
                    events,
                    &name,
                    EventType::Warning,
                    "BackOff",
                    format!("Back-off restarting failed container {name} in pod {pod_label}"),
                );
                container.state = State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {} restarting failed container={name} pod={pod_label}",
                        go_duration(wait)
                    ),
                    until: Some(now + scale.real(wait)),
                };
            }
        }
    }
}

fn update_readiness(
    container: &mut Container,
    running_for: Duration,
    now: Instant,
    scale: crate::clock::TimeScale,
    events: &mut Events,
) {
    if container.init {
        return;
    }
    let should_be_ready = running_for >= container.behaviour.ready_after;
    match container.behaviour.flapping {
        Some(period) if should_be_ready => {
            let toggled = *container.flap_toggled_at.get_or_insert(now);
            if now.duration_since(toggled) >= scale.real(period) {
                container.flap_toggled_at = Some(now);
                container.ready = !container.ready;
                if !container.ready {
                    events.push((
                        Some(container.name.clone()),
                        EventType::Warning,
                        "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503".into(),
                    ));
                }
            } else if !container.ready && now == toggled {
                container.ready = true;
            }
        }
        _ => container.ready = should_be_ready,
    }
}

fn container_status(container: &Container) -> Value {
    let image_id = if container.container_id.is_some() {
        let normalized = normalized_image(&container.image);
        let repository =
            normalized.rsplit_once(':').map_or(normalized.as_str(), |(repository, _)| repository).to_owned();
        format!("{repository}@sha256:{}", hex_digest(&container.image, 64))
    } else {
        String::new()
    };
    let image =
        if container.container_id.is_some() { normalized_image(&container.image) } else { container.image.clone() };
    let (state, started) = match &container.state {
        State::Created | State::Pulling { .. } => {
            let reason = if container.init { "PodInitializing" } else { "ContainerCreating" };
            (json!({ "waiting": { "reason": reason } }), false)
        }
        State::Waiting { reason, message, .. } => {
            (json!({ "waiting": { "reason": reason, "message": message } }), false)
        }
        State::Running { started_at, .. } => (json!({ "running": { "startedAt": started_at } }), true),
        State::Terminated { terminated, .. } => (json!({ "terminated": terminated }), false),
    };
    let ready = match &container.state {
        State::Terminated { exit_code: 0, .. } if container.init => true,
        State::Running { .. } => container.ready,
        _ => false,
    };
    let mut status = json!({
        "name": container.name,
        "image": image,
        "imageID": image_id,
        "lastState": container.last_terminated.as_ref().map_or(json!({}), |terminated| json!({ "terminated": terminated })),
        "ready": ready,
        "restartCount": container.restart_count,
        "started": started,
        "state": state,
    });
    if let Some(id) = &container.container_id {
        status["containerID"] = json!(id);
    }
    status
}

fn condition(
    runtime: &mut PodRuntime,
    kind: &'static str,
    status: bool,
    reason_message: Option<(&str, String)>,
) -> Value {
    let status_text = if status { "True" } else { "False" };
    let entry = runtime.transitions.entry(kind).or_insert_with(|| (status_text.to_owned(), clock::now()));
    if entry.0 != status_text {
        *entry = (status_text.to_owned(), clock::now());
    }
    let mut condition =
        json!({ "type": kind, "status": status_text, "lastProbeTime": null, "lastTransitionTime": entry.1 });
    if let Some((reason, message)) = reason_message {
        condition["reason"] = json!(reason);
        if !message.is_empty() {
            condition["message"] = json!(message);
        }
    }
    condition
}

fn pod_status(pod: &Value, runtime: &mut PodRuntime) -> Value {
    let sandbox = Instant::now() >= runtime.sandbox_ready;
    let init_statuses: Vec<Value> = runtime.init.iter().map(container_status).collect();
    let mut main_statuses: Vec<Value> = runtime.main.iter().map(container_status).collect();
    main_statuses.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let incomplete_init: Vec<String> = runtime
        .init
        .iter()
        .filter(|container| !matches!(container.state, State::Terminated { exit_code: 0, .. }))
        .map(|container| container.name.clone())
        .collect();
    let unready: Vec<String> = runtime
        .main
        .iter()
        .filter(|container| !(container.ready && matches!(container.state, State::Running { .. })))
        .map(|container| container.name.clone())
        .collect();
    let any_running = runtime.main.iter().any(|container| matches!(container.state, State::Running { .. }));
    let any_started_before = runtime.main.iter().any(|container| container.last_terminated.is_some());
    let phase = if !incomplete_init.is_empty() {
        "Pending"
    } else if any_running || any_started_before {
        "Running"
    } else {
        "Pending"
    };
    let initialized = incomplete_init.is_empty();
    let ready = initialized && unready.is_empty() && runtime.terminating_since.is_none();
    let not_ready = Some(("ContainersNotReady", format!("containers with unready status: [{}]", unready.join(" "))));
    let mut conditions = vec![
        condition(runtime, "PodReadyToStartContainers", sandbox, None),
        condition(
            runtime,
            "Initialized",
            initialized,
            (!initialized).then(|| {
                (
                    "ContainersNotInitialized",
                    format!("containers with incomplete status: [{}]", incomplete_init.join(" ")),
                )
            }),
        ),
        condition(runtime, "Ready", ready, if ready { None } else { not_ready.clone() }),
        condition(runtime, "ContainersReady", ready, if ready { None } else { not_ready }),
    ];
    let scheduled = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|conditions| conditions.iter().find(|condition| condition["type"] == "PodScheduled").cloned())
        .unwrap_or_else(|| json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": runtime.start_time }));
    conditions.push(scheduled);
    let requests = pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten().any(|container| {
        container.pointer("/resources/requests").is_some() || container.pointer("/resources/limits").is_some()
    });
    let node_address = node_ip(runtime.node_index);
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": node_address,
        "hostIPs": [{ "ip": node_address }],
        "startTime": runtime.start_time,
        "qosClass": if requests { "Burstable" } else { "BestEffort" },
        "containerStatuses": main_statuses,
    });
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    if sandbox {
        status["podIP"] = json!(runtime.ip);
        status["podIPs"] = json!([{ "ip": runtime.ip }]);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_to_five_minutes() {
        let shown: Vec<String> = (0..7).map(|step| go_duration(back_off(step))).collect();
        assert_eq!(shown, ["10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s"]);
    }

    #[test]
    fn images_are_normalised_like_containerd() {
        assert_eq!(normalized_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalized_image("team/app:1"), "docker.io/team/app:1");
        assert_eq!(normalized_image("registry.example.com/reviews:2.4.1"), "registry.example.com/reviews:2.4.1");
        assert_eq!(normalized_image("localhost:5000/app"), "localhost:5000/app:latest");
        assert!(!valid_image_reference("Reviews:1"));
        assert!(valid_image_reference("reviews:1"));
    }
}
