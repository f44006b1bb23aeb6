//! What a request path names: discovery documents, or a resource collection, object or subresource.

use crate::resources::{self, ResourceId, Subresource};

/// A parsed API path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiPath {
    /// `/version`
    Version,
    /// `/healthz`, `/livez`, `/readyz`
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/api/v1`
    CoreResources,
    /// `/apis/GROUP`
    Group(String),
    /// `/apis/GROUP/VERSION`
    GroupResources(String, String),
    /// `/openapi/v3` (the index) or `/openapi/v3/GROUP-VERSION-PATH` (a document).
    OpenApi(Option<String>),
    /// A collection, object or subresource.
    Resource(ResourceRequest),
}

/// A request for a resource collection, object or subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    /// The type.
    pub resource: ResourceId,
    /// The version named in the URL.
    pub version: String,
    /// The namespace in the URL (`None` for cluster-scoped types and all-namespace lists).
    pub namespace: Option<String>,
    /// The object's name (`None` for collections).
    pub name: Option<String>,
    /// The subresource.
    pub subresource: Option<Subresource>,
}

/// Parses a path; `None` when it names nothing the server serves.
pub fn parse(path: &str) -> Option<ApiPath> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|segment| !segment.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Some(ApiPath::Version),
        ["healthz" | "livez" | "readyz", ..] => Some(ApiPath::Health),
        ["openapi", "v3"] => Some(ApiPath::OpenApi(None)),
        ["openapi", "v3", rest @ ..] => Some(ApiPath::OpenApi(Some(rest.join("/")))),
        ["api"] => Some(ApiPath::CoreVersions),
        ["api", "v1"] => Some(ApiPath::CoreResources),
        ["api", "v1", rest @ ..] => resource_path("", "v1", rest).map(ApiPath::Resource),
        ["apis"] => Some(ApiPath::Groups),
        ["apis", group] => {
            resources::groups().iter().any(|(name, _)| name == group).then(|| ApiPath::Group((*group).to_owned()))
        }
        ["apis", group, version] => {
            let served = resources::groups().iter().any(|(name, versions)| name == group && versions.contains(version));
            served.then(|| ApiPath::GroupResources((*group).to_owned(), (*version).to_owned()))
        }
        ["apis", group, version, rest @ ..] => resource_path(group, version, rest).map(ApiPath::Resource),
        _ => None,
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Option<ResourceRequest> {
    let request = |plural: &str, namespace: Option<&str>, name: Option<&str>, subresource: Option<&str>| {
        let resource = resources::find(group, version, plural)?;
        let resource_type = resource.resource_type();
        if namespace.is_some() && !resource_type.namespaced {
            return None;
        }
        if name.is_none() && subresource.is_some() {
            return None;
        }
        let subresource = match subresource {
            None => None,
            Some(name) => {
                Some(resource_type.subresources.iter().copied().find(|subresource| subresource.name() == name)?)
            }
        };
        Some(ResourceRequest {
            resource,
            version: version.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource,
        })
    };
    match rest {
        // `namespaces/NAME[/SUB]` is the Namespace object itself; `namespaces/NS/PLURAL...` is inside it.
        ["namespaces", name] if group.is_empty() => request("namespaces", None, Some(name), None),
        ["namespaces", name, "status" | "finalize"] if group.is_empty() => {
            request("namespaces", None, Some(name), Some("status"))
        }
        ["namespaces", namespace, plural] => request(plural, Some(namespace), None, None),
        ["namespaces", namespace, plural, name] => request(plural, Some(namespace), Some(name), None),
        ["namespaces", namespace, plural, name, subresource] => {
            request(plural, Some(namespace), Some(name), Some(subresource))
        }
        [plural] => request(plural, None, None, None),
        [plural, name] => request(plural, None, Some(name), None),
        [plural, name, subresource] => request(plural, None, Some(name), Some(subresource)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, NAMESPACES, PODS, VIRTUAL_SERVICES};

    #[test]
    fn parses_every_shape_of_path() {
        assert_eq!(parse("/api"), Some(ApiPath::CoreVersions));
        assert_eq!(parse("/apis/apps/v1"), Some(ApiPath::GroupResources("apps".into(), "v1".into())));
        assert_eq!(parse("/apis/apps/v2"), None);
        let ApiPath::Resource(request) = parse("/api/v1/namespaces/default/pods/p/log").unwrap() else { panic!() };
        assert_eq!(
            (request.resource, request.namespace.as_deref(), request.name.as_deref()),
            (PODS, Some("default"), Some("p"))
        );
        assert_eq!(request.subresource, Some(Subresource::Log));
        let ApiPath::Resource(request) = parse("/api/v1/namespaces/default").unwrap() else { panic!() };
        assert_eq!((request.resource, request.name.as_deref()), (NAMESPACES, Some("default")));
        let ApiPath::Resource(request) = parse("/apis/apps/v1/deployments").unwrap() else { panic!() };
        assert_eq!((request.resource, request.namespace), (DEPLOYMENTS, None));
        let ApiPath::Resource(request) =
            parse("/apis/networking.istio.io/v1beta1/namespaces/b/virtualservices/r").unwrap()
        else {
            panic!()
        };
        assert_eq!((request.resource, request.version.as_str()), (VIRTUAL_SERVICES, "v1beta1"));
        assert_eq!(parse("/api/v1/namespaces/default/pods/p/exec"), None);
        assert_eq!(parse("/api/v1/namespaces/default/namespaces"), None);
    }
}
