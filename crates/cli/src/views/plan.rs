//! What `fledge plan` shows: the preflight that passed, then what the release would change, step by step.

use fledge_core::release::{PinnedRoutes, TrafficProvider};
use fledge_core::{Phase, Release};
use fledge_runner::Preflight;
use std::fmt::Write as _;

/// The plan of `release` after `preflight` passed, as text.
pub(crate) fn render(release: &Release, preflight: &Preflight) -> String {
    let Preflight { traffic, live, queries, .. } = preflight;
    let service = &release.service;
    let mut out = String::new();
    let replicas = release.deploy.replicas.unwrap_or(live.replicas);
    let _ = writeln!(
        out,
        "plan: {} {} in {}, replacing {}; preflight passed, nothing was changed",
        service.name, service.version, service.namespace, traffic.live_version
    );
    let _ = writeln!(out, "  live      Deployment {} ({} replicas); {}", live.deployment, live.replicas, traffic.route);
    let _ = writeln!(
        out,
        "  deploy    Deployment {} (image {}, {replicas} replicas, labels app={}, version={}) at 0% traffic; the API server accepts it (server-side dry run)",
        release.deployment_name(),
        release.deploy.image,
        service.name,
        service.version
    );
    for (index, added) in traffic.adds.iter().enumerate() {
        let _ = writeln!(out, "{}{added}", if index == 0 { "  adds      " } else { "            " });
    }
    let pinned_policy = release.traffic.pinned_routes;
    let keeps_old = pinned_policy == PinnedRoutes::Keep && !traffic.pinned_routes.is_empty();
    if traffic.pinned_routes.is_empty() {
        let _ = writeln!(out, "  pinned    none: no other route sends to {}", traffic.live_version);
    }
    for (index, route) in traffic.pinned_routes.iter().enumerate() {
        let label = if index == 0 { "  pinned    " } else { "            " };
        let action = match pinned_policy {
            PinnedRoutes::Move => format!("moved to {} at promotion (traffic.pinnedRoutes: move)", service.version),
            _ => format!("stays on {}, which is kept for it (traffic.pinnedRoutes: keep)", traffic.live_version),
        };
        let _ = writeln!(out, "{label}{route}: {action}");
    }
    let gate = &release.gate;
    let _ = writeln!(out, "  gate      every pod Ready and stable for {} within {}", gate.stable_for, gate.timeout);
    for (index, stage) in release.stages.iter().enumerate() {
        let label = if index == 0 { "  stages    " } else { "            " };
        let approval = if stage.approval { ", then wait for --approve" } else { "" };
        let _ = writeln!(
            out,
            "{label}{}. {} to {}, {} to {} for {} (checks every {}){approval}",
            index + 1,
            stage.weight,
            service.version,
            stage.weight.complement(),
            traffic.live_version,
            stage.duration,
            release.analysis.interval
        );
    }
    let (old_routing, restored, removed) = match &release.traffic.provider {
        TrafficProvider::Istio(_) => (
            format!("subset {}", traffic.live_version),
            "the route and the subsets restored as they are now".to_owned(),
            String::new(),
        ),
        TrafficProvider::GatewayApi(gateway) => (
            format!("Service {}", gateway.service_name(&service.name, &traffic.live_version)),
            "the rule's backendRefs restored as they are now".to_owned(),
            format!(", Service {} deleted", gateway.service_name(&service.name, &service.version)),
        ),
    };
    if keeps_old {
        let _ = writeln!(
            out,
            "  promote   100% to {}; after {} {} and {old_routing} are kept for the pinned routes",
            service.version, release.promote.scale_down_delay, live.deployment
        );
    } else {
        let _ = writeln!(
            out,
            "  promote   100% to {}; {} {} and {old_routing} removed after {}",
            service.version,
            live.deployment,
            release.promote.cleanup.manifest_name(),
            release.promote.scale_down_delay
        );
    }
    let _ = writeln!(
        out,
        "  rollback  {restored}{removed}; {}: {}",
        release.deployment_name(),
        release.rollback.new_version.manifest_name()
    );
    let _ = writeln!(out, "  queries");
    for (name, query) in queries {
        let _ = writeln!(out, "    {name}: {query}");
    }
    out
}

/// `fledge plan` on a release already in flight at `phase`: running the manifest resumes it.
pub(crate) fn render_resumes(release: &Release, phase: &Phase) -> String {
    let service = &release.service;
    format!("{} {} is in flight at {phase}: `fledge run` on this manifest resumes it\n", service.name, service.version)
}

/// `fledge plan` while another version's release (`version`, at `phase`) holds the service.
pub(crate) fn render_blocked(release: &Release, version: &str, phase: &Phase) -> String {
    format!(
        "locked: the release of {} {version} is in flight ({phase}); finish it with its manifest, or `fledge abort`\n",
        release.service.name
    )
}
