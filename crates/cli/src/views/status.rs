//! What `fledge status` shows: the run record of the service's release and the route's weights now.

use fledge_core::ports::RouteWeights;
use fledge_core::state::RunRecord;
use fledge_core::{Phase, Release};
use std::fmt::Write as _;

/// The status of `release`'s service: its record, if any, and the weights read now, if they could be.
pub(crate) struct Status<'a> {
    pub(crate) release: &'a Release,
    pub(crate) record: Option<RunRecord>,
    pub(crate) weights: Option<RouteWeights>,
}

impl Status<'_> {
    /// As JSON: `{"record": ..., "route": {"live", "new", "share"}}`.
    pub(crate) fn json(&self) -> String {
        let json = serde_json::json!({
            "record": self.record,
            "route": self.weights.map(|weights| serde_json::json!({
                "live": weights.live, "new": weights.new, "share": weights.share
            })),
        });
        format!("{}\n", serde_json::to_string_pretty(&json).expect("status serializes"))
    }

    /// As text, for people.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let release = self.release;
        let Some(record) = &self.record else {
            let _ = writeln!(out, "{} in {}: no release recorded", release.service.name, release.service.namespace);
            return out;
        };
        let state = match record.outcome {
            Some(outcome) => format!("finished: {outcome}"),
            None => format!("in flight: {}", record.phase),
        };
        let _ = writeln!(
            out,
            "{} in {}: {} replacing {}, {state}",
            record.service, record.namespace, record.version, record.previous_version
        );
        if let (Phase::Stage { index }, Some(tally)) = (record.phase, &record.tally) {
            let _ = writeln!(
                out,
                "  stage     {} of {}: {}s counted, {}s held, {} passed and {} failed rounds",
                index + 1,
                release.stages.len(),
                record.stage_elapsed_seconds,
                record.stage_held_seconds,
                tally.passed_rounds,
                tally.failed_rounds
            );
        }
        if let Some(weights) = self.weights {
            let _ = writeln!(
                out,
                "  route     {} takes {} and {} takes {} of {}",
                record.version, weights.new, record.previous_version, weights.live, weights.share
            );
        }
        if !record.detail.is_empty() {
            let _ = writeln!(out, "  why       {}", record.detail);
        }
        if let Some(failure) = &record.rollback_failure {
            let _ = writeln!(out, "  rollback  could not finish: {failure}");
        }
        let _ = writeln!(
            out,
            "  run       {}, started {}, updated {}",
            record.run_id, record.started_at, record.updated_at
        );
        if record.in_flight() {
            let _ = writeln!(
                out,
                "  next      `fledge run` with the manifest of {} resumes it; `fledge abort` rolls it back",
                record.version
            );
        }
        out
    }
}
