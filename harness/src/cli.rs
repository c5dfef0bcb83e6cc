//! The `csp-harness` command line: argument parsing and dispatch to the subcommands.
//!
//! Exit codes are part of the interface: 0 pass, 1 thresholds breached, 2 usage, input or endpoint
//! error. Every error reaching `main` is printed once, with its chain of causes, and maps to 2.

use crate::endpoint_url::EndpointUrl;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Load-test harness for GB smart-meter power outage and restoration alerts.
#[derive(Debug, Parser)]
#[command(name = "csp-harness", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// Redraw graphs and tables from saved results directories, without running again.
    Report(ReportArgs),
    /// Check a results directory against thresholds and/or a baseline (exit 0 pass, 1 breached, 2 error).
    Check(crate::check::CheckArgs),
    /// Serve the reference alert-ingest endpoint (csp-alert over QUIC; HTTP/1.1, /2, /3 with --http-listen).
    Ingest(crate::ingest_cmd::IngestArgs),
    /// Inspect load profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
}

/// `csp-harness profile ...`
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Print the resolved profile (includes and change overlays applied) as TOML.
    Show {
        /// The profile file.
        file: PathBuf,
    },
}

/// Options shared by everything that runs a profile.
#[derive(Debug, Clone, Args)]
pub struct CommonRunArgs {
    /// Load profile (TOML), e.g. profiles/north/current.toml.
    #[arg(long, value_name = "FILE")]
    pub profile: PathBuf,
    /// Technical changes to enable on top of the profile's own, e.g. `--changes 1,3` (see
    /// profiles/changes.toml): any combination of the eight can be run.
    #[arg(long, value_delimiter = ',', value_name = "N,..")]
    pub changes: Vec<String>,
    /// Seed for every random choice of the model (same seed, same scenario).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Results directory [default: out/<profile name>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only print the final summary line, no progress.
    #[arg(long, short)]
    pub quiet: bool,
    /// Thresholds to check at the end (default: the profile's own `[thresholds]`, if any).
    /// Exit 1 when one is breached.
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    /// Write the verdict as JUnit XML (one test case per threshold).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
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
    #[arg(long, value_name = "URL")]
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
    #[arg(long, value_name = "PEM", requires = "endpoint")]
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
    /// `Authorization: Bearer TOKEN` (HTTP).
    #[arg(long, value_name = "TOKEN", requires = "endpoint")]
    pub token: Option<String>,
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
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub drain_s: f64,
    /// Harness lag (scenario ms behind the intended send time, 99th percentile) beyond which the
    /// run is flagged as lagged: its curves are distorted by the harness, not the network.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub max_lag_ms: u64,
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
            server_name: None,
            time_scale,
            connections: None,
            streams: None,
            in_flight: None,
            drain_s: 300.0,
            max_lag_ms: 5000,
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
    /// A profile to run (repeat for several). Without any: the seed's six, both regions × three options.
    #[arg(long, value_name = "FILE")]
    pub profile: Vec<PathBuf>,
    /// Where the seed's six profiles are looked up when no --profile is given.
    #[arg(long, value_name = "DIR", default_value = "profiles")]
    pub profiles_dir: PathBuf,
    /// Use `simulate` (virtual time, instant-ack endpoint) instead of `run`.
    #[arg(long)]
    pub simulate: bool,
    /// Seed for every run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time scale of `run` (ignored with --simulate).
    #[arg(long, default_value_t = 60.0, value_name = "N", value_parser = parse_time_scale)]
    pub time_scale: f64,
    /// Output directory: one results directory per profile plus the overlaid graphs and tables.
    #[arg(long, value_name = "DIR", default_value = "out/compare")]
    pub out: PathBuf,
    /// Write the verdict of the profiles' own `[thresholds]` as JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `csp-harness report`
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Results directories written by run, simulate or compare.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the graphs and tables go.
    #[arg(long, value_name = "DIR", default_value = "out/report")]
    pub out: PathBuf,
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

/// Writes to stdout, ignoring a closed pipe (`csp-harness ... | head` must not panic).
pub fn say(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Parses the arguments and runs the command; returns the process exit code.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => crate::run::run(args),
        Command::Simulate(args) => crate::run::simulate(args),
        Command::Compare(args) => crate::compare::compare(args),
        Command::Report(args) => crate::compare::report(args),
        Command::Check(args) => crate::check::check(args),
        Command::Ingest(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(crate::ingest_cmd::run_ingest(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Profile(ProfileCommand::Show { file }) => {
            let p = virtual_hubs::Profile::load(&file)?;
            print!("{}", p.to_resolved_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
