//! The shaped CSP/DSP transport: radio slots, cellular attach, head-end, throttle, DSP lanes.
//!
//! [`NetworkCore`] is sans-IO. Driving contract (in the manner of quinn-proto's `Connection`):
//!
//! * **Inputs.** [`NetworkCore::submit`] takes a hub's request with the scenario time it is *for*
//!   (a radio slot, an attach time, a route entry time). [`NetworkCore::handle_timeout`]`(now)`
//!   resolves everything due at or before `now`.
//! * **Outputs.** [`NetworkCore::poll_reply`] yields the replies produced, each addressed to a hub
//!   and alert kind; call it until it returns `None` after every input.
//! * **Next wake-up.** [`NetworkCore::poll_timeout`] is the earliest scenario time at which
//!   something is due (`None`: nothing pending). Calling `handle_timeout` earlier does nothing.
//!
//! Slot *k* is resolved only once time has reached its end; every other step is a discrete event,
//! processed in (time, hub, kind) order. Results therefore depend only on the requests, never on
//! the order they were submitted in or on how the caller slices time. A request for a time that
//! has already been resolved (a caller bug, or a caller that fell behind) is moved to the first
//! open slot or time and counted in [`NetworkStats::late_requests`]. It never reads a clock.
//!
//! Two hypothetical stage options (not in DP096) act where an alert enters a stage: `summarise`
//! folds a group's alerts into summary alerts (the folded ones are answered
//! [`Reply::Covered`]), and `priority` serves the first alerts of each group ahead of the rest
//! ([`PriorityStage`]; it wakes itself when service frees).

use crate::channel::{ChannelStats, Tx, resolve_slot};
use crate::geo::Population;
use crate::hub::{Action, Reply, RouteId};
use crate::profile::{Access, Params, PraSource, Stage, StageKind, population};
use crate::stage::{Admit, GroupBy, Priority, PriorityStage, StageQueue, Summarise};
use ledger::{AlertKind, LossCause};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

/// What travels through the network after the access step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Hop {
    /// The hub's attach procedure in `cell` (carries the PRA, and the POA when `with_poa`).
    Attach {
        cell: u32,
        fails: bool,
        with_poa: bool,
    },
    /// Stage `hop` of `route`.
    Route { route: RouteId, hop: u8 },
    /// A summary alert leaves its collection window and enters stage `hop` of `route`.
    Release { route: RouteId, hop: u8 },
    /// A priority stage's next waiting alert can start.
    Wake { stage: u16 },
}

/// The `hub` of a stage's wake-up: after every alert event of the same instant, so the alerts
/// arriving at that instant are all waiting when the stage chooses whom to serve.
const STAGE_HUB: u32 = u32::MAX;

/// A pending step, ordered by (time, hub, kind) — the field order. A hub has at most one event per
/// alert kind in flight, so that order is total for alerts; stage wake-ups ([`STAGE_HUB`]) are
/// told apart by their stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ev {
    at_us: u64,
    hub: u32,
    kind: AlertKind,
    hop: Hop,
}

/// A reply and whom it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressed {
    /// The hub.
    pub hub: u32,
    /// The alert the reply is about.
    pub kind: AlertKind,
    /// The reply.
    pub reply: Reply,
}

/// Counters the network keeps about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Radio contention.
    pub radio: ChannelStats,
    /// Requests that arrived for a time the network had already resolved; they were moved to the
    /// first open slot or time.
    pub late_requests: u64,
    /// Largest backlog per stage name.
    pub max_waiting: BTreeMap<String, usize>,
    /// Overflows per stage name.
    pub overflows: BTreeMap<String, u64>,
}

/// The stages (indices into the stage list) of each route.
#[derive(Debug, Clone)]
struct Routes {
    poa: Vec<usize>,
    pra_ch: Vec<usize>,
    pra_esme: Vec<usize>,
}

impl Routes {
    fn get(&self, r: RouteId) -> &[usize] {
        match r {
            RouteId::Poa => &self.poa,
            RouteId::PraCh => &self.pra_ch,
            RouteId::PraEsme => &self.pra_esme,
        }
    }
}

/// An alert waiting in a priority stage, and where it goes after it.
#[derive(Debug, Clone, Copy)]
struct Held {
    hub: u32,
    kind: AlertKind,
    route: RouteId,
    hop: u8,
}

/// How a stage serves.
#[derive(Debug)]
enum Service {
    /// Closed form: FIFO.
    Plain(StageQueue),
    /// Two classes, woken when service frees.
    Priority {
        q: PriorityStage<Held>,
        rule: Priority,
        /// Alerts seen per (group, kind).
        seen: HashMap<(u32, AlertKind), u32>,
        /// The wake-up already scheduled, µs.
        wake_at: Option<u64>,
    },
}

/// An open summary: whose alert carries it and when its collection window closes.
#[derive(Debug, Clone, Copy)]
struct Batch {
    carrier: u32,
    closes_us: u64,
}

/// A stage's summarising state.
#[derive(Debug)]
struct Summariser {
    rule: Summarise,
    /// Alerts passed on their own per (group, kind).
    passed: HashMap<(u32, AlertKind), u32>,
    open: HashMap<(u32, AlertKind), Batch>,
}

/// One stage.
#[derive(Debug)]
struct StageState {
    service: Service,
    summarise: Option<Summariser>,
}

impl StageState {
    fn new(s: &Stage) -> Self {
        StageState {
            service: match s.priority {
                None => Service::Plain(StageQueue::new(s)),
                Some(rule) => Service::Priority {
                    q: PriorityStage::new(s),
                    rule,
                    seen: HashMap::new(),
                    wake_at: None,
                },
            },
            summarise: s.summarise.map(|rule| Summariser {
                rule,
                passed: HashMap::new(),
                open: HashMap::new(),
            }),
        }
    }

    fn max_waiting(&self) -> usize {
        match &self.service {
            Service::Plain(q) => q.max_waiting,
            Service::Priority { q, .. } => q.max_waiting,
        }
    }

    fn overflows(&self) -> u64 {
        match &self.service {
            Service::Plain(q) => q.overflows,
            Service::Priority { q, .. } => q.overflows,
        }
    }
}

/// The group (cell or outage index) of premises `hub`.
fn group(pop: &Population, by: GroupBy, hub: u32) -> u32 {
    match by {
        GroupBy::Cell => pop.cell_of(hub),
        GroupBy::Outage => pop.outage_index(hub) as u32,
    }
}

/// The sans-IO network model (see the module documentation for the driving contract).
#[derive(Debug)]
pub struct NetworkCore {
    slot_us: u64,
    radio: BTreeMap<u64, Vec<Tx>>,
    events: BinaryHeap<Reverse<Ev>>,
    names: Vec<String>,
    stages: Vec<StageState>,
    population: Population,
    routes: Routes,
    attach: Vec<StageQueue>,
    pra_route: RouteId,
    /// Scenario time through which everything has been resolved, µs.
    done_until: u64,
    horizon_us: u64,
    replies: VecDeque<Addressed>,
    stats: NetworkStats,
}

impl NetworkCore {
    /// The network of profile `p`.
    pub fn new(p: &Params) -> Self {
        let names: Vec<String> = p.stages.keys().cloned().collect();
        let stages = p.stages.values().map(StageState::new).collect();
        let population = population(p);
        let idx = |v: &Vec<String>| -> Vec<usize> {
            v.iter()
                .filter_map(|n| names.iter().position(|m| m == n))
                .collect()
        };
        let routes = Routes {
            poa: idx(&p.routes.poa),
            pra_ch: idx(&p.routes.pra_ch),
            pra_esme: idx(&p.routes.pra_esme),
        };
        let (slot_us, attach) = match &p.access {
            Access::Radio(r) => (r.slot.us().max(1), Vec::new()),
            Access::Cellular(c) => {
                // Attach capacity is a FIFO per cell with room for any backlog.
                let s = Stage::new(StageKind::Queue, c.attach_rate_per_cell.0, 1, 1, u32::MAX);
                let cells = (0..population.cells).map(|_| StageQueue::new(&s));
                (1, cells.collect())
            }
        };
        NetworkCore {
            slot_us,
            radio: BTreeMap::new(),
            events: BinaryHeap::new(),
            names,
            stages,
            population,
            routes,
            attach,
            pra_route: match p.hub.pra_source {
                PraSource::Ch => RouteId::PraCh,
                PraSource::Esme => RouteId::PraEsme,
            },
            done_until: 0,
            horizon_us: p.scenario.horizon.us(),
            replies: VecDeque::new(),
            stats: NetworkStats::default(),
        }
    }

    /// Takes hub `hub`'s request about its alert of `kind` (an attach is the PRA's request and
    /// carries the POA when `with_poa`). Final decisions ([`Action::Exit`], [`Action::Lose`]) are
    /// not requests and are ignored.
    pub fn submit(&mut self, hub: u32, kind: AlertKind, action: Action) {
        let (at_us, hop) = match action {
            Action::Radio { channel, slot } => {
                let mut slot = slot;
                if (slot + 1) * self.slot_us <= self.done_until {
                    self.stats.late_requests += 1;
                    slot = self.done_until / self.slot_us;
                }
                self.radio
                    .entry(slot)
                    .or_default()
                    .push(Tx { channel, hub, kind });
                return;
            }
            Action::Attach {
                cell,
                at_us,
                fails,
                with_poa,
            } => (
                at_us,
                Hop::Attach {
                    cell,
                    fails,
                    with_poa,
                },
            ),
            Action::Route { route, at_us } => (at_us, Hop::Route { route, hop: 0 }),
            Action::Exit(_) | Action::Lose(..) | Action::Covered { .. } => return,
        };
        let at_us = if at_us < self.done_until {
            self.stats.late_requests += 1;
            self.done_until
        } else {
            at_us
        };
        self.events.push(Reverse(Ev {
            at_us,
            hub,
            kind,
            hop,
        }));
    }

    /// Earliest scenario time at which something is due, µs (`None`: nothing pending).
    pub fn poll_timeout(&self) -> Option<u64> {
        let slot = self.radio.keys().next().map(|k| (k + 1) * self.slot_us);
        let ev = self.events.peek().map(|e| e.0.at_us);
        match (slot, ev) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Resolves everything due at or before scenario time `now_us`: slots whose end has come
    /// (before events at the same time) and events, in time order. Replies wait in
    /// [`NetworkCore::poll_reply`].
    pub fn handle_timeout(&mut self, now_us: u64) {
        loop {
            let slot_end = self.radio.keys().next().map(|k| (k + 1) * self.slot_us);
            let ev_at = self.events.peek().map(|e| e.0.at_us);
            match (slot_end, ev_at) {
                (Some(s), e) if s <= now_us && e.is_none_or(|e| s <= e) => self.resolve_next_slot(),
                (_, Some(e)) if e <= now_us => {
                    if let Some(Reverse(ev)) = self.events.pop() {
                        self.done_until = self.done_until.max(ev.at_us);
                        self.step(ev);
                    }
                }
                _ => break,
            }
        }
        self.done_until = self.done_until.max(now_us);
    }

    /// The next reply produced by [`NetworkCore::handle_timeout`].
    pub fn poll_reply(&mut self) -> Option<Addressed> {
        self.replies.pop_front()
    }

    fn reply(&mut self, hub: u32, kind: AlertKind, reply: Reply) {
        self.replies.push_back(Addressed { hub, kind, reply });
    }

    fn resolve_next_slot(&mut self) {
        let Some((slot, txs)) = self.radio.pop_first() else {
            return;
        };
        let end = (slot + 1) * self.slot_us;
        self.done_until = self.done_until.max(end);
        let mut through = Vec::new();
        let mut collided = Vec::new();
        resolve_slot(txs, &mut self.stats.radio, |tx, ok| {
            if ok {
                through.push(tx);
            } else {
                collided.push(tx);
            }
        });
        for tx in collided {
            self.reply(tx.hub, tx.kind, Reply::Collided { at_us: end });
        }
        for tx in through {
            let route = match tx.kind {
                AlertKind::Poa => RouteId::Poa,
                AlertKind::Pra => RouteId::PraCh,
            };
            self.events.push(Reverse(Ev {
                at_us: end,
                hub: tx.hub,
                kind: tx.kind,
                hop: Hop::Route { route, hop: 0 },
            }));
        }
    }

    fn step(&mut self, ev: Ev) {
        let Ev {
            at_us,
            hub,
            kind,
            hop,
        } = ev;
        match hop {
            Hop::Attach {
                cell,
                fails,
                with_poa,
            } => {
                // The per-cell attach queue has room for u32::MAX waiting: it never overflows.
                let done = self
                    .attach
                    .get_mut(cell as usize)
                    .and_then(|q| q.arrive(at_us))
                    .unwrap_or(at_us);
                if fails {
                    self.reply(hub, AlertKind::Pra, Reply::AttachFailed { at_us: done });
                    return;
                }
                let route = |route| Hop::Route { route, hop: 0 };
                if with_poa {
                    self.events.push(Reverse(Ev {
                        at_us: done,
                        hub,
                        kind: AlertKind::Poa,
                        hop: route(RouteId::Poa),
                    }));
                }
                self.events.push(Reverse(Ev {
                    at_us: done,
                    hub,
                    kind: AlertKind::Pra,
                    hop: route(self.pra_route),
                }));
            }
            Hop::Route { route, hop } => self.enter(at_us, hub, kind, route, hop, true),
            Hop::Release { route, hop } => self.enter(at_us, hub, kind, route, hop, false),
            Hop::Wake { stage } => self.wake(usize::from(stage), at_us),
        }
    }

    /// The alert enters stage `hop` of `route` at `at_us` (folded into a summary first when the
    /// stage summarises and `may_summarise`).
    fn enter(
        &mut self,
        at_us: u64,
        hub: u32,
        kind: AlertKind,
        route: RouteId,
        hop: u8,
        may_summarise: bool,
    ) {
        let stages = self.routes.get(route);
        let last = hop as usize + 1 == stages.len();
        let Some(&si) = stages.get(hop as usize) else {
            self.reply(hub, kind, Reply::Exit { at_us });
            return;
        };
        if may_summarise && self.summarise(si, at_us, hub, kind, route, hop) {
            return;
        }
        let pop = &self.population;
        let stage = &mut self.stages[si];
        let admitted = match &mut stage.service {
            Service::Plain(q) => match q.arrive(at_us) {
                Some(dep) => Admit::Depart(dep),
                None => Admit::Overflow,
            },
            Service::Priority { q, rule, seen, .. } => {
                let n = seen.entry((group(pop, rule.by, hub), kind)).or_insert(0);
                let high = *n < rule.first.0;
                *n = n.saturating_add(1);
                q.arrive(
                    at_us,
                    Held {
                        hub,
                        kind,
                        route,
                        hop,
                    },
                    high,
                )
            }
        };
        match admitted {
            Admit::Depart(dep) => self.depart(hub, kind, route, hop, dep, last),
            Admit::Queued => self.schedule_wake(si),
            Admit::QueuedEvicting(out) => {
                let cause = LossCause::QueueOverflow;
                self.reply(out.hub, out.kind, Reply::Lost { cause, at_us });
                self.schedule_wake(si);
            }
            Admit::Overflow => {
                let cause = LossCause::QueueOverflow;
                self.reply(hub, kind, Reply::Lost { cause, at_us });
            }
        }
    }

    /// Folds the alert into its group's summary if the stage summarises and the group has passed
    /// its share of alerts on their own; returns whether it did (the alert opened a summary, which
    /// re-enters the stage when its window closes, or joined an open one and is answered
    /// [`Reply::Covered`]).
    fn summarise(
        &mut self,
        si: usize,
        at_us: u64,
        hub: u32,
        kind: AlertKind,
        route: RouteId,
        hop: u8,
    ) -> bool {
        let pop = &self.population;
        let Some(sm) = self.stages[si].summarise.as_mut() else {
            return false;
        };
        let key = (group(pop, sm.rule.by, hub), kind);
        let passed = sm.passed.entry(key).or_insert(0);
        if *passed < sm.rule.after {
            *passed += 1;
            return false;
        }
        match sm.open.get(&key) {
            Some(b) if at_us < b.closes_us => {
                let carrier = b.carrier;
                self.reply(hub, kind, Reply::Covered { carrier, at_us });
            }
            _ => {
                let closes_us = at_us + sm.rule.window.us().max(1);
                sm.open.insert(
                    key,
                    Batch {
                        carrier: hub,
                        closes_us,
                    },
                );
                self.events.push(Reverse(Ev {
                    at_us: closes_us,
                    hub,
                    kind,
                    hop: Hop::Release { route, hop },
                }));
            }
        }
        true
    }

    /// The alert leaves a stage at `dep`: on to the next, or out of the network (the last stage's
    /// departure is the exit: reply now, so the hub knows when it leaves; past the horizon the
    /// alert cannot arrive in time: reply now too, and the hub records the loss, rather than
    /// simulating beyond the end of the run).
    fn depart(&mut self, hub: u32, kind: AlertKind, route: RouteId, hop: u8, dep: u64, last: bool) {
        if last || dep > self.horizon_us {
            self.reply(hub, kind, Reply::Exit { at_us: dep });
        } else {
            self.events.push(Reverse(Ev {
                at_us: dep,
                hub,
                kind,
                hop: Hop::Route {
                    route,
                    hop: hop + 1,
                },
            }));
        }
    }

    /// A priority stage's wake-up at `now_us`: starts whom it can, schedules the next wake-up.
    fn wake(&mut self, si: usize, now_us: u64) {
        let Service::Priority { q, wake_at, .. } = &mut self.stages[si].service else {
            return;
        };
        if *wake_at == Some(now_us) {
            *wake_at = None;
        }
        for (h, dep) in q.dispatch(now_us) {
            let last = h.hop as usize + 1 == self.routes.get(h.route).len();
            self.depart(h.hub, h.kind, h.route, h.hop, dep, last);
        }
        self.schedule_wake(si);
    }

    /// Schedules a priority stage's wake-up for when its next waiting alert can start (unless one
    /// is already due by then).
    fn schedule_wake(&mut self, si: usize) {
        let Service::Priority { q, wake_at, .. } = &mut self.stages[si].service else {
            return;
        };
        let Some(w) = q.next_start_us() else { return };
        if wake_at.is_some_and(|x| x <= w) {
            return;
        }
        *wake_at = Some(w);
        self.events.push(Reverse(Ev {
            at_us: w,
            hub: STAGE_HUB,
            kind: AlertKind::Poa,
            hop: Hop::Wake {
                stage: u16::try_from(si).unwrap_or(u16::MAX),
            },
        }));
    }

    /// Counters so far.
    pub fn stats(&self) -> NetworkStats {
        let mut s = self.stats.clone();
        for (n, q) in self.names.iter().zip(&self.stages) {
            s.max_waiting.insert(n.clone(), q.max_waiting());
            s.overflows.insert(n.clone(), q.overflows());
        }
        s
    }
}
