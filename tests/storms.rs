//! Issue 13, storms end to end through the real binary: a storm profile (several outages sharing
//! the head-end, throttles and DSP) runs with `simulate` and with `run` against the reference
//! endpoint, and every results folder holds each outage's own figures — time to first alert,
//! delivery, loss by cause — in `summary.json`, `summary.md` and the `outages` PNG, with every
//! outage's alerts accounted for.

use csp_loadtest::{check_accounting, describe, profile, read_summary, run_harness, temp_dir};
use ledger::AlertKind;
use std::path::Path;
use std::time::Duration;

fn harness_ok(args: &[&std::ffi::OsStr], limit: Duration) {
    let res = run_harness(args, limit);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

/// The per-outage figures of a storm's folder: they add up to the run's, and none is impossible.
fn check_outages(out: &Path, names: &[&str]) -> results::Summary {
    let s = read_summary(out);
    check_accounting(out, &s);
    let got: Vec<&str> = s.outages.iter().map(|o| o.outage.name.as_str()).collect();
    assert_eq!(got, names, "outages in summary.json");
    for kind in AlertKind::ALL {
        let sum = |f: fn(&results::KindSummary) -> u64| -> u64 {
            s.outages.iter().map(|o| f(o.alerts.kind(kind))).sum()
        };
        let run = s.kind(kind);
        assert_eq!(sum(|k| k.expected), run.expected, "{kind} expected");
        assert_eq!(sum(|k| k.delivered), run.delivered, "{kind} delivered");
        assert_eq!(sum(|k| k.lost), run.lost, "{kind} lost");
    }
    for o in &s.outages {
        let m = &o.outage;
        assert_eq!(o.alerts.poa.expected, u64::from(m.premises), "{}", m.name);
        // An alert can be known no earlier than the hubs' 3 minutes off power (AD1).
        if let Some(t) = o.time_to_first_poa_s {
            assert!(t >= 180.0, "{}: first POA {t} s after its cut", m.name);
        }
        assert!(
            o.time_to_first_alert_s <= o.time_to_first_poa_s || o.time_to_first_poa_s.is_none(),
            "{}: the first alert is never later than the first POA",
            m.name
        );
    }
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(md.contains("Time to first alert"), "summary.md explains it");
    for n in names {
        assert!(
            md.contains(&format!("{n}: ")),
            "{n} missing from summary.md"
        );
    }
    for png in ["outages.png", "outage-poa.png", "outage-pra.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{png} is not a PNG"
        );
    }
    s
}

const OUTAGES: [&str; 6] = [
    "main",
    "village-a",
    "hamlet-b",
    "estate-c",
    "street-d",
    "farm-e",
];

#[test]
fn a_storm_simulates_with_each_outages_figures_and_location_aware_priority_finds_small_outages_sooner()
 {
    let dir = temp_dir();
    let sim = |rel: &str, name: &str| -> results::Summary {
        let out = dir.path().join(name);
        harness_ok(
            &[
                "simulate".as_ref(),
                "--profile".as_ref(),
                profile(rel).as_os_str(),
                "--quiet".as_ref(),
                "--out".as_ref(),
                out.as_os_str(),
            ],
            Duration::from_secs(120),
        );
        check_outages(&out, &OUTAGES)
    };
    let b = sim("storms/north-option-b.toml", "b");
    let la = sim(
        "hypothetical/north-storm-option-b-location-aware.toml",
        "la",
    );
    assert!(la.meta.changes.iter().any(|c| c == "location-aware"));
    // Under Option B the big outage's POAs cross the new channels at once and queue at the
    // throttle: small outages elsewhere wait behind them. Serving each cell's first alerts first
    // lets the small outages in cells of their own be known sooner; an outage sharing the big
    // one's cell (street-d) gains nothing from a per-cell priority.
    let first = |s: &results::Summary, n: &str| {
        s.outages
            .iter()
            .find(|o| o.outage.name == n)
            .and_then(|o| o.time_to_first_alert_s)
            .unwrap_or(f64::INFINITY)
    };
    for n in ["hamlet-b", "estate-c"] {
        assert!(
            first(&la, n) < first(&b, n) - 60.0,
            "{n}: location-aware {} s vs Option B {} s",
            first(&la, n),
            first(&b, n)
        );
    }
}

#[test]
fn a_storm_runs_against_the_reference_endpoint_with_each_outages_figures() {
    let dir = temp_dir();
    let out = dir.path().join("run");
    harness_ok(
        &[
            "run".as_ref(),
            "--profile".as_ref(),
            profile("storms/central-south-option-b.toml").as_os_str(),
            "--time-scale".as_ref(),
            "600".as_ref(),
            // The outages' figures are the subject, not the schedule.
            "--max-lag-ms".as_ref(),
            "3600000".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(180),
    );
    let s = check_outages(&out, &OUTAGES);
    // In Central&South nothing can be sent before power returns: every outage is first known after
    // its restoration, never before.
    for o in &s.outages {
        if let Some(t) = o.time_to_first_alert_s {
            // The shortest outage of the profile lasts 3 min 33 s.
            assert!(
                t > 213.0,
                "{}: first alert {t} s after its cut",
                o.outage.name
            );
        }
    }
}

#[test]
fn summarised_alerts_are_never_counted_as_delivered_and_run_refuses_them() {
    let dir = temp_dir();
    let rel = "hypothetical/north-storm-option-b-summarised.toml";
    let out = dir.path().join("sum");
    harness_ok(
        &[
            "simulate".as_ref(),
            "--profile".as_ref(),
            profile(rel).as_os_str(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(120),
    );
    let s = check_outages(&out, &OUTAGES);
    let poa = &s.alerts.poa;
    let c = poa
        .covered_by_summary
        .as_ref()
        .expect("summaries covered some POAs");
    assert_eq!(
        poa.loss_by_cause.get(&ledger::LossCause::CoveredBySummary),
        Some(&c.covered)
    );
    assert_eq!(poa.delivered + poa.lost, poa.expected);
    assert!(c.delivered_or_covered_fraction > poa.delivered_fraction);
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(
        md.contains("HYPOTHETICAL"),
        "summary.md says the option is hypothetical"
    );

    let res = run_harness(
        [
            "run".as_ref(),
            "--profile".as_ref(),
            profile(rel).as_os_str(),
            "--out".as_ref(),
            dir.path().join("run").as_os_str(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("summarise") && err.contains("simulate"),
        "{err}"
    );
}
