//! The Communications Hub as a sans-IO state machine.
//!
//! A [`HubMachine`] is told what happened (its scenario at start, then the network's replies) and
//! answers with decisions ([`Action`]s): transmit in this radio slot, attach to this cell at this
//! time, hand this alert to this route, the alert leaves the network at this time, give the alert up
//! with this cause. It keeps where each of its alerts stands ([`AlertState`]): still being worked on,
//! waiting to leave the network at a known time, or done. It never reads a clock, a socket or a
//! shared random generator: time arrives in the inputs and randomness comes from the hub's own PCGs
//! (one per alert kind), so the same seed gives the same decisions whatever drives it.
//!
//! The profile's access mechanism decides the behaviour. On shared radio a hub stays up on holdover
//! after the cut and contends on the radio channel inside the window the network allocates, retrying
//! with backoff; an alert not through before the holdover runs out is lost. On cellular a hub dies
//! with the power, reboots when it returns, dithers, re-attaches, and only then sends what it has.

use crate::profile::{Access, Cellular, Params, PraSource, Radio};
use crate::scenario::{HubScenario, STREAM_BEHAVIOUR, hub_rng};
use ledger::{AlertKind, LossCause, PerKind};
use rand::Rng;
use rand_pcg::Pcg32;

/// The transport path an alert takes after its access network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteId {
    /// POA.
    Poa,
    /// PRA sent by the CH.
    PraCh,
    /// PRA sent by the ESME.
    PraEsme,
}

/// A decision about one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Transmit on the shared radio `channel` in `slot`.
    Radio {
        /// Global channel index (cell × channels per cell + channel).
        channel: u32,
        /// Slot index (slot k spans [k·slot, (k+1)·slot)).
        slot: u64,
    },
    /// Attach to the cellular network of `cell` at `at_us` (decided for the whole hub, carried by
    /// the PRA; the POA travels with it when `with_poa`). `fails` is the hub's own draw for whether
    /// this attempt fails.
    Attach {
        /// Cell.
        cell: u32,
        /// Scenario time of the attach request, µs.
        at_us: u64,
        /// This attempt fails (drawn from the hub's generator with the profile's probability).
        fails: bool,
        /// The POA travels with this attach.
        with_poa: bool,
    },
    /// Enter transport `route` at `at_us` (no contention before it).
    Route {
        /// The route.
        route: RouteId,
        /// Scenario time, µs.
        at_us: u64,
    },
    /// The alert leaves the modelled DSP at this scenario time (µs): hand it to the endpoint then.
    Exit(u64),
    /// The alert is lost, decided at this scenario time (µs).
    Lose(LossCause, u64),
    /// The alert was folded into the summary alert of hub `carrier` (same kind) at `at_us`: its
    /// fate follows that summary's (see [`crate::sim::Event::Covered`]).
    Covered {
        /// The hub whose alert carries the summary.
        carrier: u32,
        /// When it was folded in, µs.
        at_us: u64,
    },
}

/// What the network answered about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The radio slot ending at `at_us` collided.
    Collided {
        /// End of the slot, µs.
        at_us: u64,
    },
    /// The attach attempt completed unsuccessfully at `at_us`.
    AttachFailed {
        /// When, µs.
        at_us: u64,
    },
    /// The alert leaves the DSP at `at_us`.
    Exit {
        /// When, µs.
        at_us: u64,
    },
    /// The alert was dropped in the transport.
    Lost {
        /// Why.
        cause: LossCause,
        /// When, µs.
        at_us: u64,
    },
    /// The alert was folded into the summary alert of hub `carrier` (hypothetical `summarise`).
    Covered {
        /// The hub whose alert carries the summary.
        carrier: u32,
        /// When, µs.
        at_us: u64,
    },
}

/// Decisions for the POA and the PRA.
pub type Decisions = PerKind<Option<Action>>;

/// Where one alert stands in its hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Not decided yet: the hub is working on it (a request is with the network, or it rides
    /// along with one).
    Pending,
    /// Leaves the modelled DSP at this scenario time (µs) and must then be handed to the endpoint.
    Exiting(u64),
    /// Handed over, lost or folded into a summary (or never raised: no POA for an outage under
    /// the threshold).
    Done,
}

/// One hub's state: its scenario, its generators and where each of its alerts stands.
#[derive(Debug, Clone)]
pub struct HubMachine {
    /// Its scenario.
    pub scen: HubScenario,
    holdover_end_us: u64,
    /// One generator per alert kind, so a change to the PRA path never perturbs POA draws.
    rng: PerKind<Pcg32>,
    attempts: PerKind<u8>,
    attach_attempts: u8,
    state: PerKind<AlertState>,
    handed_over: u8,
}

impl HubMachine {
    /// A hub for premises `hub` under `p` with run seed `seed`.
    pub fn new(p: &Params, seed: u64, hub: u32) -> Self {
        Self::with_scenario(p, seed, HubScenario::new(p, seed, hub))
    }

    /// A hub for the premises of `scen` under `p` with run seed `seed`.
    pub fn with_scenario(p: &Params, seed: u64, scen: HubScenario) -> Self {
        let hub = scen.hub;
        let mut rng = PerKind::new(
            hub_rng(seed, hub, STREAM_BEHAVIOUR),
            hub_rng(seed, hub, STREAM_BEHAVIOUR + 1),
        );
        let holdover_end_us = match &p.access {
            Access::Radio(r) => scen.cut_us + r.holdover.sample(&mut rng.poa),
            Access::Cellular(_) => scen.cut_us,
        };
        let poa = if scen.has_poa(p) {
            AlertState::Pending
        } else {
            AlertState::Done
        };
        HubMachine {
            scen,
            holdover_end_us,
            rng,
            attempts: PerKind::default(),
            attach_attempts: 0,
            state: PerKind::new(poa, AlertState::Pending),
            handed_over: 0,
        }
    }

    /// Where the alert of `kind` stands.
    pub fn state(&self, kind: AlertKind) -> AlertState {
        self.state[kind]
    }

    /// Has the alert of this kind got a final decision (exit time or loss)?
    pub fn is_done(&self, kind: AlertKind) -> bool {
        self.state[kind] != AlertState::Pending
    }

    /// The earliest exit time (µs) of an alert waiting to be handed over, if any.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.state
            .iter()
            .filter_map(|(_, s)| match *s {
                AlertState::Exiting(t) => Some(t),
                _ => None,
            })
            .min()
    }

    /// Hands the alert of `kind` over to the endpoint (its exit time has come): returns its
    /// per-hub sequence number (1 for the hub's first alert handed over), or `None` if the alert
    /// was not waiting to exit.
    pub fn hand_over(&mut self, kind: AlertKind) -> Option<u32> {
        if !matches!(self.state[kind], AlertState::Exiting(_)) {
            return None;
        }
        self.state[kind] = AlertState::Done;
        self.handed_over += 1;
        Some(u32::from(self.handed_over))
    }

    /// Is the hub powered (mains or holdover) at `t`?
    fn alive(&self, t: u64) -> bool {
        t < self.holdover_end_us || t >= self.scen.restore_us
    }

    /// Records a decision about `kind` in the alert's state and passes it on.
    fn decide(&mut self, kind: AlertKind, a: Action) -> Option<Action> {
        match a {
            Action::Exit(t) => self.state[kind] = AlertState::Exiting(t),
            Action::Lose(..) | Action::Covered { .. } => self.state[kind] = AlertState::Done,
            Action::Radio { .. } | Action::Attach { .. } | Action::Route { .. } => {}
        }
        Some(a)
    }

    /// The first decisions, at scenario start.
    pub fn start(&mut self, p: &Params) -> Decisions {
        let mut d = Decisions::default();
        match &p.access {
            Access::Radio(r) => {
                if self.state.poa == AlertState::Pending {
                    let t = self.scen.cut_us
                        + p.hub.poa_threshold.us()
                        + self.window_draw(r, AlertKind::Poa);
                    d.poa = self.radio_attempt(p, r, AlertKind::Poa, t);
                }
                d.pra = match p.hub.pra_source {
                    PraSource::Ch => {
                        let t = self.scen.restore_us + self.window_draw(r, AlertKind::Pra);
                        self.radio_attempt(p, r, AlertKind::Pra, t)
                    }
                    PraSource::Esme => Some(Action::Route {
                        route: RouteId::PraEsme,
                        at_us: self.scen.restore_us + p.hub.esme_delay.sample(&mut self.rng.pra),
                    }),
                };
            }
            Access::Cellular(c) => {
                let t = self.scen.restore_us + c.reboot.us() + c.dither.sample(&mut self.rng.pra);
                d.pra = Some(self.attach(c, t));
            }
        }
        d
    }

    fn window_draw(&mut self, r: &Radio, kind: AlertKind) -> u64 {
        let a = r.access(kind);
        a.window_start.us() + self.rng[kind].random_range(0..=a.window.us())
    }

    fn radio_attempt(&mut self, p: &Params, r: &Radio, kind: AlertKind, t: u64) -> Option<Action> {
        if kind == AlertKind::Poa && !self.alive(t) {
            return self.decide(
                kind,
                Action::Lose(LossCause::HoldoverExpired, self.holdover_end_us),
            );
        }
        let horizon = p.scenario.horizon.us();
        if t >= horizon {
            return self.decide(kind, Action::Lose(LossCause::NotDeliveredByEnd, horizon));
        }
        let per_cell = r.channels_per_cell.0;
        let channel = self.scen.cell * per_cell + self.rng[kind].random_range(0..per_cell);
        Some(Action::Radio {
            channel,
            slot: t / r.slot.us(),
        })
    }

    fn attach(&mut self, c: &Cellular, t: u64) -> Action {
        let fails = self.rng.pra.random::<f64>() < c.attach_failure.0;
        Action::Attach {
            cell: self.scen.cell,
            at_us: t,
            fails,
            with_poa: self.state.poa == AlertState::Pending,
        }
    }

    /// The network's reply about the alert of `kind`. A reply about an alert already decided is
    /// ignored.
    pub fn on_reply(&mut self, p: &Params, kind: AlertKind, reply: Reply) -> Decisions {
        let mut d = Decisions::default();
        if self.is_done(kind) {
            return d;
        }
        let horizon = p.scenario.horizon.us();
        match (reply, &p.access) {
            (Reply::Exit { at_us }, _) if at_us > horizon => {
                d[kind] = self.decide(kind, Action::Lose(LossCause::NotDeliveredByEnd, horizon));
            }
            (Reply::Exit { at_us }, _) => d[kind] = self.decide(kind, Action::Exit(at_us)),
            (Reply::Lost { cause, at_us }, _) => {
                d[kind] = self.decide(kind, Action::Lose(cause, at_us));
            }
            (Reply::Covered { carrier, at_us }, _) => {
                d[kind] = self.decide(kind, Action::Covered { carrier, at_us });
            }
            (Reply::Collided { at_us }, Access::Radio(r)) => {
                self.attempts[kind] = self.attempts[kind].saturating_add(1);
                let access = r.access(kind);
                if u32::from(self.attempts[kind]) >= access.max_attempts.0 {
                    d[kind] = self.decide(kind, Action::Lose(LossCause::Collision, at_us));
                } else {
                    let t = at_us
                        + r.ack_timeout.us()
                        + self.rng[kind].random_range(0..=access.backoff.us());
                    d[kind] = self.radio_attempt(p, r, kind, t);
                }
            }
            (Reply::AttachFailed { at_us }, Access::Cellular(c)) => {
                self.attach_attempts = self.attach_attempts.saturating_add(1);
                if u32::from(self.attach_attempts) >= c.attach_attempts.0 {
                    for k in AlertKind::ALL {
                        if !self.is_done(k) {
                            d[k] = self.decide(k, Action::Lose(LossCause::AttachFailure, at_us));
                        }
                    }
                } else {
                    d.pra = Some(self.attach(c, at_us + c.attach_retry.us()));
                }
            }
            // A reply about a mechanism this hub does not use cannot come from its network.
            (Reply::Collided { .. }, Access::Cellular(_))
            | (Reply::AttachFailed { .. }, Access::Radio(_)) => {}
        }
        d
    }
}
