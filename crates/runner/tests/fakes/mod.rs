//! Fakes of fledge-core's ports over one shared, inspectable world. Time is tokio's (paused in the tests).

#![allow(dead_code, unreachable_pub, reason = "each test uses a different part")]

use fledge_core::analysis::{CheckResult, Round, RoundVerdict};
use fledge_core::counted_checks::CountedReading;
use fledge_core::ports::{
    GateResult, HealthGate, HealthMonitor, LiveWorkload, Lock, MetricsAnalyzer, PortError, Retirement, RouteWeights,
    StateStore, TrafficPlan, TrafficRouting, Workloads,
};
use fledge_core::release::CleanupPolicy;
use fledge_core::sequential::Counts;
use fledge_core::state::RunRecord;
use fledge_core::{CheckVerdict, GateFailure, GateFailureKind, Phase, Release, Weight};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a Deployment looks like in the fake cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeploymentState {
    Running,
    ScaledToZero,
}

/// The fake cluster, Prometheus and state store.
#[derive(Debug, Default)]
pub struct World {
    /// The new version's weight in the route.
    pub weight: u8,
    /// Whether the route is exactly as found at preflight.
    pub route_pristine: bool,
    /// The DestinationRule's subsets.
    pub subsets: Vec<String>,
    /// Deployments by name.
    pub deployments: BTreeMap<String, DeploymentState>,
    /// The run record.
    pub record: Option<RunRecord>,
    /// Every phase saved, in order (consecutive duplicates collapsed).
    pub saved_phases: Vec<Phase>,
    /// The lock holder.
    pub lock: Option<String>,
    /// An abort was requested.
    pub abort: bool,
    /// The gate's answer: `None` healthy, or a failure kind.
    pub gate_failure: Option<GateFailureKind>,
    /// After the gate passed, the pods fail this long later.
    pub crash_after: Option<Duration>,
    /// Round verdicts to return, in order; when empty, every round passes.
    pub rounds: VecDeque<RoundVerdict>,
    /// Rounds run.
    pub rounds_run: usize,
    /// Steps that fail: "set_weight 50", "restore", "deploy", "retire_live" ...
    pub failing: Vec<String>,
    /// Every effect, in order.
    pub log: Vec<String>,
    /// Routes pinned to the live version, outside the managed one.
    pub pinned: Vec<String>,
    /// Reads of the Deployments fail.
    pub reads_fail: bool,
    /// The lock is lost this long after it was taken.
    pub lose_lock_after: Option<Duration>,
    /// Whether the pinned routes keep the old version (`traffic.pinnedRoutes: keep`) instead of moving.
    pub keep_pinned: bool,
    /// The counters of counted check `errors` the looks read, in order; the last one stays once the others are read.
    pub counters: VecDeque<Counts>,
    /// Looks taken.
    pub looks: usize,
}

/// A handle on the shared world; each port is a clone.
#[derive(Clone, Debug)]
pub struct Fake(pub Arc<Mutex<World>>);

impl Fake {
    /// A live `reviews-v1` taking all traffic, subset v1.
    pub fn new() -> Fake {
        let world = World {
            route_pristine: true,
            subsets: vec!["v1".into()],
            deployments: [("reviews-v1".to_owned(), DeploymentState::Running)].into(),
            ..World::default()
        };
        Fake(Arc::new(Mutex::new(world)))
    }

    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }

    fn step(&self, name: &str) -> Result<(), PortError> {
        let mut world = self.world();
        world.log.push(name.to_owned());
        if world.failing.iter().any(|failing| failing == name) {
            return Err(format!("{name} refused by the fake").into());
        }
        Ok(())
    }
}

impl Workloads for Fake {
    async fn preflight(&self, _release: &Release, live_version: &str) -> Result<LiveWorkload, PortError> {
        Ok(LiveWorkload { deployment: format!("reviews-{live_version}"), replicas: 3 })
    }

    async fn check_deploy(&self, _release: &Release, _live_version: &str) -> Result<(), PortError> {
        Ok(())
    }

    async fn deploy(&self, release: &Release, _live_version: &str) -> Result<(), PortError> {
        self.step("deploy")?;
        self.world().deployments.insert(release.deployment_name(), DeploymentState::Running);
        Ok(())
    }

    async fn desired_replicas(&self, deployment: &str) -> Result<Option<u32>, PortError> {
        if self.world().reads_fail {
            return Err("the API server is unreachable".into());
        }
        Ok(self.world().deployments.get(deployment).map(|state| match state {
            DeploymentState::ScaledToZero => 0,
            _ => 2,
        }))
    }

    async fn retire(&self, deployment: &str, policy: CleanupPolicy) -> Result<(), PortError> {
        self.step(&format!("retire {deployment} {}", policy.manifest_name()))?;
        let mut world = self.world();
        match policy {
            CleanupPolicy::Delete => {
                world.deployments.remove(deployment);
            }
            CleanupPolicy::ScaleToZero => {
                world.deployments.insert(deployment.to_owned(), DeploymentState::ScaledToZero);
            }
            CleanupPolicy::Keep => {}
        }
        Ok(())
    }
}

/// Fails `crash_after` the gate passed, if set.
pub struct FakeMonitor {
    crash_at: Option<tokio::time::Instant>,
}

impl HealthMonitor for FakeMonitor {
    async fn failed(&mut self) -> GateFailure {
        match self.crash_at {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                failure(GateFailureKind::CrashLoop)
            }
            None => std::future::pending().await,
        }
    }

    async fn diagnose(&self) -> String {
        "pod reviews-v2-abc: CrashLoopBackOff".into()
    }
}

pub fn failure(kind: GateFailureKind) -> GateFailure {
    GateFailure {
        kind,
        pod: Some("reviews-v2-abc".into()),
        container: Some("reviews".into()),
        reason: "Reason".into(),
        message: "message".into(),
    }
}

impl HealthGate for Fake {
    type Monitor = FakeMonitor;

    async fn wait_healthy(&self, _release: &Release, timeout: Duration) -> Result<GateResult<FakeMonitor>, PortError> {
        self.step("gate")?;
        let (failure_kind, crash_after) = {
            let world = self.world();
            (world.gate_failure, world.crash_after)
        };
        // Pods take 5 s to be Ready and stable; a timeout takes the whole timeout.
        match failure_kind {
            Some(GateFailureKind::Timeout) => {
                tokio::time::sleep(timeout).await;
                Ok(GateResult::Failed { failure: failure(GateFailureKind::Timeout), diagnostics: String::new() })
            }
            Some(kind) => Ok(GateResult::Failed { failure: failure(kind), diagnostics: "diagnostics".into() }),
            None => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let crash_at = crash_after.map(|after| tokio::time::Instant::now() + after);
                Ok(GateResult::Healthy { monitor: FakeMonitor { crash_at }, elapsed: Duration::from_secs(5) })
            }
        }
    }
}

impl TrafficRouting for Fake {
    async fn preflight(&self, _release: &Release, _previous: Option<&str>) -> Result<TrafficPlan, PortError> {
        Ok(TrafficPlan {
            live_version: "v1".into(),
            snapshot: serde_json::json!({"route": "reviews", "destinations": [{"subset": "v1", "weight": 100}]}),
            route: "reviews/reviews route #0".into(),
            adds: vec!["subset v2".into()],
            pinned_routes: self.world().pinned.clone(),
        })
    }

    async fn add_version(&self, _snapshot: &serde_json::Value, version: &str) -> Result<(), PortError> {
        self.step(&format!("add_subset {version}"))?;
        let mut world = self.world();
        if !world.subsets.iter().any(|subset| subset == version) {
            world.subsets.push(version.to_owned());
        }
        Ok(())
    }

    async fn set_weight(&self, _snapshot: &serde_json::Value, _version: &str, weight: Weight) -> Result<(), PortError> {
        self.step(&format!("set_weight {}", weight.percent()))?;
        let mut world = self.world();
        world.weight = weight.percent();
        world.route_pristine = false;
        Ok(())
    }

    async fn weights(&self, _snapshot: &serde_json::Value, _version: &str) -> Result<RouteWeights, PortError> {
        let new = i64::from(self.world().weight);
        Ok(RouteWeights { live: 100 - new, new, share: 100 })
    }

    async fn restore(&self, _snapshot: &serde_json::Value, version: &str) -> Result<(), PortError> {
        self.step("restore")?;
        let mut world = self.world();
        world.weight = 0;
        world.route_pristine = true;
        world.subsets.retain(|subset| subset != version);
        Ok(())
    }

    async fn retire_live(&self, _snapshot: &serde_json::Value, _version: &str) -> Result<Retirement, PortError> {
        self.step("retire_live")?;
        let mut world = self.world();
        if world.keep_pinned {
            return Ok(Retirement { moved: Vec::new(), kept_for: world.pinned.clone() });
        }
        world.subsets.retain(|subset| subset != "v1");
        Ok(Retirement { moved: world.pinned.clone(), kept_for: Vec::new() })
    }
}

fn check(verdict: CheckVerdict) -> CheckResult {
    CheckResult {
        name: "success-rate".into(),
        verdict,
        value: (verdict == CheckVerdict::Pass || verdict == CheckVerdict::Fail).then_some(97.0),
        previous_value: None,
        unit: "%".into(),
        threshold: ">= 99%".into(),
        detail: String::new(),
        query: "sum(...)".into(),
        evaluated_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

impl MetricsAnalyzer for Fake {
    async fn preflight(&self, _live: &str, _budget: Duration) -> Result<Vec<String>, PortError> {
        self.step("metrics preflight")?;
        Ok(Vec::new())
    }

    fn queries(&self, _live: &str) -> Vec<(String, String)> {
        vec![("success-rate".into(), "sum(...)".into())]
    }

    async fn counts(&self, _live: &str, _budget: Duration) -> Vec<CountedReading> {
        let mut world = self.world();
        world.looks += 1;
        let counts =
            if world.counters.len() > 1 { world.counters.pop_front() } else { world.counters.front().copied() };
        counts
            .map(|counts| CountedReading { check: "errors".into(), query: "sum(errors)".into(), counts: Ok(counts) })
            .into_iter()
            .collect()
    }

    async fn round(&self, _live: &str, _since: jiff::Timestamp, _budget: Duration) -> Round {
        let mut world = self.world();
        world.rounds_run += 1;
        let verdict = world.rounds.pop_front().unwrap_or(RoundVerdict::Passed);
        let check_verdict = match verdict {
            RoundVerdict::Passed => CheckVerdict::Pass,
            RoundVerdict::Failed => CheckVerdict::Fail,
            RoundVerdict::NoData => CheckVerdict::NoData,
            RoundVerdict::Errored => CheckVerdict::Error,
        };
        Round { checks: vec![check(check_verdict)], verdict }
    }
}

impl StateStore for Fake {
    async fn lock(&self, holder: &str) -> Result<Lock, PortError> {
        let mut world = self.world();
        match &world.lock {
            Some(other) if other != holder => Ok(Lock::HeldBy { holder: other.clone() }),
            _ => {
                world.lock = Some(holder.to_owned());
                Ok(Lock::Acquired)
            }
        }
    }

    async fn unlock(&self) -> Result<(), PortError> {
        self.world().lock = None;
        Ok(())
    }

    async fn lost(&self) -> String {
        let after = self.world().lose_lock_after;
        match after {
            Some(after) => {
                tokio::time::sleep(after).await;
                self.world().lock = Some("another-run".into());
                "it was taken over by run another-run".into()
            }
            None => std::future::pending().await,
        }
    }

    async fn load(&self) -> Result<Option<RunRecord>, PortError> {
        Ok(self.world().record.clone())
    }

    async fn save(&self, record: &RunRecord) -> Result<(), PortError> {
        self.step(&format!("save {}", record.phase))?;
        let mut world = self.world();
        if world.saved_phases.last() != Some(&record.phase) {
            world.saved_phases.push(record.phase);
        }
        if record.outcome.is_some() {
            world.abort = false;
        }
        world.record = Some(record.clone());
        Ok(())
    }

    async fn request_abort(&self) -> Result<(), PortError> {
        self.world().abort = true;
        Ok(())
    }

    async fn abort_requested(&self) -> Result<bool, PortError> {
        Ok(self.world().abort)
    }
}
