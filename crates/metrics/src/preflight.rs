//! Before anything is deployed: Prometheus answers, every check's query renders and is accepted by Prometheus
//! (its own message is shown when not), and each query returns something for the live version. A counted check is
//! tried as the release reads it: every counter of both versions in one expression, and the live version's requests
//! must be counted (its bad requests need not be: a healthy version may never have failed one).

use crate::checks::Analyzer;
use crate::prometheus::{Answer, QueryError};
use crate::queries::{self, Counters, CustomQueryError};
use fledge_core::release::MetricCheck;
use std::fmt;
use tokio::time::Instant;

/// A query Prometheus refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The check.
    pub check: String,
    /// The PromQL sent.
    pub query: String,
    /// Prometheus' own message.
    pub message: String,
}

/// Why the metrics preflight failed.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Prometheus did not answer a trivial query.
    #[error("failed to query Prometheus at {url}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// The cause.
        #[source]
        source: QueryError,
    },
    /// A check's query could not be rendered.
    #[error("failed to render the query of check `{check}`")]
    Render {
        /// The check.
        check: String,
        /// The cause.
        #[source]
        source: CustomQueryError,
    },
    /// Prometheus rejected one or more queries.
    #[error("Prometheus rejected {}", Rejections(rejections))]
    Rejected {
        /// Every rejected query.
        rejections: Vec<Rejection>,
    },
}

struct Rejections<'r>(&'r [Rejection]);

impl fmt::Display for Rejections<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, rejection) in self.0.iter().enumerate() {
            let separator = if index == 0 { "" } else { "; " };
            write!(
                formatter,
                "{separator}the query of check `{}`: {} (query: {})",
                rejection.check, rejection.message, rejection.query
            )?;
        }
        Ok(())
    }
}

impl Analyzer {
    /// Checks that every query can be answered; returns warnings about queries that return nothing for the live
    /// version (a wrong label, a missing metric) so they are seen before the release depends on them.
    pub async fn preflight(&self, deadline: Instant) -> Result<Vec<String>, PreflightError> {
        let url = self.prometheus().url().to_owned();
        self.prometheus()
            .instant("vector(1)", deadline)
            .await
            .map_err(|source| PreflightError::Unreachable { url: url.clone(), source })?;
        let mut rejections = Vec::new();
        let mut warnings = Vec::new();
        for check in self.checks() {
            if check.is_counted() {
                match self.preflight_counted(check, deadline).await? {
                    Some(Finding::Rejected(rejection)) => rejections.push(rejection),
                    Some(Finding::Silent(warning)) => warnings.push(warning),
                    None => {}
                }
                continue;
            }
            let render = |workload| {
                self.query(check, workload)
                    .map_err(|source| PreflightError::Render { check: check.name.clone(), source })
            };
            let mut targets = vec![(render(&self.target().canary)?, None)];
            if let Some(previous) = &self.target().previous {
                targets.push((render(previous)?, Some(previous)));
            }
            for (query, live) in targets {
                match self.prometheus().instant(&query, deadline).await {
                    Err(error) => match error.into_rejection() {
                        Ok(message) => {
                            if !rejections.iter().any(|known: &Rejection| known.check == check.name) {
                                rejections.push(Rejection { check: check.name.clone(), query, message });
                            }
                        }
                        Err(source) => return Err(PreflightError::Unreachable { url, source }),
                    },
                    Ok(answered) => {
                        let Some(live) = live else { continue };
                        let problem = match answered.answer {
                            Answer::Empty => "returns no series".to_owned(),
                            Answer::One(value) if value.is_nan() => "returns NaN".to_owned(),
                            Answer::One(_) => continue,
                            Answer::Several(series) => {
                                format!("returns {} series where a check needs one", series.len())
                            }
                        };
                        warnings.push(format!(
                            "check `{}` {problem} for the live version {} now; it may not measure the new version either (query: {query})",
                            check.name, live.deployment
                        ));
                    }
                }
            }
        }
        if rejections.is_empty() { Ok(warnings) } else { Err(PreflightError::Rejected { rejections }) }
    }

    /// A counted check's counters of both versions, in the one expression the release reads.
    async fn preflight_counted(
        &self,
        check: &MetricCheck,
        deadline: Instant,
    ) -> Result<Option<Finding>, PreflightError> {
        let previous_version = self.target().previous.as_ref().map(|previous| previous.version.as_str());
        let render = |workload| match queries::counters(&check.source, workload, previous_version) {
            Some(counters) => {
                counters.map(Some).map_err(|source| PreflightError::Render { check: check.name.clone(), source })
            }
            None => Ok(None),
        };
        let Some(new) = render(&self.target().canary)? else { return Ok(None) };
        let live = match &self.target().previous {
            Some(previous) => render(previous)?.map(|counters| (previous, counters)),
            None => None,
        };
        let mut sides = vec![("new", &new)];
        if let Some((_, counters)) = &live {
            sides.push(("live", counters));
        }
        let query = queries::counters_together(&sides);
        let now = jiff::Timestamp::now();
        let answered = match self.prometheus().instant_by_label(&query, queries::COUNTER_LABEL, now, deadline).await {
            Ok(answered) => answered,
            Err(error) => {
                let url = self.prometheus().url().to_owned();
                let message = error.into_rejection().map_err(|source| PreflightError::Unreachable { url, source })?;
                let rejection = Rejection { check: check.name.clone(), query, message };
                return Ok(Some(Finding::Rejected(
                    self.rejected_counter(&check.name, &new, deadline).await.unwrap_or(rejection),
                )));
            }
        };
        let Some((previous, counters)) = live else { return Ok(None) };
        let needed: &[&str] = match counters {
            Counters::BadAndTotal { .. } => &["total"],
            Counters::AllAndFast { .. } => &["all", "fast"],
        };
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|part| !answered.answer.iter().any(|(name, _)| *name == format!("live_{part}")))
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        Ok(Some(Finding::Silent(format!(
            "check `{}` counts no requests of the live version {} now (no series for its {} counter); it may not count the new version's either (query: {query})",
            check.name,
            previous.deployment,
            missing.join(" and ")
        ))))
    }

    /// The first of the new version's counters Prometheus rejects on its own, named by its part, with Prometheus'
    /// message about it rather than about the expression that joins them.
    async fn rejected_counter(&self, check: &str, counters: &Counters, deadline: Instant) -> Option<Rejection> {
        for (part, query) in counters.parts() {
            if let Err(error) = self.prometheus().instant(query, deadline).await
                && let Ok(message) = error.into_rejection()
            {
                let (check, query) = (check.to_owned(), query.clone());
                return Some(Rejection { check, query, message: format!("its {part} counter: {message}") });
            }
        }
        None
    }
}

/// What preflight found wrong with one counted check.
enum Finding {
    Rejected(Rejection),
    Silent(String),
}
