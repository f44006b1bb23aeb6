//! The report as JUnit XML: one testsuite per release, a testcase for the gate and for each stage of the manifest
//! (stages not reached are skipped), failures carrying the reason. CI systems (GitLab, Jenkins, GitHub annotators)
//! read it; tests/e2e checks it against the schema they use.

use super::{ReleaseReport, StageResult};
use fledge_core::Release;
use std::fmt::Write as _;

/// How one testcase ended.
enum Verdict {
    Passed,
    Failed { message: String, text: String },
    Skipped { message: String },
}

/// One testcase.
struct TestCase {
    name: String,
    seconds: f64,
    verdict: Verdict,
}

impl ReleaseReport {
    /// The testcases of the release: the gate, then each stage of the manifest.
    fn test_cases(&self, release: &Release) -> Vec<TestCase> {
        let reason = self.reason.clone().unwrap_or_else(|| self.outcome.name().to_owned());
        let not_reached = || Verdict::Skipped { message: "not reached".into() };
        let mut cases = Vec::new();
        let gate = match &self.gate {
            None => TestCase { name: "gate".into(), seconds: 0.0, verdict: not_reached() },
            Some(gate) => TestCase {
                name: "gate".into(),
                seconds: Self::seconds(gate.started_at, gate.ended_at),
                verdict: match &gate.failure {
                    Some(failure) => Verdict::Failed {
                        message: failure.to_string(),
                        text: gate.diagnostics.clone().unwrap_or_default(),
                    },
                    None if !gate.healthy => Verdict::Failed { message: reason.clone(), text: String::new() },
                    None => Verdict::Passed,
                },
            },
        };
        cases.push(gate);
        for (index, stage) in release.stages.iter().enumerate() {
            let name = format!("stage {} ({})", index + 1, stage.weight);
            let case = match self.stages.iter().rev().find(|reported| reported.index == index) {
                None => TestCase { name, seconds: 0.0, verdict: not_reached() },
                Some(reported) => {
                    let verdict = match reported.result {
                        StageResult::Failed => {
                            let rounds: Vec<String> = reported
                                .rounds
                                .iter()
                                .map(|round| {
                                    format!(
                                        "{}: {:?}: {}",
                                        round.at,
                                        round.verdict,
                                        crate::progress::round_summary_of(&round.checks)
                                    )
                                })
                                .collect();
                            Verdict::Failed { message: reason.clone(), text: rounds.join("\n") }
                        }
                        StageResult::Interrupted | StageResult::Running => {
                            Verdict::Skipped { message: format!("interrupted: {}", self.outcome.name()) }
                        }
                        StageResult::Passed => Verdict::Passed,
                    };
                    TestCase { name, seconds: Self::seconds(reported.started_at, reported.ended_at), verdict }
                }
            };
            cases.push(case);
        }
        cases
    }

    /// The report as JUnit XML.
    pub(crate) fn junit(&self, release: &Release) -> String {
        let classname = format!("fledge.{}.{}", self.namespace, self.service);
        let cases = self.test_cases(release);
        let tests = cases.len();
        let failures = cases.iter().filter(|case| matches!(case.verdict, Verdict::Failed { .. })).count();
        let skipped = cases.iter().filter(|case| matches!(case.verdict, Verdict::Skipped { .. })).count();
        let mut body = String::new();
        for case in &cases {
            let _ = write!(
                body,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(&classname),
                escape(&case.name),
                case.seconds
            );
            match &case.verdict {
                Verdict::Passed => body.push_str("/>\n"),
                Verdict::Failed { message, text } => {
                    let _ = write!(
                        body,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        escape(message),
                        escape(self.outcome.name()),
                        escape(text)
                    );
                }
                Verdict::Skipped { message } => {
                    let _ = write!(body, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", escape(message));
                }
            }
        }
        let suite_time = self.duration_seconds;
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"fledge\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{suite_time:.3}\">\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{suite_time:.3}\" timestamp=\"{}\">\n    <properties>\n      <property name=\"outcome\" value=\"{}\"/>\n      <property name=\"exit-code\" value=\"{}\"/>\n    </properties>\n{body}  </testsuite>\n</testsuites>\n",
            escape(&format!("release {} {} in {}", self.service, self.version, self.namespace)),
            self.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
            self.outcome.name(),
            self.exit_code
        )
    }
}

/// Escapes text for XML attributes and content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            character if (character as u32) < 0x20 && !matches!(character, '\n' | '\r' | '\t') => {}
            character => out.push(character),
        }
    }
    out
}
