//! Issue 2's acceptance, end to end through the real binary and a real QUIC endpoint on loopback:
//! 30,000 hubs, compressed time, every alert accounted for, and the endpoint's own ledger agreeing
//! with the harness's alert by alert.

use csp_loadtest::{describe, profile, read_summary, run_harness, temp_dir};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// First CSV column parsed as an alert id; header and blank lines skipped.
/// Alert ids (in column `col`) of the lines of a CSV file that `keep` keeps, with their counts.
fn ids_with_counts(path: &Path, col: usize, keep: impl Fn(&[&str]) -> bool) -> BTreeMap<u64, u32> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split(',').collect();
        let Some(Ok(id)) = cols.get(col).map(|c| c.trim().parse::<u64>()) else {
            continue;
        };
        if keep(&cols) {
            *m.entry(id).or_insert(0) += 1;
        }
    }
    m
}

fn check_accounting(summary: &serde_json::Value) {
    for kind in ["poa", "pra"] {
        let a = &summary["alerts"][kind];
        let expected = a["expected"].as_u64().expect("expected");
        let delivered = a["delivered"].as_u64().expect("delivered");
        let lost = a["lost"].as_u64().expect("lost");
        assert_eq!(expected, delivered + lost, "{kind}: {a}");
        let by_cause: u64 = a["loss_by_cause"]
            .as_object()
            .expect("loss_by_cause")
            .values()
            .map(|v| v.as_u64().expect("count"))
            .sum();
        assert_eq!(
            by_cause, lost,
            "{kind}: causes must add up to the loss: {a}"
        );
        assert!(expected > 0, "{kind}: nothing expected");
    }
}

#[test]
fn heavy_30k_hubs_through_the_reference_endpoint_reconcile_exactly() {
    let dir = temp_dir();
    let out = dir.path().join("run");
    let res = run_harness(
        [
            "run".as_ref(),
            "--profile".as_ref(),
            profile("test/mixed-30k.toml").as_os_str(),
            "--time-scale".as_ref(),
            "240".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(400),
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let summary = read_summary(&out);
    assert_eq!(summary["hubs"].as_u64(), Some(30_000), "{summary}");
    check_accounting(&summary);
    assert_eq!(summary["duplicates"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["false_positives"].as_u64(), Some(0), "{summary}");

    // The harness's ledger: delivered ids. The endpoint's ledger: stored ids.
    let harness_delivered = ids_with_counts(&out.join("alerts.csv"), 0, |c| {
        c.get(5).is_some_and(|f| f.trim() == "delivered")
    });
    // The endpoint's ledger records the run id of every alert: this run's.
    let run_id = summary["run_id"]
        .as_str()
        .expect("run id in summary")
        .to_string();
    assert_eq!(run_id.len(), 32, "{run_id}");
    let endpoint = ids_with_counts(&out.join("endpoint-ledger.csv"), 1, |c| c[0] == run_id);
    let twice: Vec<_> = endpoint.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "endpoint stored alerts twice: {twice:?}");
    let h: BTreeSet<u64> = harness_delivered.keys().copied().collect();
    let e: BTreeSet<u64> = endpoint.keys().copied().collect();
    assert_eq!(
        h.len() as u64,
        summary["alerts"]["poa"]["delivered"].as_u64().unwrap_or(0)
            + summary["alerts"]["pra"]["delivered"].as_u64().unwrap_or(0)
    );
    let only_h: Vec<_> = h.difference(&e).take(5).collect();
    let only_e: Vec<_> = e.difference(&h).take(5).collect();
    assert!(
        only_h.is_empty() && only_e.is_empty(),
        "ledgers disagree: delivered but not stored {only_h:?}, stored but not delivered {only_e:?}"
    );

    // No POA for an outage under 3 minutes: every POA the endpoint stored belongs to a premises
    // whose POA was expected (the harness ledger lists only expected alerts).
    let expected_ids = ids_with_counts(&out.join("alerts.csv"), 0, |_| true);
    let stray_poa: Vec<_> = e
        .iter()
        .filter(|id| *id % 2 == 0 && !expected_ids.contains_key(id))
        .take(5)
        .collect();
    assert!(
        stray_poa.is_empty(),
        "POA stored for short outages: {stray_poa:?}"
    );
    // The profile really does contain short outages: fewer POAs expected than premises.
    let poa_expected = summary["alerts"]["poa"]["expected"].as_u64().unwrap_or(0);
    let pra_expected = summary["alerts"]["pra"]["expected"].as_u64().unwrap_or(0);
    assert!(
        poa_expected < pra_expected,
        "test profile must include outages under 3 minutes"
    );
}

/// A free UDP port on loopback (bound, noted, released).
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts `csp-harness ingest` on `port` with `extra` flags; returns the child once its
/// certificate file exists (the endpoint is then listening).
fn start_ingest(port: u16, cert: &Path, extra: &[&str]) -> std::process::Child {
    let child = std::process::Command::new(csp_loadtest::harness_bin())
        .args([
            "ingest",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cert-out",
        ])
        .arg(cert)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ingest");
    let start = std::time::Instant::now();
    while !cert.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ingest did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn run_against(port: u16, ca: &Path, profile_rel: &str, out: &Path) -> std::process::Output {
    run_harness(
        [
            "run".as_ref(),
            "--profile".as_ref(),
            profile(profile_rel).as_os_str(),
            "--endpoint".as_ref(),
            format!("quic://127.0.0.1:{port}").as_ref(),
            "--ca".as_ref(),
            ca.as_os_str(),
            "--time-scale".as_ref(),
            "600".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(120),
    )
}

#[test]
fn unreachable_endpoint_given_by_the_user_exits_2_quickly_with_a_clear_message() {
    let dir = temp_dir();
    let port = free_port();
    let ca = dir.path().join("ca.pem");
    // The endpoint existed (so the certificate is real) and is gone: nothing listens on the port.
    let mut ingest = start_ingest(port, &ca, &[]);
    ingest.kill().expect("kill ingest");
    ingest.wait().expect("reap ingest");
    let out = dir.path().join("out");
    let res = run_against(port, &ca, "central-south/current.toml", &out);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("unreachable"), "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
    assert!(
        !out.join("summary.json").exists(),
        "no results may be passed off as a run that never reached its endpoint"
    );
}

#[test]
fn rejecting_endpoint_loses_alerts_as_rejected_and_says_so() {
    let dir = temp_dir();
    let port = free_port();
    let ca = dir.path().join("ca.pem");
    let mut ingest = start_ingest(port, &ca, &["--reject-all"]);
    let out = dir.path().join("out");
    let res = run_against(port, &ca, "test/mixed-short.toml", &out);
    let _ = ingest.kill();
    let _ = ingest.wait();
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("rejected"), "{err}");
    let summary = read_summary(&out);
    check_accounting(&summary);
    let mut rejected = 0;
    for kind in ["poa", "pra"] {
        let a = &summary["alerts"][kind];
        assert_eq!(a["delivered"].as_u64(), Some(0), "{kind}: {a}");
        rejected += a["loss_by_cause"]["endpoint_rejected"]
            .as_u64()
            .unwrap_or(0);
    }
    assert!(rejected > 0, "{summary}");
}

#[test]
fn endpoint_requiring_a_token_refuses_a_run_without_the_right_one() {
    let dir = temp_dir();
    let port = free_port();
    let ca = dir.path().join("ca.pem");
    let mut ingest = start_ingest(port, &ca, &["--auth-token", "s3cret"]);
    let url = format!("quic://127.0.0.1:{port}");
    let args = |token: &str, out: &str| -> Vec<std::ffi::OsString> {
        vec![
            "run".into(),
            "--profile".into(),
            profile("test/mixed-short.toml").into(),
            "--endpoint".into(),
            url.clone().into(),
            "--ca".into(),
            ca.clone().into(),
            "--token".into(),
            token.into(),
            "--time-scale".into(),
            "600".into(),
            "--quiet".into(),
            "--out".into(),
            dir.path().join(out).into(),
        ]
    };
    let wrong = run_harness(args("guess", "wrong"), Duration::from_secs(60));
    let right = run_harness(args("s3cret", "right"), Duration::from_secs(120));
    let _ = ingest.kill();
    let _ = ingest.wait();
    assert_eq!(wrong.status.code(), Some(2), "{}", describe(&wrong));
    let err = String::from_utf8_lossy(&wrong.stderr).to_lowercase();
    assert!(
        err.contains("token") || err.contains("unauthenticated"),
        "the refusal must say why: {err}"
    );
    assert_eq!(right.status.code(), Some(0), "{}", describe(&right));
    let summary = read_summary(&dir.path().join("right"));
    check_accounting(&summary);
    assert!(summary["alerts"]["pra"]["delivered"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn heavy_a_harness_that_falls_behind_is_flagged_and_cannot_pass() {
    let dir = temp_dir();
    // Thresholds any healthy run of this profile passes: only the harness's lag can fail it.
    let th = dir.path().join("generous.toml");
    std::fs::write(
        &th,
        "[thresholds]\npoa.loss_rate = 1.0\npra.loss_rate = 1.0\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    // 10,000x: a 70-minute scenario in 0.4 s of real time, far beyond what 2 cores can keep up with.
    let res = run_harness(
        [
            "run".as_ref(),
            "--profile".as_ref(),
            profile("test/mixed-short.toml").as_os_str(),
            "--time-scale".as_ref(),
            "10000".as_ref(),
            "--quiet".as_ref(),
            "--thresholds".as_ref(),
            th.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("fell behind"), "{err}");
    let summary = read_summary(&out);
    assert_eq!(
        summary["health"]["lagged"].as_bool(),
        Some(true),
        "{summary}"
    );
    check_accounting(&summary);
    assert!(out.join("host.json").exists());
}

/// Two runs against one long-lived endpoint: each run's alerts are new alerts to the endpoint
/// (ids are scoped by the run id), so the second run is stored, not taken for resends, and neither
/// summary reports endpoint duplicates.
#[test]
fn two_runs_against_one_endpoint_are_both_stored() {
    let dir = temp_dir();
    let port = free_port();
    let ca = dir.path().join("ca.pem");
    let ledger = dir.path().join("endpoint-ledger.csv");
    let ledger_arg = ledger.display().to_string();
    let mut ingest = start_ingest(port, &ca, &["--ledger", &ledger_arg]);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = run_against(port, &ca, "test/mixed-short.toml", &a);
    let second = run_against(port, &ca, "test/mixed-short.toml", &b);
    let _ = ingest.kill();
    let _ = ingest.wait();
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let (sa, sb) = (read_summary(&a), read_summary(&b));
    let (ra, rb) = (
        sa["run_id"].as_str().unwrap_or_default().to_string(),
        sb["run_id"].as_str().unwrap_or_default().to_string(),
    );
    assert!(ra.len() == 32 && rb.len() == 32 && ra != rb, "{ra} {rb}");
    for s in [&sa, &sb] {
        check_accounting(s);
        assert_eq!(s["endpoint_duplicates"].as_u64(), Some(0), "{s}");
    }
    let delivered = |s: &serde_json::Value| {
        s["alerts"]["poa"]["delivered"].as_u64().unwrap_or(0)
            + s["alerts"]["pra"]["delivered"].as_u64().unwrap_or(0)
    };
    let stored_a = ids_with_counts(&ledger, 1, |c| c[0] == ra);
    let stored_b = ids_with_counts(&ledger, 1, |c| c[0] == rb);
    assert_eq!(stored_a.len() as u64, delivered(&sa));
    assert_eq!(stored_b.len() as u64, delivered(&sb));
    assert!(delivered(&sb) > 0);
    let md = std::fs::read_to_string(b.join("summary.md")).unwrap_or_default();
    assert!(md.contains(&rb), "summary.md names the run id");
}

/// The endpoint stops accepting the token part-way through the run: a fatal, named error (exit
/// 2), results written and marked incomplete, never alerts silently lost as unreachable.
#[test]
fn credentials_refused_mid_run_end_the_run_with_exit_2() {
    let dir = temp_dir();
    let port = free_port();
    let ca = dir.path().join("ca.pem");
    let mut ingest = start_ingest(
        port,
        &ca,
        &["--auth-token", "s3cret", "--revoke-auth-after", "300"],
    );
    let out = dir.path().join("out");
    let res = run_harness(
        [
            "run".as_ref(),
            "--profile".as_ref(),
            profile("test/mixed-short.toml").as_os_str(),
            "--endpoint".as_ref(),
            format!("quic://127.0.0.1:{port}").as_ref(),
            "--ca".as_ref(),
            ca.as_os_str(),
            "--token".as_ref(),
            "s3cret".as_ref(),
            "--time-scale".as_ref(),
            "600".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(120),
    );
    let _ = ingest.kill();
    let _ = ingest.wait();
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("refused this client's credentials"), "{err}");
    let summary = read_summary(&out);
    check_accounting(&summary);
    assert_eq!(summary["complete"].as_bool(), Some(false), "{summary}");
    let why = summary["incomplete_reason"].as_str().unwrap_or_default();
    assert!(why.contains("credentials"), "{summary}");
    let unreachable: u64 = ["poa", "pra"]
        .iter()
        .map(|k| {
            summary["alerts"][k]["loss_by_cause"]["endpoint_unreachable"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(unreachable, 0, "not blamed on reachability: {summary}");
}
