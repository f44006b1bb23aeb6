//! Percentages as release manifests write them: `20%`, `12.5%`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A non-negative, finite percentage such as `20%`. Written with the `%` sign so that `0.2` and `20` cannot be
/// confused.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Percentage(f64);

/// Why a text is not a percentage.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PercentageParseError {
    /// The `%` sign is missing.
    #[error("missing `%` sign")]
    MissingPercentSign,
    /// The part before `%` is not a non-negative decimal number.
    #[error("`{number}` is not a non-negative number")]
    NotANumber {
        /// The text before the sign.
        number: String,
    },
}

impl Percentage {
    /// Parses `20%` or `12.5%`.
    pub fn parse(text: &str) -> Result<Percentage, PercentageParseError> {
        let number = text.strip_suffix('%').ok_or(PercentageParseError::MissingPercentSign)?;
        let not_a_number = || PercentageParseError::NotANumber { number: number.to_owned() };
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(not_a_number());
        }
        let value: f64 = number.parse().map_err(|_| not_a_number())?;
        if !value.is_finite() {
            return Err(not_a_number());
        }
        Ok(Percentage(value))
    }

    /// The number of percent: `20%` is `20.0`.
    pub fn percent(self) -> f64 {
        self.0
    }

    /// The fraction: `20%` is `0.2`.
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

impl TryFrom<String> for Percentage {
    type Error = PercentageParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Percentage::parse(&text)
    }
}

impl From<Percentage> for String {
    fn from(percentage: Percentage) -> String {
        percentage.to_string()
    }
}

impl fmt::Display for Percentage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}%", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_decimal_percentages() {
        assert_eq!(Percentage::parse("20%").unwrap().percent(), 20.0);
        assert_eq!(Percentage::parse("12.5%").unwrap().fraction(), 0.125);
        assert_eq!(Percentage::parse("0%").unwrap().to_string(), "0%");
    }

    #[test]
    fn rejects_numbers_without_sign_and_signs_without_numbers() {
        assert_eq!(Percentage::parse("20"), Err(PercentageParseError::MissingPercentSign));
        assert_eq!(Percentage::parse("%"), Err(PercentageParseError::NotANumber { number: String::new() }));
        assert_eq!(Percentage::parse("-5%"), Err(PercentageParseError::NotANumber { number: "-5".into() }));
        assert_eq!(Percentage::parse("1e3%"), Err(PercentageParseError::NotANumber { number: "1e3".into() }));
        assert_eq!(Percentage::parse("1..2%"), Err(PercentageParseError::NotANumber { number: "1..2".into() }));
    }
}
