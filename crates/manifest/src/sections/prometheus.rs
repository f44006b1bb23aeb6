//! `prometheus:` where metrics are read, and how fledge authenticates. Secrets only ever come from files.

use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Read, Reader};
use fledge_core::Duration;
use fledge_core::release::{BasicAuth, Prometheus};

/// Istio's sample Prometheus add-on.
pub(crate) const DEFAULT_URL: &str = "http://prometheus.istio-system:9090";

/// Headers that carry credentials: they would put a secret in the manifest.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

pub(crate) static PROMETHEUS: Object = Object {
    fields: &[
        Field::new("url", Kind::Url, "base URL of the Prometheus HTTP API").default(DEFAULT_URL),
        Field::new("timeout", Kind::Duration, "timeout of one query").default("10s"),
        Field::new("bearerTokenFile", Kind::Path, "file holding a bearer token sent with every query"),
        Field::new("basicAuth", Kind::Object(&BASIC_AUTH), "basic authentication, the password read from a file"),
        Field::new("caFile", Kind::Path, "PEM file of certificate authorities trusted for an https URL"),
        Field::new("insecureSkipVerify", Kind::Bool, "skip TLS certificate verification (never in production)")
            .default("false"),
        Field::new("headers", Kind::TextMap, "extra request headers, such as a tenant header; never credentials"),
    ],
    exactly_one_of: &[],
};

static BASIC_AUTH: Object = Object {
    fields: &[
        Field::new("username", Kind::Text, "the user name").required(),
        Field::new("passwordFile", Kind::Path, "file whose content (trailing newline removed) is the password")
            .required(),
    ],
    exactly_one_of: &[],
};

pub(super) fn read(reader: &mut Reader, entries: &Entries<'_>) -> Option<Prometheus> {
    let url = entries.text(reader, "url").or(DEFAULT_URL.to_owned());
    let timeout = entries.duration(reader, "timeout").or(Duration::from_secs(10));
    let bearer_token_file = entries.path(reader, "bearerTokenFile").optional();
    let basic_auth = match entries.object(reader, "basicAuth") {
        Read::Absent => Some(None),
        Read::Invalid => None,
        Read::Value(auth) => {
            let username = auth.text(reader, "username").value();
            let password_file = auth.path(reader, "passwordFile").value();
            username.zip(password_file).map(|(username, password_file)| Some(BasicAuth { username, password_file }))
        }
    };
    let ca_file = entries.path(reader, "caFile").optional();
    let insecure_skip_verify = entries.bool(reader, "insecureSkipVerify").or(false);
    let headers = entries.text_map(reader, "headers").or(Default::default());

    let mut valid = true;
    if let (Some(timeout), Some(node)) = (timeout, entries.get("timeout"))
        && (timeout.is_zero() || timeout > Duration::from_secs(300))
    {
        reader.error(
            node,
            format!("`prometheus.timeout` is {timeout}, outside 1ms to 5m"),
            "a query should answer in seconds; 10s is the default",
        );
        valid = false;
    }
    if let (Some(Some(_)), Some(Some(_))) = (&bearer_token_file, &basic_auth) {
        let node = entries.key("basicAuth").expect("present");
        reader.error(
            node,
            "`prometheus.bearerTokenFile` and `prometheus.basicAuth` cannot both be given",
            "Prometheus takes one kind of credentials; choose one",
        );
        valid = false;
    }
    if let (Some(headers), Some(node)) = (&headers, entries.get("headers")) {
        for name in headers.keys() {
            if CREDENTIAL_HEADERS.contains(&name.to_lowercase().as_str()) {
                reader.error(
                    node,
                    format!("`prometheus.headers` must not set `{name}`"),
                    "credentials do not belong in a manifest: use bearerTokenFile or basicAuth.passwordFile",
                );
                valid = false;
            } else if name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                reader.error(
                    node,
                    format!("`prometheus.headers` has an invalid header name `{name}`"),
                    "header names are letters, digits and - (like X-Scope-OrgID)",
                );
                valid = false;
            }
        }
    }
    if let Some(true) = insecure_skip_verify {
        let node = entries.get("insecureSkipVerify").expect("true only when set");
        reader.warning(
            node,
            "`prometheus.insecureSkipVerify` turns off TLS certificate verification",
            "trust the server's CA with `prometheus.caFile` instead",
        );
    }
    if let (Some(url), Some(Some(_))) = (&url, &ca_file)
        && url.starts_with("http://")
    {
        let node = entries.get("caFile").expect("present");
        reader.warning(
            node,
            "`prometheus.caFile` has no effect on an http:// URL",
            "use an https:// URL, or remove caFile",
        );
    }
    if !valid {
        return None;
    }
    Some(Prometheus {
        url: url?,
        timeout: timeout?,
        bearer_token_file: bearer_token_file?,
        basic_auth: basic_auth?,
        ca_file: ca_file?,
        insecure_skip_verify: insecure_skip_verify?,
        headers: headers?,
    })
}
