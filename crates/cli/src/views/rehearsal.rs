//! What `fledge rehearse` shows: a row per rehearsal (was the bad version caught, where, how fast, how many requests
//! it served), then why each one rolled back.

use super::table;
use crate::rehearsal::Rehearsal;
use fledge_core::Duration;

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
