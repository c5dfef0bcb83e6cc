//! The discrete-event simulation of a whole population: every hub's machine and the network core.
//!
//! [`Simulation`] is sans-IO and owns no clock. Driving contract (in the manner of quinn-proto's
//! `Connection`):
//!
//! * **Input.** [`Simulation::handle_timeout`]`(t)` advances the model through scenario time `t`
//!   (µs): the network resolves what is due, hubs react to its replies (their new requests go
//!   straight back into the network), and alerts whose exit time has come are handed over.
//! * **Outputs.** [`Simulation::poll_event`] yields what happened, in the order it happened: an
//!   alert leaving the modelled network ([`Event::Exit`], to be handed to the endpoint at its
//!   `exit_ms`) or lost inside it ([`Event::Lost`]). Poll until `None` after [`Simulation::new`] and
//!   after every `handle_timeout`. Exits come out in non-decreasing `exit_ms`.
//! * **Next wake-up.** [`Simulation::poll_timeout`] is the earliest scenario time (µs) at which the
//!   model has something to do; `None` once everything is decided and handed over.
//!
//! Nothing the endpoint does feeds back into the model, so a driver may run the model ahead of the
//! clock: [`simulate`] runs it as fast as it can (virtual time), and the real-time driver
//! (`virtual-hubs`) runs it a bounded look-ahead ahead of the scaled clock and releases each exit at
//! its time. Both therefore produce the same decisions for the same seed.
//!
//! Per-alert scheduling state (pending, exiting at t, done) lives in each [`HubMachine`]; the
//! simulation keeps only a queue of the machines' exit times, and (with the hypothetical
//! `summarise` option) which alerts ride in which summary alert: when a summary alert leaves the
//! network, [`Event::Covered`] names each alert it stands for just before its [`Event::Exit`]; when
//! it is lost, they are lost with it, for the same cause.

use crate::hub::{Action, AlertState, Decisions, HubMachine};
use crate::network::{NetworkCore, NetworkStats};
use crate::profile::{Params, Profile};
use crate::scenario::HubScenario;
use ledger::{AlertCode, AlertId, AlertKind, Ledger, LedgerError, LossCause, Region};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// An alert that has crossed the modelled network and must now reach the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound {
    /// Run-unique alert id.
    pub id: AlertId,
    /// GBCS alert code.
    pub code: AlertCode,
    /// The hub's device id (EUI-64 style, see [`device_id`]).
    pub device_id: u64,
    /// CSP region the alert came through.
    pub region: Region,
    /// The csp-alert/1 region byte of that region (from its profile).
    pub region_code: u8,
    /// Scenario time of the event the alert reports (power cut or restoration), ms.
    pub event_ms: u64,
    /// Per-hub sequence number of this alert (1 for the first alert a hub hands over in the run).
    pub seq: u32,
    /// Scenario time at which the alert leaves the modelled DSP (its intended send time), ms.
    pub exit_ms: u64,
}

/// The device id of premises `hub` (EUI-64 style).
pub fn device_id(hub: u32) -> u64 {
    0x0012_4B00_0000_0000 | u64::from(hub)
}

/// What happened in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The alert leaves the modelled DSP: hand it to the endpoint at `exit_ms`.
    Exit(Outbound),
    /// The alert was lost inside the model (collision, holdover, attach, queue, horizon).
    Lost {
        /// The alert.
        id: AlertId,
        /// Why.
        cause: LossCause,
        /// Scenario time the loss was decided, ms.
        at_ms: u64,
    },
    /// The alert was never sent on its own: it rides in the summary alert `carrier`, which leaves
    /// the network next (its [`Event::Exit`] follows at once). Its fate is the summary's: when the
    /// endpoint acknowledges the summary, this alert is covered by it
    /// ([`LossCause::CoveredBySummary`], never "delivered"); when the summary is lost, so is this.
    Covered {
        /// The alert folded into the summary.
        id: AlertId,
        /// The summary alert that stands for it.
        carrier: AlertId,
    },
}

/// What a simulation reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimReport {
    /// Scenario time of the last thing the model did (last exit or decision), ms.
    pub end_ms: u64,
    /// Hubs simulated.
    pub hubs: u32,
    /// Alerts that left the modelled network (handed to the endpoint).
    pub submitted: u64,
    /// Alerts lost inside the model.
    pub lost_in_model: u64,
    /// Alerts folded into summary alerts that left the network (hypothetical `summarise`).
    pub covered: u64,
    /// The network's own counters (contention, late requests, backlogs).
    pub network: NetworkStats,
}

/// Every hub machine, the network core and the exits waiting for their time.
#[derive(Debug)]
pub struct Simulation {
    params: Params,
    region: Region,
    region_code: u8,
    hubs: Vec<HubMachine>,
    net: NetworkCore,
    /// (exit ms, hub, kind) of alerts waiting to be handed over.
    exits: BinaryHeap<Reverse<(u64, u32, AlertKind)>>,
    events: VecDeque<Event>,
    /// The hubs whose alert of a kind rides in the summary carried by (hub, kind).
    riders: HashMap<(u32, AlertKind), Vec<u32>>,
    last_us: u64,
    submitted: u64,
    lost: u64,
    covered: u64,
}

impl Simulation {
    /// The population of `profile` with run seed `seed`, every hub started (scenario time 0).
    pub fn new(profile: &Profile, seed: u64) -> Self {
        let params = profile.params().clone();
        let pop = profile.population();
        let n = pop.premises;
        let mut sim = Simulation {
            net: NetworkCore::new(&params),
            hubs: Vec::with_capacity(n as usize),
            region: profile.region(),
            region_code: profile.region_code(),
            exits: BinaryHeap::new(),
            events: VecDeque::new(),
            riders: HashMap::new(),
            last_us: 0,
            submitted: 0,
            lost: 0,
            covered: 0,
            params,
        };
        for hub in 0..n {
            let scen = HubScenario::in_population(&pop, seed, hub);
            let mut m = HubMachine::with_scenario(&sim.params, seed, scen);
            let d = m.start(&sim.params);
            sim.hubs.push(m);
            sim.apply(hub, d);
        }
        sim
    }

    /// Declares every alert the scenario must produce in `ledger` (one POA per outage of the
    /// threshold or longer, one PRA per restoration).
    pub fn expect(&self, ledger: &mut Ledger) -> Result<(), LedgerError> {
        self.hubs
            .iter()
            .try_for_each(|m| m.scen.expect(&self.params, ledger))
    }

    /// Earliest scenario time (µs) at which the model has something to do; `None` when done.
    pub fn poll_timeout(&self) -> Option<u64> {
        let exit = self.exits.peek().map(|Reverse((ms, _, _))| ms * 1000);
        match (self.net.poll_timeout(), exit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances the model through scenario time `now_us`.
    pub fn handle_timeout(&mut self, now_us: u64) {
        while let Some(t) = self.poll_timeout().filter(|&t| t <= now_us) {
            self.net.handle_timeout(t);
            while let Some(r) = self.net.poll_reply() {
                let m = &mut self.hubs[r.hub as usize];
                let d = m.on_reply(&self.params, r.kind, r.reply);
                self.apply(r.hub, d);
            }
            while let Some(&Reverse((ms, hub, kind))) = self.exits.peek() {
                if ms * 1000 > t {
                    break;
                }
                self.exits.pop();
                self.hand_over(hub, kind, ms);
            }
            self.last_us = self.last_us.max(t);
        }
    }

    /// The next thing that happened, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Counters so far.
    pub fn report(&self) -> SimReport {
        SimReport {
            end_ms: self.last_us / 1000,
            hubs: self.hubs.len() as u32,
            submitted: self.submitted,
            lost_in_model: self.lost,
            covered: self.covered,
            network: self.net.stats(),
        }
    }

    fn apply(&mut self, hub: u32, d: Decisions) {
        for kind in AlertKind::ALL {
            let Some(a) = d[kind] else { continue };
            match a {
                Action::Exit(t) => self.exits.push(Reverse((t.div_ceil(1000), hub, kind))),
                Action::Lose(cause, at_us) => {
                    self.last_us = self.last_us.max(at_us);
                    // A lost summary takes the alerts riding in it along.
                    let riders = self.riders.remove(&(hub, kind)).unwrap_or_default();
                    for h in std::iter::once(hub).chain(riders) {
                        self.lost += 1;
                        self.events.push_back(Event::Lost {
                            id: AlertId::new(h, kind),
                            cause,
                            at_ms: at_us / 1000,
                        });
                    }
                }
                Action::Covered { carrier, .. } => {
                    self.riders.entry((carrier, kind)).or_default().push(hub);
                }
                Action::Radio { .. } | Action::Attach { .. } | Action::Route { .. } => {
                    self.net.submit(hub, kind, a);
                }
            }
        }
    }

    fn hand_over(&mut self, hub: u32, kind: AlertKind, exit_ms: u64) {
        let m = &mut self.hubs[hub as usize];
        debug_assert!(matches!(m.state(kind), AlertState::Exiting(_)));
        let Some(seq) = m.hand_over(kind) else { return };
        let scen = &m.scen;
        let (code, event_us) = match kind {
            AlertKind::Poa => (AlertCode::Ad1, scen.cut_us),
            AlertKind::Pra => (scen.pra_code(&self.params), scen.restore_us),
        };
        self.submitted += 1;
        let carrier = AlertId::new(hub, kind);
        for h in self.riders.remove(&(hub, kind)).unwrap_or_default() {
            self.covered += 1;
            self.events.push_back(Event::Covered {
                id: AlertId::new(h, kind),
                carrier,
            });
        }
        self.events.push_back(Event::Exit(Outbound {
            id: AlertId::new(hub, kind),
            code,
            device_id: device_id(hub),
            region: self.region,
            region_code: self.region_code,
            event_ms: event_us / 1000,
            seq,
            exit_ms,
        }));
    }
}

/// Why a simulation could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The model gave an alert a second fate or one it never expected: a model bug.
    #[error("the model broke the one-fate rule: {0}")]
    Ledger(#[from] LedgerError),
}

/// Runs `profile` with seed `seed` on virtual time, acknowledging every alert the moment it leaves
/// the modelled network, and closes the ledger at the horizon. The same seed gives the same ledger
/// every time.
///
/// A summary alert's acknowledgement is its own delivery; each alert riding in it is then recorded
/// as [`LossCause::CoveredBySummary`] at that time: never delivered on its own, and known to the
/// endpoint only as part of the summary's count.
pub fn simulate(profile: &Profile, seed: u64) -> Result<(Ledger, SimReport), SimError> {
    let mut sim = Simulation::new(profile, seed);
    let mut ledger = Ledger::new(profile.premises());
    sim.expect(&mut ledger)?;
    let mut riding: HashMap<AlertId, Vec<AlertId>> = HashMap::new();
    loop {
        while let Some(e) = sim.poll_event() {
            match e {
                Event::Exit(a) => {
                    ledger.deliver(a.id, a.exit_ms)?;
                    for id in riding.remove(&a.id).unwrap_or_default() {
                        ledger.lose(id, LossCause::CoveredBySummary, a.exit_ms)?;
                    }
                }
                Event::Lost { id, cause, at_ms } => ledger.lose(id, cause, at_ms)?,
                Event::Covered { id, carrier } => riding.entry(carrier).or_default().push(id),
            }
        }
        match sim.poll_timeout() {
            Some(t) => sim.handle_timeout(t),
            None => break,
        }
    }
    ledger.finish(profile.horizon_ms());
    Ok((ledger, sim.report()))
}
