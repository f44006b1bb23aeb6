//! Keeping secrets out of diagnostics: a manifest's URLs may carry credentials (`user:pass@`), tokens in their query,
//! and for webhooks (Slack, Teams) the path itself is the credential. Messages and the source lines printed under
//! them show such URLs with those parts replaced by `***`.

/// `url` as messages may show it: credentials and query replaced by `***`, and the path too when `hide_path`.
pub(crate) fn url(text: &str, hide_path: bool) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), text),
    };
    let end_of_authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end_of_authority);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let (path, query) = match tail.find(['?', '#']) {
        Some(at) => tail.split_at(at),
        None => (tail, ""),
    };
    let path = if hide_path && path.len() > 1 { "/***".to_owned() } else { path.to_owned() };
    let query = if query.is_empty() { String::new() } else { format!("{}***", &query[..1]) };
    format!("{scheme}{host}{path}{query}")
}

/// A source line as diagnostics may print it: every URL in it redacted; on a `webhook:` line, its value redacted
/// whatever it looks like (a URL without a scheme is still a secret).
pub(crate) fn line(text: &str) -> String {
    let hide_path = text.trim_start().trim_start_matches("- ").trim_start().starts_with("webhook");
    if let Some(at) = text.find("webhook:").filter(|_| hide_path) {
        let value_start = at + "webhook:".len();
        let value = text[value_start..].trim();
        let quote = value.chars().next().filter(|c| matches!(c, '"' | '\''));
        let inner = match quote {
            Some(quote) => value.trim_matches(quote),
            None => value,
        };
        let redacted = url(inner, true);
        let shown = match quote {
            Some(quote) => format!("{quote}{redacted}{quote}"),
            None => redacted,
        };
        return format!("{} {shown}", &text[..value_start]);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme starts after the last character that cannot be in one (which may take several bytes).
        let start = rest[..at]
            .char_indices()
            .rfind(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(index, c)| index + c.len_utf8());
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ']'))
            .map_or(rest.len(), |end| at + end);
        out.push_str(&rest[..start]);
        out.push_str(&url(&rest[start..end], hide_path));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_queries_and_webhook_paths_are_hidden() {
        assert_eq!(url("https://user:pw@hooks.example.com/x?token=1", false), "https://***@hooks.example.com/x?***");
        assert_eq!(url("https://hooks.slack.com/services/T0/B0/XYZ", true), "https://hooks.slack.com/***");
        assert_eq!(url("http://prometheus:9090/prom", false), "http://prometheus:9090/prom");
        assert_eq!(url("hooks.slack.com/services/T0", true), "hooks.slack.com/***");
        assert_eq!(
            line(r#"  - webhook: "https://hooks.slack.com/services/T0/B0/XYZ""#),
            r#"  - webhook: "https://hooks.slack.com/***""#
        );
        assert_eq!(
            line("prometheus: {url: \"http://admin:secret@prom:9090/api\", timeout: 1m}"),
            "prometheus: {url: \"http://***@prom:9090/api\", timeout: 1m}"
        );
        assert_eq!(line("gate: {timeout: 5min}"), "gate: {timeout: 5min}");
        assert_eq!(
            line("  url: \u{feff}http://prom:9090"),
            "  url: \u{feff}http://prom:9090",
            "a multi-byte character"
        );
        assert_eq!(line("  url: htétp://u:p@prom:9090"), "  url: htétp://***@prom:9090");
        assert_eq!(line("  - webhook: hooks.slack.com/services/T0/B0/XYZ"), "  - webhook: hooks.slack.com/***");
    }
}
