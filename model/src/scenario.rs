//! The outage scenario per premises: which outage and cell it is in, when its power goes and comes
//! back, and which alerts it must produce.
//!
//! Everything here is a pure function of the profile, the run seed and the premises index, so the
//! ledger's expectations and the hub tasks agree without sharing state, and a premises' scenario does
//! not depend on which other premises exist or on task scheduling.

use crate::geo::Population;
use crate::profile::{Params, PraBase, population};
use ledger::{AlertCode, AlertId, AlertKind, Ledger, LedgerError};
use rand_pcg::Pcg32;

/// SplitMix64 finaliser: spreads (seed, index) pairs into independent-looking generator states.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random generator for one purpose (`stream`) of one hub: 16 bytes, independent of every other
/// hub's, so decisions never depend on the order in which tasks run.
pub fn hub_rng(seed: u64, hub: u32, stream: u64) -> Pcg32 {
    Pcg32::new(mix(seed ^ mix(u64::from(hub) ^ (stream << 40))), stream)
}

/// Stream of the scenario draws (outage duration).
pub const STREAM_SCENARIO: u64 = 1;
/// Stream of the hub behaviour draws (windows, backoff, dither, attach failures).
pub const STREAM_BEHAVIOUR: u64 = 2;

/// One premises' outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubScenario {
    /// Premises index.
    pub hub: u32,
    /// Cell (receive group / cellular cell) of the premises.
    pub cell: u32,
    /// Scenario time of the power cut, µs.
    pub cut_us: u64,
    /// Scenario time power returns, µs.
    pub restore_us: u64,
}

impl HubScenario {
    /// Draws premises `hub`'s outage (lays the profile's outages out first: for one premises;
    /// a whole population uses [`HubScenario::in_population`]).
    pub fn new(p: &Params, seed: u64, hub: u32) -> Self {
        Self::in_population(&population(p), seed, hub)
    }

    /// Draws premises `hub`'s outage in a laid-out population.
    pub fn in_population(pop: &Population, seed: u64, hub: u32) -> Self {
        let mut rng = hub_rng(seed, hub, STREAM_SCENARIO);
        let o = pop.outage_of(hub);
        let outage = o.duration.sample(&mut rng).max(1);
        HubScenario {
            hub,
            cell: pop.cell_of(hub),
            cut_us: o.cut_us,
            restore_us: o.cut_us + outage,
        }
    }

    /// Outage length, µs.
    pub fn outage_us(&self) -> u64 {
        self.restore_us - self.cut_us
    }

    /// Does this outage produce a POA (power off for the threshold or longer)?
    pub fn has_poa(&self, p: &Params) -> bool {
        self.outage_us() >= p.hub.poa_threshold.us()
    }

    /// The PRA's code: 8F36 after an outage of the threshold or longer, else 8F35.
    pub fn pra_code(&self, p: &Params) -> AlertCode {
        if self.has_poa(p) {
            AlertCode::Restored8F36
        } else {
            AlertCode::Restored8F35
        }
    }

    /// Scenario time (ms) the latency of `kind` is measured from.
    pub fn base_ms(&self, p: &Params, kind: AlertKind) -> u64 {
        match (kind, p.scenario.pra_base) {
            (AlertKind::Poa, _) | (AlertKind::Pra, PraBase::PowerCut) => self.cut_us / 1000,
            (AlertKind::Pra, PraBase::Restoration) => self.restore_us / 1000,
        }
    }

    /// Declares this premises' alerts in the ledger: a POA (AD1) only for an outage of the threshold
    /// or longer, a PRA for every restoration.
    pub fn expect(&self, p: &Params, ledger: &mut Ledger) -> Result<(), LedgerError> {
        if self.has_poa(p) {
            ledger.expect(
                AlertId::new(self.hub, AlertKind::Poa),
                AlertCode::Ad1,
                self.base_ms(p, AlertKind::Poa),
            )?;
        }
        ledger.expect(
            AlertId::new(self.hub, AlertKind::Pra),
            self.pra_code(p),
            self.base_ms(p, AlertKind::Pra),
        )
    }
}
