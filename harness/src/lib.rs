//! csp-harness: the command line and the orchestration of runs. The endpoint path lives in its own
//! crates: `wire` (the csp-alert codec), `tls`, `egress` (the delivery engine and its transports)
//! and `ingest` (the reference endpoint).
//!
//! - [`cli`]: argument parsing, dispatch, completions and man pages.
//! - [`exit`]: the exit codes.
//! - [`interrupt`]: Ctrl-C and SIGTERM, one meaning for every command.
//! - [`outdir`]: where results go, never overwriting an earlier run.
//! - [`run`]: orchestration of `run` and `simulate`.
//! - [`compare`]: `compare` and `report`, several runs drawn together.
//! - [`sweep`]: `sweep`, one profile key varied across values.
//! - [`sensitivity`]: `sensitivity`, each calibrated parameter perturbed (a tornado per figure).
//! - [`batch`]: many independent simulations on the machine's cores, in a fixed order.
//! - [`trend`]: many nights over time, and github-action-benchmark's JSON.
//! - [`merge`]: the shards of a split run (Kubernetes) combined into the run.
//! - [`ingest_cmd`]: `ingest`, the reference endpoint (crate `ingest`) on the command line.
//! - [`endpoint_url`]: `quic://HOST:PORT` parsing.
//! - [`check`]: thresholds, baselines and JUnit verdicts (`check`, and the end of every run).
//! - [`host`]: the machine record and the harness's own CPU/memory while it runs.
//! - [`progress`]: the live display (a bar on a terminal, lines otherwise).
//! - [`provenance`]: `run.json`, where a result comes from.
//! - [`metrics`]: `--metrics-listen`, live Prometheus/OpenMetrics metrics of `run` and `ingest`.
//! - [`profiles`]: profiles by path or by name, from disk or built into the binary.
//! - [`token`]: tokens read from files, never from argv.

pub mod batch;
pub mod check;
pub mod cli;
pub mod compare;
pub mod endpoint_url;
pub mod exit;
pub mod host;
pub mod ingest_cmd;
pub mod interrupt;
pub mod merge;
pub mod metrics;
pub mod outdir;
pub mod profiles;
pub mod progress;
pub mod provenance;
pub mod run;
pub mod sensitivity;
pub mod sweep;
pub mod token;
pub mod trend;

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings), as text or JSON lines. Colour
/// only when stderr is a terminal and `NO_COLOR` is not set: a log file or a pipe never gets
/// escape codes.
pub fn init_tracing(format: cli::LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        cli::LogFormat::Text => builder.try_init(),
        cli::LogFormat::Json => builder.json().try_init(),
    };
}
