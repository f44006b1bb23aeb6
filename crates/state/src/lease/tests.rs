//! The release lock against fledge-sim: held against other runs, taken over once expired, lost by the frozen run
//! that held it (which then writes nothing, not even its release), and never taken by a write that conflicts.

use super::*;
use fledge_sim::faults::FaultSettings;
use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};

const LEASE: &str = "fledge-release-reviews";

async fn cluster() -> (Sim, kube::Client) {
    let scenario =
        Scenario::parse("objects:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: bookinfo}}\n").unwrap();
    let sim = Sim::start(SimConfig { scenario, ..SimConfig::default() }).await.unwrap();
    let client = fledge_kube_client::client_for_url(sim.api_url(), &Default::default()).unwrap();
    (sim, client)
}

fn lock(client: &kube::Client) -> ReleaseLock {
    ReleaseLock::new(Api::namespaced(client.clone(), "bookinfo"), "bookinfo", LEASE, WriteFence::new())
}

async fn holder(client: &kube::Client) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), "bookinfo").get(LEASE).await.unwrap();
    holder_of(&lease).map(str::to_owned)
}

/// Freezes `lock`'s run: its renewals stop, and its last renewal is `ago` old.
async fn freeze(lock: &ReleaseLock, client: &kube::Client, ago: Duration) {
    lock.renewal.lock().unwrap().take().expect("a renewal runs").abort();
    age(client, ago).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_run_loses_its_lock_to_the_run_that_took_it_over_and_writes_nothing_more() {
    let (_sim, client) = cluster().await;
    let (first, second) = (lock(&client), lock(&client));
    assert_eq!(first.take("run-a").await.unwrap(), Taken::Ours);
    assert!(first.fence.permit(Duration::ZERO).await.is_ok(), "the holder may write");
    assert_eq!(second.take("run-b").await.unwrap(), Taken::Theirs("run-a".into()), "held by a live run");

    freeze(&first, &client, LEASE_DURATION + Duration::from_secs(5)).await;
    assert_eq!(second.take("run-b").await.unwrap(), Taken::Ours, "an expired lease is taken over");
    assert_eq!(holder(&client).await.as_deref(), Some("run-b"));

    // The frozen run wakes up: its next renewal finds the other holder.
    first.start_renewal("run-a");
    let lost = tokio::time::timeout(RENEW_PERIOD * 5, first.lost()).await.expect("the loss is signalled");
    assert_eq!(lost.reason, "it was taken over by run run-b");
    let refused = first.fence.permit(Duration::ZERO).await.expect_err("no write passes a lost lock");
    assert_eq!(refused.reason, lost.reason);
    first.release("run-a").await.unwrap();
    assert_eq!(holder(&client).await.as_deref(), Some("run-b"), "releasing a lost lock writes nothing");

    second.release("run-b").await.unwrap();
    assert_eq!(holder(&client).await, None, "released by its holder");
    assert!(second.fence.permit(Duration::ZERO).await.is_ok(), "released, not lost");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_take_whose_guarded_writes_keep_conflicting_is_not_taken() {
    let (sim, client) = cluster().await;
    let first = lock(&client);
    assert_eq!(first.take("run-a").await.unwrap(), Taken::Ours);
    freeze(&first, &client, LEASE_DURATION + Duration::from_secs(5)).await;
    // Every write carrying a resourceVersion is answered 409, as when other runs write the Lease first each time.
    sim.faults().set(FaultSettings { conflict_rate: 1.0, ..FaultSettings::default() });
    let second = lock(&client);
    assert_eq!(second.take("run-b").await.unwrap(), Taken::Theirs("other runs taking the lock now".into()));
    sim.faults().set(FaultSettings::default());
    assert_eq!(holder(&client).await.as_deref(), Some("run-a"), "the expired lease was not overwritten");
    assert!(second.fence.permit(Duration::ZERO).await.is_ok(), "no lock held: the fence is open");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_holder_read_without_taking_is_a_run_that_renews_the_lease() {
    let (_sim, client) = cluster().await;
    let (running, watching) = (lock(&client), lock(&client));
    assert_eq!(watching.holder().await.unwrap(), None, "no Lease yet");
    assert_eq!(running.take("run-a").await.unwrap(), Taken::Ours);
    assert_eq!(watching.holder().await.unwrap().as_deref(), Some("run-a"));

    freeze(&running, &client, LEASE_DURATION - Duration::from_secs(5)).await;
    assert_eq!(watching.holder().await.unwrap().as_deref(), Some("run-a"), "renewed within its duration");
    age(&client, LEASE_DURATION + Duration::from_secs(5)).await;
    assert_eq!(watching.holder().await.unwrap(), None, "a run killed mid-release holds nothing once its lease expired");
    assert_eq!(holder(&client).await.as_deref(), Some("run-a"), "reading took nothing over");

    assert_eq!(running.take("run-a").await.unwrap(), Taken::Ours);
    running.release("run-a").await.unwrap();
    assert_eq!(watching.holder().await.unwrap(), None, "released");
}

/// Ages the Lease's last renewal to `ago` (its run's renewals stopped already).
async fn age(client: &kube::Client, ago: Duration) {
    let leases = Api::<Lease>::namespaced(client.clone(), "bookinfo");
    let mut lease = leases.get(LEASE).await.unwrap();
    let aged = jiff::Timestamp::now() - jiff::SignedDuration::try_from(ago).unwrap();
    lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(aged));
    leases.replace(LEASE, &PostParams::default(), &lease).await.unwrap();
}
