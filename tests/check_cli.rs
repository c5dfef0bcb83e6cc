//! `csp-harness check` end to end: the built binary against results directories written by
//! `reports::write_run` from synthetic ledgers. Exit codes (0 pass, 1 breached or regressed,
//! 2 could not check), the messages naming file/line/key, and the JUnit XML.

// The helpers below are test code too: a failed setup should panic loudly.
#![allow(clippy::unwrap_used)]

use csp_loadtest::{describe, run_harness, temp_dir};
use ledger::{AlertCode, AlertId, AlertKind, Ledger, LossCause, Region};
use results::RunMeta;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// A results directory of `n` premises: POA i delivered at `(i+1) * poa_step_ms` after the cut
/// for the first `delivered` premises, then `collisions` lost to collision, the rest not delivered
/// by the end; every PRA delivered `pra_ms` after a restoration at 16 min.
fn write_results(dir: &Path, n: u32, delivered: u32, collisions: u32, poa_step_ms: u64) {
    let mut l = Ledger::new(n);
    let restore = 16 * 60_000;
    for h in 0..n {
        l.expect(AlertId::new(h, AlertKind::Poa), AlertCode::Ad1, 0)
            .unwrap();
        l.expect(
            AlertId::new(h, AlertKind::Pra),
            AlertCode::Restored8F36,
            restore,
        )
        .unwrap();
    }
    for h in 0..delivered {
        l.deliver(
            AlertId::new(h, AlertKind::Poa),
            u64::from(h + 1) * poa_step_ms,
        )
        .unwrap();
    }
    for h in delivered..(delivered + collisions).min(n) {
        l.lose(AlertId::new(h, AlertKind::Poa), LossCause::Collision, 1)
            .unwrap();
    }
    for h in 0..n {
        l.deliver(
            AlertId::new(h, AlertKind::Pra),
            restore + 60_000 + u64::from(h) * 100,
        )
        .unwrap();
    }
    l.finish(70 * 60_000);
    let mut meta = RunMeta::new("north/current", Region::NORTH, "current", 1, n);
    meta.health = Some(results::HealthRecord::Run(Box::new(results::Health {
        max_lag_ms: 12,
        p99_lag_ms: 3,
        ..results::Health::default()
    })));
    let summary = results::summarize(meta, &l);
    reports::write_run(dir, &summary, &l).unwrap();
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

const THRESHOLDS: &str = r#"# nightly-style thresholds
[thresholds]
poa.time_to_50 = "6m"
poa.time_to_80 = "9m"
poa.loss_rate = 0.05
poa.loss.collision = "2%"
pra.time_to_95 = "5m"
duplicates = 0
out_of_order = 0
harness.max_lag_ms = 2000
"#;

fn args<'a>(results: &'a Path, extra: &[&'a str]) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = vec!["check".into(), "--results".into(), results.into()];
    a.extend(extra.iter().map(Into::into));
    a
}

#[test]
fn passing_run_exits_0_with_a_table_and_junit() {
    let tmp = temp_dir();
    let results = tmp.path().join("good");
    // 100 premises, 97 POAs at 5 s steps: 50% at 250 s, 80% at 400 s; 1% collisions.
    write_results(&results, 100, 97, 1, 5_000);
    let t = write(&tmp.path().join("t.toml"), THRESHOLDS);
    let junit = tmp.path().join("reports/junit.xml");
    let out = run_harness(
        args(
            &results,
            &[
                "--thresholds",
                t.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ],
        ),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PASS   poa.time_to_50"),
        "{}",
        describe(&out)
    );
    assert!(
        stdout.contains("PASS: all 8 checks passed"),
        "{}",
        describe(&out)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 1, "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 8, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn breached_thresholds_exit_1_and_junit_names_measured_and_allowed() {
    let tmp = temp_dir();
    let results = tmp.path().join("slow");
    // 10 s steps: 50% at 500 s (> 6m), 80% at 800 s (> 9m); 8% collisions (> 5% overall, > 2%).
    write_results(&results, 100, 90, 8, 10_000);
    let t = write(&tmp.path().join("t.toml"), THRESHOLDS);
    let junit = tmp.path().join("junit.xml");
    let out = run_harness(
        args(
            &results,
            &[
                "--thresholds",
                t.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ],
        ),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL   poa.time_to_50"),
        "{}",
        describe(&out)
    );
    assert!(
        stdout.contains("FAIL: 4 of 8 checks failed"),
        "{}",
        describe(&out)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"north/current\""), "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 4, "{xml}");
    assert!(
        xml.contains("<failure message=\"poa.time_to_50: measured 8m20s, allowed &lt;= 6m\""),
        "{xml}"
    );
    assert!(
        xml.contains("message=\"poa.loss_rate: measured 10.00%, allowed &lt;= 5.00%\""),
        "{xml}"
    );
}

#[test]
fn regression_against_a_baseline_exits_1_and_the_same_run_exits_0() {
    let tmp = temp_dir();
    let base = tmp.path().join("base");
    let slower = tmp.path().join("slower");
    write_results(&base, 100, 97, 1, 5_000);
    write_results(&slower, 100, 97, 1, 6_000); // every POA time +20%
    let same = run_harness(args(&base, &["--baseline", base.to_str().unwrap()]), LIMIT);
    assert_eq!(same.status.code(), Some(0), "{}", describe(&same));
    let out = run_harness(
        args(
            &slower,
            &[
                "--baseline",
                base.to_str().unwrap(),
                "--max-regression",
                "10%",
            ],
        ),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL   baseline.poa.time_to_50"),
        "{}",
        describe(&out)
    );
    // A margin wide enough lets it through.
    let out = run_harness(
        args(
            &slower,
            &[
                "--baseline",
                base.to_str().unwrap(),
                "--max-regression",
                "25%",
            ],
        ),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn malformed_or_unknown_thresholds_exit_2_naming_file_line_and_key() {
    let tmp = temp_dir();
    let results = tmp.path().join("r");
    write_results(&results, 20, 20, 0, 1_000);
    let bad_toml = write(
        &tmp.path().join("bad.toml"),
        "[thresholds]\npoa.time_to_50 = \"6m\"\npoa.time_to_95 = 16m\n",
    );
    let unknown = write(
        &tmp.path().join("unknown.toml"),
        "[thresholds]\npoa.time_to_50 = \"6m\"\n\npoa.tme_to_95 = \"16m\"\n",
    );
    for (file, line, key) in [
        (&bad_toml, 3, "poa.time_to_95"),
        (&unknown, 4, "poa.tme_to_95"),
    ] {
        let out = run_harness(
            args(&results, &["--thresholds", file.to_str().unwrap()]),
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let at = format!("{}:{line}:", file.display());
        assert!(stderr.contains(&at), "wanted {at}\n{}", describe(&out));
        assert!(stderr.contains(&format!("`{key}`")), "{}", describe(&out));
    }
    // Missing results: 2, naming the directory.
    let good = write(&tmp.path().join("good.toml"), THRESHOLDS);
    let missing = tmp.path().join("no-such-run");
    let out = run_harness(
        args(&missing, &["--thresholds", good.to_str().unwrap()]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-run"),
        "{}",
        describe(&out)
    );
}
