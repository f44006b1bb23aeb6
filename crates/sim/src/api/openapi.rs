//! A minimal OpenAPI v3 index: enough for kubectl to see that the server validates fields itself
//! (`fieldValidation`), so `kubectl apply --server-side`, `create -f` and `replace -f` work with their default
//! validation. Schemas are not served.

use crate::resources::{self, ResourceType};
use serde_json::{Map, Value, json};

fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// Every group version served, as `(group, version)`.
fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut all = vec![("", "v1")];
    for (group, versions) in resources::groups() {
        all.extend(versions.into_iter().map(|version| (group, version)));
    }
    all
}

/// `/openapi/v3`: the index of per-group-version documents.
pub fn index() -> Value {
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .map(|(group, version)| {
            let path = group_version_path(group, version);
            let url = format!("/openapi/v3/{path}?hash=fledge-sim");
            (path, json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

fn operation(resource: &ResourceType, group: &str, version: &str) -> Value {
    json!({
        "x-kubernetes-group-version-kind": { "group": group, "version": version, "kind": resource.kind },
        "parameters": [
            { "name": "fieldManager", "in": "query", "schema": { "type": "string" } },
            { "name": "fieldValidation", "in": "query", "schema": { "type": "string" } },
            { "name": "force", "in": "query", "schema": { "type": "boolean" } },
            { "name": "dryRun", "in": "query", "schema": { "type": "string" } },
        ],
        "responses": { "200": { "description": "OK" } },
    })
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`: the object paths of the group version with their
/// PATCH, PUT and POST operations.
pub fn document(path: &str) -> Option<Value> {
    let (group, version) =
        group_versions().into_iter().find(|(group, version)| group_version_path(group, version) == path)?;
    let mut paths = Map::new();
    for (_, resource) in
        resources::all().filter(|(_, resource)| resource.group == group && resource.versions.contains(&version))
    {
        let prefix = format!("/{}", group_version_path(group, version));
        let (collection, object) = if resource.namespaced {
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", resource.plural),
                format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", resource.plural),
            )
        } else {
            (format!("{prefix}/{}", resource.plural), format!("{prefix}/{}/{{name}}", resource.plural))
        };
        paths.insert(collection, json!({ "post": operation(resource, group, version) }));
        paths.insert(
            object,
            json!({ "patch": operation(resource, group, version), "put": operation(resource, group, version) }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": format!("v{}.{}.0", super::discovery::KUBERNETES_VERSION.0, super::discovery::KUBERNETES_VERSION.1) },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_declare_field_validation() {
        assert!(
            index()["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        let apps = document("apis/apps/v1").unwrap();
        let patch = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(patch["parameters"].as_array().unwrap().iter().any(|parameter| parameter["name"] == "fieldValidation"));
        assert!(document("apis/nothing/v1").is_none());
    }
}
