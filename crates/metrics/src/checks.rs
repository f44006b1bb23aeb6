//! One round of metric checks: every check queried now, each yielding Pass, Fail, NoData or Error with the numbers
//! behind it. The judging is fledge-core's; this module asks Prometheus and explains the answers.
//!
//! ```text
//!  check ──▶ requests to the new version in the window < minRequests ? ──yes──▶ NoData
//!              │ no
//!              ▼
//!           absolute:    value of the new version ─────────────────────▶ judge_absolute
//!           relative:    value of the new and of the previous version ─▶ judge_relative
//!           statistical: samples of both over the stage (range query) ─▶ statistics::judge
//!
//!  empty answer, NaN ▶ NoData        several series ▶ Error naming them        no answer ▶ Error (never Pass)
//! ```

use crate::prometheus::{Answer, PrometheusClient, QueryError};
use crate::queries::{self, Counters, Workload};
use fledge_core::analysis::{self, CheckResult, Round, RoundVerdict};
use fledge_core::counted_checks::CountedReading;
use fledge_core::release::{Analysis, DataPlane, MetricCheck, MetricSource, Release, Threshold};
use fledge_core::sequential::Counts;
use fledge_core::statistics;
use fledge_core::{CheckVerdict, Duration};
use tokio::time::Instant;

/// The versions a release's checks compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisTarget {
    /// The new version's workload.
    pub canary: Workload,
    /// The live version's workload, when known (needed by compared checks and `{{previousVersion}}`).
    pub previous: Option<Workload>,
}

impl AnalysisTarget {
    /// The target of a release; the previous version is the manifest's `previousVersion` unless one is given.
    /// Requests are counted as `data_plane`'s proxies report them.
    pub fn for_release(release: &Release, previous_version: Option<&str>, data_plane: DataPlane) -> AnalysisTarget {
        let service = &release.service;
        let previous = previous_version.or(service.previous_version.as_deref());
        let workload = |version: &str| Workload::of(&service.namespace, &service.name, version).reported_by(data_plane);
        AnalysisTarget { canary: workload(&service.version), previous: previous.map(workload) }
    }
}

/// Evaluates a release's metric checks against Prometheus.
#[derive(Clone, Debug)]
pub struct Analyzer {
    prometheus: PrometheusClient,
    analysis: Analysis,
    target: AnalysisTarget,
}

/// What one query for one version gave.
enum Measured {
    Value(f64),
    NoData(String),
}

/// The outcome of one check before it is written up.
struct Evaluation {
    verdict: CheckVerdict,
    value: Option<f64>,
    previous_value: Option<f64>,
    detail: String,
}

impl Evaluation {
    fn no_data(detail: String) -> Evaluation {
        Evaluation { verdict: CheckVerdict::NoData, value: None, previous_value: None, detail }
    }

    /// A check that could not be evaluated; the report shows the error with its causes beside it.
    fn error(error: &(dyn std::error::Error + 'static)) -> Evaluation {
        let detail = fledge_core::error_chain(error);
        Evaluation { verdict: CheckVerdict::Error, value: None, previous_value: None, detail }
    }
}

fn no_previous_version() -> Evaluation {
    Evaluation {
        verdict: CheckVerdict::Error,
        value: None,
        previous_value: None,
        detail: "no previous version is known to compare with: set service.previousVersion".to_owned(),
    }
}

/// The value of counter `part` in a combined answer: `None` without a series (nothing counted yet), an error for
/// anything but one finite, non-negative number.
fn counter_value(answer: &[(String, f64)], part: &str, query: &str) -> Result<Option<u64>, String> {
    let values: Vec<f64> = answer.iter().filter(|(name, _)| name == part).map(|(_, value)| *value).collect();
    match values.as_slice() {
        [] => Ok(None),
        [value] if value.is_finite() && *value >= 0.0 => Ok(Some(value.round() as u64)),
        [value] => Err(format!("the counter {part} is {value}, not a count: {query}")),
        several => Err(format!("the counter {part} has {} series, not one: {query}", several.len())),
    }
}

/// `+12.3%`, `-4.0%`, `+inf%`.
fn signed_percent(fraction: f64) -> String {
    format!("{:+.1}%", fraction * 100.0)
}

impl Analyzer {
    /// An analyzer of `analysis` for `target`.
    pub fn new(prometheus: PrometheusClient, analysis: Analysis, target: AnalysisTarget) -> Analyzer {
        Analyzer { prometheus, analysis, target }
    }

    /// The Prometheus client.
    pub fn prometheus(&self) -> &PrometheusClient {
        &self.prometheus
    }

    /// The target.
    pub fn target(&self) -> &AnalysisTarget {
        &self.target
    }

    /// The checks.
    pub fn checks(&self) -> &[MetricCheck] {
        &self.analysis.metrics
    }

    /// The PromQL of `check` for `workload` (a counted check's: the bad requests' counter).
    pub fn query(&self, check: &MetricCheck, workload: &Workload) -> Result<String, queries::CustomQueryError> {
        let previous = self.target.previous.as_ref().map(|previous| previous.version.as_str());
        if check.is_counted()
            && let Some(counters) = queries::counters(&check.source, workload, previous)
        {
            return counters.map(|counters| counters.describe());
        }
        match &check.source {
            MetricSource::SlowRequests { .. } | MetricSource::Counted { .. } => {
                unreachable!("the manifest makes every slow-requests and bad/total check counted")
            }
            MetricSource::Builtin(builtin) => Ok(queries::builtin(*builtin, workload, check.window)),
            MetricSource::Query(template) => queries::custom(
                template,
                workload,
                self.target.previous.as_ref().map(|previous| previous.version.as_str()),
                check.window,
            ),
        }
    }

    /// Runs every check judged in rounds now (counted checks are read by [`Analyzer::counts`]). Statistical checks
    /// compare samples since `judge_since` (the stage's start). Queries are retried until `deadline`; what has no
    /// answer by then is an Error.
    pub async fn round(&self, judge_since: jiff::Timestamp, deadline: Instant) -> Round {
        let checks = futures::future::join_all(
            self.analysis.round_checks().map(|check| self.evaluate(check, judge_since, deadline)),
        )
        .await;
        let verdict = RoundVerdict::of(checks.iter().map(|check| check.verdict), self.analysis.no_data);
        Round { checks, verdict }
    }

    /// Reads every counted check's counters for both versions as Prometheus has them now.
    pub async fn counts(&self, deadline: Instant) -> Vec<CountedReading> {
        self.counts_at(jiff::Timestamp::now(), deadline).await
    }

    /// Reads every counted check's counters for both versions as Prometheus had them at `at` (to the second).
    pub async fn counts_at(&self, at: jiff::Timestamp, deadline: Instant) -> Vec<CountedReading> {
        futures::future::join_all(self.analysis.counted_checks().map(|check| async move {
            let query = self.query(check, &self.target.canary).unwrap_or_default();
            let counts = self.read_counts(check, at, deadline).await;
            CountedReading { check: check.name.clone(), query, counts }
        }))
        .await
    }

    /// Both versions' counters of `check`, read in one PromQL expression (each part labelled `fledge_counter`), so
    /// that no part comes from a later scrape than another.
    async fn read_counts(&self, check: &MetricCheck, at: jiff::Timestamp, deadline: Instant) -> Result<Counts, String> {
        let previous = self.target.previous.as_ref().ok_or_else(|| no_previous_version().detail)?;
        let previous_version = Some(previous.version.as_str());
        let counters = |workload: &Workload| {
            queries::counters(&check.source, workload, previous_version)
                .expect("a counted check has counters")
                .map_err(|error| fledge_core::error_chain(&error))
        };
        let (new, live) = (counters(&self.target.canary)?, counters(previous)?);
        let query = queries::counters_together(&[("new", &new), ("live", &live)]);
        let answered = self
            .prometheus
            .instant_by_label(&query, queries::COUNTER_LABEL, at, deadline)
            .await
            .map_err(|error| fledge_core::error_chain(&error))?;
        let value = |part: &str| counter_value(&answered.answer, part, &query);
        let version = |side: &str, counters: &Counters, workload: &Workload| -> Result<(u64, u64), String> {
            match counters {
                Counters::BadAndTotal { .. } => {
                    Ok((value(&format!("{side}_total"))?.unwrap_or(0), value(&format!("{side}_bad"))?.unwrap_or(0)))
                }
                Counters::AllAndFast { fast, .. } => {
                    match (value(&format!("{side}_all"))?, value(&format!("{side}_fast"))?) {
                        (Some(all), None) if all > 0 => Err(format!(
                            "Prometheus has {all} request(s) of {} but no histogram bucket at slowerThan: {fast} returned nothing",
                            workload.deployment
                        )),
                        (all, fast) => {
                            let all = all.unwrap_or(0);
                            Ok((all, all.saturating_sub(fast.unwrap_or(0))))
                        }
                    }
                }
            }
        };
        let (new_total, new_bad) = version("new", &new, &self.target.canary)?;
        let (live_total, live_bad) = version("live", &live, previous)?;
        Ok(Counts { new_total, new_bad, live_total, live_bad })
    }

    async fn evaluate(&self, check: &MetricCheck, judge_since: jiff::Timestamp, deadline: Instant) -> CheckResult {
        let query = self.query(check, &self.target.canary);
        let evaluation = match &query {
            Err(error) => Evaluation::error(error),
            Ok(query) => match &check.threshold {
                Threshold::Absolute { min, max } => {
                    match self.measure(query, &self.target.canary, check.window, deadline).await {
                        Err(error) => Evaluation::error(&error),
                        Ok(Measured::NoData(detail)) => Evaluation::no_data(detail),
                        Ok(Measured::Value(value)) => Evaluation {
                            verdict: analysis::judge_absolute(value, *min, *max),
                            value: Some(value),
                            previous_value: None,
                            detail: String::new(),
                        },
                    }
                }
                Threshold::RelativeToPrevious { max_increase, max_decrease } => {
                    self.relative(check, query, deadline, |value, previous| {
                        analysis::judge_relative(value, previous, *max_increase, *max_decrease)
                    })
                    .await
                }
                Threshold::Statistical { confidence, tolerance, fail_on } => {
                    self.statistical(check, query, judge_since, deadline, *confidence, tolerance.fraction(), *fail_on)
                        .await
                }
                Threshold::Sequential { .. } => Evaluation {
                    verdict: CheckVerdict::Error,
                    value: None,
                    previous_value: None,
                    detail: "a counted check is judged at every look, not in rounds".to_owned(),
                },
            },
        };
        CheckResult {
            name: check.name.clone(),
            verdict: evaluation.verdict,
            value: evaluation.value,
            previous_value: evaluation.previous_value,
            unit: check.unit().to_owned(),
            threshold: check.describe_threshold(),
            detail: evaluation.detail,
            query: query.unwrap_or_default(),
            evaluated_at: jiff::Timestamp::now(),
        }
    }

    /// Requests to `workload` over `window`, when `minRequests` asks for a count.
    async fn enough_requests(
        &self,
        workload: &Workload,
        window: Duration,
        deadline: Instant,
    ) -> Result<Option<String>, QueryError> {
        let minimum = self.analysis.min_requests;
        if minimum == 0 {
            return Ok(None);
        }
        let answered = self.prometheus.instant(&queries::request_count(workload, window), deadline).await?;
        let count = match answered.answer {
            Answer::One(count) if count.is_finite() => count,
            _ => 0.0,
        };
        Ok((count < minimum as f64).then(|| {
            format!(
                "{} request(s) to {} in the last {window}, fewer than analysis.minRequests ({minimum})",
                count.round(),
                workload.deployment
            )
        }))
    }

    /// The value of `query` for `workload`, or why there is none.
    async fn measure(
        &self,
        query: &str,
        workload: &Workload,
        window: Duration,
        deadline: Instant,
    ) -> Result<Measured, QueryError> {
        if let Some(too_few) = self.enough_requests(workload, window, deadline).await? {
            return Ok(Measured::NoData(too_few));
        }
        let answered = self.prometheus.instant(query, deadline).await?;
        match answered.answer {
            Answer::Empty => Ok(Measured::NoData(format!("the query returned no series for {}", workload.deployment))),
            Answer::One(value) if value.is_nan() => {
                Ok(Measured::NoData(format!("the query returned NaN for {} (nothing to divide?)", workload.deployment)))
            }
            // An infinity is no measurement (a division by zero): it must not meet a threshold like `min: 99`.
            Answer::One(value) if value.is_infinite() => Ok(Measured::NoData(format!(
                "the query returned {} for {} (a division by zero?)",
                if value > 0.0 { "+Inf" } else { "-Inf" },
                workload.deployment
            ))),
            Answer::One(value) => Ok(Measured::Value(value)),
            Answer::Several(series) => Err(QueryError::SeveralSeries { series }),
        }
    }

    /// The previous version's workload and the check's query for it.
    fn previous_query(&self, check: &MetricCheck) -> Result<(&Workload, String), Evaluation> {
        let previous = self.target.previous.as_ref().ok_or_else(no_previous_version)?;
        let query = self.query(check, previous).map_err(|error| Evaluation::error(&error))?;
        Ok((previous, query))
    }

    async fn relative(
        &self,
        check: &MetricCheck,
        query: &str,
        deadline: Instant,
        judge: impl Fn(f64, f64) -> CheckVerdict,
    ) -> Evaluation {
        let (previous, previous_query) = match self.previous_query(check) {
            Ok(found) => found,
            Err(evaluation) => return evaluation,
        };
        let (canary, baseline) = futures::join!(
            self.measure(query, &self.target.canary, check.window, deadline),
            self.measure(&previous_query, previous, check.window, deadline)
        );
        match (canary, baseline) {
            (Err(error), _) | (_, Err(error)) => Evaluation::error(&error),
            (Ok(Measured::NoData(detail)), _) => Evaluation::no_data(detail),
            (Ok(Measured::Value(value)), Ok(Measured::NoData(detail))) => Evaluation {
                verdict: CheckVerdict::NoData,
                value: Some(value),
                previous_value: None,
                detail: format!("nothing to compare with: {detail}"),
            },
            (Ok(Measured::Value(value)), Ok(Measured::Value(previous_value))) => {
                let change = analysis::relative_change(value, previous_value);
                Evaluation {
                    verdict: judge(value, previous_value),
                    value: Some(value),
                    previous_value: Some(previous_value),
                    detail: format!("{} vs the previous version", signed_percent(change)),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "the judge's settings are passed as the manifest holds them")]
    async fn statistical(
        &self,
        check: &MetricCheck,
        query: &str,
        since: jiff::Timestamp,
        deadline: Instant,
        confidence: f64,
        tolerance: f64,
        fail_on: fledge_core::release::Direction,
    ) -> Evaluation {
        let (_, previous_query) = match self.previous_query(check) {
            Ok(found) => found,
            Err(evaluation) => return evaluation,
        };
        let now = jiff::Timestamp::now();
        let range = Duration::from_secs(u64::try_from(now.as_second() - since.as_second()).unwrap_or(0).max(1));
        match self.enough_requests(&self.target.canary, range, deadline).await {
            Err(error) => return Evaluation::error(&error),
            Ok(Some(too_few)) => return Evaluation::no_data(too_few),
            Ok(None) => {}
        }
        // One sample per analysis interval, within Prometheus' limit of 11,000 points per series.
        let step =
            self.analysis.interval.as_std().max(std::time::Duration::from_secs(range.as_std().as_secs() / 10_000 + 1));
        let (canary, baseline) = futures::join!(
            self.prometheus.range(query, since, now, step, deadline),
            self.prometheus.range(&previous_query, since, now, step, deadline)
        );
        let (canary, baseline) = match (canary, baseline) {
            (Err(error), _) | (_, Err(error)) => return Evaluation::error(&error),
            (Ok(canary), Ok(baseline)) => (canary.answer, baseline.answer),
        };
        for series in [&canary, &baseline] {
            if series.len() > 1 {
                let series = series.iter().map(|(labels, _)| labels.clone()).collect();
                return Evaluation::error(&QueryError::SeveralSeries { series });
            }
        }
        let samples =
            |series: &[(String, Vec<f64>)]| series.first().map(|(_, values)| values.clone()).unwrap_or_default();
        let judgement = statistics::judge(&samples(&canary), &samples(&baseline), confidence, tolerance);
        let detail = match judgement.comparison {
            statistics::Comparison::NoData => format!(
                "{} and {} sample(s) since {since}; the judge needs {} of each",
                judgement.canary_samples,
                judgement.baseline_samples,
                statistics::MIN_SAMPLES
            ),
            comparison => format!(
                "{comparison:?}: median shift {}, p = {:.4}, {} vs {} samples",
                judgement.relative_shift.map_or_else(|| "?".to_owned(), signed_percent),
                judgement.p_value.unwrap_or(1.0),
                judgement.canary_samples,
                judgement.baseline_samples
            ),
        };
        Evaluation {
            verdict: analysis::judge_comparison(judgement.comparison, fail_on),
            value: judgement.canary_median,
            previous_value: judgement.baseline_median,
            detail,
        }
    }
}
