//! The YAML document as a tree of located nodes, read with serde-saphyr under strict budgets.
//!
//! The manifest is first read into this generic tree rather than straight into typed structs, so that the
//! readers in [`crate::sections`] can report every problem of a file in one pass (serde stops at the first), with
//! the line and column of each offending key or value.

use crate::diagnostic::{Diagnostic, Location};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// Largest manifest accepted, in bytes. Real manifests are a few kilobytes.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// Most alias (`*name`) uses accepted in one manifest, and most events they may replay: enough for sharing a block
/// between stages, far too few for a "billion laughs" expansion.
const MAX_ALIASES: usize = 256;
const MAX_REPLAYED_EVENTS: usize = 20_000;
const MAX_DEPTH: usize = 48;
const MAX_NODES: usize = 50_000;

/// One YAML node with where it stands in the file.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) location: Location,
    /// Length of the node's text on its first line, in characters, for underlining.
    pub(crate) width: u32,
    pub(crate) value: Value,
}

/// A YAML value. Scalars keep the text they were written as, so a plain `2` can still be read as the string "2".
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Null,
    Bool(bool, String),
    Integer(i128, String),
    Float(f64, String),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

impl Value {
    /// What the value is, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(..) => "a boolean",
            Value::Integer(..) => "a number",
            Value::Float(..) => "a number",
            Value::String(_) => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }

    /// The scalar's text as written (`None` for null and collections).
    pub(crate) fn scalar_text(&self) -> Option<&str> {
        match self {
            Value::Bool(_, text) | Value::Integer(_, text) | Value::Float(_, text) => Some(text),
            Value::String(text) => Some(text),
            Value::Null | Value::Sequence(_) | Value::Mapping(_) => None,
        }
    }
}

/// Reads `source` into a node tree, or one located diagnostic saying why it is not a usable YAML document.
pub(crate) fn parse_document(source: &str) -> Result<Node, Diagnostic> {
    if source.len() > MAX_MANIFEST_BYTES {
        return Err(Diagnostic::error(
            Location::START,
            format!("the manifest is {} bytes, more than the limit of {MAX_MANIFEST_BYTES}", source.len()),
        )
        .with_hint("a release manifest is a few kilobytes; check that this is the right file"));
    }
    if source.trim().is_empty()
        || source.lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        return Err(Diagnostic::error(Location::START, "the manifest is empty")
            .with_hint("start from examples/minimal.yaml, or run `fledge schema` for every field"));
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_aliases: MAX_ALIASES,
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_documents: 1,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_REPLAYED_EVENTS,
            max_replay_stack_depth: 16,
        },
    };
    let context = ScalarText { source };
    match serde_saphyr::from_str_with_options::<Spanned<RawValue>>(source, options) {
        Ok(root) => Ok(context.node(root)),
        Err(error) => Err(yaml_error_diagnostic(&error)),
    }
}

fn yaml_error_diagnostic(error: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error;
    use serde_saphyr::budget::BudgetBreach;
    const SIZE_HINT: &str =
        "a manifest may use at most 256 aliases, 48 levels of nesting and 50000 values; write the values out instead";
    let location = error.location().map(Location::from_saphyr).unwrap_or(Location::START);
    let mut inner = error;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let (message, hint) = match inner {
        Error::Budget { breach: BudgetBreach::Documents { .. }, .. } | Error::MultipleDocuments { .. } => (
            "the file holds more than one YAML document".to_owned(),
            "a manifest holds exactly one release; put other releases in their own files",
        ),
        Error::Budget { breach: BudgetBreach::Depth { .. }, .. } => {
            (format!("the manifest nests deeper than {MAX_DEPTH} levels"), SIZE_HINT)
        }
        Error::Budget { breach: BudgetBreach::Aliases { .. }, .. } => {
            (format!("the manifest uses more than {MAX_ALIASES} aliases"), SIZE_HINT)
        }
        Error::Budget { breach: BudgetBreach::Nodes { .. }, .. } => {
            (format!("the manifest has more than {MAX_NODES} values"), SIZE_HINT)
        }
        Error::Budget { .. } => ("the manifest is too large or too complex".to_owned(), SIZE_HINT),
        Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. }
        | Error::AliasReplayCounterOverflow { .. } => ("aliases expand to too much data".to_owned(), SIZE_HINT),
        Error::DuplicateMappingKey { key, .. } => (
            match key {
                Some(key) => format!("duplicate key `{key}`"),
                None => "duplicate key".to_owned(),
            },
            "each key may appear once in a mapping; remove or merge the repeated one",
        ),
        _ => {
            let message = inner.to_string();
            // Some messages end with " at line L, column C"; the location is printed in front already.
            let message = message.split(" at line ").next().unwrap_or_default().trim().trim_end_matches('.').to_owned();
            (message, "the file is not valid YAML here; check indentation, quotes and `: ` after each key")
        }
    };
    Diagnostic::error(location, format!("invalid YAML: {message}")).with_hint(hint)
}

/// Turns serde-saphyr's spanned values into [`Node`]s, recovering each scalar's text from the source.
struct ScalarText<'s> {
    source: &'s str,
}

impl ScalarText<'_> {
    fn node(&self, spanned: Spanned<RawValue>) -> Node {
        // For an alias, `defined` points at the anchored value: its text is the value's text.
        let span = spanned.defined.span();
        let text = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(offset, length)| {
                let start = usize::try_from(offset).ok()?;
                let end = start.checked_add(usize::try_from(length).ok()?)?;
                self.source.get(start..end)
            })
            .unwrap_or("");
        let location = Location::from_saphyr(spanned.referenced);
        let width = text.lines().next().map_or(1, |line| line.chars().count().max(1));
        let width = u32::try_from(width).unwrap_or(u32::MAX);
        let value = match spanned.value {
            RawValue::Null => Value::Null,
            RawValue::Bool(value) => Value::Bool(value, text.to_owned()),
            RawValue::Integer(value) => Value::Integer(value, text.to_owned()),
            RawValue::Float(value) => Value::Float(value, text.to_owned()),
            RawValue::String(value) => Value::String(value),
            RawValue::Sequence(items) => Value::Sequence(items.into_iter().map(|item| self.node(item)).collect()),
            RawValue::Mapping(entries) => {
                Value::Mapping(entries.into_iter().map(|(key, value)| (self.node(key), self.node(value))).collect())
            }
        };
        Node { location, width, value }
    }
}

/// What serde-saphyr hands us, before scalar texts are attached.
enum RawValue {
    Null,
    Bool(bool),
    Integer(i128),
    Float(f64),
    String(String),
    Sequence(Vec<Spanned<RawValue>>),
    Mapping(Vec<(Spanned<RawValue>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawValue, D::Error> {
        deserializer.deserialize_any(RawValueVisitor)
    }
}

struct RawValueVisitor;

impl<'de> Visitor<'de> for RawValueVisitor {
    type Value = RawValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(deserializer)
    }
    fn visit_bool<E>(self, value: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<RawValue, E> {
        Ok(RawValue::Integer(value.into()))
    }
    fn visit_u64<E>(self, value: u64) -> Result<RawValue, E> {
        Ok(RawValue::Integer(value.into()))
    }
    fn visit_i128<E>(self, value: i128) -> Result<RawValue, E> {
        Ok(RawValue::Integer(value))
    }
    fn visit_u128<E: de::Error>(self, value: u128) -> Result<RawValue, E> {
        i128::try_from(value).map(RawValue::Integer).map_err(|_| E::custom("integer is too large"))
    }
    fn visit_f64<E>(self, value: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<RawValue, E> {
        Ok(RawValue::String(value.to_owned()))
    }
    fn visit_string<E>(self, value: String) -> Result<RawValue, E> {
        Ok(RawValue::String(value))
    }
    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<RawValue, E> {
        String::from_utf8(value.to_vec()).map(RawValue::String).map_err(|_| E::custom("binary value is not text"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key()? {
            let value = access.next_value()?;
            entries.push((key, value));
        }
        Ok(RawValue::Mapping(entries))
    }
}
