//! `traffic:` the Istio resources whose weights fledge shifts.

use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Read, Reader};
use fledge_core::release::{Service, Traffic};

pub(crate) static TRAFFIC: Object = Object {
    fields: &[Field::new("istio", Kind::Object(&ISTIO), "Istio VirtualService and DestinationRule")],
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

pub(super) fn read(reader: &mut Reader, entries: &Entries<'_>, service: Option<&Service>) -> Option<Traffic> {
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
    Some(Traffic {
        virtual_service: virtual_service?.unwrap_or_else(|| service_name.clone()),
        destination_rule: destination_rule?.unwrap_or_else(|| service_name.clone()),
        route: route?,
    })
}
