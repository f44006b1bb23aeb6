//! Wall-clock timestamps in Kubernetes formats, and the time-scale factor that compresses simulated waits.

use jiff::Timestamp;
use std::time::Duration;

/// `2026-11-25T17:46:44Z`: metav1.Time, second precision.
pub fn timestamp(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2026-11-25T17:46:44.123456Z`: metav1.MicroTime.
pub fn micro_timestamp(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// Now, as metav1.Time.
pub fn now() -> String {
    timestamp(Timestamp::now())
}

/// Now, as metav1.MicroTime.
pub fn now_micro() -> String {
    micro_timestamp(Timestamp::now())
}

/// Parses a metav1.Time or MicroTime.
pub fn parse(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

/// How much faster than real time simulated waits run (kubelet start-up delays, back-offs, crashes). Timestamps in
/// objects stay wall-clock; only the waits shrink.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale(f64);

impl TimeScale {
    /// Real time.
    pub const REAL: TimeScale = TimeScale(1.0);

    /// A factor of at least 1 (values below are taken as 1).
    pub fn new(factor: f64) -> TimeScale {
        TimeScale(if factor.is_finite() && factor >= 1.0 { factor } else { 1.0 })
    }

    /// The factor.
    pub fn factor(self) -> f64 {
        self.0
    }

    /// How long a simulated wait of `duration` really takes.
    pub fn real(self, duration: Duration) -> Duration {
        duration.div_f64(self.0)
    }

    /// How much simulated time passes in `real` time.
    pub fn simulated(self, real: Duration) -> Duration {
        real.mul_f64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kubernetes() {
        let time: Timestamp = "2026-11-25T17:46:44.123456789Z".parse().unwrap();
        assert_eq!(timestamp(time), "2026-11-25T17:46:44Z");
        assert_eq!(micro_timestamp(time), "2026-11-25T17:46:44.123456Z");
        assert_eq!(parse("2026-11-25T17:46:44Z").map(timestamp).as_deref(), Some("2026-11-25T17:46:44Z"));
    }

    #[test]
    fn scale_compresses_waits() {
        let scale = TimeScale::new(10.0);
        assert_eq!(scale.real(Duration::from_secs(10)), Duration::from_secs(1));
        assert_eq!(scale.simulated(Duration::from_secs(1)), Duration::from_secs(10));
        assert_eq!(TimeScale::new(0.5), TimeScale::REAL);
    }
}
