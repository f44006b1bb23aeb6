//! `fledge gate` on the bookinfo scenario's images: a verdict an operator can act on for each failure kind, the
//! pod-health exit code, and exit 0 for a healthy version.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct SimProcess {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn start_sim() -> SimProcess {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fledge"))
        .args(["sim", "--scenario", "examples/sim/bookinfo.yaml", "--kubeconfig"])
        .arg(&kubeconfig)
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        lines.next().unwrap().unwrap();
    }
    SimProcess { child, kubeconfig, _dir: dir }
}

fn gate(sim: &SimProcess, version: &str, tag: &str, gate: &str) -> Output {
    gate_with(sim, &format!("version: {version}, previousVersion: v1"), version, tag, gate)
}

/// `fledge gate` on a manifest whose `service` has `service_fields` besides its name and namespace.
fn gate_with(sim: &SimProcess, service_fields: &str, version: &str, tag: &str, gate: &str) -> Output {
    let manifest = sim._dir.path().join(format!("{version}.yaml"));
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: fledge/v1\nkind: Release\nservice: {{name: reviews, namespace: bookinfo, {service_fields}}}\ndeploy:\n  image: registry.example.com/bookinfo/reviews:{tag}\n  replicas: 2\ngate: {{{gate}}}\n"
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_fledge"))
        .arg("gate")
        .arg(&manifest)
        .arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .output()
        .unwrap()
}

/// One `fledge gate` run and what it must print.
struct Case {
    version: &'static str,
    tag: &'static str,
    gate: &'static str,
    exit_code: i32,
    verdict: &'static str,
    detail: &'static str,
}

const CASES: [Case; 8] = [
    Case {
        version: "v2",
        tag: "2.0.0",
        gate: "timeout: 30s, stableFor: 2s",
        exit_code: 0,
        verdict: "v2: healthy after",
        detail: "",
    },
    Case {
        version: "v3",
        tag: "3.0.0-crashloop",
        gate: "timeout: 30s",
        exit_code: 10,
        verdict: "crash loop in pod reviews-v3-",
        detail: "hint: the container keeps exiting",
    },
    Case {
        version: "v4",
        tag: "4.0.0-oom",
        gate: "timeout: 30s",
        exit_code: 10,
        verdict: "out of memory in pod reviews-v4-",
        detail: "hint: the container exceeds its memory limit",
    },
    Case {
        version: "v5",
        tag: "5.0.0-image-pull",
        gate: "timeout: 30s",
        exit_code: 10,
        verdict: "image pull failure in pod reviews-v5-",
        detail: "hint: the image cannot be pulled",
    },
    Case {
        version: "v6",
        tag: "6.0.0-unauthorized",
        gate: "timeout: 30s",
        exit_code: 10,
        verdict: "pull access denied",
        detail: "imagePullSecrets",
    },
    Case {
        version: "v7",
        tag: "7.0.0-config-error",
        gate: "timeout: 30s",
        exit_code: 10,
        verdict: "container configuration error in pod reviews-v7-",
        detail: "configmap \"reviews-config\" not found",
    },
    Case {
        version: "v8",
        tag: "8.0.0-unschedulable",
        gate: "timeout: 30s, pendingGrace: 3s",
        exit_code: 10,
        verdict: "unschedulable in pod reviews-v8-",
        detail: "0/3 nodes are available",
    },
    Case {
        version: "v9",
        tag: "9.0.0-flapping",
        gate: "timeout: 8s, stableFor: 5s",
        exit_code: 12,
        verdict: "gate timeout: Timeout: not healthy within 8s",
        detail: "hint: the pods did not become Ready and stable",
    },
];

#[test]
fn fledge_gate_gives_a_verdict_for_every_failure_kind() {
    let sim = start_sim();
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            CASES.iter().map(|case| scope.spawn(|| gate(&sim, case.version, case.tag, case.gate))).collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for (case, output) in CASES.iter().zip(outputs) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let version = case.version;
        assert_eq!(output.status.code(), Some(case.exit_code), "{version}: {stdout}{stderr}");
        assert!(stdout.contains(case.verdict), "{version}: `{}` missing:\n{stdout}", case.verdict);
        assert!(stdout.contains(case.detail), "{version}: `{}` missing:\n{stdout}", case.detail);
        assert!(stderr.contains(&format!("applied Deployment bookinfo/reviews-{version}")), "{version}: {stderr}");
    }
}

#[test]
fn fledge_gate_without_a_cluster_fails_preflight_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: 'http://127.0.0.1:9'}\ncontexts:\n- name: gone\n  context: {cluster: gone, user: gone}\ncurrent-context: gone\nusers:\n- name: gone\n  user: {}\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fledge"))
        .args(["gate", "examples/basic.yaml", "--kubeconfig"])
        .arg(&kubeconfig)
        .current_dir(workspace())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "preflight failed: nothing changed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARN the Kubernetes API is not answering; retrying for up to 30s"),
        "a long wait is announced: {stderr}"
    );
    assert!(
        stderr.lines().last().unwrap_or_default().starts_with(
            "error: failed to deploy the new version: failed to read Service bookinfo/reviews: ServiceError: client error (Connect): "
        ),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
}

#[test]
fn fledge_gate_finds_the_live_version_from_the_route_as_run_does() {
    let sim = start_sim();
    // Two gates in a row, neither naming the live version: the second finds reviews-v2 (left by the first) beside
    // reviews-v1, and takes the live version from the route instead of refusing to guess.
    for version in ["v2", "v3"] {
        let output = gate_with(&sim, &format!("version: {version}"), version, "2.0.0", "timeout: 30s, stableFor: 2s");
        let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "{version}: {printed}");
        assert!(printed.contains(&format!("reviews-{version}: healthy after")), "{version}: {printed}");
    }
}
