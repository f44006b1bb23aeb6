//! What `fledge rehearse` shows: a row per rehearsal (was the bad version caught, where, how fast, how many requests
//! it served), then why each one rolled back.

use super::table;
use crate::rehearsal::Rehearsal;
use fledge_core::Duration;

/// Repeated rehearsals summarized per scenario: how many ended as they should, how many a healthy version was rolled
/// back (false alarms), and the median and range of the time to abort and of the failed requests.
pub(crate) fn render_repeated(rehearsals: &[Rehearsal]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    for rehearsal in rehearsals {
        if !scenarios.contains(&rehearsal.scenario.as_str()) {
            scenarios.push(&rehearsal.scenario);
        }
    }
    let spread = |mut values: Vec<f64>, show: &dyn Fn(f64) -> String| {
        if values.is_empty() {
            return "-".to_owned();
        }
        values.sort_by(f64::total_cmp);
        let median = values[values.len() / 2];
        format!("{} ({}-{})", show(median), show(values[0]), show(values[values.len() - 1]))
    };
    let rows: Vec<[String; 6]> = scenarios
        .iter()
        .map(|scenario| {
            let runs: Vec<&Rehearsal> = rehearsals.iter().filter(|rehearsal| rehearsal.scenario == *scenario).collect();
            let expected = runs.iter().filter(|rehearsal| rehearsal.as_expected).count();
            let rolled_back = runs.iter().filter(|rehearsal| rehearsal.time_to_abort_seconds.is_some()).count();
            let rolled_back = if Rehearsal::is_healthy(scenario) {
                format!("{rolled_back} (false alarms: {:.0}%)", rolled_back as f64 * 100.0 / runs.len() as f64)
            } else {
                rolled_back.to_string()
            };
            let seconds = runs.iter().filter_map(|rehearsal| rehearsal.time_to_abort_seconds).collect();
            let failed = runs.iter().map(|rehearsal| rehearsal.failed_requests as f64).collect();
            [
                (*scenario).to_owned(),
                runs.len().to_string(),
                format!("{expected} of {}", runs.len()),
                rolled_back,
                spread(seconds, &|seconds| Duration::from_secs(seconds.round() as u64).to_string()),
                spread(failed, &|count| format!("{count:.0}")),
            ]
        })
        .collect();
    let header = ["SCENARIO", "RUNS", "AS EXPECTED", "ROLLED BACK", "TIME TO ABORT (RANGE)", "FAILED (RANGE)"];
    table::render(header, &rows)
}

/// The rehearsals as a table, then each one's reason.
pub(crate) fn render(rehearsals: &[Rehearsal]) -> String {
    let rows: Vec<[String; 7]> = rehearsals
        .iter()
        .map(|rehearsal| {
            let caught = match (Rehearsal::is_healthy(&rehearsal.scenario), rehearsal.as_expected) {
                (true, true) => "- (promoted)".to_owned(),
                (true, false) => "FALSE ALARM".to_owned(),
                (false, true) => "yes".to_owned(),
                (false, false) => "NO".to_owned(),
            };
            [
                rehearsal.scenario.clone(),
                rehearsal.outcome.to_string(),
                caught,
                rehearsal.caught_at.clone().unwrap_or_else(|| "-".to_owned()),
                rehearsal
                    .time_to_abort_seconds
                    .map_or_else(|| "-".to_owned(), |seconds| Duration::from_secs(seconds.round() as u64).to_string()),
                rehearsal.requests_to_new.to_string(),
                rehearsal.failed_requests.to_string(),
            ]
        })
        .collect();
    let header = ["SCENARIO", "OUTCOME", "CAUGHT", "WHERE", "TIME TO ABORT", "REQUESTS TO NEW", "FAILED"];
    let mut text = table::render(header, &rows);
    for rehearsal in rehearsals {
        if let Some(detail) = &rehearsal.detail {
            text.push_str(&format!("\n{}: {detail}", rehearsal.scenario));
        }
    }
    if rehearsals.iter().any(|rehearsal| rehearsal.detail.is_some()) {
        text.push('\n');
    }
    text
}
