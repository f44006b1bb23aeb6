//! The PromQL fledge sends: the builtin metrics, the request count behind `minRequests`, and custom templates.
//!
//! The builtins follow Flagger's `request-success-rate` and `request-duration`, but are scoped to one versioned
//! workload rather than to the whole service, so the new version is measured alone:
//!
//! ```text
//! success-rate  100 * sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="NS",
//!                   destination_workload="SERVICE-VERSION",response_code!~"5.*"}[WINDOW]))
//!                   / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="NS",
//!                   destination_workload="SERVICE-VERSION"}[WINDOW]))
//! latency-p99   histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{
//!                   reporter="destination",destination_workload_namespace="NS",
//!                   destination_workload="SERVICE-VERSION"}[WINDOW])))
//! requests      sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="NS",
//!                   destination_workload="SERVICE-VERSION"}[WINDOW]))
//! ```
//!
//! `reporter="destination"` counts each request once, as the server's proxy saw it; in Istio's ambient mode the
//! service's waypoint proxy reports instead (`reporter="waypoint"`, [`DataPlane::Ambient`]). Without requests, the
//! success-rate is 0/0 = NaN and the latency has no buckets: both are "no data", never a pass.

use fledge_core::release::{BuiltinMetric, DataPlane, MetricSource};
use fledge_core::{Duration, QueryTemplate, TemplateError, TemplateValues};

/// The workload a query measures: one version's Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The namespace.
    pub namespace: String,
    /// The service name (`{{service}}`).
    pub service: String,
    /// The version (`{{version}}`, the `version` label).
    pub version: String,
    /// The Deployment name, Istio's `destination_workload`: usually `<service>-<version>`.
    pub deployment: String,
    /// Istio's `reporter` that counts each request to it once: `destination` (sidecars) or `waypoint` (ambient).
    pub reporter: &'static str,
}

impl Workload {
    /// The workload of `version` of `service`, in a Deployment named `<service>-<version>`.
    pub fn of(namespace: &str, service: &str, version: &str) -> Workload {
        Workload {
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            version: version.to_owned(),
            deployment: format!("{service}-{version}"),
            reporter: DataPlane::Sidecar.reporter(),
        }
    }

    /// The workload with its requests reported by `data_plane`'s proxies.
    pub fn reported_by(self, data_plane: DataPlane) -> Workload {
        Workload { reporter: data_plane.reporter(), ..self }
    }

    fn selector(&self) -> String {
        format!(
            r#"reporter="{}",destination_workload_namespace="{}",destination_workload="{}""#,
            self.reporter,
            escape(&self.namespace),
            escape(&self.deployment)
        )
    }
}

/// Escapes a value for a double-quoted PromQL string.
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The PromQL of a builtin metric for one workload over `window`.
pub fn builtin(metric: BuiltinMetric, workload: &Workload, window: Duration) -> String {
    let selector = workload.selector();
    match metric {
        BuiltinMetric::SuccessRate => format!(
            r#"100 * sum(rate(istio_requests_total{{{selector},response_code!~"5.*"}}[{window}])) / sum(rate(istio_requests_total{{{selector}}}[{window}]))"#
        ),
        BuiltinMetric::LatencyP99 => format!(
            r#"histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{selector}}}[{window}])))"#
        ),
    }
}

/// The PromQL counting the requests a workload served over `window`.
pub fn request_count(workload: &Workload, window: Duration) -> String {
    format!(r#"sum(increase(istio_requests_total{{{}}}[{window}]))"#, workload.selector())
}

/// The PromQL of the share of a workload's requests that failed (5xx) over `window`, from 0 to 1; no series when
/// none failed.
pub fn failing_share(workload: &Workload, window: Duration) -> String {
    let selector = workload.selector();
    format!(
        r#"sum(increase(istio_requests_total{{{selector},response_code=~"5.*"}}[{window}])) / sum(increase(istio_requests_total{{{selector}}}[{window}]))"#
    )
}

/// The counters a counted check reads for one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Counters {
    /// A counter of bad requests and one of all requests.
    BadAndTotal {
        /// Bad requests.
        bad: String,
        /// All requests.
        total: String,
    },
    /// Istio's duration histogram: all requests, and those no slower than the bound (its bucket); the slow ones are
    /// the difference. Kept apart so that a missing bucket is an error, not "no slow request".
    AllAndFast {
        /// All requests (the histogram's count).
        all: String,
        /// Requests no slower than the bound (the bucket).
        fast: String,
    },
}

impl Counters {
    /// The query a report shows: the bad requests'.
    pub fn describe(&self) -> String {
        match self {
            Counters::BadAndTotal { bad, .. } => bad.clone(),
            Counters::AllAndFast { all, fast } => format!("{all} - {fast}"),
        }
    }

    /// Each counter's query, named by its part (`bad`, `total`, `all`, `fast`).
    pub fn parts(&self) -> [(&'static str, &String); 2] {
        match self {
            Counters::BadAndTotal { bad, total } => [("bad", bad), ("total", total)],
            Counters::AllAndFast { all, fast } => [("all", all), ("fast", fast)],
        }
    }
}

/// The `le` matcher of a histogram bucket bound (whole milliseconds below 10⁶, as the manifest allows): exporters
/// write 500 as `500` (Envoy) or `500.0` (some client libraries). In a PromQL string the regex's `\.` is `\\.`.
fn bucket_matcher(bound_ms: u128) -> String {
    format!(r#"le=~"{bound_ms}(\\.0+)?""#)
}

/// The label that names each part of [`counters_together`]'s answer.
pub const COUNTER_LABEL: &str = "fledge_counter";

/// One expression reading every counter of both versions: each summed and labelled `fledge_counter="<side>_<part>"`
/// (`new_bad`, `new_total`, `live_all`, `live_fast`, ...), joined with `or`.
pub fn counters_together(sides: &[(&str, &Counters)]) -> String {
    let mut parts = Vec::new();
    for (side, counters) in sides {
        for (part, query) in counters.parts() {
            parts.push(format!(r#"label_replace(sum({query}), "{COUNTER_LABEL}", "{side}_{part}", "", "")"#));
        }
    }
    parts.join(" or ")
}

/// The counters of a counted check for one workload; `None` for a check that is not counted.
pub fn counters(
    source: &MetricSource,
    workload: &Workload,
    previous_version: Option<&str>,
) -> Option<Result<Counters, CustomQueryError>> {
    let selector = workload.selector();
    Some(Ok(match source {
        MetricSource::Builtin(BuiltinMetric::SuccessRate) => Counters::BadAndTotal {
            bad: format!(r#"sum(istio_requests_total{{{selector},response_code=~"5.*"}})"#),
            total: format!(r#"sum(istio_requests_total{{{selector}}})"#),
        },
        MetricSource::SlowRequests { slower_than } => Counters::AllAndFast {
            all: format!(r#"sum(istio_request_duration_milliseconds_count{{{selector}}})"#),
            fast: format!(
                r#"sum(istio_request_duration_milliseconds_bucket{{{selector},{}}})"#,
                bucket_matcher(slower_than.as_millis())
            ),
        },
        MetricSource::Counted { bad, total } => {
            let window = Duration::from_secs(60);
            let render = |template: &str| custom(template, workload, previous_version, window);
            match (render(bad), render(total)) {
                (Ok(bad), Ok(total)) => Counters::BadAndTotal { bad, total },
                (Err(error), _) | (_, Err(error)) => return Some(Err(error)),
            }
        }
        MetricSource::Builtin(BuiltinMetric::LatencyP99) | MetricSource::Query(_) => return None,
    }))
}

/// Renders a custom query template for one workload; `previous_version` fills `{{previousVersion}}`.
pub fn custom(
    template: &str,
    workload: &Workload,
    previous_version: Option<&str>,
    window: Duration,
) -> Result<String, CustomQueryError> {
    let template = QueryTemplate::parse(template).map_err(CustomQueryError::Template)?;
    if template.uses("previousVersion") && previous_version.is_none() {
        return Err(CustomQueryError::NoPreviousVersion);
    }
    Ok(template.render(&TemplateValues {
        service: workload.service.clone(),
        namespace: workload.namespace.clone(),
        version: workload.version.clone(),
        previous_version: previous_version.unwrap_or_default().to_owned(),
        window,
    }))
}

/// Why a custom query could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomQueryError {
    /// The template is invalid (the manifest's validation prevents this).
    #[error("failed to parse the query template")]
    Template(#[source] TemplateError),
    /// The template uses `{{previousVersion}}`, and no previous version is known.
    #[error("the query uses {{{{previousVersion}}}} but no previous version is known")]
    NoPreviousVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_scoped_to_the_versioned_workload() {
        let workload = Workload::of("bookinfo", "reviews", "v2");
        let window = Duration::from_secs(60);
        assert_eq!(
            builtin(BuiltinMetric::SuccessRate, &workload, window),
            r#"100 * sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v2",response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v2"}[1m]))"#
        );
        assert_eq!(
            builtin(BuiltinMetric::LatencyP99, &workload, window),
            r#"histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v2"}[1m])))"#
        );
        assert_eq!(
            request_count(&workload, window),
            r#"sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v2"}[1m]))"#
        );
    }

    #[test]
    fn counted_checks_read_counters_of_the_versioned_workload() {
        let workload = Workload::of("bookinfo", "reviews", "v2");
        let selector =
            r#"reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v2""#;
        assert_eq!(
            counters(&MetricSource::Builtin(BuiltinMetric::SuccessRate), &workload, Some("v1")),
            Some(Ok(Counters::BadAndTotal {
                bad: format!(r#"sum(istio_requests_total{{{selector},response_code=~"5.*"}})"#),
                total: format!(r#"sum(istio_requests_total{{{selector}}})"#),
            }))
        );
        let slow = MetricSource::SlowRequests { slower_than: Duration::from_millis(500) };
        assert_eq!(
            counters(&slow, &workload, Some("v1")),
            Some(Ok(Counters::AllAndFast {
                all: format!(r#"sum(istio_request_duration_milliseconds_count{{{selector}}})"#),
                fast: format!(r#"sum(istio_request_duration_milliseconds_bucket{{{selector},le=~"500(\\.0+)?"}})"#),
            }))
        );
        let success = counters(&MetricSource::Builtin(BuiltinMetric::SuccessRate), &workload, None).unwrap().unwrap();
        assert_eq!(
            counters_together(&[("new", &success)]),
            format!(
                r#"label_replace(sum(sum(istio_requests_total{{{selector},response_code=~"5.*"}})), "fledge_counter", "new_bad", "", "") or label_replace(sum(sum(istio_requests_total{{{selector}}})), "fledge_counter", "new_total", "", "")"#
            )
        );
        assert_eq!(counters(&MetricSource::Builtin(BuiltinMetric::LatencyP99), &workload, None), None);
    }

    #[test]
    fn custom_queries_render_known_variables_escaped() {
        let workload = Workload::of("shop", r#"odd"name"#, "v2");
        let query = custom(
            r#"sum(rate(x{app="{{service}}",v="{{version}}",p="{{previousVersion}}"}[{{window}}]))"#,
            &workload,
            Some("v1"),
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(query, r#"sum(rate(x{app="odd\"name",v="v2",p="v1"}[30s]))"#);
        assert_eq!(
            custom("x{p=\"{{previousVersion}}\"}", &workload, None, Duration::from_secs(30)),
            Err(CustomQueryError::NoPreviousVersion)
        );
    }
}
