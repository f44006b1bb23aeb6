//! The manifest's shape as data: every field of every section, with its kind, default and description.
//!
//! This table is the single source of truth for which fields exist. The [`crate::reader`] uses it to reject
//! unknown fields (with suggestions), report missing required ones and check ranges; [`crate::schema`] turns it
//! into the JSON Schema editors use; a test checks that docs/manifest.md mentions every field.

/// One field of a manifest mapping.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) required: bool,
    /// The default as it would be written in YAML, when the field has one that is a constant.
    pub(crate) default: Option<&'static str>,
    pub(crate) description: &'static str,
}

impl Field {
    /// An optional field without a constant default.
    pub(crate) const fn new(name: &'static str, kind: Kind, description: &'static str) -> Field {
        Field { name, kind, required: false, default: None, description }
    }

    /// The same field, required.
    pub(crate) const fn required(self) -> Field {
        Field { required: true, ..self }
    }

    /// The same field with a constant default.
    pub(crate) const fn default(self, default: &'static str) -> Field {
        Field { default: Some(default), ..self }
    }
}

/// What a field holds.
#[derive(Debug)]
pub(crate) enum Kind {
    /// Any text.
    Text,
    /// A DNS-1123 label (namespaces, Services, subset names, container names).
    Name,
    /// A DNS-1123 subdomain (Deployments, VirtualServices, DestinationRules).
    ResourceName,
    /// A container image reference.
    Image,
    /// An http or https URL.
    Url,
    /// A file path.
    Path,
    /// The name of an environment variable.
    EnvironmentVariable,
    /// `500ms`, `30s`, `5m`, `1h`, `1h30m`.
    Duration,
    /// `20%`.
    Percentage,
    /// A whole number within a range.
    Integer { min: i64, max: i64 },
    /// Any finite number.
    Number,
    /// `true` or `false`.
    Bool,
    /// One of a few words.
    Choice(&'static [&'static str]),
    /// A mapping with known fields.
    Object(&'static Object),
    /// A list of one kind.
    List(&'static Kind),
    /// A mapping of text to text.
    TextMap,
    /// A Kubernetes PodTemplateSpec, passed through.
    PodTemplate,
}

impl Kind {
    /// How the kind is called in messages: "`gate.timeout` must be a duration".
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Kind::Text
            | Kind::Name
            | Kind::ResourceName
            | Kind::Image
            | Kind::Url
            | Kind::Path
            | Kind::EnvironmentVariable => "a string",
            Kind::Duration => "a duration",
            Kind::Percentage => "a percentage",
            Kind::Integer { .. } => "a whole number",
            Kind::Number => "a number",
            Kind::Bool => "true or false",
            Kind::Choice(_) => "one of the listed words",
            Kind::Object(_) | Kind::TextMap | Kind::PodTemplate => "a mapping",
            Kind::List(_) => "a list",
        }
    }
}

/// The fields of one mapping.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) fields: &'static [Field],
    /// Exactly one of these fields must be present (empty: no such rule).
    pub(crate) exactly_one_of: &'static [&'static str],
}

impl Object {
    /// The field called `name`, if the mapping has one.
    pub(crate) fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|field| field.name == name)
    }
}

/// Every field path of the manifest (`gate.timeout`, `stages[].weight`), with its field, in table order.
pub(crate) fn all_field_paths() -> Vec<(String, &'static Field)> {
    fn walk(prefix: &str, object: &'static Object, out: &mut Vec<(String, &'static Field)>) {
        for field in object.fields {
            let path = if prefix.is_empty() { field.name.to_owned() } else { format!("{prefix}.{}", field.name) };
            out.push((path.clone(), field));
            match &field.kind {
                Kind::Object(child) => walk(&path, child, out),
                Kind::List(Kind::Object(child)) => walk(&format!("{path}[]"), child, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk("", &crate::sections::RELEASE, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/manifest.md is the reference users read: every field the parser accepts must be documented there.
    #[test]
    fn every_field_is_documented() {
        let reference = include_str!("../../../docs/manifest.md");
        let missing: Vec<String> = all_field_paths()
            .into_iter()
            .map(|(path, _)| path)
            .filter(|path| !reference.contains(&format!("`{path}`")))
            .collect();
        assert!(missing.is_empty(), "fields missing from docs/manifest.md: {missing:?}");
    }

    #[test]
    fn every_default_in_the_table_is_valid_for_its_kind() {
        for (path, field) in all_field_paths() {
            let Some(default) = field.default else { continue };
            let valid = match &field.kind {
                Kind::Duration => fledge_core::Duration::parse(default).is_ok(),
                Kind::Integer { min, max } => default.parse::<i64>().is_ok_and(|value| (*min..=*max).contains(&value)),
                Kind::Choice(choices) => choices.contains(&default),
                Kind::Bool => matches!(default, "true" | "false"),
                Kind::Name => fledge_core::names::check_dns_label(default).is_ok(),
                _ => true,
            };
            assert!(valid, "default {default:?} of {path} is not a valid {:?}", field.kind);
        }
    }
}
