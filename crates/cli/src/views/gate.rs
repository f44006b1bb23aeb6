//! What `fledge gate` shows: the gate's verdict on the new version's pods, with a hint and the diagnostics when it
//! failed.

use fledge_core::Release;
use fledge_gate::GateOutcome;
use std::fmt::Write as _;

/// The verdict of the gate on `deployment` of `release`, as text.
pub(crate) fn render(release: &Release, deployment: &str, outcome: &GateOutcome) -> String {
    let seconds = |elapsed: &std::time::Duration| format!("{:.1}s", elapsed.as_secs_f64());
    let mut out = String::new();
    match outcome {
        GateOutcome::Healthy { elapsed } => {
            let replicas = release.deploy.replicas.map_or_else(|| "every".to_owned(), |replicas| replicas.to_string());
            let _ = writeln!(
                out,
                "{deployment}: healthy after {}: {replicas} pod(s) Ready and stable for {}",
                seconds(elapsed),
                release.gate.stable_for
            );
        }
        GateOutcome::Failed { failure, diagnostics, elapsed } => {
            let _ = writeln!(out, "{deployment}: failed after {}: {failure}", seconds(elapsed));
            let _ = writeln!(out, "hint: {}", failure.kind.hint());
            let _ = writeln!(out);
            let _ = write!(out, "{diagnostics}");
        }
    }
    out
}
