//! The counted checks of a release as the runner keeps them between looks: one sequential test each, running over
//! the whole release, the counts of the current stage, and what the last look found.
//!
//! ```text
//!  every look: counters of both versions ──since the last look──▶ SequentialTest::observe ──regressed?──▶ roll back
//!                                                    └──────────▶ the stage's counts ──power──▶ may the stage end?
//!  every round: each counted check as a CheckResult (Pass, Fail, NoData before requests, Error after a failed look)
//! ```

use crate::CheckVerdict;
use crate::analysis::CheckResult;
use crate::release::{Analysis, MetricCheck, Threshold};
use crate::sequential::{self, Counts, Regression, SequentialTest};
use std::collections::BTreeMap;

/// What one look read for one counted check: its counters, or why it could not read them.
#[derive(Clone, Debug, PartialEq)]
pub struct CountedReading {
    /// The check's name.
    pub check: String,
    /// The PromQL of the new version's bad requests, for reports.
    pub query: String,
    /// Both versions' counters as read (cumulative), or the error.
    pub counts: Result<Counts, String>,
}

struct CountedCheck {
    /// The live version takes traffic in this stage: there is something to compare with.
    comparable: bool,
    name: String,
    detect: Regression,
    threshold: String,
    query: String,
    test: SequentialTest,
    last: Option<Counts>,
    stage: Counts,
    error: Option<String>,
}

/// Every counted check of a release.
pub struct CountedChecks {
    checks: Vec<CountedCheck>,
}

/// `6 of 80 (7.50%)`.
fn share(bad: u64, total: u64) -> String {
    if total == 0 {
        return format!("{bad} of 0");
    }
    format!("{bad} of {total} ({:.2}%)", bad as f64 * 100.0 / total as f64)
}

impl CountedChecks {
    /// The counted checks of `analysis`, each with a fresh test at its share of `analysis.falseAlarm`.
    pub fn of(analysis: &Analysis) -> CountedChecks {
        let false_alarm = analysis.false_alarm_per_check();
        let checks = analysis
            .counted_checks()
            .filter_map(|check: &MetricCheck| match check.threshold {
                Threshold::Sequential { detect } => Some(CountedCheck {
                    comparable: true,
                    name: check.name.clone(),
                    detect,
                    threshold: check.describe_threshold(),
                    query: String::new(),
                    test: SequentialTest::new(false_alarm),
                    last: None,
                    stage: Counts::default(),
                    error: None,
                }),
                _ => None,
            })
            .collect();
        CountedChecks { checks }
    }

    /// Carries on the tests of a run of this release that was interrupted (the run record's): each check takes the
    /// saved test of its name when it has the same false-alarm rate. The evidence goes on; the looks start afresh.
    pub fn resume(&mut self, saved: &BTreeMap<String, SequentialTest>) {
        for check in &mut self.checks {
            if let Some(test) = saved.get(&check.name)
                && test.false_alarm() == check.test.false_alarm()
            {
                check.test = test.clone();
            }
        }
    }

    /// Each check's test, by name, for the run record.
    pub fn tests(&self) -> BTreeMap<String, SequentialTest> {
        self.checks.iter().map(|check| (check.name.clone(), check.test.clone())).collect()
    }

    /// Whether the release has no counted check.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// A new stage at `weight` percent: its counts start at zero from a fresh baseline (no look spans two
    /// weights); the tests go on. At 100% the live version takes no traffic and the checks have nothing to compare.
    pub fn start_stage(&mut self, weight: u8) {
        for check in &mut self.checks {
            check.stage = Counts::default();
            check.last = None;
            check.error = None;
            check.comparable = weight < 100;
        }
    }

    /// Adds a look's readings (matched by check name). Returns why the new version is worse, when a test's
    /// evidence reached its bound.
    pub fn look(&mut self, readings: Vec<CountedReading>) -> Option<String> {
        for reading in readings {
            let Some(check) = self.checks.iter_mut().find(|check| check.name == reading.check) else {
                continue;
            };
            check.query = reading.query;
            match reading.counts {
                Err(error) => check.error = Some(error),
                Ok(counts) => {
                    check.error = None;
                    let Some(last) = check.last else {
                        check.last = Some(counts);
                        continue;
                    };
                    match counts.since(&last) {
                        // Counters scraped at different moments: wait until both versions' requests have moved, so
                        // that the look compares the same stretch of time (which only the request totals decide).
                        Some(increment) if increment.new_total == 0 || increment.live_total == 0 => {}
                        Some(increment) => {
                            if check.comparable {
                                check.test.observe(&increment);
                            }
                            check.stage = check.stage.plus(&increment);
                            check.last = Some(counts);
                        }
                        // A counter went down: carry on from the highest values seen, so nothing counts twice.
                        None => check.last = Some(last.high_water(&counts)),
                    }
                }
            }
        }
        let regressed: Vec<String> = self
            .checks
            .iter()
            .filter(|check| check.test.regressed())
            .map(|check| {
                let seen = check.test.seen();
                format!(
                    "{}: the new version's bad requests {} against the live version's {}; evidence {:.0} reached {:.0} (1 / the check's share of analysis.falseAlarm)",
                    check.name,
                    share(seen.new_bad, seen.new_total),
                    share(seen.live_bad, seen.live_total),
                    check.test.evidence(),
                    check.test.bound()
                )
            })
            .collect();
        (!regressed.is_empty()).then(|| regressed.join("; "))
    }

    /// Each counted check as a round reports it, evaluated `at`.
    pub fn results(&self, at: jiff::Timestamp) -> Vec<CheckResult> {
        self.checks
            .iter()
            .map(|check| {
                let power = sequential::power(&check.stage, check.detect, check.test.false_alarm());
                let (verdict, detail) = if let Some(error) = &check.error {
                    (CheckVerdict::Error, error.clone())
                } else if check.test.regressed() {
                    (CheckVerdict::Fail, format!("evidence {:.0} ≥ {:.0}", check.test.evidence(), check.test.bound()))
                } else if !check.comparable {
                    (CheckVerdict::Pass, "nothing to compare with: the live version takes no traffic".to_owned())
                } else if check.stage.new_total == 0 {
                    (CheckVerdict::NoData, "no request to the new version counted yet in this stage".to_owned())
                } else {
                    let requests = if power.enough {
                        format!("enough requests this stage to catch {}", check.detect)
                    } else {
                        format!(
                            "{} of about {} requests this stage needed to catch {}",
                            check.stage.new_total, power.new_requests_needed, check.detect
                        )
                    };
                    (
                        CheckVerdict::Pass,
                        format!(
                            "evidence {:.1} of {:.0}; bad {} vs {}; {requests}",
                            check.test.evidence(),
                            check.test.bound(),
                            share(check.stage.new_bad, check.stage.new_total),
                            share(check.stage.live_bad, check.stage.live_total)
                        ),
                    )
                };
                CheckResult {
                    name: check.name.clone(),
                    verdict,
                    value: check.stage.new_share().map(|share| share * 100.0),
                    previous_value: check.stage.live_share().map(|share| share * 100.0),
                    unit: "%".to_owned(),
                    threshold: check.threshold.clone(),
                    detail,
                    query: check.query.clone(),
                    evaluated_at: at,
                }
            })
            .collect()
    }

    /// The checks whose stage has not yet seen the requests needed to catch their regression, each with a reason.
    /// A stage at 100% has nothing to compare with and needs none.
    pub fn short_of_requests(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|check| check.comparable)
            .filter_map(|check| {
                let power = sequential::power(&check.stage, check.detect, check.test.false_alarm());
                (!power.enough).then(|| {
                    format!(
                        "{}: {} request(s) to the new version this stage, about {} needed to catch {}",
                        check.name, check.stage.new_total, power.new_requests_needed, check.detect
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Duration;
    use crate::release::{BuiltinMetric, MetricSource, NoDataPolicy};

    fn analysis() -> Analysis {
        Analysis {
            interval: Duration::from_secs(10),
            failure_limit: 1,
            min_requests: 20,
            no_data: NoDataPolicy::Hold,
            max_hold: Duration::from_secs(600),
            query_error_limit: 3,
            metrics: vec![MetricCheck {
                name: "errors".into(),
                source: MetricSource::Builtin(BuiltinMetric::SuccessRate),
                window: Duration::from_secs(10),
                threshold: Threshold::Sequential { detect: Regression::Points(0.01) },
            }],
            data_plane: None,
            false_alarm: 0.01,
        }
    }

    fn reading(counts: Counts) -> Vec<CountedReading> {
        vec![CountedReading { check: "errors".into(), query: "q".into(), counts: Ok(counts) }]
    }

    #[test]
    fn a_version_failing_five_percent_is_caught_within_a_few_failures() {
        let mut checks = CountedChecks::of(&analysis());
        checks.start_stage(5);
        let mut counters = Counts { new_total: 0, new_bad: 0, live_total: 50_000, live_bad: 50 };
        assert_eq!(checks.look(reading(counters)), None, "the first look only reads the counters");
        let mut caught = None;
        for second in 1..=60_u64 {
            counters.new_total += 5;
            counters.live_total += 95;
            counters.new_bad += u64::from(second % 4 == 0); // one failure in 20 requests
            counters.live_bad += u64::from(second % 10 == 0);
            if let Some(detail) = checks.look(reading(counters)) {
                caught = Some((second, detail));
                break;
            }
        }
        let (second, detail) = caught.expect("caught");
        assert_eq!(second, 8, "two failures of the new version's 40 requests, none of the live one's 760: {detail}");
        assert!(
            detail.starts_with(
                "errors: the new version's bad requests 2 of 40 (5.00%) against the live version's 0 of 760"
            ),
            "{detail}"
        );
        assert_eq!(checks.results(jiff::Timestamp::UNIX_EPOCH)[0].verdict, CheckVerdict::Fail);
    }

    /// The second at which `checks` find the new version worse, fed the counters of a version failing 5% beside a
    /// live one failing none, from `from` seconds on (a fresh baseline first).
    fn second_caught(checks: &mut CountedChecks, from: u64) -> Option<u64> {
        checks.start_stage(5);
        let counters =
            |second: u64| Counts { new_total: 5 * second, new_bad: second / 4, live_total: 95 * second, live_bad: 0 };
        checks.look(reading(counters(from)));
        (from + 1..=from + 60).find(|second| checks.look(reading(counters(*second))).is_some())
    }

    #[test]
    fn a_resumed_release_carries_the_evidence_on_and_only_to_a_test_of_the_same_rate() {
        let mut interrupted = CountedChecks::of(&analysis());
        interrupted.start_stage(5);
        let before = Counts { new_total: 0, new_bad: 0, live_total: 0, live_bad: 0 };
        interrupted.look(reading(before));
        // One failure in 25 requests: not yet enough.
        assert_eq!(interrupted.look(reading(Counts { new_total: 25, new_bad: 1, live_total: 475, live_bad: 0 })), None);
        let saved: BTreeMap<String, SequentialTest> =
            serde_json::from_str(&serde_json::to_string(&interrupted.tests()).unwrap()).unwrap();
        assert!(saved["errors"].evidence() > 1.0, "{saved:?}");

        let mut resumed = CountedChecks::of(&analysis());
        resumed.resume(&saved);
        assert_eq!(resumed.tests(), saved, "the run record's tests, as they were");
        let mut fresh = CountedChecks::of(&analysis());
        let (resumed_at, fresh_at) = (second_caught(&mut resumed, 100), second_caught(&mut fresh, 100));
        assert!(
            resumed_at.unwrap() < fresh_at.unwrap(),
            "sooner with the evidence carried: {resumed_at:?} {fresh_at:?}"
        );

        let mut stricter = analysis();
        stricter.false_alarm = 0.001;
        let mut other = CountedChecks::of(&stricter);
        other.resume(&saved);
        assert_eq!(other.tests()["errors"], SequentialTest::new(0.001), "a test of another rate starts afresh");
    }

    #[test]
    fn a_stage_needs_enough_requests_and_a_failed_look_is_an_error() {
        let mut checks = CountedChecks::of(&analysis());
        checks.start_stage(5);
        let mut counters = Counts::default();
        checks.look(reading(counters));
        assert_eq!(checks.results(jiff::Timestamp::UNIX_EPOCH)[0].verdict, CheckVerdict::NoData);
        counters = Counts { new_total: 100, new_bad: 0, live_total: 1_900, live_bad: 2 };
        checks.look(reading(counters));
        let short = checks.short_of_requests();
        assert_eq!(short.len(), 1, "{short:?}");
        assert!(short[0].starts_with("errors: 100 request(s) to the new version this stage, about "), "{short:?}");
        counters = Counts { new_total: 1_000, new_bad: 1, live_total: 19_000, live_bad: 19 };
        checks.look(reading(counters));
        assert_eq!(checks.short_of_requests(), Vec::<String>::new());
        let result = &checks.results(jiff::Timestamp::UNIX_EPOCH)[0];
        assert_eq!((result.verdict, result.value, result.previous_value), (CheckVerdict::Pass, Some(0.1), Some(0.1)));

        let failed = vec![CountedReading { check: "errors".into(), query: "q".into(), counts: Err("down".into()) }];
        checks.look(failed);
        assert_eq!(checks.results(jiff::Timestamp::UNIX_EPOCH)[0].verdict, CheckVerdict::Error);
        checks.start_stage(50);
        assert_eq!(checks.short_of_requests().len(), 1, "a new stage counts again");
        checks.start_stage(100);
        assert_eq!(checks.short_of_requests(), Vec::<String>::new(), "at 100% there is nothing to compare with");
        assert_eq!(checks.results(jiff::Timestamp::UNIX_EPOCH)[0].verdict, CheckVerdict::Pass);
    }

    #[test]
    fn looks_wait_for_both_versions_and_never_count_a_request_twice() {
        let mut checks = CountedChecks::of(&analysis());
        checks.start_stage(10);
        let start = Counts { new_total: 100, new_bad: 0, live_total: 900, live_bad: 0 };
        checks.look(reading(start));
        // Only the new version's pods were scraped since: the look waits (its failures would all look like the new
        // version's otherwise).
        checks.look(reading(Counts { new_total: 110, new_bad: 3, ..start }));
        assert_eq!(checks.results(jiff::Timestamp::UNIX_EPOCH)[0].value, None, "nothing counted yet");
        let both = Counts { new_total: 110, new_bad: 3, live_total: 990, live_bad: 1 };
        checks.look(reading(both));
        let result = &checks.results(jiff::Timestamp::UNIX_EPOCH)[0];
        assert_eq!((result.value, result.previous_value), (Some(30.0), Some(100.0 / 90.0)), "{result:?}");
        // A live series vanished for a scrape, then came back: its requests are not counted again.
        checks.look(reading(Counts { live_total: 500, live_bad: 0, ..both }));
        checks.look(reading(Counts { new_total: 120, live_total: 1_080, ..both }));
        let result = &checks.results(jiff::Timestamp::UNIX_EPOCH)[0];
        assert_eq!(result.value, Some(3.0 * 100.0 / 20.0), "20 requests of the new version, 3 failed: {result:?}");
        assert_eq!(result.previous_value, Some(100.0 / 180.0), "180 of the live version's, 1 failed: {result:?}");
    }
}
