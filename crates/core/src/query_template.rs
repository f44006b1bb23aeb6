//! PromQL templates of custom metric checks: `{{service}}`, `{{namespace}}`, `{{version}}`, `{{previousVersion}}`
//! and `{{window}}`, nothing else.

use crate::Duration;

/// The variables a query template may use, in documentation order.
pub const TEMPLATE_VARIABLES: [&str; 5] = ["service", "namespace", "version", "previousVersion", "window"];

/// Why a query is not a valid template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("`{{{{` at byte {offset} is never closed")]
    Unclosed {
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// A variable that does not exist.
    #[error("unknown template variable `{name}`")]
    UnknownVariable {
        /// The name between the braces.
        name: String,
    },
}

/// The values substituted into a template. Values are Kubernetes names and durations, which cannot contain the
/// quote or backslash characters of a PromQL string, but are escaped all the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateValues {
    /// `{{service}}`
    pub service: String,
    /// `{{namespace}}`
    pub namespace: String,
    /// `{{version}}`
    pub version: String,
    /// `{{previousVersion}}`
    pub previous_version: String,
    /// `{{window}}`
    pub window: Duration,
}

/// A parsed query template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryTemplate {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(&'static str),
}

impl QueryTemplate {
    /// Parses a template; `{{ name }}` may have spaces inside the braces.
    pub fn parse(text: &str) -> Result<QueryTemplate, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut consumed = 0;
        while let Some(start) = rest.find("{{") {
            let after_open = &rest[start + 2..];
            let end = after_open.find("}}").ok_or(TemplateError::Unclosed { offset: consumed + start })?;
            let name = after_open[..end].trim();
            let variable = TEMPLATE_VARIABLES
                .iter()
                .find(|known| **known == name)
                .ok_or_else(|| TemplateError::UnknownVariable { name: name.to_owned() })?;
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            parts.push(Part::Variable(variable));
            let next = start + 2 + end + 2;
            consumed += next;
            rest = &rest[next..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(QueryTemplate { parts })
    }

    /// Whether the template uses a variable.
    pub fn uses(&self, variable: &str) -> bool {
        self.parts.iter().any(|part| matches!(part, Part::Variable(name) if *name == variable))
    }

    /// The query with every variable replaced.
    pub fn render(&self, values: &TemplateValues) -> String {
        let escape = |value: &str| value.replace('\\', "\\\\").replace('"', "\\\"");
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.clone(),
                Part::Variable("service") => escape(&values.service),
                Part::Variable("namespace") => escape(&values.namespace),
                Part::Variable("version") => escape(&values.version),
                Part::Variable("previousVersion") => escape(&values.previous_version),
                Part::Variable(_window) => values.window.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> TemplateValues {
        TemplateValues {
            service: "reviews".into(),
            namespace: "bookinfo".into(),
            version: "v2".into(),
            previous_version: "v1".into(),
            window: Duration::from_secs(90),
        }
    }

    #[test]
    fn renders_every_variable() {
        let template = QueryTemplate::parse(
            r#"sum(rate(x{app="{{service}}",ns="{{ namespace }}",v="{{version}}",p="{{previousVersion}}"}[{{window}}]))"#,
        )
        .unwrap();
        assert_eq!(template.render(&values()), r#"sum(rate(x{app="reviews",ns="bookinfo",v="v2",p="v1"}[1m30s]))"#);
        assert!(template.uses("version"));
    }

    #[test]
    fn escapes_values_for_promql_strings() {
        let template = QueryTemplate::parse(r#"x{a="{{service}}"}"#).unwrap();
        let odd = TemplateValues { service: r#"a"b\c"#.into(), ..values() };
        assert_eq!(template.render(&odd), r#"x{a="a\"b\\c"}"#);
    }

    #[test]
    fn rejects_unknown_variables_and_unclosed_braces() {
        assert_eq!(
            QueryTemplate::parse("x{v=\"{{ verison }}\"}"),
            Err(TemplateError::UnknownVariable { name: "verison".into() })
        );
        assert_eq!(QueryTemplate::parse("ab {{version"), Err(TemplateError::Unclosed { offset: 3 }));
        assert_eq!(QueryTemplate::parse("no variables").unwrap().render(&values()), "no variables");
    }
}
