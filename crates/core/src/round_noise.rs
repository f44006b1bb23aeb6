//! How often a success-rate threshold fails a round by chance for a new version exactly as healthy as the live one:
//! the binomial tail of its failed requests past what the bound tolerates.
//!
//! ```text
//!  requests in a window at the stage's weight (n) ─┐
//!  the bound (min %) ──▶ failures it tolerates (k) ─┼─▶ P(more than k of n fail) = the chance a round fails
//!  the live version's failing share now (p) ───────┘
//! ```
//!
//! Small windows at small weights make strict bounds fail healthy versions: 90 requests under `min: 99` tolerate no
//! failure, and at 0.1% failing one in eleven rounds fails. Preflight warns about such checks.

/// What a success-rate bound makes of a version failing like the live one, in one round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundNoise {
    /// Requests to the new version in one window.
    pub requests: u64,
    /// The most failed requests among them the bound lets pass.
    pub tolerated: u64,
    /// The chance that more fail, so that the round fails.
    pub chance: f64,
}

/// The chance a round of a success-rate check with `min_percent` fails over `requests`, each failing with chance
/// `failing`.
pub fn success_rate_noise(requests: u64, min_percent: f64, failing: f64) -> RoundNoise {
    // A success rate of (n - k) / n passes while k <= n (1 - min); the epsilon keeps 1.0000000000000009 at 1.
    let tolerated = (requests as f64 * (1.0 - min_percent / 100.0) + 1e-9).floor().max(0.0) as u64;
    RoundNoise { requests, tolerated, chance: chance_of_more_than(tolerated, requests, failing) }
}

/// P(X > `tolerated`) for X binomial with `trials` and chance `chance`, summed in logs so that no term underflows.
pub fn chance_of_more_than(tolerated: u64, trials: u64, chance: f64) -> f64 {
    if tolerated >= trials || chance <= 0.0 {
        return 0.0;
    }
    if chance >= 1.0 {
        return 1.0;
    }
    let (log_chance, log_rest) = (chance.ln(), (-chance).ln_1p());
    // log P(X = 0), then P(X = j + 1) = P(X = j) · (n - j) / (j + 1) · p / (1 - p).
    let mut log_term = trials as f64 * log_rest;
    let mut terms = vec![log_term];
    for successes in 0..tolerated {
        log_term += ((trials - successes) as f64 / (successes + 1) as f64).ln() + log_chance - log_rest;
        terms.push(log_term);
    }
    let largest = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let at_most = largest.exp() * terms.iter().map(|term| (term - largest).exp()).sum::<f64>();
    (1.0 - at_most).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= 1e-9 * expected.max(1e-300)
    }

    #[test]
    fn the_tail_is_the_binomial_one() {
        // P(X > 0) = 1 - (1 - p)^n.
        assert!(close(chance_of_more_than(0, 90, 0.001), 1.0 - 0.999_f64.powi(90)));
        // P(X > 2) for n = 90, p = 0.001, summed by hand.
        let exact = 1.0
            - (0..=2).map(|k| binomial(90, k) * 0.001_f64.powi(k as i32) * 0.999_f64.powi(90 - k as i32)).sum::<f64>();
        assert!(close(chance_of_more_than(2, 90, 0.001), exact), "{exact}");
        assert_eq!(chance_of_more_than(5, 5, 0.5), 0.0, "no more than all can fail");
        assert_eq!(chance_of_more_than(3, 100, 0.0), 0.0);
        assert_eq!(chance_of_more_than(3, 100, 1.0), 1.0);
        // A million requests at 1%: (1 - p)^n underflows in plain arithmetic; the mean is 10 000, so 9 800 or fewer
        // failing is about 2 standard deviations below it.
        let tail = chance_of_more_than(9_800, 1_000_000, 0.01);
        assert!((0.97..0.98).contains(&tail), "{tail}");
    }

    fn binomial(n: u64, k: u64) -> f64 {
        (0..k).map(|index| (n - index) as f64 / (index + 1) as f64).product()
    }

    #[test]
    fn a_strict_bound_over_few_requests_fails_a_healthy_version_often() {
        let strict = success_rate_noise(90, 99.0, 0.001);
        assert_eq!((strict.requests, strict.tolerated), (90, 0));
        assert!((0.08..0.09).contains(&strict.chance), "one in eleven rounds: {strict:?}");
        let tolerant = success_rate_noise(90, 97.0, 0.001);
        assert_eq!(tolerant.tolerated, 2);
        assert!(tolerant.chance < 2e-4, "{tolerant:?}");
        assert_eq!(success_rate_noise(100, 99.0, 0.001).tolerated, 1, "exactly 99% passes");
        assert_eq!(success_rate_noise(0, 99.0, 0.001).chance, 0.0, "no request, no failed round");
    }
}
