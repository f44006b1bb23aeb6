//! Errors for people: an error and each of its causes in turn, on one line, joined with `: `. A cause whose text the
//! message before it already ends with (a wrapper that prints its source, like kube's `ServiceError: ...`) is not
//! repeated, and a wrapper that prints its source and then a debug dump of it (kube's `ApiError: {status}
//! ({status:?})`) is cut after the source's text.

use std::error::Error;

/// `failed to read manifest x.yaml: No such file or directory (os error 2)`.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut raw = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        raw.push(error.to_string());
        current = error.source();
    }
    // From the innermost cause out: each message with its source's text cleaned, and a debug dump after it cut.
    let mut clean = raw.clone();
    for index in (0..raw.len().saturating_sub(1)).rev() {
        let (source_raw, source_clean) = (&raw[index + 1], clean[index + 1].clone());
        if source_raw.is_empty() {
            continue;
        }
        let mut own = clean[index].replace(source_raw.as_str(), &source_clean);
        if let Some(position) = own.find(&format!("{source_clean} (")).filter(|_| own.ends_with(')')) {
            own.truncate(position + source_clean.len());
        }
        clean[index] = own;
    }
    let mut text = String::new();
    for own in clean {
        if text.is_empty() {
            text = own;
        } else if !text.ends_with(&own) {
            text.push_str(": ");
            text.push_str(&own);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read manifest release.yaml")]
    struct ReadFailed {
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("ServiceError: {0}")]
    struct Wrapper(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("ApiError: {0} ({0:?})")]
    struct Dumped(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("failed to list: {0}")]
    struct Watch(#[source] Dumped);

    #[test]
    fn every_cause_once() {
        let error = ReadFailed { source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file") };
        assert_eq!(error_chain(&error), "failed to read manifest release.yaml: no such file");
        let wrapped = Wrapper(std::io::Error::other("refused"));
        assert_eq!(error_chain(&wrapped), "ServiceError: refused", "a wrapper that prints its cause is not doubled");
        let dumped = Dumped(std::io::Error::other("configmaps \"x\" is forbidden"));
        assert_eq!(
            error_chain(&dumped),
            "ApiError: configmaps \"x\" is forbidden",
            "a debug dump after the cause is cut"
        );
        let watch = Watch(Dumped(std::io::Error::other("pods is forbidden")));
        assert_eq!(
            error_chain(&watch),
            "failed to list: ApiError: pods is forbidden",
            "also where a wrapper prints the wrapper that prints the dump"
        );
    }
}
