//! csp-harness: the command line and everything that touches the network.
//!
//! - [`cli`]: argument parsing, dispatch, exit codes.
//! - [`run`]: orchestration of `run` and `simulate`.
//! - [`compare`]: `compare` and `report`, several runs drawn together.
//! - [`wire`]: the csp-alert wire codec (docs/protocol.md).
//! - [`tls`]: certificates and rustls configurations.
//! - [`ingest`]: the reference alert-ingest endpoint.
//! - [`egress`]: the QUIC client that carries alerts from the model to the endpoint.
//! - [`endpoint_url`]: `quic://HOST:PORT` parsing.
//! - [`check`]: thresholds, baselines and JUnit verdicts (`check`, and the end of every run).
//! - [`host`]: the machine record and the harness's own CPU/memory while it runs.
//! - [`progress`]: the live display (a bar on a terminal, lines otherwise).
//! - [`provenance`]: `run.json`, where a result comes from.

pub mod check;
pub mod cli;
pub mod compare;
pub mod egress;
pub mod endpoint_url;
pub mod host;
pub mod ingest;
pub mod progress;
pub mod provenance;
pub mod run;
pub mod tls;
pub mod wire;

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
