//! `service:` which service is released, where, and the new version.

use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Reader};
use fledge_core::release::Service;

pub(crate) static SERVICE: Object = Object {
    fields: &[
        Field::new("name", Kind::Name, "the `app` label value, the Istio host's short name and the Deployment name prefix")
            .required(),
        Field::new("namespace", Kind::Name, "the namespace of the Service, Deployments and Istio resources").default("default"),
        Field::new(
            "version",
            Kind::Name,
            "the new version: `version` label of its pods, its DestinationRule subset name, the Deployment `<name>-<version>`",
        )
        .required(),
        Field::new(
            "previousVersion",
            Kind::Name,
            "the live version being replaced; default: the subset that carries 100% of the route today",
        ),
    ],
    exactly_one_of: &[],
};

pub(super) fn read(reader: &mut Reader, entries: &Entries<'_>) -> Option<Service> {
    let name = entries.text(reader, "name").value();
    let namespace = entries.text(reader, "namespace").or("default".to_owned());
    let version = entries.text(reader, "version").value();
    let previous_version = entries.text(reader, "previousVersion").optional();
    if let (Some(version), Some(Some(previous))) = (&version, &previous_version)
        && version == previous
    {
        let node = entries.get("previousVersion").expect("read above");
        reader.error(
            node,
            format!("`service.previousVersion` is `{previous}`, the same as `service.version`"),
            "a release replaces one version with another; omit previousVersion to use the live version",
        );
        return None;
    }
    Some(Service { name: name?, namespace: namespace?, version: version?, previous_version: previous_version? })
}
