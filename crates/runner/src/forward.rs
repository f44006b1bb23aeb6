//! The forward path: preflight, deploy, gate, stages, promotion, cleanup; and resuming it from a run record.

use crate::preflight::Preflight;
use crate::{Adapters, Event, Monitor, Runner, Stop, cancelled, failed};
use fledge_core::analysis::{AnalysisAbort, Round, RoundVerdict, StageTally, TallyDecision};
use fledge_core::counted_checks::CountedChecks;
use fledge_core::ports::{
    GateResult, HealthGate, HealthMonitor, MetricsAnalyzer, StateStore, TrafficRouting, Workloads,
};
use fledge_core::state::RunRecord;
use fledge_core::{CheckVerdict, Outcome, Phase, RollbackReason, Weight};
use std::time::Duration;

/// How long a resumed run keeps trying to read the cluster before it gives up without changing anything.
pub const RESUME_READ_DEADLINE: Duration = Duration::from_secs(60);

/// How often counted checks read their counters: about every scrape of a fast Prometheus. A look between scrapes
/// finds the counters unchanged and adds nothing; the test's false-alarm rate holds however often it looks.
pub const LOOK_INTERVAL: Duration = Duration::from_secs(1);

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

impl<P: Adapters> Runner<'_, P> {
    /// Preflight, then the whole release.
    pub(crate) async fn fresh(&self) -> Outcome {
        let release = &self.release;
        let preflight = match self.preflight().await {
            Ok(preflight) => preflight,
            Err(failure) => {
                self.emit(Event::PreflightFailed { error: failure.to_string() });
                return Outcome::PreflightFailed;
            }
        };
        let Preflight { traffic: plan, live, warnings, .. } = preflight;
        self.emit(Event::PreflightPassed { live_version: plan.live_version.clone(), route: plan.route, warnings });
        let mut record = RunRecord::start(
            release,
            &self.options.run_id,
            &plan.live_version,
            &live.deployment,
            plan.snapshot,
            self.now(),
        );
        if let Err(error) = self.save(&mut record).await {
            self.emit(Event::PreflightFailed { error: failed("write the run record", &error) });
            return Outcome::PreflightFailed;
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

    /// Before resuming: the cluster must agree with the record, or the release is rolled back. A cluster that
    /// cannot be read is no disagreement: the reads are tried again for [`RESUME_READ_DEADLINE`], then the run ends
    /// as an internal error having changed nothing (running it again resumes).
    async fn check_agreement(&self, record: &RunRecord) -> Result<(), Stop> {
        let (weights, deployment_required) = self.expected_weights(record.phase);
        let deadline = tokio::time::Instant::now() + RESUME_READ_DEADLINE;
        let mut wait = Duration::from_secs(1);
        loop {
            match self.disagreement(record, &weights, deployment_required).await {
                Ok(None) => return Ok(()),
                Ok(Some(detail)) => return Err(Stop::RollBack { reason: RollbackReason::Error, detail }),
                Err(error) if tokio::time::Instant::now() + wait < deadline => {
                    self.emit(Event::Warning { message: format!("{error}; trying again in {wait:?}") });
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(8));
                }
                Err(error) => {
                    self.emit(Event::ResumeFailed {
                        error: format!(
                            "{error}: the cluster could not be read for {RESUME_READ_DEADLINE:?} to check it agrees with the run record; nothing was changed, run the same command again to resume"
                        ),
                    });
                    return Err(Stop::Finish(Outcome::InternalError));
                }
            }
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
                .workloads()
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
            .traffic()
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
        // One sequential test per counted check over the whole release: evidence carries across stages, and from an
        // interrupted run to the one that resumes it (as of its last round).
        let mut counted = CountedChecks::of(&self.release.analysis);
        counted.resume(&record.counted_tests);
        for index in first_stage..stages {
            self.stage(record, index, &mut monitor, &mut counted).await?;
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
            .traffic()
            .add_version(&record.traffic_snapshot, &record.version)
            .await
            .map_err(|error| error_stop(&format!("add {} to the route at 0%", record.version), &error))?;
        self.ports
            .workloads()
            .deploy(&self.release, &record.previous_version)
            .await
            .map_err(|error| error_stop(&format!("apply Deployment {deployment}"), &error))
    }

    async fn gate(&self, record: &mut RunRecord) -> Result<Monitor<P>, Stop> {
        if matches!(record.phase, Phase::Deploy) {
            record.phase = Phase::Gate;
            self.save(record).await.map_err(|error| error_stop("record the gate phase", &error))?;
        }
        let timeout = self.release.gate.timeout.as_std();
        self.emit(Event::GateWaiting { timeout });
        let result = tokio::select! {
            biased;
            () = cancelled(self.cancel.clone()) => return Err(self.cancelled_stop()),
            result = self.ports.gate().wait_healthy(&self.release, timeout) => result,
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

    async fn pods_failed_stop(&self, failure: fledge_core::GateFailure, monitor: &Option<Monitor<P>>) -> Stop {
        let diagnostics = match monitor {
            Some(monitor) => monitor.diagnose().await,
            None => String::new(),
        };
        let detail = failure.to_string();
        let reason = RollbackReason::for_gate_failure(failure.kind);
        self.emit(Event::GateFailed { failure, diagnostics });
        Stop::RollBack { reason, detail }
    }

    /// One stage: its weight set and read back, then rounds of checks every `analysis.interval` until the stage
    /// has counted its `duration` (rounds without data or with errors hold the clock) and its counted checks have
    /// seen the requests they need; the pods watched throughout, the counted checks' counters read every
    /// [`LOOK_INTERVAL`].
    async fn stage(
        &self,
        record: &mut RunRecord,
        index: usize,
        monitor: &mut Option<Monitor<P>>,
        counted: &mut CountedChecks,
    ) -> Result<(), Stop> {
        let stage = self.release.stages[index];
        let mut clock = StageClock::new(&self.release, index);
        record.phase = Phase::Stage { index };
        record.tally = Some(clock.tally);
        record.stage_elapsed_seconds = 0;
        record.stage_held_seconds = 0;
        self.save(record).await.map_err(|error| error_stop(&format!("record stage {}", index + 1), &error))?;
        self.ports
            .traffic()
            .set_weight(&record.traffic_snapshot, &record.version, stage.weight)
            .await
            .map_err(|error| error_stop(&format!("set the weight of stage {}", index + 1), &error))?;
        self.emit(Event::StageStarted { index, weight: stage.weight, duration: clock.duration });
        counted.start_stage(stage.weight.percent());

        let judge_since = self.now();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + clock.interval, clock.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut looks = tokio::time::interval(LOOK_INTERVAL);
        looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while clock.elapsed < clock.duration || clock.awaiting_requests {
            tokio::select! {
                biased;
                () = cancelled(self.cancel.clone()) => return Err(self.cancelled_stop()),
                failure = pods_failed(monitor) => return Err(self.pods_failed_stop(failure, monitor).await),
                _ = ticker.tick() => {}
                _ = looks.tick(), if !counted.is_empty() => {
                    self.look(record, index, &clock, counted, monitor).await?;
                    continue;
                }
            }
            self.one_round(record, index, &mut clock, judge_since, monitor, counted).await?;
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

    /// One look of the counted checks: their counters read, their tests told; a regression rolls back at once.
    async fn look(
        &self,
        record: &RunRecord,
        index: usize,
        clock: &StageClock,
        counted: &mut CountedChecks,
        monitor: &mut Option<Monitor<P>>,
    ) -> Result<(), Stop> {
        let readings = tokio::select! {
            biased;
            () = cancelled(self.cancel.clone()) => return Err(self.cancelled_stop()),
            failure = pods_failed(monitor) => return Err(self.pods_failed_stop(failure, monitor).await),
            readings = self.ports.metrics().counts(&record.previous_version, clock.interval) => readings,
        };
        let Some(detail) = counted.look(readings) else {
            return Ok(());
        };
        let round = Round { checks: counted.results(self.now()), verdict: RoundVerdict::Failed };
        let decision = TallyDecision::RollBack(AnalysisAbort::Regression);
        let (elapsed, duration) = (clock.elapsed.min(clock.duration), clock.duration);
        self.emit(Event::Round { index, round, decision, elapsed, duration });
        Err(Stop::RollBack {
            reason: RollbackReason::Metrics,
            detail: format!("{}: {detail}", AnalysisAbort::Regression),
        })
    }

    /// One round of a stage: an abort asked for, the checks (the pods and signals heard meanwhile; the counted
    /// checks as their tests stand), the tally's decision, the route and Deployment still as the release left them,
    /// and the record updated. A stage that has counted its duration holds while a counted check lacks requests.
    async fn one_round(
        &self,
        record: &mut RunRecord,
        index: usize,
        clock: &mut StageClock,
        judge_since: jiff::Timestamp,
        monitor: &mut Option<Monitor<P>>,
        counted: &CountedChecks,
    ) -> Result<(), Stop> {
        if self.ports.state().abort_requested().await.unwrap_or(false) {
            return Err(Stop::RollBack {
                reason: RollbackReason::Cancelled,
                detail: "fledge abort asked for it".into(),
            });
        }
        let mut round = tokio::select! {
            biased;
            () = cancelled(self.cancel.clone()) => return Err(self.cancelled_stop()),
            failure = pods_failed(monitor) => return Err(self.pods_failed_stop(failure, monitor).await),
            round = self.ports.metrics().round(&record.previous_version, judge_since, clock.interval) => round,
        };
        if !counted.is_empty() {
            round.checks.extend(counted.results(self.now()));
            round.verdict =
                RoundVerdict::of(round.checks.iter().map(|check| check.verdict), self.release.analysis.no_data);
        }
        let decision = clock.count(round.verdict, &counted.short_of_requests());
        let breached = if clock.awaiting_requests {
            format!("too few requests to judge: {}", counted.short_of_requests().join("; "))
        } else {
            describe_breaches(&round)
        };
        let (elapsed, duration) = (clock.elapsed.min(clock.duration), clock.duration);
        self.emit(Event::Round { index, round, decision, elapsed, duration });
        if clock.awaiting_requests && decision == TallyDecision::Hold {
            self.emit(Event::Warning {
                message: format!("stage {} has run its {} but holds: {breached}", index + 1, short_duration(duration)),
            });
        }
        if let TallyDecision::RollBack(abort) = decision {
            return Err(Stop::RollBack { reason: RollbackReason::Metrics, detail: format!("{abort}: {breached}") });
        }
        if clock.held >= clock.max_hold {
            return Err(Stop::RollBack {
                reason: RollbackReason::Deadline,
                detail: format!(
                    "stage {} held for {} (analysis.maxHold): {breached}",
                    index + 1,
                    fledge_core::Duration::from_secs(clock.held.as_secs())
                ),
            });
        }
        // Someone may have changed the route or the new Deployment by hand: stop rather than fight them.
        match self.disagreement(record, &[self.release.stages[index].weight], true).await {
            Ok(None) => {}
            Ok(Some(detail)) => return Err(Stop::RollBack { reason: RollbackReason::Error, detail }),
            Err(error) => self.emit(Event::Warning { message: format!("{error}; checking again next round") }),
        }
        record.tally = Some(clock.tally);
        record.stage_elapsed_seconds = clock.elapsed.as_secs();
        record.stage_held_seconds = clock.held.as_secs();
        if !counted.is_empty() {
            record.counted_tests = counted.tests();
        }
        if let Err(error) = self.save(record).await {
            self.emit(Event::Warning { message: failed("update the run record", &error) });
        }
        Ok(())
    }

    async fn promote(&self, record: &mut RunRecord, monitor: &mut Option<Monitor<P>>) -> Result<(), Stop> {
        if record.phase != Phase::ScaleDownDelay {
            record.phase = Phase::Promote;
            self.save(record).await.map_err(|error| error_stop("record the promotion", &error))?;
            self.ports
                .traffic()
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

    pub(crate) async fn cleanup(&self, record: &mut RunRecord) -> Result<Outcome, Stop> {
        record.phase = Phase::Cleanup;
        self.save(record).await.map_err(|error| error_stop("record the cleanup", &error))?;
        let policy = self.release.promote.cleanup;
        // Routes first (pinned routes moved, the old destination and subset removed), then the old pods: nothing
        // routes to a subset without pods at any moment.
        let steps =
            async {
                let retirement = self
                    .ports
                    .traffic()
                    .retire_live(&record.traffic_snapshot, &record.version)
                    .await
                    .map_err(|error| failed("remove the old version from the route", &error))?;
                if retirement.kept_for.is_empty() {
                    self.ports.workloads().retire(&record.previous_deployment, policy).await.map_err(|error| {
                        failed(&format!("retire Deployment {}", record.previous_deployment), &error)
                    })?;
                }
                Ok::<_, String>(retirement)
            };
        let retirement = match steps.await {
            Ok(retirement) => retirement,
            Err(error) => {
                // The new version is live; only the old one's leftovers remain. Running again finishes the cleanup.
                self.emit(Event::Warning {
                    message: format!(
                        "{error}; the new version is live; run the same command again to finish the cleanup"
                    ),
                });
                return Err(Stop::Finish(Outcome::InternalError));
            }
        };
        self.emit(Event::CleanedUp {
            deployment: record.previous_deployment.clone(),
            policy,
            moved: retirement.moved,
            kept_for: retirement.kept_for,
        });
        record.phase = Phase::Done;
        record.outcome = Some(Outcome::Promoted);
        if let Err(error) = self.save(record).await {
            self.emit(Event::Warning { message: failed("record the promotion's end", &error) });
        }
        Ok(Outcome::Promoted)
    }
}

fn short_duration(duration: Duration) -> fledge_core::Duration {
    fledge_core::Duration::from_secs(duration.as_secs())
}

/// A stage's clock: the analysis time it has counted, the time it held without data, and the tally of its rounds.
struct StageClock {
    tally: StageTally,
    /// The stage has counted its duration, and a counted check has not yet seen the requests it needs.
    awaiting_requests: bool,
    elapsed: Duration,
    held: Duration,
    duration: Duration,
    interval: Duration,
    max_hold: Duration,
}

impl StageClock {
    fn new(release: &fledge_core::Release, index: usize) -> StageClock {
        let analysis = &release.analysis;
        StageClock {
            tally: StageTally::new(analysis.failure_limit, analysis.query_error_limit),
            awaiting_requests: false,
            elapsed: Duration::ZERO,
            held: Duration::ZERO,
            duration: release.stages[index].duration.as_std(),
            interval: analysis.interval.as_std(),
            max_hold: analysis.max_hold.as_std(),
        }
    }

    /// Counts a round: a counted round moves the clock, a round without data holds it (and adds to the hold). Once
    /// the duration is counted, a round while counted checks are `short_of_requests` holds too.
    fn count(&mut self, verdict: RoundVerdict, short_of_requests: &[String]) -> TallyDecision {
        let decision = self.tally.record(verdict);
        match decision {
            TallyDecision::Continue => self.elapsed += self.interval,
            TallyDecision::Hold if verdict == RoundVerdict::NoData => self.held += self.interval,
            TallyDecision::Hold | TallyDecision::RollBack(_) => {}
        }
        self.awaiting_requests = !matches!(decision, TallyDecision::RollBack(_))
            && self.elapsed >= self.duration
            && !short_of_requests.is_empty();
        if !self.awaiting_requests {
            return decision;
        }
        if decision == TallyDecision::Continue {
            self.held += self.interval; // the round counted no stage time: it held for requests
        }
        self.elapsed = self.duration;
        TallyDecision::Hold
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
