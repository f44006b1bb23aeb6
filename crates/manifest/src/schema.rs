//! The manifest's JSON Schema, generated from the field tables, for editors (yaml-language-server) and linters.

use crate::fields::{Field, Kind, Object};
use crate::sections::RELEASE;
use serde_json::{Map, Value, json};

/// The JSON Schema (draft 2020-12) of a release manifest.
pub fn json_schema() -> Value {
    let mut schema = object_schema(&RELEASE);
    let root = schema.as_object_mut().expect("objects are JSON objects");
    root.insert("patternProperties".into(), json!({ "^x-": { "description": "ignored: a place for YAML anchors" } }));
    root.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    root.insert("$id".into(), json!("https://fledge.dev/schema/release-v1.json"));
    root.insert("title".into(), json!("fledge release manifest"));
    root.insert(
        "description".into(),
        json!("One release of one service: deploy the new version beside the live one, gate on pod health, shift Istio traffic in stages, check Prometheus metrics, then promote or roll back."),
    );
    schema
}

fn object_schema(object: &Object) -> Value {
    let properties: Map<String, Value> =
        object.fields.iter().map(|field| (field.name.to_owned(), field_schema(field))).collect();
    let required: Vec<&str> = object.fields.iter().filter(|field| field.required).map(|field| field.name).collect();
    let mut schema = json!({ "type": "object", "additionalProperties": false, "properties": properties });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    if !object.exactly_one_of.is_empty() {
        let alternatives: Vec<Value> = object.exactly_one_of.iter().map(|name| json!({ "required": [name] })).collect();
        schema["oneOf"] = json!(alternatives);
    }
    schema
}

fn field_schema(field: &Field) -> Value {
    let mut schema = kind_schema(&field.kind);
    let mut description = field.description.to_owned();
    if let Some(default) = field.default {
        description.push_str(&format!(" (default: {default})"));
    }
    schema["description"] = json!(description);
    schema
}

fn kind_schema(kind: &Kind) -> Value {
    match kind {
        Kind::Text | Kind::Path => json!({ "type": "string", "minLength": 1 }),
        Kind::Name => json!({ "type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63 }),
        Kind::ResourceName => {
            json!({ "type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", "maxLength": 253 })
        }
        Kind::Image => {
            json!({ "type": "string", "pattern": "^[^\\s]+$", "examples": ["registry.example.com/reviews:2.4.1"] })
        }
        Kind::Url => json!({ "type": "string", "pattern": "^https?://[^\\s@/]+(/[^\\s]*)?$" }),
        Kind::EnvironmentVariable => json!({ "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }),
        Kind::Duration => json!({
            "type": "string",
            "pattern": "^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$",
            "examples": ["500ms", "30s", "5m", "1h30m"],
        }),
        Kind::Percentage => json!({ "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%$", "examples": ["20%"] }),
        Kind::Integer { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Number => json!({ "type": "number" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Choice(choices) => json!({ "enum": choices }),
        Kind::Object(object) => object_schema(object),
        Kind::List(item) => json!({ "type": "array", "items": kind_schema(item) }),
        Kind::TextMap => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        Kind::PodTemplate => json!({
            "type": "object",
            "description": "a Kubernetes PodTemplateSpec",
            "required": ["spec"],
            "properties": { "metadata": { "type": "object" }, "spec": { "type": "object", "required": ["containers"] } },
        }),
    }
}
