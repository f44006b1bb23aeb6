//! `fledge plan FILE`: the preflight, then what the release would change. Changes nothing.

use crate::adapters::{SetupError, connect_ports};
use crate::cli::ClusterArguments;
use fledge_core::{Outcome, Release};
use fledge_runner::{Plan, RunOptions, Runner};
use std::io::Write as _;
use std::path::Path;

pub(super) fn run(file: &Path, cluster: &ClusterArguments) -> Outcome {
    let release = match super::load_release(file) {
        Ok(release) => release,
        Err(outcome) => return outcome,
    };
    super::block_on(plan(&release, cluster), |_| Outcome::PreflightFailed)
}

async fn plan(release: &Release, cluster: &ClusterArguments) -> Result<Outcome, SetupError> {
    let ports = connect_ports(release, cluster, None, None).await?;
    let (_never, cancel) = tokio::sync::watch::channel(false);
    let runner = Runner::new(release.clone(), &ports, RunOptions::default(), std::sync::Arc::new(|_| {}), cancel);
    let (stdout, stderr) = (&mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    match runner.plan().await {
        Ok(Plan::Resumes { phase }) => {
            let _ = stdout.write_all(crate::views::plan::render_resumes(release, &phase).as_bytes());
            Ok(super::SUCCEEDED)
        }
        Ok(Plan::Blocked { version, phase }) => {
            let text = crate::views::plan::render_blocked(release, &version, &phase);
            let _ = stderr.write_all(text.as_bytes());
            Ok(Outcome::Locked)
        }
        Ok(Plan::Ready(preflight)) => {
            let _ = stdout.write_all(crate::views::plan::render(release, &preflight).as_bytes());
            for warning in &preflight.warnings {
                let _ = writeln!(stderr, "warning: {warning}");
            }
            Ok(super::SUCCEEDED)
        }
        Err(failure) => {
            let _ = writeln!(stderr, "error: {failure}");
            Ok(Outcome::PreflightFailed)
        }
    }
}
