//! `gate:` the crash-loop gate.

use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Reader};
use fledge_core::Duration;
use fledge_core::release::Gate;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DEFAULT_STABLE_FOR: Duration = Duration::from_secs(10);
const DEFAULT_PENDING_GRACE: Duration = Duration::from_secs(120);

pub(crate) static GATE: Object = Object {
    fields: &[
        Field::new("timeout", Kind::Duration, "every new pod must be Ready and stable within this time").default("5m"),
        Field::new("stableFor", Kind::Duration, "how long every pod must stay Ready without interruption")
            .default("10s"),
        Field::new(
            "pendingGrace",
            Kind::Duration,
            "how long a pod may stay unschedulable, pulling its image or creating containers before the gate fails",
        )
        .default("2m"),
        Field::new(
            "maxRestarts",
            Kind::Integer { min: 0, max: 1000 },
            "container restarts tolerated per container, counted from the gate's start",
        )
        .default("0"),
        Field::new(
            "ignoreRestartsOf",
            Kind::List(&Kind::Name),
            "containers whose restarts alone do not fail the gate (for example istio-proxy)",
        )
        .default("[]"),
    ],
    exactly_one_of: &[],
};

pub(super) fn read(reader: &mut Reader, entries: &Entries<'_>) -> Option<Gate> {
    let timeout = entries.duration(reader, "timeout").or(DEFAULT_TIMEOUT);
    let stable_for = entries.duration(reader, "stableFor").or(DEFAULT_STABLE_FOR);
    let pending_grace = entries.duration(reader, "pendingGrace").or(DEFAULT_PENDING_GRACE);
    let max_restarts = entries.integer(reader, "maxRestarts").or(0);
    let ignore_restarts_of = read_names(reader, entries, "ignoreRestartsOf");
    if let (Some(timeout), Some(stable_for)) = (timeout, stable_for)
        && stable_for >= timeout
    {
        let node = entries.get("stableFor").or(entries.get("timeout")).expect("one of them is set");
        reader.error(
            node,
            format!("`gate.stableFor` ({stable_for}) must be shorter than `gate.timeout` ({timeout})"),
            "pods need time to start before they can be stable: make the timeout longer than stableFor",
        );
        return None;
    }
    Some(Gate {
        timeout: timeout?,
        stable_for: stable_for?,
        pending_grace: pending_grace?,
        max_restarts: u32::try_from(max_restarts?).ok()?,
        ignore_restarts_of: ignore_restarts_of?,
    })
}

/// A list of container names.
fn read_names(reader: &mut Reader, entries: &Entries<'_>, name: &str) -> Option<Vec<String>> {
    let items = entries.list(reader, name, "write a list of container names, like [istio-proxy]").or(&[])?;
    let path = entries.path_of(name);
    let names: Vec<Option<String>> =
        items.iter().enumerate().map(|(index, item)| reader.name(item, &format!("{path}[{index}]"))).collect();
    names.into_iter().collect()
}
