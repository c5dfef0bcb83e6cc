//! The shared vocabulary of csp-loadtest and the exactly-once alert ledger.
//!
//! Every crate of the workspace speaks of alerts in these terms: an [`AlertKind`] (POA or PRA), the
//! GBCS [`AlertCode`] it travels as, the CSP [`Region`] it crosses, and — when it never arrives — a
//! [`LossCause`]. The [`Ledger`] gives every expected alert exactly one [`Fate`]: delivered at a
//! scenario time (only ever on the endpoint's acknowledgement), or lost with a cause. It refuses a
//! second fate for the same alert and counts what the endpoint acknowledged twice.
//!
//! This crate does no I/O and knows nothing of the network model, the transport or the reports.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The two alerts a premises' power cut produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// Power Outage Alert (AD1), sent when power has been off 3 minutes or more.
    Poa,
    /// Power Restoration Alert (8F35 / 8F36), sent when power returns.
    Pra,
}

impl AlertKind {
    /// Both kinds, POA first.
    pub const ALL: [AlertKind; 2] = [AlertKind::Poa, AlertKind::Pra];

    /// Lower-case name as used in files and JSON keys (`poa`, `pra`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Poa => "poa",
            AlertKind::Pra => "pra",
        }
    }

    fn index(self) -> u64 {
        match self {
            AlertKind::Poa => 0,
            AlertKind::Pra => 1,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlertKind::Poa => "POA",
            AlertKind::Pra => "PRA",
        })
    }
}

/// The GBCS alert codes carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertCode {
    /// AD1 'Power Outage Event' (POA), from the Communications Hub.
    #[serde(rename = "AD1")]
    Ad1,
    /// 8F35 'Supply Outage Restored' (PRA, any outage).
    #[serde(rename = "8F35")]
    Restored8F35,
    /// 8F36 'Supply Outage Restored (Outage >= three minutes)' (PRA).
    #[serde(rename = "8F36")]
    Restored8F36,
}

impl AlertCode {
    /// The 16-bit value used on the wire (see `docs/protocol.md`).
    pub fn wire(self) -> u16 {
        match self {
            AlertCode::Ad1 => 0x0AD1,
            AlertCode::Restored8F35 => 0x8F35,
            AlertCode::Restored8F36 => 0x8F36,
        }
    }

    /// Parses a 16-bit wire value.
    pub fn from_wire(v: u16) -> Option<Self> {
        match v {
            0x0AD1 => Some(AlertCode::Ad1),
            0x8F35 => Some(AlertCode::Restored8F35),
            0x8F36 => Some(AlertCode::Restored8F36),
            _ => None,
        }
    }

    /// The kind of alert this code reports.
    pub fn kind(self) -> AlertKind {
        match self {
            AlertCode::Ad1 => AlertKind::Poa,
            AlertCode::Restored8F35 | AlertCode::Restored8F36 => AlertKind::Pra,
        }
    }

    /// The code as written in the GBCS tables (`AD1`, `8F35`, `8F36`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertCode::Ad1 => "AD1",
            AlertCode::Restored8F35 => "8F35",
            AlertCode::Restored8F36 => "8F36",
        }
    }
}

impl fmt::Display for AlertCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CSP regions, whose networks behave very differently in an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Region {
    /// CSP North: long-range narrow-band radio, hubs with ~10 minutes of holdover.
    North,
    /// CSP Central & South: cellular, hubs go down with the power and re-attach.
    CentralSouth,
}

impl Region {
    /// The name used in files (`north`, `central-south`).
    pub fn as_str(self) -> &'static str {
        match self {
            Region::North => "north",
            Region::CentralSouth => "central-south",
        }
    }

    /// The wire value (see `docs/protocol.md`).
    pub fn wire(self) -> u8 {
        match self {
            Region::North => 1,
            Region::CentralSouth => 2,
        }
    }

    /// Parses a wire value.
    pub fn from_wire(v: u8) -> Option<Self> {
        match v {
            1 => Some(Region::North),
            2 => Some(Region::CentralSouth),
            _ => None,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Region::North => "North",
            Region::CentralSouth => "Central&South",
        })
    }
}

/// Why an expected alert was never acknowledged by the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossCause {
    /// Every attempt on the shared radio channel collided, up to the retry limit.
    Collision,
    /// The hub's battery/super-capacitor ran out before the alert got through.
    HoldoverExpired,
    /// The hub could not re-attach to the cellular network after the power returned.
    AttachFailure,
    /// A bounded queue in the CSP/DSP path (head-end, throttle, motorway) was full.
    QueueOverflow,
    /// The harness's own bounded send queue towards the endpoint was full.
    SendQueueOverflow,
    /// The endpoint answered with a reject.
    EndpointRejected,
    /// The endpoint could not be reached (or stopped answering) before the alert's deadline.
    EndpointUnreachable,
    /// Still in flight when the run ended.
    NotDeliveredByEnd,
}

impl LossCause {
    /// Every cause, in report order.
    pub const ALL: [LossCause; 8] = [
        LossCause::Collision,
        LossCause::HoldoverExpired,
        LossCause::AttachFailure,
        LossCause::QueueOverflow,
        LossCause::SendQueueOverflow,
        LossCause::EndpointRejected,
        LossCause::EndpointUnreachable,
        LossCause::NotDeliveredByEnd,
    ];

    /// The snake_case name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            LossCause::Collision => "collision",
            LossCause::HoldoverExpired => "holdover_expired",
            LossCause::AttachFailure => "attach_failure",
            LossCause::QueueOverflow => "queue_overflow",
            LossCause::SendQueueOverflow => "send_queue_overflow",
            LossCause::EndpointRejected => "endpoint_rejected",
            LossCause::EndpointUnreachable => "endpoint_unreachable",
            LossCause::NotDeliveredByEnd => "not_delivered_by_end",
        }
    }

    fn code(self) -> u8 {
        LossCause::ALL
            .iter()
            .position(|c| *c == self)
            .map_or(0, |p| p as u8)
    }
}

impl fmt::Display for LossCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run-unique alert id: the premises (hub) index and the alert kind.
///
/// One outage per premises per run, so `hub * 2 + kind` is unique and dense (the ledger indexes by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(pub u64);

impl AlertId {
    /// The id of `kind` for premises `hub`.
    pub fn new(hub: u32, kind: AlertKind) -> Self {
        AlertId(u64::from(hub) * 2 + kind.index())
    }

    /// The premises index.
    pub fn hub(self) -> u32 {
        (self.0 / 2) as u32
    }

    /// The alert kind.
    pub fn kind(self) -> AlertKind {
        if self.0.is_multiple_of(2) {
            AlertKind::Poa
        } else {
            AlertKind::Pra
        }
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The one fate of an expected alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum Fate {
    /// Not yet decided (only seen before [`Ledger::finish`]).
    Pending,
    /// Acknowledged by the endpoint at this scenario time (ms since scenario start).
    Delivered {
        /// Scenario time of the acknowledgement, ms.
        at_ms: u64,
    },
    /// Lost, with the cause and the scenario time the loss was decided.
    Lost {
        /// Why.
        cause: LossCause,
        /// Scenario time the loss was decided, ms.
        at_ms: u64,
    },
}

/// Errors from recording a fate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The id is outside the population or was never expected.
    #[error("alert {0} was never expected in this run")]
    Unexpected(AlertId),
    /// The alert already has a fate.
    #[error("alert {id} already has a fate ({existing:?})")]
    AlreadyFated {
        /// The alert.
        id: AlertId,
        /// Its existing fate.
        existing: Fate,
    },
}

const STATE_NONE: u8 = 0;
const STATE_PENDING: u8 = 1;
const STATE_DELIVERED: u8 = 2;
const STATE_LOST: u8 = 3;

/// Compact per-alert record: 16 bytes, so a million premises cost 32 MB.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    base_ms: u32,
    at_ms: u32,
    state: u8,
    cause: u8,
    code: u16,
}

/// One expected alert and its fate, as the ledger reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The alert.
    pub id: AlertId,
    /// The code it travels as.
    pub code: AlertCode,
    /// Scenario time the latency is measured from (power cut for POA, restoration for PRA), ms.
    pub base_ms: u64,
    /// Its fate.
    pub fate: Fate,
}

impl Record {
    /// Delivery latency from the base time, if delivered.
    pub fn latency_ms(&self) -> Option<u64> {
        match self.fate {
            Fate::Delivered { at_ms } => Some(at_ms.saturating_sub(self.base_ms)),
            _ => None,
        }
    }
}

/// Counts the ledger keeps beside the fates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomalies {
    /// Acknowledgements for an alert already delivered.
    pub duplicates: u64,
    /// Acknowledged POAs that were never expected (outage under 3 minutes, or no outage).
    pub false_positives: u64,
    /// Acknowledged PRAs that were never expected.
    pub unexpected_pra: u64,
}

/// Every expected alert of a run and its one fate.
#[derive(Debug, Clone)]
pub struct Ledger {
    slots: Vec<Slot>,
    anomalies: Anomalies,
}

impl Ledger {
    /// A ledger for a population of `hubs` premises, with nothing expected yet.
    pub fn new(hubs: u32) -> Self {
        Ledger {
            slots: vec![Slot::default(); hubs as usize * 2],
            anomalies: Anomalies::default(),
        }
    }

    /// Number of premises the ledger covers.
    pub fn hubs(&self) -> u32 {
        (self.slots.len() / 2) as u32
    }

    /// Declares an alert that must end with a fate; `base_ms` is what its latency is measured from.
    pub fn expect(
        &mut self,
        id: AlertId,
        code: AlertCode,
        base_ms: u64,
    ) -> Result<(), LedgerError> {
        let slot = self
            .slots
            .get_mut(id.0 as usize)
            .ok_or(LedgerError::Unexpected(id))?;
        if slot.state != STATE_NONE {
            return Err(LedgerError::AlreadyFated {
                id,
                existing: fate_of(slot),
            });
        }
        *slot = Slot {
            base_ms: clamp_ms(base_ms),
            at_ms: 0,
            state: STATE_PENDING,
            cause: 0,
            code: code.wire(),
        };
        Ok(())
    }

    /// Is this alert expected (pending or fated)?
    pub fn is_expected(&self, id: AlertId) -> bool {
        self.slots
            .get(id.0 as usize)
            .is_some_and(|s| s.state != STATE_NONE)
    }

    /// Records the endpoint's acknowledgement of `id` at scenario time `at_ms`.
    ///
    /// An ack for an alert already delivered counts as a duplicate and is an error; an ack for an
    /// alert never expected counts as a false positive (POA) or unexpected PRA and is an error.
    pub fn deliver(&mut self, id: AlertId, at_ms: u64) -> Result<(), LedgerError> {
        let Some(slot) = self.slots.get_mut(id.0 as usize) else {
            self.count_unexpected(id);
            return Err(LedgerError::Unexpected(id));
        };
        match slot.state {
            STATE_PENDING => {
                slot.state = STATE_DELIVERED;
                slot.at_ms = clamp_ms(at_ms);
                Ok(())
            }
            STATE_NONE => {
                self.count_unexpected(id);
                Err(LedgerError::Unexpected(id))
            }
            _ => {
                let existing = fate_of(slot);
                if slot.state == STATE_DELIVERED {
                    self.anomalies.duplicates += 1;
                }
                Err(LedgerError::AlreadyFated { id, existing })
            }
        }
    }

    /// Records that `id` was lost for `cause`, decided at scenario time `at_ms`.
    pub fn lose(&mut self, id: AlertId, cause: LossCause, at_ms: u64) -> Result<(), LedgerError> {
        let slot = self
            .slots
            .get_mut(id.0 as usize)
            .ok_or(LedgerError::Unexpected(id))?;
        match slot.state {
            STATE_PENDING => {
                slot.state = STATE_LOST;
                slot.cause = cause.code();
                slot.at_ms = clamp_ms(at_ms);
                Ok(())
            }
            STATE_NONE => Err(LedgerError::Unexpected(id)),
            _ => Err(LedgerError::AlreadyFated {
                id,
                existing: fate_of(slot),
            }),
        }
    }

    /// The current fate of `id` (`None` if it was never expected).
    pub fn fate(&self, id: AlertId) -> Option<Fate> {
        self.slots
            .get(id.0 as usize)
            .filter(|s| s.state != STATE_NONE)
            .map(fate_of)
    }

    /// Ends the run at scenario time `end_ms`: every alert still pending is lost as
    /// [`LossCause::NotDeliveredByEnd`]. Returns how many were.
    pub fn finish(&mut self, end_ms: u64) -> u64 {
        let mut n = 0;
        for slot in &mut self.slots {
            if slot.state == STATE_PENDING {
                slot.state = STATE_LOST;
                slot.cause = LossCause::NotDeliveredByEnd.code();
                slot.at_ms = clamp_ms(end_ms);
                n += 1;
            }
        }
        n
    }

    /// Number of alerts still without a fate.
    pub fn pending(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.state == STATE_PENDING)
            .count() as u64
    }

    /// Every expected alert with its fate, in id order.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            if s.state == STATE_NONE {
                return None;
            }
            Some(Record {
                id: AlertId(i as u64),
                code: AlertCode::from_wire(s.code)?,
                base_ms: u64::from(s.base_ms),
                fate: fate_of(s),
            })
        })
    }

    /// PRAs acknowledged before the POA of the same premises (or whose POA was never delivered
    /// although expected and delivered later than the PRA).
    pub fn out_of_order(&self) -> u64 {
        self.slots
            .chunks_exact(2)
            .filter(|pair| {
                let (poa, pra) = (&pair[0], &pair[1]);
                poa.state == STATE_DELIVERED
                    && pra.state == STATE_DELIVERED
                    && pra.at_ms < poa.at_ms
            })
            .count() as u64
    }

    /// Duplicate and unexpected acknowledgements seen so far.
    pub fn anomalies(&self) -> Anomalies {
        self.anomalies
    }

    /// Alerts of `kind` expected in this run.
    pub fn expected(&self, kind: AlertKind) -> u64 {
        self.kind_slots(kind)
            .filter(|s| s.state != STATE_NONE)
            .count() as u64
    }

    /// Alerts of `kind` delivered so far.
    pub fn delivered(&self, kind: AlertKind) -> u64 {
        self.kind_slots(kind)
            .filter(|s| s.state == STATE_DELIVERED)
            .count() as u64
    }

    /// Lost alerts of `kind`, per cause (causes with no loss are absent).
    pub fn lost_by_cause(&self, kind: AlertKind) -> std::collections::BTreeMap<LossCause, u64> {
        let mut m = std::collections::BTreeMap::new();
        for s in self.kind_slots(kind).filter(|s| s.state == STATE_LOST) {
            if let Fate::Lost { cause, .. } = fate_of(s) {
                *m.entry(cause).or_insert(0) += 1;
            }
        }
        m
    }

    /// Latencies (ms from the alert's base time) of the delivered alerts of `kind`, ascending.
    pub fn delivered_latencies(&self, kind: AlertKind) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .kind_slots(kind)
            .filter(|s| s.state == STATE_DELIVERED)
            .map(|s| u64::from(s.at_ms.saturating_sub(s.base_ms)))
            .collect();
        v.sort_unstable();
        v
    }

    /// "Time to X% delivered" for `kind`: the first latency at which delivered / expected reaches
    /// `pct` percent; `None` when it never does (or nothing is expected).
    pub fn time_to_pct(&self, kind: AlertKind, pct: f64) -> Option<u64> {
        time_to_pct(&self.delivered_latencies(kind), self.expected(kind), pct)
    }

    fn kind_slots(&self, kind: AlertKind) -> impl Iterator<Item = &Slot> + '_ {
        let off = kind.index() as usize;
        self.slots.iter().skip(off).step_by(2)
    }

    fn count_unexpected(&mut self, id: AlertId) {
        match id.kind() {
            AlertKind::Poa => self.anomalies.false_positives += 1,
            AlertKind::Pra => self.anomalies.unexpected_pra += 1,
        }
    }
}

/// "Time to X% delivered" from ascending delivered latencies and the expected count: the latency of
/// the k-th delivery, k = ceil(pct/100 × expected), or `None` if fewer than k were delivered.
///
/// `pct` is taken to a hundredth of a percent so that 95% of 30,000 is exactly 28,500.
pub fn time_to_pct(sorted_latencies: &[u64], expected: u64, pct: f64) -> Option<u64> {
    if expected == 0 || !(pct > 0.0 && pct <= 100.0) {
        return None;
    }
    let bp = (pct * 100.0).round() as u64;
    let k = (bp * expected).div_ceil(10_000).max(1);
    sorted_latencies.get(k as usize - 1).copied()
}

fn clamp_ms(ms: u64) -> u32 {
    u32::try_from(ms).unwrap_or(u32::MAX)
}

fn fate_of(slot: &Slot) -> Fate {
    match slot.state {
        STATE_DELIVERED => Fate::Delivered {
            at_ms: u64::from(slot.at_ms),
        },
        STATE_LOST => Fate::Lost {
            cause: LossCause::ALL
                .get(slot.cause as usize)
                .copied()
                .unwrap_or(LossCause::NotDeliveredByEnd),
            at_ms: u64::from(slot.at_ms),
        },
        _ => Fate::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_round_trip() {
        let id = AlertId::new(7, AlertKind::Pra);
        assert_eq!(id.0, 15);
        assert_eq!(id.hub(), 7);
        assert_eq!(id.kind(), AlertKind::Pra);
    }

    #[test]
    fn one_fate_per_alert() {
        let mut l = Ledger::new(2);
        let poa = AlertId::new(0, AlertKind::Poa);
        l.expect(poa, AlertCode::Ad1, 1000).unwrap();
        assert_eq!(l.fate(poa), Some(Fate::Pending));
        l.deliver(poa, 5000).unwrap();
        assert!(matches!(
            l.lose(poa, LossCause::Collision, 6000),
            Err(LedgerError::AlreadyFated { .. })
        ));
        assert!(l.deliver(poa, 7000).is_err());
        assert_eq!(l.anomalies().duplicates, 1);
        assert_eq!(l.fate(poa), Some(Fate::Delivered { at_ms: 5000 }));
        let rec: Vec<_> = l.records().collect();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].latency_ms(), Some(4000));
    }

    #[test]
    fn unexpected_poa_is_a_false_positive_and_finish_fates_the_rest() {
        let mut l = Ledger::new(3);
        assert!(l.deliver(AlertId::new(1, AlertKind::Poa), 10).is_err());
        assert_eq!(l.anomalies().false_positives, 1);
        l.expect(AlertId::new(2, AlertKind::Pra), AlertCode::Restored8F36, 0)
            .unwrap();
        assert_eq!(l.finish(99), 1);
        assert_eq!(
            l.fate(AlertId::new(2, AlertKind::Pra)),
            Some(Fate::Lost {
                cause: LossCause::NotDeliveredByEnd,
                at_ms: 99
            })
        );
        assert_eq!(l.pending(), 0);
    }

    #[test]
    fn out_of_order_counts_pra_before_poa() {
        let mut l = Ledger::new(1);
        l.expect(AlertId::new(0, AlertKind::Poa), AlertCode::Ad1, 0)
            .unwrap();
        l.expect(AlertId::new(0, AlertKind::Pra), AlertCode::Restored8F36, 0)
            .unwrap();
        l.deliver(AlertId::new(0, AlertKind::Pra), 10).unwrap();
        l.deliver(AlertId::new(0, AlertKind::Poa), 20).unwrap();
        assert_eq!(l.out_of_order(), 1);
    }

    #[test]
    fn time_to_pct_counts_against_expected_not_delivered() {
        // 10 expected, 9 delivered at 1..=9 s: 50% at the 5th, 90% at the 9th, 95% never.
        let lat: Vec<u64> = (1..=9).map(|s| s * 1000).collect();
        assert_eq!(time_to_pct(&lat, 10, 50.0), Some(5000));
        assert_eq!(time_to_pct(&lat, 10, 90.0), Some(9000));
        assert_eq!(time_to_pct(&lat, 10, 95.0), None);
        assert_eq!(time_to_pct(&lat, 0, 50.0), None);
        let many = vec![7u64; 28_500];
        assert_eq!(time_to_pct(&many, 30_000, 95.0), Some(7));
    }

    #[test]
    fn codes_round_trip_on_the_wire() {
        for c in [
            AlertCode::Ad1,
            AlertCode::Restored8F35,
            AlertCode::Restored8F36,
        ] {
            assert_eq!(AlertCode::from_wire(c.wire()), Some(c));
        }
        assert_eq!(AlertCode::from_wire(0x1234), None);
    }
}
