//! What the endpoint shows a metrics exporter: its counters, its rejections by reason and how long
//! its store calls take, read on every scrape through an [`IngestProbe`].
//!
//! Kept apart from the serving code on purpose: the only things the data path does for it are a
//! per-reason count beside the rejection count ([`Counters::reject`]) and one clock read on each
//! side of a store call ([`Ctx::store_timed`], [`Ctx::store_answered`]) — an atomic add each, no lock, no allocation.

use crate::store::{StoreCounters, StoreError, Stored};
use crate::{Counters, Ctx, IngestServer, IngestStats, bump};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use wire::{AlertHeader, RejectReason, RunId};

/// Every reason the endpoint rejects an alert for, with its metric label.
pub(crate) const REJECT_REASONS: [(RejectReason, &str); 6] = [
    (RejectReason::UnknownCode, "unknown_code"),
    (RejectReason::UnknownRegion, "unknown_region"),
    (RejectReason::PayloadTooLarge, "payload_too_large"),
    (RejectReason::StorageFailure, "storage_failure"),
    (RejectReason::Policy, "policy"),
    (RejectReason::Other, "other"),
];

impl Counters {
    /// Counts one rejected alert, in the total and under its reason.
    pub(crate) fn reject(&self, reason: RejectReason) {
        bump(&self.rejected, 1);
        let i = REJECT_REASONS
            .iter()
            .position(|(r, _)| *r == reason)
            .unwrap_or(REJECT_REASONS.len() - 1);
        if let Some(c) = self.rejected_by.get(i) {
            bump(c, 1);
        }
    }
}

impl Ctx {
    /// [`crate::store::Store::store`], timed into the store-latency histogram (the wait for the
    /// group commit included: that is the latency a client sees).
    pub(crate) async fn store_timed(
        &self,
        run: RunId,
        batch: Vec<AlertHeader>,
    ) -> Result<Stored, StoreError> {
        let start = Instant::now();
        let stored = self.store.store(run, batch).await;
        self.store_answered(start);
        stored
    }

    /// Records a store call handed in at `start` (with [`crate::store::Store::submit`]) and
    /// answered now into the store-latency histogram.
    pub(crate) fn store_answered(&self, start: Instant) {
        self.counters.store_latency.record(start.elapsed());
    }
}

/// A live, read-only view of an endpoint's counters, for a metrics exporter. Cheap to clone, and
/// still readable after [`IngestServer::shutdown`] (it then shows the final counts).
#[derive(Debug, Clone)]
pub struct IngestProbe(Arc<Counters>, Arc<StoreCounters>);

impl IngestProbe {
    /// The counters now (the same as [`IngestServer::stats`]).
    pub fn stats(&self) -> IngestStats {
        self.0.snapshot(&self.1)
    }

    /// Alerts rejected, per reason (every reason, zero or not).
    pub fn rejected_by(&self) -> Vec<(&'static str, u64)> {
        REJECT_REASONS
            .iter()
            .zip(self.0.rejected_by.iter())
            .map(|((_, name), n)| (*name, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// How long store calls took (one per csp-alert batch or HTTP request), seconds.
    pub fn store_latency(&self) -> telemetry::Histogram {
        self.0.store_latency.snapshot()
    }
}

impl IngestServer {
    /// A live view of this endpoint's counters (see [`IngestProbe`]).
    pub fn probe(&self) -> IngestProbe {
        IngestProbe(self.ctx.counters.clone(), self.ctx.store.counters_shared())
    }
}
