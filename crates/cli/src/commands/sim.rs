//! `fledge sim`: the simulated cluster as a process, for kubectl, demos and manual testing.

use crate::error_report::render_chain;
use fledge_core::Outcome;
use fledge_sim::{Sim, SimConfig};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;

/// Why `fledge sim` stopped early.
#[derive(Debug, thiserror::Error)]
enum SimError {
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to start the simulator")]
    Start(#[source] fledge_sim::StartError),
    #[error("failed to write kubeconfig {}", path.display())]
    WriteKubeconfig {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to load the scenario")]
    Scenario(#[source] fledge_sim::scenario::ScenarioError),
    #[error("failed to wait for a signal")]
    Signal(#[source] std::io::Error),
}

/// A ServiceAccount (namespace, name) and where to write a kubeconfig acting as it.
type AccountKubeconfig = (String, String, std::path::PathBuf);

pub(super) fn run(kubeconfig: &Path, port: u16, scenario: Option<&Path>, accounts: &[AccountKubeconfig]) -> Outcome {
    match serve(kubeconfig, port, scenario, accounts) {
        Ok(()) => super::SUCCEEDED,
        Err(error) => {
            let _ = writeln!(std::io::stderr().lock(), "{}", render_chain(&error));
            Outcome::InternalError
        }
    }
}

fn serve(
    kubeconfig: &Path,
    port: u16,
    scenario: Option<&Path>,
    accounts: &[AccountKubeconfig],
) -> Result<(), SimError> {
    let scenario =
        scenario.map(fledge_sim::scenario::Scenario::load).transpose().map_err(SimError::Scenario)?.unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(SimError::Runtime)?;
    runtime.block_on(async {
        let config =
            SimConfig { api_address: SocketAddr::from(([127, 0, 0, 1], port)), scenario, ..SimConfig::default() };
        let sim = Sim::start(config).await.map_err(SimError::Start)?;
        std::fs::write(kubeconfig, sim.kubeconfig())
            .map_err(|source| SimError::WriteKubeconfig { path: kubeconfig.to_owned(), source })?;
        for (namespace, name, path) in accounts {
            std::fs::write(path, sim.service_account_kubeconfig(namespace, name))
                .map_err(|source| SimError::WriteKubeconfig { path: path.clone(), source })?;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "api: {}", sim.api_url());
        let _ = writeln!(stdout, "metrics: {}", sim.metrics_url());
        let _ = writeln!(stdout, "kubeconfig: {}", kubeconfig.display());
        for (namespace, name, path) in accounts {
            let _ = writeln!(stdout, "kubeconfig of ServiceAccount {namespace}/{name}: {}", path.display());
        }
        let _ = stdout.flush();
        drop(stdout);
        tokio::signal::ctrl_c().await.map_err(SimError::Signal)?;
        sim.shutdown().await;
        Ok(())
    })
}
