//! fledge-core's [`Workloads`] port, on a [`Deployer`].

use crate::Deployer;
use fledge_core::Release;
use fledge_core::ports::{LiveWorkload, PortError, Workloads};
use fledge_core::release::CleanupPolicy;

impl Workloads for Deployer {
    async fn preflight(&self, release: &Release, live_version: &str) -> Result<LiveWorkload, PortError> {
        self.check_service(&release.service.name).await?;
        let live = self.live_deployment(release, Some(live_version)).await?;
        let replicas = live.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1);
        Ok(LiveWorkload {
            deployment: live.metadata.name.unwrap_or_default(),
            replicas: u32::try_from(replicas).unwrap_or(0),
        })
    }

    async fn check_deploy(&self, release: &Release, live_version: &str) -> Result<(), PortError> {
        self.check_apply(release, Some(live_version)).await?;
        Ok(())
    }

    async fn deploy(&self, release: &Release, live_version: &str) -> Result<(), PortError> {
        self.apply(release, Some(live_version)).await?;
        Ok(())
    }

    async fn desired_replicas(&self, deployment: &str) -> Result<Option<u32>, PortError> {
        Ok(self.get(deployment).await?.map(|deployment| {
            let replicas = deployment.spec.and_then(|spec| spec.replicas).unwrap_or(1);
            u32::try_from(replicas).unwrap_or(0)
        }))
    }

    async fn retire(&self, deployment: &str, policy: CleanupPolicy) -> Result<(), PortError> {
        match policy {
            CleanupPolicy::Delete => self.delete(deployment).await?,
            CleanupPolicy::ScaleToZero => {
                // A Deployment that was never created (the apply failed) has nothing to scale.
                if self.get(deployment).await?.is_some() {
                    self.scale(deployment, 0).await?;
                }
            }
            CleanupPolicy::Keep => {}
        }
        Ok(())
    }
}
