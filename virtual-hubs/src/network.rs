//! The shaped CSP/DSP transport: radio slots, cellular attach, head-end, throttle, DSP lanes.
//!
//! [`NetworkCore`] is sans-IO: hubs' requests go in with the scenario time they are *for* (always in
//! the future of the hub's own decision), and [`NetworkCore::process_until`] advances the model to a
//! safe scenario time, emitting replies. Slot *k* is resolved only once time has passed its end; all
//! downstream stages are a discrete-event pass in (time, hub, kind) order, so results depend only on
//! the requests, never on the order tasks happened to submit them or on wall-clock jitter.
//! [`run_network`] is the thin tokio driver around it.

use crate::channel::{ChannelStats, Tx, resolve_slot};
use crate::clock::ScenarioClock;
use crate::hub::{Action, Reply, RouteId};
use crate::profile::{Params, PraSource, Stage, StageKind};
use crate::stage::StageQueue;
use crate::units::{NonZeroCount, PositiveRate};
use ledger::{AlertKind, LossCause};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use tokio::sync::mpsc;

/// What travels through the network after the access step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Hop {
    /// The hub's attach procedure in `cell` (carries both alerts).
    Attach { cell: u32, fails: bool },
    /// Stage `hop` of `route`.
    Route { route: RouteId, hop: u8 },
}

struct Ev<T> {
    at_us: u64,
    hub: u32,
    kind: u8,
    hop: Hop,
    tokens: [Option<T>; 2],
}

impl<T> Ev<T> {
    fn key(&self) -> (u64, u32, u8, Hop) {
        (self.at_us, self.hub, self.kind, self.hop)
    }
}
impl<T> PartialEq for Ev<T> {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl<T> Eq for Ev<T> {}
impl<T> PartialOrd for Ev<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Ev<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(&o.key())
    }
}

/// Counters the network keeps about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Radio contention.
    pub radio: ChannelStats,
    /// Requests that arrived for a time the network had already resolved (real-time mode only:
    /// a hub task so late that it missed the grace); they were moved to the first open time.
    pub late_requests: u64,
    /// Largest backlog per stage name.
    pub max_waiting: BTreeMap<String, usize>,
    /// Overflows per stage name.
    pub overflows: BTreeMap<String, u64>,
}

/// The sans-IO network model, generic over the reply handle `T`.
pub struct NetworkCore<T> {
    slot_us: u64,
    radio: BTreeMap<u64, Vec<Tx<[Option<T>; 2]>>>,
    events: BinaryHeap<Reverse<Ev<T>>>,
    names: Vec<String>,
    stages: Vec<StageQueue>,
    routes: [Vec<usize>; 3],
    attach: Vec<StageQueue>,
    pra_route: RouteId,
    done_until: u64,
    horizon_us: u64,
    stats: NetworkStats,
}

impl<T> NetworkCore<T> {
    /// The network of profile `p`.
    pub fn new(p: &Params) -> Self {
        let names: Vec<String> = p.stages.keys().cloned().collect();
        let stages = p.stages.values().map(StageQueue::new).collect();
        let idx = |v: &Vec<String>| -> Vec<usize> {
            v.iter()
                .filter_map(|n| names.iter().position(|m| m == n))
                .collect()
        };
        let routes = [
            idx(&p.routes.poa),
            idx(&p.routes.pra_ch),
            idx(&p.routes.pra_esme),
        ];
        let attach = match &p.cellular {
            Some(c) => {
                let s = Stage {
                    kind: StageKind::Queue,
                    rate: PositiveRate(c.attach_rate_per_cell.0),
                    servers: NonZeroCount(1),
                    burst: NonZeroCount(1),
                    capacity: NonZeroCount(u32::MAX),
                };
                (0..p.scenario.cells.0)
                    .map(|_| StageQueue::new(&s))
                    .collect()
            }
            None => Vec::new(),
        };
        NetworkCore {
            slot_us: p.radio.as_ref().map_or(100_000, |r| r.slot.us().max(1)),
            radio: BTreeMap::new(),
            events: BinaryHeap::new(),
            names,
            stages,
            routes,
            attach,
            pra_route: match p.hub.pra_source {
                PraSource::Ch => RouteId::PraCh,
                PraSource::Esme => RouteId::PraEsme,
            },
            done_until: 0,
            horizon_us: p.scenario.horizon.us(),
            stats: NetworkStats::default(),
        }
    }

    /// Takes a hub's request. `tokens[kind]` receives the reply about that alert (an attach carries
    /// both; the POA's is dropped if the attach fails).
    pub fn submit(&mut self, hub: u32, kind: AlertKind, action: Action, tokens: [Option<T>; 2]) {
        let k = kind as u8;
        match action {
            Action::Radio { channel, slot } => {
                let mut slot = slot;
                if (slot + 1) * self.slot_us <= self.done_until {
                    self.stats.late_requests += 1;
                    slot = self.done_until / self.slot_us;
                }
                self.radio.entry(slot).or_default().push(Tx {
                    channel,
                    hub,
                    kind: k,
                    token: tokens,
                });
            }
            Action::Attach {
                cell, at_us, fails, ..
            } => {
                let at_us = self.clamp(at_us);
                self.events.push(Reverse(Ev {
                    at_us,
                    hub,
                    kind: k,
                    hop: Hop::Attach { cell, fails },
                    tokens,
                }));
            }
            Action::Route { route, at_us } => {
                let at_us = self.clamp(at_us);
                self.events.push(Reverse(Ev {
                    at_us,
                    hub,
                    kind: k,
                    hop: Hop::Route { route, hop: 0 },
                    tokens,
                }));
            }
            Action::Exit(_) | Action::Lose(..) => {}
        }
    }

    fn clamp(&mut self, at_us: u64) -> u64 {
        if at_us < self.done_until {
            self.stats.late_requests += 1;
            self.done_until
        } else {
            at_us
        }
    }

    /// Earliest scenario time at which something is due, µs.
    pub fn next_due(&self) -> Option<u64> {
        let slot = self.radio.keys().next().map(|k| (k + 1) * self.slot_us);
        let ev = self.events.peek().map(|e| e.0.at_us);
        match (slot, ev) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Nothing pending.
    pub fn is_idle(&self) -> bool {
        self.radio.is_empty() && self.events.is_empty()
    }

    /// Advances the model through scenario time `safe_us`, pushing `(handle, reply)` pairs to `out`.
    pub fn process_until(&mut self, safe_us: u64, out: &mut Vec<(T, Reply)>) {
        loop {
            let slot_end = self.radio.keys().next().map(|k| (k + 1) * self.slot_us);
            let ev_at = self.events.peek().map(|e| e.0.at_us);
            let take_slot = match (slot_end, ev_at) {
                (Some(s), Some(e)) => s <= e && s <= safe_us,
                (Some(s), None) => s <= safe_us,
                _ => false,
            };
            if take_slot {
                let Some((slot, txs)) = self.radio.pop_first() else {
                    break;
                };
                let end = (slot + 1) * self.slot_us;
                self.done_until = self.done_until.max(end);
                let mut ok_list = Vec::new();
                resolve_slot(txs, &mut self.stats.radio, |tx, ok| {
                    if ok {
                        ok_list.push(tx);
                    } else {
                        let [a, b] = tx.token;
                        if let Some(t) = a.or(b) {
                            out.push((t, Reply::Collided { at_us: end }));
                        }
                    }
                });
                for tx in ok_list {
                    let route = if tx.kind == 0 {
                        RouteId::Poa
                    } else {
                        RouteId::PraCh
                    };
                    self.events.push(Reverse(Ev {
                        at_us: end,
                        hub: tx.hub,
                        kind: tx.kind,
                        hop: Hop::Route { route, hop: 0 },
                        tokens: tx.token,
                    }));
                }
                continue;
            }
            match ev_at {
                Some(e) if e <= safe_us => {}
                _ => break,
            }
            let Some(Reverse(ev)) = self.events.pop() else {
                break;
            };
            self.done_until = self.done_until.max(ev.at_us);
            self.step(ev, out);
        }
        self.done_until = self.done_until.max(safe_us);
    }

    fn step(&mut self, ev: Ev<T>, out: &mut Vec<(T, Reply)>) {
        let Ev {
            at_us,
            hub,
            kind,
            hop,
            mut tokens,
        } = ev;
        match hop {
            Hop::Attach { cell, fails } => {
                let done = self
                    .attach
                    .get_mut(cell as usize)
                    .and_then(|q| q.arrive(at_us))
                    .unwrap_or(at_us);
                if fails {
                    if let Some(t) = tokens[1].take() {
                        out.push((t, Reply::AttachFailed { at_us: done }));
                    }
                    return;
                }
                let [poa, pra] = tokens;
                if poa.is_some() {
                    self.events.push(Reverse(Ev {
                        at_us: done,
                        hub,
                        kind: 0,
                        hop: Hop::Route {
                            route: RouteId::Poa,
                            hop: 0,
                        },
                        tokens: [poa, None],
                    }));
                }
                self.events.push(Reverse(Ev {
                    at_us: done,
                    hub,
                    kind: 1,
                    hop: Hop::Route {
                        route: self.pra_route,
                        hop: 0,
                    },
                    tokens: [None, pra],
                }));
            }
            Hop::Route { route, hop } => {
                let stages = &self.routes[route as usize];
                let token = tokens[kind as usize].take().or_else(|| {
                    let [a, b] = tokens;
                    a.or(b)
                });
                let Some(token) = token else { return };
                match stages.get(hop as usize) {
                    None => out.push((token, Reply::Exit { at_us })),
                    Some(&si) => match self.stages[si].arrive(at_us) {
                        // The last stage's departure is the exit: reply now, so the hub can sleep
                        // until it instead of learning it a grace period late. Past the horizon the
                        // alert cannot arrive in time: reply now too (the hub records the loss)
                        // rather than simulating beyond the end of the run.
                        Some(dep) if hop as usize + 1 == stages.len() || dep > self.horizon_us => {
                            out.push((token, Reply::Exit { at_us: dep }));
                        }
                        Some(dep) => {
                            let mut tokens = [None, None];
                            tokens[kind as usize] = Some(token);
                            self.events.push(Reverse(Ev {
                                at_us: dep,
                                hub,
                                kind,
                                hop: Hop::Route {
                                    route,
                                    hop: hop + 1,
                                },
                                tokens,
                            }));
                        }
                        None => out.push((
                            token,
                            Reply::Lost {
                                cause: LossCause::QueueOverflow,
                                at_us,
                            },
                        )),
                    },
                }
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> NetworkStats {
        let mut s = self.stats.clone();
        for (n, q) in self.names.iter().zip(&self.stages) {
            s.max_waiting.insert(n.clone(), q.max_waiting);
            s.overflows.insert(n.clone(), q.overflows);
        }
        s
    }
}

/// A hub's request as sent to the network task.
pub struct Msg<T> {
    /// Hub index.
    pub hub: u32,
    /// Alert the request is about.
    pub kind: AlertKind,
    /// The request.
    pub action: Action,
    /// Reply handles per kind.
    pub tokens: [Option<T>; 2],
}

/// Reply handle used by the tokio driver.
pub type ReplyTx = tokio::sync::oneshot::Sender<Reply>;

/// The network task: takes requests from `rx`, resolves scenario time up to `now − grace`, replies.
/// Ends when every sender is gone and nothing is pending.
pub async fn run_network(
    mut core: NetworkCore<ReplyTx>,
    mut rx: mpsc::UnboundedReceiver<Msg<ReplyTx>>,
    clock: ScenarioClock,
    grace_us: u64,
) -> NetworkStats {
    let mut out = Vec::new();
    let mut open = true;
    loop {
        while let Ok(m) = rx.try_recv() {
            core.submit(m.hub, m.kind, m.action, m.tokens);
        }
        let safe = clock.now_us().saturating_sub(grace_us);
        core.process_until(safe, &mut out);
        for (t, r) in out.drain(..) {
            let _ = t.send(r);
        }
        let due = core.next_due();
        if !open && due.is_none() {
            break;
        }
        match (open, due) {
            (true, Some(t)) => {
                let wake = clock.instant_at_us(t + grace_us);
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(m) => core.submit(m.hub, m.kind, m.action, m.tokens),
                        None => open = false,
                    },
                    _ = tokio::time::sleep_until(wake) => {}
                }
            }
            (true, None) => match rx.recv().await {
                Some(m) => core.submit(m.hub, m.kind, m.action, m.tokens),
                None => open = false,
            },
            (false, Some(t)) => tokio::time::sleep_until(clock.instant_at_us(t + grace_us)).await,
            (false, None) => break,
        }
    }
    core.stats()
}
