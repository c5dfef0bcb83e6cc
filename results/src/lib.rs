//! The results record of csp-loadtest: what a run leaves behind, typed.
//!
//! One crate owns the schema of `summary.json` ([`Summary`], with the run's [`RunMeta`] and the
//! harness's [`Health`]), the layout of a results folder ([`layout`]), writing it from a finished
//! ledger ([`write_data`]), reading it back ([`load_run`]), combining runs ([`merge`]) and merging
//! the shards of a split run back into it, exactly ([`merge_shards`]). The
//! harness writes through it, `verdict` and `reports` read through it, and the end-to-end tests
//! deserialise through it: a renamed or missing key is a loud parse error everywhere at once,
//! never a lookup that quietly finds nothing.
//!
//! "Time to X% delivered" has one definition and one computation, [`DeliveryCurve::time_to_pct`]:
//! [`summarize`] applies it to the exact latencies of the ledger, and every output (tables,
//! graph marks, console, thresholds) reads the figure the summary holds.
//!
//! Several seeds of one scenario (`--seeds`) keep every seed's figures and their median and
//! min–max in `summary.json`'s `seeds` section ([`SeedSet`]); the seeds' curves travel in memory
//! with the first seed's run ([`LoadedRun::seed_runs`]) to draw the bands.
//!
//! A storm's outages each get their own figures ([`OutageSummary`], with *time to first alert*),
//! and alerts folded into summary alerts (a hypothetical option) are never delivered: they end
//! as `covered_by_summary`, and [`CoveredFigures`] says how far the endpoint knew of them.
//!
//! This crate never draws, never reads a clock and knows nothing of the network model or the CLI:
//! the same ledger and metadata give byte-identical files.

mod curve;
mod error;
mod folder;
pub mod layout;
mod provenance;
mod record;
mod run;
pub mod seeds;
mod shards;
mod storm;

pub use curve::{DeliveryCurve, Precision};
pub use error::ResultsError;
pub use folder::{HLOG_INTERVAL_S, read_hlog, write_curves_csv, write_data, write_json};
pub use provenance::{
    ChangeRecord, HarnessBuild, ProfileRecord, RUN_SCHEMA_VERSION, Resources, RunRecord,
};
pub use record::{
    Alerts, ENDPOINT_STARVED_SHARE, EgressHealth, EndpointPathLoss, Health, HealthRecord,
    HostRecord, KindSummary, LEVELS, LatencyStats, MAX_LATENCY_MS, Mode, RealLag, RunMeta,
    SCHEMA_VERSION, Summary, histogram_of, new_histogram, pct_key, summarize, summarize_storm,
};
pub use run::{Latencies, LoadedRun, load_run, merge};
pub use seeds::{KindSpread, SeedFigures, SeedSet, Spread, Worse};
pub use shards::{MergedRun, ShardRun, merge_shards};
pub use storm::{CoveredFigures, OutageMeta, OutageSummary};
