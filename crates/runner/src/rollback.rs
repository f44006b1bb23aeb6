//! Rolling back, under a deadline of its own, and `fledge abort`.

use crate::{Adapters, Event, Runner, failed};
use fledge_core::ports::{Lock, StateStore, TrafficRouting, Workloads};
use fledge_core::state::RunRecord;
use fledge_core::{Outcome, Phase, RollbackReason};
use std::time::Duration;

/// How often `fledge abort` looks whether the run it asked has rolled back.
const ABORT_POLL: Duration = Duration::from_secs(1);

impl<P: Adapters> Runner<'_, P> {
    /// Restores the route exactly as recorded and retires the new version, within `rollback_timeout` from now.
    /// Signals do not interrupt it.
    pub(crate) async fn roll_back(&self, record: &mut RunRecord, reason: RollbackReason, detail: String) -> Outcome {
        self.emit(Event::RollingBack { reason, detail: detail.clone() });
        record.phase = Phase::RollingBack;
        record.rollback_reason = Some(reason);
        record.detail = detail;
        record.rollback_failure = None;
        if let Err(error) = self.save(record).await {
            self.emit(Event::Warning { message: failed("record the rollback (rolling back all the same)", &error) });
        }
        let new_deployment = format!("{}-{}", record.service, record.version);
        let policy = self.release.rollback.new_version;
        let steps = async {
            self.ports
                .traffic()
                .restore(&record.traffic_snapshot, &record.version)
                .await
                .map_err(|error| failed("restore the route", &error))?;
            self.ports
                .workloads()
                .retire(&new_deployment, policy)
                .await
                .map_err(|error| failed(&format!("retire Deployment {new_deployment}"), &error))
        };
        let timeout = self.options.rollback_timeout;
        let result = match tokio::time::timeout(timeout, steps).await {
            Ok(result) => result,
            Err(_elapsed) => Err(format!("the rollback did not finish within {timeout:?}")),
        };
        match result {
            Ok(()) => {
                record.phase = Phase::Done;
                record.outcome = Some(Outcome::RolledBack(reason));
                if let Err(error) = self.save(record).await {
                    self.emit(Event::Warning { message: failed("record the rollback's end", &error) });
                }
                self.emit(Event::RolledBack { reason });
                Outcome::RolledBack(reason)
            }
            Err(error) => {
                // Said in the record too, so that `fledge wait` and `fledge status` can tell a rollback that failed
                // from one still running.
                record.rollback_failure = Some(error.clone());
                if let Err(save_error) = self.save(record).await {
                    self.emit(Event::Warning { message: failed("record that the rollback failed", &save_error) });
                }
                self.emit(Event::RollbackFailed { error });
                Outcome::RollbackFailed
            }
        }
    }

    /// Rolls back the release in flight for this service, whatever its version: at once when no run holds the
    /// lock, otherwise by asking that run and waiting (up to the rollback timeout plus one analysis interval).
    pub async fn abort(&self) -> Outcome {
        match self.ports.state().lock(&self.options.run_id).await {
            Ok(Lock::HeldBy { holder }) => self.ask_holder(holder).await,
            _ => self.locked(|| self.abort_locked()).await,
        }
    }

    async fn abort_locked(&self) -> Outcome {
        match self.ports.state().load().await {
            Err(error) => {
                self.emit(Event::PreflightFailed { error: failed("read the run record", &error) });
                Outcome::PreflightFailed
            }
            // Cleanup may have retired the old version already: going back would route to nothing. The new
            // version is live; finishing the cleanup is what abort can still do.
            Ok(Some(mut record)) if record.phase == Phase::Cleanup => {
                self.emit(Event::Warning {
                    message:
                        "the release is promoted and cleaning up; abort finishes the cleanup instead of rolling back"
                            .into(),
                });
                match self.cleanup(&mut record).await {
                    Ok(outcome) | Err(crate::Stop::Finish(outcome)) => outcome,
                    Err(crate::Stop::RollBack { .. }) => Outcome::InternalError,
                }
            }
            Ok(Some(mut record)) if record.in_flight() => {
                self.roll_back(&mut record, RollbackReason::Cancelled, "fledge abort asked for it".into()).await
            }
            Ok(_) => {
                self.emit(Event::NothingToAbort);
                // Exit code 0: the service is where it should be.
                Outcome::Promoted
            }
        }
    }

    async fn ask_holder(&self, holder: String) -> Outcome {
        if let Err(error) = self.ports.state().request_abort().await {
            self.emit(Event::PreflightFailed { error: failed("ask the running release to roll back", &error) });
            return Outcome::PreflightFailed;
        }
        self.emit(Event::AbortRequested { holder });
        let patience = self.options.rollback_timeout + self.release.analysis.interval.as_std() * 2;
        let deadline = tokio::time::Instant::now() + patience;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(ABORT_POLL).await;
            if let Ok(Some(record)) = self.ports.state().load().await
                && let Some(outcome) = record.outcome
            {
                self.emit(Event::Finished { outcome });
                return outcome;
            }
        }
        self.emit(Event::Warning {
            message: format!("the running release did not finish rolling back within {patience:?}; see fledge status"),
        });
        Outcome::InternalError
    }
}
