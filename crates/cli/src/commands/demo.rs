//! `fledge demo`: a whole release, then a rollback, on a simulated cluster with a real Prometheus, shown as a user
//! would watch them.

use crate::adapters::{SetupError, ports_for};
use crate::cli::{LogFormat, Provider};
use crate::launch::{Launch, Signals, launch_release, run_id};
use crate::progress::EventWriter;
use crate::simulation::{SimulatedWorld, WorldError};
use crate::views::release::render_result;
use fledge_core::{Outcome, Release, RollbackReason};
use fledge_runner::{Event, Reporter};
use fledge_sim::prometheus::PrometheusError;
use fledge_sim::scenario::Scenario;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const DEMO_MANIFEST: &str = include_str!("../../../../examples/demo.yaml");
const BOOKINFO: &str = include_str!("../../../../examples/sim/bookinfo.yaml");
const BOOKINFO_GATEWAY_API: &str = include_str!("../../../../examples/sim/bookinfo-gateway-api.yaml");
/// The image of the bad version: 8% of its requests fail (see the bookinfo scenario).
const BAD_IMAGE: &str = "registry.example.com/bookinfo/reviews:3.0.0-errors-8pct";

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
enum DemoError {
    #[error("failed to read the bookinfo scenario")]
    Scenario(#[source] fledge_sim::scenario::ScenarioError),
    #[error("failed to read examples/demo.yaml:\n{0}")]
    Manifest(String),
    #[error(transparent)]
    World(WorldError),
    #[error("failed to set up the release")]
    Setup(#[source] SetupError),
}

fn say(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

pub(super) fn run(
    gateway_api: bool,
    prometheus_url: Option<String>,
    metrics_port: u16,
    log_format: LogFormat,
) -> Outcome {
    super::block_on(demo(gateway_api, prometheus_url, metrics_port, log_format), |error| match error {
        DemoError::World(WorldError::Prometheus(PrometheusError::NotInstalled)) => Outcome::PreflightFailed,
        _ => Outcome::InternalError,
    })
}

async fn demo(
    gateway_api: bool,
    prometheus_url: Option<String>,
    metrics_port: u16,
    log_format: LogFormat,
) -> Result<Outcome, DemoError> {
    let scenario =
        Scenario::parse(if gateway_api { BOOKINFO_GATEWAY_API } else { BOOKINFO }).map_err(DemoError::Scenario)?;
    let mut release = fledge_manifest::parse(DEMO_MANIFEST)
        .map_err(|diagnostics| DemoError::Manifest(diagnostics.render("examples/demo.yaml", DEMO_MANIFEST)))?
        .release;
    if gateway_api {
        Provider::GatewayApi.apply(&mut release);
        say(
            "fledge demo: a simulated Kubernetes cluster (fledge-sim) with Istio, the bookinfo app routed by a Gateway API HTTPRoute, and Prometheus",
        );
    } else {
        say("fledge demo: a simulated Kubernetes cluster (fledge-sim) with Istio and the bookinfo app, and Prometheus");
    }
    let world = SimulatedWorld::start(scenario, metrics_port, prometheus_url).await.map_err(DemoError::World)?;
    say(&format!(
        "  Kubernetes API {} (try: kubectl --server {} get pods -n bookinfo)\n  Istio metrics  {}\n  Prometheus     {}",
        world.sim.api_url(),
        world.sim.api_url(),
        world.sim.metrics_url(),
        world.prometheus_url
    ));
    say("  reviews v1 is live and takes 50 requests per second; waiting for Prometheus to see them ...");
    world.wait_for_traffic("bookinfo", "reviews").await.map_err(DemoError::World)?;
    release.prometheus.url = world.prometheus_url.clone();

    say("\n== 1. release reviews v2, a healthy version: 10%, 30%, 60% of traffic, then 100% ==");
    let (healthy, _) = run_release(&world, &release, log_format).await?;

    let mut bad = release.clone();
    bad.service.version = "v3".into();
    bad.deploy.image = BAD_IMAGE.into();
    say("\n== 2. release reviews v3, whose image fails 8% of requests, with the same policy ==");
    let (broken, caught_at) = run_release(&world, &bad, log_format).await?;

    let expected = healthy == Outcome::Promoted && broken == Outcome::RolledBack(RollbackReason::Metrics);
    let stage = caught_at
        .map_or_else(String::new, |index| format!(" at stage {} ({}%)", index + 1, bad.stages[index].weight.percent()));
    say(&if expected {
        format!("\ndemo finished: v2 was promoted; v3 was caught{stage} and rolled back, v2 kept all traffic.")
    } else {
        "\ndemo finished, but not as expected: see the lines above.".to_owned()
    });
    Ok(if expected { super::SUCCEEDED } else { Outcome::InternalError })
}

/// Runs `release` to its end: its outcome, and the index of the last stage it started.
async fn run_release(
    world: &SimulatedWorld,
    release: &Release,
    log_format: LogFormat,
) -> Result<(Outcome, Option<usize>), DemoError> {
    let writer = EventWriter::new(release, log_format);
    let ports = ports_for(release, world.clients.clone(), world.fence.clone(), Some(writer.progress()))
        .await
        .map_err(DemoError::Setup)?;
    let launch = Launch { run_id: run_id(), approve: false, signals: Signals::Handled(writer.clone()), abort: false };
    let last_stage = Arc::new(Mutex::new(None));
    let (report, seen) = (writer.reporter(), last_stage.clone());
    let reporter: Reporter = Arc::new(move |event: &Event| {
        if let Event::StageStarted { index, .. } = event {
            *seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(*index);
        }
        report(event);
    });
    let started = Instant::now();
    let outcome = launch_release(release, &ports, reporter, launch).await;
    say(&format!("{} ({:.0}s)", render_result(release, outcome, writer.detail()), started.elapsed().as_secs_f64()));
    let last_stage = *last_stage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok((outcome, last_stage))
}
