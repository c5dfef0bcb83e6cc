//! Tables and graphs of csp-loadtest runs: `summary.md`, the delivery-curve and loss graphs
//! (PNG and SVG), `report.html`, the comparison of several runs, and the DP096 seed table they
//! are set against.
//!
//! The flow is one way. The data come from the `results` crate (a run's [`results::Summary`] and
//! latencies, as [`results::LoadedRun`]). [`graphs`] turns one region's runs into [`figure`]
//! descriptions — what to draw: panels, curves, marks, requirement lines, legend — and
//! [`render`] draws them with plotters following a pixel [`layout`]. [`tables`] writes the same
//! figures as Markdown, and [`html`] everything as one self-contained `report.html`.
//! [`write_run_reports`] and [`write_comparison`] put it all in a folder; [`trend`] draws many
//! nights of one scenario over time and writes them for github-action-benchmark.
//!
//! Everything drawn or tabulated is a share of the *expected* alerts: lost alerts stay visible as
//! curves that flatten below 100% and as loss bars by cause. Nothing is normalised to what arrived.
//! Times to X% are the summary's own figures, never recomputed for a picture.
//!
//! This crate never reads system fonts (it embeds DejaVu Sans), never reads a clock for its output
//! (the same results give byte-identical files) and knows nothing of the network model or the CLI.

pub mod calibration;
mod compare;
mod error;
pub mod figure;
mod fonts;
pub mod format;
pub mod graphs;
pub mod html;
pub mod layout;
pub mod outages;
pub mod render;
pub mod requirements;
pub mod runs;
pub mod sensitivity;
mod style;
pub mod sweep;
pub mod tables;
pub mod trend;

pub use compare::{write_comparison, write_run, write_run_reports};
pub use error::ReportError;
pub use html::write_html;
pub use tables::terminal_table;

/// Kept so code written against the old single `plot` module (the model crate's calibration
/// examples) still finds `plot::mmss`; new code uses [`format`].
pub mod plot {
    pub use crate::format::mmss;
}
