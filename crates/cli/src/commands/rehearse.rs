//! `fledge rehearse FILE --scenario S | --all`: the user's release policy against simulated bad versions.

use crate::adapters::{SetupError, ports_for};
use crate::cli::{LogFormat, OutputFormat, Provider};
use crate::launch::{Launch, Signals, launch_release};
use crate::progress::EventWriter;
use crate::rehearsal::{self, Rehearsal};
use crate::reports::{Recorder, ReleaseReport};
use crate::simulation::{SimulatedWorld, WorldError};
use fledge_core::{Outcome, Phase, Release};
use fledge_runner::Event;
use futures::StreamExt as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Why a rehearsal could not run.
#[derive(Debug, thiserror::Error)]
enum RehearseError {
    #[error("failed to rehearse `{scenario}`: the behaviour is not a fledge-sim preset")]
    Behaviour {
        scenario: String,
        #[source]
        source: fledge_sim::behaviour::BehaviourError,
    },
    #[error("failed to rehearse `{scenario}`")]
    World {
        scenario: String,
        #[source]
        source: WorldError,
    },
    #[error("failed to rehearse `{scenario}`")]
    Setup {
        scenario: String,
        #[source]
        source: SetupError,
    },
}

/// Rehearsals run at once with `--all` (each has its own simulator and Prometheus).
const PARALLEL: usize = 2;

#[allow(clippy::too_many_arguments, reason = "the command's options, as clap parsed them")]
pub(super) fn run(
    file: &std::path::Path,
    scenario: Option<&str>,
    all: bool,
    rps: f64,
    speed: Option<f64>,
    provider: Option<Provider>,
    repeat: u32,
    report_html: Option<&std::path::Path>,
    output: OutputFormat,
) -> Outcome {
    let mut release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    if let Some(provider) = provider {
        provider.apply(&mut release);
    }
    let scenarios: Vec<String> = if all {
        rehearsal::STANDARD_SET.iter().map(|scenario| (*scenario).to_owned()).collect()
    } else {
        scenario.into_iter().map(str::to_owned).collect()
    };
    let speed = speed.unwrap_or_else(|| rehearsal::default_speed(&release)).max(1.0);
    let verbose = !all && repeat == 1;
    let rehearsals = rehearse_all(release, scenarios, repeat, report_html, rps, speed, output, verbose);
    super::block_on(rehearsals, |_| Outcome::InternalError)
}

#[allow(clippy::too_many_arguments, reason = "the command's options, as clap parsed them")]
async fn rehearse_all(
    release: Release,
    scenarios: Vec<String>,
    repeat: u32,
    report_html: Option<&std::path::Path>,
    rps: f64,
    speed: f64,
    output: OutputFormat,
    verbose: bool,
) -> Result<Outcome, RehearseError> {
    for scenario in &scenarios {
        if !Rehearsal::is_healthy(scenario) {
            fledge_sim::behaviour::Behaviour::parse(scenario)
                .map_err(|source| RehearseError::Behaviour { scenario: scenario.clone(), source })?;
        }
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "rehearsing {} {} at {speed}x speed with {rps} requests per second: {}",
        release.service.name,
        release.service.version,
        scenarios.join(", ")
    );
    let runs = scenarios.iter().flat_map(|scenario| (1..=repeat).map(move |repetition| (scenario.clone(), repetition)));
    let results: Vec<Result<Rehearsal, RehearseError>> = futures::stream::iter(runs)
        .map(|(scenario, repetition)| rehearse(&release, scenario, repetition, report_html, rps, speed, verbose))
        .buffered(PARALLEL)
        .collect()
        .await;
    let rehearsals = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let text = match output {
        OutputFormat::Text if repeat > 1 => crate::views::rehearsal::render_repeated(&rehearsals),
        OutputFormat::Text => crate::views::rehearsal::render(&rehearsals),
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(&rehearsals).expect("rehearsals serialize")),
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    let expected = rehearsals.iter().all(|rehearsal| rehearsal.as_expected);
    Ok(if expected { super::SUCCEEDED } else { Outcome::PreflightFailed })
}

async fn rehearse(
    release: &Release,
    scenario: String,
    repetition: u32,
    report_html: Option<&std::path::Path>,
    rps: f64,
    speed: f64,
    verbose: bool,
) -> Result<Rehearsal, RehearseError> {
    let world_error = |source| RehearseError::World { scenario: scenario.clone(), source };
    let world = SimulatedWorld::start(rehearsal::scenario_for(release, &scenario, rps, speed), 0, None)
        .await
        .map_err(world_error)?;
    world.wait_for_traffic(&release.service.namespace, &release.service.name).await.map_err(world_error)?;
    let mut fast = rehearsal::compress(release, speed);
    fast.prometheus = fledge_core::release::Prometheus {
        url: world.prometheus_url.clone(),
        timeout: fast.prometheus.timeout,
        bearer_token_file: None,
        basic_auth: None,
        ca_file: None,
        insecure_skip_verify: false,
        headers: Default::default(),
    };
    fast.service.previous_version = Some(rehearsal::live_version(release));

    let started = Instant::now();
    let timeline: Arc<Mutex<Vec<(f64, Event)>>> = Arc::default();
    let writer = EventWriter::new(&fast, LogFormat::Text);
    let recorder = {
        let timeline = timeline.clone();
        let forward = writer.reporter();
        Arc::new(move |event: &Event| {
            timeline
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push((started.elapsed().as_secs_f64(), event.clone()));
            if verbose {
                forward(event);
            }
        })
    };
    let ports = ports_for(&fast, world.clients.clone(), world.fence.clone(), verbose.then(|| writer.progress()))
        .await
        .map_err(|source| RehearseError::Setup { scenario: scenario.clone(), source })?;
    let launch = Launch {
        run_id: format!("rehearsal-{scenario}-{repetition}"),
        approve: false,
        signals: Signals::Ignored,
        abort: false,
    };
    let reports = Recorder::new();
    let outcome = launch_release(&fast, &ports, reports.reporter(recorder), launch).await;
    if let Some(directory) = report_html {
        let name: String = scenario
            .chars()
            .map(|character| if character.is_ascii_alphanumeric() || character == '-' { character } else { '_' })
            .collect();
        let path = directory.join(format!("{name}-{repetition}.html"));
        let page = ReleaseReport::new(&fast, outcome, &reports).html(&fast);
        if let Err(error) = std::fs::write(&path, page) {
            let _ = writeln!(
                std::io::stderr().lock(),
                "warning: failed to write the HTML report {}: {error}",
                path.display()
            );
        }
    }

    let timeline = timeline.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    let rolling_back = timeline.iter().find(|(_, event)| matches!(event, Event::RollingBack { .. }));
    let caught_at = rolling_back.map(|(at, _)| {
        let stage = timeline.iter().rev().filter(|(time, _)| time <= at).find_map(|(_, event)| match event {
            Event::StageStarted { index, weight, .. } => Some(format!("stage {} ({weight})", index + 1)),
            Event::Promoted => Some("after promotion".to_owned()),
            _ => None,
        });
        stage.unwrap_or_else(|| Phase::Gate.to_string())
    });
    let detail = rolling_back.and_then(|(_, event)| match event {
        Event::RollingBack { detail, .. } => Some(detail.clone()),
        _ => None,
    });
    let served = world.sim.served(&release.service.namespace, &release.deployment_name());
    let as_expected = if Rehearsal::is_healthy(&scenario) {
        outcome == Outcome::Promoted
    } else {
        matches!(outcome, Outcome::RolledBack(_))
    };
    let _ = writeln!(std::io::stderr().lock(), "rehearsed {scenario}: {outcome}");
    Ok(Rehearsal {
        scenario,
        repetition,
        outcome,
        as_expected,
        caught_at,
        time_to_abort_seconds: rolling_back.map(|(at, _)| at * speed),
        requests_to_new: served.requests,
        failed_requests: served.failed,
        detail,
    })
}
