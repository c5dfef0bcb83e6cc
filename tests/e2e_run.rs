//! Issue 2's acceptance, end to end through the real binary and a real QUIC endpoint on loopback:
//! 30,000 hubs, compressed time, every alert accounted for, and the endpoint's own ledger agreeing
//! with the harness's alert by alert.

use csp_loadtest::{
    check_accounting, describe, free_port, profile, read_alerts, read_run_record, read_summary,
    run_harness, start_ingest, temp_dir,
};
use ledger::{AlertKind, LossCause};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// The alert ids in column `col` of a CSV file's lines that `keep` keeps (lines whose field is not
/// an id, such as a header, are skipped), with how often each occurs.
fn ids_with_counts(
    path: &Path,
    col: usize,
    keep: impl Fn(&csv::StringRecord) -> bool,
) -> BTreeMap<u64, u32> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut m = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let Some(id) = rec.get(col).and_then(|f| f.trim().parse::<u64>().ok()) else {
            continue;
        };
        if keep(&rec) {
            *m.entry(id).or_insert(0) += 1;
        }
    }
    m
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
            // Reconciliation is the subject, not the schedule (exit 3 is pinned below).
            "--max-lag-ms".as_ref(),
            "3600000".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(400),
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let summary = read_summary(&out);
    assert_eq!(summary.meta.hubs, 30_000, "{summary:?}");
    check_accounting(&out, &summary);
    assert_eq!(summary.duplicates, 0, "{summary:?}");
    assert_eq!(summary.false_positives, 0, "{summary:?}");

    // The harness's ledger: delivered ids. The endpoint's ledger: stored ids.
    let alerts = read_alerts(&out);
    let harness_delivered: BTreeSet<u64> = alerts
        .iter()
        .filter(|a| a.fate == "delivered")
        .map(|a| a.alert_id)
        .collect();
    // The endpoint's ledger records the run id of every alert: this run's, from its run.json.
    let text = std::fs::read_to_string(out.join("run.json")).expect("run.json");
    let record: results::RunRecord = serde_json::from_str(&text).expect("a valid run.json");
    let run_id = record.run_id.expect("a run records its run id");
    assert_eq!(run_id.len(), 32, "{run_id}");
    let endpoint = ids_with_counts(&out.join("endpoint-ledger.csv"), 1, |c| {
        c.get(0) == Some(run_id.as_str())
    });
    let twice: Vec<_> = endpoint.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "endpoint stored alerts twice: {twice:?}");
    let h = harness_delivered;
    let e: BTreeSet<u64> = endpoint.keys().copied().collect();
    assert_eq!(
        h.len() as u64,
        summary.alerts.poa.delivered + summary.alerts.pra.delivered
    );
    let only_h: Vec<_> = h.difference(&e).take(5).collect();
    let only_e: Vec<_> = e.difference(&h).take(5).collect();
    assert!(
        only_h.is_empty() && only_e.is_empty(),
        "ledgers disagree: delivered but not stored {only_h:?}, stored but not delivered {only_e:?}"
    );

    // No POA for an outage under 3 minutes: every POA the endpoint stored belongs to a premises
    // whose POA was expected (the harness ledger lists only expected alerts).
    let expected_ids: BTreeSet<u64> = alerts.iter().map(|a| a.alert_id).collect();
    let stray_poa: Vec<_> = e
        .iter()
        .filter(|id| *id % 2 == 0 && !expected_ids.contains(id))
        .take(5)
        .collect();
    assert!(
        stray_poa.is_empty(),
        "POA stored for short outages: {stray_poa:?}"
    );
    // The profile really does contain short outages: fewer POAs expected than premises.
    let poa_expected = summary.alerts.poa.expected;
    let pra_expected = summary.alerts.pra.expected;
    assert!(
        poa_expected < pra_expected,
        "test profile must include outages under 3 minutes"
    );
}

fn run_against(
    port: u16,
    ca: &Path,
    profile_rel: &str,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        "--profile".into(),
        profile(profile_rel).into(),
        "--endpoint".into(),
        format!("quic://127.0.0.1:{port}").into(),
        "--ca".into(),
        ca.into(),
        "--time-scale".into(),
        "600".into(),
        "--quiet".into(),
        "--out".into(),
        out.into(),
        // These tests are about the endpoint, not the harness's schedule (exit 3, pinned by
        // heavy_a_harness_that_falls_behind_...): a loaded test machine must not decide them.
        "--max-lag-ms".into(),
        "3600000".into(),
    ];
    args.extend(extra.iter().map(|a| a.into()));
    run_harness(args, Duration::from_secs(120))
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
    let res = run_against(port, &ca, "central-south/current.toml", &out, &[]);
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
    let res = run_against(port, &ca, "test/mixed-short.toml", &out, &[]);
    // The same run asked for a JUnit report without thresholds: its health checks are the verdict.
    let out_junit = dir.path().join("out-junit");
    let junit = dir.path().join("health.xml");
    let with_junit = run_against(
        port,
        &ca,
        "test/mixed-short.toml",
        &out_junit,
        &["--junit", junit.to_str().expect("utf-8 path")],
    );
    let _ = ingest.kill();
    let _ = ingest.wait();
    // No thresholds: what the endpoint did is the finding, said loudly, and the run passes.
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("rejected"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("warning:") && last.contains("endpoint path lost 100.00%"),
        "the final line says the endpoint path was starved: {err}"
    );
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(md.contains("ENDPOINT-STARVED"), "{md}");
    // With --junit and no thresholds, the failed health check fails the run (exit 1).
    assert_eq!(
        with_junit.status.code(),
        Some(1),
        "{}",
        describe(&with_junit)
    );
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        xml.contains("<testcase name=\"endpoint.delivery\"") && xml.contains("endpoint_rejected"),
        "{xml}"
    );
    let summary = read_summary(&out);
    check_accounting(&out, &summary);
    let mut rejected = 0;
    for kind in AlertKind::ALL {
        let a = summary.kind(kind);
        assert_eq!(a.delivered, 0, "{kind}: {a:?}");
        rejected += a
            .loss_by_cause
            .get(&LossCause::EndpointRejected)
            .copied()
            .unwrap_or(0);
    }
    assert!(rejected > 0, "{summary:?}");
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
            "--max-lag-ms".into(),
            "3600000".into(),
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
    let right = dir.path().join("right");
    let summary = read_summary(&right);
    check_accounting(&right, &summary);
    assert!(summary.alerts.pra.delivered > 0);
}

#[test]
fn heavy_a_harness_that_falls_behind_is_flagged_and_exits_3_with_or_without_thresholds() {
    let dir = temp_dir();
    // Thresholds any healthy run of this profile passes: only the harness's lag can fail it.
    let th = dir.path().join("generous.toml");
    std::fs::write(
        &th,
        "[thresholds]\npoa.loss_rate = 1.0\npra.loss_rate = 1.0\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    let junit = dir.path().join("lagged.xml");
    // 10,000x: the DSP lets up to 550 alerts per scenario second out, 5.5 million per real second:
    // far beyond what the QUIC egress can send (~0.3 million/s), so hand-overs wait to be sent.
    let res = run_harness(
        [
            "run".as_ref(),
            "--profile".as_ref(),
            profile("test/mixed-30k.toml").as_os_str(),
            "--time-scale".as_ref(),
            "10000".as_ref(),
            "--max-lag-ms".as_ref(),
            "100".as_ref(),
            "--quiet".as_ref(),
            "--thresholds".as_ref(),
            th.as_os_str(),
            "--junit".as_ref(),
            junit.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(120),
    );
    // And without thresholds: lagged is a failure of the run itself, exit 3 all the same.
    let bare = run_harness(
        [
            "run".as_ref(),
            "--profile".as_ref(),
            profile("test/mixed-short.toml").as_os_str(),
            "--time-scale".as_ref(),
            "10000".as_ref(),
            // At 10,000x a tenth of a real millisecond late is a scenario second: a limit of
            // 100 scenario ms is one no real-time scheduler keeps, so this run must lag.
            "--max-lag-ms".as_ref(),
            "100".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            dir.path().join("bare").as_os_str(),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(bare.status.code(), Some(3), "{}", describe(&bare));
    let md = std::fs::read_to_string(dir.path().join("bare/summary.md")).expect("summary.md");
    assert!(
        md.contains("LAGGED"),
        "summary.md says the run lagged: {md}"
    );
    // Exit 3: the run itself failed, whatever the (generous) thresholds say.
    assert_eq!(res.status.code(), Some(3), "{}", describe(&res));
    let junit = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        junit.contains("<testcase name=\"harness.schedule\"") && junit.contains("fell behind"),
        "the JUnit says why: {junit}"
    );
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("fell behind"), "{err}");
    let summary = read_summary(&out);
    let health = summary
        .meta
        .health
        .as_ref()
        .expect("a run records its health");
    assert!(health.shards().iter().all(|h| h.lagged), "{health:?}");
    check_accounting(&out, &summary);
    assert!(out.join("host.json").exists());
    // Where it came from, and the warning on every artefact a reader would look at.
    let text = std::fs::read_to_string(out.join("run.json")).expect("run.json");
    let record: results::RunRecord = serde_json::from_str(&text).expect("a valid run.json");
    assert!(
        record.command_line.iter().any(|a| a == "10000"),
        "{record:?}"
    );
    assert_eq!(record.profile.sha256.len(), 64);
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(
        html.contains("LAGGED"),
        "report.html must say the run lagged"
    );
    let svg = std::fs::read_to_string(out.join("poa.svg")).expect("poa.svg");
    assert!(
        svg.contains("LAGGED"),
        "the graph's subtitle must say the run lagged"
    );
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
    let first = run_against(port, &ca, "test/mixed-short.toml", &a, &[]);
    let second = run_against(port, &ca, "test/mixed-short.toml", &b, &[]);
    let _ = ingest.kill();
    let _ = ingest.wait();
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    let (sa, sb) = (read_summary(&a), read_summary(&b));
    let run_id = |dir: &Path| {
        read_run_record(dir)
            .run_id
            .expect("a run records its run id")
    };
    let (ra, rb) = (run_id(&a), run_id(&b));
    assert!(ra.len() == 32 && rb.len() == 32 && ra != rb, "{ra} {rb}");
    for (dir, s) in [(&a, &sa), (&b, &sb)] {
        check_accounting(dir, s);
        assert_eq!(s.meta.endpoint_duplicates, Some(0), "{s:?}");
    }
    let delivered = |s: &results::Summary| s.alerts.poa.delivered + s.alerts.pra.delivered;
    let stored_a = ids_with_counts(&ledger, 1, |c| c.get(0) == Some(ra.as_str()));
    let stored_b = ids_with_counts(&ledger, 1, |c| c.get(0) == Some(rb.as_str()));
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
    check_accounting(&out, &summary);
    assert!(!summary.meta.complete, "{summary:?}");
    let why = summary.meta.incomplete_reason.clone().unwrap_or_default();
    assert!(why.contains("credentials"), "{summary:?}");
    let unreachable: u64 = AlertKind::ALL
        .iter()
        .map(|k| {
            summary
                .kind(*k)
                .loss_by_cause
                .get(&LossCause::EndpointUnreachable)
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(unreachable, 0, "not blamed on reachability: {summary:?}");
}
