//! Reading the node tree into typed values, collecting every problem instead of stopping at the first.
//!
//! A section reader asks an [`Entries`] (one mapping, checked against its field table) for each field by name and
//! kind. Each answer is a [`Read`]: absent, invalid (a diagnostic was recorded) or a value. Defaults are applied by
//! the section; cross-field rules run only on values that were read successfully, so one mistake is reported once.

use crate::diagnostic::{Diagnostic, Location};
use crate::document::{Node, Value};
use crate::fields::{Kind, Object};
use crate::suggest::closest;
use fledge_core::{Duration, Percentage, names};
use std::collections::BTreeMap;

mod entries;

pub(crate) use entries::Entries;

/// The result of reading one field.
#[derive(Clone, Debug)]
pub(crate) enum Read<T> {
    /// The field is not in the manifest.
    Absent,
    /// The field is there but wrong; a diagnostic was recorded.
    Invalid,
    /// The field's value.
    Value(T),
}

impl<T> Read<T> {
    /// The value, the default when absent, `None` when invalid.
    pub(crate) fn or(self, default: T) -> Option<T> {
        match self {
            Read::Absent => Some(default),
            Read::Invalid => None,
            Read::Value(value) => Some(value),
        }
    }

    /// `Some(None)` when absent, `Some(Some(value))` when present, `None` when invalid.
    pub(crate) fn optional(self) -> Option<Option<T>> {
        match self {
            Read::Absent => Some(None),
            Read::Invalid => None,
            Read::Value(value) => Some(Some(value)),
        }
    }

    /// The value if the field was present and valid.
    pub(crate) fn value(self) -> Option<T> {
        match self {
            Read::Value(value) => Some(value),
            Read::Absent | Read::Invalid => None,
        }
    }
}

/// Collects diagnostics while sections are read.
#[derive(Default)]
pub(crate) struct Reader {
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// Top-level keys with this prefix are ignored: a place for YAML anchors shared by several fields.
pub(crate) const EXTENSION_PREFIX: &str = "x-";

const DURATION_HINT: &str = "write a whole number and a unit: 500ms, 30s, 5m, 1h or 1h30m";
const PERCENTAGE_HINT: &str = "write a number followed by %, like 20% or 12.5%";

impl Reader {
    /// Records an error at a node, underlining the node.
    pub(crate) fn error(&mut self, node: &Node, message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics.push(Diagnostic::error(node.location, message).with_width(node.width).with_hint(hint));
    }

    /// Records a warning at a node.
    pub(crate) fn warning(&mut self, node: &Node, message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics.push(Diagnostic::warning(node.location, message).with_width(node.width).with_hint(hint));
    }

    fn wrong_kind(&mut self, node: &Node, path: &str, kind: &Kind, hint: &str) {
        let found = match &node.value {
            Value::Null => "nothing".to_owned(),
            value => match value.scalar_text() {
                Some(text) => format!("{} `{}`", value.kind(), shorten(text)),
                None => value.kind().to_owned(),
            },
        };
        let subject = if path.is_empty() { "the manifest".to_owned() } else { format!("`{path}`") };
        self.error(node, format!("{subject} must be {}, found {found}", kind.describe()), hint);
    }

    /// Reads a mapping against its field table: unknown fields, missing required ones and "exactly one of" rules
    /// are reported here.
    pub(crate) fn object<'n>(&mut self, node: &'n Node, path: &str, object: &'static Object) -> Option<Entries<'n>> {
        self.object_under(node, node, path, object)
    }

    /// Like [`Reader::object`], reporting missing fields at `parent` (the key that holds the mapping).
    fn object_under<'n>(
        &mut self,
        parent: &Node,
        node: &'n Node,
        path: &str,
        object: &'static Object,
    ) -> Option<Entries<'n>> {
        let Value::Mapping(pairs) = &node.value else {
            let hint = if path.is_empty() {
                "start from examples/minimal.yaml: a mapping with apiVersion, kind, service and deploy".to_owned()
            } else {
                format!("fields of `{path}`: {}", field_names(object))
            };
            self.wrong_kind(node, path, &Kind::Object(object), &hint);
            return None;
        };
        let mut entries = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let Some(name) = key.value.scalar_text() else {
                self.error(
                    key,
                    format!("keys in `{path}` must be field names"),
                    format!("fields of `{path}`: {}", field_names(object)),
                );
                continue;
            };
            if path.is_empty() && name.starts_with(EXTENSION_PREFIX) {
                continue;
            }
            if object.field(name).is_none() {
                self.unknown_field(key, name, path, object);
                continue;
            }
            entries.push((object.field(name).expect("checked above"), key, value));
        }
        let present = |name: &str| entries.iter().any(|(field, _, _)| field.name == name);
        for field in object.fields.iter().filter(|field| field.required) {
            if !present(field.name) {
                let location = if path.is_empty() { Location::START } else { parent.location };
                self.diagnostics.push(
                    Diagnostic::error(location, format!("missing required field `{}`", join(path, field.name)))
                        .with_hint(format!("add `{}`: {}", field.name, field.description)),
                );
            }
        }
        if !object.exactly_one_of.is_empty() {
            let given: Vec<&str> = object.exactly_one_of.iter().copied().filter(|name| present(name)).collect();
            let choices = object.exactly_one_of.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(" or ");
            if given.is_empty() {
                self.error(node, format!("`{path}` needs {choices}"), format!("give exactly one of {choices}"));
            } else if given.len() > 1 {
                let (_, key, _) = entries.iter().find(|(field, _, _)| field.name == given[1]).expect("present");
                self.error(
                    key,
                    format!("`{path}` has both `{}` and `{}`", given[0], given[1]),
                    format!("give exactly one of {choices}"),
                );
            }
        }
        Some(Entries { path: path.to_owned(), node, entries })
    }

    fn unknown_field(&mut self, key: &Node, name: &str, path: &str, object: &'static Object) {
        let location = if path.is_empty() { "at the top level".to_owned() } else { format!("in `{path}`") };
        let message = format!("unknown field `{}` {location}", shorten(name));
        let hint = if let Some(suggestion) = closest(name, object.fields.iter().map(|field| field.name)) {
            format!("did you mean `{suggestion}`?")
        } else if let Some(elsewhere) = crate::fields::all_field_paths()
            .into_iter()
            .map(|(path, _)| path)
            .find(|other| other.rsplit('.').next() == Some(name) && other.contains('.'))
        {
            format!("`{name}` belongs at `{elsewhere}`")
        } else {
            format!("fields {location}: {}", field_names(object))
        };
        self.error(key, message, hint);
    }

    /// Any text; plain numbers and booleans are taken as written.
    pub(crate) fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::String(text) | Value::Integer(_, text) | Value::Float(_, text) | Value::Bool(_, text) => {
                Some(text.clone())
            }
            _ => {
                self.wrong_kind(
                    node,
                    path,
                    &Kind::Text,
                    "write the text after the `:`; quote it if it contains `: ` or starts with a special character",
                );
                None
            }
        }
    }

    /// Text that must not be empty.
    fn non_empty_text(&mut self, node: &Node, path: &str, what: &str, example: &str) -> Option<String> {
        let text = self.text(node, path)?;
        if text.trim().is_empty() {
            self.error(node, format!("`{path}` is empty"), format!("give {what}, like `{example}`"));
            return None;
        }
        Some(text)
    }

    fn checked_text(
        &mut self,
        node: &Node,
        path: &str,
        check: fn(&str) -> Result<(), &'static str>,
        what: &str,
        hint: &str,
    ) -> Option<String> {
        let text = self.text(node, path)?;
        match check(&text) {
            Ok(()) => Some(text),
            Err(reason) => {
                self.error(node, format!("`{path}` is not a valid {what} (`{}`): {reason}", shorten(&text)), hint);
                None
            }
        }
    }

    /// A DNS-1123 label.
    pub(crate) fn name(&mut self, node: &Node, path: &str) -> Option<String> {
        self.checked_text(
            node,
            path,
            names::check_dns_label,
            "name",
            "use lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit (a DNS-1123 label, like `reviews` or `v2`)",
        )
    }

    /// A DNS-1123 subdomain.
    pub(crate) fn resource_name(&mut self, node: &Node, path: &str) -> Option<String> {
        self.checked_text(
            node,
            path,
            names::check_dns_subdomain,
            "Kubernetes object name",
            "use lowercase letters, digits, '-' and '.', at most 253 characters (a DNS-1123 subdomain, like `reviews`)",
        )
    }

    /// A container image reference.
    pub(crate) fn image(&mut self, node: &Node, path: &str) -> Option<String> {
        self.checked_text(
            node,
            path,
            names::check_image_reference,
            "image reference",
            "write [registry[:port]/]repository[:tag][@sha256:digest] with a lowercase repository, like `registry.example.com/reviews:2.4.1`",
        )
    }

    /// An http(s) URL without credentials in it. Messages show it redacted (a webhook's path is its credential).
    pub(crate) fn url(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.non_empty_text(node, path, "an http or https URL", "http://prometheus.istio-system:9090")?;
        let shown = crate::redact::url(&shorten(&text), path.ends_with("webhook"));
        let rest = text.strip_prefix("http://").or_else(|| text.strip_prefix("https://"));
        let Some(rest) = rest else {
            self.error(
                node,
                format!("`{path}` must start with http:// or https://, found `{shown}`"),
                "write a full URL, like `http://prometheus.istio-system:9090`",
            );
            return None;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            let hint = if path.ends_with("webhook") {
                "credentials in URLs end up in logs; give the webhook in `webhookFile` or `webhookEnv` instead"
            } else {
                "credentials in URLs end up in logs; use `prometheus.bearerTokenFile` or `prometheus.basicAuth` instead"
            };
            self.error(node, format!("`{path}` must not contain credentials"), hint);
            return None;
        }
        let host = authority.rsplit_once(':').map_or(authority, |(host, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() { host } else { authority }
        });
        let host_ok = !host.is_empty()
            && !text.chars().any(char::is_whitespace)
            && (host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                || (host.starts_with('[') && host.ends_with(']')));
        if !host_ok {
            self.error(
                node,
                format!("`{path}` is not a valid URL: `{shown}` has no valid host"),
                "write a full URL, like `http://prometheus.istio-system:9090`",
            );
            return None;
        }
        Some(text)
    }

    /// The name of an environment variable: letters, digits and `_`, not starting with a digit.
    pub(crate) fn environment_variable(&mut self, node: &Node, path: &str) -> Option<String> {
        self.checked_text(
            node,
            path,
            |name| {
                let valid = name.chars().next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if valid { Ok(()) } else { Err("use letters, digits and `_`, not starting with a digit") }
            },
            "environment variable name",
            "write the variable's name, like `SLACK_WEBHOOK_URL`, not its value",
        )
    }

    /// A file path.
    pub(crate) fn path(&mut self, node: &Node, path: &str) -> Option<std::path::PathBuf> {
        self.non_empty_text(node, path, "a file path", "/var/run/secrets/prometheus/token").map(Into::into)
    }

    /// A duration such as `30s`.
    pub(crate) fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let Value::String(text) = &node.value else {
            let hint = match &node.value {
                Value::Integer(..) | Value::Float(..) => {
                    "add a unit, like `30s`; the units are ms, s, m and h".to_owned()
                }
                _ => DURATION_HINT.to_owned(),
            };
            self.wrong_kind(node, path, &Kind::Duration, &hint);
            return None;
        };
        match Duration::parse(text) {
            Ok(duration) => Some(duration),
            Err(error) => {
                self.error(
                    node,
                    format!("`{path}` is not a valid duration (`{}`): {error}", shorten(text)),
                    DURATION_HINT,
                );
                None
            }
        }
    }

    /// A percentage such as `20%`.
    pub(crate) fn percentage(&mut self, node: &Node, path: &str) -> Option<Percentage> {
        let Value::String(text) = &node.value else {
            let hint = match &node.value {
                Value::Integer(..) | Value::Float(..) => "add the % sign, like `20%`".to_owned(),
                _ => PERCENTAGE_HINT.to_owned(),
            };
            self.wrong_kind(node, path, &Kind::Percentage, &hint);
            return None;
        };
        match Percentage::parse(text) {
            Ok(percentage) => Some(percentage),
            Err(error) => {
                self.error(
                    node,
                    format!("`{path}` is not a valid percentage (`{}`): {error}", shorten(text)),
                    PERCENTAGE_HINT,
                );
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    pub(crate) fn integer(&mut self, node: &Node, path: &str, min: i64, max: i64) -> Option<i64> {
        let range = format!("allowed: a whole number from {min} to {max}");
        let value = match &node.value {
            Value::Integer(value, _) => *value,
            // Integers too large for 64 bits arrive as floats: report them as out of range, not as "not a number".
            Value::Float(value, _) if value.is_finite() && value.fract() == 0.0 && value.abs() >= 9.2e18 => {
                let side = if *value < 0.0 { ("below the minimum", min) } else { ("above the maximum", max) };
                self.error(
                    node,
                    format!("`{path}` is {}, {} of {}", node.value.scalar_text().unwrap_or("?"), side.0, side.1),
                    range,
                );
                return None;
            }
            _ => {
                self.wrong_kind(node, path, &Kind::Integer { min, max }, &range);
                return None;
            }
        };
        let value = &value;
        match i64::try_from(*value) {
            Ok(value) if (min..=max).contains(&value) => Some(value),
            _ => {
                let side = if *value < i128::from(min) { "below the minimum" } else { "above the maximum" };
                let bound = if *value < i128::from(min) { min } else { max };
                self.error(node, format!("`{path}` is {value}, {side} of {bound}"), range);
                None
            }
        }
    }

    /// A finite number.
    pub(crate) fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        let value = match &node.value {
            Value::Integer(value, _) => *value as f64,
            Value::Float(value, _) => *value,
            _ => {
                self.wrong_kind(node, path, &Kind::Number, "write a plain number, like 99 or 0.5");
                return None;
            }
        };
        if !value.is_finite() {
            self.error(node, format!("`{path}` must be a finite number"), "write a plain number, like 99 or 0.5");
            return None;
        }
        Some(value)
    }

    /// `true` or `false`.
    pub(crate) fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(value, _) => Some(*value),
            _ => {
                self.wrong_kind(node, path, &Kind::Bool, "write true or false (without quotes)");
                None
            }
        }
    }

    /// One of `choices`.
    pub(crate) fn choice(&mut self, node: &Node, path: &str, choices: &'static [&'static str]) -> Option<&'static str> {
        let allowed = format!("allowed: {}", choices.join(", "));
        let Value::String(text) = &node.value else {
            self.wrong_kind(node, path, &Kind::Choice(choices), &allowed);
            return None;
        };
        if let Some(choice) = choices.iter().find(|choice| **choice == text) {
            return Some(choice);
        }
        let hint = match closest(text, choices.iter().copied()) {
            Some(suggestion) => format!("did you mean `{suggestion}`? {allowed}"),
            None => allowed,
        };
        self.error(node, format!("unknown value `{}` for `{path}`", shorten(text)), hint);
        None
    }

    /// A list's items.
    pub(crate) fn list<'n>(&mut self, node: &'n Node, path: &str, hint: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Sequence(items) => Some(items),
            _ => {
                self.wrong_kind(node, path, &Kind::List(&Kind::Text), hint);
                None
            }
        }
    }

    /// A mapping of text to text.
    pub(crate) fn text_map(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let Value::Mapping(pairs) = &node.value else {
            self.wrong_kind(node, path, &Kind::TextMap, "write `name: value` lines indented under the field");
            return None;
        };
        let mut map = BTreeMap::new();
        let mut valid = true;
        for (key, value) in pairs {
            let key_text = self.text(key, path);
            let value_text = self.text(value, &format!("{path}.{}", key.value.scalar_text().unwrap_or("?")));
            match (key_text, value_text) {
                (Some(key), Some(value)) => {
                    map.insert(key, value);
                }
                _ => valid = false,
            }
        }
        valid.then_some(map)
    }
}

/// `parent.name`, or `name` at the top level.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_owned() } else { format!("{parent}.{name}") }
}

fn field_names(object: &Object) -> String {
    object.fields.iter().map(|field| field.name).collect::<Vec<_>>().join(", ")
}

/// Long values are cut in messages so one bad line cannot flood a log.
pub(crate) fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    let single_line = text.lines().next().unwrap_or("");
    if single_line.chars().count() > LIMIT || single_line.len() < text.len() {
        format!("{}...", single_line.chars().take(LIMIT).collect::<String>())
    } else {
        single_line.to_owned()
    }
}
