//! Issue 13: `sweep` (one profile key across values) and `sensitivity` (each [cal] parameter at
//! ±P%) through the real binary: their files, that the figures move the way the mechanisms say,
//! and that a bad key or value is refused by name before anything runs.

use csp_loadtest::{describe, profile, run_harness, temp_dir};
use std::time::Duration;

/// `m:ss` → seconds (`never` → `None`).
fn secs(t: &str) -> Option<u64> {
    let (m, s) = t.trim().split_once(':')?;
    Some(m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?)
}

#[test]
fn a_sweep_of_outage_size_writes_its_graph_and_table_and_bigger_outages_are_never_faster() {
    let dir = temp_dir();
    let out = dir.path().join("sweep");
    let res = run_harness(
        [
            "sweep".as_ref(),
            "--profile".as_ref(),
            profile("north/option-a.toml").as_os_str(),
            "--values".as_ref(),
            "300,3000,20000".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let png = std::fs::read(out.join("north-sweep.png")).expect("north-sweep.png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let mut csv = csv::Reader::from_path(out.join("sweep.csv")).expect("sweep.csv");
    let head = csv.headers().expect("header").clone();
    let col = |name: &str| head.iter().position(|h| h == name).expect(name);
    let (v, exp, frac, t95) = (
        col("value"),
        col("poa_expected"),
        col("poa_delivered_fraction"),
        col("poa_95_s"),
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.expect("row")).collect();
    let values: Vec<&str> = rows.iter().map(|r| &r[v]).collect();
    assert_eq!(values, ["300", "3000", "20000"]);
    let expected: Vec<u64> = rows.iter().map(|r| r[exp].parse().expect("n")).collect();
    assert_eq!(expected, [300, 3000, 20000], "the key really was set");
    let share: Vec<f64> = rows.iter().map(|r| r[frac].parse().expect("f")).collect();
    assert!(
        share[0] >= 0.99,
        "a small North outage delivers ≥ 99%: {share:?}"
    );
    let t: Vec<f64> = rows.iter().map(|r| r[t95].parse().expect("s")).collect();
    assert!(t[2] >= t[0], "time to 95% grows with the outage: {t:?}");
    let md = std::fs::read_to_string(out.join("sweep.md")).expect("sweep.md");
    assert!(md.contains("POA 95% within 5:00 (DNO)"), "{md}");

    // A key the profile does not have, and a value of the wrong type, are refused by name.
    for (key, values, want) in [
        ("scenario.premise", "1000", "scenario.premise"),
        ("scenario.premises", "1.5", "not a whole number"),
    ] {
        let res = run_harness(
            [
                "sweep",
                "--profile",
                &profile("north/current.toml").display().to_string(),
                "--key",
                key,
                "--values",
                values,
                "--out",
                &dir.path().join("bad").display().to_string(),
            ],
            Duration::from_secs(60),
        );
        assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn sensitivity_finds_the_calibrated_parameters_and_a_slower_throttle_delays_north_poas() {
    let dir = temp_dir();
    let out = dir.path().join("sens");
    let res = run_harness(
        [
            "sensitivity".as_ref(),
            "--profile".as_ref(),
            profile("north/current.toml").as_os_str(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(180),
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    for h in ["poa-50", "poa-95", "poa-delivered", "pra-50", "pra-95"] {
        let png = out.join(format!("north-current-tornado-{h}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    }
    let md = std::fs::read_to_string(out.join("sensitivity.md")).expect("sensitivity.md");
    let row = md
        .lines()
        .find(|l| l.starts_with("| `stages.throttle.rate`"))
        .unwrap_or_else(|| panic!("no throttle rate row in\n{md}"));
    // Columns: parameter, values run, POA 50%, POA 95% (low / high), ...
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert!(cells[2].contains("2.04 → 1.632 / 2.448"), "{row}");
    let (low, high) = cells[4].split_once(" / ").expect("low / high");
    let (low, high) = (secs(low), secs(high));
    assert!(
        low.unwrap_or(u64::MAX) > high.expect("reached at 120%"),
        "a slower throttle must delay the North POA backlog: {row}"
    );
    // Uncalibrated parameters are not perturbed; unscalable ones are named with the reason.
    assert!(
        !md.contains("`access.radio.holdover`"),
        "holdover is not [cal]"
    );
    assert!(
        md.contains("`access.radio.channels_per_cell` not perturbed"),
        "{md}"
    );
}
