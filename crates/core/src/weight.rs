//! Traffic weights: a whole percentage of requests, 0 to 100.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The share of a route's requests sent to one destination, as a whole percentage from 0 to 100.
///
/// Istio weights are integers that sum to 100 over a route's destinations, so a `Weight` and its
/// [`complement`](Weight::complement) describe a two-version split completely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Weight(u8);

/// A number outside 0..=100 was given as a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("weight {0} is out of range, expected 0 to 100")]
pub struct WeightOutOfRange(pub i64);

impl Weight {
    /// No traffic.
    pub const ZERO: Weight = Weight(0);
    /// All traffic.
    pub const FULL: Weight = Weight(100);

    /// A weight from a whole percentage, failing outside 0..=100.
    pub fn new(percent: i64) -> Result<Weight, WeightOutOfRange> {
        match u8::try_from(percent) {
            Ok(value) if value <= 100 => Ok(Weight(value)),
            _ => Err(WeightOutOfRange(percent)),
        }
    }

    /// The percentage as a number.
    pub fn percent(self) -> u8 {
        self.0
    }

    /// What is left for the other destination of a two-way split: `100 - self`.
    pub fn complement(self) -> Weight {
        Weight(100 - self.0)
    }

    /// This weight of a route share of `share` (the service's destinations' total, 100 when it has the whole
    /// route), rounded half up: `(live, new)`. 25% of 90 is `(67, 23)`.
    pub fn split_share(self, share: i64) -> (i64, i64) {
        let new = (share * i64::from(self.0) + 50) / 100;
        (share - new, new)
    }
}

impl TryFrom<u8> for Weight {
    type Error = WeightOutOfRange;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Weight::new(i64::from(value))
    }
}

impl From<Weight> for u8 {
    fn from(weight: Weight) -> u8 {
        weight.0
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}%", self.0)
    }
}

/// The weights a traffic provider read back after a write are not the ones it wrote: the write did not take effect
/// as planned (another writer, an admission webhook, a controller undoing it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "weights in {kind} {namespace}/{name} read back as {live}/{new}, not the {expected_live}/{expected_new} written"
)]
pub struct WeightsNotAsWritten {
    /// The kind of route: `VirtualService`, `HTTPRoute`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// The route.
    pub name: String,
    /// Live weight read.
    pub live: i64,
    /// New weight read.
    pub new: i64,
    /// Live weight written.
    pub expected_live: i64,
    /// New weight written.
    pub expected_new: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_zero_to_one_hundred() {
        assert_eq!(Weight::new(0), Ok(Weight::ZERO));
        assert_eq!(Weight::new(100), Ok(Weight::FULL));
        assert_eq!(Weight::new(101), Err(WeightOutOfRange(101)));
        assert_eq!(Weight::new(-1), Err(WeightOutOfRange(-1)));
        assert_eq!(Weight::new(256), Err(WeightOutOfRange(256)));
    }

    #[test]
    fn complement_completes_a_two_way_split() {
        let weight = Weight::new(30).unwrap();
        assert_eq!(weight.complement().percent(), 70);
        assert_eq!(weight.percent() + weight.complement().percent(), 100);
    }

    #[test]
    fn deserializing_rejects_out_of_range() {
        assert!(serde_json::from_str::<Weight>("100").is_ok());
        assert!(serde_json::from_str::<Weight>("101").is_err());
        assert_eq!(serde_json::to_string(&Weight::new(5).unwrap()).unwrap(), "5");
    }
}
