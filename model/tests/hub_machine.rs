//! The hub machine's decisions, one mechanism per test, with known answers and the boundaries
//! where a decision flips (holdover end, restoration, horizon, attempt limits).

#![allow(clippy::unwrap_used)] // tests may panic on setup failures
mod support;

use csp_model::hub::{Action, AlertState, HubMachine, Reply, RouteId};
use csp_model::profile::{Params, PraSource};
use csp_model::units::{Dur, DurRange, NonZeroCount, OutageDist, Probability};
use ledger::AlertKind::{Poa, Pra};
use ledger::{AlertCode, LossCause, PerKind};
use support::*;

fn range(min: &str, max: &str) -> DurRange {
    DurRange {
        min: Dur::parse(min).unwrap(),
        max: Dur::parse(max).unwrap(),
    }
}

/// North with a fixed 10-minute holdover, an outage of 16 minutes, no backoff (the retry comes
/// exactly `ack_timeout` = 2 s after a collision) and a 70-minute horizon.
fn north_exact() -> Params {
    let mut p = north();
    let r = radio(&mut p);
    r.holdover = range("10m", "10m");
    r.poa.backoff = Dur(0);
    r.pra.backoff = Dur(0);
    p
}

fn slot_start(a: Option<Action>) -> u64 {
    match a {
        Some(Action::Radio { slot, .. }) => slot * 100_000,
        other => panic!("not a radio attempt: {other:?}"),
    }
}

/// Hub 0 of `p` (seed 1), started.
fn started(p: &Params) -> HubMachine {
    let mut m = HubMachine::new(p, 1, 0);
    m.start(p);
    m
}

/// What a started hub 0 decides about its POA after a collision at `at_us`.
fn after_collision(p: &Params, at_us: u64) -> Option<Action> {
    started(p).on_reply(p, Poa, Reply::Collided { at_us }).poa
}

const HOLDOVER_END: u64 = 600_000_000;
const RESTORE: u64 = 960_000_000;
const HORIZON: u64 = 4_200_000_000;

#[test]
fn a_radio_hub_contends_in_its_window_on_a_channel_of_its_own_cell() {
    let p = profile("north/option-a.toml").params().clone(); // 5 channels per cell, 60 s window
    let mut used = std::collections::BTreeSet::new();
    for hub in (0..30_000).step_by(97) {
        let mut m = HubMachine::new(&p, 1, hub);
        let d = m.start(&p);
        let Some(Action::Radio { channel, slot }) = d.poa else {
            panic!("{d:?}")
        };
        let cell = m.scen.cell;
        assert!(
            (cell * 5..cell * 5 + 5).contains(&channel),
            "hub {hub} in cell {cell} on channel {channel}"
        );
        used.insert(channel - cell * 5);
        // Cut at 0 + 3 min threshold + U(0, 60 s).
        assert!((1_800..=2_400).contains(&slot), "slot {slot}");
        // Change 2: the CH sends the PRA on the radio, 60 s + U(0, 300 s) after the restoration.
        let t = slot_start(d.pra);
        assert!(
            (RESTORE + 60_000_000 - 100_000..=RESTORE + 360_000_000).contains(&t),
            "{t}"
        );
        assert_eq!(m.state(Poa), AlertState::Pending);
    }
    assert_eq!(used.len(), 5, "every channel of the cell is used: {used:?}");
}

#[test]
fn the_esme_sends_the_pra_on_its_own_route_after_its_delay() {
    let p = north();
    for hub in 0..50 {
        let mut m = HubMachine::new(&p, 3, hub);
        match m.start(&p).pra {
            Some(Action::Route {
                route: RouteId::PraEsme,
                at_us,
            }) => assert!(
                (RESTORE + 60_000_000..=RESTORE + 120_000_000).contains(&at_us),
                "{at_us}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_collision_is_retried_after_the_ack_timeout_plus_backoff_until_the_attempt_limit() {
    let mut p = north_exact();
    radio(&mut p).holdover = range("1h", "1h");
    radio(&mut p).poa.backoff = Dur::parse("200s").unwrap();
    let mut m = HubMachine::new(&p, 1, 5);
    m.start(&p);
    let mut at = 200_000_000;
    for attempt in 1..5 {
        let d = m.on_reply(&p, Poa, Reply::Collided { at_us: at });
        let t = slot_start(d.poa);
        assert!(
            (at + 2_000_000 - 100_000..=at + 202_000_000).contains(&t),
            "attempt {attempt}: {t}"
        );
        assert!(d.pra.is_none());
        at = t + 100_000;
    }
    // The fifth collision is the last of `max_attempts` = 5.
    let d = m.on_reply(&p, Poa, Reply::Collided { at_us: at });
    assert_eq!(d.poa, Some(Action::Lose(LossCause::Collision, at)));
    assert_eq!(m.state(Poa), AlertState::Done);
}

#[test]
fn holdover_expiry_loses_a_poa_whose_next_attempt_falls_after_the_holdover_ends() {
    let p = north_exact();
    // The retry comes 2 s after the collision: at 599.999999 s the hub is still up (slot 5999)...
    let d = after_collision(&p, HOLDOVER_END - 2_000_001);
    assert_eq!(slot_start(d), 599_900_000);
    // ...at exactly 600 s it is not: lost at the holdover's end.
    let d = after_collision(&p, HOLDOVER_END - 2_000_000);
    assert_eq!(
        d,
        Some(Action::Lose(LossCause::HoldoverExpired, HOLDOVER_END))
    );
    // Once the power is back (at exactly the restoration) the hub can send again.
    let d = after_collision(&p, RESTORE - 2_000_000);
    assert_eq!(slot_start(d), RESTORE);
}

#[test]
fn an_attempt_at_or_after_the_horizon_is_not_delivered_by_end() {
    let mut p = north_exact();
    radio(&mut p).holdover = range("2h", "2h");
    let d = after_collision(&p, HORIZON - 2_000_001);
    assert_eq!(slot_start(d), HORIZON - 100_000);
    let d = after_collision(&p, HORIZON - 2_000_000);
    assert_eq!(d, Some(Action::Lose(LossCause::NotDeliveredByEnd, HORIZON)));
}

#[test]
fn an_exit_after_the_horizon_is_lost_at_the_horizon_and_one_at_it_is_delivered() {
    let p = north_exact();
    let mut m = started(&p);
    let d = m.on_reply(&p, Poa, Reply::Exit { at_us: HORIZON });
    assert_eq!(d.poa, Some(Action::Exit(HORIZON)));
    assert_eq!(m.state(Poa), AlertState::Exiting(HORIZON));
    let d = m.on_reply(&p, Pra, Reply::Exit { at_us: HORIZON + 1 });
    assert_eq!(
        d.pra,
        Some(Action::Lose(LossCause::NotDeliveredByEnd, HORIZON))
    );
    assert_eq!(m.state(Pra), AlertState::Done);
}

#[test]
fn a_loss_in_the_transport_is_the_alerts_fate_and_later_replies_are_ignored() {
    let p = north_exact();
    let mut m = started(&p);
    let lost = Reply::Lost {
        cause: LossCause::QueueOverflow,
        at_us: 7,
    };
    assert_eq!(
        m.on_reply(&p, Pra, lost).pra,
        Some(Action::Lose(LossCause::QueueOverflow, 7))
    );
    assert!(m.is_done(Pra));
    assert!(!m.is_done(Poa));
    assert_eq!(
        m.on_reply(&p, Pra, Reply::Exit { at_us: 9 }),
        PerKind::default()
    );
    assert_eq!(m.state(Pra), AlertState::Done);
    // A reply about a mechanism the hub does not use changes nothing.
    assert_eq!(
        m.on_reply(&p, Poa, Reply::AttachFailed { at_us: 9 }),
        PerKind::default()
    );
    assert_eq!(m.state(Poa), AlertState::Pending);
}

#[test]
fn alerts_are_handed_over_once_each_and_numbered_in_order() {
    let p = north_exact();
    let mut m = started(&p);
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.hand_over(Poa), None, "not exiting yet");
    m.on_reply(&p, Pra, Reply::Exit { at_us: 2_000 });
    m.on_reply(&p, Poa, Reply::Exit { at_us: 3_000 });
    assert_eq!(m.poll_timeout(), Some(2_000));
    assert!(m.is_done(Poa) && m.is_done(Pra));
    assert_eq!(m.hand_over(Pra), Some(1));
    assert_eq!(m.hand_over(Pra), None, "handed over once only");
    assert_eq!(m.poll_timeout(), Some(3_000));
    assert_eq!(m.hand_over(Poa), Some(2));
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.state(Poa), AlertState::Done);
}

#[test]
fn a_cellular_hub_attaches_after_reboot_and_dither_and_carries_its_poa() {
    let p = central_south();
    let restore = 213_000_000;
    for hub in 0..40 {
        let mut m = HubMachine::new(&p, 1, hub);
        assert_eq!(m.scen.restore_us, restore);
        let d = m.start(&p);
        assert_eq!(d.poa, None, "no POA before the hub is back");
        let Some(Action::Attach {
            cell,
            at_us,
            with_poa,
            ..
        }) = d.pra
        else {
            panic!("{d:?}")
        };
        assert_eq!(cell, m.scen.cell);
        assert!(with_poa);
        // Reboot 98 s, dither U(10 s, 110 s).
        assert!((restore + 108_000_000..=restore + 208_000_000).contains(&at_us));
        assert_eq!(m.state(Poa), AlertState::Pending);
    }
}

#[test]
fn an_attach_failure_is_retried_after_the_retry_time_then_loses_both_alerts() {
    let mut p = central_south();
    cellular(&mut p).attach_failure = Probability(0.999_999);
    let mut m = HubMachine::new(&p, 1, 3);
    let Some(Action::Attach { at_us, fails, .. }) = m.start(&p).pra else {
        panic!()
    };
    assert!(fails, "the hub's draw against a near-certain failure");
    let d = m.on_reply(&p, Pra, Reply::AttachFailed { at_us: at_us + 40 });
    assert_eq!(
        d,
        PerKind::new(
            None,
            Some(Action::Attach {
                cell: m.scen.cell,
                at_us: at_us + 40 + 10_000_000,
                fails: true,
                with_poa: true
            })
        )
    );
    // Two attempts allowed: the second failure loses both alerts when it happens.
    let d = m.on_reply(&p, Pra, Reply::AttachFailed { at_us: 999 });
    assert_eq!(
        d,
        PerKind::new(
            Some(Action::Lose(LossCause::AttachFailure, 999)),
            Some(Action::Lose(LossCause::AttachFailure, 999))
        )
    );
    assert!(m.is_done(Poa) && m.is_done(Pra));
    // With a zero failure probability no attempt fails.
    cellular(&mut p).attach_failure = Probability(0.0);
    cellular(&mut p).attach_attempts = NonZeroCount(3);
    for hub in 0..50 {
        let mut m = HubMachine::new(&p, 1, hub);
        assert!(matches!(
            m.start(&p).pra,
            Some(Action::Attach { fails: false, .. })
        ));
    }
}

#[test]
fn a_short_outage_raises_no_poa_and_its_hub_attaches_without_one() {
    let mut p = central_south();
    p.scenario.outage = OutageDist::Fixed {
        duration: Dur::parse("2m59s").unwrap(),
    };
    let mut m = HubMachine::new(&p, 1, 0);
    assert_eq!(m.state(Poa), AlertState::Done);
    assert_eq!(m.scen.pra_code(&p), AlertCode::Restored8F35);
    assert!(matches!(
        m.start(&p).pra,
        Some(Action::Attach {
            with_poa: false,
            ..
        })
    ));
    // A radio hub with a short outage starts no POA either.
    let mut p = north();
    p.scenario.outage = OutageDist::Fixed {
        duration: Dur::parse("2m").unwrap(),
    };
    p.hub.pra_source = PraSource::Esme;
    let mut m = HubMachine::new(&p, 1, 0);
    assert_eq!(m.start(&p).poa, None);
    assert!(m.is_done(Poa));
}

#[test]
fn the_same_seed_and_premises_give_the_same_decisions() {
    let p = north();
    let decide = |seed, hub| {
        let mut m = HubMachine::new(&p, seed, hub);
        let d = m.start(&p);
        let r = m.on_reply(&p, Poa, Reply::Collided { at_us: 200_000_000 });
        (d, r)
    };
    assert_eq!(decide(1, 42), decide(1, 42));
    assert_ne!(decide(1, 42), decide(2, 42));
    assert_ne!(decide(1, 42), decide(1, 43));
}
