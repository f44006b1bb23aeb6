//! Discovery documents: `/version`, the legacy `/api`, `/apis`, `/api/v1`, `/apis/GROUP[/VERSION]` documents and the
//! aggregated discovery (`apidiscovery.k8s.io/v2`) that current kubectl asks for first.

use crate::resources::{self, ResourceType, Subresource};
use serde_json::{Value, json};

/// The Kubernetes version the simulator reports.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "32");

/// The Content-Type of aggregated discovery responses.
pub const AGGREGATED_CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `/version`.
pub fn version() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "gitVersion": format!("v{major}.{minor}.0-fledge-sim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Whether an Accept header asks for aggregated discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.contains("as=APIGroupDiscoveryList") && accept.contains("v=v2")
}

fn verbs(resource: &ResourceType) -> Vec<&'static str> {
    if resource.writable {
        vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    } else {
        vec!["get", "list", "watch"]
    }
}

fn subresource_kind(resource: &ResourceType, subresource: Subresource) -> (&'static str, &'static str, &'static str) {
    match subresource {
        Subresource::Scale => ("autoscaling", "v1", "Scale"),
        Subresource::Status | Subresource::Log => (resource.group, "", resource.kind),
    }
}

fn subresource_verbs(subresource: Subresource) -> Vec<&'static str> {
    match subresource {
        Subresource::Log => vec!["get"],
        Subresource::Status | Subresource::Scale => vec!["get", "patch", "update"],
    }
}

fn served_in(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceType> {
    resources::all()
        .map(|(_, resource)| resource)
        .filter(move |resource| resource.group == group && resource.versions.contains(&version))
}

/// `/api`: the core group's versions.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443" }],
    })
}

fn group_json(name: &str, versions: &[&str]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|version| json!({ "groupVersion": format!("{name}/{version}"), "version": version }))
        .collect();
    json!({
        "name": name,
        "versions": entries,
        "preferredVersion": { "groupVersion": format!("{name}/{}", versions[0]), "version": versions[0] },
    })
}

/// `/apis`: every named group.
pub fn groups() -> Value {
    let groups: Vec<Value> = resources::groups().iter().map(|(name, versions)| group_json(name, versions)).collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/GROUP`.
pub fn group(name: &str) -> Value {
    let groups = resources::groups();
    let versions =
        groups.iter().find(|(group, _)| *group == name).map(|(_, versions)| versions.clone()).unwrap_or_default();
    let mut group = group_json(name, &versions);
    group["kind"] = json!("APIGroup");
    group["apiVersion"] = json!("v1");
    group
}

/// `/api/v1` or `/apis/GROUP/VERSION`: the resources of one group version.
pub fn resource_list(group: &str, version: &str) -> Value {
    let mut entries = Vec::new();
    for resource in served_in(group, version) {
        let mut entry = json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": verbs(resource),
        });
        if !resource.short_names.is_empty() {
            entry["shortNames"] = json!(resource.short_names);
        }
        if !resource.categories.is_empty() {
            entry["categories"] = json!(resource.categories);
        }
        entries.push(entry);
        for subresource in resource.subresources {
            let (sub_group, sub_version, kind) = subresource_kind(resource, *subresource);
            let mut entry = json!({
                "name": format!("{}/{}", resource.plural, subresource.name()),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": kind,
                "verbs": subresource_verbs(*subresource),
            });
            if !sub_version.is_empty() {
                entry["group"] = json!(sub_group);
                entry["version"] = json!(sub_version);
            }
            entries.push(entry);
        }
    }
    let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries })
}

fn aggregated_resource(resource: &ResourceType, version: &str) -> Value {
    let subresources: Vec<Value> = resource
        .subresources
        .iter()
        .map(|subresource| {
            let (sub_group, sub_version, kind) = subresource_kind(resource, *subresource);
            let sub_version = if sub_version.is_empty() { version } else { sub_version };
            json!({
                "subresource": subresource.name(),
                "responseKind": { "group": sub_group, "version": sub_version, "kind": kind },
                "verbs": subresource_verbs(*subresource),
            })
        })
        .collect();
    let mut entry = json!({
        "resource": resource.plural,
        "responseKind": { "group": resource.group, "version": version, "kind": resource.kind },
        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": resource.singular,
        "verbs": verbs(resource),
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

fn aggregated_group(name: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            let resources: Vec<Value> =
                served_in(name, version).map(|resource| aggregated_resource(resource, version)).collect();
            json!({ "version": version, "resources": resources, "freshness": "Current" })
        })
        .collect();
    json!({ "metadata": { "name": name, "creationTimestamp": null }, "versions": versions })
}

/// Aggregated discovery for `/api` (the core group) or `/apis` (every named group).
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group("", &["v1"])]
    } else {
        resources::groups().iter().map(|(name, versions)| aggregated_group(name, versions)).collect()
    };
    json!({ "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_every_resource_and_subresource() {
        let core = resource_list("", "v1");
        let names: Vec<&str> =
            core["resources"].as_array().unwrap().iter().map(|entry| entry["name"].as_str().unwrap()).collect();
        for name in ["pods", "pods/log", "pods/status", "namespaces", "services", "configmaps", "events", "nodes"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let apps = resource_list("apps", "v1");
        let scale =
            apps["resources"].as_array().unwrap().iter().find(|entry| entry["name"] == "deployments/scale").unwrap();
        assert_eq!((scale["group"].as_str(), scale["kind"].as_str()), (Some("autoscaling"), Some("Scale")));
        let aggregated = aggregated(false);
        let istio = aggregated["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["metadata"]["name"] == "networking.istio.io")
            .unwrap();
        assert_eq!(istio["versions"].as_array().unwrap().len(), 3);
        assert_eq!(istio["versions"][0]["resources"][0]["shortNames"], json!(["vs"]));
        let gateway_api = aggregated["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["metadata"]["name"] == "gateway.networking.k8s.io")
            .unwrap();
        let served: Vec<&str> = gateway_api["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|resource| resource["resource"].as_str().unwrap())
            .collect();
        assert_eq!(served, ["gatewayclasses", "gateways", "httproutes"]);
        assert_eq!(gateway_api["versions"][0]["resources"][0]["scope"], "Cluster");
        assert_eq!(gateway_api["versions"][0]["resources"][2]["subresources"][0]["subresource"], "status");
    }
}
