//! The forward path: preflight, deploy, gate, stages, promotion, cleanup; and resuming it from a run record.

use crate::{Event, Runner, Stop, cancelled, failed};
use fledge_core::analysis::{RoundVerdict, StageTally, TallyDecision};
use fledge_core::ports::{
    GateResult, HealthGate, HealthMonitor, MetricsAnalyzer, StateStore, TrafficRouting, Workloads,
};
use fledge_core::state::RunRecord;
use fledge_core::{CheckVerdict, Outcome, Phase, RollbackReason, Weight};
use std::time::Duration;

/// Waits for the monitor's failure, or forever without a monitor.
async fn pods_failed<Monitor: HealthMonitor>(monitor: &mut Option<Monitor>) -> fledge_core::GateFailure {
    match monitor {
        Some(monitor) => monitor.failed().await,
        None => std::future::pending().await,
    }
}

/// A rollback for a step that could not be taken.
fn error_stop(what: &str, error: &fledge_core::ports::PortError) -> Stop {
    Stop::RollBack { reason: RollbackReason::Error, detail: failed(what, error) }
}

impl<W, G, T, M, S> Runner<'_, W, G, T, M, S>
where
    W: Workloads,
    G: HealthGate,
    T: TrafficRouting,
    M: MetricsAnalyzer,
    S: StateStore,
{
    /// Preflight, then the whole release.
    pub(crate) async fn fresh(&self) -> Outcome {
        let release = &self.release;
        let preflight_failed = |what: &str, error: fledge_core::ports::PortError| {
            self.emit(Event::PreflightFailed { error: failed(what, &error) });
            Outcome::PreflightFailed
        };
        let plan = match self.ports.traffic.preflight(release, release.service.previous_version.as_deref()).await {
            Ok(plan) => plan,
            Err(error) => return preflight_failed("check the traffic route", error),
        };
        if plan.live_version == release.service.version {
            self.emit(Event::PreflightFailed {
                error: format!(
                    "version {} already takes all of the route's traffic: there is nothing to release",
                    release.service.version
                ),
            });
            return Outcome::PreflightFailed;
        }
        let live = match self.ports.workloads.preflight(release, &plan.live_version).await {
            Ok(live) => live,
            Err(error) => return preflight_failed("check the workloads", error),
        };
        let budget = release.analysis.interval.as_std().max(Duration::from_secs(30));
        let warnings = match self.ports.metrics.preflight(&plan.live_version, budget).await {
            Ok(warnings) => warnings,
            Err(error) => return preflight_failed("check the metric queries", error),
        };
        self.emit(Event::PreflightPassed { live_version: plan.live_version.clone(), route: plan.route, warnings });
        let mut record = RunRecord::start(
            release,
            &self.options.run_id,
            &plan.live_version,
            &live.deployment,
            plan.snapshot,
            jiff::Timestamp::now(),
        );
        if let Err(error) = self.save(&mut record).await {
            return preflight_failed("write the run record", error);
        }
        self.drive(&mut record, Phase::Deploy).await
    }

    /// Carries on a release from its record, after checking the cluster agrees with it.
    pub(crate) async fn resume(&self, record: &mut RunRecord) -> Outcome {
        if let Err(stop) = self.check_agreement(record).await {
            return self.finish(record, stop).await;
        }
        let phase = record.phase;
        self.drive(record, phase).await
    }

    /// The weights the record allows the route to have now, and whether the new Deployment must exist.
    fn expected_weights(&self, phase: Phase) -> (Vec<Weight>, bool) {
        let stages = &self.release.stages;
        match phase {
            Phase::Preflight | Phase::Deploy | Phase::Gate => (vec![Weight::ZERO], false),
            Phase::Stage { index } => {
                let before = if index == 0 { Weight::ZERO } else { stages[index - 1].weight };
                (vec![before, stages[index].weight], true)
            }
            Phase::AwaitingApproval { index } => (vec![stages[index].weight], true),
            Phase::Promote => (vec![self.release.final_stage_weight(), Weight::FULL], true),
            Phase::ScaleDownDelay | Phase::Cleanup => (vec![Weight::FULL], true),
            Phase::RollingBack | Phase::Done => (Vec::new(), false),
        }
    }

    async fn check_agreement(&self, record: &RunRecord) -> Result<(), Stop> {
        let (weights, deployment_required) = self.expected_weights(record.phase);
        match self.disagreement(record, &weights, deployment_required).await {
            Ok(None) => Ok(()),
            Ok(Some(detail)) | Err(detail) => Err(Stop::RollBack { reason: RollbackReason::Error, detail }),
        }
    }

    /// How the cluster disagrees with the record, if it does: the route gives the new version none of `weights`, or
    /// (when `deployment_required`) its Deployment is gone or scaled to 0. `Err` when it could not be read.
    async fn disagreement(
        &self,
        record: &RunRecord,
        weights: &[Weight],
        deployment_required: bool,
    ) -> Result<Option<String>, String> {
        let deployment = self.release.deployment_name();
        if deployment_required {
            let replicas = self
                .ports
                .workloads
                .desired_replicas(&deployment)
                .await
                .map_err(|error| failed(&format!("read Deployment {deployment}"), &error))?;
            let changed = match replicas {
                None => "is gone",
                Some(0) => "was scaled to 0",
                Some(_) => "",
            };
            if !changed.is_empty() {
                return Ok(Some(format!(
                    "the run record says {}, but Deployment {deployment} {changed}: the cluster changed under the release",
                    record.phase
                )));
            }
        }
        if weights.is_empty() {
            return Ok(None);
        }
        let now = self
            .ports
            .traffic
            .weights(&record.traffic_snapshot, &record.version)
            .await
            .map_err(|error| failed("read the route's weights", &error))?;
        if weights.iter().any(|weight| now.is(*weight)) {
            return Ok(None);
        }
        let expected: Vec<String> = weights.iter().map(ToString::to_string).collect();
        Ok(Some(format!(
            "the run record says {}, where {} takes {}, but the route gives it {} of {}: the route changed under the release",
            record.phase,
            record.version,
            expected.join(" or "),
            now.new,
            now.share
        )))
    }

    /// Runs forward from `from`, then rolls back or finishes as the path ends.
    async fn drive(&self, record: &mut RunRecord, from: Phase) -> Outcome {
        let stop = match self.forward(record, from).await {
            Ok(outcome) => return outcome,
            Err(stop) => stop,
        };
        self.finish(record, stop).await
    }

    pub(crate) async fn finish(&self, record: &mut RunRecord, stop: Stop) -> Outcome {
        match stop {
            Stop::Finish(outcome) => outcome,
            Stop::RollBack { reason, detail } => self.roll_back(record, reason, detail).await,
        }
    }

    async fn forward(&self, record: &mut RunRecord, from: Phase) -> Result<Outcome, Stop> {
        let stages = self.release.stages.len();
        let (mut monitor, first_stage) = match from {
            Phase::Preflight | Phase::Deploy => {
                self.deploy(record).await?;
                (Some(self.gate(record).await?), 0)
            }
            Phase::Gate => (Some(self.gate(record).await?), 0),
            Phase::Stage { index } => (Some(self.gate(record).await?), index),
            Phase::AwaitingApproval { index } if self.options.approve => (Some(self.gate(record).await?), index + 1),
            Phase::AwaitingApproval { index } => {
                self.emit(Event::AwaitingApproval { index });
                return Ok(Outcome::AwaitingApproval);
            }
            Phase::Promote | Phase::ScaleDownDelay => (None, stages),
            Phase::Cleanup => return self.cleanup(record).await,
            Phase::RollingBack => {
                return Err(Stop::RollBack {
                    reason: record.rollback_reason.unwrap_or(RollbackReason::Error),
                    detail: record.detail.clone(),
                });
            }
            Phase::Done => return Ok(record.outcome.unwrap_or(Outcome::Promoted)),
        };
        for index in first_stage..stages {
            self.stage(record, index, &mut monitor).await?;
        }
        self.promote(record, &mut monitor).await?;
        self.cleanup(record).await
    }

    async fn deploy(&self, record: &mut RunRecord) -> Result<(), Stop> {
        record.phase = Phase::Deploy;
        self.save(record).await.map_err(|error| error_stop("record the deploy phase", &error))?;
        let deployment = self.release.deployment_name();
        self.emit(Event::Deploying { deployment: deployment.clone() });
        self.ports
            .traffic
            .add_subset(&record.version)
            .await
            .map_err(|error| error_stop(&format!("add subset {}", record.version), &error))?;
        self.ports
            .workloads
            .deploy(&self.release, &record.previous_version)
            .await
            .map_err(|error| error_stop(&format!("apply Deployment {deployment}"), &error))
    }

    async fn gate(&self, record: &mut RunRecord) -> Result<G::Monitor, Stop> {
        if matches!(record.phase, Phase::Deploy) {
            record.phase = Phase::Gate;
            self.save(record).await.map_err(|error| error_stop("record the gate phase", &error))?;
        }
        let timeout = self.release.gate.timeout.as_std();
        self.emit(Event::GateWaiting { timeout });
        let result = tokio::select! {
            biased;
            () = cancelled(self.cancel.clone()) => return Err(self.cancelled_stop()),
            result = self.ports.gate.wait_healthy(&self.release, timeout) => result,
        };
        match result.map_err(|error| error_stop("watch the new version's pods", &error))? {
            GateResult::Healthy { monitor, elapsed } => {
                self.emit(Event::GateHealthy { elapsed });
                Ok(monitor)
            }
            GateResult::Failed { failure, diagnostics } => {
                let detail = failure.to_string();
                let reason = RollbackReason::for_gate_failure(failure.kind);
                self.emit(Event::GateFailed { failure, diagnostics });
                Err(Stop::RollBack { reason, detail })
            }
        }
    }

    fn cancelled_stop(&self) -> Stop {
        Stop::RollBack { reason: RollbackReason::Cancelled, detail: "cancelled by a signal".into() }
    }

    async fn pods_failed_stop(&self, failure: fledge_core::GateFailure, monitor: &Option<G::Monitor>) -> Stop {
        let diagnostics = match monitor {
            Some(monitor) => monitor.diagnose().await,
            None => String::new(),
        };
        let detail = failure.to_string();
        let reason = RollbackReason::for_gate_failure(failure.kind);
        self.emit(Event::GateFailed { failure, diagnostics });
        Stop::RollBack { reason, detail }
    }

    async fn stage(&self, record: &mut RunRecord, index: usize, monitor: &mut Option<G::Monitor>) -> Result<(), Stop> {
        let release = &self.release;
        let stage = release.stages[index];
        let analysis = &release.analysis;
        let mut tally = StageTally::new(analysis.failure_limit, analysis.query_error_limit);
        record.phase = Phase::Stage { index };
        record.tally = Some(tally);
        record.stage_elapsed_seconds = 0;
        record.stage_held_seconds = 0;
        self.save(record).await.map_err(|error| error_stop(&format!("record stage {}", index + 1), &error))?;
        self.ports
            .traffic
            .set_weight(&record.traffic_snapshot, &record.version, stage.weight)
            .await
            .map_err(|error| error_stop(&format!("set the weight of stage {}", index + 1), &error))?;
        let duration = stage.duration.as_std();
        self.emit(Event::StageStarted { index, weight: stage.weight, duration });

        let judge_since = jiff::Timestamp::now();
        let interval = analysis.interval.as_std();
        let max_hold = analysis.max_hold.as_std();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut elapsed, mut held) = (Duration::ZERO, Duration::ZERO);
        while elapsed < duration {
            tokio::select! {
                biased;
                () = cancelled(self.cancel.clone()) => return Err(self.cancelled_stop()),
                failure = pods_failed(monitor) => return Err(self.pods_failed_stop(failure, monitor).await),
                _ = ticker.tick() => {}
            }
            if self.ports.state.abort_requested().await.unwrap_or(false) {
                return Err(Stop::RollBack {
                    reason: RollbackReason::Cancelled,
                    detail: "fledge abort asked for it".into(),
                });
            }
            let round = tokio::select! {
                biased;
                () = cancelled(self.cancel.clone()) => return Err(self.cancelled_stop()),
                failure = pods_failed(monitor) => return Err(self.pods_failed_stop(failure, monitor).await),
                round = self.ports.metrics.round(&record.previous_version, judge_since, interval) => round,
            };
            let decision = tally.record(round.verdict);
            match decision {
                TallyDecision::Continue => elapsed += interval,
                TallyDecision::Hold if round.verdict == RoundVerdict::NoData => held += interval,
                TallyDecision::Hold | TallyDecision::RollBack(_) => {}
            }
            let breached = describe_breaches(&round);
            self.emit(Event::Round { index, round, decision, elapsed: elapsed.min(duration), duration });
            if let TallyDecision::RollBack(abort) = decision {
                return Err(Stop::RollBack { reason: RollbackReason::Metrics, detail: format!("{abort}: {breached}") });
            }
            if held >= max_hold {
                return Err(Stop::RollBack {
                    reason: RollbackReason::Deadline,
                    detail: format!(
                        "stage {} had no data for {} (analysis.maxHold): {breached}",
                        index + 1,
                        fledge_core::Duration::from_secs(held.as_secs())
                    ),
                });
            }
            // Someone may have changed the route or the new Deployment by hand: stop rather than fight them.
            match self.disagreement(record, &[stage.weight], true).await {
                Ok(None) => {}
                Ok(Some(detail)) => return Err(Stop::RollBack { reason: RollbackReason::Error, detail }),
                Err(error) => self.emit(Event::Warning { message: format!("{error}; checking again next round") }),
            }
            record.tally = Some(tally);
            record.stage_elapsed_seconds = elapsed.as_secs();
            record.stage_held_seconds = held.as_secs();
            if let Err(error) = self.save(record).await {
                self.emit(Event::Warning { message: failed("update the run record", &error) });
            }
        }
        self.emit(Event::StagePassed { index });
        if stage.approval {
            record.phase = Phase::AwaitingApproval { index };
            self.save(record).await.map_err(|error| error_stop("record the approval stop", &error))?;
            self.emit(Event::AwaitingApproval { index });
            return Err(Stop::Finish(Outcome::AwaitingApproval));
        }
        Ok(())
    }

    async fn promote(&self, record: &mut RunRecord, monitor: &mut Option<G::Monitor>) -> Result<(), Stop> {
        if record.phase != Phase::ScaleDownDelay {
            record.phase = Phase::Promote;
            self.save(record).await.map_err(|error| error_stop("record the promotion", &error))?;
            self.ports
                .traffic
                .set_weight(&record.traffic_snapshot, &record.version, Weight::FULL)
                .await
                .map_err(|error| error_stop("send 100% to the new version", &error))?;
            self.emit(Event::Promoted);
            record.phase = Phase::ScaleDownDelay;
            self.save(record).await.map_err(|error| error_stop("record the scale-down delay", &error))?;
        }
        let delay = self.release.promote.scale_down_delay.as_std();
        self.emit(Event::ScaleDownDelay { delay });
        tokio::select! {
            biased;
            () = cancelled(self.cancel.clone()) => Err(self.cancelled_stop()),
            failure = pods_failed(monitor) => Err(self.pods_failed_stop(failure, monitor).await),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    async fn cleanup(&self, record: &mut RunRecord) -> Result<Outcome, Stop> {
        record.phase = Phase::Cleanup;
        self.save(record).await.map_err(|error| error_stop("record the cleanup", &error))?;
        let policy = self.release.promote.cleanup;
        let steps = async {
            self.ports
                .workloads
                .retire(&record.previous_deployment, policy)
                .await
                .map_err(|error| failed(&format!("retire Deployment {}", record.previous_deployment), &error))?;
            self.ports
                .traffic
                .retire_live(&record.traffic_snapshot, &record.version)
                .await
                .map_err(|error| failed("remove the old version from the route", &error))
        };
        if let Err(error) = steps.await {
            // The new version is live; only the old one's leftovers remain. Running again finishes the cleanup.
            self.emit(Event::Warning {
                message: format!("{error}; the new version is live; run the same command again to finish the cleanup"),
            });
            return Err(Stop::Finish(Outcome::InternalError));
        }
        self.emit(Event::CleanedUp { deployment: record.previous_deployment.clone(), policy });
        record.phase = Phase::Done;
        record.outcome = Some(Outcome::Promoted);
        if let Err(error) = self.save(record).await {
            self.emit(Event::Warning { message: failed("record the promotion's end", &error) });
        }
        Ok(Outcome::Promoted)
    }
}

/// The checks that did not pass, for the rollback's detail: `success-rate = 91.8% (>= 99%)`.
fn describe_breaches(round: &fledge_core::analysis::Round) -> String {
    let breaches: Vec<String> = round
        .checks
        .iter()
        .filter(|check| check.verdict != CheckVerdict::Pass)
        .map(|check| match (check.verdict, check.value) {
            (CheckVerdict::Fail, Some(value)) => {
                format!("{} = {value:.2}{} ({})", check.name, check.unit, check.threshold)
            }
            (CheckVerdict::NoData, _) => format!("{}: no data ({})", check.name, check.detail),
            (_, _) => format!("{}: {:?} ({})", check.name, check.verdict, check.detail),
        })
        .collect();
    if breaches.is_empty() { "every check passed in the last round".to_owned() } else { breaches.join("; ") }
}
