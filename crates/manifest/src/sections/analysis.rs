//! `analysis:` how metrics are judged during the stages, and the metric checks themselves.

use crate::document::{Node, Value};
use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Read, Reader};
use crate::suggest::closest;
use fledge_core::Duration;
use fledge_core::query_template::{QueryTemplate, TEMPLATE_VARIABLES, TemplateError};
use fledge_core::release::{
    Analysis, BuiltinMetric, DataPlane, Direction, MetricCheck, MetricSource, NoDataPolicy, Threshold,
};
use fledge_core::sequential::Regression;
use std::collections::HashMap;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(10 * 60);
const BUILTIN_CHOICES: &[&str] = &["success-rate", "latency-p99", "slow-requests"];
const DEFAULT_FALSE_ALARM: &str = "1%";
const DEFAULT_DETECT: Regression = Regression::Points(0.01);
/// The bounds of Istio's (Envoy's) default request duration histogram, in whole milliseconds from 1 ms to 10 minutes
/// (its 0.5 ms, 30 min and 1 h bounds are left out): `slowerThan` must be one.
const DURATION_BUCKETS_MS: [u128; 16] =
    [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000];

pub(crate) static ANALYSIS: Object = Object {
    fields: &[
        Field::new("interval", Kind::Duration, "how often checks run inside a stage").default("30s"),
        Field::new(
            "failureLimit",
            Kind::Integer { min: 0, max: 100 },
            "failed check rounds tolerated per stage; one more rolls the release back",
        )
        .default("1"),
        Field::new(
            "minRequests",
            Kind::Integer { min: 0, max: 1_000_000_000 },
            "fewer requests than this to the new version in a check's window means no data",
        )
        .default("20"),
        Field::new("noData", Kind::Choice(&["hold", "fail", "pass"]), "what a check without data does").default("hold"),
        Field::new(
            "maxHold",
            Kind::Duration,
            "with noData: hold, the longest a stage waits for data before the release is rolled back",
        )
        .default("10m"),
        Field::new(
            "queryErrorLimit",
            Kind::Integer { min: 1, max: 100 },
            "consecutive check rounds with a query error before the release is rolled back",
        )
        .default("3"),
        Field::new("metrics", Kind::List(&Kind::Object(&METRIC)), "the checks")
            .default("[{builtin: success-rate, min: 99}, {builtin: latency-p99, max: 500}]"),
        Field::new(
            "falseAlarm",
            Kind::Percentage,
            "for counted checks: the chance per release of rolling back a version that is not worse, from 0.001% to 20%",
        )
        .default(DEFAULT_FALSE_ALARM),
        Field::new(
            "dataPlane",
            Kind::Choice(&["sidecar", "ambient"]),
            "which Istio proxies report the builtins' requests: sidecars (reporter=destination) or ambient waypoints \
             (reporter=waypoint); default: the one Prometheus shows for the live version at preflight",
        ),
    ],
    exactly_one_of: &[],
};

pub(crate) static METRIC: Object = Object {
    fields: &[
        Field::new(
            "name",
            Kind::Name,
            "unique name in reports; default: the builtin's name (with -vs-previous when compared)",
        ),
        Field::new(
            "builtin",
            Kind::Choice(BUILTIN_CHOICES),
            "a builtin Istio metric: success-rate (%), latency-p99 (ms) or slow-requests (counted, with slowerThan)",
        ),
        Field::new(
            "query",
            Kind::Text,
            "custom PromQL; may use {{service}} {{namespace}} {{version}} {{previousVersion}} {{window}}",
        ),
        Field::new(
            "bad",
            Kind::Text,
            "a counted check's PromQL counter of one version's bad requests (with total), like sum(errors_total{version=\"{{version}}\"})",
        ),
        Field::new("total", Kind::Text, "with bad: the PromQL counter of all of that version's requests"),
        Field::new(
            "detect",
            Kind::Text,
            "makes the check counted, judged after every scrape by a sequential test: the smallest regression worth \
             catching, in percentage points (1%) or as a factor (2x) of the previous version's share of bad requests; \
             default for slow-requests and bad/total: 1%",
        ),
        Field::new(
            "slowerThan",
            Kind::Duration,
            "with builtin: slow-requests: the bound counted as slow, one of Istio's histogram buckets (like 500ms)",
        ),
        Field::new("window", Kind::Duration, "the query's range ({{window}}); default: analysis.interval"),
        Field::new("min", Kind::Number, "lowest passing value"),
        Field::new("max", Kind::Number, "highest passing value"),
        Field::new("compare", Kind::Choice(&["previous"]), "judge against the previous version over the same window"),
        Field::new(
            "maxIncrease",
            Kind::Percentage,
            "with compare: largest tolerated increase over the previous version",
        ),
        Field::new(
            "maxDecrease",
            Kind::Percentage,
            "with compare: largest tolerated decrease below the previous version",
        ),
        Field::new(
            "judge",
            Kind::Object(&JUDGE),
            "with compare: a Mann-Whitney U test of both versions' samples over the stage, instead of maxIncrease / maxDecrease",
        ),
    ],
    exactly_one_of: &["builtin", "query", "bad"],
};

const DEFAULT_CONFIDENCE: f64 = 0.98;

static JUDGE: Object = Object {
    fields: &[
        Field::new(
            "confidence",
            Kind::Number,
            "how sure the test must be of a difference, from 0.5 to 0.9999 (0.98: a 2% chance of judging noise a difference)",
        )
        .default("0.98"),
        Field::new(
            "tolerance",
            Kind::Percentage,
            "differences of the median smaller than this share of the previous version's are tolerated",
        )
        .default("10%"),
        Field::new(
            "failOn",
            Kind::Choice(&["increase", "decrease", "either"]),
            "which difference fails; default: increase for latency-p99, decrease for success-rate, either for queries",
        ),
    ],
    exactly_one_of: &[],
};

fn default_metrics(interval: Duration) -> Vec<MetricCheck> {
    vec![
        MetricCheck {
            name: "success-rate".into(),
            source: MetricSource::Builtin(BuiltinMetric::SuccessRate),
            window: interval,
            threshold: Threshold::Absolute { min: Some(99.0), max: None },
        },
        MetricCheck {
            name: "latency-p99".into(),
            source: MetricSource::Builtin(BuiltinMetric::LatencyP99),
            window: interval,
            threshold: Threshold::Absolute { min: None, max: Some(500.0) },
        },
    ]
}

/// The analysis interval as written (or the default), read without reporting: cross-section rules use it even when
/// other analysis fields are invalid. `None` when the interval itself is invalid (that is reported by [`read`]).
pub(super) fn interval(top: &Entries<'_>) -> Option<Duration> {
    let Some(analysis) = top.get("analysis") else {
        return Some(DEFAULT_INTERVAL);
    };
    let Value::Mapping(pairs) = &analysis.value else {
        return None;
    };
    match pairs.iter().find(|(key, _)| key.value.scalar_text() == Some("interval")) {
        None => Some(DEFAULT_INTERVAL),
        Some((_, Node { value: Value::String(text), .. })) => Duration::parse(text).ok(),
        Some(_) => None,
    }
}

pub(super) fn read(reader: &mut Reader, entries: &Entries<'_>) -> Option<Analysis> {
    let interval = entries.duration(reader, "interval").or(DEFAULT_INTERVAL);
    let failure_limit = entries.integer(reader, "failureLimit").or(1);
    let min_requests = entries.integer(reader, "minRequests").or(20);
    let no_data = entries.choice(reader, "noData").or("hold").map(|policy| match policy {
        "fail" => NoDataPolicy::Fail,
        "pass" => NoDataPolicy::Pass,
        _ => NoDataPolicy::Hold,
    });
    let max_hold = entries.duration(reader, "maxHold").or(DEFAULT_MAX_HOLD);
    let query_error_limit = entries.integer(reader, "queryErrorLimit").or(3);
    let false_alarm = entries
        .percentage(reader, "falseAlarm")
        .or(fledge_core::Percentage::parse(DEFAULT_FALSE_ALARM).expect("valid"))
        .and_then(|rate| {
            let valid = (0.00001..=0.2).contains(&rate.fraction());
            if !valid && let Some(node) = entries.get("falseAlarm") {
                reader.error(
                    node,
                    format!("`analysis.falseAlarm` is {rate}, outside 0.001% to 20%"),
                    "a false-alarm rate is a small chance per release, like 1%",
                );
            }
            valid.then(|| rate.fraction())
        });
    let data_plane = entries
        .choice(reader, "dataPlane")
        .optional()
        .map(|choice| choice.map(|name| if name == "ambient" { DataPlane::Ambient } else { DataPlane::Sidecar }));

    if let (Some(interval), Some(node)) = (interval, entries.get("interval"))
        && interval < Duration::from_secs(1)
    {
        reader.error(
            node,
            format!("`analysis.interval` is {interval}, shorter than 1s"),
            "Prometheus scrapes every few seconds; check every 10s or more",
        );
        return None;
    }
    if let (Some(interval), Some(max_hold), Some(node)) = (interval, max_hold, entries.get("maxHold"))
        && max_hold < interval
    {
        reader.error(
            node,
            format!("`analysis.maxHold` is {max_hold}, shorter than `analysis.interval` ({interval})"),
            "waiting for data must allow at least one check round",
        );
        return None;
    }
    let metrics =
        match (interval, entries.list(reader, "metrics", "write a list of checks, like `- builtin: success-rate`")) {
            (_, Read::Invalid) | (None, _) => None,
            (Some(interval), Read::Absent) => Some(default_metrics(interval)),
            (Some(interval), Read::Value(items)) => read_metrics(reader, entries, items, interval),
        };
    Some(Analysis {
        interval: interval?,
        failure_limit: u32::try_from(failure_limit?).ok()?,
        min_requests: u64::try_from(min_requests?).ok()?,
        no_data: no_data?,
        max_hold: max_hold?,
        query_error_limit: u32::try_from(query_error_limit?).ok()?,
        metrics: metrics?,
        data_plane: data_plane?,
        false_alarm: false_alarm?,
    })
}

fn read_metrics(
    reader: &mut Reader,
    entries: &Entries<'_>,
    items: &[Node],
    interval: Duration,
) -> Option<Vec<MetricCheck>> {
    if items.is_empty() {
        let node = entries.get("metrics").expect("present");
        reader.error(
            node,
            "`analysis.metrics` is empty",
            "list at least one check, or omit `metrics` for the defaults (success-rate ≥ 99, latency-p99 ≤ 500ms)",
        );
        return None;
    }
    let mut metrics = Vec::new();
    let mut valid = true;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("analysis.metrics[{index}]");
        match reader.object(item, &path, &METRIC).and_then(|metric| read_metric(reader, &metric, interval)) {
            Some(metric) => {
                if let Some(first) = seen.insert(metric.name.clone(), index) {
                    reader.error(
                        item,
                        format!("`{path}` is named `{}`, like `analysis.metrics[{first}]`", metric.name),
                        "give each check a unique `name`",
                    );
                    valid = false;
                }
                metrics.push(metric);
            }
            None => valid = false,
        }
    }
    valid.then_some(metrics)
}

fn read_metric(reader: &mut Reader, metric: &Entries<'_>, interval: Duration) -> Option<MetricCheck> {
    let path = |name: &str| metric.path_of(name);
    let name = metric.text(reader, "name").optional();
    let builtin = metric.choice(reader, "builtin").optional();
    let query = match metric.get("query") {
        None => Some(None),
        Some(node) => read_query(reader, node, &path("query")).map(Some),
    };
    let counters = read_counters(reader, metric);
    let detect = match metric.get("detect") {
        None => Some(None),
        Some(node) => reader.text(node, &path("detect")).and_then(|text| match Regression::parse(&text) {
            Ok(detect) => Some(Some(detect)),
            Err(reason) => {
                reader.error(node, format!("`{}`: {reason}", path("detect")), "write 1% (percentage points) or 2x");
                None
            }
        }),
    };
    let slower_than = metric.duration(reader, "slowerThan").optional();
    let window = metric.duration(reader, "window").or(interval);
    let min = metric.number(reader, "min").optional();
    let max = metric.number(reader, "max").optional();
    let compare = metric.choice(reader, "compare").optional();
    let max_increase = metric.percentage(reader, "maxIncrease").optional();
    let max_decrease = metric.percentage(reader, "maxDecrease").optional();
    let judge = match metric.object(reader, "judge") {
        Read::Absent => Some(None),
        Read::Invalid => None,
        Read::Value(judge) => read_judge(reader, &judge).map(Some),
    };
    let (name, builtin, query, counters, detect, window) = (name?, builtin?, query?, counters?, detect?, window?);
    let (min, max, compare, max_increase, max_decrease) = (min?, max?, compare?, max_increase?, max_decrease?);
    let (judge, slower_than) = (judge?, slower_than?);

    let source = match (builtin, query, counters) {
        (Some("slow-requests"), None, None) => {
            let Some(slower_than) = slower_than else {
                reader.error(
                    metric.node(),
                    format!("`{}` counts slow requests but has no `slowerThan`", path("builtin")),
                    "say which requests are slow, like `slowerThan: 500ms` (one of Istio's histogram buckets)",
                );
                return None;
            };
            check_bucket(reader, metric, slower_than)?;
            MetricSource::SlowRequests { slower_than }
        }
        (Some(builtin), None, None) => MetricSource::Builtin(
            BuiltinMetric::ALL.into_iter().find(|metric| metric.manifest_name() == builtin).expect("choices match"),
        ),
        (None, Some(query), None) => MetricSource::Query(query),
        (None, None, Some((bad, total))) => MetricSource::Counted { bad, total },
        _ => return None, // reported by the exactly-one-of rule
    };
    if slower_than.is_some() && !matches!(source, MetricSource::SlowRequests { .. }) {
        reader.error(
            metric.key("slowerThan").expect("present"),
            format!("`{}` needs `builtin: slow-requests`", path("slowerThan")),
            "slowerThan says which requests a slow-requests check counts",
        );
        return None;
    }
    let name = match (name, &source) {
        (Some(name), _) => name,
        (None, MetricSource::Builtin(builtin)) if compare.is_some() => {
            format!("{}-vs-previous", builtin.manifest_name())
        }
        (None, MetricSource::Builtin(builtin)) => builtin.manifest_name().to_owned(),
        (None, MetricSource::SlowRequests { .. }) => "slow-requests".to_owned(),
        (None, MetricSource::Query(_) | MetricSource::Counted { .. }) => {
            let custom = if matches!(source, MetricSource::Query(_)) { "a `query`" } else { "`bad` and `total`" };
            reader.error(
                metric.node(),
                format!("`{}` has {custom} but no `name`", metric.path_of("")).replace(".`", "`"),
                "name custom checks, like `name: checkout-errors`; the name appears in reports",
            );
            return None;
        }
    };
    let counted =
        detect.is_some() || matches!(source, MetricSource::SlowRequests { .. } | MetricSource::Counted { .. });
    if counted {
        let detect = detect.unwrap_or(DEFAULT_DETECT);
        return read_counted(reader, metric, name, source, detect);
    }
    if window.is_zero() {
        reader.error(
            metric.get("window").expect("zero only when set"),
            format!("`{}` must be longer than 0s", path("window")),
            "a range query needs a window, like 1m",
        );
        return None;
    }
    let threshold = if compare.is_some() {
        for bound in ["min", "max"] {
            if let Some(key) = metric.key(bound) {
                reader.error(key, format!("`{}` cannot be used with `compare: previous`", path(bound)), "a compared check is judged with maxIncrease / maxDecrease; put absolute bounds in a separate check");
                return None;
            }
        }
        if let Some(judge) = judge {
            for bound in ["maxIncrease", "maxDecrease"] {
                if let Some(key) = metric.key(bound) {
                    reader.error(
                        key,
                        format!("`{}` cannot be used with `judge`", path(bound)),
                        "the judge decides with its confidence and tolerance; remove one of the two",
                    );
                    return None;
                }
            }
            let fail_on = judge.fail_on.unwrap_or_else(|| source.worse_direction());
            Threshold::Statistical { confidence: judge.confidence, tolerance: judge.tolerance, fail_on }
        } else if max_increase.is_none() && max_decrease.is_none() {
            reader.error(
                metric.key("compare").expect("present"),
                format!("`{}` needs `maxIncrease`, `maxDecrease` or `judge`", path("compare")),
                "say how far the new version may move from the previous one, like `maxIncrease: 20%`",
            );
            return None;
        } else {
            Threshold::RelativeToPrevious { max_increase, max_decrease }
        }
    } else {
        for bound in ["maxIncrease", "maxDecrease", "judge"] {
            if let Some(key) = metric.key(bound) {
                reader.error(
                    key,
                    format!("`{}` needs `compare: previous`", path(bound)),
                    "add `compare: previous` to judge against the previous version, or use min / max",
                );
                return None;
            }
        }
        if min.is_none() && max.is_none() {
            reader.error(
                metric.node(),
                format!("check `{name}` has no threshold"),
                "add `min` and/or `max`, or `compare: previous` with `maxIncrease` / `maxDecrease`",
            );
            return None;
        }
        check_bounds(reader, metric, &source, min, max)?;
        Threshold::Absolute { min, max }
    };
    Some(MetricCheck { name, source, window, threshold })
}

/// A `judge:` mapping as written; `fail_on` stays `None` for the metric's default.
struct JudgeSettings {
    confidence: f64,
    tolerance: fledge_core::Percentage,
    fail_on: Option<Direction>,
}

fn read_judge(reader: &mut Reader, judge: &Entries<'_>) -> Option<JudgeSettings> {
    let confidence = judge.number(reader, "confidence").or(DEFAULT_CONFIDENCE);
    let tolerance = judge.percentage(reader, "tolerance").or(fledge_core::Percentage::parse("10%").expect("valid"));
    let fail_on = judge.choice(reader, "failOn").optional().map(|choice| {
        choice.map(|name| match name {
            "increase" => Direction::Increase,
            "decrease" => Direction::Decrease,
            _ => Direction::Either,
        })
    });
    let confidence = confidence.filter(|confidence| {
        let valid = (0.5..=0.9999).contains(confidence);
        if !valid && let Some(node) = judge.get("confidence") {
            reader.error(
                node,
                format!("`{}` is {confidence}, outside 0.5 to 0.9999", judge.path_of("confidence")),
                "write the confidence as a fraction, like 0.98 (98%)",
            );
        }
        valid
    });
    Some(JudgeSettings { confidence: confidence?, tolerance: tolerance?, fail_on: fail_on? })
}

fn check_bounds(
    reader: &mut Reader,
    metric: &Entries<'_>,
    source: &MetricSource,
    min: Option<f64>,
    max: Option<f64>,
) -> Option<()> {
    let range = match source {
        MetricSource::Builtin(BuiltinMetric::SuccessRate) => {
            Some((0.0, 100.0, "success-rate is a percentage from 0 to 100, like `min: 99`"))
        }
        MetricSource::Builtin(BuiltinMetric::LatencyP99) => {
            Some((0.0, f64::MAX, "latency-p99 is in milliseconds, 0 or more, like `max: 500`"))
        }
        MetricSource::Query(_) | MetricSource::SlowRequests { .. } | MetricSource::Counted { .. } => None,
    };
    let mut valid = true;
    if let Some((low, high, hint)) = range {
        for (bound, value) in [("min", min), ("max", max)] {
            if let Some(value) = value.filter(|value| *value < low || *value > high) {
                let node = metric.get(bound).expect("set");
                reader.error(node, format!("`{}` is {value}, outside the metric's range", metric.path_of(bound)), hint);
                valid = false;
            }
        }
    }
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        reader.error(
            metric.get("min").expect("set"),
            format!("`{}` ({min}) is above `max` ({max})", metric.path_of("min")),
            "no value could pass; swap or fix the bounds",
        );
        valid = false;
    }
    valid.then_some(())
}

/// A counted check: only `detect` judges it; the thresholds of the other checks do not apply.
fn read_counted(
    reader: &mut Reader,
    metric: &Entries<'_>,
    name: String,
    source: MetricSource,
    detect: Regression,
) -> Option<MetricCheck> {
    let path = |name: &str| metric.path_of(name);
    match &source {
        MetricSource::Builtin(BuiltinMetric::LatencyP99) => {
            reader.error(
                metric.key("detect").expect("present"),
                format!("`{}` cannot judge latency-p99: a percentile is not a count", path("detect")),
                "count slow requests instead: `builtin: slow-requests` with `slowerThan: 500ms`",
            );
            return None;
        }
        MetricSource::Query(_) => {
            reader.error(
                metric.key("detect").expect("present"),
                format!("`{}` needs counters, not a `query`", path("detect")),
                "write the counter of bad requests as `bad:` and of all requests as `total:`",
            );
            return None;
        }
        _ => {}
    }
    for field in ["window", "min", "max", "compare", "maxIncrease", "maxDecrease", "judge"] {
        if let Some(key) = metric.key(field) {
            reader.error(
                key,
                format!("`{}` does not apply to counted check `{name}`", path(field)),
                "a counted check reads counters since the release began and is judged by `detect` and \
                 analysis.falseAlarm; put thresholds in a separate check",
            );
            return None;
        }
    }
    Some(MetricCheck { name, source, window: Duration::from_secs(1), threshold: Threshold::Sequential { detect } })
}

/// `bad` and `total`, both or neither.
fn read_counters(reader: &mut Reader, metric: &Entries<'_>) -> Option<Option<(String, String)>> {
    match (metric.get("bad"), metric.get("total")) {
        (None, None) => Some(None),
        (Some(bad), Some(total)) => {
            let mut counter = |node: &Node, name: &str| {
                let query = read_query(reader, node, &metric.path_of(name))?;
                if QueryTemplate::parse(&query).is_ok_and(|template| template.uses("window")) {
                    reader.error(
                        node,
                        format!("`{}` uses {{{{window}}}}: a counter takes no window", metric.path_of(name)),
                        "write the counter itself, like sum(payments_total{...}); fledge reads it at every scrape",
                    );
                    return None;
                }
                Some(query)
            };
            let (bad, total) = (counter(bad, "bad"), counter(total, "total"));
            Some(Some((bad?, total?)))
        }
        (Some(_), None) | (None, Some(_)) => {
            let (present, missing) = if metric.get("bad").is_some() { ("bad", "total") } else { ("total", "bad") };
            reader.error(
                metric.key(present).expect("present"),
                format!("`{}` needs `{missing}`", metric.path_of(present)),
                "a counted check reads two counters of one version: `bad` (bad requests) and `total` (all requests)",
            );
            None
        }
    }
}

/// `slowerThan` must be a bound of Istio's duration histogram: only there are slow requests counted.
fn check_bucket(reader: &mut Reader, metric: &Entries<'_>, slower_than: Duration) -> Option<()> {
    if DURATION_BUCKETS_MS.contains(&slower_than.as_millis()) {
        return Some(());
    }
    let bounds: Vec<String> = DURATION_BUCKETS_MS[..12].iter().map(|bound| format!("{bound}ms")).collect();
    reader.error(
        metric.get("slowerThan").expect("present"),
        format!(
            "`{}` is {slower_than}, not a bound of Istio's request duration histogram",
            metric.path_of("slowerThan")
        ),
        format!("requests are only counted at its bucket bounds: {} …", bounds.join(", ")),
    );
    None
}

fn read_query(reader: &mut Reader, node: &Node, path: &str) -> Option<String> {
    let query = reader.text(node, path)?;
    if query.trim().is_empty() {
        reader.error(node, format!("`{path}` is empty"), "write a PromQL expression");
        return None;
    }
    match QueryTemplate::parse(&query) {
        Ok(template) => {
            if !template.uses("version") {
                reader.warning(
                    node,
                    format!("`{path}` does not use {{{{version}}}}"),
                    "without it the query measures every version of the service, not the new one",
                );
            }
            Some(query)
        }
        Err(TemplateError::UnknownVariable { name }) => {
            let known = TEMPLATE_VARIABLES.map(|variable| format!("{{{{{variable}}}}}")).join(" ");
            let hint = match closest(&name, TEMPLATE_VARIABLES) {
                Some(suggestion) => format!("did you mean {{{{{suggestion}}}}}? known variables: {known}"),
                None => format!("known variables: {known}"),
            };
            reader.error(node, format!("`{path}` uses unknown template variable `{{{{{name}}}}}`"), hint);
            None
        }
        Err(TemplateError::Unclosed { .. }) => {
            reader.error(
                node,
                format!("`{path}` has `{{{{` without a closing `}}}}`"),
                "write variables as {{version}}",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_choices_are_the_core_names() {
        let mut names: Vec<&str> = BuiltinMetric::ALL.iter().map(|metric| metric.manifest_name()).collect();
        names.push("slow-requests");
        assert_eq!(names, BUILTIN_CHOICES);
    }
}
