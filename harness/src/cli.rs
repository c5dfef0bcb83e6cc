//! The `csp-harness` command line: argument parsing and dispatch to the subcommands.
//!
//! Exit codes are part of the interface ([`crate::exit`]): 0 pass, 1 thresholds breached, 2 usage,
//! input or endpoint error, 3 the harness could not keep its schedule, 130 interrupted. Every
//! error reaching `main` is printed once, each cause once, and maps to 2.

use crate::endpoint_url::EndpointUrl;
use crate::exit;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// `0.1.0 (commit 1a2b3c4d5e6f, built 2026-11-30)`: from `build.rs`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CSP_BUILD_INFO"), ")");

/// Load-test harness for GB smart-meter power outage (POA) and restoration (PRA) alerts: virtual
/// hubs, a modelled CSP network, a real alert-ingest endpoint, delivery curves and loss by cause.
#[derive(Debug, Parser)]
#[command(
    name = "csp-harness",
    version = VERSION,
    after_help = exit::HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Log lines on stderr as text or as JSON objects (one per line). Filter with RUST_LOG.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; colour only on a terminal (and never with NO_COLOR set).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a profile in (scaled) real time against a real alert-ingest endpoint: csp-alert over
    /// QUIC, or HTTP/1.1, HTTP/2, HTTP/3 (see docs/http.md).
    ///
    /// Without --endpoint, starts the reference ingest endpoint on loopback and pins its certificate.
    Run(RunArgs),
    /// Run a profile on virtual time with an in-process endpoint that acks at once (deterministic).
    Simulate(SimulateArgs),
    /// Run several profiles (default: the seed's six) and draw them together: curves, loss, tables.
    Compare(CompareArgs),
    /// Simulate profiles across values of one key (default: scenario.premises, 250 … 1,000,000)
    /// and draw time to 50/80/95% and the share delivered against it.
    Sweep(SweepArgs),
    /// Perturb each calibrated ([cal]) parameter of a profile by ±20% and draw which ones move the
    /// headline figures (tornado charts).
    Sensitivity(SensitivityArgs),
    /// Redraw graphs and tables from saved results directories, without running again.
    Report(ReportArgs),
    /// Check a results directory against thresholds and/or a baseline (exit 0 pass, 1 breached, 2 error).
    Check(crate::check::CheckArgs),
    /// Draw many nights' results over time (time to 50/80/95%, loss) and write them for
    /// github-action-benchmark.
    Trend(crate::trend::TrendArgs),
    /// Combine the shards of a split run (run --shard I/N, e.g. a Kubernetes Indexed Job) into
    /// the one run, exactly; refuses a shard that is missing, given twice or from another run.
    Merge(crate::merge::MergeArgs),
    /// Serve the reference alert-ingest endpoint (csp-alert over QUIC; HTTP/1.1, /2, /3 with
    /// --http-listen). Ctrl-C or SIGTERM close it gracefully.
    Ingest(crate::ingest_cmd::IngestArgs),
    /// Inspect load profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Print a shell completion script, e.g. `csp-harness completions bash > /etc/bash_completion.d/csp-harness`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a folder with --out.
    Man {
        /// Write csp-harness.1 and csp-harness-COMMAND.1 into this folder instead.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// `csp-harness profile ...`
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Print the resolved profile (includes and change overlays applied) as TOML.
    Show {
        /// The profile: a file, or a built-in name such as north/current.
        file: PathBuf,
    },
    /// List the profiles (and thresholds files) built into this binary.
    List,
}

/// Options shared by everything that runs a profile.
#[derive(Debug, Clone, Args)]
pub struct CommonRunArgs {
    /// Load profile: a TOML file, or the name of a built-in one (`csp-harness profile list`),
    /// e.g. north/current. A file on disk of that path wins.
    #[arg(long, value_name = "FILE|NAME")]
    pub profile: PathBuf,
    /// Technical changes to enable on top of the profile's own, e.g. `--changes 1,3` (see
    /// profiles/changes.toml): any combination of the eight can be run.
    #[arg(long, value_delimiter = ',', value_name = "N,..")]
    pub changes: Vec<String>,
    /// Seed for every random choice of the model (same seed, same scenario).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run several seeds and report each figure as the median with its min–max, the graphs as
    /// the median curve in a min–max band: `--seeds 5` runs seeds --seed, --seed+1, ... (5 in
    /// all); `--seeds 1,2,7` runs exactly those. `simulate` (and `compare --simulate`) only.
    #[arg(long, value_name = "N|S,S,..", value_parser = parse_seeds)]
    pub seeds: Option<SeedsArg>,
    /// Simulations of --seeds run at once [default: the machine's cores]; the results are the
    /// same whatever it is.
    #[arg(long, value_parser = at_least_one, requires = "seeds")]
    pub jobs: Option<usize>,
    /// Results folder. Default: a new folder per run, out/<profile>[+<changes>]/<UTC time>/, with
    /// out/<profile>[+<changes>]/latest pointing at the newest. A folder given here must be empty
    /// (or use --force).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into a non-empty --out folder, replacing the results an earlier run left there.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Only print the final summary line, no progress.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print summary.json to stdout (everything else goes to stderr), e.g. for `| jq`.
    #[arg(long)]
    pub json: bool,
    /// Thresholds to check at the end (default: the profile's own `[thresholds]`, if any).
    /// Exit 1 when one is breached.
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    /// Write the verdict as JUnit XML (one test case per threshold, plus the run's health checks:
    /// complete, on schedule; without thresholds also the endpoint path, and the exit code follows
    /// them).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Send only shard I of N: the alerts of the premises whose index is I modulo N. Every shard
    /// runs the whole model; `csp-harness merge` combines the N results into the one run.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<virtual_hubs::Shard>,
    /// Split the run into N shards, this process's index read from JOB_COMPLETION_INDEX (set by a
    /// Kubernetes Indexed Job). --shard I/N wins.
    #[arg(long, value_name = "N", env = "CSP_SHARDS", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,
}

/// `csp-harness run`
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Profile, seed, output.
    #[command(flatten)]
    pub common: CommonRunArgs,
    /// Endpoint under test: `quic://HOST:PORT` (csp-alert), `http(s)://HOST[:PORT]/PATH`
    /// (HTTP/1.1 or HTTP/2), `h3://HOST[:PORT]/PATH` (HTTP/3). Without it the reference endpoint is
    /// started on 127.0.0.1 with a fresh self-signed certificate.
    #[arg(long, value_name = "URL", env = "CSP_ENDPOINT", hide_env_values = true)]
    pub endpoint: Option<EndpointUrl>,
    /// The embedded reference endpoint's protocol (without --endpoint): csp-alert over QUIC, or
    /// HTTP (HTTP/2 by ALPN unless --http1.1 or --http3).
    #[arg(long, value_enum, default_value = "quic", conflicts_with = "endpoint")]
    pub transport: TransportArg,
    /// Speak HTTP/1.1 only (HTTP endpoints).
    #[arg(long = "http1.1", conflicts_with_all = ["http2", "http3"])]
    pub http1_1: bool,
    /// Speak HTTP/2 only (on http://: prior knowledge).
    #[arg(long, conflicts_with = "http3")]
    pub http2: bool,
    /// Speak HTTP/3 (the same as an h3:// URL).
    #[arg(long)]
    pub http3: bool,
    /// HTTP body format: json, or duis (XML shaped after DUIS alerts, not validated against
    /// the DCC's schema).
    #[arg(
        long,
        value_enum,
        default_value = "json",
        conflicts_with = "payload_template"
    )]
    pub payload: PayloadArg,
    /// HTTP body from a template file with {{placeholders}} (docs/http.md lists them).
    #[arg(long, value_name = "FILE")]
    pub payload_template: Option<PathBuf>,
    /// Extra HTTP header 'Name: value' (repeat); ${VAR} or a whole value env:VAR is read from the
    /// environment, so tokens need not sit on the command line.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// HTTP statuses that mean "stored" [default: 200,201,202,204].
    #[arg(long, value_delimiter = ',', value_name = "STATUS,..")]
    pub accept: Vec<u16>,
    /// Real seconds one HTTP request may wait for its answer before the alert is sent again.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_s: u64,
    /// CA or pinned certificate (PEM) the endpoint's certificate must chain to. Required with --endpoint.
    #[arg(
        long,
        value_name = "PEM",
        requires = "endpoint",
        env = "CSP_CA",
        hide_env_values = true
    )]
    pub ca: Option<PathBuf>,
    /// INSECURE: accept any endpoint certificate without verifying who issued it. Anyone on the
    /// path can read and alter the alerts. Only for trials against throw-away certificates.
    #[arg(long, requires = "endpoint", conflicts_with = "ca")]
    pub insecure_skip_verify: bool,
    /// Client certificate chain (PEM) for endpoints that require mutual TLS.
    #[arg(long, value_name = "PEM", requires_all = ["endpoint", "client_key"])]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Token presented to the endpoint: in the HELLO frame (csp-alert, docs/protocol.md) or as
    /// `Authorization: Bearer TOKEN` (HTTP). Prefer the environment variable: a token on the
    /// command line is visible to every user in `ps`.
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "endpoint",
        env = "CSP_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// File holding the token (the whole file, one trailing line break removed), instead of
    /// --token: kept out of `ps`, shell history and the environment of child processes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "endpoint",
        conflicts_with = "token",
        env = "CSP_TOKEN_FILE"
    )]
    pub token_file: Option<PathBuf>,
    /// TLS server name to verify [default: the endpoint's host].
    #[arg(long, value_name = "NAME", requires = "endpoint")]
    pub server_name: Option<String>,
    /// Run the scenario N times faster than real time (event times stay in scenario time).
    #[arg(long, default_value_t = 1.0, value_name = "N", value_parser = parse_time_scale, allow_negative_numbers = true)]
    pub time_scale: f64,
    /// Connections the egress keeps open to the endpoint [default: 4; HTTP/1.1: 32, one request
    /// in flight each].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: Option<u16>,
    /// Lanes per connection: QUIC streams (csp-alert) or groups of concurrent requests (HTTP/2,
    /// HTTP/3) [default: 4 (csp-alert), 1 (HTTP)].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub streams: Option<u16>,
    /// Alerts in flight per lane [default: 256 (csp-alert), 100 (HTTP/2, HTTP/3)].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub in_flight: Option<u16>,
    /// Scenario seconds the harness waits for outstanding acks after the last hub finished.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS", value_parser = parse_drain_s, allow_negative_numbers = true)]
    pub drain_s: f64,
    /// Wait until this time (RFC 3339, e.g. 2026-11-30T02:17:00Z) before starting the scenario
    /// clock: the shards of one run, started by a scheduler seconds apart, then drive one load.
    #[arg(long, value_name = "TIME", env = "CSP_START_AT", value_parser = parse_start_at)]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The run id that scopes the alert ids at the endpoint (32 hex digits, or a UUID) [default:
    /// random]. Give every shard of one run the same id, and never reuse it for another run: the
    /// endpoint then sees one run, and recognises what a restarted shard sends again.
    #[arg(long, value_name = "ID", env = "CSP_RUN_ID", value_parser = parse_run_id)]
    pub run_id: Option<egress::RunId>,
    /// Harness lag (scenario ms that hub tasks run behind their intended times, 99th percentile)
    /// beyond which the run is flagged as lagged and exits 3: its curves are distorted by the
    /// harness, not the network. Time alerts wait for a dead or slow endpoint is the endpoint's,
    /// reported apart, and never counts here.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub max_lag_ms: u64,
    /// Live metrics.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Real seconds of silence after which a connection to the endpoint counts as lost (then it
    /// is reconnected); keep-alives go at a quarter of it. [default: a quarter of the alert
    /// deadline in real time, between 1 and 10 s: 3.75 s at 60x, 1.9 s at 120x]
    #[arg(long, value_name = "SECONDS", value_parser = parse_idle_timeout)]
    pub idle_timeout: Option<f64>,
}

impl RunArgs {
    /// A run against the embedded reference endpoint (csp-alert) with every default.
    pub fn embedded(common: CommonRunArgs, time_scale: f64) -> Self {
        RunArgs {
            common,
            endpoint: None,
            transport: TransportArg::Quic,
            http1_1: false,
            http2: false,
            http3: false,
            payload: PayloadArg::Json,
            payload_template: None,
            headers: Vec::new(),
            accept: Vec::new(),
            request_timeout_s: 30,
            ca: None,
            insecure_skip_verify: false,
            client_cert: None,
            client_key: None,
            token: None,
            token_file: None,
            server_name: None,
            time_scale,
            connections: None,
            streams: None,
            in_flight: None,
            drain_s: 300.0,
            max_lag_ms: 5000,
            metrics: MetricsArgs::default(),
            start_at: None,
            run_id: None,
            idle_timeout: None,
        }
    }
}

/// The embedded endpoint's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportArg {
    /// csp-alert over QUIC.
    Quic,
    /// HTTP over TLS (HTTP/2 by ALPN; --http1.1, --http3).
    Http,
}

/// The HTTP body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PayloadArg {
    /// JSON (docs/http.md).
    Json,
    /// XML shaped after DUIS alerts.
    Duis,
}

/// `csp-harness simulate`
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Profile, seed, output.
    #[command(flatten)]
    pub common: CommonRunArgs,
}

/// `csp-harness compare`
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// A profile to run, a file or a built-in name (repeat for several). Without any: the seed's
    /// six, both regions × three options.
    #[arg(long, value_name = "FILE|NAME")]
    pub profile: Vec<PathBuf>,
    /// Where the seed's six profiles are looked up when no --profile is given; those not there
    /// are the built-in ones.
    #[arg(long, value_name = "DIR", default_value = "profiles")]
    pub profiles_dir: PathBuf,
    /// Use `simulate` (virtual time, instant-ack endpoint) instead of `run`.
    #[arg(long, conflicts_with = "metrics_listen")]
    pub simulate: bool,
    /// Seed for every run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run every profile with several seeds (with --simulate only): `--seeds 5` or
    /// `--seeds 1,2,7`, as for `simulate`; the graphs draw each option's median curve in its
    /// min–max band and the tables give median (min–max).
    #[arg(long, value_name = "N|S,S,..", value_parser = parse_seeds)]
    pub seeds: Option<SeedsArg>,
    /// Simulations of --seeds run at once [default: the machine's cores].
    #[arg(long, value_parser = at_least_one, requires = "seeds")]
    pub jobs: Option<usize>,
    /// Time scale of `run` (ignored with --simulate).
    #[arg(long, default_value_t = 60.0, value_name = "N", value_parser = parse_time_scale)]
    pub time_scale: f64,
    /// Live metrics of each profile's run in turn, on one address (`csp_run_info` names the
    /// profile; port 0 picks one free port for the whole comparison; the hold follows the last
    /// profile). Not with --simulate.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Output folder: one results folder per profile plus the overlaid graphs and tables.
    /// Default: a new folder per comparison, out/compare/<UTC time>/ (out/compare/latest the newest).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into a non-empty --out folder, replacing the results an earlier comparison left there.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Write the verdict of the profiles' own `[thresholds]` as JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the runs' summaries to stdout as one JSON array (everything else goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// `--metrics-listen` and `--metrics-hold-s`, as `run` and `compare` take them.
#[derive(Debug, Clone, Default, Args)]
pub struct MetricsArgs {
    /// Serve live Prometheus/OpenMetrics metrics at http://ADDR/metrics while the run lasts
    /// (README "Live metrics"); port 0 picks a free port, printed on stderr.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Keep serving /metrics this many real seconds after the results are written, so a scraper
    /// sees the final values (Ctrl-C ends the wait).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        requires = "metrics_listen"
    )]
    pub metrics_hold_s: u64,
}

/// `csp-harness sweep`
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// A profile to sweep (repeat for several). Without any: the seed's six.
    #[arg(long, value_name = "FILE")]
    pub profile: Vec<PathBuf>,
    /// Where the seed's six profiles are looked up when no --profile is given.
    #[arg(long, value_name = "DIR", default_value = "profiles")]
    pub profiles_dir: PathBuf,
    /// The dotted key of the resolved profile to vary (see `csp-harness profile show`), e.g.
    /// scenario.premises, stages.throttle.rate, access.radio.holdover.
    #[arg(long, value_name = "KEY", default_value = "scenario.premises")]
    pub key: String,
    /// The values to set, e.g. `--values 1000,30000,100000` or `--values 60s,90s,120s`. Without
    /// it: --points values from --from to --to, log-spaced (numeric keys only).
    #[arg(long, value_delimiter = ',', value_name = "V,..")]
    pub values: Vec<String>,
    /// Smallest value of a log-spaced sweep.
    #[arg(long, default_value_t = crate::sweep::DEFAULT_FROM, value_parser = positive)]
    pub from: f64,
    /// Largest value of a log-spaced sweep.
    #[arg(long, default_value_t = crate::sweep::DEFAULT_TO, value_parser = positive)]
    pub to: f64,
    /// Number of values of a log-spaced sweep.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(2..=100))]
    pub points: u16,
    /// Output folder for <region>-sweep.png/.svg, sweep.md and sweep.csv. Default: a new folder,
    /// out/sweep/<UTC time>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed, parallelism, overwriting and progress, as for every study.
    #[command(flatten)]
    pub study: StudyArgs,
}

/// `csp-harness sensitivity`
#[derive(Debug, Clone, Args)]
pub struct SensitivityArgs {
    /// The profile whose calibrated parameters are perturbed (repeat for several).
    #[arg(long, value_name = "FILE", required = true)]
    pub profile: Vec<PathBuf>,
    /// Relative perturbation, percent: each parameter is run at (100 - P)% and (100 + P)% of its
    /// value.
    #[arg(long, default_value_t = 20.0, value_name = "P", value_parser = percent_below_100)]
    pub by: f64,
    /// The source tag that marks a parameter as a calibrated guess (in its line comment).
    #[arg(long, default_value = "cal", value_name = "TAG")]
    pub tag: String,
    /// Output folder for the tornado charts, sensitivity.md and sensitivity.csv. Default: a new
    /// folder, out/sensitivity/<UTC time>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed, parallelism, overwriting and progress, as for every study.
    #[command(flatten)]
    pub study: StudyArgs,
}

/// What `sweep` and `sensitivity` share: many simulations of one seed, run in parallel.
#[derive(Debug, Clone, Args)]
pub struct StudyArgs {
    /// Seed of every simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulations run at once [default: the machine's cores].
    #[arg(long, value_parser = at_least_one)]
    pub jobs: Option<usize>,
    /// Write into a non-empty --out folder.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--seeds`: how many seeds from `--seed` on, or which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedsArg {
    /// `--seeds N`: N consecutive seeds from `--seed`.
    Count(u32),
    /// `--seeds A,B,C`: these seeds, in this order (`--seed` is then not used).
    List(Vec<u64>),
}

/// The most seeds one command runs: beyond it a typo (`--seeds 100000`) would run for hours.
pub const MAX_SEEDS: u32 = 1000;

impl SeedsArg {
    /// The seeds to run, the first being the run whose files the results folder holds.
    pub fn resolve(&self, base: u64) -> anyhow::Result<Vec<u64>> {
        match self {
            SeedsArg::List(v) => Ok(v.clone()),
            SeedsArg::Count(n) => {
                let n = u64::from(*n);
                base.checked_add(n - 1).map_or_else(
                    || {
                        Err(anyhow::anyhow!(
                            "--seeds {n} from --seed {base} runs past the largest seed ({})",
                            u64::MAX
                        ))
                    },
                    |_| Ok((0..n).map(|i| base + i).collect()),
                )
            }
        }
    }
}

/// The seeds `--seeds` gives with `--seed` as the base, or just `--seed`.
pub fn seed_list(seed: u64, seeds: Option<&SeedsArg>) -> anyhow::Result<Vec<u64>> {
    seeds.map_or(Ok(vec![seed]), |s| s.resolve(seed))
}

fn parse_seeds(s: &str) -> Result<SeedsArg, String> {
    let usage = "give a number of seeds (e.g. 5: --seed, --seed+1, ...) or a list of seeds \
                 separated by commas (e.g. 1,2,7)";
    let s = s.trim();
    if s.contains(',') {
        let mut v: Vec<u64> = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let seed: u64 = part.parse().map_err(|_| {
                format!("'{part}' in '{s}' is not a seed (a whole number); {usage}")
            })?;
            if v.contains(&seed) {
                return Err(format!("seed {seed} is listed twice in '{s}'"));
            }
            v.push(seed);
        }
        if v.len() > MAX_SEEDS as usize {
            return Err(format!("{} seeds: at most {MAX_SEEDS}", v.len()));
        }
        return Ok(SeedsArg::List(v));
    }
    match s.parse::<u32>() {
        Ok(0) => Err(format!("0 seeds would run nothing; {usage}")),
        Ok(n) if n > MAX_SEEDS => Err(format!("{n} seeds: at most {MAX_SEEDS}")),
        Ok(n) => Ok(SeedsArg::Count(n)),
        Err(_) => Err(format!("'{s}' is not a number of seeds; {usage}")),
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.replace('_', "").parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn percent_below_100(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 100.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a percentage between 0 and 100 (e.g. 20)"
        )),
    }
}

/// `csp-harness report`
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Results directories written by run, simulate or compare.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the graphs and tables go. Default: a new folder, out/report/<UTC time>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into a non-empty --out folder, replacing the files an earlier report left there.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Also write report.html: one self-contained file (graphs as inline SVG, tables, provenance)
    /// that opens without network access and prints on A4.
    #[arg(long)]
    pub html: bool,
}

fn parse_time_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| {
        format!("'{s}' is not a number (e.g. 60 for one scenario minute per second)")
    })?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("time scale must be a positive number, got {s}"));
    }
    if v > 10_000.0 {
        return Err(format!(
            "time scale {s} is beyond what the real-time path can honour (at most 10000); use `simulate` for virtual time"
        ));
    }
    Ok(v)
}

fn parse_start_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("'{s}' is not an RFC 3339 time such as 2026-11-30T02:17:00Z ({e})"))
}

/// 32 hex digits, or the same as a UUID (a Kubernetes Job's uid), dashes ignored.
fn parse_run_id(s: &str) -> Result<egress::RunId, String> {
    s.trim()
        .replace('-', "")
        .parse()
        .map_err(|_| format!("'{s}' is not a run id: 32 hex digits, or a UUID"))
}

fn parse_idle_timeout(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds (e.g. 2.5)"))?;
    if !v.is_finite() || !(0.1..=600.0).contains(&v) {
        return Err(format!(
            "the idle timeout is between 0.1 and 600 real seconds, got {s}"
        ));
    }
    Ok(v)
}

fn parse_drain_s(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| {
        format!("'{s}' is not a number of scenario seconds (e.g. 300 for five minutes)")
    })?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!(
            "the drain is a number of scenario seconds, 0 or more, got {s}"
        ));
    }
    Ok(v)
}

/// At least 1: a limit of 0 connections would refuse every client.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 would refuse every client; give at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// A token that is not empty (an empty required token would let any client in) and fits a HELLO.
fn non_empty_token(s: &str) -> Result<String, String> {
    crate::token::check(s.as_bytes())?;
    Ok(s.to_string())
}

/// The command line as clap sees it, with what the derive cannot say: defaults of "no limit"
/// (`u64::MAX`) shown as `unlimited`, and the reference endpoint's limits and token refused when
/// they would make no sense. (The endpoint's own arguments belong to its module; these checks sit
/// here so they cover it whatever that module's derive says.)
pub fn command() -> clap::Command {
    readable_defaults(Cli::command()).mut_subcommand("ingest", |c| {
        c.mut_args(|a| match a.get_id().as_str() {
            "max_connections" | "max_connections_per_ip" => a.value_parser(at_least_one),
            "auth_token" => a.value_parser(non_empty_token),
            _ => a,
        })
    })
}

/// Every argument (in every subcommand) whose default is an integer type's maximum shows
/// `[default: unlimited]` instead of `18446744073709551615`.
fn readable_defaults(cmd: clap::Command) -> clap::Command {
    const MAXIMA: [&str; 3] = ["18446744073709551615", "4294967295", "65535"];
    cmd.mut_args(|a| {
        let is_max = a
            .get_default_values()
            .iter()
            .any(|v| MAXIMA.iter().any(|m| v == *m));
        if !is_max {
            return a;
        }
        let help = a.get_help().map(ToString::to_string).unwrap_or_default();
        let long = a.get_long_help().map(ToString::to_string);
        let a = a
            .hide_default_value(true)
            .help(format!("{help} [default: unlimited]"));
        match long {
            Some(l) => a.long_help(format!("{l}\n\n[default: unlimited]")),
            None => a,
        }
    })
    .mut_subcommands(readable_defaults)
}

/// Is stdout reserved for `--json`? Then everything meant for people goes to stderr.
static JSON_STDOUT: AtomicBool = AtomicBool::new(false);

/// Reserves stdout for the JSON a `--json` command prints.
pub fn reserve_stdout_for_json(on: bool) {
    JSON_STDOUT.store(on, Ordering::Relaxed);
}

/// Writes text for people: to stdout, or to stderr when stdout is reserved for `--json`. A closed
/// pipe is ignored (`csp-harness ... | head` must not panic).
pub fn say(text: &str) {
    use std::io::Write as _;
    if JSON_STDOUT.load(Ordering::Relaxed) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// Writes a `--json` result to stdout, pretty-printed, with a final newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
    Ok(())
}

/// An error and its causes, each said once: a cause whose text its parent already includes (as
/// many library errors include their source's message) is not repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Parses the arguments and runs the command; returns the process exit code.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match command()
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let _ = e.print();
            return if e.use_stderr() {
                exit::code(exit::ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    crate::init_tracing(cli.log_format);
    if matches!(
        cli.command,
        Command::Run(_) | Command::Simulate(_) | Command::Compare(_)
    ) && let Err(e) = crate::interrupt::install()
    {
        eprintln!("warning: cannot catch Ctrl-C/SIGTERM ({e}): an interrupted run writes nothing");
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            exit::code(exit::ERROR)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            reserve_stdout_for_json(args.common.json);
            crate::run::run(args)
        }
        Command::Simulate(args) => {
            reserve_stdout_for_json(args.common.json);
            crate::run::simulate(args)
        }
        Command::Compare(args) => {
            reserve_stdout_for_json(args.json);
            crate::compare::compare(args)
        }
        Command::Report(args) => crate::compare::report(args),
        Command::Check(args) => {
            reserve_stdout_for_json(args.json);
            crate::check::check(args)
        }
        Command::Trend(args) => crate::trend::trend(args),
        Command::Merge(args) => {
            reserve_stdout_for_json(args.json);
            crate::merge::merge(args)
        }
        Command::Sweep(args) => crate::sweep::sweep(args),
        Command::Sensitivity(args) => crate::sensitivity::sensitivity(args),
        Command::Ingest(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(serve_ingest(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Profile(ProfileCommand::Show { file }) => {
            let p = crate::profiles::load(&file, &[])?;
            say(&p.to_resolved_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Profile(ProfileCommand::List) => {
            say(&crate::profiles::list());
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut cmd = command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "csp-harness", &mut out);
            say(&String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => {
            let cmd = command();
            match out {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    clap_mangen::generate_to(cmd, &dir)?;
                    say(&format!("man pages: {}\n", dir.display()));
                }
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(cmd).render(&mut page)?;
                    say(&String::from_utf8_lossy(&page));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `csp-harness ingest`: serves until Ctrl-C or SIGTERM, then closes gracefully (stops accepting,
/// answers the batches in hand, closes its connections, syncs its ledger) and exits 0, as a
/// service manager or `docker stop` expects.
async fn serve_ingest(args: crate::ingest_cmd::IngestArgs) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Both handlers are installed before the endpoint starts, so a signal that arrives early
    // cannot kill the process with the default action.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = sigint.recv() => "Ctrl-C",
            _ = sigterm.recv() => "SIGTERM",
        }
    };
    crate::ingest_cmd::run_ingest(args, stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_parses_with_the_real_command() {
        let cmd = command();
        cmd.clone().debug_assert();
        let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        for want in [
            "run",
            "simulate",
            "compare",
            "report",
            "check",
            "trend",
            "merge",
            "ingest",
            "profile",
            "completions",
            "man",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
    }

    #[test]
    fn no_default_is_shown_as_an_integer_maximum() {
        fn walk(c: &clap::Command, out: &mut Vec<String>) {
            for a in c.get_arguments() {
                let shown = !a.is_hide_default_value_set();
                for v in a.get_default_values() {
                    let v = v.to_string_lossy();
                    if shown && v.len() >= 5 && v.chars().all(|c| c.is_ascii_digit()) {
                        let n: u128 = v.parse().unwrap_or(0);
                        if [u128::from(u64::MAX), u128::from(u32::MAX), 65_535].contains(&n) {
                            out.push(format!("{} --{}", c.get_name(), a.get_id()));
                        }
                    }
                }
            }
            for s in c.get_subcommands() {
                walk(s, out);
            }
        }
        let mut bad = Vec::new();
        walk(&command(), &mut bad);
        assert!(bad.is_empty(), "{bad:?}");
        let mut cmd = command();
        let ingest = cmd.find_subcommand_mut("ingest").unwrap();
        let help = ingest.render_long_help().to_string();
        assert!(!help.contains("18446744073709551615"), "{help}");
        assert!(help.contains("[default: unlimited]"), "{help}");
    }

    #[test]
    fn causes_are_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = io.to_string();
        // A library error that embeds its source's message, as thiserror's `{source}` does.
        #[derive(Debug)]
        struct Embeds(std::io::Error);
        impl std::fmt::Display for Embeds {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read x.toml: {}", self.0)
            }
        }
        impl std::error::Error for Embeds {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Embeds(io)).context("loading the profile");
        let said = error_text(&e);
        assert_eq!(said.matches(&text).count(), 1, "{said}");
        assert!(
            said.starts_with("loading the profile: cannot read x.toml"),
            "{said}"
        );
    }

    #[test]
    fn drain_and_ingest_limits_are_refused_by_name() {
        let parse = |args: &[&str]| command().try_get_matches_from(args).map(|_| ());
        for bad in ["NaN", "-1", "inf", "soon"] {
            let e = parse(&[
                "csp-harness",
                "run",
                "--profile",
                "p.toml",
                "--drain-s",
                bad,
            ])
            .unwrap_err()
            .to_string();
            assert!(e.contains("--drain-s"), "{bad}: {e}");
        }
        assert!(parse(&["csp-harness", "run", "--profile", "p", "--drain-s", "0"]).is_ok());
        let e = parse(&["csp-harness", "ingest", "--max-connections", "0"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--max-connections") && e.contains("refuse every client"),
            "{e}"
        );
        let e = parse(&["csp-harness", "ingest", "--auth-token", ""])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--auth-token") && e.contains("empty token"),
            "{e}"
        );
        assert!(parse(&["csp-harness", "ingest", "--max-connections", "1"]).is_ok());
    }
}
