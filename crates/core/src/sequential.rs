//! The sequential test of counted checks: does the new version fail (or slow down) a larger share of its requests
//! than the live version? Decided after every look at the counters, with a false-alarm rate that holds however
//! often one looks.
//!
//! ```text
//!  a look: both versions' counters ──increments──▶ n_new, x_new, n_live, x_live (requests, bad requests)
//!                                                     │ if the new version is not worse, each of the look's
//!                                                     │ k = x_new + x_live bad requests is the new version's with
//!                                                     ▼ chance θ0 = n_new / (n_new + n_live)
//!  for each ratio r of the grid:   L_r ×= (θr/θ0)^x_new · ((1−θr)/(1−θ0))^x_live,   θr = rθ0 / (rθ0 + 1 − θ0)
//!  evidence E = mean of L_r over the grid  ──E ≥ 1/α ?──yes──▶ the new version is worse: roll back
//! ```
//!
//! Given the requests each version served, the bad ones among them are split between the versions as the
//! conditional argument says: exactly binomially for Poisson counts; for Bernoulli requests with equal shares the
//! split is hypergeometric, which Hoeffding's 1963 theorem bounds by the binomial for the convex `L_r`; with a
//! smaller share for the new version it is a noncentral hypergeometric, stochastically smaller, and `L_r` rises
//! with `x_new`. So each `L_r` is a nonnegative supermartingale while the new version fails no larger share than the
//! live one. So is their mean, and
//! Ville's inequality bounds the chance that it ever reaches `1/α` by `α`: the mixture sequential probability ratio
//! test. Looking more often only adds looks; it never spends more of `α`.

use serde::{Deserialize, Serialize};

/// Requests and bad requests of both versions: counters as read, or what they grew by between two looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Requests the new version served.
    pub new_total: u64,
    /// Of those, bad (failed, or slower than the check's bound).
    pub new_bad: u64,
    /// Requests the live version served.
    pub live_total: u64,
    /// Of those, bad.
    pub live_bad: u64,
}

impl Counts {
    /// What the counters grew by since `earlier`; `None` when one went down (a counter reset: a pod restarted or
    /// left) or more requests turned bad than were served (counters read at different scrapes). Such a look
    /// adds no evidence: evidence is lost, never invented.
    pub fn since(&self, earlier: &Counts) -> Option<Counts> {
        let increment = Counts {
            new_total: self.new_total.checked_sub(earlier.new_total)?,
            new_bad: self.new_bad.checked_sub(earlier.new_bad)?,
            live_total: self.live_total.checked_sub(earlier.live_total)?,
            live_bad: self.live_bad.checked_sub(earlier.live_bad)?,
        };
        (increment.new_bad <= increment.new_total && increment.live_bad <= increment.live_total).then_some(increment)
    }

    /// Each counter's larger value of both: a baseline that never goes back, so that a counter that went down and
    /// comes back (a series that vanished for a scrape) is not counted twice.
    pub fn high_water(&self, other: &Counts) -> Counts {
        Counts {
            new_total: self.new_total.max(other.new_total),
            new_bad: self.new_bad.max(other.new_bad),
            live_total: self.live_total.max(other.live_total),
            live_bad: self.live_bad.max(other.live_bad),
        }
    }

    /// The sum of both.
    pub fn plus(&self, other: &Counts) -> Counts {
        Counts {
            new_total: self.new_total + other.new_total,
            new_bad: self.new_bad + other.new_bad,
            live_total: self.live_total + other.live_total,
            live_bad: self.live_bad + other.live_bad,
        }
    }

    /// The new version's share of bad requests, when it served any.
    pub fn new_share(&self) -> Option<f64> {
        (self.new_total > 0).then(|| self.new_bad as f64 / self.new_total as f64)
    }

    /// The live version's share of bad requests, when it served any.
    pub fn live_share(&self) -> Option<f64> {
        (self.live_total > 0).then(|| self.live_bad as f64 / self.live_total as f64)
    }
}

/// The smallest regression worth catching: how much larger the new version's share of bad requests is than the live
/// version's. Manifests write `1%` (one percentage point more) or `2x` (twice the share).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Regression {
    /// The live share plus this fraction (0.01: one percentage point).
    Points(f64),
    /// The live share times this factor (more than 1).
    Times(f64),
}

impl Regression {
    /// Reads `1%`, `0.5%` (percentage points) or `2x`, `1.5×` (a factor).
    pub fn parse(text: &str) -> Result<Regression, String> {
        let text = text.trim();
        let number = |digits: &str| digits.trim().parse::<f64>().ok().filter(|number| number.is_finite());
        if let Some(points) = text.strip_suffix('%') {
            match number(points) {
                Some(points) if points > 0.0 && points < 100.0 => Ok(Regression::Points(points / 100.0)),
                _ => Err(format!("`{text}` is not a share between 0% and 100%, like 1%")),
            }
        } else if let Some(factor) = text.strip_suffix('x').or_else(|| text.strip_suffix('×')) {
            match number(factor) {
                Some(factor) if factor > 1.0 && factor <= 1000.0 => Ok(Regression::Times(factor)),
                _ => Err(format!("`{text}` is not a factor above 1, like 2x")),
            }
        } else {
            Err(format!("`{text}` is neither percentage points (like 1%) nor a factor (like 2x)"))
        }
    }

    /// The new version's share of bad requests that this regression means, over a live share of `live`. With no
    /// bad live request seen, a factor is applied to one bad request in `live_requests` (a share of 0 has no
    /// multiple).
    pub fn bad_share(self, live: f64, live_requests: u64) -> f64 {
        match self {
            Regression::Points(points) => (live + points).min(1.0),
            Regression::Times(factor) => {
                let live = if live > 0.0 { live } else { 1.0 / live_requests.max(1) as f64 };
                (live * factor).min(1.0)
            }
        }
    }
}

impl std::fmt::Display for Regression {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Regression::Points(points) => write!(formatter, "+{} point(s)", trim(points * 100.0)),
            Regression::Times(factor) => write!(formatter, "{}×", trim(*factor)),
        }
    }
}

fn trim(number: f64) -> String {
    let text = format!("{number:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// How many ratios the mixture holds, spread evenly in log scale over [`SMALLEST_RATIO`, `LARGEST_RATIO`].
pub const GRID: usize = 48;
/// The smallest ratio of bad shares (new / live) the mixture weighs.
pub const SMALLEST_RATIO: f64 = 1.25;
/// The largest.
pub const LARGEST_RATIO: f64 = 1000.0;

/// The ratios the mixture weighs, equally.
pub fn ratios() -> impl Iterator<Item = f64> {
    let (low, high) = (SMALLEST_RATIO.ln(), LARGEST_RATIO.ln());
    (0..GRID).map(move |index| (low + (high - low) * index as f64 / (GRID - 1) as f64).exp())
}

/// The log of the likelihood ratio of one look's bad requests, new version `ratio` times worse against not worse:
/// each bad request is the new version's with chance θr against θ0. 0 for a look without bad requests; 0 for a
/// look that could not have them (no requests to one side).
pub fn log_likelihood_ratio(ratio: f64, look: &Counts) -> f64 {
    let served = look.new_total + look.live_total;
    if served == 0 || look.new_bad + look.live_bad == 0 {
        return 0.0;
    }
    let null = look.new_total as f64 / served as f64;
    if null == 0.0 || null == 1.0 {
        return 0.0; // every bad request is the one version's, whatever the ratio: no evidence
    }
    let alternative = ratio * null / (ratio * null + 1.0 - null);
    look.new_bad as f64 * (alternative / null).ln() + look.live_bad as f64 * ((1.0 - alternative) / (1.0 - null)).ln()
}

/// The log of the mean of `exp(log_ratios)`, computed without overflow.
fn log_mean_exp(log_ratios: &[f64]) -> f64 {
    let largest = log_ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if largest == f64::NEG_INFINITY {
        return largest;
    }
    let sum: f64 = log_ratios.iter().map(|value| (value - largest).exp()).sum();
    largest + (sum / log_ratios.len() as f64).ln()
}

/// The log of the evidence that a single look of `counts` gives.
pub fn log_evidence_of(counts: &Counts) -> f64 {
    let log_ratios: Vec<f64> = ratios().map(|ratio| log_likelihood_ratio(ratio, counts)).collect();
    log_mean_exp(&log_ratios)
}

/// One counted check's test over a release: the evidence so far and the bound it must reach.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialTest {
    false_alarm: f64,
    log_likelihood_ratios: Vec<f64>,
    seen: Counts,
}

impl SequentialTest {
    /// A test that decides "worse" with at most `false_alarm` chance (in (0, 1)) when the new version is not worse.
    pub fn new(false_alarm: f64) -> SequentialTest {
        SequentialTest { false_alarm, log_likelihood_ratios: vec![0.0; GRID], seen: Counts::default() }
    }

    /// Adds a look's increments.
    pub fn observe(&mut self, look: &Counts) {
        for (log_ratio, ratio) in self.log_likelihood_ratios.iter_mut().zip(ratios()) {
            *log_ratio += log_likelihood_ratio(ratio, look);
        }
        self.seen = self.seen.plus(look);
    }

    /// The evidence against "not worse": 1 before any bad request, growing as the new version's share of them
    /// exceeds its share of the requests.
    pub fn evidence(&self) -> f64 {
        log_mean_exp(&self.log_likelihood_ratios).exp()
    }

    /// The evidence at which the new version is judged worse: 1 / false-alarm rate.
    pub fn bound(&self) -> f64 {
        1.0 / self.false_alarm
    }

    /// Whether the evidence has reached the bound.
    pub fn regressed(&self) -> bool {
        log_mean_exp(&self.log_likelihood_ratios) >= self.bound().ln()
    }

    /// Everything observed.
    pub fn seen(&self) -> Counts {
        self.seen
    }

    /// The false-alarm rate of this test.
    pub fn false_alarm(&self) -> f64 {
        self.false_alarm
    }
}

/// Whether counts like `counts` are enough to have caught a regression of `detect`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Power {
    /// A regression of exactly `detect`, seen over these requests, would on average have reached the bound.
    pub enough: bool,
    /// About how many requests to the new version that takes, at the live version's share of bad requests seen.
    pub new_requests_needed: u64,
}

/// Whether `counts` (requests and bad requests of both versions, e.g. over one stage) could show a regression of
/// `detect` at `false_alarm`: the evidence the expected bad requests of such a version would give (the new
/// version's bad requests replaced by `n_new × (live share + detect)`) reaches `1 / false_alarm`. A version that
/// bad is then caught about half the time within these requests, and it only gets likelier as requests accrue.
pub fn power(counts: &Counts, detect: Regression, false_alarm: f64) -> Power {
    let Some(live) = counts.live_share() else {
        return Power { enough: false, new_requests_needed: 0 };
    };
    let regressed = detect.bad_share(live, counts.live_total);
    let expected = |scale: f64| {
        let new_total = (counts.new_total as f64 * scale).round() as u64;
        let live_total = (counts.live_total as f64 * scale).round() as u64;
        let hypothetical = Counts {
            new_total,
            new_bad: (new_total as f64 * regressed).round() as u64,
            live_total,
            live_bad: (live_total as f64 * live).round() as u64,
        };
        log_evidence_of(&hypothetical)
    };
    let bound = (1.0 / false_alarm).ln();
    let enough = counts.new_total > 0 && expected(1.0) >= bound;
    // The evidence grows about linearly with the requests: double the scale until it is enough, then halve the gap.
    let needed = if counts.new_total == 0 {
        0
    } else {
        let (mut low, mut high) = (0.0_f64, 1.0_f64);
        while expected(high) < bound && high < 1e6 {
            (low, high) = (high, high * 2.0);
        }
        for _ in 0..30 {
            let middle = (low + high) / 2.0;
            if expected(middle) >= bound { high = middle } else { low = middle }
        }
        (counts.new_total as f64 * high).ceil() as u64
    };
    Power { enough, new_requests_needed: needed }
}

#[cfg(test)]
mod tests;
