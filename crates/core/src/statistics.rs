//! The statistical judge: the new version's samples against the previous version's, as Kayenta's Mann-Whitney
//! classifier judges a canary.
//!
//! ```text
//!  canary samples ──┐                            p < 1 - confidence ?──no──▶ Pass
//!                   ├─▶ Mann-Whitney U (ranks) ──▶        │ yes
//!  baseline samples ┘   Hodges-Lehmann shift ──────▶ shift / baseline median beyond ± tolerance ?
//!                                                          │ above ▶ High   below ▶ Low   within ▶ Pass
//! ```
//!
//! A rank test needs no assumption about the distribution (latencies are skewed, error rates bounded), and the
//! tolerance keeps a statistically real but negligible difference from failing a release. Both sides need
//! [`MIN_SAMPLES`] finite samples, or the result is [`Comparison::NoData`].

use serde::{Deserialize, Serialize};

/// Fewest finite samples each side needs for a judgement. Five against five is the smallest sample in which a
/// complete separation is significant at 98% confidence.
pub const MIN_SAMPLES: usize = 5;

/// How the new version compares with the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Comparison {
    /// Significantly and materially higher.
    High,
    /// Significantly and materially lower.
    Low,
    /// No difference beyond the tolerance at the confidence asked for.
    Pass,
    /// Too few samples on one side.
    NoData,
}

/// A judgement with the numbers behind it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    /// The verdict.
    pub comparison: Comparison,
    /// Two-sided p-value of the Mann-Whitney U test (normal approximation with tie and continuity corrections).
    pub p_value: Option<f64>,
    /// Hodges-Lehmann estimate of the shift (median of the pairwise differences new − previous).
    pub shift: Option<f64>,
    /// The shift relative to the previous version's median: 0.25 is 25% higher.
    pub relative_shift: Option<f64>,
    /// Median of the new version's samples.
    pub canary_median: Option<f64>,
    /// Median of the previous version's samples.
    pub baseline_median: Option<f64>,
    /// Finite samples of the new version.
    pub canary_samples: usize,
    /// Finite samples of the previous version.
    pub baseline_samples: usize,
}

/// Judges `canary` against `baseline`; non-finite samples are ignored.
///
/// `confidence` is in (0, 1), `tolerance` a fraction (0.1 tolerates a 10% shift of the median).
pub fn judge(canary: &[f64], baseline: &[f64], confidence: f64, tolerance: f64) -> Judgement {
    let canary: Vec<f64> = canary.iter().copied().filter(|value| value.is_finite()).collect();
    let baseline: Vec<f64> = baseline.iter().copied().filter(|value| value.is_finite()).collect();
    let mut judgement = Judgement {
        comparison: Comparison::NoData,
        p_value: None,
        shift: None,
        relative_shift: None,
        canary_median: median(&canary),
        baseline_median: median(&baseline),
        canary_samples: canary.len(),
        baseline_samples: baseline.len(),
    };
    if canary.len() < MIN_SAMPLES || baseline.len() < MIN_SAMPLES {
        return judgement;
    }
    let p_value = mann_whitney_p_value(&canary, &baseline);
    let shift = hodges_lehmann_shift(&canary, &baseline);
    let baseline_median = judgement.baseline_median.unwrap_or(0.0);
    let relative_shift = if shift == 0.0 {
        0.0
    } else if baseline_median == 0.0 {
        f64::INFINITY.copysign(shift)
    } else {
        shift / baseline_median.abs()
    };
    let significant = p_value < 1.0 - confidence;
    judgement.comparison = match () {
        () if significant && relative_shift > tolerance => Comparison::High,
        () if significant && relative_shift < -tolerance => Comparison::Low,
        () => Comparison::Pass,
    };
    judgement.p_value = Some(p_value);
    judgement.shift = Some(shift);
    judgement.relative_shift = Some(relative_shift);
    judgement
}

/// The two-sided p-value of the Mann-Whitney U test of `first` against `second`, by the normal approximation with
/// the tie correction of the variance and a continuity correction (as R's `wilcox.test(exact = FALSE)`).
pub fn mann_whitney_p_value(first: &[f64], second: &[f64]) -> f64 {
    let (n1, n2) = (first.len() as f64, second.len() as f64);
    let mut pooled: Vec<(f64, bool)> =
        first.iter().map(|value| (*value, true)).chain(second.iter().map(|value| (*value, false))).collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_first = 0.0;
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        // Positions start..end share the average of ranks start+1 ..= end.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum_first += pooled[start..end].iter().filter(|(_, is_first)| *is_first).count() as f64 * average_rank;
        let tied = (end - start) as f64;
        tie_term += tied * tied * tied - tied;
        start = end;
    }
    let n = n1 + n2;
    let u = rank_sum_first - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0; // every value is the same: no evidence of a difference
    }
    let difference = u - mean;
    let corrected = (difference.abs() - 0.5).max(0.0);
    let z = corrected / variance.sqrt();
    erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// The Hodges-Lehmann estimate of how far `first` lies above `second`: the median of every difference.
pub fn hodges_lehmann_shift(first: &[f64], second: &[f64]) -> f64 {
    let differences: Vec<f64> = first.iter().flat_map(|a| second.iter().map(move |b| a - b)).collect();
    median(&differences).unwrap_or(0.0)
}

/// The median; `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) { (sorted[middle - 1] + sorted[middle]) / 2.0 } else { sorted[middle] })
}

/// The complementary error function, with a fractional error below 1.2e-7 (Numerical Recipes' `erfcc`).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let polynomial = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let result = t * polynomial.exp();
    if x >= 0.0 { result } else { 2.0 - result }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    #[test]
    #[allow(clippy::approx_constant, reason = "3.14 is a measurement in R's example data, not π")]
    fn p_values_match_r_wilcox_test_without_exact() {
        // R: wilcox.test(c(1.83,0.50,1.62,2.48,1.68,1.88,1.55,3.06,1.30),
        //                c(0.878,0.647,0.598,2.05,1.06,1.29,1.06,3.14,1.29), exact = FALSE)$p.value
        //    = 0.1329 (ties in the second sample); SciPy's mannwhitneyu(method="asymptotic") agrees.
        let first = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
        let second = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
        let p = mann_whitney_p_value(&first, &second);
        assert!(close(p, 0.1329, 0.001), "p = {p}");
        // Complete separation of 5 against 5: U = 25, z = (12.5 - 0.5) / sqrt(22.9167) → p = 0.012186.
        let p = mann_whitney_p_value(&[6.0, 7.0, 8.0, 9.0, 10.0], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(close(p, 0.012186, 0.00001), "p = {p}");
        assert_eq!(mann_whitney_p_value(&[1.0; 6], &[1.0; 6]), 1.0, "identical samples show no difference");
    }

    #[test]
    fn erfc_is_accurate() {
        assert!(close(erfc(0.0), 1.0, 1e-7));
        assert!(close(erfc(1.0), 0.157_299_207, 1e-7));
        assert!(close(erfc(-1.0), 1.842_700_793, 1e-7));
        assert!(close(erfc(3.0), 2.209_05e-5, 1e-9));
    }

    #[test]
    fn a_doubled_latency_is_high_and_noise_passes() {
        let baseline: Vec<f64> = (0..20).map(|index| 200.0 + f64::from(index % 7)).collect();
        let doubled: Vec<f64> = baseline.iter().map(|value| value * 2.0).collect();
        let judgement = judge(&doubled, &baseline, 0.98, 0.10);
        assert_eq!(judgement.comparison, Comparison::High);
        assert!(judgement.relative_shift.unwrap() > 0.9, "{judgement:?}");
        assert_eq!(judge(&baseline, &doubled, 0.98, 0.10).comparison, Comparison::Low);

        let jittered: Vec<f64> = baseline.iter().map(|value| value + 1.0).collect();
        let small = judge(&jittered, &baseline, 0.98, 0.10);
        assert_eq!(small.comparison, Comparison::Pass, "a 0.5% shift is within the 10% tolerance: {small:?}");
    }

    #[test]
    fn too_few_or_non_finite_samples_are_no_data() {
        let judgement = judge(&[1.0, 2.0, f64::NAN, 3.0, 4.0], &[1.0, 2.0, 3.0, 4.0, 5.0], 0.98, 0.1);
        assert_eq!((judgement.comparison, judgement.canary_samples), (Comparison::NoData, 4));
    }

    #[test]
    fn a_zero_baseline_makes_any_shift_unbounded() {
        let judgement = judge(&[1.0, 1.0, 2.0, 1.0, 1.0, 2.0], &[0.0; 6], 0.98, 0.1);
        assert_eq!(judgement.comparison, Comparison::High);
        assert_eq!(judgement.relative_shift, Some(f64::INFINITY));
    }
}
