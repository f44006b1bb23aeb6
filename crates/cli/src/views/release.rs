//! What `fledge run` and `fledge abort` print on stdout: the release's verdict in one line.

use fledge_core::{Outcome, Release};

/// The result of a release in one line: `reviews v3: rolled-back-metrics: <why>`.
pub(crate) fn render_result(release: &Release, outcome: Outcome, detail: Option<String>) -> String {
    let service = format!("{} {}", release.service.name, release.service.version);
    match (outcome, detail) {
        (Outcome::Promoted | Outcome::AwaitingApproval | Outcome::Locked, _) | (_, None) => {
            format!("{service}: {outcome}")
        }
        (_, Some(detail)) => format!("{service}: {outcome}: {detail}"),
    }
}

/// `fledge abort` on a release that is not in flight.
pub(crate) fn render_nothing_to_abort(release: &Release) -> String {
    format!("{}: nothing to abort", release.service.name)
}
