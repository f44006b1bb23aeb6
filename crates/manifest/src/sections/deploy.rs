//! `deploy:` how the new version's Deployment is built.

use crate::document::{Node, Value};
use crate::fields::{Field, Kind, Object};
use crate::reader::{Entries, Reader};
use fledge_core::Duration;
use fledge_core::release::{Deploy, TemplateSource};

const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(10 * 60);
const TEMPLATE_HINT: &str =
    "give a PodTemplateSpec: `metadata` (optional) and `spec` with a non-empty `containers` list";

pub(crate) static DEPLOY: Object = Object {
    fields: &[
        Field::new("image", Kind::Image, "the container image of the new version").required(),
        Field::new(
            "replicas",
            Kind::Integer { min: 1, max: 1000 },
            "number of pods of the new version; default: the live version's replica count",
        ),
        Field::new(
            "from",
            Kind::ResourceName,
            "Deployment whose pod template is copied; default: the live version's Deployment",
        ),
        Field::new(
            "template",
            Kind::PodTemplate,
            "a full PodTemplateSpec used instead of copying one (image and replicas above still apply)",
        ),
        Field::new(
            "container",
            Kind::Name,
            "the container whose image is replaced; default: the container named like the service, or the only one",
        ),
        Field::new(
            "progressDeadline",
            Kind::Duration,
            "how long the Deployment may go without progress before Kubernetes marks it failed",
        )
        .default("10m"),
    ],
    exactly_one_of: &[],
};

pub(super) fn read(reader: &mut Reader, entries: &Entries<'_>) -> Option<Deploy> {
    let image = entries.text(reader, "image").value();
    let replicas = entries.integer(reader, "replicas").optional();
    let from = entries.text(reader, "from").optional();
    let template = entries.get("template").map(|node| read_template(reader, node));
    let container = entries.text(reader, "container").optional();
    let progress_deadline = entries.duration(reader, "progressDeadline").or(DEFAULT_PROGRESS_DEADLINE);
    if let (Some(deadline), Some(node)) = (progress_deadline, entries.get("progressDeadline"))
        && deadline.is_zero()
    {
        reader.error(
            node,
            "`deploy.progressDeadline` must be longer than 0s",
            "give the rollout time to progress, like 10m",
        );
        return None;
    }
    let template_source = match (from?, template) {
        (Some(_), Some(_)) => {
            let node = entries.key("template").expect("present");
            reader.error(
                node,
                "`deploy.from` and `deploy.template` cannot both be given",
                "copy a Deployment with `from`, or give a `template`, not both",
            );
            return None;
        }
        (Some(deployment), None) => TemplateSource::Deployment(deployment),
        (None, Some(template)) => TemplateSource::Template(template?),
        (None, None) => TemplateSource::LiveVersion,
    };
    Some(Deploy {
        image: image?,
        replicas: replicas?.map(|replicas| u32::try_from(replicas).unwrap_or(u32::MAX)),
        template_source,
        container: container?,
        progress_deadline: progress_deadline?,
    })
}

/// A PodTemplateSpec, checked for the parts fledge relies on and converted to JSON.
fn read_template(reader: &mut Reader, node: &Node) -> Option<serde_json::Value> {
    let json = to_json(reader, node, "deploy.template")?;
    let containers =
        json.get("spec").and_then(|spec| spec.get("containers")).and_then(|containers| containers.as_array());
    match containers {
        Some(containers) if !containers.is_empty() => {
            let unnamed = containers
                .iter()
                .position(|container| !container.get("name").is_some_and(serde_json::Value::is_string));
            if let Some(index) = unnamed {
                reader.error(
                    node,
                    format!("`deploy.template.spec.containers[{index}]` has no `name`"),
                    "every container needs a name",
                );
                return None;
            }
            Some(json)
        }
        _ => {
            reader.error(node, "`deploy.template` has no `spec.containers`", TEMPLATE_HINT);
            None
        }
    }
}

/// Converts a YAML node to JSON for passing through to Kubernetes.
fn to_json(reader: &mut Reader, node: &Node, path: &str) -> Option<serde_json::Value> {
    Some(match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(value, _) => serde_json::Value::Bool(*value),
        Value::Integer(value, text) => match i64::try_from(*value) {
            Ok(value) => value.into(),
            Err(_) => {
                reader.error(node, format!("`{path}` is too large: {text}"), "Kubernetes numbers fit in 64 bits");
                return None;
            }
        },
        Value::Float(value, _) => match serde_json::Number::from_f64(*value) {
            Some(number) => serde_json::Value::Number(number),
            None => {
                reader.error(node, format!("`{path}` must be a finite number"), "write a plain number");
                return None;
            }
        },
        Value::String(text) => serde_json::Value::String(text.clone()),
        Value::Sequence(items) => {
            let items: Vec<Option<serde_json::Value>> = items
                .iter()
                .enumerate()
                .map(|(index, item)| to_json(reader, item, &format!("{path}[{index}]")))
                .collect();
            serde_json::Value::Array(items.into_iter().collect::<Option<_>>()?)
        }
        Value::Mapping(pairs) => {
            let mut object = serde_json::Map::new();
            for (key, value) in pairs {
                let key_text = reader.text(key, path)?;
                let value = to_json(reader, value, &format!("{path}.{key_text}"))?;
                object.insert(key_text, value);
            }
            serde_json::Value::Object(object)
        }
    })
}
