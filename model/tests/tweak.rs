//! Overrides of a resolved profile and the parameters its comments tag `[cal]`.

#![allow(clippy::unwrap_used)] // tests may panic on setup failures
mod support;

use csp_model::tweak::{perturb, tagged};
use support::*;

const SEED: [&str; 6] = [
    "north/current.toml",
    "north/option-a.toml",
    "north/option-b.toml",
    "central-south/current.toml",
    "central-south/option-a.toml",
    "central-south/option-b.toml",
];

#[test]
fn an_override_round_trips_the_resolved_profile_and_changes_only_its_key() {
    for rel in SEED {
        let p = profile(rel);
        let same = p.with_overrides(&[]).unwrap();
        assert_eq!(same.to_resolved_toml(), p.to_resolved_toml(), "{rel}");
        assert_eq!(same.option_label(), p.option_label());
        let v = p.value_at("stages.dsp.rate").unwrap();
        let q = p
            .with_override("stages.dsp.rate", perturb(&v, 1.2).unwrap())
            .unwrap();
        assert!(
            (q.params().stages["dsp"].rate.0 - 660.0).abs() < 1e-9,
            "{rel}"
        );
        assert_eq!(q.params().scenario.premises.0, 30_000);
    }
    // The footprint follows the density: 1,000 premises in the North are one receive group.
    let p = profile("north/current.toml")
        .with_override("scenario.premises", toml::Value::Integer(1_000))
        .unwrap();
    assert_eq!((p.premises(), p.population().cells), (1_000, 1));
    let p = profile("north/current.toml")
        .with_override("scenario.premises", toml::Value::Integer(100_000))
        .unwrap();
    assert_eq!(p.population().cells, 70);
}

#[test]
fn a_bad_override_is_refused_with_its_key() {
    let p = profile("north/current.toml");
    let e = p
        .with_override("stages.dsp.rate", toml::Value::Float(-1.0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("stages.dsp.rate") && e.contains("positive"),
        "{e}"
    );
    let e = p
        .with_override("scenario.premise", toml::Value::Integer(5))
        .unwrap_err()
        .to_string();
    assert!(e.contains("premise") && e.contains("unknown field"), "{e}");
    let e = p
        .with_override("scenario.premises.x", toml::Value::Integer(5))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`scenario.premises` is not a table"), "{e}");
    let e = p
        .with_override("scenario.cell_size_ratio", toml::Value::Float(0.8))
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 1"), "{e}");
}

#[test]
fn calibrated_parameters_come_from_the_comments_of_the_files_read() {
    let cur = tagged(&profile("north/current.toml"), "cal").unwrap();
    let keys: Vec<&str> = cur.iter().map(|t| t.key.as_str()).collect();
    for want in [
        "scenario.cells",
        "stages.throttle.rate",
        "stages.throttle.burst",
        "stages.throttle.capacity",
        "access.radio.poa.window",
        "access.radio.ack_timeout",
        "hub.esme_delay",
    ] {
        assert!(keys.contains(&want), "{want} missing from {keys:?}");
    }
    for not in [
        "access.radio.holdover",
        "scenario.premises",
        "access.radio.slot",
    ] {
        assert!(!keys.contains(&not), "{not} is not [cal]: {keys:?}");
    }
    let rate = cur
        .iter()
        .find(|t| t.key == "stages.throttle.rate")
        .unwrap();
    assert!(rate.file.ends_with("north/current.toml"));
    let text = std::fs::read_to_string(&rate.file).unwrap();
    let line = text.lines().nth(rate.line - 1).unwrap();
    assert!(line.trim_start().starts_with("rate = 2.04"), "{line}");
    // Option A: change 4 sets the same rate again, tagged in the change file.
    let a = tagged(&profile("north/option-a.toml"), "cal").unwrap();
    let rate = a.iter().find(|t| t.key == "stages.throttle.rate").unwrap();
    assert!(
        rate.also.iter().any(|w| w.contains("changes.toml")),
        "{:?}",
        rate.also
    );
    // A C&S-only change patches nothing in the North.
    assert!(
        !a.iter().any(|t| t.key == "stages.head_end_ch.rate"),
        "change 1 patches Central&South only"
    );
    let cs = tagged(&profile("central-south/option-b.toml"), "cal").unwrap();
    assert!(cs.iter().any(|t| t.key == "access.cellular.reboot"));
}
