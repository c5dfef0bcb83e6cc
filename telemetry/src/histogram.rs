//! Fixed-bucket histograms in the shape Prometheus exposes them.
//!
//! [`AtomicHistogram`] is what a hot path records into: one bucket search over a short sorted
//! array and two relaxed atomic adds, no lock, no allocation, safe from any number of threads.
//! [`Histogram`] is a plain snapshot (or a histogram built on the spot, e.g. from a ledger scan)
//! that the exposition writes out. Bucket bounds are fixed when the histogram is made, as
//! Prometheus requires: a bucket's count only ever grows, so `rate()` over them is meaningful.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds, ns, of the buckets every duration histogram of the harness uses by default:
/// 10 µs to 10 s in 1-2.5-5 steps (a store call and a hand-over's lateness both live in there).
pub const DURATION_BUCKETS_NS: [u64; 19] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// A histogram of durations that many threads record into without locking.
#[derive(Debug)]
pub struct AtomicHistogram {
    /// Upper bounds (inclusive), ns, ascending; the last bucket (+Inf) is implicit.
    bounds_ns: &'static [u64],
    /// One count per bucket (not cumulative); `bounds_ns.len() + 1` of them.
    counts: Box<[AtomicU64]>,
    /// Sum of every recorded value, ns (584 years before it wraps).
    sum_ns: AtomicU64,
}

impl Default for AtomicHistogram {
    /// The harness's default duration buckets ([`DURATION_BUCKETS_NS`]).
    fn default() -> Self {
        AtomicHistogram::new(&DURATION_BUCKETS_NS)
    }
}

impl AtomicHistogram {
    /// An empty histogram with these upper bounds (ns, strictly ascending).
    pub fn new(bounds_ns: &'static [u64]) -> Self {
        debug_assert!(
            bounds_ns.windows(2).all(|w| w[0] < w[1]),
            "bucket bounds must be strictly ascending"
        );
        AtomicHistogram {
            bounds_ns,
            counts: (0..=bounds_ns.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn record(&self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one duration given in ns.
    pub fn record_ns(&self, ns: u64) {
        // The first bucket whose bound is >= the value: Prometheus buckets are "less or equal".
        let i = self.bounds_ns.partition_point(|&b| b < ns);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Relaxed);
        }
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// The counts so far. Taken while others record, the count and the sum may disagree by the
    /// values recorded during the read; each bucket is exact for the moment it was read.
    pub fn snapshot(&self) -> Histogram {
        Histogram {
            bounds: self.bounds_ns.iter().map(|&b| b as f64 / 1e9).collect(),
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum: self.sum_ns.load(Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram's buckets, count and sum, in the unit of its bounds (seconds for durations).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds (inclusive), ascending; the last bucket (+Inf) is implicit.
    bounds: Vec<f64>,
    /// Count per bucket (not cumulative); one more than `bounds`.
    counts: Vec<u64>,
    /// Sum of the observed values.
    sum: f64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (strictly ascending, finite).
    pub fn new(bounds: &[f64]) -> Self {
        debug_assert!(
            bounds.windows(2).all(|w| w[0] < w[1]) && bounds.iter().all(|b| b.is_finite()),
            "bucket bounds must be finite and strictly ascending"
        );
        Histogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Adds one observation.
    pub fn observe(&mut self, v: f64) {
        let i = self.bounds.partition_point(|&b| b < v);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, count in that bucket)` pairs, not cumulative, ending with `+Inf`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().copied())
            .collect()
    }

    /// Observations at or below `bound` (which must be one of the bounds, or +Inf).
    pub fn count_le(&self, bound: f64) -> Option<u64> {
        let mut cumulative = 0;
        for (b, n) in self.buckets() {
            cumulative += n;
            if b == bound {
                return Some(cumulative);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        static B: [u64; 3] = [10, 20, 30];
        let h = AtomicHistogram::new(&B);
        for ns in [0, 10, 11, 20, 30, 31, u64::MAX / 2] {
            h.record_ns(ns);
        }
        let s = h.snapshot();
        assert_eq!(
            s.buckets(),
            vec![(10e-9, 2), (20e-9, 2), (30e-9, 1), (f64::INFINITY, 2)]
        );
        assert_eq!(s.count(), 7);
        assert_eq!(s.count_le(20e-9), Some(4));
        assert_eq!(s.count_le(f64::INFINITY), Some(7));
        assert_eq!(s.count_le(15e-9), None);
    }

    #[test]
    fn many_threads_record_without_losing_a_value() {
        let h = std::sync::Arc::new(AtomicHistogram::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        h.record(Duration::from_micros((i * 7 + t) % 20_000));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 40_000);
        let expected_sum: u64 = (0..4u64)
            .flat_map(|t| (0..10_000u64).map(move |i| ((i * 7 + t) % 20_000) * 1000))
            .sum();
        assert!((s.sum() - expected_sum as f64 / 1e9).abs() < 1e-6);
    }

    #[test]
    fn a_plain_histogram_counts_le_like_prometheus() {
        let mut h = Histogram::new(&[60.0, 240.0]);
        for v in [0.0, 60.0, 60.001, 240.0, 1e9] {
            h.observe(v);
        }
        assert_eq!(h.buckets(), vec![(60.0, 2), (240.0, 2), (f64::INFINITY, 1)]);
        assert_eq!(h.count_le(240.0), Some(4));
        assert!((h.sum() - (360.001 + 1e9)).abs() < 1e-3);
    }
}
