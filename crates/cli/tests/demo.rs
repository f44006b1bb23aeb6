//! `fledge demo` runs to completion, through Istio and through the Gateway API: v2 promoted through its three
//! stages, v3 caught and rolled back with the reason shown.

#[test]
fn the_demo_promotes_a_healthy_version_then_rolls_back_a_bad_one() {
    demo(&[]);
}

#[test]
fn the_demo_through_the_gateway_api_does_the_same() {
    let stdout = demo(&["--gateway-api"]);
    assert!(stdout.contains("routed by a Gateway API HTTPRoute"), "{stdout}");
}

/// `fledge demo ARGUMENTS` to its end: both releases as expected; its stdout.
fn demo(arguments: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fledge")).arg("demo").args(arguments).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("\nreviews v2: promoted ("), "{stdout}");
    assert!(
        stdout.contains("\nreviews v3: rolled-back-metrics: ") && stdout.contains("success-rate = "),
        "the rollback and its reason are shown: {stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let caught = ["at stage 1 (10%)", "at stage 2 (30%)", "at stage 3 (60%)"].iter().any(|stage| {
        last == format!("demo finished: v2 was promoted; v3 was caught {stage} and rolled back, v2 kept all traffic.")
    });
    assert!(caught, "the stage that caught v3 is named: {stdout}");
    for stage in ["stage 1/3", "stage 2/3", "stage 3/3"] {
        assert!(stderr.contains(stage), "{stage}: {stderr}");
    }
    stdout
}
