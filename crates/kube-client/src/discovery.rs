//! Finding an optional API: a group that may or may not be installed in the cluster (Istio's, the Gateway API's).

use kube::core::{ApiResource, GroupVersionKind};

/// Whether `error` says the API group is not served (its CRDs are not installed).
fn is_missing_group(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Discovery(kube::error::DiscoveryError::MissingApiGroup(_)))
        || matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// The resource `kind` (plural `plural`) of `group` at the version the cluster prefers, or `None` when the group is
/// not served; any other failure of discovery is an error.
pub async fn optional_resource(
    client: &kube::Client,
    group: &str,
    kind: &str,
    plural: &str,
) -> Result<Option<ApiResource>, kube::Error> {
    match kube::discovery::group(client, group).await {
        Ok(found) => Ok(Some(ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, found.preferred_version_or_latest(), kind),
            plural,
        ))),
        Err(error) if is_missing_group(&error) => Ok(None),
        Err(error) => Err(error),
    }
}
