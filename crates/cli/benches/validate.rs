//! Prints how long validation takes: in-process parsing of each example, and whole `fledge validate` runs of one
//! manifest as a pipeline sees them (process start included). Run with `cargo bench -p fledge --bench validate`.
//! Numbers, not assertions: the machines are shared and noisy.

#![allow(clippy::print_stdout, reason = "a benchmark reports by printing")]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() - 1) as f64 * fraction).round() as usize;
    samples[index]
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut examples: Vec<_> = std::fs::read_dir(workspace.join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    examples.sort();

    println!("in-process parse + validate (1000 runs each)");
    for example in &examples {
        let source = std::fs::read_to_string(example).unwrap();
        let mut samples: Vec<Duration> = (0..1000)
            .map(|_| {
                let start = Instant::now();
                let validated = fledge_manifest::parse(&source);
                let elapsed = start.elapsed();
                assert!(validated.is_ok());
                elapsed
            })
            .collect();
        println!(
            "  {:<22} {:>6} bytes  median {:>8.1?}  p95 {:>8.1?}",
            example.file_name().unwrap().to_string_lossy(),
            source.len(),
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.95)
        );
    }

    let binary = env!("CARGO_BIN_EXE_fledge");
    let manifest = workspace.join("examples/basic.yaml");
    let runs = 100;
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let output = Command::new(binary).arg("validate").arg(&manifest).output().unwrap();
            let elapsed = start.elapsed();
            assert!(output.status.success());
            elapsed
        })
        .collect();
    println!("`fledge validate examples/basic.yaml`, whole process ({runs} runs)");
    println!(
        "  median {:.1?}  p95 {:.1?}  max {:.1?}  (target: under 20ms)",
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
        percentile(&mut samples, 1.0)
    );
}
