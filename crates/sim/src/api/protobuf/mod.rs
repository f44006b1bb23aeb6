//! Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), as kubectl's generator commands send it
//! and as clients that ask for it in `Accept` read it: the `k8s\0` magic, a `runtime.Unknown` envelope naming the
//! type, and the object in proto2 wire format. fledge-sim stores JSON, so it transcodes through the message table
//! of [`schema`] (read off Kubernetes' own protos):
//!
//! ```text
//!  request:  k8s\0 ┬ Unknown.typeMeta {apiVersion, kind}       ──▶ message for the kind ──▶ decode ──▶ JSON
//!                  └ Unknown.raw    (the object)
//!  answer:   JSON ──▶ encode (only when every field is in the table; otherwise JSON, the client's fallback)
//! ```
//!
//! Go marshals every non-pointer field, zero or not; decoded, zero values are left out as Go's JSON `omitempty`
//! leaves them out, but for the fields where a zero means something (`replicas: 0`).

mod schema;
mod wire;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use wire::{Reader, WireType, Writer};

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The bytes every protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

/// One message of the table.
pub(crate) struct Message {
    name: &'static str,
    fields: &'static [Field],
}

/// One field of a message.
pub(crate) struct Field {
    number: u32,
    name: &'static str,
    kind: Kind,
    repeated: bool,
}

/// What a field holds.
pub(crate) enum Kind {
    String,
    Int32,
    Int64,
    Bool,
    Bytes,
    Message(&'static str),
    /// A message whose fields stand in the parent's JSON object (a Go struct embedded `json:",inline"`).
    Inline(&'static str),
    /// `map<string, V>`: entries `{1: key, 2: value}`.
    Map(&'static Kind),
}

/// Fields whose zero value is kept: in Go they are pointers, so a zero on the wire was set on purpose.
const KEEP_ZERO: &[&str] = &[
    "replicas",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "automountServiceAccountToken",
    "immutable",
    "enableServiceLinks",
    "backoffLimit",
    "completions",
    "parallelism",
    "suspend",
    "ttlSecondsAfterFinished",
    "defaultMode",
    "optional",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "privileged",
    "leaseDurationSeconds",
    "leaseTransitions",
];

/// Why a body could not be transcoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with the magic bytes, or its envelope is broken.
    #[error("the body is not a Kubernetes protobuf message: {0}")]
    Envelope(String),
    /// The type has no protobuf encoding here (custom resources are JSON only).
    #[error("{0} has no protobuf encoding")]
    NoEncoding(String),
    /// The wire format is broken.
    #[error("invalid protobuf for {message}: {reason}")]
    Wire {
        /// The message being read.
        message: String,
        /// What was wrong.
        reason: String,
    },
    /// A JSON field the message does not have (encoding only).
    #[error("{message} has no field {field}")]
    UnknownField {
        /// The message.
        message: String,
        /// The field.
        field: String,
    },
}

fn lookup(name: &str) -> Option<&'static Message> {
    schema::MESSAGES.binary_search_by(|message| message.name.cmp(name)).ok().map(|index| &schema::MESSAGES[index])
}

/// The message of `kind` in API group `group` (version v1), if Kubernetes encodes it in protobuf.
fn message_for(group: &str, kind: &str) -> Option<&'static Message> {
    let package = match group {
        "" => "core",
        "apps" => "apps",
        "coordination.k8s.io" => "coordination",
        "autoscaling" => "autoscaling",
        "batch" => "batch",
        "rbac.authorization.k8s.io" => "rbac",
        "events.k8s.io" => "events",
        "authentication.k8s.io" => "authentication",
        "authorization.k8s.io" => "authorization",
        _ => return None,
    };
    lookup(&format!("api.{package}.v1.{kind}"))
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// A protobuf request body as JSON, with its `apiVersion` and `kind`.
pub fn decode_object(body: &[u8]) -> Result<Value, ProtobufError> {
    let raw = body.strip_prefix(MAGIC).ok_or_else(|| ProtobufError::Envelope("no k8s magic".into()))?;
    let envelope = |reason: String| ProtobufError::Envelope(reason);
    let (mut api_version, mut kind, mut object) = (String::new(), String::new(), None);
    let mut reader = Reader::new(raw);
    while let Some((number, wire_type)) = reader.tag().map_err(envelope)? {
        match (number, wire_type) {
            (1, WireType::Len) => {
                let mut type_meta = Reader::new(reader.bytes().map_err(envelope)?);
                while let Some((number, wire_type)) = type_meta.tag().map_err(envelope)? {
                    match number {
                        1 => api_version = type_meta.string().map_err(envelope)?,
                        2 => kind = type_meta.string().map_err(envelope)?,
                        _ => type_meta.skip(wire_type).map_err(envelope)?,
                    }
                }
            }
            (2, WireType::Len) => object = Some(reader.bytes().map_err(envelope)?),
            (_, wire_type) => reader.skip(wire_type).map_err(envelope)?,
        }
    }
    let message = message_for(group_of(&api_version), &kind)
        .ok_or_else(|| ProtobufError::NoEncoding(format!("{api_version} {kind}")))?;
    let mut value = decode(message, object.unwrap_or_default())?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    Ok(value)
}

/// An object (JSON with `apiVersion` and `kind`) as a protobuf answer, when its type has an encoding and every one
/// of its fields is known.
pub fn encode_object(object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let message = message_for(group_of(api_version), kind)
        .ok_or_else(|| ProtobufError::NoEncoding(format!("{api_version} {kind}")))?;
    let mut body = Map::new();
    for (key, value) in object.as_object().into_iter().flatten() {
        if key != "apiVersion" && key != "kind" {
            body.insert(key.clone(), value.clone());
        }
    }
    let raw = encode(message, &Value::Object(body))?;
    let mut type_meta = Writer::default();
    type_meta.string(1, api_version);
    type_meta.string(2, kind);
    let mut envelope = Writer::default();
    envelope.bytes(1, &type_meta.finish());
    envelope.bytes(2, &raw);
    envelope.string(3, "");
    envelope.string(4, "");
    let mut out = MAGIC.to_vec();
    out.extend(envelope.finish());
    Ok(out)
}

fn wire_error(message: &Message) -> impl Fn(String) -> ProtobufError + '_ {
    move |reason| ProtobufError::Wire { message: message.name.to_owned(), reason }
}

/// Decodes `bytes` as `message` into JSON.
fn decode(message: &Message, bytes: &[u8]) -> Result<Value, ProtobufError> {
    if let Some(special) = decode_special(message, bytes)? {
        return Ok(special);
    }
    let error = wire_error(message);
    let mut object = Map::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, wire_type)) = reader.tag().map_err(&error)? {
        let Some(field) = message.fields.iter().find(|field| field.number == number) else {
            reader.skip(wire_type).map_err(&error)?;
            continue;
        };
        let values = match (&field.kind, wire_type) {
            // A packed repeated scalar: several values in one length-delimited run.
            (Kind::Int32 | Kind::Int64 | Kind::Bool, WireType::Len) if field.repeated => {
                let mut packed = Reader::new(reader.bytes().map_err(&error)?);
                let mut values = Vec::new();
                while !packed.is_empty() {
                    values.push(scalar(&field.kind, packed.varint().map_err(&error)?));
                }
                values
            }
            (Kind::Inline(name), WireType::Len) => {
                let inner = lookup(name).ok_or_else(|| error(format!("no message {name}")))?;
                if let Value::Object(fields) = decode(inner, reader.bytes().map_err(&error)?)? {
                    object.extend(fields);
                }
                continue;
            }
            (Kind::Map(value_kind), WireType::Len) => {
                let (key, value) = map_entry(message, value_kind, reader.bytes().map_err(&error)?)?;
                let entry = object.entry(field.name).or_insert_with(|| json!({}));
                entry[key] = value;
                continue;
            }
            _ => vec![read_value(message, &field.kind, wire_type, &mut reader)?],
        };
        for value in values {
            if field.repeated {
                object.entry(field.name).or_insert_with(|| json!([])).as_array_mut().expect("an array").push(value);
            } else {
                object.insert(field.name.to_owned(), value);
            }
        }
    }
    object.retain(|name, value| !is_zero(value) || KEEP_ZERO.contains(&name.as_str()));
    Ok(Value::Object(object))
}

/// Whether Go's JSON `omitempty` would leave the value out.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::Bool(flag) => !flag,
        Value::Array(items) => items.is_empty(),
        Value::Object(_) => false,
    }
}

fn scalar(kind: &Kind, raw: u64) -> Value {
    match kind {
        Kind::Int32 => json!(raw as i64 as i32),
        Kind::Bool => json!(raw != 0),
        _ => json!(raw as i64),
    }
}

fn read_value(
    message: &Message,
    kind: &Kind,
    wire_type: WireType,
    reader: &mut Reader<'_>,
) -> Result<Value, ProtobufError> {
    let error = wire_error(message);
    Ok(match kind {
        Kind::String => json!(reader.string().map_err(&error)?),
        Kind::Bytes => json!(base64::engine::general_purpose::STANDARD.encode(reader.bytes().map_err(&error)?)),
        Kind::Int32 | Kind::Int64 | Kind::Bool => scalar(kind, reader.varint().map_err(&error)?),
        Kind::Message(name) => {
            let inner = lookup(name).ok_or_else(|| error(format!("no message {name}")))?;
            if wire_type != WireType::Len {
                return Err(error(format!("{name} is not length-delimited")));
            }
            decode(inner, reader.bytes().map_err(&error)?)?
        }
        Kind::Map(_) | Kind::Inline(_) => return Err(error("a map or an inline message inside a map".into())),
    })
}

fn map_entry(message: &Message, value_kind: &Kind, bytes: &[u8]) -> Result<(String, Value), ProtobufError> {
    let error = wire_error(message);
    let (mut key, mut value) = (String::new(), None);
    let mut entry = Reader::new(bytes);
    while let Some((number, wire_type)) = entry.tag().map_err(&error)? {
        match number {
            1 => key = entry.string().map_err(&error)?,
            2 => value = Some(read_value(message, value_kind, wire_type, &mut entry)?),
            _ => entry.skip(wire_type).map_err(&error)?,
        }
    }
    let empty = match value_kind {
        Kind::String | Kind::Bytes => json!(""),
        _ => json!({}),
    };
    Ok((key, value.unwrap_or(empty)))
}

/// The messages whose JSON form is not their fields: times, quantities, int-or-strings, raw JSON.
fn decode_special(message: &Message, bytes: &[u8]) -> Result<Option<Value>, ProtobufError> {
    let error = wire_error(message);
    let fields = || -> Result<Vec<(u32, Vec<u8>, u64)>, ProtobufError> {
        let mut reader = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some((number, wire_type)) = reader.tag().map_err(&error)? {
            match wire_type {
                WireType::Len => out.push((number, reader.bytes().map_err(&error)?.to_vec(), 0)),
                WireType::Varint => out.push((number, Vec::new(), reader.varint().map_err(&error)?)),
                other => reader.skip(other).map_err(&error)?,
            }
        }
        Ok(out)
    };
    let text =
        |field: Option<&(u32, Vec<u8>, u64)>| field.map(|(_, bytes, _)| String::from_utf8_lossy(bytes).into_owned());
    Ok(Some(match message.name {
        "apimachinery.pkg.apis.meta.v1.Time" | "apimachinery.pkg.apis.meta.v1.MicroTime" => {
            let fields = fields()?;
            let seconds = fields.iter().find(|field| field.0 == 1).map_or(0, |field| field.2 as i64);
            let nanos = fields.iter().find(|field| field.0 == 2).map_or(0, |field| field.2 as i64 as i32);
            if seconds == 0 && nanos == 0 {
                Value::Null
            } else {
                let time = jiff::Timestamp::new(seconds, if message.name.ends_with("MicroTime") { nanos } else { 0 })
                    .map_err(|reason| error(reason.to_string()))?;
                if message.name.ends_with("MicroTime") {
                    json!(time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
                } else {
                    json!(time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                }
            }
        }
        "apimachinery.pkg.api.resource.Quantity" => {
            json!(text(fields()?.iter().find(|field| field.0 == 1)).unwrap_or_default())
        }
        "apimachinery.pkg.util.intstr.IntOrString" => {
            let fields = fields()?;
            let is_string = fields.iter().find(|field| field.0 == 1).is_some_and(|field| field.2 == 1);
            if is_string {
                json!(text(fields.iter().find(|field| field.0 == 3)).unwrap_or_default())
            } else {
                json!(fields.iter().find(|field| field.0 == 2).map_or(0, |field| field.2 as i64 as i32))
            }
        }
        "apimachinery.pkg.apis.meta.v1.FieldsV1" | "apimachinery.pkg.runtime.RawExtension" => {
            let raw = fields()?.into_iter().find(|field| field.0 == 1).map(|field| field.1).unwrap_or_default();
            if raw.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(&raw).map_err(|reason| error(reason.to_string()))?
            }
        }
        _ => return Ok(None),
    }))
}

/// Encodes the JSON `value` as `message`.
fn encode(message: &Message, value: &Value) -> Result<Vec<u8>, ProtobufError> {
    let mut writer = Writer::default();
    if encode_special(message, value, &mut writer)? {
        return Ok(writer.finish());
    }
    let unknown =
        |field: &str| ProtobufError::UnknownField { message: message.name.to_owned(), field: field.to_owned() };
    let object = value.as_object().ok_or_else(|| unknown("(not an object)"))?;
    for name in object.keys() {
        if !has_field(message, name) {
            return Err(unknown(name));
        }
    }
    for field in message.fields {
        if let Kind::Inline(name) = field.kind {
            let inner = lookup(name).ok_or_else(|| unknown(field.name))?;
            let fields: Map<String, Value> = object
                .iter()
                .filter(|(key, _)| has_field(inner, key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            writer.bytes(field.number, &encode(inner, &Value::Object(fields))?);
            continue;
        }
        let Some(value) = object.get(field.name).filter(|value| !value.is_null()) else { continue };
        match (&field.kind, value) {
            (Kind::Map(value_kind), Value::Object(entries)) => {
                let mut keys: Vec<&String> = entries.keys().collect();
                keys.sort();
                for key in keys {
                    let mut entry = Writer::default();
                    entry.string(1, key);
                    write_value(message, value_kind, 2, &entries[key], &mut entry)?;
                    writer.bytes(field.number, &entry.finish());
                }
            }
            (_, Value::Array(items)) if field.repeated => {
                for item in items {
                    write_value(message, &field.kind, field.number, item, &mut writer)?;
                }
            }
            (_, value) => write_value(message, &field.kind, field.number, value, &mut writer)?,
        }
    }
    Ok(writer.finish())
}

/// Whether the JSON object of `message` may hold `name`: one of its fields, or one of an inline message's.
fn has_field(message: &Message, name: &str) -> bool {
    message.fields.iter().any(|field| match field.kind {
        Kind::Inline(inner) => lookup(inner).is_some_and(|inner| has_field(inner, name)),
        _ => field.name == name,
    })
}

fn write_value(
    message: &Message,
    kind: &Kind,
    number: u32,
    value: &Value,
    writer: &mut Writer,
) -> Result<(), ProtobufError> {
    let mismatch =
        || ProtobufError::UnknownField { message: message.name.to_owned(), field: format!("#{number} ({value})") };
    match kind {
        Kind::String => writer.string(number, value.as_str().ok_or_else(mismatch)?),
        Kind::Bytes => {
            let text = value.as_str().ok_or_else(mismatch)?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| mismatch())?;
            writer.bytes(number, &bytes);
        }
        Kind::Int32 | Kind::Int64 => writer.varint(number, value.as_i64().ok_or_else(mismatch)? as u64),
        Kind::Bool => writer.varint(number, u64::from(value.as_bool().ok_or_else(mismatch)?)),
        Kind::Message(name) => {
            let inner = lookup(name).ok_or_else(mismatch)?;
            writer.bytes(number, &encode(inner, value)?);
        }
        Kind::Map(_) | Kind::Inline(_) => return Err(mismatch()),
    }
    Ok(())
}

/// The JSON forms of [`decode_special`] back to their messages; `false` when `message` is not one of them.
fn encode_special(message: &Message, value: &Value, writer: &mut Writer) -> Result<bool, ProtobufError> {
    let mismatch = || ProtobufError::UnknownField { message: message.name.to_owned(), field: value.to_string() };
    match message.name {
        "apimachinery.pkg.apis.meta.v1.Time" | "apimachinery.pkg.apis.meta.v1.MicroTime" => {
            let time: jiff::Timestamp = value.as_str().and_then(|text| text.parse().ok()).ok_or_else(mismatch)?;
            writer.varint(1, time.as_second() as u64);
            writer.varint(2, u64::from(time.subsec_nanosecond().unsigned_abs()));
        }
        "apimachinery.pkg.api.resource.Quantity" => match value {
            Value::String(text) => writer.string(1, text),
            Value::Number(number) => writer.string(1, &number.to_string()),
            _ => return Err(mismatch()),
        },
        "apimachinery.pkg.util.intstr.IntOrString" => match value {
            Value::Number(number) => {
                writer.varint(1, 0);
                writer.varint(2, number.as_i64().ok_or_else(mismatch)? as u64);
                writer.string(3, "");
            }
            Value::String(text) => {
                writer.varint(1, 1);
                writer.varint(2, 0);
                writer.string(3, text);
            }
            _ => return Err(mismatch()),
        },
        "apimachinery.pkg.apis.meta.v1.FieldsV1" | "apimachinery.pkg.runtime.RawExtension" => {
            writer.bytes(1, &serde_json::to_vec(value).unwrap_or_default());
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
