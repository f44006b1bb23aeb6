//! The naming rules of Kubernetes, Istio and container registries that a release's names must follow.
//!
//! Each check returns `Ok(())` or a short reason in lowercase, without the value itself, so callers can wrap it in
//! their own context.

/// Longest DNS-1123 label (Kubernetes object names such as namespaces and Services, Istio subset names).
pub const DNS_LABEL_MAX_LENGTH: usize = 63;

/// Longest Kubernetes label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;

/// Checks a DNS-1123 label: 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit.
///
/// Kubernetes uses this rule for namespaces, Services and container names; Istio uses it for DestinationRule subset
/// names, which is why a fledge version (the new subset's name) must follow it too.
pub fn check_dns_label(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > DNS_LABEL_MAX_LENGTH {
        return Err("it is longer than 63 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("only lowercase letters, digits and '-' are allowed");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("it must start and end with a letter or digit");
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain: dot-separated DNS labels, at most 253 characters (Kubernetes object names such as
/// Deployments and VirtualServices).
pub fn check_dns_subdomain(name: &str) -> Result<(), &'static str> {
    if name.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    if name.is_empty() {
        return Err("it is empty");
    }
    for part in name.split('.') {
        check_dns_label(part).map_err(|_| "only lowercase letters, digits, '-' and '.' are allowed, each part starting and ending with a letter or digit")?;
    }
    Ok(())
}

/// Checks a Kubernetes label value (non-empty here): at most 63 letters, digits, `-`, `_` and `.`, starting and
/// ending with a letter or digit.
pub fn check_label_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        return Err("it is longer than 63 characters");
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err("only letters, digits, '-', '_' and '.' are allowed");
    }
    let first_and_last_alphanumeric = value.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && value.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    if !first_and_last_alphanumeric {
        return Err("it must start and end with a letter or digit");
    }
    Ok(())
}

/// Checks a container image reference as registries accept it: `[registry[:port]/]path[:tag][@algorithm:hex]`,
/// with a lowercase path.
pub fn check_image_reference(reference: &str) -> Result<(), &'static str> {
    if reference.is_empty() {
        return Err("it is empty");
    }
    if reference.len() > 4096 {
        return Err("it is longer than 4096 characters");
    }
    if reference.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces");
    }
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let (algorithm, hex) = digest.split_once(':').ok_or("the digest must look like sha256:<hex>")?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'_' | b'-'));
        if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the digest must look like sha256:<hex>");
        }
    }
    // A tag follows the last ':' when no '/' comes after it (a ':' before a '/' is a registry port).
    let (name, tag) = match name_and_tag.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (name_and_tag, None),
    };
    if let Some(tag) = tag {
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !tag_ok {
            return Err("the tag must be 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'");
        }
    }
    if name.is_empty() {
        return Err("it names no repository");
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    let has_registry = components.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        let registry = components.remove(0);
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        if !host_ok || port.is_some_and(|port| port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit())) {
            return Err("the registry must be a host name with an optional numeric port");
        }
    }
    for component in components {
        let component_ok = !component.is_empty()
            && component
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
            && component.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && component.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        if !component_ok {
            return Err("the repository path must be lowercase letters, digits, '.', '_' and '-' between '/'");
        }
    }
    Ok(())
}

/// Whether a mesh host names the Service `service` of `namespace`: `reviews`, `reviews.<ns>`, `reviews.<ns>.svc` or
/// the FQDN `reviews.<ns>.svc.cluster.local`.
pub fn host_matches(host: &str, service: &str, namespace: &str) -> bool {
    host == service
        || host == format!("{service}.{namespace}")
        || host == format!("{service}.{namespace}.svc")
        || host == format!("{service}.{namespace}.svc.cluster.local")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for good in ["reviews", "v2", "a", "a-b-1", &"a".repeat(63)] {
            assert_eq!(check_dns_label(good), Ok(()), "{good}");
        }
        for bad in ["", "V2", "v2.1", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_subdomains() {
        assert_eq!(check_dns_subdomain("reviews.bookinfo"), Ok(()));
        assert!(check_dns_subdomain("reviews..bookinfo").is_err());
        assert!(check_dns_subdomain("Reviews").is_err());
    }

    #[test]
    fn label_values() {
        for good in ["v2", "V2", "2.4.1", "a_b-c.d"] {
            assert_eq!(check_label_value(good), Ok(()), "{good}");
        }
        for bad in ["", "-v2", "v2.", "a b", "a/b", &"a".repeat(64)] {
            assert!(check_label_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_references() {
        for good in [
            "nginx",
            "nginx:1.27",
            "library/nginx:latest",
            "registry.example.com/reviews:2.4.1",
            "localhost:5000/reviews",
            "localhost/reviews:v2",
            "ghcr.io/org/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "ghcr.io/org/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_image_reference(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-bad",
            "reg.io/a b",
            "reg.io//app",
            "reg.io:port/app",
            "app@sha256:xyz",
            "app@md5",
            "registry.example.com/Reviews:1",
        ] {
            assert!(check_image_reference(bad).is_err(), "{bad}");
        }
    }
}
