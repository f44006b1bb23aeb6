//! The Deployer: the new version's Deployment in the cluster.

use crate::rollout::{self, RolloutStatus};
use crate::template::{self, FIELD_MANAGER, TemplateError};
use fledge_core::Release;
use fledge_core::release::TemplateSource;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

/// A failed operation on the cluster's Deployments and Services.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Reading the Service failed.
    #[error("failed to read Service {namespace}/{name}")]
    ReadService {
        /// Namespace.
        namespace: String,
        /// Service name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The Service does not exist.
    #[error("unable to find Service {namespace}/{name}: the release routes traffic to it, so it must exist")]
    ServiceNotFound {
        /// Namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// Reading a Deployment failed.
    #[error("failed to read Deployment {namespace}/{name}")]
    ReadDeployment {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A Deployment the release needs does not exist.
    #[error("unable to find Deployment {namespace}/{name}")]
    DeploymentNotFound {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        name: String,
    },
    /// Listing Deployments failed.
    #[error("failed to list Deployments with {selector} in {namespace}")]
    ListDeployments {
        /// Namespace.
        namespace: String,
        /// The label selector.
        selector: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// No live version to copy the pod template from.
    #[error(
        "unable to find the live version of {service} in {namespace}: no other Deployment has label app={service}; set service.previousVersion, deploy.from or deploy.template"
    )]
    NoLiveVersion {
        /// Service name.
        service: String,
        /// Namespace.
        namespace: String,
    },
    /// Several candidates for the live version.
    #[error("unable to tell which Deployment is the live version of {service}: {}; set service.previousVersion", candidates.join(", "))]
    SeveralLiveVersions {
        /// Service name.
        service: String,
        /// The Deployments found.
        candidates: Vec<String>,
    },
    /// The Deployment could not be built.
    #[error("failed to build Deployment {name}")]
    BuildDeployment {
        /// The Deployment's name.
        name: String,
        /// Why.
        #[source]
        source: TemplateError,
    },
    /// Applying the Deployment failed.
    #[error("failed to apply Deployment {namespace}/{name}")]
    Apply {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The API server would not accept the Deployment (a server-side dry run).
    #[error("the API server would not accept Deployment {namespace}/{name} (server-side dry run, nothing was stored)")]
    DryRun {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Scaling failed.
    #[error("failed to scale Deployment {namespace}/{name} to {replicas}")]
    Scale {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        name: String,
        /// The replica count asked for.
        replicas: i32,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Deleting failed.
    #[error("failed to delete Deployment {namespace}/{name}")]
    Delete {
        /// Namespace.
        namespace: String,
        /// Deployment name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Deploys versions of one service in one namespace.
#[derive(Clone)]
pub struct Deployer {
    deployments: Api<Deployment>,
    services: Api<Service>,
    namespace: String,
}

impl Deployer {
    /// The client it writes through (the release's fenced client).
    pub fn client(&self) -> kube::Client {
        self.deployments.clone().into_client()
    }

    /// A deployer for `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Deployer {
        Deployer {
            deployments: Api::namespaced(client.clone(), namespace),
            services: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
        }
    }

    /// Checks that the Service the release routes to exists.
    pub async fn check_service(&self, name: &str) -> Result<Service, DeployError> {
        let read =
            |source| DeployError::ReadService { namespace: self.namespace.clone(), name: name.to_owned(), source };
        self.services
            .get_opt(name)
            .await
            .map_err(read)?
            .ok_or_else(|| DeployError::ServiceNotFound { namespace: self.namespace.clone(), name: name.to_owned() })
    }

    /// A Deployment, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<Deployment>, DeployError> {
        self.deployments.get_opt(name).await.map_err(|source| DeployError::ReadDeployment {
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            source,
        })
    }

    async fn require(&self, name: &str) -> Result<Deployment, DeployError> {
        self.get(name)
            .await?
            .ok_or_else(|| DeployError::DeploymentNotFound { namespace: self.namespace.clone(), name: name.to_owned() })
    }

    /// The live version's Deployment: `<service>-<previousVersion>` when the version is known, otherwise the only
    /// other Deployment labelled `app=<service>`.
    pub async fn live_deployment(
        &self,
        release: &Release,
        previous_version: Option<&str>,
    ) -> Result<Deployment, DeployError> {
        let service = &release.service.name;
        if let Some(version) = previous_version.or(release.service.previous_version.as_deref()) {
            return self.require(&format!("{service}-{version}")).await;
        }
        let selector = format!("app={service}");
        let list = self.deployments.list(&ListParams::default().labels(&selector)).await.map_err(|source| {
            DeployError::ListDeployments { namespace: self.namespace.clone(), selector: selector.clone(), source }
        })?;
        let new_name = release.deployment_name();
        let mut candidates: Vec<Deployment> = list
            .items
            .into_iter()
            .filter(|deployment| deployment.metadata.name.as_deref() != Some(new_name.as_str()))
            .collect();
        match candidates.len() {
            0 => Err(DeployError::NoLiveVersion { service: service.clone(), namespace: self.namespace.clone() }),
            1 => Ok(candidates.remove(0)),
            _ => Err(DeployError::SeveralLiveVersions {
                service: service.clone(),
                candidates: candidates.iter().filter_map(|deployment| deployment.metadata.name.clone()).collect(),
            }),
        }
    }

    /// The Deployment whose pod template the release copies (`None` when the manifest has its own template), and
    /// the live Deployment for the replica count.
    async fn template_source(
        &self,
        release: &Release,
        previous_version: Option<&str>,
    ) -> Result<Option<Deployment>, DeployError> {
        match &release.deploy.template_source {
            TemplateSource::Deployment(name) => self.require(name).await.map(Some),
            TemplateSource::LiveVersion => self.live_deployment(release, previous_version).await.map(Some),
            TemplateSource::Template(_) => match self.live_deployment(release, previous_version).await {
                Ok(live) => Ok(Some(live)),
                Err(DeployError::NoLiveVersion { .. }) => Ok(None),
                Err(error) => Err(error),
            },
        }
    }

    /// Applies the new version's Deployment with server-side apply (manager `fledge`, forced: the new version's
    /// Deployment is fledge's). Applying the same release again changes nothing.
    pub async fn apply(&self, release: &Release, previous_version: Option<&str>) -> Result<Deployment, DeployError> {
        let (name, applied) = self.desired(release, previous_version).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.deployments.patch(&name, &params, &Patch::Apply(&applied)).await.map_err(|source| DeployError::Apply {
            namespace: self.namespace.clone(),
            name,
            source,
        })
    }

    /// Applies the new version's Deployment as a server-side dry run: the API server admits, defaults and validates
    /// it as it would [`apply`](Self::apply) it, and stores nothing.
    pub async fn check_apply(&self, release: &Release, previous_version: Option<&str>) -> Result<(), DeployError> {
        let (name, applied) = self.desired(release, previous_version).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        self.deployments
            .patch(&name, &params, &Patch::Apply(&applied))
            .await
            .map_err(|source| DeployError::DryRun { namespace: self.namespace.clone(), name, source })?;
        Ok(())
    }

    /// The new version's Deployment's name and the object to apply.
    async fn desired(
        &self,
        release: &Release,
        previous_version: Option<&str>,
    ) -> Result<(String, serde_json::Value), DeployError> {
        let name = release.deployment_name();
        let source = self.template_source(release, previous_version).await?;
        let mut desired = template::desired_deployment(release, source.as_ref())
            .map_err(|source| DeployError::BuildDeployment { name: name.clone(), source })?;
        desired.metadata.namespace = Some(self.namespace.clone());
        let mut applied = serde_json::to_value(&desired).unwrap_or_default();
        applied["apiVersion"] = "apps/v1".into();
        applied["kind"] = "Deployment".into();
        Ok((name, applied))
    }

    /// The rollout status of a Deployment, as `kubectl rollout status` decides it.
    pub async fn rollout_status(&self, name: &str) -> Result<RolloutStatus, DeployError> {
        Ok(rollout::status(&self.require(name).await?))
    }

    /// Scales a Deployment.
    pub async fn scale(&self, name: &str, replicas: i32) -> Result<(), DeployError> {
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.deployments
            .patch_scale(
                name,
                &PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PatchParams::default() },
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
            .map_err(|source| DeployError::Scale {
                namespace: self.namespace.clone(),
                name: name.to_owned(),
                replicas,
                source,
            })
    }

    /// Deletes a Deployment and, in the background, its pods. Deleting one that is already gone succeeds.
    pub async fn delete(&self, name: &str) -> Result<(), DeployError> {
        match self.deployments.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(source) => {
                Err(DeployError::Delete { namespace: self.namespace.clone(), name: name.to_owned(), source })
            }
        }
    }
}
