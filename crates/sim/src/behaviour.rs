//! How a simulated container behaves: start-up, readiness, crashes, image and configuration failures, scheduling,
//! and the error rate and latency of the requests it serves. A scenario maps image references to behaviours.
//!
//! Behaviours are written as comma-separated presets, e.g. `healthy`, `crashloop`, `crash-after=2m`, `oom`,
//! `image-pull`, `image-pull-unauthorized`, `invalid-image`, `config-error`, `unschedulable`, `slow-start=30s`,
//! `flapping=20s`, `errors=5%`, `p99=250ms` (the latency tail; the median stays 20ms), `latency=+300ms` (added to
//! the median and the 99th percentile; presets apply in order).

use std::time::Duration;

/// Why a container stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    /// Exit 1, reason `Error`.
    Error,
    /// Exit 137, reason `OOMKilled`.
    OutOfMemory,
}

/// How an image pull fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFailure {
    /// The tag does not exist (`not found`).
    NotFound,
    /// The repository does not exist or needs credentials (`pull access denied`).
    Unauthorized,
}

/// One container behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Image pull time.
    pub pull: Duration,
    /// Time from start to Ready (readiness probe passing).
    pub ready_after: Duration,
    /// The container stops after running this long.
    pub crash: Option<(Duration, CrashKind)>,
    /// The image cannot be pulled.
    pub pull_failure: Option<PullFailure>,
    /// The image reference is invalid (`InvalidImageName`), whatever it looks like.
    pub invalid_image: bool,
    /// The container cannot be created (`CreateContainerConfigError`) with this message.
    pub config_error: Option<String>,
    /// No node can take the pod.
    pub unschedulable: bool,
    /// Readiness flips every period.
    pub flapping: Option<Duration>,
    /// Fraction of requests answered 5xx.
    pub error_rate: f64,
    /// Median request latency.
    pub latency_median: Duration,
    /// 99th percentile request latency.
    pub latency_p99: Duration,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            pull: Duration::from_millis(800),
            ready_after: Duration::from_secs(2),
            crash: None,
            pull_failure: None,
            invalid_image: false,
            config_error: None,
            unschedulable: false,
            flapping: None,
            error_rate: 0.0,
            latency_median: Duration::from_millis(20),
            latency_p99: Duration::from_millis(80),
        }
    }
}

/// Why a behaviour text is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid behaviour `{preset}`: {reason}")]
pub struct BehaviourError {
    /// The preset that failed.
    pub preset: String,
    /// Why.
    pub reason: String,
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

impl Behaviour {
    /// Parses comma-separated presets.
    pub fn parse(text: &str) -> Result<Behaviour, BehaviourError> {
        let mut behaviour = Behaviour::default();
        for preset in text.split(',').map(str::trim).filter(|preset| !preset.is_empty()) {
            let error = |reason: &str| BehaviourError { preset: preset.to_owned(), reason: reason.to_owned() };
            let (name, value) = match preset.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim())),
                None => (preset, None),
            };
            let duration = |value: Option<&str>| -> Result<Duration, BehaviourError> {
                value.and_then(parse_duration).ok_or_else(|| error("expected a duration such as 30s or 2m"))
            };
            match name {
                "healthy" => {}
                "crashloop" => {
                    behaviour.crash = Some((
                        value.map_or(Ok(Duration::from_secs(1)), |value| duration(Some(value)))?,
                        CrashKind::Error,
                    ))
                }
                "crash-after" => behaviour.crash = Some((duration(value)?, CrashKind::Error)),
                "oom" => {
                    behaviour.crash = Some((
                        value.map_or(Ok(Duration::from_secs(2)), |value| duration(Some(value)))?,
                        CrashKind::OutOfMemory,
                    ))
                }
                "oom-after" => behaviour.crash = Some((duration(value)?, CrashKind::OutOfMemory)),
                "image-pull" | "image-pull-not-found" => behaviour.pull_failure = Some(PullFailure::NotFound),
                "image-pull-unauthorized" => behaviour.pull_failure = Some(PullFailure::Unauthorized),
                "invalid-image" => behaviour.invalid_image = true,
                "config-error" => {
                    behaviour.config_error = Some(format!("configmap \"{}\" not found", value.unwrap_or("app-config")));
                }
                "unschedulable" => behaviour.unschedulable = true,
                "slow-start" => behaviour.ready_after = duration(value.or(Some("30s")))?,
                "ready-after" => behaviour.ready_after = duration(value)?,
                "flapping" => behaviour.flapping = Some(duration(value.or(Some("20s")))?),
                "errors" => {
                    let percent = value
                        .and_then(|value| value.strip_suffix('%'))
                        .and_then(|number| number.parse::<f64>().ok())
                        .filter(|percent| (0.0..=100.0).contains(percent))
                        .ok_or_else(|| error("expected a percentage such as 5%"))?;
                    behaviour.error_rate = percent / 100.0;
                }
                "latency" => {
                    let added = value
                        .and_then(|value| value.strip_prefix('+'))
                        .and_then(parse_duration)
                        .ok_or_else(|| error("expected an added latency such as +300ms"))?;
                    behaviour.latency_median += added;
                    behaviour.latency_p99 += added;
                }
                "p99" => {
                    let p99 = duration(value)?;
                    if p99 <= behaviour.latency_median {
                        return Err(error("the 99th percentile must be above the median latency"));
                    }
                    behaviour.latency_p99 = p99;
                }
                _ => return Err(error("unknown preset")),
            }
        }
        Ok(behaviour)
    }
}

/// Whether a glob pattern (`*` matches any run of characters) matches a text.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(index) => rest = &rest[index + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_combine() {
        let behaviour = Behaviour::parse("errors=8%, latency=+300ms").unwrap();
        assert_eq!(behaviour.error_rate, 0.08);
        assert_eq!(behaviour.latency_median, Duration::from_millis(320));
        assert_eq!(
            Behaviour::parse("crash-after=2m").unwrap().crash,
            Some((Duration::from_secs(120), CrashKind::Error))
        );
        assert_eq!(Behaviour::parse("oom").unwrap().crash.map(|(_, kind)| kind), Some(CrashKind::OutOfMemory));
        let tail = Behaviour::parse("p99=250ms, latency=+300ms").unwrap();
        assert_eq!((tail.latency_median, tail.latency_p99), (Duration::from_millis(320), Duration::from_millis(550)));
        assert!(Behaviour::parse("p99=10ms").is_err(), "a tail below the median is refused");
        assert!(Behaviour::parse("teleport").is_err());
        assert!(Behaviour::parse("errors=150%").is_err());
        assert_eq!(Behaviour::parse("").unwrap(), Behaviour::default());
    }

    #[test]
    fn globs_match_image_references() {
        assert!(glob_matches("*:crashloop", "registry.example.com/reviews:crashloop"));
        assert!(glob_matches("registry.example.com/reviews:3.*", "registry.example.com/reviews:3.1.0"));
        assert!(!glob_matches("registry.example.com/reviews:3.*", "registry.example.com/reviews:2.0"));
        assert!(glob_matches("exact", "exact"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxc"));
    }
}
