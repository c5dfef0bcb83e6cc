//! Live metrics: what a running `run` or `ingest` shows a Prometheus server while it works.
//!
//! - [`histogram`]: lock-free fixed-bucket histograms a hot path records into
//!   ([`AtomicHistogram`]) and their snapshots ([`Histogram`]).
//! - [`exposition`]: metric definitions ([`MetricDef`]), the [`Source`]s that write their current
//!   values at scrape time, and the OpenMetrics / Prometheus text they are rendered to
//!   (by `prometheus-client`).
//! - [`serve`] (feature `http`): the HTTP endpoint that answers `GET /metrics`.
//!
//! This crate never decides what is measured: the program keeps its own counters and tells its
//! sources how to read them. Recording must stay as cheap as a relaxed atomic add — no lock, no
//! allocation — so that observing a run never changes it.

pub mod exposition;
pub mod histogram;
#[cfg(feature = "http")]
pub mod serve;

pub use exposition::{Exposition, Format, MetricDef, MetricKind, MetricUnit, Registry, Source};
pub use histogram::{AtomicHistogram, DURATION_BUCKETS_NS, Histogram};
#[cfg(feature = "http")]
pub use serve::{MetricsServer, serve, serve_on};
