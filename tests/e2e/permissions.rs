//! Least privilege: with manifests/rbac.yaml applied (manifests/gateway-api/rbac.yaml for releases through the
//! Gateway API), fledge does its whole job as its ServiceAccount, and every rule of its Role is needed: without any
//! one of them, the same scenario fails with the API server's Forbidden, naming the verb and the resource. The Role
//! grants nothing cluster-wide, and (on the simulator, which keeps an audit of what ServiceAccounts ask for) every
//! verb it grants is used.

use crate::support::{Finished, Running, World};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const USER: &str = "system:serviceaccount:bookinfo:fledge";

/// The traffic provider whose RBAC is proved, with the world and manifests it is proved on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    /// manifests/rbac.yaml, on bookinfo with a VirtualService.
    Istio,
    /// manifests/gateway-api/rbac.yaml, on bookinfo with an HTTPRoute.
    GatewayApi,
}

impl Setup {
    fn rbac(self) -> &'static str {
        match self {
            Setup::Istio => include_str!("../../manifests/rbac.yaml"),
            Setup::GatewayApi => include_str!("../../manifests/gateway-api/rbac.yaml"),
        }
    }

    async fn world(self) -> World {
        match self {
            Setup::Istio => World::start().await,
            Setup::GatewayApi => World::start_gateway_api(|text| text).await,
        }
    }
}

fn rbac_documents(setup: Setup) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(setup.rbac()).expect("the RBAC manifest is YAML")
}

fn role_rules(setup: Setup) -> Vec<Value> {
    let documents = rbac_documents(setup);
    let role = documents.iter().find(|document| document["kind"] == "Role").expect("the RBAC manifest has a Role");
    role["rules"].as_array().cloned().unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// Every (verb, group, resource) a rule grants.
fn grants(rule: &Value) -> Vec<(String, String, String)> {
    let mut grants = Vec::new();
    for group in strings(&rule["apiGroups"]) {
        for resource in strings(&rule["resources"]) {
            for verb in strings(&rule["verbs"]) {
                grants.push((verb.clone(), group.clone(), resource.clone()));
            }
        }
    }
    grants
}

/// Applies manifests/rbac.yaml (the Istio setup's ServiceAccount, Role and RoleBinding).
pub(crate) async fn apply_istio_rbac(world: &World) {
    apply_rbac(world, Setup::Istio, None).await;
}

/// The index of the Istio Role's rule that grants `resource`.
pub(crate) fn istio_rule_for(resource: &str) -> usize {
    let rules = role_rules(Setup::Istio);
    rules.iter().position(|rule| strings(&rule["resources"]).contains(&resource.to_owned())).expect("a rule grants it")
}

/// Applies the setup's RBAC manifest, without the Role's rule `removed` when given.
async fn apply_rbac(world: &World, setup: Setup, removed: Option<usize>) {
    let mut documents = rbac_documents(setup);
    if let Some(index) = removed {
        let role = documents.iter_mut().find(|document| document["kind"] == "Role").unwrap();
        role["rules"].as_array_mut().unwrap().remove(index);
    }
    let text: Vec<String> = documents.iter().map(Value::to_string).collect();
    world.kubectl(&["apply", "-f", "-"], Some(&text.join("\n"))).await;
}

/// A step of the scenario that did not do what it should.
#[derive(Debug)]
struct Failure {
    step: &'static str,
    /// Everything fledge printed: stdout, then stderr.
    output: String,
}

/// stdout, then every text of every event on stderr (the diagnostics are one), then stderr's other lines.
fn output(finished: &Finished) -> String {
    fn texts(value: &Value, out: &mut String) {
        match value {
            Value::String(text) => {
                out.push_str(text);
                out.push('\n');
            }
            Value::Array(items) => items.iter().for_each(|item| texts(item, out)),
            Value::Object(fields) => fields.values().for_each(|field| texts(field, out)),
            _ => {}
        }
    }
    let mut text = finished.stdout.clone();
    finished.events.iter().for_each(|event| texts(event, &mut text));
    text.push_str(&finished.other.join("\n"));
    text
}

/// The scenario's manifests: the time-compressed release of [`crate::support::release_manifest`].
struct Scenario<'w> {
    world: &'w World,
    kubeconfig: PathBuf,
}

impl Scenario<'_> {
    fn manifest(&self, version: &str, tag: &str) -> PathBuf {
        self.world.manifest(version, tag, |text| text)
    }

    /// `fledge ARGS MANIFEST` as the ServiceAccount; `Err` unless `expected(finished)`.
    async fn step(
        &self,
        step: &'static str,
        args: &[&str],
        manifest: &Path,
        expected: impl Fn(&Finished) -> bool,
    ) -> Result<Finished, Failure> {
        let finished = self.world.spawn_as(&self.kubeconfig, args, manifest).finish().await;
        if expected(&finished) { Ok(finished) } else { Err(Failure { step, output: output(&finished) }) }
    }

    /// `fledge run MANIFEST`, killed or signalled once its first stage started; `Err` when it ends before that.
    async fn run_to_first_stage(&self, step: &'static str, manifest: &Path) -> Result<Running, Failure> {
        let mut running = self.world.spawn_as(&self.kubeconfig, &["run"], manifest);
        match running.try_wait_for("stage-started", Duration::from_secs(90), |_| true).await {
            Some(_) => Ok(running),
            None => Err(Failure { step, output: output(&running.finish().await) }),
        }
    }

    /// `fledge run MANIFEST` again and again while the lock of a killed run has not expired (exit 5), at most 40 s.
    async fn run_until_unlocked(&self, step: &'static str, manifest: &Path) -> Result<Finished, Failure> {
        let started = tokio::time::Instant::now();
        loop {
            let finished = self.world.spawn_as(&self.kubeconfig, &["run"], manifest).finish().await;
            if finished.code != 5 || started.elapsed() > Duration::from_secs(40) {
                let resumed = finished.code == 0 && finished.event("resuming").is_some();
                return if resumed { Ok(finished) } else { Err(Failure { step, output: output(&finished) }) };
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Everything fledge does, as the ServiceAccount: `plan`, `gate`, a promotion, `status`, a crash-loop rollback
    /// whose diagnostics show the pod's log, a resume after kill -9, and `abort` of a release in flight that `wait`
    /// follows.
    async fn run(&self) -> Result<(), Failure> {
        let v2 = self.manifest("v2", "2.0.0");
        self.step("plan", &["plan"], &v2, |plan| {
            plan.code == 0 && plan.stdout.contains("the API server accepts it (server-side dry run)")
        })
        .await?;
        self.step("gate", &["gate"], &v2, |gate| gate.code == 0).await?;
        self.step("promotion", &["run"], &v2, |run| run.code == 0 && run.stdout == "reviews v2: promoted\n").await?;
        self.step("status", &["status"], &v2, |status| status.code == 0 && status.stdout.contains("promoted")).await?;

        let v3 = self.manifest("v3", "2.0.0-crashloop");
        self.step("rollback", &["run"], &v3, |run| {
            let text = output(run);
            run.code == 10
                && text.contains("fatal: unrecoverable error, exiting with code 1")
                && !text.contains("not read:")
        })
        .await?;

        let v4 = self.manifest("v4", "2.0.0");
        let killed = self.run_to_first_stage("resume after kill -9", &v4).await?;
        killed.signal("KILL");
        killed.finish().await;
        self.run_until_unlocked("resume after kill -9", &v4).await?;

        let v5 = self.manifest("v5", "2.0.0");
        let running = self.run_to_first_stage("abort", &v5).await?;
        // Another pipeline step follows the release with the same ServiceAccount: the record and the lock, read.
        let waiting = self.world.spawn_as(&self.kubeconfig, &["wait", "--timeout", "2m"], &v5);
        self.step("abort", &["abort"], &v5, |abort| abort.code == 13).await?;
        let aborted = running.finish().await;
        if aborted.code != 13 {
            return Err(Failure { step: "abort", output: output(&aborted) });
        }
        let waited = waiting.finish().await;
        if waited.code != 13 || waited.stdout != aborted.stdout {
            return Err(Failure { step: "wait", output: output(&waited) });
        }
        self.step("status", &["status"], &v5, |status| status.code == 0).await?;
        Ok(())
    }
}

/// All traffic on one version with Ready pods, and no route sending to a subset (or Service) that is gone or
/// selects no pod.
async fn assert_consistent(world: &World, setup: Setup) {
    match setup {
        Setup::Istio => {
            assert_eq!(world.dangling_references().await, Vec::<String>::new());
            let weights = world.weights().await;
            let weighted = weights.iter().filter(|(_, weight)| *weight > 0).count();
            assert!(weighted == 1, "all traffic on one version: {weights:?}");
        }
        Setup::GatewayApi => {
            assert_eq!(world.dangling_backends().await, Vec::<String>::new());
            let route = world.kubectl_json(&["get", "httproute", "reviews", "-n", "bookinfo"]).await;
            let backends = route["spec"]["rules"][0]["backendRefs"].as_array().cloned().unwrap_or_default();
            let weighted = backends.iter().filter(|backend| backend["weight"].as_i64().unwrap_or(1) > 0).count();
            assert!(weighted == 1, "all traffic on one version: {backends:?}");
        }
    }
}

/// `kubectl apply` of the setup's manifests as a user would, the scenario as the ServiceAccount, and the audit.
async fn the_service_account_can_do_everything_fledge_does(setup: Setup) {
    let world = setup.world().await;
    // kubectl apply -f manifests/ as a user would: the ServiceAccount, the RBAC objects and the Job.
    let manifests = concat!(env!("CARGO_MANIFEST_DIR"), "/../../manifests/");
    let applied = match setup {
        Setup::Istio => world.kubectl(&["apply", "-f", manifests], None).await,
        Setup::GatewayApi => {
            let job = format!("{manifests}job.yaml");
            world.kubectl(&["apply", "-f", &format!("{manifests}gateway-api/"), "-f", &job], None).await
        }
    };
    for line in [
        "serviceaccount/fledge created",
        "role.rbac.authorization.k8s.io/fledge created",
        "rolebinding.rbac.authorization.k8s.io/fledge created",
        "job.batch/reviews-v2-release created",
    ] {
        assert!(applied.contains(line), "kubectl apply -f manifests/ lacks {line:?}:\n{applied}");
    }
    let kubeconfig = world.service_account_kubeconfig("bookinfo", "fledge").await;
    let scenario = Scenario { world: &world, kubeconfig };
    if let Err(failure) = scenario.run().await {
        panic!("step `{}` failed as {USER}:\n{}", failure.step, failure.output);
    }
    assert_consistent(&world, setup).await;
    world.kubectl(&["delete", "job", "reviews-v2-release", "-n", "bookinfo"], None).await;

    let granted: BTreeSet<(String, String, String)> = role_rules(setup).iter().flat_map(grants).collect();
    if let Some(accesses) = world.accesses() {
        let denied: Vec<_> = accesses.iter().filter(|access| access.user == USER && !access.allowed).collect();
        assert!(denied.is_empty(), "nothing fledge asked for was refused: {denied:#?}");
        let used: BTreeSet<(String, String, String)> = accesses
            .iter()
            .filter(|access| access.user == USER && access.resource != "selfsubjectaccessreviews")
            .map(|access| (access.verb.clone(), access.group.clone(), access.resource.clone()))
            .collect();
        assert_eq!(granted, used, "the Role grants exactly what fledge uses");
        assert!(
            accesses.iter().all(|access| access.namespace.as_deref() == Some("bookinfo")),
            "fledge asks for nothing outside its namespace: {accesses:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_account_of_manifests_rbac_can_do_everything_fledge_does() {
    the_service_account_can_do_everything_fledge_does(Setup::Istio).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_account_of_manifests_gateway_api_rbac_can_do_everything_fledge_does() {
    the_service_account_can_do_everything_fledge_does(Setup::GatewayApi).await;
}

#[test]
fn the_roles_grant_nothing_cluster_wide() {
    for setup in [Setup::Istio, Setup::GatewayApi] {
        let kinds: Vec<String> = rbac_documents(setup)
            .iter()
            .map(|document| document["kind"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding"]);
        for document in rbac_documents(setup) {
            assert_eq!(document["metadata"]["namespace"], "bookinfo", "{document}");
        }
        let binding = rbac_documents(setup).into_iter().find(|document| document["kind"] == "RoleBinding").unwrap();
        assert_eq!(
            binding["roleRef"],
            json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "fledge" })
        );
        for rule in role_rules(setup) {
            for field in ["apiGroups", "resources", "verbs"] {
                assert!(!strings(&rule[field]).contains(&"*".to_owned()), "no wildcard in {field}: {rule}");
            }
        }
    }
}

/// The scenario as the ServiceAccount with the Role's rule that grants `resource` removed: some step fails with the
/// API server's Forbidden for one of the rule's verbs on one of its resources, and the cluster is left consistent.
#[allow(clippy::print_stdout, reason = "docs/operations.md's table of what fails without each rule (--nocapture)")]
async fn fails_without_the_rule_for(setup: Setup, resource: &str) {
    let rules = role_rules(setup);
    let index = rules
        .iter()
        .position(|rule| strings(&rule["resources"]).contains(&resource.to_owned()))
        .unwrap_or_else(|| panic!("no rule of the {setup:?} RBAC grants {resource}"));
    let world = setup.world().await;
    apply_rbac(&world, setup, Some(index)).await;
    let kubeconfig = world.service_account_kubeconfig("bookinfo", "fledge").await;
    let failure = Scenario { world: &world, kubeconfig }
        .run()
        .await
        .expect_err("the scenario cannot pass without a rule it needs");
    let forbidden: Vec<String> = grants(&rules[index])
        .iter()
        .map(|(verb, group, resource)| {
            format!("User \"{USER}\" cannot {verb} resource \"{resource}\" in API group \"{group}\"")
        })
        .collect();
    let named = failure.output.lines().find(|line| forbidden.iter().any(|message| line.contains(message)));
    let line = named.unwrap_or_default().trim();
    println!("{setup:?}: without the rule for {resource}: step `{}` failed: {line}", failure.step);
    assert!(
        named.is_some(),
        "step `{}` failed without naming one of {forbidden:#?}:\n{}",
        failure.step,
        failure.output
    );
    assert_consistent(&world, setup).await;
}

/// One test per rule of a Role, by a resource it grants; `every_rule_has_its_test` keeps the list whole.
macro_rules! without_rule {
    ($module:ident, $setup:expr, { $($test:ident: $resource:literal),* $(,)? }) => {
        mod $module {
            use super::*;

            const TESTED: &[&str] = &[$($resource),*];
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    fails_without_the_rule_for($setup, $resource).await;
                }
            )*

            #[test]
            fn every_rule_has_its_test() {
                let rules = role_rules($setup);
                let covered: Vec<usize> = TESTED
                    .iter()
                    .map(|resource| {
                        rules
                            .iter()
                            .position(|rule| strings(&rule["resources"]).contains(&(*resource).to_owned()))
                            .unwrap_or_else(|| panic!("no rule grants {resource}"))
                    })
                    .collect();
                let all: Vec<usize> = (0..rules.len()).collect();
                assert_eq!(covered, all, "one test per rule of the Role, in order");
            }
        }
    };
}

without_rule!(istio, Setup::Istio, {
    without_deployments: "deployments",
    without_deployments_scale: "deployments/scale",
    without_pods: "pods",
    without_pods_log: "pods/log",
    without_events: "events",
    without_services: "services",
    without_configmaps: "configmaps",
    without_leases: "leases",
    without_virtualservices: "virtualservices",
    without_destinationrules: "destinationrules",
    without_httproutes: "httproutes",
});

without_rule!(gateway_api, Setup::GatewayApi, {
    without_deployments: "deployments",
    without_deployments_scale: "deployments/scale",
    without_pods: "pods",
    without_pods_log: "pods/log",
    without_events: "events",
    without_services: "services",
    without_configmaps: "configmaps",
    without_leases: "leases",
    without_httproutes: "httproutes",
    without_virtualservices: "virtualservices",
});
