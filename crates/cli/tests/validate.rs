//! `fledge validate` and `fledge schema` as a user runs them: the real binary, its exit codes, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fledge(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fledge")).args(arguments).current_dir(workspace()).output().expect("fledge runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn yaml_files(folder: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(workspace().join(folder))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .map(|path| path.strip_prefix(workspace()).unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn examples_are_valid_and_summarised_on_stdout() {
    let examples = yaml_files("examples");
    assert!(examples.len() >= 5);
    let arguments: Vec<&str> = std::iter::once("validate").chain(examples.iter().map(String::as_str)).collect();
    let output = fledge(&arguments);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "", "examples must not even warn");
    for example in &examples {
        assert!(stdout.contains(&format!("{example}: valid\n")), "no summary for {example}");
    }
    // The summary shows what the release will do: stages with weights and durations, metrics with thresholds.
    assert!(stdout.contains("    2.  50% for 5m  then wait for approval\n"), "{stdout}");
    assert!(stdout.contains("success-rate  >= 99%"), "{stdout}");
    assert!(stdout.contains("latency-p99-vs-previous   at most +20% vs the previous version"), "{stdout}");
    // Both traffic providers.
    assert!(
        stdout.contains("  traffic   VirtualService reviews, DestinationRule reviews; pinned routes: move\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  traffic   HTTPRoute reviews, rule primary, new version's Service reviews-v2, accepted within 30s; pinned routes: move\n"),
        "{stdout}"
    );
}

#[test]
fn every_invalid_fixture_exits_2_with_located_errors_on_stderr_only() {
    let fixtures = yaml_files("crates/manifest/tests/fixtures/invalid");
    assert!(fixtures.len() >= 30, "only {} invalid fixtures", fixtures.len());
    for fixture in fixtures {
        let output = fledge(&["validate", &fixture]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{fixture}: {stderr}");
        assert_eq!(text(&output.stdout), "", "{fixture}: stdout must stay empty");
        assert!(!stderr.contains("panicked"), "{fixture}: {stderr}");
        let source = std::fs::read_to_string(workspace().join(&fixture)).unwrap();
        for expectation in source.lines().filter_map(|line| line.strip_prefix("# expect: ")) {
            let (position, message) = expectation.split_once(' ').unwrap();
            let located = stderr.lines().any(|line| line.starts_with(&format!("{fixture}:{position}: ")));
            assert!(located, "{fixture}: no error at {position} ({message}):\n{stderr}");
            assert!(stderr.contains(message), "{fixture}: {message:?} missing:\n{stderr}");
        }
    }
}

#[test]
fn unknown_field_typos_get_the_right_suggestion() {
    let output = fledge(&["validate", "crates/manifest/tests/fixtures/invalid/unknown-field-in-section.yaml"]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains(":8:3: unknown field `verison` in `service`\n"), "{stderr}");
    assert!(stderr.contains("= hint: did you mean `version`?\n"), "{stderr}");
}

#[test]
fn one_invalid_file_fails_the_run_but_valid_ones_are_still_summarised() {
    let output = fledge(&[
        "validate",
        "examples/basic.yaml",
        "crates/manifest/tests/fixtures/invalid/weights-not-increasing.yaml",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stdout).starts_with("examples/basic.yaml: valid\n"));
    assert!(text(&output.stderr).contains("weights-not-increasing.yaml:13:13: "));
}

#[test]
fn unreadable_files_are_invalid_input_with_the_cause() {
    let output = fledge(&["validate", "does/not/exist.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(text(&output.stdout), "");
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: failed to read manifest does/not/exist.yaml: "), "{stderr}");
    assert!(stderr.contains("No such file or directory"), "{stderr}");
}

#[test]
fn warnings_go_to_stderr_and_do_not_fail_validation() {
    let output = fledge(&["validate", "crates/manifest/tests/fixtures/valid/warnings.yaml"]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "warnings.yaml:11:23: warning: `prometheus.insecureSkipVerify` turns off TLS certificate verification"
        ),
        "{stderr}"
    );
    assert!(text(&output.stdout).contains("warnings.yaml: valid"));
}

#[test]
fn json_output_carries_the_release_with_defaults() {
    let output = fledge(&["validate", "--output", "json", "examples/minimal.yaml"]);
    assert_eq!(output.status.code(), Some(0));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let release = &results[0]["release"];
    assert_eq!(results[0]["file"], "examples/minimal.yaml");
    assert_eq!(release["gate"]["timeout"], "5m");
    assert_eq!(release["stages"].as_array().unwrap().len(), 3);
    assert_eq!(release["analysis"]["metrics"][0]["name"], "success-rate");
}

#[test]
fn diagnostics_never_print_a_webhook_path_or_a_credential() {
    let output = fledge(&["validate", "crates/manifest/tests/fixtures/invalid/webhook-secrets.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    let printed = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(printed.contains("https://***@hooks.slack.com/***"), "{printed}");
    for secret in ["hunter2", "XXXXSECRET", "T0000", "bot:"] {
        assert!(!printed.contains(secret), "`{secret}` was printed:\n{printed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("release.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: fledge/v1\nkind: Release\nservice: {name: reviews, version: v2}\ndeploy: {image: r:2}\nnotify:\n  - webhook: https://hooks.slack.com/services/T0000/B0000/XXXXSECRET\n",
    )
    .unwrap();
    let json = fledge(&["validate", "--output", "json", manifest.to_str().unwrap()]);
    assert_eq!(json.status.code(), Some(0));
    let results: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        results[0]["release"]["notify"][0]["webhook"],
        serde_json::json!({ "url": "https://hooks.slack.com/***" })
    );
}

#[test]
fn usage_errors_exit_2_and_help_and_version_exit_0() {
    assert_eq!(fledge(&["validate"]).status.code(), Some(2));
    assert_eq!(fledge(&["no-such-command"]).status.code(), Some(2));
    let help = fledge(&["validate", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Examples:\n  fledge validate release.yaml"));
    let version = fledge(&["--version"]);
    assert_eq!(text(&version.stdout), format!("fledge {}\n", env!("CARGO_PKG_VERSION")));
}

fn schema() -> serde_json::Value {
    let output = fledge(&["schema"]);
    assert_eq!(output.status.code(), Some(0));
    serde_json::from_slice(&output.stdout).expect("schema is JSON")
}

#[test]
fn committed_schema_file_is_current() {
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("docs/fledge-release.schema.json")).unwrap())
            .unwrap();
    assert_eq!(committed, schema(), "run `fledge schema > docs/fledge-release.schema.json`");
}

/// The manifest as JSON, read as YAML 1.2 reads it (as editors do): `yes` is a string, not a boolean.
fn yaml_as_json(path: &str) -> serde_json::Value {
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_str_with_options(&std::fs::read_to_string(workspace().join(path)).unwrap(), options).unwrap()
}

#[test]
fn schema_accepts_every_valid_manifest() {
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    let mut files = yaml_files("examples");
    files.extend(yaml_files("crates/manifest/tests/fixtures/valid"));
    for file in files {
        let errors: Vec<String> = validator.iter_errors(&yaml_as_json(&file)).map(|error| error.to_string()).collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
}

#[test]
fn schema_rejects_shape_errors_the_parser_rejects() {
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    for fixture in [
        "unknown-top-level-field",
        "unknown-field-in-section",
        "missing-required-fields",
        "weight-out-of-range",
        "weight-fractional",
        "duration-unknown-unit",
        "duration-without-unit",
        "no-data-policy-typo",
        "metric-builtin-and-query",
        "metric-without-source",
        "percentage-without-sign",
        "uppercase-service-name",
        "approval-not-boolean",
        "section-wrong-type",
    ] {
        let path = format!("crates/manifest/tests/fixtures/invalid/{fixture}.yaml");
        assert!(!validator.is_valid(&yaml_as_json(&path)), "the schema accepts {path}");
    }
}
