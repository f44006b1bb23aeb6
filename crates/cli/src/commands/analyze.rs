//! `fledge analyze FILE`: one round of the release's metric checks, now, as a table. Counted checks judge the
//! requests of the lookback (`--since`) as one look of their sequential test.

use crate::cli::OutputFormat;
use fledge_core::analysis::RoundVerdict;
use fledge_core::{Duration, Outcome, Release, RollbackReason};
use fledge_metrics::{AnalysisTarget, Analyzer, ClientError, PrometheusClient};
use std::io::Write as _;
use std::path::Path;

/// Why `fledge analyze` could not ask.
#[derive(Debug, thiserror::Error)]
enum AnalyzeError {
    #[error("failed to set up the Prometheus client")]
    Client(#[source] ClientError),
}

/// The outcome of a round: the exit code a pipeline gates on.
fn outcome_of(verdict: RoundVerdict) -> Outcome {
    match verdict {
        RoundVerdict::Passed => super::SUCCEEDED,
        RoundVerdict::Failed => Outcome::RolledBack(RollbackReason::Metrics),
        RoundVerdict::NoData => Outcome::RolledBack(RollbackReason::Deadline),
        RoundVerdict::Errored => Outcome::PreflightFailed,
    }
}

pub(super) fn run(
    file: &Path,
    previous_version: Option<&str>,
    since: Option<Duration>,
    output: OutputFormat,
) -> Outcome {
    let release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    super::block_on(analyze(&release, previous_version, since, output), |_client_error| Outcome::PreflightFailed)
}

async fn analyze(
    release: &Release,
    previous_version: Option<&str>,
    since: Option<Duration>,
    output: OutputFormat,
) -> Result<Outcome, AnalyzeError> {
    let client = PrometheusClient::new(&release.prometheus).map_err(AnalyzeError::Client)?;
    let interval = release.analysis.interval.as_std();
    let detection_deadline = tokio::time::Instant::now() + release.prometheus.timeout.as_std();
    let data_plane = fledge_metrics::data_plane::detect(&client, release, previous_version, detection_deadline).await;
    let target = AnalysisTarget::for_release(release, previous_version, data_plane);
    let analyzer = Analyzer::new(client, release.analysis.clone(), target.clone());
    let lookback = since.map_or(interval * 10, Duration::as_std);
    let judge_since = jiff::Timestamp::now() - lookback;
    // Queries are retried within one analysis interval, as in a release stage.
    let deadline = tokio::time::Instant::now() + interval.max(release.prometheus.timeout.as_std());
    let mut round = analyzer.round(judge_since, deadline).await;
    // Counted checks: their counters then and now, as one look of the sequential test over the lookback.
    let mut counted = fledge_core::counted_checks::CountedChecks::of(&release.analysis);
    if !counted.is_empty() {
        let (then, now) = futures::join!(analyzer.counts_at(judge_since, deadline), analyzer.counts(deadline));
        counted.start_stage(0); // compared with the live version, whatever the route's weights
        counted.look(then);
        counted.look(now);
        round.checks.extend(counted.results(jiff::Timestamp::now()));
        round.verdict = RoundVerdict::of(round.checks.iter().map(|check| check.verdict), release.analysis.no_data);
    }
    let text = match output {
        OutputFormat::Text => crate::views::analyze::render(release, &target, &round),
        OutputFormat::Json => {
            let json = serde_json::json!({ "verdict": round.verdict, "checks": round.checks });
            format!("{}\n", serde_json::to_string_pretty(&json).expect("a round serializes"))
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(outcome_of(round.verdict))
}
