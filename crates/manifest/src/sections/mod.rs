//! One reader per manifest section, each with its field table, and the top-level walk that joins them.
//!
//! ```text
//! node tree ──▶ read_release ──▶ service, deploy, gate, traffic, prometheus, analysis, stages, promote, rollback, notify
//!                    │                                   (each: field table → typed value, defaults filled)
//!                    └──▶ rules across sections (interval ≤ stage durations, ...) ──▶ Release
//! ```

mod analysis;
mod deploy;
mod gate;
mod lifecycle;
mod prometheus;
mod service;
mod stages;
mod traffic;

use crate::document::Node;
use crate::fields::{Field, Kind, Object};
use crate::reader::{Read, Reader};
use fledge_core::Release;

/// The manifest's `apiVersion`.
pub const API_VERSION: &str = "fledge/v1";
/// The manifest's `kind`.
pub const KIND: &str = "Release";

pub(crate) static RELEASE: Object = Object {
    fields: &[
        Field::new("apiVersion", Kind::Choice(&[API_VERSION]), "the manifest format version: fledge/v1").required(),
        Field::new("kind", Kind::Choice(&[KIND]), "the kind of manifest: Release").required(),
        Field::new("service", Kind::Object(&service::SERVICE), "which service is released, where, and the new version")
            .required(),
        Field::new("deploy", Kind::Object(&deploy::DEPLOY), "how the new version's Deployment is built").required(),
        Field::new(
            "gate",
            Kind::Object(&gate::GATE),
            "the crash-loop gate: pod health before any traffic and during every stage",
        ),
        Field::new("traffic", Kind::Object(&traffic::TRAFFIC), "the Istio resources whose weights fledge shifts"),
        Field::new("prometheus", Kind::Object(&prometheus::PROMETHEUS), "where metrics are read"),
        Field::new("analysis", Kind::Object(&analysis::ANALYSIS), "how metrics are judged during the stages"),
        Field::new(
            "stages",
            Kind::List(&Kind::Object(&stages::STAGE)),
            "the traffic stages, with strictly increasing weights",
        )
        .default("[{weight: 10, duration: 2m}, {weight: 50, duration: 2m}, {weight: 100, duration: 2m}]"),
        Field::new("promote", Kind::Object(&lifecycle::PROMOTE), "what happens after the last stage passes"),
        Field::new("rollback", Kind::Object(&lifecycle::ROLLBACK), "what happens to the new version on rollback"),
        Field::new(
            "notify",
            Kind::List(&Kind::Object(&lifecycle::NOTIFICATION)),
            "webhooks told about the release's progress",
        )
        .default("[]"),
    ],
    exactly_one_of: &[],
};

/// Reads the whole manifest; diagnostics go to the reader. `None` when any section is invalid.
pub(crate) fn read_release(reader: &mut Reader, root: &Node) -> Option<Release> {
    let top = reader.object(root, "", &RELEASE)?;
    let api_version = top.choice(reader, "apiVersion").value();
    let kind = top.choice(reader, "kind").value();
    let service = section(reader, &top, "service").and_then(|entries| service::read(reader, &entries));
    let deploy = section(reader, &top, "deploy").and_then(|entries| deploy::read(reader, &entries));
    let gate = optional_section(reader, &top, "gate", gate::read);
    let traffic =
        optional_section(reader, &top, "traffic", |reader, entries| traffic::read(reader, entries, service.as_ref()));
    let prometheus = optional_section(reader, &top, "prometheus", prometheus::read);
    let analysis = optional_section(reader, &top, "analysis", analysis::read);
    let stages = stages::read(reader, &top);
    let promote = optional_section(reader, &top, "promote", lifecycle::read_promote);
    let rollback = optional_section(reader, &top, "rollback", lifecycle::read_rollback);
    let notify = lifecycle::read_notify(reader, &top);

    if let Some(interval) = analysis::interval(&top) {
        stages::check_against_interval(reader, &top, interval);
    }
    let _ = (api_version?, kind?);
    Some(Release {
        service: service?,
        deploy: deploy?,
        gate: gate?,
        traffic: traffic?,
        prometheus: prometheus?,
        analysis: analysis?,
        stages: stages?,
        promote: promote?,
        rollback: rollback?,
        notify: notify?,
    })
}

/// A required section's entries.
fn section<'n>(
    reader: &mut Reader,
    top: &crate::reader::Entries<'n>,
    name: &str,
) -> Option<crate::reader::Entries<'n>> {
    top.object(reader, name).value()
}

/// An optional section: its reader's result, or the reader's defaults when the section is absent (read from an
/// empty mapping, so defaults live in one place: the section's reader).
fn optional_section<T>(
    reader: &mut Reader,
    top: &crate::reader::Entries<'_>,
    name: &str,
    read: impl FnOnce(&mut Reader, &crate::reader::Entries<'_>) -> Option<T>,
) -> Option<T> {
    match top.object(reader, name) {
        Read::Value(entries) => read(reader, &entries),
        Read::Invalid => None,
        Read::Absent => {
            let empty =
                Node { location: top.node().location, width: 1, value: crate::document::Value::Mapping(Vec::new()) };
            let object = match &RELEASE.field(name).expect("section is in the table").kind {
                Kind::Object(object) => *object,
                _ => unreachable!("sections are objects"),
            };
            let entries = reader.object(&empty, name, object)?;
            read(reader, &entries)
        }
    }
}
