//! Durations as release manifests write them: `500ms`, `30s`, `5m`, `1h`, `1h30m`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A length of time written with units, such as `30s` or `1h30m`.
///
/// Parsing accepts one or more `<whole number><unit>` parts with the units `ms`, `s`, `m` and `h`, each unit at most
/// once and from largest to smallest, so every duration has one obvious spelling. [`Display`](fmt::Display) writes
/// that spelling back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Duration(std::time::Duration);

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationParseError {
    /// The text was empty.
    #[error("empty duration")]
    Empty,
    /// A number had no unit after it.
    #[error("missing unit after `{number}`")]
    MissingUnit {
        /// The number without a unit.
        number: String,
    },
    /// A unit was not one of ms, s, m, h.
    #[error("unknown unit `{unit}`")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// A unit had no number before it, or something else than a digit was found.
    #[error("expected a number at `{rest}`")]
    MissingNumber {
        /// The text from the position where a number was expected.
        rest: String,
    },
    /// A number had a fractional part (`1.5h`).
    #[error("fractions are not allowed")]
    Fraction,
    /// A unit was repeated or came after a smaller one (`30s1m`).
    #[error("units must go from largest to smallest, each at most once")]
    UnitOrder,
    /// The value does not fit.
    #[error("duration is too long")]
    TooLong,
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    /// The longest duration a manifest may write (one week). Longer waits in a release are mistakes.
    pub const MAX: Duration = Duration(std::time::Duration::from_secs(7 * 24 * 3600));

    /// A duration of whole seconds.
    pub const fn from_secs(seconds: u64) -> Duration {
        Duration(std::time::Duration::from_secs(seconds))
    }

    /// A duration of whole milliseconds.
    pub const fn from_millis(milliseconds: u64) -> Duration {
        Duration(std::time::Duration::from_millis(milliseconds))
    }

    /// The standard library's view of this duration.
    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// Whole milliseconds.
    pub fn as_millis(self) -> u128 {
        self.0.as_millis()
    }

    /// True for a zero-length duration.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Parses `500ms`, `30s`, `5m`, `1h`, `1h30m`. See the type's documentation for the rules.
    pub fn parse(text: &str) -> Result<Duration, DurationParseError> {
        if text.is_empty() {
            return Err(DurationParseError::Empty);
        }
        let mut rest = text;
        let mut total_millis: u64 = 0;
        let mut previous_unit_millis = u64::MAX;
        while !rest.is_empty() {
            let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits_end == 0 {
                return Err(DurationParseError::MissingNumber { rest: rest.to_owned() });
            }
            let (digits, after_digits) = rest.split_at(digits_end);
            let unit_end = after_digits.find(|c: char| c.is_ascii_digit()).unwrap_or(after_digits.len());
            let (unit, after_unit) = after_digits.split_at(unit_end);
            if unit.starts_with(['.', ',']) {
                return Err(DurationParseError::Fraction);
            }
            let unit_millis = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "" => {
                    return Err(DurationParseError::MissingUnit { number: digits.to_owned() });
                }
                other => return Err(DurationParseError::UnknownUnit { unit: other.to_owned() }),
            };
            if unit_millis >= previous_unit_millis {
                return Err(DurationParseError::UnitOrder);
            }
            previous_unit_millis = unit_millis;
            let number: u64 = digits.parse().map_err(|_| DurationParseError::TooLong)?;
            total_millis = number
                .checked_mul(unit_millis)
                .and_then(|millis| total_millis.checked_add(millis))
                .ok_or(DurationParseError::TooLong)?;
            rest = after_unit;
        }
        let duration = Duration::from_millis(total_millis);
        if duration > Duration::MAX {
            return Err(DurationParseError::TooLong);
        }
        Ok(duration)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(duration: Duration) -> Self {
        duration.0
    }
}

impl TryFrom<String> for Duration {
    type Error = DurationParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Duration::parse(&text)
    }
}

impl From<Duration> for String {
    fn from(duration: Duration) -> String {
        duration.to_string()
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut millis = self.0.as_millis();
        if millis == 0 {
            return formatter.write_str("0s");
        }
        for (unit, unit_millis) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if millis >= unit_millis {
                write!(formatter, "{}{unit}", millis / unit_millis)?;
                millis %= unit_millis;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_combinations() {
        assert_eq!(Duration::parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(Duration::parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(Duration::parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(Duration::parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(Duration::parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(Duration::parse("1m30s250ms"), Ok(Duration::from_millis(90_250)));
        assert_eq!(Duration::parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(Duration::parse(""), Err(DurationParseError::Empty));
        assert_eq!(Duration::parse("30"), Err(DurationParseError::MissingUnit { number: "30".into() }));
        assert_eq!(Duration::parse("5min"), Err(DurationParseError::UnknownUnit { unit: "min".into() }));
        assert_eq!(Duration::parse("1.5h"), Err(DurationParseError::Fraction));
        assert_eq!(Duration::parse("m"), Err(DurationParseError::MissingNumber { rest: "m".into() }));
        assert_eq!(Duration::parse("-5s"), Err(DurationParseError::MissingNumber { rest: "-5s".into() }));
        assert_eq!(Duration::parse("30s1m"), Err(DurationParseError::UnitOrder));
        assert_eq!(Duration::parse("1m1m"), Err(DurationParseError::UnitOrder));
        assert_eq!(Duration::parse("99999999999999999999h"), Err(DurationParseError::TooLong));
        assert_eq!(Duration::parse("169h"), Err(DurationParseError::TooLong));
    }

    #[test]
    fn displays_the_canonical_spelling() {
        for text in ["0s", "500ms", "30s", "5m", "1h", "1h30m", "1m30s250ms", "168h"] {
            assert_eq!(Duration::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "1m30s");
        assert_eq!(Duration::parse("1500ms").unwrap().to_string(), "1s500ms");
    }
}
