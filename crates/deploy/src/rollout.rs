//! Whether a Deployment has rolled out, decided as `kubectl rollout status` decides it: from the observed
//! generation and the replica counts, never from the Progressing reason alone (it is stale right after an apply).

use k8s_openapi::api::apps::v1::Deployment;

/// A Deployment's rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStatus {
    /// Every replica is updated and available.
    Complete,
    /// Still going, with kubectl's words for why.
    Progressing(String),
    /// Kubernetes gave up: the progress deadline passed.
    Failed(String),
}

/// The rollout status of a Deployment.
pub fn status(deployment: &Deployment) -> RolloutStatus {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
    let Some(status) = &deployment.status else {
        return RolloutStatus::Progressing("Waiting for deployment spec update to be observed...".into());
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return RolloutStatus::Progressing("Waiting for deployment spec update to be observed...".into());
    }
    let deadline_exceeded = status.conditions.iter().flatten().any(|condition| {
        condition.type_ == "Progressing" && condition.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline_exceeded {
        return RolloutStatus::Failed(format!("deployment \"{name}\" exceeded its progress deadline"));
    }
    let desired = deployment.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        return RolloutStatus::Progressing(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return RolloutStatus::Progressing(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutStatus::Progressing(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutStatus::Complete
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(
        generation: i64,
        observed: i64,
        desired: i32,
        updated: i32,
        replicas: i32,
        available: i32,
        reason: Option<&str>,
    ) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("reviews-v2".into()),
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec { replicas: Some(desired), ..DeploymentSpec::default() }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(updated),
                replicas: Some(replicas),
                available_replicas: Some(available),
                conditions: reason.map(|reason| {
                    vec![DeploymentCondition {
                        type_: "Progressing".into(),
                        status: "True".into(),
                        reason: Some(reason.into()),
                        ..DeploymentCondition::default()
                    }]
                }),
                ..DeploymentStatus::default()
            }),
        }
    }

    #[test]
    fn a_stale_complete_reason_right_after_an_apply_is_not_completion() {
        // The new generation is not observed yet: the NewReplicaSetAvailable reason belongs to the old template.
        assert!(matches!(
            status(&deployment(2, 1, 3, 3, 3, 3, Some("NewReplicaSetAvailable"))),
            RolloutStatus::Progressing(_)
        ));
        assert_eq!(status(&deployment(2, 2, 3, 3, 3, 3, Some("NewReplicaSetAvailable"))), RolloutStatus::Complete);
    }

    #[test]
    fn counts_decide_like_kubectl() {
        assert_eq!(
            status(&deployment(1, 1, 3, 1, 3, 1, None)),
            RolloutStatus::Progressing(
                "Waiting for deployment \"reviews-v2\" rollout to finish: 1 out of 3 new replicas have been updated..."
                    .into()
            )
        );
        assert_eq!(
            status(&deployment(1, 1, 3, 3, 4, 3, None)),
            RolloutStatus::Progressing(
                "Waiting for deployment \"reviews-v2\" rollout to finish: 1 old replicas are pending termination..."
                    .into()
            )
        );
        assert_eq!(
            status(&deployment(1, 1, 3, 3, 3, 2, None)),
            RolloutStatus::Progressing(
                "Waiting for deployment \"reviews-v2\" rollout to finish: 2 of 3 updated replicas are available..."
                    .into()
            )
        );
        assert_eq!(
            status(&deployment(1, 1, 3, 1, 3, 0, Some("ProgressDeadlineExceeded"))),
            RolloutStatus::Failed("deployment \"reviews-v2\" exceeded its progress deadline".into())
        );
    }
}
