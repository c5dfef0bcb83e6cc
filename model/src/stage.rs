//! One transport stage: a FIFO queue with parallel servers, or a token bucket.
//!
//! Used for the CSP head-end, the CSP→DSP throttle, the DSP 'motorway' lanes and the per-cell
//! cellular attach capacity. Arrivals must be presented in non-decreasing scenario time (the network
//! guarantees it). A plain stage ([`StageQueue`]) is in closed form: it answers each arrival with
//! its departure time, or an overflow when its bounded waiting room is full. A stage with a
//! location-aware [`Priority`] (a HYPOTHETICAL option, not in DP096) cannot know a departure at
//! arrival, since a later alert may overtake: [`PriorityStage`] keeps its waiting alerts in two
//! classes and starts them when service is free, high class first, FIFO within a class.
//! Pure arithmetic: no clock, no randomness.

use crate::profile::{Stage, StageKind};
use crate::units::{Dur, NonZeroCount};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What a location-aware stage option groups alerts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The premises' cell (what a CSP can know).
    Cell,
    /// The outage the premises belongs to (an oracle: the scenario's own grouping).
    Outage,
}

/// HYPOTHETICAL (not in DP096): `priority = { by = "cell", first = 5 }` — the first `first` alerts
/// of each kind from each group (cell or outage) that reach the stage are served ahead of every
/// other waiting alert, and may push the newest ordinary alert out of a full waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Priority {
    /// What "each cell or outage" means.
    pub by: GroupBy,
    /// Alerts per group and kind served ahead of the rest.
    pub first: NonZeroCount,
}

/// HYPOTHETICAL (not in DP096): `summarise = { by = "cell", after = 20, window = "30s" }` — once a
/// group has sent `after` alerts of a kind through this stage, its further alerts of that kind are
/// folded into summary alerts: the first one opens a summary that collects every alert of the group
/// arriving within `window`, then continues through the stage as one alert standing for all of
/// them (its own premises plus a count). See `docs/model.md` for how the covered alerts are
/// accounted for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summarise {
    /// What "each cell" means.
    pub by: GroupBy,
    /// Alerts per group and kind that pass on their own before summarising starts.
    pub after: u32,
    /// How long a summary collects alerts before it is sent.
    pub window: Dur,
}

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

/// What a [`PriorityStage`] did with an arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit<T> {
    /// Nothing was waiting and service was free: it departs at this time, µs.
    Depart(u64),
    /// It waits.
    Queued,
    /// It waits, and this ordinary alert was pushed out of the full waiting room to make room.
    QueuedEvicting(T),
    /// The waiting room was full (of alerts it may not push out): it is lost.
    Overflow,
}

/// A stage whose waiting alerts are in two classes, the high class served first (FIFO within a
/// class). Service is the same as a [`StageQueue`]'s (servers × rate, or a token bucket), so with
/// every alert in one class it departs them exactly when the closed form does.
#[derive(Debug, Clone)]
pub struct PriorityStage<T> {
    kind: StageKind,
    interval_us: f64,
    tolerance_us: f64,
    tat_us: f64,
    free_us: Vec<f64>,
    high: VecDeque<(u64, T)>,
    low: VecDeque<(u64, T)>,
    capacity: usize,
    /// Alerts that overflowed or were pushed out.
    pub overflows: u64,
    /// Most alerts seen waiting at once.
    pub max_waiting: usize,
}

impl<T> PriorityStage<T> {
    /// A stage from its profile parameters.
    pub fn new(s: &Stage) -> Self {
        let interval_us = 1e6 / s.rate.0;
        PriorityStage {
            kind: s.kind,
            interval_us,
            tolerance_us: (f64::from(s.burst.0) - 1.0) * interval_us,
            tat_us: 0.0,
            free_us: vec![0.0; s.servers.0 as usize],
            high: VecDeque::new(),
            low: VecDeque::new(),
            capacity: s.capacity.0 as usize,
            overflows: 0,
            max_waiting: 0,
        }
    }

    /// Alerts waiting.
    pub fn waiting(&self) -> usize {
        self.high.len() + self.low.len()
    }

    /// The earliest time service is free (a server, or a token), µs.
    fn free_at(&self) -> f64 {
        match self.kind {
            StageKind::Queue => self.free_us.iter().copied().fold(f64::INFINITY, f64::min),
            StageKind::Bucket => self.tat_us - self.tolerance_us,
        }
    }

    /// Serves one alert starting at `start`: its departure, µs (not rounded).
    fn serve(&mut self, start: f64) -> f64 {
        match self.kind {
            StageKind::Queue => {
                let (i, _) = self.free_us.iter().copied().enumerate().fold(
                    (0, f64::INFINITY),
                    |b, (i, f)| if f < b.1 { (i, f) } else { b },
                );
                let depart = start + self.interval_us;
                self.free_us[i] = depart;
                depart
            }
            StageKind::Bucket => {
                self.tat_us = self.tat_us.max(start) + self.interval_us;
                start
            }
        }
    }

    /// `item` arrives at `at_us` in the high class or not.
    pub fn arrive(&mut self, at_us: u64, item: T, high: bool) -> Admit<T> {
        let at = at_us as f64;
        if self.waiting() == 0 && self.free_at() <= at {
            return Admit::Depart(self.serve(at).ceil() as u64);
        }
        let mut evicted = None;
        if self.waiting() >= self.capacity {
            match self.low.pop_back() {
                Some((_, low)) if high => evicted = Some(low),
                Some(back) => {
                    self.low.push_back(back);
                    self.overflows += 1;
                    return Admit::Overflow;
                }
                None => {
                    self.overflows += 1;
                    return Admit::Overflow;
                }
            }
            self.overflows += 1;
        }
        if high {
            self.high.push_back((at_us, item));
        } else {
            self.low.push_back((at_us, item));
        }
        self.max_waiting = self.max_waiting.max(self.waiting());
        match evicted {
            Some(e) => Admit::QueuedEvicting(e),
            None => Admit::Queued,
        }
    }

    /// The start time of the next waiting alert, µs (`None`: nobody waits).
    pub fn next_start_us(&self) -> Option<u64> {
        let at = self.high.front().or(self.low.front())?.0;
        Some((at as f64).max(self.free_at()).ceil() as u64)
    }

    /// Starts every waiting alert that can start by `now_us`, high class first: each with its
    /// departure time, µs.
    pub fn dispatch(&mut self, now_us: u64) -> Vec<(T, u64)> {
        let mut out = Vec::new();
        loop {
            let queue = if self.high.is_empty() {
                &mut self.low
            } else {
                &mut self.high
            };
            let Some(&(at, _)) = queue.front() else { break };
            let start = (at as f64).max(self.free_at());
            if start.ceil() as u64 > now_us {
                break;
            }
            let queue = if self.high.is_empty() {
                &mut self.low
            } else {
                &mut self.high
            };
            let Some((_, item)) = queue.pop_front() else {
                break;
            };
            let depart = self.serve(start);
            out.push((item, depart.ceil() as u64));
        }
        out
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

    /// Drives a priority stage like the network does: arrivals in time order, wake-ups when the
    /// next alert can start; returns (item, departure) in departure order.
    fn drive(kind: StageKind, arrivals: &[(u64, u32, bool)], capacity: u32) -> Vec<(u32, u64)> {
        let mut q = PriorityStage::new(&stage(kind, 10.0, 2, 3, capacity));
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let next_arrival = arrivals.get(i).map(|a| a.0);
            let arrival_first = match (next_arrival, q.next_start_us()) {
                (Some(a), Some(w)) => a <= w,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if arrival_first {
                let (at, item, high) = arrivals[i];
                i += 1;
                match q.arrive(at, item, high) {
                    Admit::Depart(d) => out.push((item, d)),
                    Admit::QueuedEvicting(e) => out.push((e, u64::MAX)),
                    Admit::Overflow => out.push((item, u64::MAX)),
                    Admit::Queued => {}
                }
            } else if let Some(w) = q.next_start_us() {
                out.extend(q.dispatch(w));
            }
        }
        out
    }

    #[test]
    fn one_class_departs_exactly_as_the_closed_form() {
        for kind in [StageKind::Queue, StageKind::Bucket] {
            let arrivals: Vec<(u64, u32, bool)> = (0..40u32)
                .map(|i| {
                    (
                        u64::from(i % 7) * 13_000 + u64::from(i / 7) * 90_001,
                        i,
                        false,
                    )
                })
                .collect();
            let mut sorted = arrivals.clone();
            sorted.sort();
            // Bucket and queue alike: a bucket ignores `servers`, a queue ignores `burst`.
            let mut closed = StageQueue::new(&stage(kind, 10.0, 2, 3, 1000));
            let mut want: Vec<(u32, u64)> = sorted
                .iter()
                .map(|&(at, i, _)| (i, closed.arrive(at).unwrap()))
                .collect();
            let mut got = drive(kind, &sorted, 1000);
            want.sort();
            got.sort();
            assert_eq!(got, want, "{kind:?}");
        }
    }

    #[test]
    fn the_high_class_overtakes_and_pushes_ordinary_alerts_out() {
        // One server at 10/s: item 0 is served at once, 1-3 wait; 9 arrives later in the high
        // class, overtakes them and, the room (3) being full, pushes out the newest ordinary one.
        let a = [
            (0, 0, false),
            (1, 1, false),
            (2, 2, false),
            (3, 3, false),
            (50_000, 9, true),
        ];
        let mut q = PriorityStage::new(&stage(StageKind::Queue, 10.0, 1, 1, 3));
        let mut got = Vec::new();
        for &(at, i, h) in &a {
            match q.arrive(at, i, h) {
                Admit::Depart(d) => got.push((i, d)),
                Admit::QueuedEvicting(e) => got.push((e, 0)),
                Admit::Overflow => got.push((i, 0)),
                Admit::Queued => {}
            }
        }
        assert_eq!(got, [(0, 100_000), (3, 0)], "3 pushed out");
        assert_eq!(q.next_start_us(), Some(100_000));
        assert_eq!(q.dispatch(100_000), [(9, 200_000)]);
        assert_eq!(q.dispatch(200_000), [(1, 300_000)]);
        assert_eq!(q.overflows, 1);
        assert_eq!(q.max_waiting, 3);
        // A full room of high-class alerts refuses another.
        let mut q = PriorityStage::new(&stage(StageKind::Queue, 10.0, 1, 1, 1));
        assert_eq!(q.arrive(0, 0, true), Admit::Depart(100_000));
        assert_eq!(q.arrive(0, 1, true), Admit::Queued);
        assert_eq!(q.arrive(0, 2, true), Admit::Overflow);
        assert_eq!(q.arrive(0, 3, false), Admit::Overflow);
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
