//! Judging metric checks and check rounds, with no I/O: the numbers come from an adapter (fledge-metrics reads
//! Prometheus), the decisions are made here.
//!
//! ```text
//!  value(s) ──judge_absolute / judge_relative / statistics::judge──▶ CheckVerdict ─┐
//!                                                                                  ├─▶ RoundVerdict ──▶ StageTally
//!  every check of one round ───────────────────────────────────────────────────────┘     Continue │ Hold │ RollBack
//! ```
//!
//! The rules that matter most: an error is never a pass; a failure outranks an error, an error outranks missing
//! data; the `noData` policy decides what missing data does; query errors abort only after `queryErrorLimit`
//! consecutive rounds, failures after more than `failureLimit` rounds in a stage.

use crate::release::{Direction, NoDataPolicy};
use crate::statistics::Comparison;
use crate::{CheckVerdict, Percentage};
use serde::{Deserialize, Serialize};

/// The result of one check in one round, with everything needed to explain it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// The verdict, before the `noData` policy is applied.
    pub verdict: CheckVerdict,
    /// The new version's value, when there was one.
    pub value: Option<f64>,
    /// The previous version's value, for compared checks.
    pub previous_value: Option<f64>,
    /// The unit of the values (`%`, `ms`), empty for custom queries.
    pub unit: String,
    /// The threshold, as a reader would write it: `>= 99`, `<= +20% of previous`, `Mann-Whitney 98%, ±10%`.
    pub threshold: String,
    /// Why the verdict is what it is, when the numbers alone do not say: the request count behind a NoData, the
    /// series behind an Error, Prometheus' message, the judge's p-value.
    pub detail: String,
    /// The PromQL sent for the new version, exactly.
    pub query: String,
    /// When the check was evaluated.
    pub evaluated_at: jiff::Timestamp,
}

/// One round of every check of a release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Round {
    /// Every check, in manifest order.
    pub checks: Vec<CheckResult>,
    /// What the round amounts to under the manifest's `noData` policy.
    pub verdict: RoundVerdict,
}

/// Judges a value against absolute bounds.
pub fn judge_absolute(value: f64, min: Option<f64>, max: Option<f64>) -> CheckVerdict {
    let too_low = min.is_some_and(|min| value < min);
    let too_high = max.is_some_and(|max| value > max);
    if too_low || too_high { CheckVerdict::Fail } else { CheckVerdict::Pass }
}

/// The change of `value` relative to `previous`: 0.25 is 25% higher. A change from 0 is infinite (any increase
/// over an error-free previous version is unbounded); no change is 0.
pub fn relative_change(value: f64, previous: f64) -> f64 {
    if value == previous {
        0.0
    } else if previous == 0.0 {
        f64::INFINITY.copysign(value - previous)
    } else {
        (value - previous) / previous.abs()
    }
}

/// Judges a value against the previous version's.
pub fn judge_relative(
    value: f64,
    previous: f64,
    max_increase: Option<Percentage>,
    max_decrease: Option<Percentage>,
) -> CheckVerdict {
    let change = relative_change(value, previous);
    let rose_too_much = max_increase.is_some_and(|limit| change > limit.fraction());
    let fell_too_much = max_decrease.is_some_and(|limit| -change > limit.fraction());
    if rose_too_much || fell_too_much { CheckVerdict::Fail } else { CheckVerdict::Pass }
}

/// The verdict of a statistical comparison, for a check that fails on `fail_on`.
pub fn judge_comparison(comparison: Comparison, fail_on: Direction) -> CheckVerdict {
    match (comparison, fail_on) {
        (Comparison::NoData, _) => CheckVerdict::NoData,
        (Comparison::Pass, _) => CheckVerdict::Pass,
        (Comparison::High, Direction::Increase | Direction::Either)
        | (Comparison::Low, Direction::Decrease | Direction::Either) => CheckVerdict::Fail,
        (Comparison::High, Direction::Decrease) | (Comparison::Low, Direction::Increase) => CheckVerdict::Pass,
    }
}

/// What one round of checks amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoundVerdict {
    /// Every check passed (or had no data under `noData: pass`).
    Passed,
    /// A check failed (or had no data under `noData: fail`).
    Failed,
    /// A check had no data under `noData: hold`, and none failed or errored: wait for data.
    NoData,
    /// A query could not be answered, and no check failed.
    Errored,
}

impl RoundVerdict {
    /// Combines the verdicts of one round's checks. A failure outranks an error, an error outranks missing data.
    pub fn of(verdicts: impl IntoIterator<Item = CheckVerdict>, policy: NoDataPolicy) -> RoundVerdict {
        let (mut failed, mut errored, mut no_data) = (false, false, false);
        for verdict in verdicts {
            match verdict {
                CheckVerdict::Pass => {}
                CheckVerdict::Fail => failed = true,
                CheckVerdict::Error => errored = true,
                CheckVerdict::NoData => no_data = true,
            }
        }
        match (failed, errored, no_data, policy) {
            (true, _, _, _) | (false, false, true, NoDataPolicy::Fail) => RoundVerdict::Failed,
            (false, true, _, _) => RoundVerdict::Errored,
            (false, false, true, NoDataPolicy::Hold) => RoundVerdict::NoData,
            (false, false, true, NoDataPolicy::Pass) | (false, false, false, _) => RoundVerdict::Passed,
        }
    }
}

/// What to do after a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TallyDecision {
    /// The round counts towards the stage's duration.
    Continue,
    /// The round does not count: the stage clock stops (no data yet, or a query error below the limit).
    Hold,
    /// Roll the release back.
    RollBack(AnalysisAbort),
}

/// Why the analysis of a stage gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum AnalysisAbort {
    /// More rounds failed than `failureLimit` allows.
    FailureLimit {
        /// Failed rounds in the stage.
        failed_rounds: u32,
    },
    /// `queryErrorLimit` rounds in a row had a query error.
    QueryErrorLimit {
        /// Consecutive rounds with an error.
        consecutive_errors: u32,
    },
    /// A counted check's sequential test found the new version worse.
    Regression,
}

impl std::fmt::Display for AnalysisAbort {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalysisAbort::FailureLimit { failed_rounds } => {
                write!(formatter, "{failed_rounds} check round(s) failed, more than analysis.failureLimit allows")
            }
            AnalysisAbort::QueryErrorLimit { consecutive_errors } => write!(
                formatter,
                "{consecutive_errors} check round(s) in a row could not query Prometheus (analysis.queryErrorLimit)"
            ),
            AnalysisAbort::Regression => {
                write!(formatter, "a counted check's sequential test found the new version worse")
            }
        }
    }
}

/// The count of one stage's rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageTally {
    failure_limit: u32,
    query_error_limit: u32,
    /// Rounds that passed.
    pub passed_rounds: u32,
    /// Rounds that failed.
    pub failed_rounds: u32,
    /// Rounds in a row, up to now, with a query error.
    pub consecutive_errors: u32,
    /// Rounds without data (under `noData: hold`).
    pub held_rounds: u32,
}

impl StageTally {
    /// A tally for a new stage.
    pub fn new(failure_limit: u32, query_error_limit: u32) -> StageTally {
        StageTally {
            failure_limit,
            query_error_limit,
            passed_rounds: 0,
            failed_rounds: 0,
            consecutive_errors: 0,
            held_rounds: 0,
        }
    }

    /// Records a round and says what to do next.
    pub fn record(&mut self, round: RoundVerdict) -> TallyDecision {
        if round != RoundVerdict::Errored {
            self.consecutive_errors = 0;
        }
        match round {
            RoundVerdict::Passed => {
                self.passed_rounds += 1;
                TallyDecision::Continue
            }
            RoundVerdict::Failed => {
                self.failed_rounds += 1;
                if self.failed_rounds > self.failure_limit {
                    TallyDecision::RollBack(AnalysisAbort::FailureLimit { failed_rounds: self.failed_rounds })
                } else {
                    TallyDecision::Continue
                }
            }
            RoundVerdict::NoData => {
                self.held_rounds += 1;
                TallyDecision::Hold
            }
            RoundVerdict::Errored => {
                self.consecutive_errors += 1;
                if self.consecutive_errors >= self.query_error_limit {
                    TallyDecision::RollBack(AnalysisAbort::QueryErrorLimit {
                        consecutive_errors: self.consecutive_errors,
                    })
                } else {
                    TallyDecision::Hold
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckVerdict::{Error, Fail, NoData, Pass};

    fn percent(text: &str) -> Option<Percentage> {
        Some(Percentage::parse(text).unwrap())
    }

    #[test]
    fn absolute_bounds_are_inclusive() {
        assert_eq!(judge_absolute(99.0, Some(99.0), None), Pass);
        assert_eq!(judge_absolute(98.9, Some(99.0), None), Fail);
        assert_eq!(judge_absolute(500.0, None, Some(500.0)), Pass);
        assert_eq!(judge_absolute(500.1, None, Some(500.0)), Fail);
    }

    #[test]
    fn relative_checks_compare_with_the_previous_version() {
        assert_eq!(judge_relative(240.0, 200.0, percent("20%"), None), Pass);
        assert_eq!(judge_relative(400.0, 200.0, percent("50%"), None), Fail, "a doubled latency");
        assert_eq!(judge_relative(90.0, 100.0, None, percent("5%")), Fail);
        assert_eq!(judge_relative(90.0, 100.0, percent("5%"), None), Pass, "a decrease is not an increase");
        assert_eq!(judge_relative(0.0, 0.0, percent("10%"), None), Pass);
        assert_eq!(judge_relative(1.0, 0.0, percent("1000%"), None), Fail, "any rise from zero is unbounded");
    }

    #[test]
    fn comparisons_fail_only_in_the_worse_direction() {
        assert_eq!(judge_comparison(Comparison::High, Direction::Increase), Fail);
        assert_eq!(judge_comparison(Comparison::High, Direction::Decrease), Pass);
        assert_eq!(judge_comparison(Comparison::Low, Direction::Either), Fail);
        assert_eq!(judge_comparison(Comparison::NoData, Direction::Either), NoData);
    }

    #[test]
    fn errors_never_pass_and_failures_outrank_them() {
        for policy in [NoDataPolicy::Hold, NoDataPolicy::Fail, NoDataPolicy::Pass] {
            assert_eq!(RoundVerdict::of([Pass, Error], policy), RoundVerdict::Errored, "{policy:?}");
            assert_eq!(RoundVerdict::of([Error, NoData], policy), RoundVerdict::Errored, "{policy:?}");
            assert_eq!(RoundVerdict::of([Error, Fail], policy), RoundVerdict::Failed, "{policy:?}");
            assert_eq!(RoundVerdict::of([Pass, Pass], policy), RoundVerdict::Passed, "{policy:?}");
        }
    }

    #[test]
    fn the_no_data_policy_decides_what_missing_data_does() {
        assert_eq!(RoundVerdict::of([Pass, NoData], NoDataPolicy::Hold), RoundVerdict::NoData);
        assert_eq!(RoundVerdict::of([Pass, NoData], NoDataPolicy::Fail), RoundVerdict::Failed);
        assert_eq!(RoundVerdict::of([Pass, NoData], NoDataPolicy::Pass), RoundVerdict::Passed);
    }

    #[test]
    fn the_tally_honours_both_limits() {
        let mut tally = StageTally::new(1, 3);
        assert_eq!(tally.record(RoundVerdict::Failed), TallyDecision::Continue, "one failure is tolerated");
        assert_eq!(
            tally.record(RoundVerdict::Failed),
            TallyDecision::RollBack(AnalysisAbort::FailureLimit { failed_rounds: 2 })
        );

        let mut tally = StageTally::new(1, 3);
        assert_eq!(tally.record(RoundVerdict::Errored), TallyDecision::Hold);
        assert_eq!(tally.record(RoundVerdict::Errored), TallyDecision::Hold);
        assert_eq!(tally.record(RoundVerdict::Passed), TallyDecision::Continue, "a good round resets the count");
        assert_eq!(tally.record(RoundVerdict::Errored), TallyDecision::Hold);
        assert_eq!(tally.record(RoundVerdict::Errored), TallyDecision::Hold);
        assert_eq!(
            tally.record(RoundVerdict::Errored),
            TallyDecision::RollBack(AnalysisAbort::QueryErrorLimit { consecutive_errors: 3 })
        );
        assert_eq!(tally.record(RoundVerdict::NoData), TallyDecision::Hold);
        assert_eq!((tally.passed_rounds, tally.held_rounds), (1, 1));
    }
}
