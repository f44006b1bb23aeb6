//! The command line: commands, flags and the examples shown by `--help`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const ABOUT: &str = "Multi-stage canary releases on Kubernetes with Istio and Prometheus, driven from your pipeline.";

const LONG_ABOUT: &str = "\
Multi-stage canary releases on Kubernetes with Istio and Prometheus, driven from your pipeline.

One release manifest drives a whole release of one service: deploy the new version beside the live one, gate on \
pod health, shift Istio traffic in stages, check Prometheus metrics at every stage, then promote the new version or \
roll back to exactly where the release started. The exit code is the release verdict (see docs/exit-codes.md).";

const EXAMPLES: &str = "\
Examples:
  Check a manifest before committing it:
    fledge validate release.yaml

  Check every manifest of a repository in CI (exit code 2 if any is invalid):
    fledge validate deploy/releases/*.yaml

  See what a release would do, then run it; the exit code is the verdict:
    fledge plan release.yaml
    fledge run release.yaml

  Give your editor completion and checking for manifests:
    fledge schema > fledge-release.schema.json";

/// The `fledge` command line.
#[derive(Debug, Parser)]
#[command(name = "fledge", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES, propagate_version = true)]
pub(crate) struct Arguments {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// How progress and logs are written on stderr: lines for people, or one JSON object per event.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// Formats of progress and logs on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Lines for people (a live status line on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check release manifests without touching any cluster.
    ///
    /// Every problem of every file is reported on stderr as FILE:LINE:COLUMN: message, with a hint. For each valid
    /// file a summary of the release goes to stdout. Exit code 0 when every file is valid, 2 otherwise.
    #[command(after_help = "\
Examples:
  fledge validate release.yaml
  fledge validate examples/*.yaml
  fledge validate --output json release.yaml | jq '.[0].release.stages'")]
    Validate {
        /// Manifest files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// How valid releases are shown on stdout.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Print the JSON Schema of release manifests, for editors and linters.
    ///
    /// Save it and point yaml-language-server at it with a modeline as the first line of a manifest:
    /// `# yaml-language-server: $schema=./fledge-release.schema.json`
    #[command(after_help = "\
Examples:
  fledge schema > fledge-release.schema.json
  fledge schema | jq '.properties.stages'")]
    Schema,
    /// Run a release: deploy, gate, shift traffic in stages with metric checks, then promote or roll back.
    ///
    /// Blocks until the release ends; the exit code is the verdict (docs/exit-codes.md): 0 promoted, 4 waiting
    /// for approval, 6 lost the lock to another run, 10-14 rolled back (pod health, metrics, deadline, cancelled,
    /// error), 20 rollback failed. The
    /// run record and lock live in the cluster, so running the same command again after a crash resumes the
    /// release. The first SIGINT/SIGTERM rolls back and exits 13; a second exits at once (20), leaving the
    /// record for `fledge abort`.
    #[command(after_help = "\
Examples:
  fledge run release.yaml
  fledge run release.yaml --approve               # continue after an approval stage
  fledge run release.yaml --log-format json       # one JSON object per event on stderr
  fledge run release.yaml --report-junit fledge.xml --report-json fledge.json
  fledge run release.yaml --kubeconfig ~/.kube/staging --context staging")]
    Run {
        #[command(flatten)]
        target: ReleaseTarget,
        /// Continue a release that stopped after an approval stage.
        #[arg(long)]
        approve: bool,
        #[command(flatten)]
        reports: ReportArguments,
    },
    /// Check everything a release needs and show what it would change, changing nothing.
    ///
    /// Runs the preflight against the cluster and Prometheus (route, live version, Service, the new Deployment as a
    /// server-side dry run, every query), then prints the Deployment and subset it would add, the weights per stage,
    /// and the rendered queries. Exit 0 when the release could start, 3 when preflight fails, 5 when another release
    /// of the service is in flight.
    #[command(after_help = "\
Examples:
  fledge plan release.yaml
  fledge plan release.yaml --kubeconfig ~/.kube/staging")]
    Plan {
        #[command(flatten)]
        target: ReleaseTarget,
    },
    /// Show the state of the service's release: phase, stage, weights, outcome.
    ///
    /// Reads the run record fledge keeps in the cluster (ConfigMap fledge-release-<service>) and the route's
    /// weights now. Changes nothing.
    #[command(after_help = "\
Examples:
  fledge status release.yaml
  fledge status release.yaml --output json")]
    Status {
        #[command(flatten)]
        target: ReleaseTarget,
        /// How the status is shown on stdout.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Wait for the manifest's release, run by another process, to end; exit with its exit code.
    ///
    /// Follows the run record (ConfigMap fledge-release-<service>) of the release of FILE (its version and
    /// manifest), printing the progress lines `fledge run` prints for each phase, until it is promoted, rolled back
    /// or stopped for approval, and exits with that code. Waits for the release to start if it has not. Exit 5 when
    /// --timeout passes first. Changes nothing.
    #[command(after_help = "\
Examples:
  fledge wait release.yaml                 # a Kubernetes Job runs `fledge run release.yaml`
  fledge wait release.yaml --timeout 30m")]
    Wait {
        #[command(flatten)]
        target: ReleaseTarget,
        /// Give up after this long (exit 5: still in flight). Default: wait until the release ends.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<fledge_core::Duration>,
    },
    /// Roll back the release in flight for the manifest's service, whatever its version.
    ///
    /// When another fledge process runs the release, asks it to roll back and waits for it; otherwise rolls back
    /// itself from the run record: the route restored exactly, the new version retired. Exit 13 when rolled back,
    /// 0 when nothing was in flight, 20 when the rollback could not finish.
    #[command(after_help = "\
Examples:
  fledge abort release.yaml")]
    Abort {
        #[command(flatten)]
        target: ReleaseTarget,
    },
    /// Deploy the new version of a release and run the crash-loop gate alone.
    ///
    /// Applies the Deployment `<service>-<version>` (unless --no-deploy), then watches its pods until every one is
    /// Ready and stable (exit 0) or a failure is classified: crash loop, out of memory, image pull, invalid image,
    /// configuration error, unschedulable (exit 10), progress deadline or timeout (exit 12), with per-pod
    /// diagnostics. Traffic is not touched, and the Deployment is left in place for inspection.
    #[command(after_help = "\
Examples:
  fledge gate release.yaml
  fledge gate release.yaml --no-deploy           # only judge the pods already running
  fledge gate release.yaml --kubeconfig ~/.kube/staging --context staging")]
    Gate {
        #[command(flatten)]
        target: ReleaseTarget,
        /// Do not apply the Deployment; gate the pods that are there.
        #[arg(long)]
        no_deploy: bool,
    },
    /// Run one round of a release's metric checks now, and print each check's value, threshold and verdict.
    ///
    /// Queries Prometheus as a release stage would, for the new version and (for compared checks) the previous
    /// one, without touching any cluster. Exit code 0 when the round passes, 11 when a check fails (or has no data
    /// under `noData: fail`), 12 when a check has no data under `noData: hold` (a release would wait), 3 when
    /// Prometheus could not answer.
    #[command(after_help = "\
Examples:
  fledge analyze release.yaml
  fledge analyze release.yaml --previous-version v1 --since 10m   # the judge compares the last 10 minutes
  fledge analyze release.yaml --output json | jq '.checks[] | select(.verdict != \"pass\")'")]
    Analyze {
        /// The release manifest.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The live version compared with (default: the manifest's service.previousVersion).
        #[arg(long, value_name = "VERSION")]
        previous_version: Option<String>,
        /// How far back statistical judges look (default: ten analysis intervals).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        since: Option<fledge_core::Duration>,
        /// How the round is shown on stdout.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Watch a whole release, then a rollback, on a simulated cluster with a real Prometheus.
    ///
    /// Starts fledge-sim in-process with the bookinfo app (examples/sim/bookinfo.yaml) and Prometheus (found on
    /// PATH; install it with `apt-get install -y prometheus`), then releases reviews v2 with examples/demo.yaml
    /// (three short stages, about a minute) and promotes it, then releases v3, whose image fails 8% of requests,
    /// and rolls it back. Exit 0 when both end as expected, 3 when Prometheus is missing.
    #[command(after_help = "\
Examples:
  fledge demo
  fledge demo --gateway-api
  fledge demo --log-format json 2> events.jsonl
  fledge demo --metrics-port 9464 --prometheus-url http://127.0.0.1:9090   # your Prometheus scrapes :9464")]
    Demo {
        /// Route reviews with a Gateway API HTTPRoute and one Service per version
        /// (examples/sim/bookinfo-gateway-api.yaml) instead of an Istio VirtualService.
        #[arg(long)]
        gateway_api: bool,
        /// Use this Prometheus instead of starting one; it must scrape 127.0.0.1:<--metrics-port>/metrics.
        #[arg(long, value_name = "URL")]
        prometheus_url: Option<String>,
        /// Port of the simulator's Istio metrics on 127.0.0.1 (0: any free port).
        #[arg(long, value_name = "PORT", default_value_t = 0)]
        metrics_port: u16,
    },
    /// Test a release policy on a simulated cluster: would it catch a bad version, when, and at what cost?
    ///
    /// Runs your manifest against fledge-sim with the new version behaving as --scenario says (fledge-sim presets:
    /// healthy, crashloop, oom, image-pull, errors=5%, latency=+300ms, crash-after=2m, slow-start=30s, ...; the
    /// simulated service answers in 20 ms median, 250 ms p99), with time compressed (--speed), and reports whether
    /// the policy caught it, when (time to abort, stage, weight) and the exposure (requests sent to the bad version,
    /// failed requests), in real-time terms. --all runs a standard set and prints a table. Exit 0 when every bad
    /// version is caught and a healthy one promoted, 3 otherwise.
    #[command(after_help = "\
Examples:
  fledge rehearse release.yaml --all
  fledge rehearse release.yaml --scenario errors=5%
  fledge rehearse release.yaml --scenario latency=+300ms --rps 400")]
    Rehearse {
        /// The release manifest.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// How the new version behaves (fledge-sim behaviour presets, comma-separated).
        #[arg(long, value_name = "BEHAVIOUR", required_unless_present = "all", conflicts_with = "all")]
        scenario: Option<String>,
        /// Rehearse the standard set: healthy, crashloop, oom, image-pull, errors=5%, latency=+300ms, crash-after=2m.
        #[arg(long)]
        all: bool,
        /// Requests per second the service receives (scaled with time, so counts match a real release).
        #[arg(long, value_name = "RPS", default_value_t = 100.0)]
        rps: f64,
        /// Times faster than real time (default: the analysis interval divided by 3 s, from 1 to 10).
        #[arg(long, value_name = "FACTOR")]
        speed: Option<f64>,
        /// The traffic provider to rehearse with (default: the manifest's).
        #[arg(long, value_enum, value_name = "PROVIDER")]
        provider: Option<Provider>,
        /// Rehearse each scenario this many times and summarize: false rollbacks of a healthy version, and the
        /// spread of the time to abort and of the failed requests.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeat: u32,
        /// Write each rehearsal's HTML report (`--report-html` of `fledge run`) into this directory, as
        /// SCENARIO-N.html.
        #[arg(long, value_name = "DIRECTORY")]
        report_html: Option<PathBuf>,
        /// How the results are shown on stdout.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Print the shell completion script for SHELL.
    #[command(after_help = "\
Examples:
  fledge completions bash > ~/.local/share/bash-completion/completions/fledge
  fledge completions zsh > ~/.zfunc/_fledge        # with fpath+=~/.zfunc before compinit
  fledge completions fish > ~/.config/fish/completions/fledge.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "\
Examples:
  fledge man > ~/.local/share/man/man1/fledge.1 && man fledge")]
    Man,
    /// Run the simulated Kubernetes cluster (fledge-sim) until interrupted.
    ///
    /// Serves a Kubernetes API that kubectl and fledge accept, with a deployment controller, simulated kubelet
    /// behaviours chosen by image, and Istio telemetry on a metrics endpoint. Writes a kubeconfig for it.
    #[command(after_help = "\
Examples:
  fledge sim --kubeconfig /tmp/sim.kubeconfig &
  KUBECONFIG=/tmp/sim.kubeconfig kubectl get pods -A
  fledge sim --scenario examples/sim/bookinfo.yaml --kubeconfig /tmp/sim.kubeconfig --port 6443")]
    Sim {
        /// Where to write the kubeconfig for the simulator.
        #[arg(long, value_name = "PATH")]
        kubeconfig: PathBuf,
        /// Port of the Kubernetes API on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Scenario file: behaviours by image, traffic, and objects to create at start.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
        /// Also write a kubeconfig that acts as ServiceAccount NAMESPACE/NAME (with a token; RBAC decides what it
        /// may do). Repeatable.
        #[arg(long = "service-account-kubeconfig", value_name = "NAMESPACE/NAME=PATH", value_parser = parse_account_kubeconfig)]
        service_accounts: Vec<(String, String, PathBuf)>,
    },
}

fn parse_account_kubeconfig(text: &str) -> Result<(String, String, PathBuf), String> {
    let (account, path) =
        text.split_once('=').ok_or("write NAMESPACE/NAME=PATH, like bookinfo/fledge=/tmp/fledge.kubeconfig")?;
    let (namespace, name) = account.split_once('/').ok_or("write the ServiceAccount as NAMESPACE/NAME")?;
    Ok((namespace.to_owned(), name.to_owned(), PathBuf::from(path)))
}

fn parse_duration(text: &str) -> Result<fledge_core::Duration, String> {
    fledge_core::Duration::parse(text).map_err(|error| format!("{error} (write a duration like 90s or 5m)"))
}

/// Report files of a release. A Markdown summary is also appended to `$GITHUB_STEP_SUMMARY` when it is set.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReportArguments {
    /// Write every phase, check, value, threshold and verdict with timestamps as JSON (docs/reports.md).
    #[arg(long, value_name = "PATH")]
    pub(crate) report_json: Option<PathBuf>,
    /// Write a JUnit XML report: a testsuite for the release, a testcase for the gate and each stage.
    #[arg(long, value_name = "PATH")]
    pub(crate) report_junit: Option<PathBuf>,
    /// Write one self-contained HTML page: the verdict, the traffic timeline and a chart per check (no script).
    #[arg(long, value_name = "PATH")]
    pub(crate) report_html: Option<PathBuf>,
}

/// A release manifest and the cluster it is released to.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReleaseTarget {
    /// The release manifest.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) cluster: ClusterArguments,
}

/// How to reach the cluster.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClusterArguments {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account).
    #[arg(long, value_name = "PATH", global = true)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME", global = true)]
    pub(crate) context: Option<String>,
}

/// A traffic provider, named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Provider {
    /// An Istio VirtualService and DestinationRule.
    Istio,
    /// A Gateway API HTTPRoute and one Service per version.
    GatewayApi,
}

impl Provider {
    /// `release` routed by this provider: unchanged when it already is, else with the provider's defaults.
    pub(crate) fn apply(self, release: &mut fledge_core::Release) {
        use fledge_core::release::{GatewayApiTraffic, IstioTraffic, TrafficProvider};
        let service = &release.service.name;
        match (self, &release.traffic.provider) {
            (Provider::Istio, TrafficProvider::Istio(_)) | (Provider::GatewayApi, TrafficProvider::GatewayApi(_)) => {}
            (Provider::Istio, _) => {
                release.traffic.provider = TrafficProvider::Istio(IstioTraffic::for_service(service))
            }
            (Provider::GatewayApi, _) => {
                release.traffic.provider = TrafficProvider::GatewayApi(GatewayApiTraffic::for_service(service));
            }
        }
    }
}

/// Output formats for results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// A summary for people.
    Text,
    /// Machine-readable JSON (`validate`: each release with every default filled in; `analyze`: the round).
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Arguments::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        let command = Arguments::command();
        assert!(command.get_after_help().is_some_and(|help| help.to_string().contains("Examples:")));
        for subcommand in command.get_subcommands() {
            let help = subcommand.get_after_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.contains("Examples:"), "`fledge {}` --help has no examples", subcommand.get_name());
        }
    }
}
