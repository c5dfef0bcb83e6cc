//! csp-harness: the command line and the orchestration of runs. The endpoint path lives in its own
//! crates: `wire` (the csp-alert codec), `tls`, `egress` (the delivery engine and its transports)
//! and `ingest` (the reference endpoint).
//!
//! - [`cli`]: argument parsing, dispatch, exit codes.
//! - [`run`]: orchestration of `run` and `simulate`.
//! - [`compare`]: `compare` and `report`, several runs drawn together.
//! - [`ingest_cmd`]: `ingest`, the reference endpoint (crate `ingest`) on the command line.
//! - [`endpoint_url`]: `quic://HOST:PORT` parsing.
//! - [`check`]: thresholds, baselines and JUnit verdicts (`check`, and the end of every run).
//! - [`host`]: the machine record and the harness's own CPU/memory while it runs.
//! - [`progress`]: the live display (a bar on a terminal, lines otherwise).

pub mod check;
pub mod cli;
pub mod compare;
pub mod endpoint_url;
pub mod host;
pub mod ingest_cmd;
pub mod progress;
pub mod run;

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
