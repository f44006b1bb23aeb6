//! What the API server does to an object before storing it: defaulting and validation, per type.
//!
//! Only the defaults and rules that clients observe are modelled: the fields `kubectl get -o yaml` shows on a fresh
//! Deployment, the errors a bad Deployment, an invalid Istio route or an invalid Gateway API object gets (the
//! Gateway API CRD schemas are in [`crate::gateway_api::schema`]).

use crate::api_error::{ApiError, Cause};
use crate::resources::{self, ResourceId};
use serde_json::{Value, json};

/// The kind of write being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A change to an existing object.
    Update,
}

/// Settings of admission that differ between real clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// The Istio webhook's rule for route weights.
    pub istio_weight_rule: crate::istio::WeightRule,
}

/// Defaults and validates `object`; `old` is the stored object for updates, `namespace` the object's namespace (for
/// creates of namespaced objects), which mutating webhooks such as Istio's sidecar injector read.
pub fn admit(
    config: &AdmissionConfig,
    resource: ResourceId,
    operation: Operation,
    old: Option<&Value>,
    namespace: Option<&Value>,
    object: &mut Value,
) -> Result<(), ApiError> {
    let resource_type = resource.resource_type();
    let version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|api_version| api_version.rsplit('/').next())
        .map(str::to_owned);
    let version = version
        .filter(|version| resource_type.versions.contains(&version.as_str()))
        .unwrap_or_else(|| resource_type.preferred_version().to_owned());
    object["apiVersion"] = json!(resource_type.api_version(&version));
    object["kind"] = json!(resource_type.kind);
    if resource == resources::PODS && operation == Operation::Create {
        crate::istio::inject_sidecar(object, namespace);
    }
    default(resource, object);
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut causes = Vec::new();
    validate_metadata(resource, object, &mut causes);
    match resource {
        resources::DEPLOYMENTS | resources::REPLICA_SETS => validate_workload(object, old, &mut causes),
        resources::PODS => validate_pod(object, old, operation, &mut causes),
        resources::VIRTUAL_SERVICES => return crate::istio::validate_virtual_service(object, config.istio_weight_rule),
        resources::DESTINATION_RULES => return crate::istio::validate_destination_rule(object),
        resources::GATEWAY_CLASSES => crate::gateway_api::schema::validate_gateway_class(object, old, &mut causes),
        resources::GATEWAYS => crate::gateway_api::schema::validate_gateway(object, &mut causes),
        resources::HTTP_ROUTES => crate::gateway_api::schema::validate_http_route(object, &mut causes),
        _ => {}
    }
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid(resource_type, &name, causes)) }
}

/// Whether a deleted object stays until something finishes it: pods on a node wait for the kubelet to stop them.
pub fn waits_for_termination(resource: ResourceId, object: &Value) -> bool {
    resource == resources::PODS
        && object.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|node| !node.is_empty())
        && !matches!(object.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
}

fn insert_default(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.entry(key.to_owned()).or_insert(value);
    }
}

fn default(resource: ResourceId, object: &mut Value) {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    match resource {
        resources::NAMESPACES => {
            let name = object.pointer("/metadata/name").cloned().unwrap_or_default();
            let labels =
                object["metadata"].as_object_mut().map(|metadata| metadata.entry("labels").or_insert(json!({})));
            if let Some(labels) = labels.and_then(Value::as_object_mut) {
                labels.insert("kubernetes.io/metadata.name".into(), name);
            }
            insert_default(object, "spec", json!({}));
            insert_default(&mut object["spec"], "finalizers", json!(["kubernetes"]));
            insert_default(object, "status", json!({}));
            insert_default(&mut object["status"], "phase", json!("Active"));
        }
        resources::PODS => {
            insert_default(object, "spec", json!({}));
            default_pod_spec(&mut object["spec"]);
            insert_default(object, "status", json!({ "phase": "Pending", "qosClass": "BestEffort" }));
        }
        resources::DEPLOYMENTS => {
            insert_default(object, "spec", json!({}));
            let spec = &mut object["spec"];
            insert_default(spec, "replicas", json!(1));
            insert_default(spec, "revisionHistoryLimit", json!(10));
            insert_default(spec, "progressDeadlineSeconds", json!(600));
            insert_default(spec, "strategy", json!({}));
            insert_default(&mut spec["strategy"], "type", json!("RollingUpdate"));
            if spec["strategy"]["type"] == "RollingUpdate" {
                insert_default(&mut spec["strategy"], "rollingUpdate", json!({}));
                insert_default(&mut spec["strategy"]["rollingUpdate"], "maxUnavailable", json!("25%"));
                insert_default(&mut spec["strategy"]["rollingUpdate"], "maxSurge", json!("25%"));
            }
            default_template(spec);
            insert_default(object, "status", json!({}));
        }
        resources::REPLICA_SETS => {
            insert_default(object, "spec", json!({}));
            insert_default(&mut object["spec"], "replicas", json!(1));
            default_template(&mut object["spec"]);
            insert_default(object, "status", json!({ "replicas": 0 }));
        }
        resources::SERVICES => {
            insert_default(object, "spec", json!({}));
            let spec = &mut object["spec"];
            insert_default(spec, "type", json!("ClusterIP"));
            insert_default(spec, "sessionAffinity", json!("None"));
            insert_default(spec, "internalTrafficPolicy", json!("Cluster"));
            insert_default(spec, "ipFamilies", json!(["IPv4"]));
            insert_default(spec, "ipFamilyPolicy", json!("SingleStack"));
            if spec.get("clusterIP").is_none() {
                let address = format!("10.96.{}.{}", rand::random_range(0..255u8), rand::random_range(1..255u8));
                spec["clusterIP"] = json!(address);
                spec["clusterIPs"] = json!([address]);
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports {
                    insert_default(port, "protocol", json!("TCP"));
                    let number = port.get("port").cloned().unwrap_or_default();
                    insert_default(port, "targetPort", number);
                }
            }
            insert_default(object, "status", json!({ "loadBalancer": {} }));
        }
        resources::SECRETS => insert_default(object, "type", json!("Opaque")),
        resources::GATEWAYS => crate::gateway_api::schema::default_gateway(object),
        resources::HTTP_ROUTES => crate::gateway_api::schema::default_http_route(object),
        _ => {}
    }
}

fn default_template(spec: &mut Value) {
    insert_default(spec, "template", json!({}));
    let template = &mut spec["template"];
    insert_default(template, "metadata", json!({}));
    insert_default(&mut template["metadata"], "creationTimestamp", Value::Null);
    insert_default(template, "spec", json!({}));
    default_pod_spec(&mut template["spec"]);
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    insert_default(spec, "restartPolicy", json!("Always"));
    insert_default(spec, "terminationGracePeriodSeconds", json!(30));
    insert_default(spec, "dnsPolicy", json!("ClusterFirst"));
    insert_default(spec, "securityContext", json!({}));
    insert_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for container in containers {
                let image = container.get("image").and_then(Value::as_str).unwrap_or_default();
                let tag_is_latest = !image.contains('@')
                    && image.rsplit_once(':').is_none_or(|(_, tag)| tag.contains('/') || tag == "latest");
                insert_default(
                    container,
                    "imagePullPolicy",
                    json!(if tag_is_latest { "Always" } else { "IfNotPresent" }),
                );
                insert_default(container, "terminationMessagePath", json!("/dev/termination-log"));
                insert_default(container, "terminationMessagePolicy", json!("File"));
                insert_default(container, "resources", json!({}));
                if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports {
                        insert_default(port, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

fn cause(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Cause {
    Cause { reason, field: field.into(), message: message.into() }
}

fn validate_metadata(resource: ResourceId, object: &Value, causes: &mut Vec<Cause>) {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        causes.push(cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required"));
        return;
    }
    let label_only = matches!(resource, resources::NAMESPACES | resources::SERVICES);
    let valid = if label_only { naming::is_dns_label(name) } else { naming::is_dns_subdomain(name) };
    if !valid && resource != resources::EVENTS {
        let rule = if label_only {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        };
        causes.push(cause("FieldValueInvalid", "metadata.name", format!("Invalid value: \"{name}\": {rule}")));
    }
    if let Some(labels) = object.pointer("/metadata/labels").and_then(Value::as_object) {
        for (key, value) in labels {
            let text = value.as_str().unwrap_or_default();
            if !naming::is_label_value(text) {
                causes.push(cause(
                    "FieldValueInvalid",
                    "metadata.labels",
                    format!("Invalid value: \"{text}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (label {key})"),
                ));
            }
        }
    }
}

fn validate_containers(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    match spec.get("containers").and_then(Value::as_array) {
        Some(containers) if !containers.is_empty() => {
            for (index, container) in containers.iter().enumerate() {
                let name = container.get("name").and_then(Value::as_str).unwrap_or_default();
                if name.is_empty() {
                    causes.push(cause(
                        "FieldValueRequired",
                        format!("{path}.containers[{index}].name"),
                        "Required value",
                    ));
                }
                if container.get("image").and_then(Value::as_str).is_none_or(str::is_empty) {
                    causes.push(cause(
                        "FieldValueRequired",
                        format!("{path}.containers[{index}].image"),
                        "Required value",
                    ));
                }
            }
        }
        _ => causes.push(cause("FieldValueRequired", format!("{path}.containers"), "Required value")),
    }
}

fn validate_workload(object: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    if let Some(replicas) = spec.get("replicas").and_then(Value::as_i64)
        && replicas < 0
    {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.replicas",
            format!("Invalid value: {replicas}: must be greater than or equal to 0"),
        ));
    }
    let selector = spec.get("selector");
    match selector {
        None | Some(Value::Null) => causes.push(cause("FieldValueRequired", "spec.selector", "Required value")),
        Some(selector) => {
            let selects = crate::store::selectors::LabelSelector::from_object(selector);
            let template = json!({ "metadata": { "labels": spec.pointer("/template/metadata/labels").cloned().unwrap_or(json!({})) } });
            if selects.is_empty() {
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.selector",
                    "Invalid value: \"null\": empty selector is invalid for deployment",
                ));
            } else if !selects.matches(&template) {
                let labels = spec.pointer("/template/metadata/labels").cloned().unwrap_or(json!({}));
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.template.metadata.labels",
                    format!("Invalid value: {}: `selector` does not match template `labels`", go_map(&labels)),
                ));
            }
            if let Some(old) = old
                && old["spec"].get("selector") != Some(selector)
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.selector",
                    format!("Invalid value: {}: field is immutable", go_selector(selector)),
                ));
            }
        }
    }
    validate_containers(spec.pointer("/template/spec").unwrap_or(&Value::Null), "spec.template.spec", causes);
}

fn validate_pod(object: &Value, old: Option<&Value>, operation: Operation, causes: &mut Vec<Cause>) {
    validate_containers(&object["spec"], "spec", causes);
    if operation == Operation::Update
        && let Some(old) = old
    {
        // Pod specs are immutable apart from container images, activeDeadlineSeconds, tolerations and the scheduler's
        // binding (nodeName is set once).
        let mutable_stripped = |spec: &Value| {
            let mut spec = spec.clone();
            for list in ["containers", "initContainers"] {
                if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
                    for container in containers {
                        if let Some(container) = container.as_object_mut() {
                            container.remove("image");
                        }
                    }
                }
            }
            if let Some(spec) = spec.as_object_mut() {
                spec.remove("activeDeadlineSeconds");
                spec.remove("tolerations");
                spec.remove("nodeName");
            }
            spec
        };
        if mutable_stripped(&old["spec"]) != mutable_stripped(&object["spec"]) {
            causes.push(cause(
                "FieldValueForbidden",
                "spec",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
    }
}

/// `map[string]string{"app":"reviews"}`, as Go prints a label map in validation messages.
fn go_map(labels: &Value) -> String {
    let entries: Vec<String> = labels
        .as_object()
        .map(|labels| {
            labels.iter().map(|(key, value)| format!("\"{key}\":\"{}\"", value.as_str().unwrap_or_default())).collect()
        })
        .unwrap_or_default();
    format!("map[string]string{{{}}}", entries.join(", "))
}

fn go_selector(selector: &Value) -> String {
    let labels = selector.get("matchLabels").cloned().unwrap_or(json!({}));
    format!("v1.LabelSelector{{MatchLabels:{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}", go_map(&labels))
}

/// Kubernetes naming rules. The simulator speaks Kubernetes, not fledge, so it does not borrow fledge-core's.
mod naming {
    pub(super) fn is_dns_label(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    pub(super) fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= 253 && name.split('.').all(is_dns_label)
    }

    pub(super) fn is_label_value(value: &str) -> bool {
        value.is_empty()
            || (value.len() <= 63
                && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && value.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && value.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()))
    }
}
