//! The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.
//!
//! ```text
//!  verdict and reason ── traffic timeline (weight per stage; gate, approval, rollback, promotion marked)
//!  ── a chart per check (its value per round against its threshold, coloured by verdict) ── pod diagnostics
//! ```

use super::ReleaseReport;
use fledge_core::analysis::CheckResult;
use fledge_core::release::{MetricCheck, Threshold};
use fledge_core::{CheckVerdict, Outcome, Release};
use fledge_runner::Event;
use std::fmt::Write as _;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 12.0;

const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:820px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.verdict{border-radius:6px;padding:12px 16px;border:1px solid}
.promoted{background:#e8f5e9;border-color:#2e7d32}.rolled-back{background:#fff3e0;border-color:#ef6c00}
.stopped{background:#e3f2fd;border-color:#1565c0}.failed{background:#ffebee;border-color:#c62828}
.meta{color:#57606a;margin:4px 0 0}svg{display:block;background:#fafbfc;border:1px solid #d0d7de;border-radius:4px}
svg text{font:11px system-ui,sans-serif;fill:#57606a}.axis{stroke:#d0d7de}.weight{fill:none;stroke:#1565c0;stroke-width:2}
.mark{stroke:#8c959f;stroke-dasharray:3 3}.mark-rollback{stroke:#c62828}.mark-promoted{stroke:#2e7d32}
.threshold{stroke:#c62828;stroke-dasharray:6 4}.previous{fill:#8c959f}
.pass{fill:#2e7d32}.fail{fill:#c62828}.no-data{fill:#9e9e9e}.error{fill:#ef6c00}
.dot.pass{background:#2e7d32}.dot.fail{background:#c62828}.dot.no-data{background:#9e9e9e}.dot.error{background:#ef6c00}
.dot.previous{background:#8c959f}
figure{margin:0 0 20px}figcaption{margin:0 0 4px}table{border-collapse:collapse;font-size:12px;margin-top:6px}
td,th{border:1px solid #d0d7de;padding:2px 6px;text-align:left}pre{background:#f6f8fa;padding:8px;overflow:auto}
.legend span{margin-right:12px}.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:4px}";

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn verdict_class(verdict: CheckVerdict) -> &'static str {
    match verdict {
        CheckVerdict::Pass => "pass",
        CheckVerdict::Fail => "fail",
        CheckVerdict::NoData => "no-data",
        CheckVerdict::Error => "error",
    }
}

/// Maps seconds since the release's start and a value range onto the chart.
struct Scale {
    seconds: f64,
    low: f64,
    high: f64,
}

impl Scale {
    fn x(&self, seconds: f64) -> f64 {
        LEFT + (WIDTH - LEFT - 8.0) * (seconds / self.seconds.max(1.0)).clamp(0.0, 1.0)
    }

    fn y(&self, value: f64) -> f64 {
        let span = (self.high - self.low).max(f64::EPSILON);
        TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - ((value - self.low) / span).clamp(0.0, 1.0))
    }

    /// The axes, with the value range and the time span labelled.
    fn axes(&self, out: &mut String, unit: &str) {
        let (bottom, right) = (HEIGHT - BOTTOM, WIDTH - 8.0);
        let _ = write!(
            out,
            r#"<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/><line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/><text x="4" y="{}">{}{unit}</text><text x="4" y="{bottom}">{}{unit}</text><text x="{LEFT}" y="{}">0s</text><text x="{}" y="{}" text-anchor="end">{:.0}s</text>"#,
            TOP + 8.0,
            number(self.high),
            number(self.low),
            HEIGHT - 6.0,
            right,
            HEIGHT - 6.0,
            self.seconds
        );
    }
}

fn number(value: f64) -> String {
    if value.abs() >= 100.0 || value == value.round() { format!("{value:.0}") } else { format!("{value:.2}") }
}

impl ReleaseReport {
    fn since_start(&self, at: jiff::Timestamp) -> f64 {
        at.duration_since(self.started_at).as_secs_f64()
    }

    /// The page.
    pub(crate) fn html(&self, release: &Release) -> String {
        let (class, title) = match self.outcome {
            Outcome::Promoted => ("promoted", "promoted"),
            Outcome::RolledBack(_) => ("rolled-back", "rolled back"),
            Outcome::AwaitingApproval => ("stopped", "waiting for approval"),
            _ => ("failed", "not finished"),
        };
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>fledge: {} {} {}</title><style>{STYLE}</style></head><body>"#,
            escape(&self.service),
            escape(&self.version),
            self.outcome
        );
        let _ = write!(
            out,
            r#"<header id="verdict" class="verdict {class}" data-outcome="{}"><h1>{} {}: {title}</h1>"#,
            self.outcome,
            escape(&self.service),
            escape(&self.version)
        );
        if let Some(reason) = &self.reason {
            let _ = write!(out, r#"<p class="reason">{}</p>"#, escape(reason));
        }
        let _ = write!(
            out,
            r#"<p class="meta">namespace {} · replacing {} · started {} · {:.1}s · exit code {} ({})</p></header>"#,
            escape(&self.namespace),
            escape(self.previous_version.as_deref().unwrap_or("the live version")),
            self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            self.duration_seconds,
            self.exit_code,
            self.outcome
        );
        self.timeline(&mut out);
        self.charts(&mut out, release);
        if let Some(gate) = &self.gate
            && let (Some(failure), Some(diagnostics)) = (&gate.failure, &gate.diagnostics)
        {
            let _ = write!(
                out,
                r#"<h2>Pods</h2><p id="gate-failure">{}</p><pre id="diagnostics">{}</pre>"#,
                escape(&failure.to_string()),
                escape(diagnostics)
            );
        }
        out.push_str("</body></html>\n");
        out
    }

    /// The new version's weight over time, with the release's steps marked.
    fn timeline(&self, out: &mut String) {
        let scale = Scale { seconds: self.duration_seconds, low: 0.0, high: 100.0 };
        let mut points = vec![(0.0, 0.0)];
        let mut marks: Vec<(f64, &str, String)> = Vec::new();
        if let Some(gate) = &self.gate {
            marks.push((self.since_start(gate.started_at), "mark", "gate".to_owned()));
        }
        for stage in &self.stages {
            let start = self.since_start(stage.started_at);
            let weight = f64::from(stage.weight.percent());
            points.push((start, points.last().map_or(0.0, |point| point.1)));
            points.push((start, weight));
            marks.push((start, "mark", format!("stage {} · {}", stage.index + 1, stage.weight)));
            if let Some(end) = stage.ended_at {
                points.push((self.since_start(end), weight));
            }
        }
        for event in &self.events {
            let at = self.since_start(event.at);
            let (weight, class, label) = match &event.event {
                Event::Promoted => (100.0, "mark mark-promoted", "promoted"),
                Event::RolledBack { .. } => (0.0, "mark mark-rollback", "rolled back"),
                Event::AwaitingApproval { .. } => (-1.0, "mark", "approval"),
                _ => continue,
            };
            if weight >= 0.0 {
                points.push((at, points.last().map_or(0.0, |point| point.1)));
                points.push((at, weight));
            }
            marks.push((at, class, label.to_owned()));
        }
        points.push((self.duration_seconds, points.last().map_or(0.0, |point| point.1)));
        let _ = write!(
            out,
            r#"<h2>Traffic to {}</h2><svg id="timeline" class="timeline" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="weight of the new version over time">"#,
            escape(&self.version)
        );
        scale.axes(out, "%");
        for (at, class, label) in &marks {
            let x = scale.x(*at);
            // Labels near the right edge read leftwards.
            let (anchor, label_x) = if x > WIDTH - 140.0 { ("end", x - 3.0) } else { ("start", x + 3.0) };
            let _ = write!(
                out,
                r#"<line class="{class}" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}"/><text x="{:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
                HEIGHT - BOTTOM,
                label_x,
                TOP + 10.0 + 12.0 * (marks.iter().position(|mark| mark.0 == *at).unwrap_or(0) % 3) as f64,
                escape(label)
            );
        }
        let path: Vec<String> =
            points.iter().map(|(at, weight)| format!("{:.1},{:.1}", scale.x(*at), scale.y(*weight))).collect();
        let _ = write!(out, r#"<polyline class="weight" points="{}"/></svg>"#, path.join(" "));
    }

    /// A chart per check: its value (and the previous version's) per round, against its threshold.
    fn charts(&self, out: &mut String, release: &Release) {
        let mut names: Vec<&str> = Vec::new();
        let rounds: Vec<(f64, &CheckResult)> = self
            .stages
            .iter()
            .flat_map(|stage| stage.rounds.iter())
            .flat_map(|round| round.checks.iter().map(move |check| (round.at, check)))
            .map(|(at, check)| (self.since_start(at), check))
            .collect();
        for (_, check) in &rounds {
            if !names.contains(&check.name.as_str()) {
                names.push(&check.name);
            }
        }
        let _ = write!(
            out,
            r#"<h2>Checks</h2><p class="legend"><span><i class="dot pass"></i>pass</span><span><i class="dot fail"></i>fail</span><span><i class="dot no-data"></i>no data</span><span><i class="dot error"></i>error</span><span><i class="dot previous"></i>previous version</span></p>"#
        );
        if names.is_empty() {
            out.push_str(r#"<p id="no-rounds">No check round ran.</p>"#);
        }
        for name in names {
            let of_check: Vec<&(f64, &CheckResult)> = rounds.iter().filter(|(_, check)| check.name == name).collect();
            let manifest = release.analysis.metrics.iter().find(|check| check.name == name);
            self.chart(out, name, &of_check, manifest);
        }
    }

    fn chart(&self, out: &mut String, name: &str, rounds: &[&(f64, &CheckResult)], manifest: Option<&MetricCheck>) {
        let bounds: Vec<f64> = match manifest.map(|check| &check.threshold) {
            Some(Threshold::Absolute { min, max }) => min.iter().chain(max.iter()).copied().collect(),
            _ => Vec::new(),
        };
        let values: Vec<f64> = rounds
            .iter()
            .flat_map(|(_, check)| check.value.into_iter().chain(check.previous_value))
            .chain(bounds.iter().copied())
            .filter(|value| value.is_finite())
            .collect();
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (low, high) = if values.is_empty() { (0.0, 1.0) } else { (low, high) };
        let pad = ((high - low) * 0.1).max(high.abs() * 0.01).max(0.5);
        let scale = Scale { seconds: self.duration_seconds, low: (low - pad).max(0.0).min(low), high: high + pad };
        let unit = rounds.first().map_or("", |(_, check)| check.unit.as_str());
        let threshold = rounds.first().map_or(String::new(), |(_, check)| check.threshold.clone());
        let _ = write!(
            out,
            r#"<figure class="check" data-check="{0}" data-rounds="{1}"><figcaption><b>{0}</b> · {2}</figcaption><svg class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{0} per round">"#,
            escape(name),
            rounds.len(),
            escape(&threshold)
        );
        scale.axes(out, &escape(unit));
        for bound in &bounds {
            let y = scale.y(*bound);
            let _ =
                write!(out, r#"<line class="threshold" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}"/>"#, WIDTH - 8.0);
        }
        let mut rows = String::new();
        for (at, check) in rounds {
            let x = scale.x(*at);
            if let Some(previous) = check.previous_value.filter(|value| value.is_finite()) {
                let _ = write!(out, r#"<circle class="previous" cx="{x:.1}" cy="{:.1}" r="3"/>"#, scale.y(previous));
            }
            let class = verdict_class(check.verdict);
            let y = check.value.filter(|value| value.is_finite()).map_or(HEIGHT - BOTTOM, |value| scale.y(value));
            let _ = write!(
                out,
                r#"<circle class="round {class}" cx="{x:.1}" cy="{y:.1}" r="4.5"><title>{:.0}s: {} {}</title></circle>"#,
                at,
                check.value.map_or_else(|| "no value".to_owned(), |value| format!("{}{}", number(value), check.unit)),
                escape(&check.detail)
            );
            let _ = write!(
                rows,
                "<tr><td>{:.0}s</td><td class=\"{class}-text\">{class}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                at,
                check.value.map_or_else(String::new, |value| format!("{}{}", number(value), check.unit)),
                check.previous_value.map_or_else(String::new, |value| format!("{}{}", number(value), check.unit)),
                escape(&check.detail)
            );
        }
        let _ = write!(
            out,
            "</svg><table><tr><th>time</th><th>verdict</th><th>value</th><th>previous</th><th>detail</th></tr>{rows}</table></figure>"
        );
    }
}
