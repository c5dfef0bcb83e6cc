//! The seam between the modelled network and the real endpoint.
//!
//! When an alert leaves the modelled DSP it is handed to a [`Sink`] at its intended scenario time.
//! From then on the sink owns the alert's fate: it records `deliver` in the ledger only on the
//! endpoint's acknowledgement, or `lose` with a cause. `run` plugs in the QUIC egress; the
//! in-process [`InstantAckSink`] acknowledges at once (a reference for how fast the driver alone is).

use crate::clock::ScenarioClock;
use csp_model::Outbound;
use ledger::Ledger;
use std::sync::{Arc, Mutex, PoisonError};

/// Where alerts go after the modelled network. Called from the driver's own thread, at each
/// alert's intended time: must not block (queue and return).
pub trait Sink: Send + Sync + 'static {
    /// Takes ownership of the alert's fate.
    fn submit(&self, alert: Outbound);
}

/// An in-process endpoint that acknowledges every alert the moment it arrives.
#[derive(Debug, Clone)]
pub struct InstantAckSink {
    ledger: Arc<Mutex<Ledger>>,
    clock: ScenarioClock,
}

impl InstantAckSink {
    /// A sink that records deliveries in `ledger` at `clock`'s scenario time.
    pub fn new(ledger: Arc<Mutex<Ledger>>, clock: ScenarioClock) -> Self {
        InstantAckSink { ledger, clock }
    }
}

impl Sink for InstantAckSink {
    fn submit(&self, alert: Outbound) {
        let now = self.clock.now_ms().max(alert.exit_ms);
        // The ledger holds plain counters: a panic elsewhere while it was locked cannot have left
        // it half-written, so its data is used as it is.
        let mut l = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        // A second submit of the same alert would be a driver bug; the ledger counts it as a
        // duplicate, which every report shows.
        let _ = l.deliver(alert.id, now);
    }
}
