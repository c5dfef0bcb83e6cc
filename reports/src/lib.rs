//! Summaries, delivery curves, HDR histograms, tables and PNG graphs from an alert ledger.
//!
//! The flow is one way: a finished [`ledger::Ledger`] and its [`RunMeta`] become a [`Summary`]
//! ([`summarize`]); [`write_run`] writes a results folder (JSON, CSV, HDR interval logs, Markdown,
//! PNG); [`load_run`] reads a folder back into a [`LoadedRun`] without the ledger; [`merge`] joins
//! shards exactly; [`write_comparison`] draws several runs (e.g. Current / Option A / Option B) on
//! shared graphs and tables.
//!
//! Everything drawn or tabulated is a share of the *expected* alerts: lost alerts stay visible as
//! curves that flatten below 100% and as loss bars by cause. Nothing is normalised to what arrived.
//!
//! This crate never reads system fonts (it embeds DejaVu Sans), never reads a clock for its output
//! (the same ledger gives byte-identical files) and knows nothing of the network model or the CLI.

#![warn(missing_docs)]

pub mod calibration;
pub mod compare;
pub mod curve;
mod error;
mod fonts;
pub mod plot;
pub mod requirements;
pub mod results;
pub mod summary;
pub mod tables;

pub use compare::write_comparison;
pub use curve::DeliveryCurve;
pub use error::ReportError;
pub use results::{LoadedRun, load_run, merge, write_run};
pub use summary::{KindSummary, LatencyStats, RunMeta, Summary, summarize};
pub use tables::terminal_table;
