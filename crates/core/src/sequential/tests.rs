use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A look in which the new version served `new` of 100 000 requests, with these bad requests.
fn look(new_share: f64, new_bad: u64, live_bad: u64) -> Counts {
    let new_total = (100_000.0 * new_share).round() as u64;
    Counts { new_total, new_bad, live_total: 100_000 - new_total, live_bad }
}

/// The binomial probability of `successes` in `trials` at `chance`, as a product (exact for small `trials`).
fn binomial(trials: u64, successes: u64, chance: f64) -> f64 {
    let mut coefficient = 1.0;
    for index in 0..successes {
        coefficient *= (trials - index) as f64 / (index + 1) as f64;
    }
    coefficient * chance.powi(successes as i32) * (1.0 - chance).powi((trials - successes) as i32)
}

#[test]
fn each_ratio_is_the_exact_binomial_likelihood_ratio() {
    for (share, ratio) in [(0.05, 2.0), (0.05, 50.0), (0.25, 1.25), (0.5, 10.0)] {
        let null = share;
        let alternative = ratio * null / (ratio * null + 1.0 - null);
        for bad in 0..=30_u64 {
            for new_bad in 0..=bad {
                let exact = binomial(bad, new_bad, alternative) / binomial(bad, new_bad, null);
                let computed = log_likelihood_ratio(ratio, &look(share, new_bad, bad - new_bad)).exp();
                assert!(
                    (computed - exact).abs() <= 1e-9 * exact.max(1.0),
                    "share {share}, ratio {ratio}, {new_bad} of {bad}: {computed} != {exact}"
                );
            }
        }
    }
}

#[test]
fn one_ratio_reproduces_walds_lines_of_the_nist_handbook() {
    // NIST/SEMATECH e-Handbook of Statistical Methods, 6.2.5 (sequential sampling): p1 = 0.01, p2 = 0.10,
    // α = 0.05, β = 0.10 give the acceptance line -h1 + s·n and the rejection line h2 + s·n with h1 = 0.939,
    // h2 = 1.205, s = 0.04. A bad request that is the new version's with chance 0.01 under the null and 0.10 under
    // the alternative is the same Bernoulli trial: share 0.01, ratio 0.10·0.99 / (0.01·0.90) = 11.
    let ratio = 0.10 * 0.99 / (0.01 * 0.90);
    let one = |new_bad, live_bad| log_likelihood_ratio(ratio, &look(0.01, new_bad, live_bad));
    let (log_a, log_b) = (one(1, 0), one(0, 1));
    let (alpha, beta) = (0.05_f64, 0.10_f64);
    let h1 = ((1.0 - alpha) / beta).ln() / (log_a - log_b);
    let h2 = ((1.0 - beta) / alpha).ln() / (log_a - log_b);
    let s = -log_b / (log_a - log_b);
    assert_eq!(format!("{h1:.3} {h2:.3} {s:.2}"), "0.939 1.205 0.04");
}

/// The smallest count of the new version's bad requests, of `bad`, at which a share-`share` test crosses `bound`.
fn crossing(share: f64, bad: u64, log_bound: f64) -> u64 {
    (0..=bad).find(|new_bad| log_evidence_of(&look(share, *new_bad, bad - new_bad)) >= log_bound).unwrap_or(bad + 1)
}

#[test]
fn the_exact_false_alarm_rate_over_every_look_stays_below_the_bound() {
    // Under "not worse", each bad request is the new version's with chance `share`. Look after every single one (the
    // most looks possible) for 600 bad requests, and sum exactly the chance of every path that ever crosses.
    for (share, false_alarm) in [(0.05, 0.01), (0.25, 0.01), (0.05, 0.1)] {
        let log_bound = (1.0_f64 / false_alarm).ln();
        let mut alive = vec![1.0_f64]; // chance of x new bad requests without having crossed
        let mut crossed = 0.0;
        for bad in 1..=600_u64 {
            let limit = crossing(share, bad, log_bound);
            let mut next = vec![0.0; alive.len() + 1];
            for (new_bad, chance) in alive.iter().enumerate() {
                next[new_bad] += chance * (1.0 - share);
                next[new_bad + 1] += chance * share;
            }
            for (new_bad, chance) in next.iter_mut().enumerate() {
                if new_bad as u64 >= limit {
                    crossed += *chance;
                    *chance = 0.0;
                }
            }
            alive = next;
        }
        assert!(crossed <= false_alarm, "share {share}: false alarms {crossed} > {false_alarm}");
        assert!(crossed > false_alarm / 20.0, "share {share}: {crossed} is suspiciously small");
    }
}

#[test]
fn a_bad_version_crosses_within_a_few_bad_requests() {
    // 5% of the requests to the new version fail, 0.1% to the live one, the new version takes 5%: each bad request
    // is the new version's with chance 0.25 / (0.25 + 0.095) = 0.72.
    let share = 0.05;
    let log_bound = (1.0_f64 / 0.01).ln();
    assert_eq!(crossing(share, 3, log_bound), 3, "three bad requests of the new version and none of the live one");
    assert_eq!(crossing(share, 4, log_bound), 3, "three of four bad requests, one the live version's, suffice");
    assert_eq!(crossing(share, 8, log_bound), 4, "with four of the live version's, four of the new version's");
    assert_eq!(crossing(share, 1, log_bound), 2, "one bad request is never enough");
}

/// A release of the new version at `share` of `rps` requests per second, both versions failing `chance` of them,
/// looked at every second for `seconds`; whether the test ever crossed.
fn healthy_release(random: &mut StdRng, share: f64, chance: f64, seconds: u32, false_alarm: f64) -> bool {
    let mut test = SequentialTest::new(false_alarm);
    for _ in 0..seconds {
        let mut second = Counts::default();
        for _ in 0..100 {
            let to_new = random.random::<f64>() < share;
            let bad = u64::from(random.random::<f64>() < chance);
            if to_new {
                second.new_total += 1;
                second.new_bad += bad;
            } else {
                second.live_total += 1;
                second.live_bad += bad;
            }
        }
        test.observe(&second);
        if test.regressed() {
            return true;
        }
    }
    false
}

#[test]
fn simulated_healthy_releases_false_alarm_at_most_as_often_as_allowed() {
    let mut random = StdRng::seed_from_u64(18);
    let (runs, false_alarm) = (400, 0.1);
    let alarms = (0..runs).filter(|_| healthy_release(&mut random, 0.2, 0.01, 300, false_alarm)).count();
    let rate = alarms as f64 / f64::from(runs);
    let margin = 3.0 * (false_alarm * (1.0 - false_alarm) / f64::from(runs)).sqrt();
    assert!(rate <= false_alarm + margin, "{alarms} false alarms in {runs} releases at α = {false_alarm}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// How often one looks does not change the evidence: any split of the same requests into looks ends with the
    /// evidence of one look at all of them (at a steady share of traffic), so more looks are only more chances to
    /// stop, each bounded by Ville's inequality.
    #[test]
    fn the_evidence_does_not_depend_on_how_often_one_looks(
        splits in proptest::collection::vec((0_u64..40, 0_u64..4), 1..60),
        new_share in 0.02_f64..0.6,
    ) {
        let mut test = SequentialTest::new(0.01);
        let mut all = Counts::default();
        for (live_bad, new_bad) in splits {
            let one = look(new_share, new_bad, live_bad);
            test.observe(&one);
            all = all.plus(&one);
        }
        let once = log_evidence_of(&all);
        prop_assert!((test.evidence().ln() - once).abs() < 1e-9, "{} != {once}", test.evidence().ln());
    }

    /// Fewer of the new version's bad requests never give more evidence.
    #[test]
    fn the_evidence_rises_with_the_new_versions_bad_requests(live_bad in 0_u64..50, new_bad in 0_u64..20) {
        let fewer = log_evidence_of(&look(0.1, new_bad, live_bad));
        let more = log_evidence_of(&look(0.1, new_bad + 1, live_bad));
        prop_assert!(more > fewer);
    }
}

#[test]
fn counter_resets_and_torn_reads_add_nothing() {
    let earlier = Counts { new_total: 100, new_bad: 2, live_total: 1000, live_bad: 1 };
    let later = Counts { new_total: 150, new_bad: 3, live_total: 1500, live_bad: 1 };
    assert_eq!(later.since(&earlier), Some(Counts { new_total: 50, new_bad: 1, live_total: 500, live_bad: 0 }));
    let restarted = Counts { new_total: 10, ..later };
    assert_eq!(restarted.since(&earlier), None, "the new version's requests went down: a pod restarted");
    let torn = Counts { new_bad: 60, ..later };
    assert_eq!(torn.since(&earlier), None, "more bad requests than requests");
}

#[test]
fn regressions_read_as_manifests_write_them() {
    assert_eq!(Regression::parse("1%"), Ok(Regression::Points(0.01)));
    assert_eq!(Regression::parse("2x"), Ok(Regression::Times(2.0)));
    assert_eq!(Regression::parse("1.5×"), Ok(Regression::Times(1.5)));
    assert!(Regression::parse("1").is_err());
    assert!(Regression::parse("0%").is_err());
    assert!(Regression::parse("1x").is_err());
    assert_eq!(Regression::Points(0.01).to_string(), "+1 point(s)");
    assert_eq!(Regression::Times(2.0).to_string(), "2×");
    assert_eq!(Regression::Points(0.01).bad_share(0.001, 1000), 0.011);
    assert_eq!(Regression::Times(2.0).bad_share(0.0, 1000), 0.002, "no bad live request: one is assumed");
}

#[test]
fn power_says_how_many_requests_a_regression_needs() {
    // The first stage of the example: 2 minutes at 5% of 100 requests per second, live failing 0.1%.
    let stage = Counts { new_total: 600, new_bad: 1, live_total: 11_400, live_bad: 12 };
    let one_point = power(&stage, Regression::Points(0.01), 0.01);
    assert!(one_point.enough, "{one_point:?}");
    assert!(one_point.new_requests_needed <= 600, "{one_point:?}");
    let half = Counts { new_total: 100, new_bad: 0, live_total: 1_900, live_bad: 2 };
    let short = power(&half, Regression::Points(0.01), 0.01);
    assert!(!short.enough, "{short:?}");
    let (needed, again) = (short.new_requests_needed as f64, one_point.new_requests_needed as f64);
    assert!((needed - again).abs() <= 0.02 * again, "the same shares need the same requests: {needed} vs {again}");
    let doubling = power(&stage, Regression::Times(2.0), 0.01);
    assert!(
        !doubling.enough && doubling.new_requests_needed > 5_000,
        "a doubling of 0.1% needs far more: {doubling:?}"
    );
    assert!(!power(&Counts::default(), Regression::Points(0.01), 0.01).enough, "no requests: not enough");
}
