//! Before anything is deployed: Prometheus answers, every check's query renders and is accepted by Prometheus
//! (its own message is shown when not), and each query returns something for the live version.

use crate::checks::Analyzer;
use crate::prometheus::{Answer, QueryError};
use crate::queries::CustomQueryError;
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
                    Err(error) if error.is_rejected_query() => {
                        let QueryError::Refused { message, .. } = error else { unreachable!("a rejection") };
                        if !rejections.iter().any(|known: &Rejection| known.check == check.name) {
                            rejections.push(Rejection { check: check.name.clone(), query, message });
                        }
                    }
                    Err(source) => return Err(PreflightError::Unreachable { url, source }),
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
}
