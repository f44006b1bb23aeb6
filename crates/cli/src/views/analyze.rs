//! What `fledge analyze` shows: one round of checks as a table, the details of every check that did not pass, and
//! the round's verdict.

use super::table;
use fledge_core::analysis::{CheckResult, RoundVerdict};
use fledge_core::release::NoDataPolicy;
use fledge_core::{CheckVerdict, Release};
use fledge_metrics::{AnalysisTarget, Round};
use std::fmt::Write as _;

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
pub(crate) fn render(release: &Release, target: &AnalysisTarget, round: &Round) -> String {
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
    out.push_str(&table::render(["CHECK", "VERDICT", "VALUE", "PREVIOUS", "THRESHOLD"], &rows));
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
