//! The seam between the modelled network and the real endpoint.
//!
//! When an alert leaves the modelled DSP it is handed to a [`Sink`] at its intended scenario time.
//! From then on the sink owns the alert's fate: it records `deliver` in the ledger only on the
//! endpoint's acknowledgement, or `lose` with a cause. `run` plugs in the QUIC/HTTP egress;
//! `simulate` plugs in [`InstantAckSink`], an in-process endpoint that acknowledges at once.

use crate::clock::ScenarioClock;
use ledger::{AlertCode, AlertId, Ledger, Region};
use std::sync::{Arc, Mutex};

/// An alert that has crossed the modelled network and must now reach the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound {
    /// Run-unique alert id.
    pub id: AlertId,
    /// GBCS alert code.
    pub code: AlertCode,
    /// The hub's device id (EUI-64 style).
    pub device_id: u64,
    /// CSP region the alert came through.
    pub region: Region,
    /// Scenario time of the event the alert reports (power cut or restoration), ms.
    pub event_ms: u64,
    /// Per-hub sequence number of this alert (1 for the first alert a hub sends in the run).
    pub seq: u32,
    /// Scenario time at which the alert left the modelled DSP (its intended send time), ms.
    pub exit_ms: u64,
}

/// Where alerts go after the modelled network. Must not block: queue and return.
pub trait Sink: Send + Sync + 'static {
    /// Takes ownership of the alert's fate.
    fn submit(&self, alert: Outbound);
}

/// The in-process endpoint used by `simulate`: acknowledges every alert the moment it arrives.
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
        if let Ok(mut l) = self.ledger.lock() {
            // A second submit of the same alert is a model bug; the ledger counts it as a duplicate.
            let _ = l.deliver(alert.id, now);
        }
    }
}
