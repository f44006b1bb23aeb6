//! The HTML report as a person sees it: rendered by headless Chromium (Debian's `chromium`), its DOM read back and a
//! screenshot taken. Fails without Chromium when CI=true; elsewhere says it skipped.

use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Chromium's binary, when installed. Under CI its absence fails the test.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|path| path.join(name)).find(|path| path.is_file()))
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Chromium is missing: apt-get install -y chromium (scripts/install-tools does)"
        );
        let message = "skipping the HTML rendering check: no chromium on PATH (CI=true makes this a failure)";
        let _ = writeln!(std::io::stderr(), "{message}");
    }
    found
}

/// Headless Chromium on `page` with `arguments`; its stdout.
async fn headless(chromium: &Path, page: &Path, arguments: &[&str]) -> String {
    let output = tokio::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .args(["--disable-background-networking", "--window-size=900,1400"])
        .args(arguments)
        .arg(format!("file://{}", page.display()))
        .output()
        .await
        .expect("chromium starts");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Renders `html` (the report of the release whose JSON report is `json`) and checks what a reader sees: the
/// verdict, one chart per check, a point per round of each check; then takes a screenshot beside it.
pub(crate) async fn check_rendered(html: &Path, json: &Path) {
    let Some(chromium) = chromium() else { return };
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let dom = headless(&chromium, html, &["--dump-dom"]).await;
    let outcome = report["outcome"].as_str().unwrap();
    assert!(dom.contains(&format!(r#"id="verdict" class="verdict rolled-back" data-outcome="{outcome}""#)), "{dom}");
    let reason = report["reason"].as_str().unwrap().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    assert!(dom.contains(&format!("<p class=\"reason\">{reason}")), "the reason under the verdict: {dom}");

    let mut rounds_per_check: Vec<(String, usize)> = Vec::new();
    for stage in report["stages"].as_array().unwrap() {
        for round in stage["rounds"].as_array().unwrap() {
            for check in round["checks"].as_array().unwrap() {
                let name = check["name"].as_str().unwrap().to_owned();
                match rounds_per_check.iter_mut().find(|(seen, _)| *seen == name) {
                    Some((_, count)) => *count += 1,
                    None => rounds_per_check.push((name, 1)),
                }
            }
        }
    }
    assert!(!rounds_per_check.is_empty(), "the release ran rounds: {report}");
    assert_eq!(dom.matches(r#"<figure class="check""#).count(), rounds_per_check.len(), "one chart per check");
    for (name, rounds) in &rounds_per_check {
        let figure = format!(r#"<figure class="check" data-check="{name}" data-rounds="{rounds}">"#);
        let start = dom.find(&figure).unwrap_or_else(|| panic!("{figure} in {dom}"));
        let end = start + dom[start..].find("</figure>").unwrap();
        assert_eq!(dom[start..end].matches(r#"<circle class="round "#).count(), *rounds, "a point per round of {name}");
    }
    assert!(dom.contains(r#"<svg id="timeline""#) && dom.contains(">rolled back</text>"), "the timeline: {dom}");

    let screenshot = html.with_extension("png");
    headless(&chromium, html, &[&format!("--screenshot={}", screenshot.display())]).await;
    let bytes = std::fs::read(&screenshot).expect("a screenshot");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "a screenshot of the page ({} bytes)", bytes.len());
    // docs/report-rollback.png is this screenshot: FLEDGE_E2E_REPORT_DIR=docs keeps it (and the page) there.
    if let Some(directory) = std::env::var_os("FLEDGE_E2E_REPORT_DIR") {
        let directory = Path::new(&directory);
        std::fs::copy(&screenshot, directory.join("report-rollback.png")).unwrap();
        std::fs::copy(html, directory.join("report-rollback.html")).unwrap();
    }
}
