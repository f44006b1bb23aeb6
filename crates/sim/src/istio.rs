//! What istiod's validating webhook (`validation.istio.io`) and the Istio CRD schemas reject.
//!
//! Current Istio (1.15 and later) accepts route weights that do not sum to 100 and normalises them; older meshes
//! rejected them with `total destination weight N != 100`. The simulator applies the older, stricter rule by default
//! ([`WeightRule::SumTo100`]), so a tool that writes such routes is caught; [`WeightRule::NonNegative`] matches
//! current Istio.

use crate::api_error::{ApiError, Cause};
use crate::resources::{DESTINATION_RULES, VIRTUAL_SERVICES};
use serde_json::{Value, json};

/// Which weight rule the webhook enforces on http, tcp and tls routes with several destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightRule {
    /// Istio before 1.15: every weight within 0..=100 and, with several destinations, a sum of exactly 100.
    #[default]
    SumTo100,
    /// Istio 1.15 and later: weights not negative and, with several destinations, not all zero.
    NonNegative,
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The webhook's denial: HTTP 400 with no reason, as kube-apiserver reports a webhook that sets only a message.
fn denied(errors: &[String]) -> ApiError {
    let detail = match errors {
        [single] => single.clone(),
        _ => {
            let items: String = errors.iter().map(|error| format!("\n\t* {error}")).collect();
            format!("{} errors occurred:{items}\n\n", errors.len())
        }
    };
    ApiError {
        code: 400,
        reason: "",
        message: format!(
            "admission webhook \"validation.istio.io\" denied the request: configuration is invalid: {detail}"
        ),
        details: None,
        retry_after_seconds: None,
    }
}

fn required(field: String) -> Cause {
    Cause { reason: "FieldValueRequired", message: "Required value".into(), field }
}

/// Validates a VirtualService as the CRD schema and then the webhook would.
pub fn validate_virtual_service(object: &Value, rule: WeightRule) -> Result<(), ApiError> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let spec = object.get("spec").unwrap_or(&Value::Null);
    // CRD schema: every route destination needs a host.
    let mut schema_causes = Vec::new();
    for kind in ["http", "tcp", "tls"] {
        for (route_index, route) in spec.get(kind).and_then(Value::as_array).into_iter().flatten().enumerate() {
            for (index, destination) in route.get("route").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let path = format!("spec.{kind}[{route_index}].route[{index}].destination");
                match destination.get("destination") {
                    None | Some(Value::Null) => schema_causes.push(required(path)),
                    Some(destination) if destination.get("host").and_then(Value::as_str).is_none() => {
                        schema_causes.push(required(format!("{path}.host")));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    if !schema_causes.is_empty() {
        return Err(ApiError::invalid(VIRTUAL_SERVICES.resource_type(), name, schema_causes));
    }

    let mut errors = Vec::new();
    let routes = |kind: &str| spec.get(kind).and_then(Value::as_array).map_or(0, Vec::len);
    if routes("http") + routes("tcp") + routes("tls") == 0 {
        errors.push("http, tcp or tls must be provided in virtual service".to_owned());
    }
    for kind in ["http", "tcp", "tls"] {
        for route in spec.get(kind).and_then(Value::as_array).into_iter().flatten() {
            let destinations = route.get("route").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            if kind == "http"
                && destinations.is_empty()
                && route.get("redirect").is_none()
                && route.get("directResponse").is_none()
            {
                errors.push("HTTP route, redirect or direct_response is required".to_owned());
            }
            let mut total = 0i64;
            for destination in destinations {
                let target = &destination["destination"];
                if target.get("host").and_then(Value::as_str) == Some("*") {
                    errors.push("invalid destination host *".to_owned());
                }
                if let Some(subset) = target.get("subset").and_then(Value::as_str) {
                    if subset.is_empty() {
                        errors.push("subset name cannot be empty".to_owned());
                    } else if !is_dns_label(subset) {
                        errors.push(format!("subset name is invalid: {subset}"));
                    }
                }
                let weight = destination.get("weight").and_then(Value::as_i64).unwrap_or(0);
                if weight < 0 {
                    errors.push(format!("weight {weight} < 0"));
                } else if rule == WeightRule::SumTo100 && weight > 100 {
                    errors.push(format!("percentage {weight} is not in range 0..100"));
                }
                total += weight;
            }
            if destinations.len() > 1 {
                match rule {
                    WeightRule::SumTo100 if total != 100 => {
                        errors.push(format!("total destination weight {total} != 100"))
                    }
                    WeightRule::NonNegative if total == 0 => errors.push("total destination weight = 0".to_owned()),
                    _ => {}
                }
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(denied(&errors)) }
}

/// Validates a DestinationRule as the CRD schema and then the webhook would.
pub fn validate_destination_rule(object: &Value) -> Result<(), ApiError> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let spec = object.get("spec").unwrap_or(&Value::Null);
    if spec.get("host").and_then(Value::as_str).is_none() {
        return Err(ApiError::invalid(DESTINATION_RULES.resource_type(), name, vec![required("spec.host".into())]));
    }
    let mut errors = Vec::new();
    if spec.get("host").and_then(Value::as_str) == Some("") {
        errors.push("empty domain name not allowed".to_owned());
    }
    let mut seen: Vec<&str> = Vec::new();
    for subset in spec.get("subsets").and_then(Value::as_array).into_iter().flatten() {
        let subset_name = subset.get("name").and_then(Value::as_str).unwrap_or_default();
        if subset_name.is_empty() {
            errors.push("subset name cannot be empty".to_owned());
        } else if !is_dns_label(subset_name) {
            errors.push(format!("subset name is invalid: {subset_name}"));
        }
        if seen.contains(&subset_name) {
            errors.push(format!("duplicate subset names: {subset_name}"));
        }
        seen.push(subset_name);
    }
    if errors.is_empty() { Ok(()) } else { Err(denied(&errors)) }
}

/// The proxy image the simulated injector adds.
pub const PROXY_IMAGE: &str = "docker.io/istio/proxyv2:1.24.2";

/// Adds the Istio sidecar to a pod being created in a namespace labelled `istio-injection=enabled`, as istiod's
/// injection webhook does in classic (non-native-sidecar) mode: an `istio-init` init container after the pod's own,
/// an `istio-proxy` container, and the labels and annotations the webhook writes. A namespace in ambient mode
/// (`istio.io/dataplane-mode: ambient`, without the injection label) gets no sidecar: ztunnel and its waypoint carry
/// the traffic.
pub fn inject_sidecar(pod: &mut Value, namespace: Option<&Value>) {
    let enabled =
        namespace.and_then(|namespace| namespace.pointer("/metadata/labels/istio-injection")).and_then(Value::as_str)
            == Some("enabled");
    let opted_out = pod.pointer("/metadata/labels/sidecar.istio.io~1inject").and_then(Value::as_str) == Some("false")
        || pod.pointer("/metadata/annotations/sidecar.istio.io~1inject").and_then(Value::as_str) == Some("false");
    let already = pod.pointer("/metadata/annotations/sidecar.istio.io~1status").is_some();
    if !enabled || opted_out || already {
        return;
    }
    let first_container = pod.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let labels = pod.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
    let canonical_name = ["service.istio.io/canonical-name", "app.kubernetes.io/name", "app"]
        .iter()
        .find_map(|key| labels.get(*key).and_then(Value::as_str))
        .unwrap_or(&first_container)
        .to_owned();
    let canonical_revision = ["service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"]
        .iter()
        .find_map(|key| labels.get(*key).and_then(Value::as_str))
        .unwrap_or("latest")
        .to_owned();
    let metadata = pod["metadata"].as_object_mut().expect("pods have metadata");
    let labels = metadata.entry("labels").or_insert(json!({}));
    labels["security.istio.io/tlsMode"] = json!("istio");
    labels["service.istio.io/canonical-name"] = json!(canonical_name);
    labels["service.istio.io/canonical-revision"] = json!(canonical_revision);
    let annotations = metadata.entry("annotations").or_insert(json!({}));
    annotations["istio.io/rev"] = json!("default");
    annotations["kubectl.kubernetes.io/default-container"] = json!(first_container);
    annotations["kubectl.kubernetes.io/default-logs-container"] = json!(first_container);
    annotations["prometheus.io/path"] = json!("/stats/prometheus");
    annotations["prometheus.io/port"] = json!("15020");
    annotations["prometheus.io/scrape"] = json!("true");
    annotations["sidecar.istio.io/status"] = json!(
        "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"volumes\":[\"workload-socket\",\"credential-socket\",\"workload-certs\",\"istio-envoy\",\"istio-data\",\"istio-podinfo\",\"istio-token\",\"istiod-ca-cert\"],\"imagePullSecrets\":null,\"revision\":\"default\"}"
    );
    let spec = pod["spec"].as_object_mut().expect("pods have a spec");
    let init = spec.entry("initContainers").or_insert(json!([]));
    if let Some(init) = init.as_array_mut() {
        init.push(json!({
            "name": "istio-init",
            "image": PROXY_IMAGE,
            "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"],
            "imagePullPolicy": "IfNotPresent",
            "resources": { "limits": { "cpu": "2", "memory": "1Gi" }, "requests": { "cpu": "10m", "memory": "40Mi" } },
            "securityContext": { "allowPrivilegeEscalation": false, "capabilities": { "add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"] }, "privileged": false, "readOnlyRootFilesystem": false, "runAsGroup": 0, "runAsNonRoot": false, "runAsUser": 0 },
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }));
    }
    if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        containers.push(json!({
            "name": "istio-proxy",
            "image": PROXY_IMAGE,
            "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local", "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
            "imagePullPolicy": "IfNotPresent",
            "ports": [{ "containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP" }],
            "readinessProbe": { "failureThreshold": 4, "httpGet": { "path": "/healthz/ready", "port": 15021, "scheme": "HTTP" }, "periodSeconds": 15, "successThreshold": 1, "timeoutSeconds": 3 },
            "resources": { "limits": { "cpu": "2", "memory": "1Gi" }, "requests": { "cpu": "10m", "memory": "40Mi" } },
            "securityContext": { "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] }, "privileged": false, "readOnlyRootFilesystem": true, "runAsGroup": 1337, "runAsNonRoot": true, "runAsUser": 1337 },
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn virtual_service(weights: &[i64]) -> Value {
        let route: Vec<Value> = weights
            .iter()
            .enumerate()
            .map(|(index, weight)| json!({ "destination": { "host": "reviews", "subset": format!("v{}", index + 1) }, "weight": weight }))
            .collect();
        json!({ "metadata": { "name": "reviews" }, "spec": { "hosts": ["reviews"], "http": [{ "route": route }] } })
    }

    #[test]
    fn weights_must_sum_to_100_under_the_strict_rule_only() {
        assert!(validate_virtual_service(&virtual_service(&[90, 10]), WeightRule::SumTo100).is_ok());
        let error = validate_virtual_service(&virtual_service(&[90, 20]), WeightRule::SumTo100).unwrap_err();
        assert_eq!(error.code, 400);
        assert_eq!(
            error.message,
            "admission webhook \"validation.istio.io\" denied the request: configuration is invalid: total destination weight 110 != 100"
        );
        assert!(validate_virtual_service(&virtual_service(&[90, 20]), WeightRule::NonNegative).is_ok());
        assert!(validate_virtual_service(&virtual_service(&[0, 0]), WeightRule::NonNegative).is_err());
        assert!(validate_virtual_service(&virtual_service(&[100]), WeightRule::SumTo100).is_ok());
    }

    #[test]
    fn pods_of_ambient_namespaces_get_no_sidecar() {
        let mut pod = json!({ "metadata": { "name": "p", "labels": { "app": "reviews" } },
            "spec": { "containers": [{ "name": "reviews", "image": "reviews:1" }] } });
        let ambient = json!({ "metadata": { "name": "bookinfo", "labels": { "istio.io/dataplane-mode": "ambient" } } });
        inject_sidecar(&mut pod, Some(&ambient));
        assert_eq!(pod["spec"]["containers"].as_array().map(Vec::len), Some(1));
        assert!(pod.pointer("/spec/initContainers").is_none());
        assert!(pod.pointer("/metadata/annotations/sidecar.istio.io~1status").is_none());
        let injected = json!({ "metadata": { "name": "bookinfo", "labels": { "istio-injection": "enabled" } } });
        inject_sidecar(&mut pod, Some(&injected));
        assert_eq!(pod["spec"]["containers"][1]["name"], "istio-proxy");
    }

    #[test]
    fn missing_hosts_fail_the_schema_and_bad_subsets_the_webhook() {
        let no_host = json!({ "metadata": { "name": "r" }, "spec": { "http": [{ "route": [{ "destination": { "subset": "v1" } }] }] } });
        let error = validate_virtual_service(&no_host, WeightRule::SumTo100).unwrap_err();
        assert_eq!(error.code, 422);
        assert!(error.message.ends_with("spec.http[0].route[0].destination.host: Required value"), "{}", error.message);

        let rule = json!({ "metadata": { "name": "r" }, "spec": { "host": "reviews", "subsets": [
            { "name": "v1", "labels": { "version": "v1" } }, { "name": "2.0", "labels": {} }, { "name": "v1" }
        ] } });
        let error = validate_destination_rule(&rule).unwrap_err();
        assert!(
            error
                .message
                .ends_with("2 errors occurred:\n\t* subset name is invalid: 2.0\n\t* duplicate subset names: v1\n\n"),
            "{}",
            error.message
        );
    }
}
