//! The delivery curve: for each time t since the alert's base (power cut for POA, restoration for
//! PRA), the share of *expected* alerts delivered by t. It plateaus below 1 when alerts are lost.
//!
//! One type serves the exact ledger (every latency) and a loaded or merged results folder (an HDR
//! histogram, exact counts, latencies to 3 significant digits), so graphs, tables and CSV files are
//! drawn by one mechanism whatever the source. It never normalises by what was delivered.

use hdrhistogram::Histogram;

/// A cumulative delivery curve as steps: (latency ms, delivered with latency ≤ that) ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryCurve {
    expected: u64,
    steps: Vec<(u64, u64)>,
}

impl DeliveryCurve {
    /// From delivered latencies in ms (any order) and the number of expected alerts.
    pub fn from_latencies(latencies: &[u64], expected: u64) -> Self {
        let mut sorted = latencies.to_vec();
        sorted.sort_unstable();
        let mut steps: Vec<(u64, u64)> = Vec::new();
        for (i, &v) in sorted.iter().enumerate() {
            let cum = i as u64 + 1;
            match steps.last_mut() {
                Some(last) if last.0 == v => last.1 = cum,
                _ => steps.push((v, cum)),
            }
        }
        DeliveryCurve { expected, steps }
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
        DeliveryCurve { expected, steps }
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

    /// "Time to X% delivered" in ms: the first latency at which delivered / expected reaches `pct`
    /// percent, `None` if it never does. The same rule as [`ledger::time_to_pct`] (the k-th
    /// delivery, k = ceil(pct/100 × expected), pct to a hundredth of a percent).
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

    /// The steps: (latency ms, delivered with latency ≤ it), ascending.
    pub fn steps(&self) -> &[(u64, u64)] {
        &self.steps
    }

    /// Points of the step function as (seconds, fraction), ready to draw as a line: starts at
    /// (0, 0), rises vertically at each step and runs flat to `until_s`.
    pub fn polyline(&self, until_s: f64) -> Vec<(f64, f64)> {
        let mut pts = Vec::with_capacity(self.steps.len() * 2 + 2);
        pts.push((0.0, 0.0));
        let mut prev = 0u64;
        for &(ms, cum) in &self.steps {
            let t = ms as f64 / 1000.0;
            pts.push((t, ratio(prev, self.expected)));
            pts.push((t, ratio(cum, self.expected)));
            prev = cum;
        }
        let last_t = pts.last().map_or(0.0, |p| p.0);
        pts.push((until_s.max(last_t), ratio(prev, self.expected)));
        pts
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
        assert_eq!(c.delivered(), 997);
        assert!((c.plateau() - 997.0 / 1200.0).abs() < 1e-12);
        assert_eq!(c.fraction_at(2), 0.0);
        assert!((c.fraction_at(u64::MAX) - c.plateau()).abs() < 1e-12);
    }

    #[test]
    fn histogram_curve_keeps_counts_exact() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000, 3).unwrap();
        for v in [100u64, 200, 200, 90_000, 400_000] {
            h.record(v).unwrap();
        }
        let c = DeliveryCurve::from_histogram(&h, 10);
        assert_eq!(c.delivered(), 5);
        assert_eq!(c.time_to_pct(30.0), Some(200));
        let t = c.time_to_pct(40.0).unwrap();
        assert!((90_000..=90_100).contains(&t), "{t}");
        let t = c.time_to_pct(50.0).unwrap();
        assert!((400_000..=400_400).contains(&t), "{t}");
        assert_eq!(c.time_to_pct(60.0), None);
        let poly = c.polyline(1000.0);
        assert_eq!(poly.first(), Some(&(0.0, 0.0)));
        assert_eq!(poly.last().map(|p| p.1), Some(0.5));
    }
}
