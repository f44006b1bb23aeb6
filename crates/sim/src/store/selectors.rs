//! Label selectors (equality- and set-based) and field selectors, as `?labelSelector=` and `?fieldSelector=`.

use crate::api_error::ApiError;
use serde_json::Value;

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl LabelSelector {
    /// Parses `app=reviews,version!=v1,tier in (web, api),!canary,track`.
    pub fn parse(text: &str) -> Result<LabelSelector, ApiError> {
        let invalid = |why: &str| ApiError::bad_request(format!("unable to parse requirement: {why}"));
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::DoesNotExist(check_key(key.trim()).map_err(|why| invalid(&why))?)
            } else if let Some((key, rest)) = split_word(part, " notin ") {
                Requirement::NotIn(
                    check_key(key).map_err(|why| invalid(&why))?,
                    parse_set(rest).map_err(|why| invalid(&why))?,
                )
            } else if let Some((key, rest)) = split_word(part, " in ") {
                Requirement::In(
                    check_key(key).map_err(|why| invalid(&why))?,
                    parse_set(rest).map_err(|why| invalid(&why))?,
                )
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(check_key(key.trim()).map_err(|why| invalid(&why))?, value.trim().to_owned())
            } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(check_key(key.trim()).map_err(|why| invalid(&why))?, value.trim().to_owned())
            } else {
                Requirement::Exists(check_key(part).map_err(|why| invalid(&why))?)
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    /// A selector from a `matchLabels` map (as Deployments and ReplicaSets carry).
    pub fn from_match_labels(labels: &serde_json::Map<String, Value>) -> LabelSelector {
        LabelSelector {
            requirements: labels
                .iter()
                .map(|(key, value)| Requirement::Equals(key.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect(),
        }
    }

    /// A selector from a `metav1.LabelSelector` object (`matchLabels` and `matchExpressions`).
    pub fn from_object(selector: &Value) -> LabelSelector {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            requirements.extend(LabelSelector::from_match_labels(labels).requirements);
        }
        for expression in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
            let key = expression.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
            let values: Vec<String> = expression
                .get("values")
                .and_then(Value::as_array)
                .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            requirements.push(match expression.get("operator").and_then(Value::as_str) {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                _ => Requirement::DoesNotExist(key),
            });
        }
        LabelSelector { requirements }
    }

    /// True when the selector has no requirements (selects everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object's labels satisfy the selector.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels").and_then(Value::as_object);
        let label = |key: &str| labels.and_then(|labels| labels.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
            Requirement::In(key, values) => label(key).is_some_and(|label| values.iter().any(|value| value == label)),
            Requirement::NotIn(key, values) => {
                !label(key).is_some_and(|label| values.iter().any(|value| value == label))
            }
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::DoesNotExist(key) => label(key).is_none(),
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn split_word<'t>(part: &'t str, word: &str) -> Option<(&'t str, &'t str)> {
    part.find(word).map(|index| (part[..index].trim(), part[index + word.len()..].trim()))
}

fn parse_set(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| format!("found '{text}', expected: '('"))?;
    Ok(inner.split(',').map(|value| value.trim().to_owned()).filter(|value| !value.is_empty()).collect())
}

fn check_key(key: &str) -> Result<String, String> {
    let valid = !key.is_empty()
        && key.len() <= 317
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid { Ok(key.to_owned()) } else { Err(format!("invalid label key \"{key}\"")) }
}

/// A parsed field selector: `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses a field selector, accepting only `supported` fields (plus metadata.name and metadata.namespace).
    pub fn parse(text: &str, supported: &[&str]) -> Result<FieldSelector, ApiError> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (field, equal, value) = if let Some((field, value)) = part.split_once("!=") {
                (field, false, value)
            } else if let Some((field, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (field, true, value)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{text}'; can't understand '{part}'")));
            };
            let field = field.trim();
            if !["metadata.name", "metadata.namespace"].contains(&field) && !supported.contains(&field) {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            requirements.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether an object's fields satisfy the selector. Missing fields compare as empty strings.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(field, equal, expected)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *expected) == *equal
        })
    }
}

/// The field selectors a resource supports beyond metadata.name and metadata.namespace.
pub fn supported_fields(plural: &str) -> &'static [&'static str] {
    match plural {
        "events" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "pods" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "namespaces" => &["status.phase"],
        "secrets" => &["type"],
        "replicasets" => &["status.replicas"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({ "metadata": { "name": "p", "namespace": "n", "labels": labels }, "status": { "phase": "Running" } })
    }

    #[test]
    fn equality_and_set_based_label_selectors() {
        let object = pod(json!({ "app": "reviews", "version": "v2", "tier": "web" }));
        let matches = |selector: &str| LabelSelector::parse(selector).unwrap().matches(&object);
        assert!(matches("app=reviews"));
        assert!(matches("app==reviews,version=v2"));
        assert!(!matches("app=reviews,version=v1"));
        assert!(matches("version!=v1"));
        assert!(matches("version in (v1, v2)"));
        assert!(!matches("version notin (v2,v3)"));
        assert!(matches("tier"));
        assert!(matches("!canary"));
        assert!(!matches("!tier"));
        assert!(matches("app=reviews,version in (v2),!canary"));
        assert!(matches(""));
        assert!(LabelSelector::parse("a in b").is_err());
    }

    #[test]
    fn field_selectors_check_supported_fields() {
        let object = pod(json!({}));
        let selector = FieldSelector::parse("metadata.name=p,status.phase!=Pending", supported_fields("pods")).unwrap();
        assert!(selector.matches(&object));
        assert!(!FieldSelector::parse("metadata.name=q", &[]).unwrap().matches(&object));
        let error = FieldSelector::parse("spec.nothing=x", supported_fields("pods")).unwrap_err();
        assert_eq!(error.code, 400);
    }
}
