//! Shared test helpers: a simulator per test, with a kubeconfig and a private kubectl cache.

#![allow(dead_code, unreachable_pub, unused_imports, reason = "each test file uses a different part")]

use fledge_sim::scenario::Scenario;
use fledge_sim::{Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A running simulator, its kubeconfig, and a scratch directory.
pub struct TestCluster {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// The bookinfo scenario shipped in examples/sim.
pub fn bookinfo() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sim/bookinfo.yaml"))
        .expect("bookinfo scenario")
}

impl TestCluster {
    /// Starts a simulator with a scenario (YAML text).
    pub async fn start(scenario: &str) -> TestCluster {
        TestCluster::start_with(scenario, SimConfig::default()).await
    }

    /// Starts a simulator with a scenario and other settings.
    pub async fn start_with(scenario: &str, config: SimConfig) -> TestCluster {
        let scenario = Scenario::parse(scenario).expect("valid scenario");
        let sim = Sim::start(SimConfig { scenario, ..config }).await.expect("simulator starts");
        let dir = tempfile::tempdir().expect("temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, sim.kubeconfig()).expect("kubeconfig written");
        TestCluster { sim, dir, kubeconfig }
    }

    /// Runs kubectl against the simulator, with a cache of its own (discovery is cached per host and port).
    pub async fn kubectl(&self, arguments: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, arguments).await
    }

    /// Runs kubectl with another kubeconfig (a ServiceAccount's).
    pub async fn kubectl_as(&self, kubeconfig: &Path, arguments: &[&str]) -> Output {
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(arguments)
            .kill_on_drop(true)
            .output()
            .await
            .expect("kubectl runs (install it: apt-get install -y kubernetes-client)")
    }

    /// Runs kubectl and returns its stdout, failing the test with its stderr if it fails.
    pub async fn kubectl_ok(&self, arguments: &[&str]) -> String {
        let output = self.kubectl(arguments).await;
        assert!(
            output.status.success(),
            "kubectl {} failed: {}{}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// A kube client for the simulator.
    pub async fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.sim.api_url().parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    /// Writes a file in the scratch directory and returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("file written");
        path
    }
}

pub use fledge_testkit::eventually;
