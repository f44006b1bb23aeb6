//! The report as a Markdown summary, for `$GITHUB_STEP_SUMMARY` (GitLab and others render it too).

use super::ReleaseReport;
use fledge_core::analysis::CheckResult;
use fledge_core::release::Threshold;
use fledge_core::{Outcome, Release};
use std::fmt::Write as _;

impl ReleaseReport {
    /// A Markdown summary, for `$GITHUB_STEP_SUMMARY`.
    pub(crate) fn markdown(&self, release: &Release) -> String {
        let mut out = String::new();
        let icon = match self.outcome {
            Outcome::Promoted => "✅",
            Outcome::AwaitingApproval => "⏸️",
            Outcome::RolledBack(_) => "↩️",
            _ => "❌",
        };
        let _ = writeln!(
            out,
            "### {icon} fledge: {} {} in {}: `{}` (exit {})\n",
            self.service, self.version, self.namespace, self.outcome, self.exit_code
        );
        if let Some(reason) = &self.reason {
            let _ = writeln!(out, "**Why:** {reason}\n");
        }
        let _ = writeln!(out, "| step | weight | result | time | last checks |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        if let Some(gate) = &self.gate {
            let result = if gate.healthy { "healthy" } else { "failed" };
            let _ = writeln!(out, "| gate | 0% | {result} | {:.1}s | |", Self::seconds(gate.started_at, gate.ended_at));
        }
        for stage in &self.stages {
            let checks =
                stage.rounds.last().map(|round| crate::progress::round_summary_of(&round.checks)).unwrap_or_default();
            let _ = writeln!(
                out,
                "| stage {} | {} | {} | {:.1}s | {} |",
                stage.index + 1,
                stage.weight,
                stage.result.name(),
                Self::seconds(stage.started_at, stage.ended_at),
                checks.replace('|', "\\|")
            );
        }
        out.push('\n');
        self.mermaid_charts(&mut out, release);
        out
    }

    /// A mermaid `xychart-beta` per check: its value per round (the rounds with a value) and, for bounds, the
    /// threshold as a second line. GitHub and GitLab render them in the summary.
    fn mermaid_charts(&self, out: &mut String, release: &Release) {
        let mut names: Vec<&str> = Vec::new();
        let checks: Vec<&CheckResult> =
            self.stages.iter().flat_map(|stage| stage.rounds.iter()).flat_map(|round| round.checks.iter()).collect();
        for check in &checks {
            if !names.contains(&check.name.as_str()) {
                names.push(&check.name);
            }
        }
        for name in names {
            let values: Vec<f64> = checks
                .iter()
                .filter(|check| check.name == name)
                .filter_map(|check| check.value.filter(|value| value.is_finite()))
                .collect();
            if values.is_empty() {
                continue;
            }
            let bound = release.analysis.metrics.iter().find(|check| check.name == name).and_then(|check| match check
                .threshold
            {
                Threshold::Absolute { min, max } => min.or(max),
                _ => None,
            });
            let all = values.iter().copied().chain(bound);
            let (low, high) =
                all.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| (low.min(value), high.max(value)));
            let pad = ((high - low) * 0.1).max(0.5);
            let unit = checks.iter().find(|check| check.name == name).map_or("", |check| check.unit.as_str());
            let rounds: Vec<String> = (1..=values.len()).map(|round| round.to_string()).collect();
            let line = |values: &[f64]| values.iter().map(|value| format!("{value:.2}")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(out, "```mermaid\nxychart-beta");
            let _ = writeln!(
                out,
                "    title \"{} per round{}\"",
                name.replace('"', "'"),
                if unit.is_empty() { String::new() } else { format!(" ({unit})") }
            );
            let _ = writeln!(out, "    x-axis \"round\" [{}]", rounds.join(", "));
            let axis = if unit.is_empty() { "value" } else { unit };
            let _ = writeln!(out, "    y-axis \"{axis}\" {:.2} --> {:.2}", (low - pad).max(0.0).min(low), high + pad);
            let _ = writeln!(out, "    line [{}]", line(&values));
            if let Some(bound) = bound {
                let _ = writeln!(out, "    line [{}]", line(&vec![bound; values.len()]));
            }
            let _ = writeln!(out, "```\n");
        }
    }
}
