//! The delivery curve and "time to X% delivered": for each time t since the alert's base (power cut
//! for POA, restoration for PRA), the share of *expected* alerts delivered by t. It plateaus below 1
//! when alerts are lost, and is never normalised by what arrived.
//!
//! One type serves exact latencies (a ledger, or a folder's `alerts.csv`) and an HDR histogram
//! (a folder without `alerts.csv`, or merged shards of which one lacks it), and it says which it
//! is ([`Precision`]) so an output built from the histogram can say so. Time to X% has exactly one
//! computation, [`DeliveryCurve::time_to_pct`]; [`crate::summarize`] stores its result and every
//! output reads that.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Where a curve's times come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Every delivered latency, to the millisecond.
    #[default]
    Exact,
    /// An HDR histogram (3 significant digits): each time is at most one bucket (≈0.1%) late,
    /// never early. Used only where the exact latencies are not at hand.
    Hdr,
}

impl Precision {
    /// True for [`Precision::Exact`] (lets serde leave the default out of `summary.json`).
    pub fn is_exact(&self) -> bool {
        *self == Precision::Exact
    }
}

/// A cumulative delivery curve as steps: (latency ms, delivered with latency ≤ that), ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryCurve {
    expected: u64,
    steps: Vec<(u64, u64)>,
    precision: Precision,
}

impl DeliveryCurve {
    /// From delivered latencies in ms (any order) and the number of expected alerts: exact.
    pub fn from_latencies(latencies: &[u64], expected: u64) -> Self {
        let mut sorted = latencies.to_vec();
        sorted.sort_unstable();
        DeliveryCurve::from_sorted(&sorted, expected)
    }

    /// As [`DeliveryCurve::from_latencies`], for latencies already in ascending order.
    pub fn from_sorted(sorted: &[u64], expected: u64) -> Self {
        let mut steps: Vec<(u64, u64)> = Vec::new();
        for (i, &v) in sorted.iter().enumerate() {
            let cum = i as u64 + 1;
            match steps.last_mut() {
                Some(last) if last.0 == v => last.1 = cum,
                _ => steps.push((v, cum)),
            }
        }
        DeliveryCurve {
            expected,
            steps,
            precision: Precision::Exact,
        }
    }

    /// From an HDR histogram of delivered latencies in ms. Each bucket counts at its highest
    /// equivalent value, so times read from it are at most one bucket (≈0.1%) late, never early.
    pub fn from_histogram(h: &Histogram<u64>, expected: u64) -> Self {
        let mut steps = Vec::new();
        let mut cum = 0u64;
        for v in h.iter_recorded() {
            cum += v.count_at_value();
            steps.push((h.highest_equivalent(v.value_iterated_to()), cum));
        }
        DeliveryCurve {
            expected,
            steps,
            precision: Precision::Hdr,
        }
    }

    /// Exact latencies or an HDR histogram?
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Alerts expected.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Alerts delivered (at any time).
    pub fn delivered(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.1)
    }

    /// The share of expected alerts delivered at all: where the curve flattens (0 when nothing is
    /// expected).
    pub fn plateau(&self) -> f64 {
        ratio(self.delivered(), self.expected)
    }

    /// The share of expected alerts delivered with latency ≤ `t_ms`.
    pub fn fraction_at(&self, t_ms: u64) -> f64 {
        let n = self.steps.partition_point(|s| s.0 <= t_ms);
        let cum = if n == 0 { 0 } else { self.steps[n - 1].1 };
        ratio(cum, self.expected)
    }

    /// "Time to X% delivered" in ms: the latency of the k-th delivery, k = ceil(pct/100 ×
    /// expected), or `None` if fewer than k were delivered (or nothing is expected, or `pct` is
    /// not in (0, 100]). `pct` is taken to a hundredth of a percent so that 95% of 30,000 is
    /// exactly 28,500. This is the only place the rule is computed.
    pub fn time_to_pct(&self, pct: f64) -> Option<u64> {
        if self.expected == 0 || !(pct > 0.0 && pct <= 100.0) {
            return None;
        }
        let bp = (pct * 100.0).round() as u64;
        let k = (bp * self.expected).div_ceil(10_000).max(1);
        self.steps.iter().find(|s| s.1 >= k).map(|s| s.0)
    }

    /// The latency of the last delivery, ms.
    pub fn last_ms(&self) -> Option<u64> {
        self.steps.last().map(|s| s.0)
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_rule_as_the_ledger() {
        let lat: Vec<u64> = (0..997u64).map(|i| (i * 7919) % 5000 + 3).collect();
        let mut sorted = lat.clone();
        sorted.sort_unstable();
        let c = DeliveryCurve::from_latencies(&lat, 1200);
        for pct in [0.5, 10.0, 50.0, 80.0, 83.0, 83.1, 95.0, 99.0, 100.0] {
            assert_eq!(
                c.time_to_pct(pct),
                ledger::time_to_pct(&sorted, 1200, pct),
                "{pct}"
            );
        }
        assert_eq!(c.precision(), Precision::Exact);
        assert_eq!(c.delivered(), 997);
        assert!((c.plateau() - 997.0 / 1200.0).abs() < 1e-12);
        assert_eq!(c.fraction_at(2), 0.0);
        assert!((c.fraction_at(u64::MAX) - c.plateau()).abs() < 1e-12);
    }

    #[test]
    fn zero_and_out_of_range_levels_are_never_reached() {
        let c = DeliveryCurve::from_latencies(&[5, 6, 7], 3);
        assert_eq!(c.time_to_pct(0.0), None);
        assert_eq!(c.time_to_pct(-1.0), None);
        assert_eq!(c.time_to_pct(100.5), None);
        assert_eq!(c.time_to_pct(f64::NAN), None);
        assert_eq!(c.time_to_pct(100.0), Some(7));
        assert_eq!(c.time_to_pct(0.01), Some(5));
        let none = DeliveryCurve::from_latencies(&[], 0);
        assert_eq!(none.time_to_pct(50.0), None);
        assert_eq!(none.plateau(), 0.0);
    }

    #[test]
    fn histogram_curve_keeps_counts_exact_and_says_so() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000, 3).unwrap();
        for v in [100u64, 200, 200, 90_000, 400_000] {
            h.record(v).unwrap();
        }
        let c = DeliveryCurve::from_histogram(&h, 10);
        assert_eq!(c.precision(), Precision::Hdr);
        assert_eq!(c.delivered(), 5);
        assert_eq!(c.time_to_pct(30.0), Some(200));
        let t = c.time_to_pct(40.0).unwrap();
        assert!((90_000..=90_100).contains(&t), "{t}");
        let t = c.time_to_pct(50.0).unwrap();
        assert!((400_000..=400_400).contains(&t), "{t}");
        assert_eq!(c.time_to_pct(60.0), None);
        assert!((c.plateau() - 0.5).abs() < 1e-12);
    }
}
