//! One transport stage in closed form: a FIFO queue with parallel servers, or a token bucket.
//!
//! Used for the CSP head-end, the CSP→DSP throttle, the DSP 'motorway' lanes and the per-cell
//! cellular attach capacity. Arrivals must be presented in non-decreasing scenario time (the network
//! guarantees it); the stage answers with the departure time, or an overflow when its bounded
//! waiting room is full. Pure arithmetic: no clock, no randomness.

use crate::profile::{Stage, StageKind};
use std::collections::VecDeque;

/// A stage's state.
#[derive(Debug, Clone)]
pub struct StageQueue {
    kind: StageKind,
    /// Queue: service time per alert; bucket: emission interval. µs.
    interval_us: f64,
    /// Bucket tolerance (burst − 1) × interval, µs.
    tolerance_us: f64,
    /// Bucket: theoretical arrival time (GCRA), µs.
    tat_us: f64,
    /// Queue: when each server is next free, µs.
    free_us: Vec<f64>,
    /// Service start times of alerts still waiting (ascending).
    waiting: VecDeque<u64>,
    capacity: usize,
    /// Alerts that overflowed.
    pub overflows: u64,
    /// Most alerts seen waiting at once.
    pub max_waiting: usize,
}

impl StageQueue {
    /// A stage from its profile parameters.
    pub fn new(s: &Stage) -> Self {
        let interval_us = 1e6 / s.rate.0;
        StageQueue {
            kind: s.kind,
            interval_us,
            tolerance_us: (f64::from(s.burst.0) - 1.0) * interval_us,
            tat_us: 0.0,
            free_us: vec![0.0; s.servers.0 as usize],
            waiting: VecDeque::new(),
            capacity: s.capacity.0 as usize,
            overflows: 0,
            max_waiting: 0,
        }
    }

    /// An alert arrives at `at_us`: its departure time, or `None` if the waiting room is full.
    pub fn arrive(&mut self, at_us: u64) -> Option<u64> {
        while self.waiting.front().is_some_and(|&s| s <= at_us) {
            self.waiting.pop_front();
        }
        if self.waiting.len() >= self.capacity {
            self.overflows += 1;
            return None;
        }
        let at = at_us as f64;
        let (start, depart) = match self.kind {
            StageKind::Queue => {
                let (i, free) = self.free_us.iter().copied().enumerate().fold(
                    (0, f64::INFINITY),
                    |b, (i, f)| if f < b.1 { (i, f) } else { b },
                );
                let start = at.max(free);
                let depart = start + self.interval_us;
                self.free_us[i] = depart;
                (start, depart)
            }
            StageKind::Bucket => {
                let start = at.max(self.tat_us - self.tolerance_us);
                self.tat_us = self.tat_us.max(start) + self.interval_us;
                (start, start)
            }
        };
        let start_us = start.ceil() as u64;
        if start_us > at_us {
            self.waiting.push_back(start_us);
            self.max_waiting = self.max_waiting.max(self.waiting.len());
        }
        Some(depart.ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(kind: StageKind, rate: f64, servers: u32, burst: u32, capacity: u32) -> Stage {
        Stage::new(kind, rate, servers, burst, capacity)
    }

    #[test]
    fn queue_serves_in_order_and_overflows() {
        let mut q = StageQueue::new(&stage(StageKind::Queue, 10.0, 1, 1, 2));
        assert_eq!(q.arrive(0), Some(100_000));
        assert_eq!(q.max_waiting, 0, "served at once: nobody waits");
        assert_eq!(q.arrive(0), Some(200_000));
        assert_eq!(q.arrive(0), Some(300_000));
        assert_eq!(q.arrive(0), None, "two waiting: the third overflows");
        assert_eq!(q.arrive(1_000_000), Some(1_100_000));
        let mut two = StageQueue::new(&stage(StageKind::Queue, 10.0, 2, 1, 10));
        assert_eq!(two.arrive(0), Some(100_000));
        assert_eq!(two.arrive(0), Some(100_000));
        assert_eq!(two.arrive(0), Some(200_000));
    }

    #[test]
    fn bucket_passes_a_burst_then_the_rate() {
        let mut b = StageQueue::new(&stage(StageKind::Bucket, 10.0, 1, 3, 100));
        let d: Vec<_> = (0..5).map(|_| b.arrive(1_000_000)).collect();
        assert_eq!(
            d,
            vec![
                Some(1_000_000),
                Some(1_000_000),
                Some(1_000_000),
                Some(1_100_000),
                Some(1_200_000)
            ]
        );
    }
}
