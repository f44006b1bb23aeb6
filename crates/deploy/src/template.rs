//! The new version's Deployment, built from the release and the Deployment whose pod template it copies.

use fledge_core::Release;
use fledge_core::release::TemplateSource;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

pub use fledge_core::FIELD_MANAGER;

/// Labels and annotations that belong to the copied Deployment's own rollout, not to the new version.
const NOT_COPIED: &[&str] = &["pod-template-hash", "kubectl.kubernetes.io/restartedAt"];

/// Why the new Deployment could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The release copies a Deployment that was not given.
    #[error("no Deployment to copy the pod template from")]
    NoSourceDeployment,
    /// The copied Deployment has no pod template.
    #[error("Deployment {name} has no pod template")]
    EmptyTemplate {
        /// The Deployment copied.
        name: String,
    },
    /// The manifest's template is not a PodTemplateSpec.
    #[error("deploy.template is not a valid PodTemplateSpec: {reason}")]
    InvalidTemplate {
        /// The deserializer's explanation.
        reason: String,
    },
    /// `deploy.container` names no container of the template.
    #[error("container {name} is not in the pod template (containers: {})", available.join(", "))]
    ContainerNotFound {
        /// The name asked for.
        name: String,
        /// The template's containers.
        available: Vec<String>,
    },
    /// Several containers could take the image and none is named like the service.
    #[error("unable to tell which container gets the new image (containers: {}); set deploy.container", available.join(", "))]
    AmbiguousContainer {
        /// The template's containers.
        available: Vec<String>,
    },
}

/// The Deployment to apply for `release`. `source` is the Deployment whose pod template is copied (the live
/// version's, or `deploy.from`); it is not needed when the manifest has its own template.
pub fn desired_deployment(release: &Release, source: Option<&Deployment>) -> Result<Deployment, TemplateError> {
    let service = &release.service;
    let mut template = match &release.deploy.template_source {
        TemplateSource::Template(json) => serde_json::from_value::<PodTemplateSpec>(json.clone())
            .map_err(|error| TemplateError::InvalidTemplate { reason: error.to_string() })?,
        TemplateSource::LiveVersion | TemplateSource::Deployment(_) => {
            let source = source.ok_or(TemplateError::NoSourceDeployment)?;
            source.spec.as_ref().map(|spec| spec.template.clone()).ok_or_else(|| TemplateError::EmptyTemplate {
                name: source.metadata.name.clone().unwrap_or_default(),
            })?
        }
    };
    let labels =
        BTreeMap::from([("app".to_owned(), service.name.clone()), ("version".to_owned(), service.version.clone())]);

    let metadata = template.metadata.get_or_insert_with(ObjectMeta::default);
    let template_labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    template_labels.retain(|key, _| !NOT_COPIED.contains(&key.as_str()));
    template_labels.extend(labels.clone());
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.retain(|key, _| !NOT_COPIED.contains(&key.as_str()));
    }
    metadata.name = None;
    metadata.namespace = None;
    metadata.creation_timestamp = None;

    let spec = template.spec.get_or_insert_with(Default::default);
    let available: Vec<String> = spec.containers.iter().map(|container| container.name.clone()).collect();
    let index = match &release.deploy.container {
        Some(name) => available
            .iter()
            .position(|candidate| candidate == name)
            .ok_or_else(|| TemplateError::ContainerNotFound { name: name.clone(), available: available.clone() })?,
        None => match available.iter().position(|candidate| *candidate == service.name) {
            Some(index) => index,
            None if available.len() == 1 => 0,
            None => return Err(TemplateError::AmbiguousContainer { available }),
        },
    };
    spec.containers[index].image = Some(release.deploy.image.clone());

    let source_spec = source.and_then(|source| source.spec.as_ref());
    let replicas = release
        .deploy
        .replicas
        .map(|replicas| replicas as i32)
        .or_else(|| source_spec.and_then(|spec| spec.replicas))
        .unwrap_or(1);
    let mut deployment_labels = labels.clone();
    deployment_labels.insert("app.kubernetes.io/managed-by".to_owned(), FIELD_MANAGER.to_owned());
    Ok(Deployment {
        metadata: ObjectMeta {
            name: Some(release.deployment_name()),
            namespace: Some(service.namespace.clone()),
            labels: Some(deployment_labels),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels), match_expressions: None },
            template,
            progress_deadline_seconds: Some(
                i32::try_from(release.deploy.progress_deadline.as_std().as_secs()).unwrap_or(i32::MAX),
            ),
            strategy: source_spec.and_then(|spec| spec.strategy.clone()),
            min_ready_seconds: source_spec.and_then(|spec| spec.min_ready_seconds),
            revision_history_limit: source_spec.and_then(|spec| spec.revision_history_limit),
            paused: None,
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn release(extra: &str) -> Release {
        let text = format!(
            "apiVersion: fledge/v1\nkind: Release\nservice: {{name: reviews, namespace: bookinfo, version: v2}}\ndeploy:\n  image: registry.example.com/reviews:2.0.0\n{extra}"
        );
        fledge_manifest_parse(&text)
    }

    fn fledge_manifest_parse(text: &str) -> Release {
        // The deploy crate does not depend on the manifest crate outside tests.
        fledge_manifest::parse(text).unwrap().release
    }

    fn live(containers: &[&str]) -> Deployment {
        let labels = BTreeMap::from([
            ("app".to_owned(), "reviews".to_owned()),
            ("version".to_owned(), "v1".to_owned()),
            ("pod-template-hash".to_owned(), "5d4f8b7c9".to_owned()),
            ("team".to_owned(), "books".to_owned()),
        ]);
        Deployment {
            metadata: ObjectMeta { name: Some("reviews-v1".into()), ..ObjectMeta::default() },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                min_ready_seconds: Some(5),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }),
                    spec: Some(PodSpec {
                        containers: containers
                            .iter()
                            .map(|name| Container {
                                name: (*name).to_owned(),
                                image: Some(format!("{name}:1")),
                                ..Container::default()
                            })
                            .collect(),
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn copies_the_live_template_with_the_new_image_labels_and_replicas() {
        let deployment = desired_deployment(&release(""), Some(&live(&["reviews", "log-shipper"]))).unwrap();
        assert_eq!(deployment.metadata.name.as_deref(), Some("reviews-v2"));
        let spec = deployment.spec.unwrap();
        assert_eq!(spec.replicas, Some(3), "the live version's replica count");
        assert_eq!(spec.min_ready_seconds, Some(5));
        assert_eq!(spec.progress_deadline_seconds, Some(600));
        let selector = spec.selector.match_labels.unwrap();
        assert_eq!(selector, BTreeMap::from([("app".into(), "reviews".into()), ("version".into(), "v2".into())]));
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels.get("version").map(String::as_str), Some("v2"));
        assert_eq!(labels.get("team").map(String::as_str), Some("books"), "other labels are kept");
        assert!(!labels.contains_key("pod-template-hash"));
        let containers = spec.template.spec.unwrap().containers;
        assert_eq!(containers[0].image.as_deref(), Some("registry.example.com/reviews:2.0.0"));
        assert_eq!(containers[1].image.as_deref(), Some("log-shipper:1"), "other containers keep their image");
    }

    #[test]
    fn picks_the_container_by_name_or_refuses_to_guess() {
        let error = desired_deployment(&release(""), Some(&live(&["app", "sidecar"]))).unwrap_err();
        assert_eq!(error, TemplateError::AmbiguousContainer { available: vec!["app".into(), "sidecar".into()] });
        let chosen = desired_deployment(&release("  container: sidecar\n"), Some(&live(&["app", "sidecar"]))).unwrap();
        assert_eq!(
            chosen.spec.unwrap().template.spec.unwrap().containers[1].image.as_deref(),
            Some("registry.example.com/reviews:2.0.0")
        );
        let missing = desired_deployment(&release("  container: nope\n"), Some(&live(&["app"]))).unwrap_err();
        assert!(matches!(missing, TemplateError::ContainerNotFound { .. }));
        let only = desired_deployment(&release("  replicas: 2\n"), Some(&live(&["app"]))).unwrap();
        assert_eq!(only.spec.as_ref().unwrap().replicas, Some(2));
    }

    #[test]
    fn uses_the_manifests_template_without_a_live_version() {
        let template = "  template:\n    metadata: {labels: {team: books}}\n    spec:\n      containers: [{name: reviews, image: placeholder}]\n";
        let deployment = desired_deployment(&release(template), None).unwrap();
        let spec = deployment.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(
            spec.template.spec.unwrap().containers[0].image.as_deref(),
            Some("registry.example.com/reviews:2.0.0")
        );
        assert_eq!(desired_deployment(&release(""), None).unwrap_err(), TemplateError::NoSourceDeployment);
    }
}
