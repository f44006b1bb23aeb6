//! `stages:` the traffic stages.

use crate::document::Value;
use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Read, Reader};
use fledge_core::release::Stage;
use fledge_core::{Duration, Weight};

pub(crate) static STAGE: Object = Object {
    fields: &[
        Field::new(
            "weight",
            Kind::Integer { min: 1, max: 100 },
            "percent of the route's traffic sent to the new version",
        )
        .required(),
        Field::new("duration", Kind::Duration, "how long the stage's analysis runs").required(),
        Field::new(
            "approval",
            Kind::Bool,
            "after this stage passes, stop (exit code 4) until `fledge run --approve` continues",
        )
        .default("false"),
    ],
    exactly_one_of: &[],
};

fn default_stages() -> Vec<Stage> {
    [10, 50, 100]
        .into_iter()
        .map(|weight| Stage {
            weight: Weight::new(weight).expect("constant in range"),
            duration: Duration::from_secs(120),
            approval: false,
        })
        .collect()
}

pub(super) fn read(reader: &mut Reader, top: &Entries<'_>) -> Option<Vec<Stage>> {
    let items = match top.list(reader, "stages", "write a list of stages, like `- {weight: 10, duration: 2m}`") {
        Read::Absent => return Some(default_stages()),
        Read::Invalid => return None,
        Read::Value(items) => items,
    };
    if items.is_empty() {
        let node = top.get("stages").expect("present");
        reader.error(
            node,
            "`stages` is empty",
            "list at least one stage, or omit `stages` for the defaults (10%, 50%, 100%, 2m each)",
        );
        return None;
    }
    let mut stages = Vec::new();
    let mut valid = true;
    let mut previous: Option<(usize, i64)> = None;
    for (index, item) in items.iter().enumerate() {
        let path = format!("stages[{index}]");
        let Some(entries) = reader.object(item, &path, &STAGE) else {
            valid = false;
            continue;
        };
        let weight = entries.integer(reader, "weight").value();
        let duration = entries.duration(reader, "duration").value();
        let approval = entries.bool(reader, "approval").or(false);
        if let Some(weight) = weight {
            if let Some((previous_index, previous_weight)) = previous
                && weight <= previous_weight
            {
                reader.error(
                    entries.get("weight").expect("read"),
                    format!(
                        "`{path}.weight` is {weight}, not above `stages[{previous_index}].weight` ({previous_weight})"
                    ),
                    "weights must rise strictly from stage to stage",
                );
                valid = false;
            }
            previous = Some((index, weight));
        }
        if let (Some(duration), Some(node)) = (duration, entries.get("duration"))
            && duration.is_zero()
        {
            reader.error(
                node,
                format!("`{path}.duration` must be longer than 0s"),
                "a stage needs time for at least one check, like 2m",
            );
            valid = false;
        }
        match (weight.and_then(|weight| Weight::new(weight).ok()), duration, approval) {
            (Some(weight), Some(duration), Some(approval)) => stages.push(Stage { weight, duration, approval }),
            _ => valid = false,
        }
    }
    valid.then_some(stages)
}

/// Every stage must last at least one analysis interval, or it would end before its first check. Checked on the
/// written stages even when other stage fields are invalid, so the problem is reported in the same pass.
pub(super) fn check_against_interval(reader: &mut Reader, top: &Entries<'_>, interval: Duration) {
    let Some(Value::Sequence(items)) = top.get("stages").map(|node| &node.value) else {
        let shortest = default_stages().iter().map(|stage| stage.duration).min().unwrap_or(Duration::ZERO);
        if shortest < interval {
            let node = top.get("analysis").unwrap_or(top.node());
            reader.error(
                node,
                format!("`analysis.interval` ({interval}) is longer than the default stages' duration ({shortest})"),
                "write `stages` explicitly, or shorten the interval",
            );
        }
        return;
    };
    for (index, item) in items.iter().enumerate() {
        let Value::Mapping(pairs) = &item.value else { continue };
        let duration_node =
            pairs.iter().find(|(key, _)| key.value.scalar_text() == Some("duration")).map(|(_, value)| value);
        let Some(node) = duration_node else { continue };
        let Value::String(text) = &node.value else { continue };
        if let Ok(duration) = Duration::parse(text)
            && !duration.is_zero()
            && duration < interval
        {
            reader.error(
                node,
                format!("`stages[{index}].duration` is {duration}, shorter than `analysis.interval` ({interval})"),
                "a stage must last at least one check interval; lengthen the stage or shorten the interval",
            );
        }
    }
}
