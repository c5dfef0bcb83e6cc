//! The Communications Hub as a sans-IO state machine.
//!
//! A [`HubMachine`] is told what happened (its scenario at start, then the network's replies) and
//! answers with decisions ([`Action`]s): transmit in this radio slot, attach to this cell at this
//! time, hand this alert to this route, give the alert up with this cause. It never reads a clock, a
//! socket or a shared random generator: time arrives in the inputs and randomness comes from the
//! hub's own 16-byte PCG, so the same seed gives the same decisions whatever the task schedule.
//!
//! North hubs stay up on holdover after the cut and contend on the radio channel inside the window
//! the network allocates, retrying with backoff; an alert not through before the holdover runs out is
//! lost. Central & South hubs die with the power, reboot when it returns, dither, re-attach, and only
//! then send what they have.

use crate::profile::{Params, PraSource};
use crate::scenario::{HubScenario, STREAM_BEHAVIOUR, hub_rng};
use ledger::{AlertKind, LossCause, Region};
use rand::Rng;
use rand_pcg::Pcg32;

/// The transport path an alert takes after its access network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteId {
    /// POA.
    Poa = 0,
    /// PRA sent by the CH.
    PraCh = 1,
    /// PRA sent by the ESME.
    PraEsme = 2,
}

/// A decision about one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Transmit on the shared radio `channel` in `slot` (North).
    Radio {
        /// Global channel index (cell × channels per cell + channel).
        channel: u32,
        /// Slot index (slot k spans [k·slot, (k+1)·slot)).
        slot: u64,
    },
    /// Attach to the cellular network of `cell` at `at_us` (C&S; decided for the whole hub, carried
    /// by the PRA; the POA follows it when `with_poa`). `fails` is the hub's own draw for whether this
    /// attempt fails.
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
    /// The alert leaves the modelled DSP at `exit_us`: hand it to the sink then.
    Exit(u64),
    /// The alert is lost.
    Lose(LossCause, u64),
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
}

/// Decisions for the POA and the PRA (index by [`kind_index`]).
pub type Decisions = [Option<Action>; 2];

/// Index of a kind in [`Decisions`].
pub fn kind_index(kind: AlertKind) -> usize {
    match kind {
        AlertKind::Poa => 0,
        AlertKind::Pra => 1,
    }
}

/// One hub's state: about 80 bytes.
#[derive(Debug, Clone)]
pub struct HubMachine {
    /// Its scenario.
    pub scen: HubScenario,
    holdover_end_us: u64,
    /// One generator per alert kind, so a change to the PRA path never perturbs POA draws.
    rng: [Pcg32; 2],
    attempts: [u8; 2],
    attach_attempts: u8,
    done: [bool; 2],
}

impl HubMachine {
    /// A hub for premises `hub` under `p` with run seed `seed`.
    pub fn new(p: &Params, seed: u64, hub: u32) -> Self {
        let scen = HubScenario::new(p, seed, hub);
        let mut rng = [
            hub_rng(seed, hub, STREAM_BEHAVIOUR),
            hub_rng(seed, hub, STREAM_BEHAVIOUR + 1),
        ];
        let holdover_end_us = match &p.radio {
            Some(r) if p.region == Region::North => scen.cut_us + r.holdover.sample(&mut rng[0]),
            _ => scen.cut_us,
        };
        let has_poa = scen.has_poa(p);
        HubMachine {
            scen,
            holdover_end_us,
            rng,
            attempts: [0; 2],
            attach_attempts: 0,
            done: [!has_poa, false],
        }
    }

    /// Is the hub powered (mains or holdover) at `t`?
    fn alive(&self, t: u64) -> bool {
        t < self.holdover_end_us || t >= self.scen.restore_us
    }

    /// Has the alert of this kind got a final decision (exit or loss)?
    pub fn is_done(&self, kind: AlertKind) -> bool {
        self.done[kind_index(kind)]
    }

    fn finish(&mut self, kind: AlertKind, a: Action) -> Option<Action> {
        if matches!(a, Action::Exit(_) | Action::Lose(..)) {
            self.done[kind_index(kind)] = true;
        }
        Some(a)
    }

    /// The first decisions, at scenario start.
    pub fn start(&mut self, p: &Params) -> Decisions {
        let mut d: Decisions = [None, None];
        match p.region {
            Region::North => {
                if !self.done[0] {
                    let t = self.scen.cut_us
                        + p.hub.poa_threshold.us()
                        + self.window_draw(p, AlertKind::Poa);
                    d[0] = self.radio_attempt(p, AlertKind::Poa, t);
                }
                d[1] = match p.hub.pra_source {
                    PraSource::Ch => {
                        let t = self.scen.restore_us + self.window_draw(p, AlertKind::Pra);
                        self.radio_attempt(p, AlertKind::Pra, t)
                    }
                    PraSource::Esme => Some(Action::Route {
                        route: RouteId::PraEsme,
                        at_us: self.scen.restore_us + p.hub.esme_delay.sample(&mut self.rng[1]),
                    }),
                };
            }
            Region::CentralSouth => {
                if let Some(c) = &p.cellular {
                    let t =
                        self.scen.restore_us + c.reboot.us() + c.dither.sample(&mut self.rng[1]);
                    d[1] = Some(self.attach(p, t));
                }
            }
        }
        d
    }

    fn window_draw(&mut self, p: &Params, kind: AlertKind) -> u64 {
        let Some(r) = &p.radio else { return 0 };
        let a = match kind {
            AlertKind::Poa => &r.poa,
            AlertKind::Pra => &r.pra,
        };
        a.window_start.us() + self.rng[kind_index(kind)].random_range(0..=a.window.us())
    }

    fn radio_attempt(&mut self, p: &Params, kind: AlertKind, t: u64) -> Option<Action> {
        let r = p.radio.as_ref()?;
        if kind == AlertKind::Poa && !self.alive(t) {
            return self.finish(
                kind,
                Action::Lose(LossCause::HoldoverExpired, self.holdover_end_us),
            );
        }
        let horizon = p.scenario.horizon.us();
        if t >= horizon {
            return self.finish(kind, Action::Lose(LossCause::NotDeliveredByEnd, horizon));
        }
        let per_cell = r.channels_per_cell.0;
        let channel =
            self.scen.cell * per_cell + self.rng[kind_index(kind)].random_range(0..per_cell);
        Some(Action::Radio {
            channel,
            slot: t / r.slot.us(),
        })
    }

    fn attach(&mut self, p: &Params, t: u64) -> Action {
        let fails = p
            .cellular
            .as_ref()
            .is_some_and(|c| self.rng[1].random::<f64>() < c.attach_failure.0);
        Action::Attach {
            cell: self.scen.cell,
            at_us: t,
            fails,
            with_poa: !self.done[0],
        }
    }

    fn route_after_access(&self, p: &Params, kind: AlertKind) -> RouteId {
        match (kind, p.hub.pra_source) {
            (AlertKind::Poa, _) => RouteId::Poa,
            (AlertKind::Pra, PraSource::Ch) => RouteId::PraCh,
            (AlertKind::Pra, PraSource::Esme) => RouteId::PraEsme,
        }
    }

    /// The route an alert takes once it has crossed the access network (radio or attach).
    pub fn route_of(&self, p: &Params, kind: AlertKind) -> RouteId {
        self.route_after_access(p, kind)
    }

    /// The network's reply about the alert of `kind`.
    pub fn on_reply(&mut self, p: &Params, kind: AlertKind, reply: Reply) -> Decisions {
        let mut d: Decisions = [None, None];
        let k = kind_index(kind);
        if self.done[k] {
            return d;
        }
        let horizon = p.scenario.horizon.us();
        match reply {
            Reply::Exit { at_us } if at_us > horizon => {
                d[k] = self.finish(kind, Action::Lose(LossCause::NotDeliveredByEnd, horizon));
            }
            Reply::Exit { at_us } => d[k] = self.finish(kind, Action::Exit(at_us)),
            Reply::Lost { cause, at_us } => d[k] = self.finish(kind, Action::Lose(cause, at_us)),
            Reply::Collided { at_us } => {
                let Some(r) = &p.radio else { return d };
                self.attempts[k] = self.attempts[k].saturating_add(1);
                let access = match kind {
                    AlertKind::Poa => &r.poa,
                    AlertKind::Pra => &r.pra,
                };
                if u32::from(self.attempts[k]) >= access.max_attempts.0 {
                    d[k] = self.finish(kind, Action::Lose(LossCause::Collision, at_us));
                } else {
                    let t = at_us
                        + r.ack_timeout.us()
                        + self.rng[k].random_range(0..=access.backoff.us());
                    d[k] = self.radio_attempt(p, kind, t);
                }
            }
            Reply::AttachFailed { at_us } => {
                let Some(c) = &p.cellular else { return d };
                self.attach_attempts = self.attach_attempts.saturating_add(1);
                if u32::from(self.attach_attempts) >= c.attach_attempts.0 {
                    for kind in AlertKind::ALL {
                        if !self.done[kind_index(kind)] {
                            d[kind_index(kind)] =
                                self.finish(kind, Action::Lose(LossCause::AttachFailure, at_us));
                        }
                    }
                } else {
                    d[1] = Some(self.attach(p, at_us + c.attach_retry.us()));
                }
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;
    use std::path::PathBuf;

    fn params(rel: &str) -> Params {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../profiles")
            .join(rel);
        Profile::load(&path).unwrap().params().clone()
    }

    #[test]
    fn a_north_hub_contends_inside_its_window_and_gives_up_on_holdover() {
        let p = params("north/current.toml");
        let mut m = HubMachine::new(&p, 1, 7);
        let d = m.start(&p);
        let Some(Action::Radio { slot, .. }) = d[0] else {
            panic!("POA starts on the radio: {d:?}")
        };
        let t = slot * 100_000;
        assert!(
            (180_000_000..=420_000_000).contains(&t),
            "window 3-7 min: {t}"
        );
        assert!(matches!(
            d[1],
            Some(Action::Route {
                route: RouteId::PraEsme,
                ..
            })
        ));
        // A collision reported after the holdover has run out loses the POA to holdover expiry.
        let late = m.on_reply(&p, AlertKind::Poa, Reply::Collided { at_us: 720_000_000 });
        assert!(matches!(d[0], Some(Action::Radio { .. })));
        assert!(
            matches!(late[0], Some(Action::Lose(LossCause::HoldoverExpired, _))),
            "{late:?}"
        );
        assert!(m.is_done(AlertKind::Poa));
    }

    #[test]
    fn a_cs_hub_attaches_after_reboot_and_dither_and_carries_its_poa() {
        let p = params("central-south/current.toml");
        let mut m = HubMachine::new(&p, 1, 3);
        let d = m.start(&p);
        assert!(d[0].is_none(), "no POA before the hub is back");
        let Some(Action::Attach {
            at_us, with_poa, ..
        }) = d[1]
        else {
            panic!("{d:?}")
        };
        assert!(with_poa);
        let restore = m.scen.restore_us;
        assert!((restore + 108_000_000..=restore + 208_000_000).contains(&at_us));
        // Failing every attempt loses both alerts to attach failure.
        let d = m.on_reply(&p, AlertKind::Pra, Reply::AttachFailed { at_us });
        assert!(matches!(d[1], Some(Action::Attach { .. })));
        let d = m.on_reply(
            &p,
            AlertKind::Pra,
            Reply::AttachFailed {
                at_us: at_us + 10_000_000,
            },
        );
        assert!(matches!(
            d[0],
            Some(Action::Lose(LossCause::AttachFailure, _))
        ));
        assert!(matches!(
            d[1],
            Some(Action::Lose(LossCause::AttachFailure, _))
        ));
    }
}
