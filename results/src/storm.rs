//! Per-outage figures of a storm (several outages in one run), and the figures of alerts covered by
//! summary alerts (a hypothetical option).
//!
//! The model numbers premises outage by outage (the scenario's own outage, `main`, first), so an
//! outage is a range of premises ([`OutageMeta`]); its figures are the run's figures restricted to
//! that range, computed by the same rules ([`KindSummary`], [`crate::DeliveryCurve`]), plus *time
//! to first alert*: from the outage's power cut to the first of its alerts (POA or PRA) the
//! endpoint acknowledged — when the operator can first know the outage exists.
//!
//! An alert folded into a summary alert ends as lost with cause `covered_by_summary` once the
//! endpoint acknowledged the summary: it is never counted as delivered. [`CoveredFigures`] says
//! how far the endpoint *knew* of such alerts (delivered on their own, or counted in an
//! acknowledged summary), beside — never instead of — the delivered figures.

use crate::curve::DeliveryCurve;
use crate::record::{Alerts, KindSummary, LEVELS, LatencyStats, frac, histogram_of, pct_key};
use ledger::{AlertKind, Fate, LossCause, PerKind, Record};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One outage of a run, as the model laid it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageMeta {
    /// Its name (`main` for the scenario's own outage).
    pub name: String,
    /// Index of its first premises (premises `first_hub .. first_hub + premises`).
    pub first_hub: u32,
    /// Its premises.
    pub premises: u32,
    /// The cells it spans.
    pub cells: u32,
    /// The outage whose cells it lies in, if it has none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<String>,
    /// Scenario time of its power cut, seconds.
    pub cut_at_s: f64,
}

impl OutageMeta {
    fn contains(&self, hub: u32) -> bool {
        hub >= self.first_hub && hub - self.first_hub < self.premises
    }
}

/// The figures of one outage of a storm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageSummary {
    /// Which outage.
    #[serde(flatten)]
    pub outage: OutageMeta,
    /// Seconds from its power cut to the first of its alerts (POA or PRA) the endpoint
    /// acknowledged: when the operator can first know it exists. `null`: none was.
    pub time_to_first_alert_s: Option<f64>,
    /// Seconds from its power cut to its first acknowledged POA. `null`: none was.
    pub time_to_first_poa_s: Option<f64>,
    /// Its POA and PRA figures.
    pub alerts: Alerts,
}

/// How far the endpoint knew of alerts that a summary alert covered (a hypothetical option, not in
/// DP096). Only present when some alert was covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoveredFigures {
    /// Alerts covered by an acknowledged summary alert (lost as `covered_by_summary`).
    pub covered: u64,
    /// Delivered on their own, or covered: (delivered + covered) / expected.
    pub delivered_or_covered_fraction: f64,
    /// "Time to X% of expected delivered *or covered*", seconds, keys as `time_to_pct_s`. A
    /// covered alert counts from the time its summary was acknowledged.
    pub time_to_pct_s: BTreeMap<String, Option<f64>>,
}

impl CoveredFigures {
    /// From the delivered and the covered latencies (ms from the alerts' base) and the expected
    /// count; `None` when nothing was covered.
    pub fn new(delivered: &[u64], covered: &[u64], expected: u64) -> Option<Self> {
        if covered.is_empty() {
            return None;
        }
        let mut all: Vec<u64> = delivered.iter().chain(covered).copied().collect();
        all.sort_unstable();
        let curve = DeliveryCurve::from_sorted(&all, expected);
        Some(CoveredFigures {
            covered: covered.len() as u64,
            delivered_or_covered_fraction: frac(all.len() as u64, expected),
            time_to_pct_s: LEVELS
                .iter()
                .map(|&p| {
                    (
                        pct_key(p),
                        curve.time_to_pct(p).map(|ms| ms as f64 / 1000.0),
                    )
                })
                .collect(),
        })
    }

    /// Time to `pct`% delivered or covered, seconds (`None`: never, or not a level).
    pub fn time_to(&self, pct: f64) -> Option<f64> {
        self.time_to_pct_s.get(&pct_key(pct)).copied().flatten()
    }
}

/// One kind's alerts of a set of premises.
#[derive(Debug, Clone, Default)]
pub(crate) struct KindTally {
    pub(crate) expected: u64,
    /// Delivered latencies, ms from the base.
    pub(crate) latencies: Vec<u64>,
    /// Covered latencies (summary acknowledged), ms from the base.
    pub(crate) covered: Vec<u64>,
    pub(crate) losses: BTreeMap<LossCause, u64>,
}

impl KindTally {
    fn add(&mut self, r: &Record) {
        self.expected += 1;
        match r.fate {
            Fate::Delivered { at_ms } => self.latencies.push(at_ms.saturating_sub(r.base_ms)),
            Fate::Lost { cause, at_ms } => {
                *self.losses.entry(cause).or_insert(0) += 1;
                if cause == LossCause::CoveredBySummary {
                    self.covered.push(at_ms.saturating_sub(r.base_ms));
                }
            }
            Fate::Pending => {}
        }
    }

    fn sort(&mut self) {
        self.latencies.sort_unstable();
        self.covered.sort_unstable();
    }

    /// The kind's figures, by the rules of a whole run's.
    pub(crate) fn summary(&self) -> KindSummary {
        let curve = DeliveryCurve::from_sorted(&self.latencies, self.expected);
        let latency = LatencyStats {
            max: self.latencies.last().copied(),
            ..LatencyStats::from_histogram(&histogram_of(&self.latencies))
        };
        let mut k = KindSummary::from_curve(&curve, self.losses.clone(), latency);
        k.covered_by_summary = CoveredFigures::new(&self.latencies, &self.covered, self.expected);
        k
    }
}

/// The alerts of a set of premises.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) kinds: PerKind<KindTally>,
    first_ack_ms: Option<u64>,
    first_poa_ms: Option<u64>,
}

impl Tally {
    fn add(&mut self, r: &Record) {
        let kind = r.id.kind();
        self.kinds[kind].add(r);
        if let Fate::Delivered { at_ms } = r.fate {
            self.first_ack_ms = Some(self.first_ack_ms.map_or(at_ms, |f| f.min(at_ms)));
            if kind == AlertKind::Poa {
                self.first_poa_ms = Some(self.first_poa_ms.map_or(at_ms, |f| f.min(at_ms)));
            }
        }
    }

    fn outage_summary(&self, o: &OutageMeta) -> OutageSummary {
        let cut_ms = (o.cut_at_s * 1000.0).round() as u64;
        let since_cut = |t: Option<u64>| t.map(|t| t.saturating_sub(cut_ms) as f64 / 1000.0);
        OutageSummary {
            outage: o.clone(),
            time_to_first_alert_s: since_cut(self.first_ack_ms),
            time_to_first_poa_s: since_cut(self.first_poa_ms),
            alerts: Alerts {
                poa: self.kinds.poa.summary(),
                pra: self.kinds.pra.summary(),
            },
        }
    }
}

/// Splits records by outage: one tally per outage (premises outside every outage are left out),
/// and the covered latencies of the whole run per kind.
pub(crate) fn tally(
    records: impl Iterator<Item = Record>,
    outages: &[OutageMeta],
) -> (Vec<Tally>, PerKind<Vec<u64>>) {
    let mut per: Vec<Tally> = vec![Tally::default(); outages.len()];
    let mut covered: PerKind<Vec<u64>> = PerKind::default();
    for r in records {
        let hub = r.id.hub();
        let i = outages.partition_point(|o| o.first_hub <= hub);
        if let Some(t) = i
            .checked_sub(1)
            .filter(|&i| outages[i].contains(hub))
            .and_then(|i| per.get_mut(i))
        {
            t.add(&r);
        }
        if let Fate::Lost {
            cause: LossCause::CoveredBySummary,
            at_ms,
        } = r.fate
        {
            covered[r.id.kind()].push(at_ms.saturating_sub(r.base_ms));
        }
    }
    for t in &mut per {
        t.kinds.poa.sort();
        t.kinds.pra.sort();
    }
    covered.poa.sort_unstable();
    covered.pra.sort_unstable();
    (per, covered)
}

/// Each outage's figures.
pub(crate) fn outage_summaries(tallies: &[Tally], outages: &[OutageMeta]) -> Vec<OutageSummary> {
    tallies
        .iter()
        .zip(outages)
        .map(|(t, o)| t.outage_summary(o))
        .collect()
}
