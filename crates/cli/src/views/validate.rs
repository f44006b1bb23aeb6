//! The summary of a valid release that `fledge validate` prints: what the release will do, in a few lines.

use fledge_core::Release;
use fledge_core::release::{MetricSource, NoDataPolicy, TemplateSource, TrafficProvider};
use std::fmt::Write as _;

/// A block describing one valid release, starting with `FILE: valid`.
pub(crate) fn render(file_name: &str, release: &Release) -> String {
    let mut out = String::new();
    let service = &release.service;
    let _ = writeln!(out, "{file_name}: valid");
    let previous = match &service.previous_version {
        Some(previous) => format!("replacing {previous}"),
        None => "replacing the version live today".to_owned(),
    };
    let _ = writeln!(
        out,
        "  release   {} {} in namespace {}, {previous}",
        service.name, service.version, service.namespace
    );

    let deploy = &release.deploy;
    let replicas = match deploy.replicas {
        Some(1) => "1 replica".to_owned(),
        Some(count) => format!("{count} replicas"),
        None => "as many replicas as the live version".to_owned(),
    };
    let template = match &deploy.template_source {
        TemplateSource::LiveVersion => "pod template of the live version".to_owned(),
        TemplateSource::Deployment(name) => format!("pod template of Deployment {name}"),
        TemplateSource::Template(_) => "pod template from the manifest".to_owned(),
    };
    let _ = writeln!(out, "  deploy    {} image {}, {replicas}, {template}", release.deployment_name(), deploy.image);

    let gate = &release.gate;
    let _ = writeln!(
        out,
        "  gate      every pod Ready for {} within {}, at most {} restart{} per container",
        gate.stable_for,
        gate.timeout,
        gate.max_restarts,
        if gate.max_restarts == 1 { "" } else { "s" }
    );
    let pinned = release.traffic.pinned_routes.manifest_name();
    let _ = match &release.traffic.provider {
        TrafficProvider::Istio(istio) => {
            let route = istio.route.as_deref().map(|route| format!(", route {route}")).unwrap_or_default();
            writeln!(
                out,
                "  traffic   VirtualService {}, DestinationRule {}{route}; pinned routes: {pinned}",
                istio.virtual_service, istio.destination_rule
            )
        }
        TrafficProvider::GatewayApi(gateway) => {
            let rule = gateway.rule.as_deref().map(|rule| format!(", rule {rule}")).unwrap_or_default();
            writeln!(
                out,
                "  traffic   HTTPRoute {}{rule}, new version's Service {}, accepted within {}; pinned routes: {pinned}",
                gateway.http_route,
                gateway.service_name(&release.service.name, &release.service.version),
                gateway.acceptance_timeout
            )
        }
    };

    let analysis = &release.analysis;
    let no_data = match analysis.no_data {
        NoDataPolicy::Hold => format!("hold up to {}", analysis.max_hold),
        NoDataPolicy::Fail => "fail".to_owned(),
        NoDataPolicy::Pass => "pass".to_owned(),
    };
    let _ = writeln!(
        out,
        "  analysis  every {}, {} failure{} tolerated per stage, no data: {no_data}, from {}",
        analysis.interval,
        analysis.failure_limit,
        if analysis.failure_limit == 1 { "" } else { "s" },
        release.prometheus.url
    );

    let _ = writeln!(out, "  stages");
    for (index, stage) in release.stages.iter().enumerate() {
        let approval = if stage.approval { "  then wait for approval" } else { "" };
        let _ = writeln!(out, "    {}. {:>4} for {}{approval}", index + 1, stage.weight.to_string(), stage.duration);
    }
    if release.final_stage_weight().percent() < 100 {
        let _ = writeln!(out, "    then promote: 100%");
    }

    let _ = writeln!(out, "  metrics");
    let name_width = analysis.metrics.iter().map(|metric| metric.name.len()).max().unwrap_or(0);
    for metric in &analysis.metrics {
        let threshold = metric.describe_threshold();
        let source = match &metric.source {
            MetricSource::Builtin(_) | MetricSource::SlowRequests { .. } => "builtin",
            MetricSource::Query(_) => "custom query",
            MetricSource::Counted { .. } => "custom counters",
        };
        if metric.is_counted() {
            let false_alarm = analysis.false_alarm_per_check() * 100.0;
            let _ = writeln!(
                out,
                "    {:<name_width$}  {threshold}  ({source}, every scrape, false alarm {false_alarm}%)",
                metric.name
            );
        } else {
            let _ = writeln!(out, "    {:<name_width$}  {threshold}  ({source}, over {})", metric.name, metric.window);
        }
    }

    let _ = writeln!(
        out,
        "  promote   100% to {}, old version: {} after {}",
        service.version,
        release.promote.cleanup.manifest_name(),
        release.promote.scale_down_delay
    );
    let _ = writeln!(out, "  rollback  restore traffic, new version: {}", release.rollback.new_version.manifest_name());
    for notification in &release.notify {
        let events: Vec<&str> = notification.on.iter().map(|event| event.manifest_name()).collect();
        let _ = writeln!(out, "  notify    {} on {}", notification.webhook.describe(), events.join(", "));
    }
    out
}
