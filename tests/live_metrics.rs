//! Issue 14's live observation, through the real binary: `run --metrics-listen` and
//! `ingest --metrics-listen` scraped like Prometheus while a run goes on and once it has ended; the
//! final values must be summary.json's, exactly, and the endpoint's must be its own exit report and
//! agree with the harness's. The Grafana dashboard may only query metrics a scrape exposes.
//! `compare --metrics-listen` serves each profile's run in turn on one address.

use csp_loadtest::scrape::{Scrape, scrape, try_scrape};
use csp_loadtest::{harness_bin, profile, read_summary, send_signal, temp_dir};
use ledger::{AlertKind, LossCause};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A child whose output lines arrive on channels as it prints them.
struct Watched {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

impl Watched {
    fn spawn(args: &[&std::ffi::OsStr]) -> Watched {
        let mut child = Command::new(harness_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn csp-harness");
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().expect("stdout")));
        let stderr = lines(Box::new(child.stderr.take().expect("stderr")));
        Watched {
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The first line (stdout or stderr) containing `needle`, within `limit`.
    fn wait_line(&mut self, needle: &str, limit: Duration) -> String {
        let start = Instant::now();
        while start.elapsed() < limit {
            for l in self.stdout.try_iter().chain(self.stderr.try_iter()) {
                self.seen.push(l);
            }
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no line with {needle:?} within {limit:?}; output so far:\n{}",
            self.seen.join("\n")
        );
    }

    /// The metrics URL the process printed.
    fn metrics_url(&mut self) -> String {
        let line = self.wait_line("metrics: http://", Duration::from_secs(30));
        let start = line.find("http://").expect("url");
        line[start..]
            .split_whitespace()
            .next()
            .expect("url")
            .to_string()
    }

    /// Signals the process and returns its exit code and remaining stdout lines.
    fn stop(mut self, signal: &str) -> (Option<i32>, Vec<String>) {
        send_signal(self.child.id(), signal);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("process did not stop on {signal}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.stdout.try_iter().collect())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // A failed assertion must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kinds() -> [(AlertKind, &'static str); 2] {
    [(AlertKind::Poa, "poa"), (AlertKind::Pra, "pra")]
}

#[test]
fn live_metrics_of_a_run_and_its_endpoint_add_up_to_the_summary_and_feed_the_dashboard() {
    let dir = temp_dir();
    let cert = dir.path().join("cert.pem");
    let out = dir.path().join("run");
    let quic = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port");
    let mut ingest = Watched::spawn(&[
        "ingest".as_ref(),
        "--listen".as_ref(),
        quic.to_string().as_ref(),
        "--cert-out".as_ref(),
        cert.as_os_str(),
        "--metrics-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ]);
    let ingest_url = ingest.metrics_url();
    let before = scrape(&ingest_url);
    assert_eq!(before.count("csp_ingest_alerts_stored_total", &[]), 0);

    // ~12 s of real time: long enough to be scraped while it runs on any machine.
    let mut run = Watched::spawn(&[
        "run".as_ref(),
        "--profile".as_ref(),
        profile("test/mixed-short.toml").as_os_str(),
        "--endpoint".as_ref(),
        format!("quic://{quic}").as_ref(),
        "--ca".as_ref(),
        cert.as_os_str(),
        "--time-scale".as_ref(),
        "120".as_ref(),
        "--max-lag-ms".as_ref(),
        "3600000".as_ref(),
        "--quiet".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--metrics-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--metrics-hold-s".as_ref(),
        "120".as_ref(),
    ]);
    let run_url = run.metrics_url();

    // Mid-run: some alerts delivered, the run not finished, every expected alert in one state.
    let start = Instant::now();
    let mid = loop {
        let s = scrape(&run_url);
        let delivered = s.count("csp_alerts_delivered_total", &[("kind", "poa")]);
        if s.value("csp_run_finished", &[]) == 0.0 && delivered > 0 {
            break s;
        }
        assert!(
            s.value("csp_run_finished", &[]) == 0.0,
            "the run ended before a mid-run scrape saw a delivery"
        );
        assert!(start.elapsed() < Duration::from_secs(120), "no delivery");
        std::thread::sleep(Duration::from_millis(100));
    };
    for (_, k) in kinds() {
        let lost: f64 = LossCause::ALL
            .iter()
            .map(|c| {
                mid.value(
                    "csp_alerts_lost_total",
                    &[("kind", k), ("cause", c.as_str())],
                )
            })
            .sum();
        assert_eq!(
            mid.value("csp_alerts_delivered_total", &[("kind", k)])
                + lost
                + mid.value("csp_alerts_pending", &[("kind", k)]),
            mid.value("csp_alerts_expected_total", &[("kind", k)]),
            "{k}: delivered + lost + pending != expected mid-run"
        );
    }
    println!(
        "mid-run: scenario {} s, PRA delivered {} of {} expected, in flight {}",
        mid.value("csp_scenario_time_seconds", &[]),
        mid.count("csp_alerts_delivered_total", &[("kind", "pra")]),
        mid.count("csp_alerts_expected_total", &[("kind", "pra")]),
        mid.value("csp_egress_in_flight", &[]),
    );

    // The end: results written, values final and equal to summary.json's.
    run.wait_line("metrics: final values", Duration::from_secs(180));
    let end = scrape(&run_url);
    let summary = read_summary(&out);
    assert_eq!(end.value("csp_run_finished", &[]), 1.0);
    for (kind, k) in kinds() {
        let ks = summary.kind(kind);
        let l = [("kind", k)];
        assert_eq!(
            end.count("csp_alerts_expected_total", &l),
            ks.expected,
            "{k}"
        );
        assert_eq!(
            end.count("csp_alerts_delivered_total", &l),
            ks.delivered,
            "{k}"
        );
        assert_eq!(end.count("csp_alerts_pending", &l), ks.pending, "{k}");
        for c in LossCause::ALL {
            assert_eq!(
                end.count(
                    "csp_alerts_lost_total",
                    &[("kind", k), ("cause", c.as_str())]
                ),
                ks.loss_by_cause.get(&c).copied().unwrap_or(0),
                "{k} {c}"
            );
        }
        assert_eq!(
            end.count("csp_delivery_delay_seconds_count", &l),
            ks.delivered
        );
        assert_eq!(
            end.count(
                "csp_delivery_delay_seconds_bucket",
                &[("kind", k), ("le", "+Inf")]
            ),
            ks.delivered
        );
        assert!(
            end.count("csp_alerts_delivered_total", &l)
                >= mid.count("csp_alerts_delivered_total", &l)
        );
    }
    let anomaly = |w| end.count("csp_acks_anomalous_total", &[("what", w)]);
    assert_eq!(anomaly("duplicate"), summary.duplicates);
    assert_eq!(anomaly("false_positive"), summary.false_positives);
    assert_eq!(anomaly("unexpected_pra"), summary.unexpected_pra);
    let health = summary.meta.health.as_ref().expect("health").shards()[0].clone();
    let eg = health.egress.expect("egress health");
    let answer = |a| end.count("csp_egress_answers_total", &[("answer", a)]);
    assert_eq!(end.count("csp_alerts_submitted_total", &[]), eg.submitted);
    assert_eq!(
        end.count("csp_harness_lag_seconds_count", &[]),
        eg.submitted
    );
    assert_eq!(answer("ack"), eg.delivered);
    assert_eq!(answer("endpoint_duplicate"), eg.endpoint_duplicates);
    assert_eq!(answer("duplicate_ack"), eg.duplicate_acks);
    assert_eq!(answer("reject"), eg.rejected);
    assert_eq!(answer("backpressure"), eg.backpressure);
    assert_eq!(answer("retry"), eg.retried);
    let sends = |a| end.count("csp_egress_sends_total", &[("attempt", a)]);
    assert_eq!(sends("first") + sends("resend"), eg.frames_sent);
    assert_eq!(sends("resend"), eg.resent);
    let event = |e| end.count("csp_egress_connection_events_total", &[("event", e)]);
    assert_eq!(event("connect"), eg.connects);
    assert_eq!(event("connect_failure"), eg.connect_failures);
    assert_eq!(event("lost"), eg.connections_lost);
    let egress_lost = |c| end.count("csp_egress_lost_total", &[("cause", c)]);
    assert_eq!(egress_lost("queue_overflow"), eg.queue_overflow);
    assert_eq!(egress_lost("expired"), eg.expired);
    assert_eq!(egress_lost("unreachable_at_drain"), eg.unreachable_at_drain);
    assert_eq!(end.count("csp_egress_in_flight", &[]), 0);
    assert!(eg.delivered > 0, "the run delivered nothing");
    println!(
        "end: POA {}/{} PRA {}/{} delivered, acks {}, as in summary.json",
        summary.alerts.poa.delivered,
        summary.alerts.poa.expected,
        summary.alerts.pra.delivered,
        summary.alerts.pra.expected,
        eg.delivered
    );

    // The endpoint: its acks are the harness's acks, what it stored is what was delivered.
    let ing = scrape(&ingest_url);
    let stored = ing.count("csp_ingest_alerts_stored_total", &[]);
    let duplicates = ing.count("csp_ingest_alerts_duplicate_total", &[]);
    let acked = ing.count("csp_ingest_alerts_acked_total", &[]);
    assert_eq!(acked, eg.delivered, "endpoint acks vs harness acks");
    assert_eq!(acked, stored + duplicates);
    assert_eq!(duplicates, eg.endpoint_duplicates);
    assert_eq!(
        stored,
        summary.alerts.poa.delivered
            + summary.alerts.pra.delivered
            + summary.false_positives
            + summary.unexpected_pra,
        "stored vs delivered"
    );
    let rejected: f64 = ing
        .by_label("csp_ingest_alerts_rejected_total", "reason")
        .values()
        .sum();
    assert_eq!(rejected as u64, eg.rejected);
    let calls = ing.count("csp_ingest_store_latency_seconds_count", &[]);
    assert!(calls >= 1 && calls <= stored, "store calls {calls}");

    check_dashboard(&[&end, &ing]);

    // Both stop on a signal; the endpoint's exit report says what its last scrape said.
    let (code, _) = run.stop("INT");
    assert_eq!(
        code,
        Some(130),
        "Ctrl-C during the hold ends the command as interrupted"
    );
    let (code, lines) = ingest.stop("INT");
    assert_eq!(code, Some(0));
    let report: serde_json::Value = lines
        .iter()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report on stdout: {lines:?}"));
    assert_eq!(report["alerts_stored"], stored);
    assert_eq!(report["acked"], acked);
    assert_eq!(report["duplicates"], duplicates);
    assert_eq!(report["rejected"], rejected as u64);
}

/// Every metric name a PromQL expression of the Grafana dashboard names is one a scrape exposes
/// (a renamed metric would leave a panel silently empty).
fn check_dashboard(scrapes: &[&Scrape]) {
    let path = csp_loadtest::repo_root().join("deploy/grafana/csp-loadtest-live.json");
    let text = std::fs::read_to_string(&path).expect("dashboard");
    let json: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    assert!(
        exprs.len() >= 10,
        "only {} queries in the dashboard",
        exprs.len()
    );
    let exposed: std::collections::BTreeSet<String> =
        scrapes.iter().flat_map(|s| s.queryable_names()).collect();
    for e in &exprs {
        let names = metric_names(e);
        assert!(!names.is_empty(), "a query names no csp_ metric: {e}");
        for n in names {
            assert!(
                exposed.contains(&n),
                "the dashboard queries {n}, not exposed: {e}"
            );
        }
    }
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The identifiers of a PromQL expression that are metric names: every one starting `csp_`
/// outside label matchers' quoted values (the harness's names all do; no label name does).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_quotes = false;
    let mut ident = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if !in_quotes && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            ident.push(c);
        } else {
            if ident.starts_with("csp_") {
                names.push(std::mem::take(&mut ident));
            }
            ident.clear();
        }
    }
    names
}

#[test]
fn metric_names_are_read_out_of_promql() {
    assert_eq!(
        metric_names(
            r#"sum by (le) (rate(csp_a_bucket{kind="csp_not_a_name"}[1m])) / scalar(csp_b_total)"#
        ),
        ["csp_a_bucket", "csp_b_total"]
    );
}

#[test]
fn a_metrics_address_in_use_is_a_usage_error_before_anything_is_sent() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = temp_dir();
    let out = csp_loadtest::run_harness(
        [
            "run".as_ref(),
            "--profile".as_ref(),
            profile("test/mixed-short.toml").as_os_str(),
            "--time-scale".as_ref(),
            "600".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            dir.path().join("run").as_os_str(),
            "--metrics-listen".as_ref(),
            addr.as_ref(),
        ],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("--metrics-listen {addr}")), "{err}");
    assert!(
        !dir.path().join("run").exists(),
        "nothing may start before the address is refused"
    );
}

#[test]
fn compare_serves_each_profiles_run_in_turn_on_one_address() {
    let dir = temp_dir();
    // A second profile that differs from the first by its name only, so the scrapes can tell
    // which run they saw.
    let second = dir.path().join("second.toml");
    std::fs::write(
        &second,
        format!(
            "extends = {:?}\nname = \"test/mixed-short-second\"\n",
            profile("test/mixed-short.toml").display().to_string()
        ),
    )
    .expect("write profile");
    let out = dir.path().join("cmp");
    let mut cmp = Watched::spawn(&[
        "compare".as_ref(),
        "--profile".as_ref(),
        profile("test/mixed-short.toml").as_os_str(),
        "--profile".as_ref(),
        second.as_os_str(),
        "--time-scale".as_ref(),
        "120".as_ref(),
        "--quiet".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--metrics-listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--metrics-hold-s".as_ref(),
        "120".as_ref(),
    ]);
    let url = cmp.metrics_url();
    let mut seen: Vec<String> = Vec::new();
    let start = Instant::now();
    let last = loop {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "compare did not finish; profiles seen: {seen:?}"
        );
        if let Ok(s) = try_scrape(&url) {
            let run = s.by_label("csp_run_info", "profile");
            assert_eq!(run.len(), 1, "one run at a time: {run:?}");
            let name = run.keys().next().expect("a run").clone();
            if seen.last() != Some(&name) {
                seen.push(name);
            }
            if s.value("csp_run_finished", &[]) == 1.0 && seen.len() == 2 {
                break s;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        seen,
        ["test/mixed-short", "test/mixed-short-second"],
        "each profile's run on the same address, in order"
    );
    // The last run's final values are its summary's.
    cmp.wait_line("metrics: final values", Duration::from_secs(60));
    let summary = read_summary(&out.join("test-mixed-short-second"));
    for (kind, k) in kinds() {
        assert_eq!(
            last.count("csp_alerts_delivered_total", &[("kind", k)]),
            summary.kind(kind).delivered,
            "{k}"
        );
    }
    let (code, _) = cmp.stop("INT");
    assert_eq!(code, Some(130), "Ctrl-C during the hold, as for run");
    assert!(
        out.join("report.html").exists(),
        "the comparison is still written when the hold ends"
    );

    // No live metrics for --simulate: a usage error.
    let res = csp_loadtest::run_harness(
        ["compare", "--simulate", "--metrics-listen", "127.0.0.1:0"],
        Duration::from_secs(60),
    );
    assert_eq!(
        res.status.code(),
        Some(2),
        "{}",
        csp_loadtest::describe(&res)
    );
}
