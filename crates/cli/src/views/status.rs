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
        for (check, test) in &record.counted_tests {
            let _ = writeln!(
                out,
                "  evidence  {check}: {:.1} that the new version is worse, as of the last round ({:.0} rolls it back)",
                test.evidence(),
                test.bound()
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

#[cfg(test)]
mod tests {
    use super::*;
    use fledge_core::sequential::{Counts, SequentialTest};

    #[test]
    fn a_release_with_counted_checks_shows_their_evidence() {
        let manifest = "apiVersion: fledge/v1\nkind: Release\nservice: {name: reviews, namespace: bookinfo, version: v2}\ndeploy: {image: example.com/reviews:2}\nanalysis: {metrics: [{builtin: success-rate, detect: 1%}]}\n";
        let release = fledge_manifest::parse(manifest).expect("valid").release;
        let started = jiff::Timestamp::UNIX_EPOCH;
        let mut record = RunRecord::start(&release, "run-1", "v1", "reviews-v1", serde_json::json!({}), started);
        record.phase = Phase::Stage { index: 0 };
        let mut test = SequentialTest::new(0.01);
        test.observe(&Counts { new_total: 10, new_bad: 2, live_total: 90, live_bad: 0 });
        record.counted_tests.insert("success-rate".into(), test);
        let text = Status { release: &release, record: Some(record), weights: None }.text();
        assert_eq!(
            text,
            "reviews in bookinfo: v2 replacing v1, in flight: stage 1\n  \
             evidence  success-rate: 55.5 that the new version is worse, as of the last round (100 rolls it back)\n  \
             run       run-1, started 1970-01-01T00:00:00Z, updated 1970-01-01T00:00:00Z\n  \
             next      `fledge run` with the manifest of v2 resumes it; `fledge abort` rolls it back\n"
        );
    }
}
