//! `fledge plan`: the whole preflight, with the new version's Deployment checked by the API server as a server-side
//! dry run, and nothing changed.

use crate::support::World;

#[tokio::test(flavor = "multi_thread")]
async fn plan_has_the_api_server_check_the_deployment_and_changes_nothing() {
    let world = World::start().await;
    let (service, rule) =
        (world.object("virtualservice", "reviews").await, world.object("destinationrule", "reviews").await);
    let plan = world.fledge(&["plan"], &world.manifest("v2", "2.0.0", |text| text)).await;
    assert_eq!(plan.code, 0, "{plan:#?}");
    let deploy_line = format!(
        "  deploy    Deployment reviews-v2 (image {}, 2 replicas, labels app=reviews, version=v2) at 0% traffic; the \
         API server accepts it (server-side dry run)\n",
        crate::support::image("2.0.0")
    );
    assert!(plan.stdout.contains(&deploy_line), "`fledge plan` lacks {deploy_line:?}:\n{}", plan.stdout);
    assert_eq!(world.object("virtualservice", "reviews").await, service);
    assert_eq!(world.object("destinationrule", "reviews").await, rule);
    assert!(world.deployment("reviews-v2").await.is_none(), "the dry run stored nothing");
    if let Some(writes) = world.writes() {
        let by_fledge: Vec<_> = writes.iter().filter(|write| write.user_agent.starts_with("fledge/")).collect();
        assert!(by_fledge.is_empty(), "`fledge plan` wrote to the cluster: {by_fledge:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_and_run_stop_at_preflight_when_the_api_server_would_refuse_the_deployment() {
    let world = World::start().await;
    let service = world.object("virtualservice", "reviews").await;
    // Valid as a manifest (every container has a name), refused by the API server (the logger has no image).
    let manifest = world.manifest("v2", "2.0.0", |text| {
        text.replace(
            "deploy: {image: ",
            "deploy:\n  template:\n    spec:\n      containers: [{name: reviews}, {name: logger}]\n  image: ",
        )
        .replace(", replicas: 2}\n", "\n  replicas: 2\n")
    });
    let refusal = "the API server would not accept Deployment bookinfo/reviews-v2 (server-side dry run, nothing was \
                   stored): ApiError: Deployment.apps \"reviews-v2\" is invalid: spec.template.spec.containers[1].image: \
                   Required value";
    let plan = world.fledge(&["plan"], &manifest).await;
    assert_eq!(plan.code, 3, "{plan:#?}");
    assert!(plan.other.iter().any(|line| line.contains(refusal)), "{plan:#?}");
    let run = world.fledge(&["run"], &manifest).await;
    assert_eq!(run.code, 3, "{run:#?}");
    let failed = run.event("preflight-failed").expect("preflight failed");
    assert!(failed["error"].as_str().is_some_and(|error| error.contains(refusal)), "{failed}");
    assert!(world.deployment("reviews-v2").await.is_none());
    assert_eq!(world.object("virtualservice", "reviews").await, service, "the route is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_of_a_release_in_flight_says_run_resumes_it_and_of_another_version_that_it_is_locked() {
    let world = World::start().await;
    let approval = world.manifest("v2", "2.0.0", |text| {
        text.replace("  - {weight: 20, duration: 6s}", "  - {weight: 20, duration: 6s, approval: true}")
    });
    let waiting = world.fledge(&["run"], &approval).await;
    assert_eq!(waiting.code, 4, "{waiting:#?}");

    let same = world.fledge(&["plan"], &approval).await;
    assert_eq!(same.code, 0, "{same:#?}");
    assert_eq!(
        same.stdout,
        "reviews v2 is in flight at awaiting approval after stage 1: `fledge run` on this manifest resumes it\n"
    );
    let other = world.fledge(&["plan"], &world.manifest("v3", "3.0.0", |text| text)).await;
    assert_eq!(other.code, 5, "{other:#?}");
    assert_eq!(other.stdout, "");
    assert!(
        other.other.iter().any(|line| line
            == "locked: the release of reviews v2 is in flight (awaiting approval after stage 1); finish it with its manifest, or `fledge abort`"),
        "{other:#?}"
    );
}
