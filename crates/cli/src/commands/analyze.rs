//! `fledge analyze FILE`: one round of the release's metric checks, now, as a table.

use crate::cli::OutputFormat;
use fledge_core::analysis::{CheckResult, RoundVerdict};
use fledge_core::release::NoDataPolicy;
use fledge_core::{CheckVerdict, Duration, Outcome, Release, RollbackReason};
use fledge_metrics::{AnalysisTarget, Analyzer, ClientError, PrometheusClient, Round};
use std::fmt::Write as _;
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
    let target = AnalysisTarget::for_release(release, previous_version);
    let analyzer = Analyzer::new(client, release.analysis.clone(), target.clone());
    let interval = release.analysis.interval.as_std();
    let lookback = since.map_or(interval * 10, Duration::as_std);
    let judge_since = jiff::Timestamp::now() - lookback;
    // Queries are retried within one analysis interval, as in a release stage.
    let deadline = tokio::time::Instant::now() + interval.max(release.prometheus.timeout.as_std());
    let round = analyzer.round(judge_since, deadline).await;
    let text = match output {
        OutputFormat::Text => render_table(release, &target, &round),
        OutputFormat::Json => {
            let json = serde_json::json!({ "verdict": round.verdict, "checks": round.checks });
            format!("{}\n", serde_json::to_string_pretty(&json).expect("a round serializes"))
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(outcome_of(round.verdict))
}

fn verdict_word(verdict: CheckVerdict) -> &'static str {
    match verdict {
        CheckVerdict::Pass => "pass",
        CheckVerdict::Fail => "FAIL",
        CheckVerdict::NoData => "no data",
        CheckVerdict::Error => "ERROR",
    }
}

fn number(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "-".to_owned(),
        Some(value) if value.abs() >= 10.0 => format!("{value:.1}{unit}"),
        Some(value) => format!("{value:.3}{unit}"),
    }
}

/// The round as a table, then the details of every check that did not pass.
fn render_table(release: &Release, target: &AnalysisTarget, round: &Round) -> String {
    let mut out = String::new();
    let compared =
        target.previous.as_ref().map_or_else(String::new, |previous| format!(", compared with {}", previous.version));
    let _ = writeln!(
        out,
        "{} {} in {}{compared}: {} check(s) against {}",
        release.service.name,
        release.service.version,
        release.service.namespace,
        round.checks.len(),
        release.prometheus.url
    );
    let rows: Vec<[String; 5]> = round
        .checks
        .iter()
        .map(|check| {
            [
                check.name.clone(),
                verdict_word(check.verdict).to_owned(),
                number(check.value, &check.unit),
                number(check.previous_value, &check.unit),
                check.threshold.clone(),
            ]
        })
        .collect();
    let header = ["CHECK", "VERDICT", "VALUE", "PREVIOUS", "THRESHOLD"].map(str::to_owned);
    let mut widths = header.clone().map(|title| title.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for check in round.checks.iter().filter(|check| check.verdict != CheckVerdict::Pass || !check.detail.is_empty()) {
        write_detail(&mut out, check);
    }
    let policy = match release.analysis.no_data {
        NoDataPolicy::Hold => "a release would wait for data (noData: hold)",
        NoDataPolicy::Fail => "no data counts as a failure (noData: fail)",
        NoDataPolicy::Pass => "no data counts as a pass (noData: pass)",
    };
    let summary = match round.verdict {
        RoundVerdict::Passed => "passed".to_owned(),
        RoundVerdict::Failed => "failed".to_owned(),
        RoundVerdict::NoData => format!("no data: {policy}"),
        RoundVerdict::Errored => {
            "error: Prometheus could not answer every query; an error never counts as a pass".to_owned()
        }
    };
    let _ = writeln!(out, "\nround: {summary}");
    out
}

fn write_detail(out: &mut String, check: &CheckResult) {
    let _ = writeln!(out, "\n{}: {}", check.name, verdict_word(check.verdict));
    if !check.detail.is_empty() {
        let _ = writeln!(out, "  {}", check.detail);
    }
    if check.verdict != CheckVerdict::Pass {
        let _ = writeln!(out, "  query: {}", check.query);
        let _ = writeln!(out, "  at:    {}", check.evaluated_at);
    }
}
