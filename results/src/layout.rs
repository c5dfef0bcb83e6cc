//! The results folder's layout: every file a run leaves behind, named in one place.
//!
//! | file | written by | what |
//! |---|---|---|
//! | `summary.json` | [`crate::write_data`] | [`crate::Summary`]: counts, loss by cause, time to X%, percentiles, metadata, health |
//! | `alerts.csv` | [`crate::write_data`] | the harness's ledger, one line per expected alert (exact latencies) |
//! | `poa.hlog`, `pra.hlog` | [`crate::write_data`] | HDR interval logs (V2 + deflate) of delivered latencies, ms |
//! | `curves.csv` | [`crate::write_data`] | delivered / expected per second since the base, POA and PRA |
//! | `run.json` | the harness | [`crate::RunRecord`]: times, build, command line, profile hash, machine, cost |
//! | `host.json` | the harness | [`crate::HostRecord`]: the machine |
//! | `endpoint-ledger.csv`, `endpoint-cert.pem` | the embedded reference endpoint | what it stored, and its pinned certificate |
//! | `summary.md`, `report.html`, graphs (`.png`, `.svg`) | `reports` | tables and graphs drawn from the files above |
//!
//! `summary.json` and the two `.hlog` files are enough to redraw every graph and table; with
//! `alerts.csv` beside them the redraw is exact to the millisecond.

use ledger::AlertKind;
use std::path::{Path, PathBuf};

/// The run's summary.
pub const SUMMARY_JSON: &str = "summary.json";
/// The harness's ledger.
pub const ALERTS_CSV: &str = "alerts.csv";
/// The delivery curves sampled every second.
pub const CURVES_CSV: &str = "curves.csv";
/// The machine the run ran on.
pub const HOST_JSON: &str = "host.json";
/// Where the result comes from: times, harness build, command line, profile hash, machine.
pub const RUN_JSON: &str = "run.json";
/// The self-contained HTML report.
pub const REPORT_HTML: &str = "report.html";
/// The Markdown tables.
pub const SUMMARY_MD: &str = "summary.md";
/// The embedded reference endpoint's own ledger.
pub const ENDPOINT_LEDGER_CSV: &str = "endpoint-ledger.csv";
/// The embedded reference endpoint's self-signed certificate, pinned by the run.
pub const ENDPOINT_CERT_PEM: &str = "endpoint-cert.pem";

/// Every file a run writes under a fixed name into its folder (the graphs, `*.png` and `*.svg`,
/// are named by the `reports` crate's registry). `--force` removes these before writing again, so
/// no file of an earlier run is left beside a new one.
pub fn run_files() -> Vec<String> {
    let mut v: Vec<String> = [
        SUMMARY_JSON,
        ALERTS_CSV,
        CURVES_CSV,
        HOST_JSON,
        RUN_JSON,
        REPORT_HTML,
        SUMMARY_MD,
        ENDPOINT_LEDGER_CSV,
        ENDPOINT_CERT_PEM,
    ]
    .map(String::from)
    .to_vec();
    v.extend(AlertKind::ALL.map(hlog_name));
    v
}

/// The `.hlog` file of a kind (`poa.hlog`, `pra.hlog`).
pub fn hlog_name(kind: AlertKind) -> String {
    format!("{}.hlog", kind.as_str())
}

/// A results folder: the paths of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsDir(PathBuf);

impl ResultsDir {
    /// The folder at `dir` (nothing is created or read).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ResultsDir(dir.into())
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Any file of the folder by name.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `summary.json`.
    pub fn summary_json(&self) -> PathBuf {
        self.file(SUMMARY_JSON)
    }

    /// `alerts.csv`.
    pub fn alerts_csv(&self) -> PathBuf {
        self.file(ALERTS_CSV)
    }

    /// `curves.csv`.
    pub fn curves_csv(&self) -> PathBuf {
        self.file(CURVES_CSV)
    }

    /// `host.json`.
    pub fn host_json(&self) -> PathBuf {
        self.file(HOST_JSON)
    }

    /// `run.json`.
    pub fn run_json(&self) -> PathBuf {
        self.file(RUN_JSON)
    }

    /// `poa.hlog` or `pra.hlog`.
    pub fn hlog(&self, kind: AlertKind) -> PathBuf {
        self.file(&hlog_name(kind))
    }

    /// `endpoint-ledger.csv`.
    pub fn endpoint_ledger_csv(&self) -> PathBuf {
        self.file(ENDPOINT_LEDGER_CSV)
    }

    /// `endpoint-cert.pem`.
    pub fn endpoint_cert_pem(&self) -> PathBuf {
        self.file(ENDPOINT_CERT_PEM)
    }
}
