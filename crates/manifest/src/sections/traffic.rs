//! `traffic:` the provider whose route fledge shifts (Istio or the Gateway API) and its resources.

use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Read, Reader};
use fledge_core::Duration;
use fledge_core::release::{GatewayApiTraffic, IstioTraffic, PinnedRoutes, Service, Traffic, TrafficProvider};

const PINNED_CHOICES: &[&str] = &["move", "keep", "refuse"];
const DEFAULT_VERSION_SERVICE: &str = GatewayApiTraffic::DEFAULT_VERSION_SERVICE;
const DEFAULT_ACCEPTANCE_TIMEOUT: Duration = GatewayApiTraffic::DEFAULT_ACCEPTANCE_TIMEOUT;

pub(crate) static TRAFFIC: Object = Object {
    fields: &[
        Field::new(
            "istio",
            Kind::Object(&ISTIO),
            "Istio VirtualService and DestinationRule (the provider when neither istio nor gatewayAPI is given)",
        ),
        Field::new("gatewayAPI", Kind::Object(&GATEWAY_API), "Gateway API HTTPRoute and one Service per version"),
        Field::new(
            "pinnedRoutes",
            Kind::Choice(PINNED_CHOICES),
            "routes outside the managed one that send to the live version: move them to the new version at \
             promotion, keep the old version running for them, or refuse the release",
        )
        .default("move"),
    ],
    exactly_one_of: &[],
};

static ISTIO: Object = Object {
    fields: &[
        Field::new(
            "virtualService",
            Kind::ResourceName,
            "the VirtualService routing the service; default: service.name",
        ),
        Field::new(
            "destinationRule",
            Kind::ResourceName,
            "the DestinationRule holding the version subsets; default: service.name",
        ),
        Field::new(
            "route",
            Kind::Text,
            "name of the http route to manage; default: the only route whose destinations are the service's host",
        ),
    ],
    exactly_one_of: &[],
};

static GATEWAY_API: Object = Object {
    fields: &[
        Field::new("httpRoute", Kind::ResourceName, "the HTTPRoute routing the service; default: service.name"),
        Field::new(
            "rule",
            Kind::Text,
            "name of the rule to manage; default: the only rule whose backends are the service's Services",
        ),
        Field::new(
            "versionService",
            Kind::Text,
            "name of each version's Service, created by fledge for the new version ({service} and {version} are \
             replaced)",
        )
        .default("{service}-{version}"),
        Field::new(
            "acceptanceTimeout",
            Kind::Duration,
            "how long every parent of the route may take to accept a change (Accepted and ResolvedRefs at the \
             route's generation) before the change counts as refused",
        )
        .default("30s"),
    ],
    exactly_one_of: &[],
};

pub(super) fn read(reader: &mut Reader, entries: &Entries<'_>, service: Option<&Service>) -> Option<Traffic> {
    if let (Some(_), Some(gateway)) = (entries.get("istio"), entries.get("gatewayAPI")) {
        reader.error(
            gateway,
            "`traffic` has both `istio` and `gatewayAPI`",
            "give exactly one traffic provider: `istio` (a VirtualService) or `gatewayAPI` (an HTTPRoute)",
        );
        return None;
    }
    let pinned_routes = entries.choice(reader, "pinnedRoutes").or("move").map(|choice| match choice {
        "keep" => PinnedRoutes::Keep,
        "refuse" => PinnedRoutes::Refuse,
        _ => PinnedRoutes::Move,
    });
    let provider = match entries.object(reader, "gatewayAPI") {
        Read::Invalid => None,
        Read::Value(gateway) => read_gateway_api(reader, &gateway, service),
        Read::Absent => read_istio(reader, entries, service),
    };
    Some(Traffic { provider: provider?, pinned_routes: pinned_routes? })
}

fn read_istio(reader: &mut Reader, entries: &Entries<'_>, service: Option<&Service>) -> Option<TrafficProvider> {
    let (virtual_service, destination_rule, route) = match entries.object(reader, "istio") {
        Read::Absent => (Some(None), Some(None), Some(None)),
        Read::Invalid => return None,
        Read::Value(istio) => (
            istio.text(reader, "virtualService").optional(),
            istio.text(reader, "destinationRule").optional(),
            istio.text(reader, "route").optional(),
        ),
    };
    let service_name = &service?.name;
    Some(TrafficProvider::Istio(IstioTraffic {
        virtual_service: virtual_service?.unwrap_or_else(|| service_name.clone()),
        destination_rule: destination_rule?.unwrap_or_else(|| service_name.clone()),
        route: route?,
    }))
}

fn read_gateway_api(reader: &mut Reader, gateway: &Entries<'_>, service: Option<&Service>) -> Option<TrafficProvider> {
    let http_route = gateway.text(reader, "httpRoute").optional();
    let rule = gateway.text(reader, "rule").optional();
    let version_service = gateway.text(reader, "versionService").or(DEFAULT_VERSION_SERVICE.to_owned());
    let acceptance_timeout = gateway.duration(reader, "acceptanceTimeout").or(DEFAULT_ACCEPTANCE_TIMEOUT);
    let version_service = version_service?;
    let node = gateway.get("versionService");
    if !version_service.contains("{version}") {
        if let Some(node) = node {
            reader.error(
                node,
                format!("`traffic.gatewayAPI.versionService` is `{version_service}`, without `{{version}}`"),
                "each version needs a Service of its own; write a name like `{service}-{version}`",
            );
        }
        return None;
    }
    let service = service?;
    let traffic = GatewayApiTraffic {
        http_route: http_route?.unwrap_or_else(|| service.name.clone()),
        rule: rule?,
        version_service,
        acceptance_timeout: acceptance_timeout?,
    };
    let name = traffic.service_name(&service.name, &service.version);
    if fledge_core::names::check_dns_label(&name).is_err() {
        if let Some(node) = node {
            reader.error(
                node,
                format!("`traffic.gatewayAPI.versionService` makes `{name}` for version {}", service.version),
                "a Service name is a DNS label: lowercase letters, digits and '-', at most 63 characters",
            );
        } else {
            reader.error(
                gateway.node(),
                format!("the new version's Service would be named `{name}`, which is not a valid Service name"),
                "set `versionService` to a shorter name, like `{service}-{version}`",
            );
        }
        return None;
    }
    Some(TrafficProvider::GatewayApi(traffic))
}
