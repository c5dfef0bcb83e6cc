//! The real path agrees with the model: `run` at 60x against the reference QUIC endpoint gives the
//! same delivery times as `simulate` (virtual time, instant acks) for the same profile and seed,
//! within ±10% (issue 3), and exactly the same alerts delivered and lost (the same model runs in
//! both). The time difference is what the real endpoint, the egress and the scheduler add.

use csp_loadtest::{describe, profile, read_summary, run_harness, temp_dir};
use ledger::AlertKind;
use std::time::Duration;

#[test]
fn heavy_run_at_60x_matches_simulate_within_10_percent() {
    let dir = temp_dir();
    let prof = profile("central-south/current.toml");
    let sim = dir.path().join("sim");
    let real = dir.path().join("real");
    let common = |mode: &str, out: &std::path::Path| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec![
            mode.into(),
            "--profile".into(),
            prof.clone().into(),
            "--seed".into(),
            "11".into(),
            "--quiet".into(),
            "--out".into(),
            out.into(),
        ];
        if mode == "run" {
            v.extend(["--time-scale".into(), "60".into()]);
        }
        v
    };
    let res = run_harness(common("simulate", &sim), Duration::from_secs(120));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let res = run_harness(common("run", &real), Duration::from_secs(300));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let (s, r) = (read_summary(&sim), read_summary(&real));
    let mut report = Vec::new();
    let mut compared = 0;
    for kind in AlertKind::ALL {
        let (sk, rk) = (s.kind(kind), r.kind(kind));
        assert_eq!(
            sk.expected, rk.expected,
            "{kind}: same scenario, same expected"
        );
        // The real run drives the same model: the same alerts leave it and the same are lost in
        // it, so a healthy endpoint acknowledges exactly what `simulate` delivers.
        assert_eq!(sk.delivered, rk.delivered, "{kind}: delivered");
        assert_eq!(sk.loss_by_cause, rk.loss_by_cause, "{kind}: loss by cause");
        for pct in [50.0, 80.0, 95.0, 99.0] {
            let (ts, tr) = (sk.time_to(pct), rk.time_to(pct));
            let (Some(ts), Some(tr)) = (ts, tr) else {
                assert_eq!(
                    ts.is_some(),
                    tr.is_some(),
                    "{kind} {pct}%: reached in one only"
                );
                continue;
            };
            compared += 1;
            let rel = (tr - ts) / ts;
            report.push(format!(
                "{kind} {pct}%: simulate {ts:.0}s run {tr:.0}s ({:+.1}%)",
                rel * 100.0
            ));
            assert!(
                rel.abs() <= 0.10,
                "{kind} {pct}%: simulate {ts}s, run {tr}s\n{}",
                report.join("\n")
            );
        }
    }
    eprintln!("{}", report.join("\n"));
    // Both sides reaching no level at all would compare nothing: C&S Current reaches 50%, 80%
    // and 95% for both kinds.
    assert!(
        compared >= 6,
        "only {compared} levels reached in both runs:\n{}",
        report.join("\n")
    );
}
