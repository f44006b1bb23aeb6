//! The pure part of shifting an HTTPRoute's traffic: which rule fledge manages, and what it found in it.
//! (Over 500 lines with its unit tests, which stand beside the rules they check; the code is about 490.)
//!
//! Rules (documented in docs/traffic.md):
//! - the service's Services are those of the namespace whose selector has `app: <service>`; a rule sends to the
//!   service when one of its backendRefs names one of them (kind Service, in the route's namespace);
//! - the managed rule is the one named in the manifest, or else the only rule that sends to the service;
//! - in it, exactly one of the service's backends takes weight: the live version's Service, whose selector names
//!   its `version`; the rule sends to nothing else (a rule splitting the service with other backends is refused);
//! - the new version's backendRef is a copy of the live one with its Service's name and a weight ([`crate::backends`]
//!   computes the patches).

use fledge_core::release::GatewayApiTraffic;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why the managed rule or the live version cannot be determined, or a write cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The HTTPRoute has no rules.
    #[error("HTTPRoute {http_route} has no rules")]
    NoRules {
        /// The HTTPRoute.
        http_route: String,
    },
    /// The HTTPRoute has no parents: nothing routes by it.
    #[error(
        "HTTPRoute {http_route} has no parentRefs: no Gateway or Service routes by it, so its weights would shift nothing"
    )]
    NoParents {
        /// The HTTPRoute.
        http_route: String,
    },
    /// No rule has the name the manifest gives.
    #[error("HTTPRoute {http_route} has no rule named {name} (rules: {})", available.join(", "))]
    NamedRuleNotFound {
        /// The HTTPRoute.
        http_route: String,
        /// The name asked for.
        name: String,
        /// The rules there are.
        available: Vec<String>,
    },
    /// No rule sends traffic to the service's Services.
    #[error(
        "no rule of HTTPRoute {http_route} has a backendRef to a Service of {service} (a Service whose selector has app: {service}); found: {}",
        if found.is_empty() { "no such Service".to_owned() } else { found.join(", ") }
    )]
    NoRuleForService {
        /// The HTTPRoute.
        http_route: String,
        /// The service.
        service: String,
        /// The service's Services found in the namespace.
        found: Vec<String>,
    },
    /// Several rules send traffic to the service.
    #[error("several rules of HTTPRoute {http_route} send traffic to {service}: {}; name the one to manage in traffic.gatewayAPI.rule", candidates.join(", "))]
    SeveralRules {
        /// The HTTPRoute.
        http_route: String,
        /// The service.
        service: String,
        /// The candidate rules.
        candidates: Vec<String>,
    },
    /// The managed rule sends traffic to backends other than the service's Services.
    #[error(
        "rule {rule} also sends traffic to {}, which are not Services of {service}; fledge splits a rule only between the service's versions: move those backends to a rule of their own",
        others.join(", ")
    )]
    OtherBackends {
        /// The rule.
        rule: String,
        /// The service.
        service: String,
        /// The other backends.
        others: Vec<String>,
    },
    /// Several of the service's backends take weight and the manifest does not say which is live.
    #[error("rule {rule} splits {service}'s traffic over Services {}; send all of it to the live version's Service before a release", services.join(", "))]
    NoSingleLiveBackend {
        /// The rule.
        rule: String,
        /// The service.
        service: String,
        /// The Services with weight.
        services: Vec<String>,
    },
    /// None of the service's backends takes weight.
    #[error("rule {rule} gives {service}'s Services a weight of 0; there is no traffic to shift")]
    NoShare {
        /// The rule.
        rule: String,
        /// The service.
        service: String,
    },
    /// The live backend's Service selects every version: the new version's pods would take its traffic at once.
    #[error(
        "rule {rule} sends traffic to Service {live_service}, whose selector ({selector}) has no version label: the new version's pods would receive its traffic as soon as they are Ready; point the rule at a Service of the live version only (selector app: {service}, version: <live version>; name it like {template})"
    )]
    SelectorWithoutVersion {
        /// The rule.
        rule: String,
        /// The service.
        service: String,
        /// The live backend's Service.
        live_service: String,
        /// Its selector, as people read it.
        selector: String,
        /// The version Service naming, as the manifest gives it.
        template: String,
    },
    /// The manifest names a live version the rule does not send to.
    #[error(
        "rule {rule} sends {service}'s traffic to version {found} (Service {live_service}), not to service.previousVersion {version}"
    )]
    LiveVersionNotRouted {
        /// The rule.
        rule: String,
        /// The service.
        service: String,
        /// The version named in the manifest.
        version: String,
        /// The version the rule sends to.
        found: String,
        /// Its Service.
        live_service: String,
    },
    /// The new version is the live one.
    #[error("rule {rule} already sends all of {service}'s traffic to version {version} (Service {live_service})")]
    AlreadyLive {
        /// The rule.
        rule: String,
        /// The service.
        service: String,
        /// The version.
        version: String,
        /// Its Service.
        live_service: String,
    },
    /// The new version already takes traffic.
    #[error(
        "rule {rule} already sends weight {weight} to the new version's Service {service}; a release of it is in flight or was left half-done"
    )]
    NewVersionAlreadyRouted {
        /// The rule.
        rule: String,
        /// The new version's Service.
        service: String,
        /// Its weight.
        weight: i64,
    },
    /// The Service fledge would create for the new version exists and selects something else.
    #[error(
        "Service {name} exists and selects {selector}, not app: {service}, version: {version}; delete it, or set traffic.gatewayAPI.versionService to another naming"
    )]
    ServiceSelectsOther {
        /// The Service.
        name: String,
        /// Its selector, as people read it.
        selector: String,
        /// The service.
        service: String,
        /// The new version.
        version: String,
    },
    /// References to the live Service outside the managed rule, and the manifest says to refuse the release then.
    #[error(
        "Service {live_service} is also routed to outside the managed rule, by {}; traffic.pinnedRoutes is `refuse`: remove those references, or set it to `move` (point them at the new version at promotion) or `keep` (keep the old version for them)",
        routes.join(", ")
    )]
    PinnedRoutesRefused {
        /// The live version's Service.
        live_service: String,
        /// The references.
        routes: Vec<String>,
    },
    /// The managed rule changed shape since the snapshot (renamed, removed, or no longer sending to the service).
    #[error("the managed rule {rule} is no longer found in HTTPRoute {http_route}")]
    RuleChanged {
        /// The HTTPRoute.
        http_route: String,
        /// The rule as snapshotted.
        rule: String,
    },
}

/// What fledge found in the managed rule at preflight: enough to find it again, to split it, and to restore it
/// exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSnapshot {
    /// The HTTPRoute.
    pub http_route: String,
    /// Index of the managed rule in `spec.rules` at preflight.
    pub rule_index: usize,
    /// Its name, if it has one.
    pub rule_name: Option<String>,
    /// The rule's `backendRefs` exactly as found.
    pub backend_refs: Value,
    /// The rule's `matches` as found: an unnamed rule is found again by them.
    #[serde(default)]
    pub matches: Value,
    /// The live version (its Service's selector's `version`).
    pub live_version: String,
    /// The live version's Service.
    pub live_service: String,
    /// The new version's Service.
    pub new_service: String,
    /// Whether the new version's Service existed at preflight (then a rollback leaves it).
    pub new_service_found: bool,
    /// The service name.
    pub service: String,
    /// The namespace.
    pub namespace: String,
    /// References to the live Service outside the managed rule, as found at preflight (for people: cleanup looks
    /// again).
    #[serde(default)]
    pub pinned: Vec<String>,
}

impl RuleSnapshot {
    /// How the rule is called in messages: its name and `#index`, or `#index`.
    pub fn rule_label(&self) -> String {
        rule_label(self.rule_index, self.rule_name.as_deref())
    }
}

/// How a rule is called in messages.
pub fn rule_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name} (#{index})"),
        None => format!("#{index}"),
    }
}

fn name_of(object: &Value) -> String {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The rules of an HTTPRoute.
pub fn rules(route: &Value) -> &[Value] {
    route.pointer("/spec/rules").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

pub(crate) fn backend_refs(rule: &Value) -> &[Value] {
    rule.get("backendRefs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// The name of the Service a backendRef points at in `namespace`, or `None` for another kind or namespace.
pub fn service_ref<'v>(backend: &'v Value, namespace: &str) -> Option<&'v str> {
    let group = backend.get("group").and_then(Value::as_str).unwrap_or("");
    let kind = backend.get("kind").and_then(Value::as_str).unwrap_or("Service");
    let in_namespace = backend.get("namespace").and_then(Value::as_str).is_none_or(|other| other == namespace);
    (group.is_empty() && kind == "Service" && in_namespace).then(|| backend.get("name").and_then(Value::as_str))?
}

/// How a backendRef is called in messages: `Service reviews-v1`, `ServiceImport other/x`.
fn describe_backend(backend: &Value) -> String {
    let kind = backend.get("kind").and_then(Value::as_str).unwrap_or("Service");
    let name = backend.get("name").and_then(Value::as_str).unwrap_or_default();
    match backend.get("namespace").and_then(Value::as_str) {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// A backendRef's weight: its `weight`, or 1 (the Gateway API default).
pub fn weight_of(backend: &Value) -> i64 {
    backend.get("weight").and_then(Value::as_i64).unwrap_or(1)
}

/// A selector as people read it: `app=reviews, version=v1`.
pub fn describe_selector(service: &Value) -> String {
    let selector = service.pointer("/spec/selector").and_then(Value::as_object);
    let pairs: Vec<String> = selector
        .into_iter()
        .flatten()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() { "no selector".to_owned() } else { pairs.join(", ") }
}

/// The names of the Services of the namespace that belong to `service`: their selector has `app: <service>`.
pub fn service_names(services: &[Value], service: &str) -> Vec<String> {
    services
        .iter()
        .filter(|candidate| candidate.pointer("/spec/selector/app").and_then(Value::as_str) == Some(service))
        .map(name_of)
        .collect()
}

/// Finds the managed rule's index: the named one, or the only one with a backend among `ours`.
pub fn find_rule(route: &Value, namespace: &str, ours: &[String], rule_name: Option<&str>) -> Result<usize, RuleError> {
    let http_route = name_of(route);
    let all = rules(route);
    if all.is_empty() {
        return Err(RuleError::NoRules { http_route });
    }
    let sends_to_service = |rule: &Value| {
        backend_refs(rule)
            .iter()
            .any(|backend| service_ref(backend, namespace).is_some_and(|name| ours.iter().any(|own| own == name)))
    };
    let label = |index: usize| rule_label(index, all[index].get("name").and_then(Value::as_str));
    if let Some(wanted) = rule_name {
        let index = all.iter().position(|rule| rule.get("name").and_then(Value::as_str) == Some(wanted));
        let index = index.ok_or_else(|| RuleError::NamedRuleNotFound {
            http_route: http_route.clone(),
            name: wanted.to_owned(),
            available: (0..all.len()).map(label).collect(),
        })?;
        return Ok(index);
    }
    let candidates: Vec<usize> = (0..all.len()).filter(|index| sends_to_service(&all[*index])).collect();
    match candidates.as_slice() {
        [index] => Ok(*index),
        [] => Err(RuleError::NoRuleForService { http_route, service: String::new(), found: ours.to_vec() }),
        _ => Err(RuleError::SeveralRules {
            http_route,
            service: String::new(),
            candidates: candidates.iter().map(|index| label(*index)).collect(),
        }),
    }
}

/// What preflight asks of the managed rule.
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    /// The service.
    pub service: &'a str,
    /// The namespace.
    pub namespace: &'a str,
    /// The manifest's Gateway API settings.
    pub traffic: &'a GatewayApiTraffic,
    /// `service.previousVersion`, if given.
    pub previous_version: Option<&'a str>,
    /// The new version.
    pub new_version: &'a str,
}

/// Checks the HTTPRoute and the namespace's Services and records what must be restored.
pub fn snapshot(route: &Value, services: &[Value], wanted: Wanted<'_>) -> Result<RuleSnapshot, RuleError> {
    let Wanted { service, namespace, traffic, previous_version, new_version } = wanted;
    if route.pointer("/spec/parentRefs").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        return Err(RuleError::NoParents { http_route: name_of(route) });
    }
    let ours = service_names(services, service);
    let index = find_rule(route, namespace, &ours, traffic.rule.as_deref()).map_err(|error| match error {
        RuleError::NoRuleForService { http_route, found, .. } => {
            RuleError::NoRuleForService { http_route, service: service.to_owned(), found }
        }
        RuleError::SeveralRules { http_route, candidates, .. } => {
            RuleError::SeveralRules { http_route, service: service.to_owned(), candidates }
        }
        other => other,
    })?;
    let rule = &rules(route)[index];
    let label = rule_label(index, rule.get("name").and_then(Value::as_str));
    let backends = backend_refs(rule);
    let is_ours =
        |backend: &Value| service_ref(backend, namespace).is_some_and(|name| ours.iter().any(|own| own == name));
    let others: Vec<String> = backends.iter().filter(|backend| !is_ours(backend)).map(describe_backend).collect();
    if !others.is_empty() {
        return Err(RuleError::OtherBackends { rule: label, service: service.to_owned(), others });
    }
    if backends.is_empty() {
        return Err(RuleError::NoRuleForService {
            http_route: name_of(route),
            service: service.to_owned(),
            found: ours,
        });
    }
    let weighted: Vec<&Value> = backends.iter().filter(|backend| weight_of(backend) > 0).collect();
    let live_backend = match weighted.as_slice() {
        [single] => *single,
        [] => return Err(RuleError::NoShare { rule: label, service: service.to_owned() }),
        several => {
            // Splitting between two of them would leave the third's share where it is, and promotion would not move it.
            return Err(RuleError::NoSingleLiveBackend {
                rule: label,
                service: service.to_owned(),
                services: several
                    .iter()
                    .filter_map(|backend| service_ref(backend, namespace))
                    .map(str::to_owned)
                    .collect(),
            });
        }
    };
    let live_service = service_ref(live_backend, namespace).unwrap_or_default().to_owned();
    let live = find_service(services, &live_service).expect("the live backend is one of the service's Services");
    let Some(live_version) = version_of(live).map(str::to_owned) else {
        return Err(RuleError::SelectorWithoutVersion {
            rule: label,
            service: service.to_owned(),
            live_service,
            selector: describe_selector(live),
            template: traffic.version_service.clone(),
        });
    };
    if let Some(version) = previous_version
        && version != live_version
    {
        return Err(RuleError::LiveVersionNotRouted {
            rule: label,
            service: service.to_owned(),
            version: version.to_owned(),
            found: live_version,
            live_service,
        });
    }
    if live_version == new_version {
        return Err(RuleError::AlreadyLive {
            rule: label,
            service: service.to_owned(),
            version: live_version,
            live_service,
        });
    }
    let new_service = traffic.service_name(service, new_version);
    if let Some(backend) = backends.iter().find(|backend| service_ref(backend, namespace) == Some(new_service.as_str()))
        && weight_of(backend) > 0
    {
        return Err(RuleError::NewVersionAlreadyRouted {
            rule: label,
            service: new_service,
            weight: weight_of(backend),
        });
    }
    let existing = find_service(services, &new_service);
    if let Some(existing) = existing {
        let selects = existing.pointer("/spec/selector/app").and_then(Value::as_str) == Some(service)
            && version_of(existing) == Some(new_version);
        if !selects {
            return Err(RuleError::ServiceSelectsOther {
                name: new_service,
                selector: describe_selector(existing),
                service: service.to_owned(),
                version: new_version.to_owned(),
            });
        }
    }
    Ok(RuleSnapshot {
        http_route: name_of(route),
        rule_index: index,
        rule_name: rule.get("name").and_then(Value::as_str).map(str::to_owned),
        backend_refs: rule.get("backendRefs").cloned().unwrap_or(Value::Null),
        matches: rule.get("matches").cloned().unwrap_or(Value::Null),
        live_version,
        live_service,
        new_service,
        new_service_found: existing.is_some(),
        service: service.to_owned(),
        namespace: namespace.to_owned(),
        pinned: Vec::new(),
    })
}

/// The Service named `name` among `services`.
pub fn find_service<'v>(services: &'v [Value], name: &str) -> Option<&'v Value> {
    services.iter().find(|service| service.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
}

/// The version a Service selects: its selector's `version`.
pub fn version_of(service: &Value) -> Option<&str> {
    service.pointer("/spec/selector/version").and_then(Value::as_str)
}

/// The managed rule's current index: by name, or else the only rule with the matches found at preflight that still
/// sends to the live or the new version's Service (a rule moved, or another added, does not mislead it).
pub fn locate(route: &Value, snapshot: &RuleSnapshot) -> Result<usize, RuleError> {
    let changed = || RuleError::RuleChanged { http_route: snapshot.http_route.clone(), rule: snapshot.rule_label() };
    let all = rules(route);
    if let Some(name) = &snapshot.rule_name {
        return all.iter().position(|rule| rule.get("name").and_then(Value::as_str) == Some(name)).ok_or_else(changed);
    }
    let ours = |rule: &Value| {
        rule.get("matches").unwrap_or(&Value::Null) == &snapshot.matches
            && backend_refs(rule).iter().any(|backend| {
                let name = service_ref(backend, &snapshot.namespace);
                name == Some(snapshot.live_service.as_str()) || name == Some(snapshot.new_service.as_str())
            })
    };
    let candidates: Vec<usize> = (0..all.len()).filter(|index| ours(&all[*index])).collect();
    match candidates.as_slice() {
        [index] => Ok(*index),
        _ => Err(changed()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn service(name: &str, selector: Value) -> Value {
        json!({ "metadata": { "name": name }, "spec": { "selector": selector } })
    }

    pub(crate) fn services() -> Vec<Value> {
        vec![
            service("reviews", json!({ "app": "reviews" })),
            service("reviews-v1", json!({ "app": "reviews", "version": "v1" })),
            service("ratings", json!({ "app": "ratings" })),
        ]
    }

    /// An HTTPRoute as the API server stores it (the CRD's defaults filled in).
    pub(crate) fn route(primary: Value) -> Value {
        json!({ "metadata": { "name": "reviews", "resourceVersion": "5" }, "spec": {
            "parentRefs": [{ "group": "", "kind": "Service", "name": "reviews", "port": 9080 }],
            "rules": [
            { "name": "archive", "backendRefs": [{ "group": "", "kind": "Service", "name": "ratings", "port": 9080, "weight": 1 }] },
            primary
        ] } })
    }

    pub(crate) fn primary() -> Value {
        json!({ "name": "primary", "timeouts": { "request": "10s" },
                "backendRefs": [{ "group": "", "kind": "Service", "name": "reviews-v1", "port": 9080, "weight": 1 }] })
    }

    pub(crate) fn wanted(traffic: &GatewayApiTraffic) -> Wanted<'_> {
        Wanted { service: "reviews", namespace: "bookinfo", traffic, previous_version: None, new_version: "v2" }
    }

    pub(crate) fn apply(route: &Value, operations: Vec<json_patch::PatchOperation>) -> Value {
        let mut patched = route.clone();
        json_patch::patch(&mut patched, &operations).expect("the patch applies");
        patched
    }

    #[test]
    fn the_rule_sending_to_the_services_services_is_managed_and_its_live_version_found() {
        let traffic = GatewayApiTraffic::for_service("reviews");
        let snapshot = snapshot(&route(primary()), &services(), wanted(&traffic)).unwrap();
        assert_eq!(
            (snapshot.rule_index, snapshot.rule_name.as_deref(), snapshot.live_version.as_str()),
            (1, Some("primary"), "v1")
        );
        assert_eq!((snapshot.live_service.as_str(), snapshot.new_service.as_str()), ("reviews-v1", "reviews-v2"));
        assert_eq!(snapshot.backend_refs, primary()["backendRefs"]);
        assert!(!snapshot.new_service_found);
    }

    #[test]
    fn rules_that_would_leak_traffic_or_split_other_backends_are_refused() {
        let traffic = GatewayApiTraffic::for_service("reviews");
        let mut stable = primary();
        stable["backendRefs"][0]["name"] = json!("reviews");
        assert!(matches!(
            snapshot(&route(stable), &services(), wanted(&traffic)),
            Err(RuleError::SelectorWithoutVersion { live_service, .. }) if live_service == "reviews"
        ));
        let mut mixed = primary();
        mixed["backendRefs"].as_array_mut().unwrap().push(json!({ "name": "ratings", "port": 9080 }));
        assert_eq!(
            snapshot(&route(mixed), &services(), wanted(&traffic)).unwrap_err().to_string(),
            "rule primary (#1) also sends traffic to Service ratings, which are not Services of reviews; fledge splits a rule only between the service's versions: move those backends to a rule of their own"
        );
        let mut split = primary();
        split["backendRefs"].as_array_mut().unwrap().push(json!({ "name": "reviews-v0", "port": 9080, "weight": 10 }));
        let mut with_v0 = services();
        with_v0.push(service("reviews-v0", json!({ "app": "reviews", "version": "v0" })));
        assert!(
            matches!(snapshot(&route(split), &with_v0, wanted(&traffic)), Err(RuleError::NoSingleLiveBackend { .. })),
            "a third version's share would stay where it is"
        );
        let mut orphan = route(primary());
        orphan["spec"].as_object_mut().unwrap().remove("parentRefs");
        assert_eq!(
            snapshot(&orphan, &services(), wanted(&traffic)).unwrap_err(),
            RuleError::NoParents { http_route: "reviews".into() }
        );
        let mut named = GatewayApiTraffic::for_service("reviews");
        named.rule = Some("main".into());
        assert_eq!(
            snapshot(&route(primary()), &services(), wanted(&named)).unwrap_err().to_string(),
            "HTTPRoute reviews has no rule named main (rules: archive (#0), primary (#1))"
        );
    }

    #[test]
    fn an_unnamed_rule_is_found_again_by_its_matches_not_its_position() {
        let traffic = GatewayApiTraffic::for_service("reviews");
        let mut unnamed = primary();
        unnamed.as_object_mut().unwrap().remove("name");
        unnamed["matches"] = json!([{ "path": { "type": "PathPrefix", "value": "/" } }]);
        let original = route(unnamed.clone());
        let snapshot = snapshot(&original, &services(), wanted(&traffic)).unwrap();
        // Someone puts a header-matched test rule to the new version where the managed rule was.
        let mut edited = original.clone();
        let test_rule = json!({ "matches": [{ "headers": [{ "type": "Exact", "name": "x-test", "value": "1" }] }],
                                "backendRefs": [{ "name": "reviews-v2", "port": 9080 }] });
        edited["spec"]["rules"].as_array_mut().unwrap().insert(1, test_rule);
        assert_eq!(locate(&edited, &snapshot), Ok(2), "the managed rule, moved");
    }
}
