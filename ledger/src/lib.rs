//! The shared vocabulary of csp-loadtest and the exactly-once alert ledger.
//!
//! Every crate of the workspace speaks of alerts in these terms: an [`AlertKind`] (POA or PRA) and
//! values kept per kind ([`PerKind`]), the GBCS [`AlertCode`] it travels as, the CSP [`Region`] it
//! crosses (a label from the profile), and — when it never arrives — a [`LossCause`]. The [`Ledger`]
//! gives every expected alert exactly one [`Fate`]: delivered at a scenario time (only ever on the
//! endpoint's acknowledgement), or lost with a cause. It refuses a second fate for the same alert and
//! counts what the endpoint acknowledged twice.
//!
//! This crate does no I/O and knows nothing of the network model, the transport or the reports.

pub mod duration;
mod region;
mod shard;
pub mod text_pos;
mod vocab;

pub use region::{Region, RegionError};
pub use shard::Shard;
pub use vocab::{AlertCode, AlertId, AlertKind, LossCause, PerKind};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// Where an expected alert stands (its time is in the slot beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Delivered,
    Lost(LossCause),
}

/// Compact per-alert record (12 bytes: a million premises cost 24 MB). `entry` is `None` for an
/// alert that was never expected.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    base_ms: u32,
    at_ms: u32,
    entry: Option<(AlertCode, Status)>,
}

impl Status {
    fn fate(self, at_ms: u32) -> Fate {
        let at_ms = u64::from(at_ms);
        match self {
            Status::Pending => Fate::Pending,
            Status::Delivered => Fate::Delivered { at_ms },
            Status::Lost(cause) => Fate::Lost { cause, at_ms },
        }
    }
}

impl Slot {
    fn fate(&self) -> Option<Fate> {
        self.entry.map(|(_, status)| status.fate(self.at_ms))
    }

    fn status(&self) -> Option<Status> {
        self.entry.map(|(_, s)| s)
    }
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
        if let Some(existing) = slot.fate() {
            return Err(LedgerError::AlreadyFated { id, existing });
        }
        *slot = Slot {
            base_ms: clamp_ms(base_ms),
            at_ms: 0,
            entry: Some((code, Status::Pending)),
        };
        Ok(())
    }

    /// Is this alert expected (pending or fated)?
    pub fn is_expected(&self, id: AlertId) -> bool {
        self.slots
            .get(id.0 as usize)
            .is_some_and(|s| s.entry.is_some())
    }

    /// Records the endpoint's acknowledgement of `id` at scenario time `at_ms`.
    ///
    /// An ack for an alert already delivered counts as a duplicate and is an error; an ack for an
    /// alert never expected counts as a false positive (POA) or unexpected PRA and is an error.
    pub fn deliver(&mut self, id: AlertId, at_ms: u64) -> Result<(), LedgerError> {
        self.settle(id, Status::Delivered, at_ms)
    }

    /// Records that `id` was lost for `cause`, decided at scenario time `at_ms`.
    pub fn lose(&mut self, id: AlertId, cause: LossCause, at_ms: u64) -> Result<(), LedgerError> {
        self.settle(id, Status::Lost(cause), at_ms)
    }

    /// Gives a pending alert its fate; counts the anomaly an acknowledgement reveals otherwise.
    fn settle(&mut self, id: AlertId, status: Status, at_ms: u64) -> Result<(), LedgerError> {
        let ack = status == Status::Delivered;
        let Some(slot) = self.slots.get_mut(id.0 as usize) else {
            if ack {
                self.count_unexpected(id);
            }
            return Err(LedgerError::Unexpected(id));
        };
        match slot.entry {
            Some((code, Status::Pending)) => {
                slot.entry = Some((code, status));
                slot.at_ms = clamp_ms(at_ms);
                Ok(())
            }
            None => {
                if ack {
                    self.count_unexpected(id);
                }
                Err(LedgerError::Unexpected(id))
            }
            Some((_, was)) => {
                if ack && was == Status::Delivered {
                    self.anomalies.duplicates += 1;
                }
                Err(LedgerError::AlreadyFated {
                    id,
                    existing: was.fate(slot.at_ms),
                })
            }
        }
    }

    /// The current fate of `id` (`None` if it was never expected).
    pub fn fate(&self, id: AlertId) -> Option<Fate> {
        self.slots.get(id.0 as usize).and_then(Slot::fate)
    }

    /// Ends the run at scenario time `end_ms`: every alert still pending is lost as
    /// [`LossCause::NotDeliveredByEnd`]. Returns how many were.
    pub fn finish(&mut self, end_ms: u64) -> u64 {
        let mut n = 0;
        for slot in &mut self.slots {
            if let Some((code, Status::Pending)) = slot.entry {
                slot.entry = Some((code, Status::Lost(LossCause::NotDeliveredByEnd)));
                slot.at_ms = clamp_ms(end_ms);
                n += 1;
            }
        }
        n
    }

    /// Forgets every alert of the premises `keep` refuses, as if it had never been expected: a
    /// shard's ledger holds only its own premises' alerts ([`Shard`]). Anomalies already counted
    /// stay counted.
    pub fn retain_hubs(&mut self, keep: impl Fn(u32) -> bool) {
        for (hub, pair) in self.slots.chunks_exact_mut(2).enumerate() {
            if !keep(hub as u32) {
                pair.fill(Slot::default());
            }
        }
    }

    /// Number of alerts still without a fate.
    pub fn pending(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.status() == Some(Status::Pending))
            .count() as u64
    }

    /// Every expected alert with its fate, in id order.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let (code, _) = s.entry?;
            Some(Record {
                id: AlertId(i as u64),
                code,
                base_ms: u64::from(s.base_ms),
                fate: s.fate()?,
            })
        })
    }

    /// PRAs acknowledged before the POA of the same premises (both delivered, the PRA strictly
    /// earlier).
    pub fn out_of_order(&self) -> u64 {
        self.slots
            .chunks_exact(2)
            .filter(|pair| {
                let (poa, pra) = (&pair[0], &pair[1]);
                poa.status() == Some(Status::Delivered)
                    && pra.status() == Some(Status::Delivered)
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
        self.kind_slots(kind).filter(|s| s.entry.is_some()).count() as u64
    }

    /// Alerts of `kind` delivered so far.
    pub fn delivered(&self, kind: AlertKind) -> u64 {
        self.kind_slots(kind)
            .filter(|s| s.status() == Some(Status::Delivered))
            .count() as u64
    }

    /// Lost alerts of `kind`, per cause (causes with no loss are absent).
    pub fn lost_by_cause(&self, kind: AlertKind) -> BTreeMap<LossCause, u64> {
        let mut m = BTreeMap::new();
        for s in self.kind_slots(kind) {
            if let Some(Status::Lost(cause)) = s.status() {
                *m.entry(cause).or_insert(0) += 1;
            }
        }
        m
    }

    /// Latencies (ms from the alert's base time) of the delivered alerts of `kind`, ascending.
    pub fn delivered_latencies(&self, kind: AlertKind) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .kind_slots(kind)
            .filter(|s| s.status() == Some(Status::Delivered))
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
        let first = match kind {
            AlertKind::Poa => 0,
            AlertKind::Pra => 1,
        };
        self.slots.iter().skip(first).step_by(2)
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
/// `pct` is taken to a hundredth of a percent so that 95% of 30,000 is exactly 28,500. A `pct` of 0
/// or less, above 100, or NaN has no answer (`None`).
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

#[cfg(test)]
mod tests {
    use super::*;

    const POA0: AlertId = AlertId(0);
    const PRA0: AlertId = AlertId(1);

    fn both_expected(hubs: u32) -> Ledger {
        let mut l = Ledger::new(hubs);
        for hub in 0..hubs {
            l.expect(AlertId::new(hub, AlertKind::Poa), AlertCode::Ad1, 0)
                .unwrap();
            l.expect(
                AlertId::new(hub, AlertKind::Pra),
                AlertCode::Restored8F36,
                60_000,
            )
            .unwrap();
        }
        l
    }

    #[test]
    fn one_fate_per_alert() {
        let mut l = Ledger::new(2);
        assert_eq!(l.hubs(), 2);
        assert!(!l.is_expected(POA0));
        l.expect(POA0, AlertCode::Ad1, 1000).unwrap();
        assert!(l.is_expected(POA0));
        assert!(!l.is_expected(PRA0));
        assert_eq!(
            l.expect(POA0, AlertCode::Ad1, 1000),
            Err(LedgerError::AlreadyFated {
                id: POA0,
                existing: Fate::Pending
            })
        );
        assert_eq!(l.fate(POA0), Some(Fate::Pending));
        assert_eq!(l.pending(), 1);
        l.deliver(POA0, 5000).unwrap();
        assert_eq!(l.pending(), 0);
        assert_eq!(
            l.lose(POA0, LossCause::Collision, 6000),
            Err(LedgerError::AlreadyFated {
                id: POA0,
                existing: Fate::Delivered { at_ms: 5000 }
            })
        );
        assert_eq!(
            l.anomalies().duplicates,
            0,
            "a late loss is not a duplicate ack"
        );
        assert!(l.deliver(POA0, 7000).is_err());
        assert_eq!(l.anomalies().duplicates, 1);
        assert_eq!(l.fate(POA0), Some(Fate::Delivered { at_ms: 5000 }));
        let rec: Vec<_> = l.records().collect();
        assert_eq!(
            rec,
            [Record {
                id: POA0,
                code: AlertCode::Ad1,
                base_ms: 1000,
                fate: Fate::Delivered { at_ms: 5000 }
            }]
        );
        assert_eq!(rec[0].latency_ms(), Some(4000));
    }

    #[test]
    fn a_loss_is_recorded_with_its_cause_and_time_and_is_final() {
        let mut l = both_expected(1);
        assert_eq!(l.lose(PRA0, LossCause::AttachFailure, 12_345), Ok(()));
        let lost = Fate::Lost {
            cause: LossCause::AttachFailure,
            at_ms: 12_345,
        };
        assert_eq!(l.fate(PRA0), Some(lost));
        assert_eq!(
            l.deliver(PRA0, 20_000),
            Err(LedgerError::AlreadyFated {
                id: PRA0,
                existing: lost
            })
        );
        assert_eq!(
            l.anomalies(),
            Anomalies::default(),
            "an ack after a loss is no duplicate"
        );
        assert_eq!(
            l.lose(PRA0, LossCause::Collision, 1),
            Err(LedgerError::AlreadyFated {
                id: PRA0,
                existing: lost
            })
        );
        let rec = l.records().nth(1).unwrap();
        assert_eq!(rec.latency_ms(), None);
        assert_eq!(l.pending(), 1);
    }

    #[test]
    fn losing_or_expecting_an_unknown_alert_is_refused_without_counting_an_ack() {
        let mut l = Ledger::new(1);
        assert_eq!(
            l.lose(POA0, LossCause::Collision, 0),
            Err(LedgerError::Unexpected(POA0))
        );
        assert_eq!(
            l.lose(AlertId(2), LossCause::Collision, 0),
            Err(LedgerError::Unexpected(AlertId(2)))
        );
        assert_eq!(
            l.expect(AlertId(2), AlertCode::Ad1, 0),
            Err(LedgerError::Unexpected(AlertId(2)))
        );
        assert_eq!(l.anomalies(), Anomalies::default());
        assert!(!l.is_expected(POA0));
        assert!(!l.is_expected(AlertId(2)));
        assert_eq!(l.fate(POA0), None);
        assert_eq!(l.fate(AlertId(2)), None);
    }

    #[test]
    fn unexpected_acks_are_counted_by_kind_and_finish_fates_the_rest() {
        let mut l = Ledger::new(3);
        assert_eq!(
            l.deliver(AlertId::new(1, AlertKind::Poa), 10),
            Err(LedgerError::Unexpected(AlertId::new(1, AlertKind::Poa)))
        );
        assert!(l.deliver(AlertId::new(1, AlertKind::Pra), 10).is_err());
        assert!(l.deliver(AlertId::new(1, AlertKind::Pra), 10).is_err());
        // Outside the population too.
        assert!(l.deliver(AlertId::new(9, AlertKind::Poa), 10).is_err());
        assert_eq!(
            l.anomalies(),
            Anomalies {
                duplicates: 0,
                false_positives: 2,
                unexpected_pra: 2
            }
        );
        l.expect(AlertId::new(2, AlertKind::Pra), AlertCode::Restored8F36, 0)
            .unwrap();
        l.expect(AlertId::new(0, AlertKind::Pra), AlertCode::Restored8F35, 0)
            .unwrap();
        l.deliver(AlertId::new(0, AlertKind::Pra), 50).unwrap();
        assert_eq!(l.finish(99), 1);
        assert_eq!(
            l.fate(AlertId::new(2, AlertKind::Pra)),
            Some(Fate::Lost {
                cause: LossCause::NotDeliveredByEnd,
                at_ms: 99
            })
        );
        assert_eq!(
            l.fate(AlertId::new(0, AlertKind::Pra)),
            Some(Fate::Delivered { at_ms: 50 })
        );
        assert_eq!(l.pending(), 0);
        assert_eq!(l.finish(200), 0, "finishing twice changes nothing");
    }

    #[test]
    fn counts_per_kind_and_per_cause() {
        let mut l = both_expected(6);
        l.expect(AlertId(12), AlertCode::Ad1, 0).unwrap_err();
        let poa = |h| AlertId::new(h, AlertKind::Poa);
        let pra = |h| AlertId::new(h, AlertKind::Pra);
        l.deliver(poa(0), 100).unwrap();
        l.deliver(poa(1), 300).unwrap();
        l.lose(poa(2), LossCause::Collision, 5).unwrap();
        l.lose(poa(3), LossCause::Collision, 5).unwrap();
        l.lose(poa(4), LossCause::QueueOverflow, 5).unwrap();
        l.deliver(pra(0), 60_500).unwrap();
        l.lose(pra(1), LossCause::AttachFailure, 5).unwrap();
        assert_eq!(l.expected(AlertKind::Poa), 6);
        assert_eq!(l.expected(AlertKind::Pra), 6);
        assert_eq!(l.delivered(AlertKind::Poa), 2);
        assert_eq!(l.delivered(AlertKind::Pra), 1);
        assert_eq!(
            l.lost_by_cause(AlertKind::Poa),
            BTreeMap::from([(LossCause::Collision, 2), (LossCause::QueueOverflow, 1)])
        );
        assert_eq!(
            l.lost_by_cause(AlertKind::Pra),
            BTreeMap::from([(LossCause::AttachFailure, 1)])
        );
        assert_eq!(l.pending(), 1 + 4);
        assert_eq!(l.delivered_latencies(AlertKind::Poa), [100, 300]);
        assert_eq!(l.delivered_latencies(AlertKind::Pra), [500]);
        // 2 of 6 POAs delivered: 1/6 ≈ 16.7% at the first, 33.3% at the second.
        assert_eq!(l.time_to_pct(AlertKind::Poa, 16.0), Some(100));
        assert_eq!(l.time_to_pct(AlertKind::Poa, 33.33), Some(300));
        assert_eq!(l.time_to_pct(AlertKind::Poa, 34.0), None);
        assert_eq!(l.records().count(), 12);
        // A ledger with an unexpected POA slot: it is not counted.
        let mut m = Ledger::new(2);
        m.expect(PRA0, AlertCode::Restored8F35, 0).unwrap();
        assert_eq!(m.expected(AlertKind::Poa), 0);
        assert_eq!(m.expected(AlertKind::Pra), 1);
        assert_eq!(m.records().map(|r| r.id).collect::<Vec<_>>(), [PRA0]);
    }

    #[test]
    fn a_shard_keeps_only_its_own_premises_and_their_fates() {
        let mut l = both_expected(6);
        l.deliver(AlertId::new(1, AlertKind::Poa), 10).unwrap();
        l.lose(AlertId::new(4, AlertKind::Pra), LossCause::Collision, 3)
            .unwrap();
        let shard = Shard::new(1, 3).unwrap();
        l.retain_hubs(|h| shard.owns_hub(h));
        let ids: Vec<u32> = l.records().map(|r| r.id.hub()).collect();
        assert_eq!(ids, [1, 1, 4, 4]);
        assert_eq!(l.expected(AlertKind::Poa), 2);
        assert_eq!(
            l.fate(AlertId::new(1, AlertKind::Poa)),
            Some(Fate::Delivered { at_ms: 10 })
        );
        assert_eq!(l.lost_by_cause(AlertKind::Pra)[&LossCause::Collision], 1);
        assert!(!l.is_expected(AlertId::new(0, AlertKind::Poa)));
        // An ack for another shard's alert is not this shard's delivery.
        assert!(l.deliver(AlertId::new(0, AlertKind::Poa), 5).is_err());
        assert_eq!(l.hubs(), 6);
    }

    #[test]
    fn out_of_order_counts_only_a_delivered_pra_strictly_before_its_delivered_poa() {
        let mut l = both_expected(5);
        let poa = |h| AlertId::new(h, AlertKind::Poa);
        let pra = |h| AlertId::new(h, AlertKind::Pra);
        // hubs 0 and 4: PRA before POA (count); hub 1: same time (does not); hub 2: POA first
        // (does not); hub 3: PRA delivered before the POA was lost (does not: no POA delivered).
        for (h, poa_at, pra_at) in [(0, 20, 10), (4, 30, 5), (1, 10, 10), (2, 10, 20)] {
            l.deliver(poa(h), poa_at).unwrap();
            l.deliver(pra(h), pra_at).unwrap();
        }
        l.deliver(pra(3), 100).unwrap();
        l.lose(poa(3), LossCause::Collision, 500).unwrap();
        assert_eq!(l.out_of_order(), 2);
        assert_eq!(Ledger::new(3).out_of_order(), 0);
    }

    #[test]
    fn times_beyond_u32_ms_are_clamped_not_wrapped() {
        let mut l = Ledger::new(1);
        l.expect(POA0, AlertCode::Ad1, u64::MAX).unwrap();
        l.deliver(POA0, u64::from(u32::MAX) + 7).unwrap();
        let r = l.records().next().unwrap();
        assert_eq!(r.base_ms, u64::from(u32::MAX));
        assert_eq!(
            r.fate,
            Fate::Delivered {
                at_ms: u64::from(u32::MAX)
            }
        );
    }

    #[test]
    fn time_to_pct_counts_against_expected_not_delivered() {
        // 10 expected, 9 delivered at 1..=9 s: 50% at the 5th, 90% at the 9th, 95% never.
        let lat: Vec<u64> = (1..=9).map(|s| s * 1000).collect();
        assert_eq!(time_to_pct(&lat, 10, 50.0), Some(5000));
        assert_eq!(time_to_pct(&lat, 10, 90.0), Some(9000));
        assert_eq!(time_to_pct(&lat, 10, 95.0), None);
        assert_eq!(time_to_pct(&lat, 10, 10.0), Some(1000));
        // Just above a boundary needs the next delivery.
        assert_eq!(time_to_pct(&lat, 10, 10.01), Some(2000));
        assert_eq!(time_to_pct(&lat, 10, 0.01), Some(1000));
        assert_eq!(time_to_pct(&lat, 9, 100.0), Some(9000));
        assert_eq!(time_to_pct(&lat, 0, 50.0), None);
        assert_eq!(time_to_pct(&lat, 10, 0.0), None);
        assert_eq!(time_to_pct(&lat, 10, -5.0), None);
        assert_eq!(time_to_pct(&lat, 10, 100.5), None);
        assert_eq!(time_to_pct(&lat, 10, f64::NAN), None);
        let many = vec![7u64; 28_500];
        assert_eq!(time_to_pct(&many, 30_000, 95.0), Some(7));
        assert_eq!(time_to_pct(&many, 30_001, 95.0), None);
    }
}
