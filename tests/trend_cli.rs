//! `csp-harness trend` end to end: three nights of one scenario, found through the folder that
//! holds them (its `latest` link skipped), ordered by the start time their `run.json` records —
//! not by folder name — drawn with the thresholds, and the newest night written in
//! github-action-benchmark's formats with the figures its own summary holds.

use csp_loadtest::{describe, profile, read_summary, run_harness, temp_dir};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, serde::Deserialize)]
struct Entry {
    name: String,
    unit: String,
    value: f64,
    extra: String,
}

fn entries(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sets a night's start time in its run.json (the folder names say nothing about order).
fn set_started(dir: &Path, at: &str) {
    let p = dir.join("run.json");
    let mut rec: results::RunRecord =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("run.json")).expect("a run.json");
    rec.started_at = at.parse().expect("RFC 3339");
    std::fs::write(&p, serde_json::to_string_pretty(&rec).expect("json")).expect("write");
}

#[test]
fn three_nights_drawn_in_the_order_they_ran_and_the_newest_benchmarked() {
    let dir = temp_dir();
    let nights = dir.path().join("nights");
    // Folder a ran last, c first: seeds 3, 2, 1 tell the nights apart.
    let plan = [
        ("a", "3", "2026-11-30T02:17:00Z"),
        ("b", "2", "2026-11-29T02:17:00Z"),
        ("c", "1", "2026-11-28T02:17:00Z"),
    ];
    for (name, seed, at) in plan {
        let out = nights.join(name);
        let res = run_harness(
            [
                "simulate".as_ref(),
                "--profile".as_ref(),
                profile("test/mixed-short.toml").as_os_str(),
                "--seed".as_ref(),
                seed.as_ref(),
                "--quiet".as_ref(),
                "--out".as_ref(),
                out.as_os_str(),
            ],
            Duration::from_secs(60),
        );
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        set_started(&out, at);
    }
    // A `latest` link, as the default layout has, must not count a night twice.
    std::os::unix::fs::symlink("a", nights.join("latest")).expect("symlink");
    let th = dir.path().join("t.toml");
    std::fs::write(
        &th,
        "[thresholds]\npoa.time_to_50 = \"7m\"\npoa.time_to_95 = \"20m\"\npoa.loss_rate = 0.05\n",
    )
    .expect("write");
    let out = dir.path().join("trend");
    let res = run_harness(
        [
            "trend".as_ref(),
            nights.as_os_str(),
            "--thresholds".as_ref(),
            th.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let said = String::from_utf8_lossy(&res.stdout);
    assert!(said.contains("test/mixed-short: 3 nights"), "{said}");

    for name in ["test-mixed-short-times", "test-mixed-short-loss"] {
        let png = std::fs::read(out.join(format!("{name}.png"))).expect("png");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}");
        let w = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
        let h = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
        assert_eq!((w, h), (1600, 1000), "{name}");
    }
    // The x axis reads the nights in the order they ran, oldest first.
    let svg = std::fs::read_to_string(out.join("test-mixed-short-times.svg")).expect("svg");
    let at = |label: &str| {
        // plotters writes a text element's content on a line of its own.
        svg.find(&format!(">\n{label}\n<"))
            .unwrap_or_else(|| panic!("{label} not on the axis"))
    };
    assert!(
        at("11-28") < at("11-29") && at("11-29") < at("11-30"),
        "axis order"
    );
    assert!(
        svg.contains("POA 50% limit 7:00"),
        "the threshold is in the legend"
    );

    // The newest night (folder a, seed 3) is the one benchmarked, with its summary's figures.
    let newest = read_summary(&nights.join("a"));
    let smaller = entries(&out.join("benchmark-smaller-is-better.json"));
    let poa50 = smaller
        .iter()
        .find(|e| e.name == "test/mixed-short POA time to 50%")
        .expect("POA time to 50%");
    assert_eq!(poa50.unit, "s");
    assert_eq!(Some(poa50.value), newest.alerts.poa.time_to(50.0));
    assert!(
        poa50.extra.contains("2026-11-30") && poa50.extra.contains("seed 3"),
        "{poa50:?}"
    );
    let loss = smaller
        .iter()
        .find(|e| e.name == "test/mixed-short POA loss rate")
        .expect("loss");
    assert!(
        (loss.value - newest.alerts.poa.loss_rate * 100.0).abs() < 1e-4,
        "{loss:?}"
    );
    let bigger = entries(&out.join("benchmark-bigger-is-better.json"));
    let by4 = bigger
        .iter()
        .find(|e| e.name.starts_with("test/mixed-short POA delivered by 4:00"))
        .expect("POA delivered by the SEC deadline");
    assert!(
        by4.unit == "%" && (0.0..=100.0).contains(&by4.value),
        "{by4:?}"
    );

    // A folder that holds no results is named.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let res = run_harness(
        [
            "trend".as_ref(),
            empty.as_os_str(),
            "--out".as_ref(),
            dir.path().join("o").as_os_str(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("empty"),
        "{}",
        describe(&res)
    );
}
