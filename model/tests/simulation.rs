//! The simulation's driving contract: what comes out depends only on the profile and the seed,
//! never on how a driver slices time; exits come out in time order and never early; every
//! expected alert gets exactly one fate.

#![allow(clippy::unwrap_used)] // tests may panic on setup failures
mod support;

use csp_model::{Event, Profile, Simulation, device_id, simulate};
use ledger::{AlertCode, AlertKind, Fate, Ledger};
use support::*;

fn small(rel: &str, premises: u32) -> Profile {
    profile(rel).with_premises(premises)
}

/// Drives `sim` by calling `handle_timeout` at `next(previous, poll_timeout)` until it is done;
/// returns every event with the time it was polled at.
fn drive(mut sim: Simulation, next: impl Fn(u64, u64) -> u64) -> Vec<(u64, Event)> {
    let mut out: Vec<(u64, Event)> = std::iter::from_fn(|| sim.poll_event())
        .map(|e| (0, e))
        .collect();
    let mut now = 0;
    while let Some(due) = sim.poll_timeout() {
        let t = next(now, due).max(due);
        sim.handle_timeout(t);
        out.extend(std::iter::from_fn(|| sim.poll_event()).map(|e| (t, e)));
        now = t;
    }
    out
}

fn events(v: &[(u64, Event)]) -> Vec<Event> {
    v.iter().map(|(_, e)| *e).collect()
}

#[test]
fn slicing_time_differently_never_changes_what_happens() {
    for rel in [
        "north/current.toml",
        "central-south/current.toml",
        "north/option-b.toml",
    ] {
        let p = small(rel, 3_000);
        let step_by_step = drive(Simulation::new(&p, 9), |_, due| due);
        let coarse = drive(Simulation::new(&p, 9), |now, _| now + 7_300_000);
        let at_once = drive(Simulation::new(&p, 9), |_, _| u64::MAX);
        assert!(step_by_step.len() > 3_000, "{rel}: {}", step_by_step.len());
        assert_eq!(events(&step_by_step), events(&coarse), "{rel}");
        assert_eq!(events(&step_by_step), events(&at_once), "{rel}");
    }
}

#[test]
fn exits_come_out_in_time_order_and_never_before_their_time() {
    let p = small("central-south/option-a.toml", 2_000);
    let seen = drive(Simulation::new(&p, 4), |now, _| now + 3_000_000);
    let mut last = 0;
    let mut exits = 0;
    for (t, e) in &seen {
        if let Event::Exit(o) = e {
            assert!(o.exit_ms * 1000 <= *t, "{o:?} came out at {t}");
            assert!(o.exit_ms >= last, "{o:?} after {last}");
            last = o.exit_ms;
            exits += 1;
        }
    }
    assert!(exits > 3_000, "{exits}");
}

#[test]
fn every_expected_alert_gets_exactly_one_fate() {
    for rel in [
        "north/current.toml",
        "central-south/current.toml",
        "test/mixed-short.toml",
    ] {
        let p = small(rel, 2_000);
        let sim = Simulation::new(&p, 2);
        let mut ledger = Ledger::new(p.premises());
        sim.expect(&mut ledger).unwrap();
        let expected = ledger.expected(AlertKind::Poa) + ledger.expected(AlertKind::Pra);
        let seen = drive(sim, |_, due| due);
        let mut ids: Vec<_> = seen
            .iter()
            .map(|(_, e)| match e {
                Event::Exit(o) => o.id,
                Event::Lost { id, .. } | Event::Covered { id, .. } => *id,
            })
            .collect();
        assert_eq!(
            ids.len() as u64,
            expected,
            "{rel}: one event per expected alert"
        );
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len() as u64, expected, "{rel}: no alert twice");
        assert!(ids.iter().all(|id| ledger.is_expected(*id)), "{rel}");
        let (l, report) = simulate(&p, 2).unwrap();
        assert_eq!(l.pending(), 0);
        assert_eq!(report.submitted + report.lost_in_model, expected, "{rel}");
        assert_eq!(report.hubs, 2_000);
    }
}

#[test]
fn an_exit_carries_what_the_endpoint_needs() {
    let p = small("test/mixed-short.toml", 400);
    let seen = drive(Simulation::new(&p, 5), |_, due| due);
    let (l, _) = simulate(&p, 5).unwrap();
    let mut seq = std::collections::BTreeMap::new();
    let mut exits = 0;
    for (_, e) in seen {
        let Event::Exit(o) = e else { continue };
        exits += 1;
        let hub = o.id.hub();
        assert_eq!(o.device_id, device_id(hub));
        assert_eq!(o.region.as_str(), "north");
        assert_eq!(o.region_code, 1);
        // Numbered per hub in the order its alerts leave.
        let n = seq.entry(hub).or_insert(0);
        *n += 1;
        assert_eq!(o.seq, *n, "{o:?}");
        let rec = l.records().find(|r| r.id == o.id).unwrap();
        assert_eq!(rec.code, o.code);
        assert_eq!(rec.fate, Fate::Delivered { at_ms: o.exit_ms });
        match o.id.kind() {
            AlertKind::Poa => {
                assert_eq!(o.code, AlertCode::Ad1);
                assert_eq!(o.event_ms, 0, "the cut");
            }
            AlertKind::Pra => {
                assert_ne!(o.code, AlertCode::Ad1);
                assert_eq!(o.event_ms, rec.base_ms, "the restoration");
            }
        }
    }
    assert!(exits > 400, "{exits}");
}

#[test]
fn device_ids_are_eui64_style_with_the_premises_index_in_the_low_bits() {
    assert_eq!(device_id(0), 0x0012_4B00_0000_0000);
    assert_eq!(device_id(5), 0x0012_4B00_0000_0005);
    assert_eq!(device_id(u32::MAX), 0x0012_4B00_FFFF_FFFF);
}

#[test]
fn losses_and_the_end_are_reported_in_scenario_ms() {
    // A 5-minute horizon cuts the North POA window (3 to 7 minutes) in two: attempts after it are
    // not delivered by the end, lost at the horizon itself.
    let d = std::env::temp_dir().join(format!("csp-model-sim-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join("short.toml");
    std::fs::write(
        &f,
        format!(
            "extends = {:?}\n[scenario]\npremises = 2000\ncells = 2\nhorizon = \"5m\"\n",
            profile_path("north/current.toml").display().to_string()
        ),
    )
    .unwrap();
    let p = Profile::load(&f).unwrap();
    let seen = drive(Simulation::new(&p, 1), |_, due| due);
    let mut at_horizon = 0;
    let mut last_ms = 0;
    for (_, e) in &seen {
        let ms = match *e {
            Event::Exit(o) => o.exit_ms,
            Event::Lost { cause, at_ms, .. } => {
                if cause == ledger::LossCause::NotDeliveredByEnd {
                    assert_eq!(at_ms, 300_000, "lost at the horizon");
                    at_horizon += 1;
                }
                at_ms
            }
            Event::Covered { .. } => continue,
        };
        last_ms = last_ms.max(ms);
    }
    assert!(at_horizon > 500, "{at_horizon}");
    let mut sim = Simulation::new(&p, 1);
    while let Some(t) = sim.poll_timeout() {
        sim.handle_timeout(t);
    }
    let r = sim.report();
    assert_eq!(last_ms, 300_000, "nothing is decided for after the horizon");
    // The model still resolved the ESME's restoration alerts entering their route after the
    // horizon (restoration at 16 min + 60-120 s) before giving them up: that is its last work.
    assert!(
        (16 * 60_000..=18 * 60_000 + 1_000).contains(&r.end_ms),
        "{}",
        r.end_ms
    );
    assert_eq!(
        r.lost_in_model,
        seen.iter()
            .filter(|(_, e)| matches!(e, Event::Lost { .. }))
            .count() as u64
    );
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let p = small("north/current.toml", 3_000);
    let a = events(&drive(Simulation::new(&p, 1), |_, due| due));
    let b = events(&drive(Simulation::new(&p, 1), |_, due| due));
    let c = events(&drive(Simulation::new(&p, 2), |_, due| due));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn an_idle_simulation_has_no_wake_up_and_ignores_time() {
    let p = small("central-south/current.toml", 50);
    let mut sim = Simulation::new(&p, 1);
    let first = sim.poll_timeout().unwrap();
    assert!(first > 0);
    sim.handle_timeout(first - 1);
    assert_eq!(
        sim.poll_event(),
        None,
        "nothing happens before the first wake-up"
    );
    assert_eq!(sim.poll_timeout(), Some(first));
    let rest = drive(sim, |_, due| due);
    assert!(!rest.is_empty());
}
