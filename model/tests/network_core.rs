//! The network core's own tests: each pins down one mechanism with a known answer, so a failure
//! names the mechanism instead of "a calibration cell is out of tolerance".

#![allow(clippy::unwrap_used)] // tests may panic on setup failures
mod support;

use csp_model::NetworkCore;
use csp_model::hub::{Action, Reply, RouteId};
use csp_model::profile::StageKind::{Bucket, Queue};
use ledger::AlertKind::{Poa, Pra};
use ledger::{AlertKind, LossCause};
use support::*;

type Seen = Vec<(u32, AlertKind, Reply)>;

fn replies(net: &mut NetworkCore) -> Seen {
    std::iter::from_fn(|| net.poll_reply())
        .map(|a| (a.hub, a.kind, a.reply))
        .collect()
}

fn exit(at_us: u64) -> Reply {
    Reply::Exit { at_us }
}

fn route(at_us: u64) -> Action {
    Action::Route {
        route: RouteId::Poa,
        at_us,
    }
}

fn radio(channel: u32, slot: u64) -> Action {
    Action::Radio { channel, slot }
}

/// North (100 ms slots) with one fast stage (1,000/s) on every route.
fn north_fast() -> csp_model::profile::Params {
    with_route(north(), &[("fast", stage(Queue, 1000.0, 1, 1, 1000))])
}

#[test]
fn collision_in_a_shared_slot_loses_every_transmission_on_that_channel_at_the_slot_end() {
    let mut net = NetworkCore::new(&north_fast());
    net.submit(1, Poa, radio(3, 50));
    net.submit(2, Pra, radio(3, 50));
    net.submit(3, Poa, radio(4, 50));
    net.submit(4, Poa, radio(3, 51));
    assert_eq!(net.poll_timeout(), Some(5_100_000), "slot 50 ends at 5.1 s");
    net.handle_timeout(5_099_999);
    assert_eq!(replies(&mut net), [], "a slot is resolved only at its end");
    net.handle_timeout(5_100_000);
    assert_eq!(
        replies(&mut net),
        [
            (1, Poa, Reply::Collided { at_us: 5_100_000 }),
            (2, Pra, Reply::Collided { at_us: 5_100_000 }),
            // Alone on channel 4: through, then 1 ms in the fast stage.
            (3, Poa, exit(5_101_000)),
        ]
    );
    let radio_stats = net.stats().radio;
    assert_eq!(
        (
            radio_stats.transmissions,
            radio_stats.successes,
            radio_stats.collided,
            radio_stats.collision_slots
        ),
        (3, 1, 2, 1)
    );
    // The same channel one slot later is another slot: hub 4 is alone in it.
    assert_eq!(net.poll_timeout(), Some(5_200_000));
    net.handle_timeout(5_200_000);
    assert_eq!(replies(&mut net), [(4, Poa, exit(5_201_000))]);
    assert_eq!(net.poll_timeout(), None);
}

#[test]
fn an_alert_through_the_radio_takes_its_kinds_route() {
    let mut p = north();
    p.stages = [
        ("a".to_string(), stage(Queue, 1000.0, 1, 1, 10)),
        ("b".to_string(), stage(Queue, 100.0, 1, 1, 10)),
        ("c".to_string(), stage(Queue, 10.0, 1, 1, 10)),
    ]
    .into_iter()
    .collect();
    p.routes.poa = vec!["a".into()];
    p.routes.pra_ch = vec!["b".into()];
    p.routes.pra_esme = vec!["c".into()];
    let mut net = NetworkCore::new(&p);
    net.submit(0, Poa, radio(0, 9));
    net.submit(1, Pra, radio(1, 9));
    net.submit(
        2,
        Pra,
        Action::Route {
            route: RouteId::PraEsme,
            at_us: 1_000_000,
        },
    );
    net.handle_timeout(1_000_000);
    assert_eq!(
        replies(&mut net),
        [
            (0, Poa, exit(1_001_000)), // POA route: stage a, 1 ms
            (1, Pra, exit(1_010_000)), // PRA from the CH: stage b, 10 ms
            (2, Pra, exit(1_100_000)), // PRA from the ESME: stage c, 100 ms
        ]
    );
}

#[test]
fn late_submit_is_moved_to_the_first_open_slot_or_time_and_counted() {
    let mut net = NetworkCore::new(&north_fast());
    net.handle_timeout(1_000_000);
    assert_eq!(net.stats().late_requests, 0);
    // Slot 9 ends at 1.0 s, already resolved: moved to slot 10. Slot 10 ends later: on time.
    net.submit(0, Poa, radio(0, 9));
    net.submit(1, Poa, radio(1, 10));
    // A route entry before the resolved time is moved to it; one exactly at it is on time.
    net.submit(2, Poa, route(500_000));
    net.submit(3, Poa, route(1_000_000));
    assert_eq!(net.stats().late_requests, 2);
    assert_eq!(net.poll_timeout(), Some(1_000_000));
    net.handle_timeout(1_000_000);
    assert_eq!(
        replies(&mut net),
        [(2, Poa, exit(1_001_000)), (3, Poa, exit(1_002_000))]
    );
    net.handle_timeout(1_100_000);
    assert_eq!(
        replies(&mut net),
        [(0, Poa, exit(1_101_000)), (1, Poa, exit(1_102_000))]
    );
    assert_eq!(net.stats().late_requests, 2);
}

#[test]
fn attach_failure_is_replied_to_the_pra_when_the_cells_attach_queue_has_served_it() {
    let p = with_route(
        central_south(),
        &[("fast", stage(Queue, 1000.0, 1, 1, 1000))],
    );
    let attach = |cell, fails, with_poa| Action::Attach {
        cell,
        at_us: 10_000_000,
        fails,
        with_poa,
    };
    let mut net = NetworkCore::new(&p);
    // 25 attaches per cell per second: 40 ms each, first come first served per cell.
    net.submit(0, Pra, attach(0, false, true));
    net.submit(1, Pra, attach(0, true, true));
    net.submit(2, Pra, attach(1, false, false));
    net.handle_timeout(10_000_000);
    assert_eq!(
        replies(&mut net),
        [(1, Pra, Reply::AttachFailed { at_us: 10_080_000 })],
        "hub 1 waited behind hub 0 in cell 0; its attempt fails when served"
    );
    assert_eq!(net.poll_timeout(), Some(10_040_000));
    net.handle_timeout(10_040_000);
    assert_eq!(
        replies(&mut net),
        [
            // Hub 0 attached with its POA: both alerts enter their routes.
            (0, Poa, exit(10_041_000)),
            (0, Pra, exit(10_042_000)),
            // Hub 2, in another cell, was not delayed by cell 0, and had no POA to carry.
            (2, Pra, exit(10_043_000)),
        ]
    );
    assert_eq!(net.poll_timeout(), None);
}

#[test]
fn queue_overflow_loses_the_alert_that_finds_the_waiting_room_full() {
    let p = with_route(north(), &[("q", stage(Queue, 10.0, 1, 1, 2))]);
    let mut net = NetworkCore::new(&p);
    for hub in 0..4 {
        net.submit(hub, Poa, route(1_000_000));
    }
    net.handle_timeout(1_000_000);
    assert_eq!(
        replies(&mut net),
        [
            (0, Poa, exit(1_100_000)),
            (1, Poa, exit(1_200_000)),
            (2, Poa, exit(1_300_000)),
            (
                3,
                Poa,
                Reply::Lost {
                    cause: LossCause::QueueOverflow,
                    at_us: 1_000_000
                }
            ),
        ],
        "one in service and two waiting: the fourth overflows"
    );
    let st = net.stats();
    assert_eq!(st.overflows["q"], 1);
    assert_eq!(st.max_waiting["q"], 2);
    // Once the two waiting have started service, there is room again.
    net.submit(4, Poa, route(1_250_000));
    net.handle_timeout(1_250_000);
    assert_eq!(replies(&mut net), [(4, Poa, exit(1_400_000))]);
}

#[test]
fn throttle_burst_passes_at_once_then_one_token_per_interval() {
    let p = with_route(north(), &[("throttle", stage(Bucket, 10.0, 1, 3, 100))]);
    let mut net = NetworkCore::new(&p);
    for hub in 0..5 {
        net.submit(hub, Poa, route(1_000_000));
    }
    net.handle_timeout(1_000_000);
    let exits: Vec<Reply> = replies(&mut net).into_iter().map(|r| r.2).collect();
    assert_eq!(
        exits,
        [
            exit(1_000_000),
            exit(1_000_000),
            exit(1_000_000),
            exit(1_100_000),
            exit(1_200_000)
        ],
        "3 tokens of burst, then 10 per second"
    );
    assert_eq!(net.stats().max_waiting["throttle"], 2);
}

#[test]
fn exit_past_the_horizon_is_replied_at_once_instead_of_simulated_to_the_end() {
    let p = with_horizon(
        with_route(
            north(),
            &[
                ("slow", stage(Queue, 1.0, 1, 1, 10)),
                ("fast", stage(Queue, 1000.0, 1, 1, 10)),
            ],
        ),
        "10s",
    );
    let mut net = NetworkCore::new(&p);
    net.submit(0, Poa, route(9_000_000));
    net.submit(1, Poa, route(9_000_000));
    net.handle_timeout(9_000_000);
    // Hub 1 would leave the first stage at 11 s, past the 10 s horizon: answered now, from the
    // first stage. Hub 0 leaves it exactly at the horizon: it goes on to the next stage.
    assert_eq!(replies(&mut net), [(1, Poa, exit(11_000_000))]);
    assert_eq!(net.poll_timeout(), Some(10_000_000));
    net.handle_timeout(10_000_000);
    assert_eq!(replies(&mut net), [(0, Poa, exit(10_001_000))]);
}

#[test]
fn an_empty_route_exits_when_entered_and_final_decisions_are_not_requests() {
    let mut p = north();
    p.routes.poa = Vec::new();
    let mut net = NetworkCore::new(&p);
    net.submit(0, Poa, Action::Exit(5));
    net.submit(0, Poa, Action::Lose(LossCause::Collision, 5));
    assert_eq!(net.poll_timeout(), None);
    net.submit(7, Poa, route(2_000_000));
    net.handle_timeout(1_999_999);
    assert_eq!(replies(&mut net), []);
    net.handle_timeout(2_000_000);
    assert_eq!(replies(&mut net), [(7, Poa, exit(2_000_000))]);
}

#[test]
fn the_order_of_submission_never_changes_the_outcome() {
    let p = with_route(north(), &[("q", stage(Queue, 10.0, 1, 1, 3))]);
    let requests: Vec<(u32, Action)> = (0..6)
        .map(|hub| (hub, route(1_000_000 + u64::from(hub % 2) * 50_000)))
        .chain((6..9).map(|hub| (hub, radio(hub % 2, 12))))
        .collect();
    let run = |order: &mut dyn Iterator<Item = &(u32, Action)>| {
        let mut net = NetworkCore::new(&p);
        for (hub, a) in order {
            net.submit(*hub, Poa, *a);
        }
        let mut seen = Vec::new();
        while let Some(t) = net.poll_timeout() {
            net.handle_timeout(t);
            seen.extend(replies(&mut net));
        }
        (seen, net.stats())
    };
    let forward = run(&mut requests.iter());
    let backward = run(&mut requests.iter().rev());
    assert_eq!(forward, backward);
    assert!(forward.0.len() == 9, "{forward:?}");
}
