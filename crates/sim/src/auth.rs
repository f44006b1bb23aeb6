//! Who asks, and whether they may: bearer tokens of ServiceAccounts, and Kubernetes' RBAC authorizer over the
//! Roles, ClusterRoles, RoleBindings and ClusterRoleBindings in the store.
//!
//! ```text
//!  Authorization: Bearer <token> ──▶ system:serviceaccount:<ns>:<name> (groups system:serviceaccounts[:<ns>],
//!  no token ──▶ the administrator (system:masters: everything)           system:authenticated)
//!  request ──▶ attributes (verb, group, resource[/subresource], name, namespace) ──▶ every binding of the user ──▶
//!             a rule allows it (apiGroups, resources, verbs, resourceNames, `*`) ─▶ served │ none ─▶ 403 Forbidden
//! ```
//!
//! As on a real cluster, every authenticated user may read discovery, the OpenAPI documents and `/version`
//! (`system:discovery`, `system:public-info-viewer`) and ask what it may do (`system:basic-user`:
//! SelfSubjectAccessReview). Aggregated ClusterRoles are not served.

use crate::resources::{self, CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES};
use crate::store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    /// The kubeconfig without a token: allowed everything.
    Administrator,
    /// A ServiceAccount, by its token.
    ServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl User {
    /// The user name RBAC sees: `system:serviceaccount:bookinfo:fledge`.
    pub fn name(&self) -> String {
        match self {
            User::Administrator => "system:admin".into(),
            User::ServiceAccount { namespace, name } => format!("system:serviceaccount:{namespace}:{name}"),
        }
    }

    fn groups(&self) -> Vec<String> {
        match self {
            User::Administrator => vec!["system:masters".into(), "system:authenticated".into()],
            User::ServiceAccount { namespace, .. } => vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// The tokens the simulator has issued.
#[derive(Default)]
pub struct Tokens {
    issued: Mutex<HashMap<String, (String, String)>>,
}

impl Tokens {
    /// A new token for ServiceAccount `namespace/name` (it must exist when the token is used).
    pub fn issue(&self, namespace: &str, name: &str) -> String {
        let token =
            format!("fledge-sim.{namespace}.{name}.{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
        self.issued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(token.clone(), (namespace.to_owned(), name.to_owned()));
        token
    }

    /// Who `authorization` (the header's value) is: the administrator without one, `None` for a token nobody issued
    /// or whose ServiceAccount is gone (401).
    pub fn authenticate(&self, authorization: Option<&str>, store: &Store) -> Option<User> {
        let Some(header) = authorization else { return Some(User::Administrator) };
        let token = header.strip_prefix("Bearer ")?.trim();
        let issued = self.issued.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (namespace, name) = issued.get(token)?.clone();
        store.get(resources::SERVICE_ACCOUNTS, &namespace, &name)?;
        Some(User::ServiceAccount { namespace, name })
    }
}

/// What a request does, as RBAC names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The resource's plural.
    pub resource: String,
    /// The subresource, if any (`log`, `scale`, `status`).
    pub subresource: Option<String>,
    /// The object's name (none for collections and creates).
    pub name: Option<String>,
    /// The namespace (none for cluster-scoped resources and all-namespace lists).
    pub namespace: Option<String>,
}

impl Attributes {
    /// `deployments/scale`, or `deployments`.
    fn resource_path(&self) -> String {
        match &self.subresource {
            Some(subresource) => format!("{}/{subresource}", self.resource),
            None => self.resource.clone(),
        }
    }

    /// The message a real API server gives when RBAC denies `user`: `deployments.apps "reviews-v2" is forbidden:
    /// User "system:serviceaccount:bookinfo:fledge" cannot patch resource "deployments" in API group "apps" in the
    /// namespace "bookinfo"`.
    pub fn forbidden_message(&self, user: &User) -> String {
        let qualified =
            if self.group.is_empty() { self.resource.clone() } else { format!("{}.{}", self.resource, self.group) };
        let subject = match &self.name {
            Some(name) => format!("{qualified} \"{name}\""),
            None => qualified,
        };
        let scope = match &self.namespace {
            Some(namespace) => format!("in the namespace \"{namespace}\""),
            None => "at the cluster scope".into(),
        };
        format!(
            "{subject} is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
            user.name(),
            self.verb,
            self.resource_path(),
            self.group
        )
    }
}

/// One kind of request a ServiceAccount made, as RBAC saw it: what an audit log would show, without the names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    /// The user: `system:serviceaccount:bookinfo:fledge`.
    pub user: String,
    /// The verb.
    pub verb: String,
    /// The API group.
    pub group: String,
    /// `deployments`, or `deployments/scale` for a subresource.
    pub resource: String,
    /// The namespace, if any.
    pub namespace: Option<String>,
    /// Whether RBAC allowed it.
    pub allowed: bool,
}

/// Every distinct [`Access`] of ServiceAccounts so far (the administrator's are not kept).
#[derive(Default)]
pub struct AccessLog(Mutex<std::collections::BTreeSet<Access>>);

impl AccessLog {
    /// Notes RBAC's decision on `attributes` for `user`.
    pub fn record(&self, user: &User, attributes: &Attributes, allowed: bool) {
        if *user == User::Administrator {
            return;
        }
        let access = Access {
            user: user.name(),
            verb: attributes.verb.clone(),
            group: attributes.group.clone(),
            resource: attributes.resource_path(),
            namespace: attributes.namespace.clone(),
            allowed,
        };
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(access);
    }

    /// Every access so far, in order.
    pub fn accesses(&self) -> Vec<Access> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().cloned().collect()
    }
}

/// RBAC's answer, with the reason a SelfSubjectAccessReview reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed.
    pub allowed: bool,
    /// Which binding allowed it, when allowed.
    pub reason: String,
}

fn strings<'v>(value: &'v Value, key: &str) -> impl Iterator<Item = &'v str> {
    value.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

/// Whether one rule of a Role or ClusterRole allows `attributes`.
pub fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
    let group = strings(rule, "apiGroups").any(|group| group == "*" || group == attributes.group);
    let path = attributes.resource_path();
    let resource = strings(rule, "resources").any(|resource| {
        resource == "*"
            || resource == path
            || (attributes.subresource.is_some() && resource.strip_prefix("*/") == attributes.subresource.as_deref())
    });
    let verb = strings(rule, "verbs").any(|verb| verb == "*" || verb == attributes.verb);
    let names: Vec<&str> = strings(rule, "resourceNames").collect();
    let name = names.is_empty() || attributes.name.as_deref().is_some_and(|name| names.contains(&name));
    group && resource && verb && name
}

/// Whether a binding's subjects include `user`.
fn binds(binding: &Value, user: &User) -> bool {
    let groups = user.groups();
    binding.get("subjects").and_then(Value::as_array).into_iter().flatten().any(|subject| {
        let kind = subject["kind"].as_str().unwrap_or_default();
        let name = subject["name"].as_str().unwrap_or_default();
        match (kind, user) {
            ("ServiceAccount", User::ServiceAccount { namespace, name: account }) => {
                name == account && subject["namespace"].as_str().unwrap_or(namespace) == namespace
            }
            ("User", _) => name == user.name(),
            ("Group", _) => groups.iter().any(|group| group == name),
            _ => false,
        }
    })
}

/// The rules of the role a binding names (a Role in `namespace`, or a ClusterRole).
fn role_rules(store: &Store, binding: &Value, namespace: &str) -> (String, Vec<Value>) {
    let kind = binding.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or_default();
    let name = binding.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or_default();
    let role = match kind {
        "Role" => store.get(ROLES, namespace, name),
        "ClusterRole" => store.get(CLUSTER_ROLES, "", name),
        _ => None,
    };
    let rules = role.and_then(|role| role.get("rules").and_then(Value::as_array).cloned()).unwrap_or_default();
    (format!("{kind} \"{name}\""), rules)
}

/// RBAC's decision on `attributes` for `user`.
pub fn authorize(store: &Store, user: &User, attributes: &Attributes) -> Decision {
    if *user == User::Administrator {
        return Decision { allowed: true, reason: "the administrator (system:masters)".into() };
    }
    // What system:basic-user grants every authenticated user.
    if attributes.group == "authorization.k8s.io"
        && attributes.resource == "selfsubjectaccessreviews"
        && attributes.verb == "create"
    {
        return Decision { allowed: true, reason: "ClusterRoleBinding \"system:basic-user\"".into() };
    }
    let subject = match user {
        User::ServiceAccount { namespace, name } => format!("ServiceAccount \"{name}/{namespace}\""),
        User::Administrator => String::new(),
    };
    if let Some(namespace) = &attributes.namespace {
        let (bindings, _) = store.list(ROLE_BINDINGS, Some(namespace), |binding| binds(binding, user));
        for binding in bindings {
            let (role, rules) = role_rules(store, &binding, namespace);
            if rules.iter().any(|rule| rule_allows(rule, attributes)) {
                let name = binding.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                return Decision {
                    allowed: true,
                    reason: format!("RBAC: allowed by RoleBinding \"{name}/{namespace}\" of {role} to {subject}"),
                };
            }
        }
    }
    let (bindings, _) = store.list(CLUSTER_ROLE_BINDINGS, None, |binding| binds(binding, user));
    for binding in bindings {
        let (role, rules) = role_rules(store, &binding, "");
        if rules.iter().any(|rule| rule_allows(rule, attributes)) {
            let name = binding.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            return Decision {
                allowed: true,
                reason: format!("RBAC: allowed by ClusterRoleBinding \"{name}\" of {role} to {subject}"),
            };
        }
    }
    Decision { allowed: false, reason: String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attributes(
        verb: &str,
        group: &str,
        resource: &str,
        subresource: Option<&str>,
        name: Option<&str>,
    ) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.map(str::to_owned),
            name: name.map(str::to_owned),
            namespace: Some("bookinfo".into()),
        }
    }

    #[test]
    fn rules_match_groups_resources_subresources_verbs_and_names() {
        let rule = json!({ "apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"] });
        assert!(rule_allows(&rule, &attributes("patch", "apps", "deployments", None, Some("reviews-v2"))));
        assert!(!rule_allows(&rule, &attributes("delete", "apps", "deployments", None, Some("reviews-v2"))));
        assert!(
            !rule_allows(&rule, &attributes("patch", "apps", "deployments", Some("scale"), Some("r"))),
            "a subresource is its own"
        );
        assert!(!rule_allows(&rule, &attributes("get", "", "deployments", None, None)), "another group");
        let scale = json!({ "apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["*"] });
        assert!(rule_allows(&scale, &attributes("patch", "apps", "deployments", Some("scale"), Some("r"))));
        let named = json!({ "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["fledge-release-reviews"], "verbs": ["get"] });
        assert!(rule_allows(&named, &attributes("get", "", "configmaps", None, Some("fledge-release-reviews"))));
        assert!(!rule_allows(&named, &attributes("get", "", "configmaps", None, Some("other"))));
        assert!(!rule_allows(&named, &attributes("get", "", "configmaps", None, None)), "names never match a list");
    }

    #[test]
    fn denials_read_as_a_real_api_server_writes_them() {
        let user = User::ServiceAccount { namespace: "bookinfo".into(), name: "fledge".into() };
        assert_eq!(
            attributes("patch", "apps", "deployments", None, Some("reviews-v2")).forbidden_message(&user),
            "deployments.apps \"reviews-v2\" is forbidden: User \"system:serviceaccount:bookinfo:fledge\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"bookinfo\""
        );
        assert_eq!(
            attributes("get", "", "pods", Some("log"), Some("p")).forbidden_message(&user),
            "pods \"p\" is forbidden: User \"system:serviceaccount:bookinfo:fledge\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"bookinfo\""
        );
        let cluster = Attributes { namespace: None, ..attributes("list", "", "nodes", None, None) };
        assert_eq!(
            cluster.forbidden_message(&user),
            "nodes is forbidden: User \"system:serviceaccount:bookinfo:fledge\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
    }
}
