//! `fledge sim` as an operator runs it: it prints its URLs, writes a kubeconfig kubectl can use (and, when asked, one
//! for a ServiceAccount that RBAC holds to its Role), and serves the bookinfo scenario until interrupted.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn fledge_sim_serves_the_bookinfo_scenario_to_kubectl() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let account = dir.path().join("fledge-kubeconfig");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_fledge"))
        .args(["sim", "--scenario", "examples/sim/bookinfo.yaml", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--service-account-kubeconfig")
        .arg(format!("bookinfo/fledge={}", account.display()))
        .current_dir(&workspace)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    let api = lines.next().unwrap().unwrap();
    let metrics = lines.next().unwrap().unwrap();
    assert!(api.starts_with("api: http://127.0.0.1:"), "{api}");
    assert!(metrics.starts_with("metrics: http://127.0.0.1:") && metrics.ends_with("/metrics"), "{metrics}");
    assert_eq!(lines.next().unwrap().unwrap(), format!("kubeconfig: {}", kubeconfig.display()));
    assert_eq!(
        lines.next().unwrap().unwrap(),
        format!("kubeconfig of ServiceAccount bookinfo/fledge: {}", account.display())
    );
    let kubectl = |kubeconfig: &Path, arguments: &[&str]| {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(arguments)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let rbac = workspace.join("manifests/rbac.yaml");
    kubectl(&kubeconfig, &["apply", "-f", rbac.to_str().unwrap()]);
    let can_i = |arguments: &[&str]| kubectl(&account, &[&["auth", "can-i"], arguments].concat());
    assert_eq!(can_i(&["patch", "deployments", "-n", "bookinfo"]), "yes", "as manifests/rbac.yaml grants");
    assert_eq!(can_i(&["delete", "pods", "-n", "bookinfo"]), "no");
    assert_eq!(can_i(&["list", "nodes"]), "no");

    let started = Instant::now();
    let pods = loop {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args([
                "get",
                "pods",
                "-n",
                "bookinfo",
                "-l",
                "app=reviews,version=v1",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ])
            .output()
            .unwrap();
        let phases = String::from_utf8_lossy(&output.stdout).into_owned();
        if phases == "Running Running Running" || started.elapsed() > Duration::from_secs(30) {
            break phases;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let _ = Command::new("kill").args(["-INT", &sim.id().to_string()]).status();
    let status = sim.wait().unwrap();
    assert_eq!(pods, "Running Running Running");
    assert!(status.success(), "fledge sim exits cleanly on SIGINT: {status:?}");
}
