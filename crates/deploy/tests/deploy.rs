//! fledge-deploy against fledge-sim: the new Deployment copies the live one, re-applying changes nothing, and the
//! live version is found or the error says how to name it.

use fledge_core::Release;
use fledge_deploy::{DeployError, Deployer, RolloutStatus};
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use std::time::Duration;

async fn bookinfo() -> (Sim, kube::Client) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sim/bookinfo.yaml")).unwrap();
    let mut scenario = Scenario::parse(&text).unwrap();
    scenario.time_scale = 20.0;
    let sim = Sim::start(SimConfig { scenario, ..SimConfig::default() }).await.unwrap();
    let client = fledge_kube_client::client_for_url(sim.api_url(), &Default::default()).unwrap();
    (sim, client)
}

fn release(service: &str, version: &str, extra: &str) -> Release {
    let text = format!(
        "apiVersion: fledge/v1\nkind: Release\nservice: {{name: {service}, namespace: bookinfo, version: {version}}}\ndeploy:\n  image: registry.example.com/bookinfo/reviews:2.0.0\n{extra}"
    );
    fledge_manifest::parse(&text).unwrap().release
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_a_copy_of_the_live_version_and_reapplying_changes_nothing() {
    let (_sim, client) = bookinfo().await;
    let deployer = Deployer::new(client, "bookinfo");
    let release = release("reviews", "v2", "");
    deployer.check_service("reviews").await.unwrap();
    let first = deployer.apply(&release, None).await.unwrap();
    let spec = first.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(3), "the live version's replicas");
    let container = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("registry.example.com/bookinfo/reviews:2.0.0"));
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 9080, "the rest of the template is copied");
    assert!(container.resources.as_ref().unwrap().requests.is_some());
    let managers: Vec<String> =
        first.metadata.managed_fields.iter().flatten().filter_map(|entry| entry.manager.clone()).collect();
    assert_eq!(managers, ["fledge"]);

    // The controllers may update the status in between (a new resourceVersion); the spec must be untouched.
    let second = deployer.apply(&release, None).await.unwrap();
    assert_eq!(second.metadata.generation, Some(1), "re-applying changes nothing in the spec");
    assert_eq!(second.spec, first.spec);

    let status = loop {
        let status = deployer.rollout_status("reviews-v2").await.unwrap();
        if status == RolloutStatus::Complete {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, RolloutStatus::Complete);
    deployer.scale("reviews-v2", 1).await.unwrap();
    assert_eq!(deployer.get("reviews-v2").await.unwrap().unwrap().spec.unwrap().replicas, Some(1));
    deployer.delete("reviews-v2").await.unwrap();
    assert!(deployer.get("reviews-v2").await.unwrap().is_none());
    deployer.delete("reviews-v2").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn says_how_to_name_the_live_version_when_it_cannot_tell() {
    let (_sim, client) = bookinfo().await;
    let deployer = Deployer::new(client, "bookinfo");
    let error = deployer.apply(&release("ratings", "v2", ""), None).await.unwrap_err();
    assert!(matches!(error, DeployError::NoLiveVersion { .. }));
    assert_eq!(
        error.to_string(),
        "unable to find the live version of ratings in bookinfo: no other Deployment has label app=ratings; set service.previousVersion, deploy.from or deploy.template"
    );
    deployer.apply(&release("reviews", "v2", "  replicas: 1\n"), None).await.unwrap();
    let error = deployer.apply(&release("reviews", "v3", ""), None).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "unable to tell which Deployment is the live version of reviews: reviews-v1, reviews-v2; set service.previousVersion"
    );
    let named = deployer.apply(&release("reviews", "v3", ""), Some("v1")).await.unwrap();
    assert_eq!(named.spec.unwrap().replicas, Some(3));
    let missing = deployer.check_service("ratings").await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "unable to find Service bookinfo/ratings: the release routes traffic to it, so it must exist"
    );
}
