use super::*;

/// What `kubectl create namespace x` (v1.32) sends, byte for byte.
const KUBECTL_CREATE_NAMESPACE: &[u8] = &[
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61, 0x6d, 0x65, 0x73, 0x70, 0x61,
    0x63, 0x65, 0x12, 0x19, 0x0a, 0x11, 0x0a, 0x01, 0x78, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00,
    0x38, 0x00, 0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
];

#[test]
fn kubectl_s_namespace_reads_as_the_json_it_would_have_sent() {
    let object = decode_object(KUBECTL_CREATE_NAMESPACE).unwrap();
    assert_eq!(
        object,
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "x" }, "spec": {}, "status": {} })
    );
}

#[test]
fn objects_survive_a_round_trip_through_protobuf() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "shop", "labels": { "app": "web" }, "resourceVersion": "12",
                      "creationTimestamp": "2026-12-01T10:00:00Z", "generation": 3 },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{
                    "name": "web", "image": "nginx:1.27", "args": ["-g", "daemon off;"],
                    "ports": [{ "containerPort": 8080, "protocol": "TCP" }],
                    "resources": { "requests": { "cpu": "100m", "memory": "128Mi" } },
                    "readinessProbe": { "httpGet": { "path": "/", "port": "http" }, "periodSeconds": 5 }
                }] }
            },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": 1 } }
        },
        "status": {}
    });
    let bytes = encode_object(&deployment).unwrap();
    assert!(bytes.starts_with(b"k8s\0"));
    assert_eq!(decode_object(&bytes).unwrap(), deployment);

    let config_map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "settings", "annotations": { "b": "2", "a": "1" } },
        "data": { "key": "value" }, "binaryData": { "blob": "AAEC" }, "immutable": false
    });
    assert_eq!(decode_object(&encode_object(&config_map).unwrap()).unwrap(), config_map);
}

#[test]
fn a_field_the_message_lacks_keeps_the_answer_in_json() {
    let odd = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "x" }, "extra": 1 });
    assert_eq!(
        encode_object(&odd),
        Err(ProtobufError::UnknownField { message: "api.core.v1.ConfigMap".into(), field: "extra".into() })
    );
    let custom =
        json!({ "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": { "name": "r" } });
    assert!(matches!(encode_object(&custom), Err(ProtobufError::NoEncoding(_))));
    assert!(matches!(decode_object(b"{\"kind\":\"Namespace\"}"), Err(ProtobufError::Envelope(_))));
}
