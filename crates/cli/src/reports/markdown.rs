//! The report as a Markdown summary, for `$GITHUB_STEP_SUMMARY` (GitLab and others render it too).

use super::ReleaseReport;
use fledge_core::Outcome;
use std::fmt::Write as _;

impl ReleaseReport {
    /// A Markdown summary, for `$GITHUB_STEP_SUMMARY`.
    pub(crate) fn markdown(&self) -> String {
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
        out
    }
}
