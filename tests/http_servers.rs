//! The HTTP transports against servers nobody here wrote — nginx (HTTP/1.1 and HTTP/2 over TLS)
//! and Caddy (HTTP/3) from Debian — and against the reference endpoint's HTTP front.
//!
//! Each test starts its own server process on a free loopback port in a temporary directory, with
//! a hard time bound, and kills it at the end. The servers' own access logs are the witnesses:
//! the harness's delivered count must equal the POSTs the server logged, per alert kind. A missing
//! server binary FAILS the test (`.ci/run` installs nginx and caddy); it is never skipped.
//!
//! The status-mapping table (docs/http.md) is exercised one status per test: `http_status_*`.

// Helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use csp_loadtest::{
    check_accounting, describe, profile, read_run_record, read_summary, run_harness, temp_dir,
};
use egress::http::HttpVersion;
use egress::payload::Format;
use egress::{Egress, EgressConfig, EgressStats, HttpSettings, Protocol};
use ledger::{AlertCode, AlertId, AlertKind, Fate, Ledger, Region};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use virtual_hubs::{Outbound, ScenarioClock};

/// Hard limit of a server's start-up.
const START_LIMIT: Duration = Duration::from_secs(15);

/// A server process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of `name`, or a failure that says how to get it.
fn need(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: these tests need it (bash .ci/run installs it: \
         apt-get install -y nginx caddy nghttp2-client)"
    );
}

/// A free TCP port on loopback whose UDP twin is free too (bound, noted, released).
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Writes a fresh self-signed certificate for localhost/127.0.0.1 and its key.
fn cert(dir: &Path) -> (PathBuf, PathBuf) {
    let c = tls::self_signed().unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &c.cert_pem).unwrap();
    std::fs::write(&key, &c.key_pem).unwrap();
    (cert, key)
}

/// Waits until something accepts TCP connections on `port`.
fn wait_tcp(port: u16, child: &mut Child, what: &str, log: &Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited at start ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(start.elapsed() < START_LIMIT, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx on a free loopback port, TLS with the test's certificate, HTTP/1.1 and HTTP/2:
/// `/alerts` answers 204 and logs `method uri status protocol kind key msec` to `access.log`;
/// the other locations answer one status each (see `STATUS_LOCATIONS`).
fn nginx(dir: &Path) -> Server {
    let bin = need("nginx");
    let (cert, key) = cert(dir);
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  log_format alerts '$request_method $uri $status $server_protocol $http_x_csp_alert_kind $http_idempotency_key $msec';
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location /alerts {{ access_log {d}/access.log alerts; return 204; }}
    location /bad {{ access_log {d}/bad.log alerts; return 400; }}
    location /auth {{ access_log {d}/auth.log alerts; return 401; }}
    location /throttle {{ access_log {d}/throttle.log alerts; add_header Retry-After 1 always; return 429; }}
    location /busy {{ access_log {d}/busy.log alerts; add_header Retry-After 1 always; return 503; }}
  }}
}}
"#,
        cert = cert.display(),
        key = key.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    wait_tcp(port, &mut child, "nginx", &dir.join("error.log"));
    Server {
        child,
        port,
        dir: dir.to_path_buf(),
    }
}

/// Caddy 2.6 on a free loopback port with the test's certificate (HTTP/1.1, HTTP/2, HTTP/3 on
/// its HTTPS listener), admin API, automatic HTTPS redirects and certificate management off:
/// `/alerts` answers 204 and every request is logged as JSON to `access.log`.
fn caddy(dir: &Path) -> Server {
    let bin = need("caddy");
    let (cert, key) = cert(dir);
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        r#"{{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system {d}/data
	servers {{
		protocols h1 h2 h3
	}}
}}
https://127.0.0.1:{port}, https://localhost:{port} {{
	tls {cert} {key}
	log {{
		output file {d}/access.log
		format json
	}}
	respond /alerts* 204
}}
"#,
        cert = cert.display(),
        key = key.display(),
    );
    std::fs::write(dir.join("Caddyfile"), conf).unwrap();
    let log = std::fs::File::create(dir.join("caddy.out")).unwrap();
    let mut child = Command::new(bin)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("xdg"))
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn caddy");
    wait_tcp(port, &mut child, "caddy", &dir.join("caddy.out"));
    // The HTTP/3 listener comes up beside the TCP one.
    std::thread::sleep(Duration::from_millis(500));
    Server {
        child,
        port,
        dir: dir.to_path_buf(),
    }
}

/// POSTs per alert kind (and protocol) in an nginx log of the `alerts` format, for status `status`.
fn nginx_posts(log: &Path, status: &str) -> BTreeMap<(String, String), u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() >= 5 && f[0] == "POST" && f[2] == status {
            *m.entry((f[4].to_string(), f[3].to_string())).or_insert(0) += 1;
        }
    }
    m
}

/// Delivered alerts per kind in a summary.
fn delivered(summary: &results::Summary) -> (u64, u64) {
    (summary.alerts.poa.delivered, summary.alerts.pra.delivered)
}

/// The transport the egress used, as the run's health records it.
fn transport(summary: &results::Summary) -> String {
    summary
        .meta
        .health
        .as_ref()
        .and_then(|h| h.shards().first())
        .and_then(|h| h.egress.as_ref())
        .map(|e| e.transport.clone())
        .expect("a run records its egress")
}

/// `run` of the short test profile against `url`, with `extra` flags.
fn run_profile(url: &str, ca: &Path, out: &Path, extra: &[&str]) -> results::Summary {
    let mut args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        "--profile".into(),
        profile("test/mixed-short.toml").into(),
        "--endpoint".into(),
        url.into(),
        "--ca".into(),
        ca.into(),
        "--time-scale".into(),
        "600".into(),
        // What the server logged against what the harness counted is the subject, not the
        // schedule: a loaded machine may lag (exit 3).
        "--max-lag-ms".into(),
        "3600000".into(),
        "--quiet".into(),
        "--out".into(),
        out.into(),
    ];
    args.extend(extra.iter().map(Into::into));
    let res = run_harness(args, Duration::from_secs(120));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let s = read_summary(out);
    check_accounting(out, &s);
    s
}

#[test]
fn nginx_logs_exactly_the_alerts_delivered_over_http2_and_http1() {
    let dir = temp_dir();
    let srv = nginx(dir.path());
    let ca = srv.dir.join("cert.pem");
    let url = format!("https://127.0.0.1:{}/alerts", srv.port);
    let log = srv.dir.join("access.log");
    // HTTP/2, chosen by ALPN.
    let h2 = run_profile(&url, &ca, &dir.path().join("h2"), &[]);
    let after_h2 = nginx_posts(&log, "204");
    // HTTP/1.1, forced.
    let h1 = run_profile(&url, &ca, &dir.path().join("h1"), &["--http1.1"]);
    let all = nginx_posts(&log, "204");
    drop(srv);
    let get = |m: &BTreeMap<(String, String), u64>, k: &str, p: &str| {
        m.get(&(k.to_string(), p.to_string())).copied().unwrap_or(0)
    };
    let (poa2, pra2) = delivered(&h2);
    let (poa1, pra1) = delivered(&h1);
    eprintln!(
        "nginx HTTP/2: delivered POA {poa2} PRA {pra2}, logged {after_h2:?}; \
         HTTP/1.1: delivered POA {poa1} PRA {pra1}, logged {all:?}"
    );
    assert!(poa2 > 0 && pra2 > 0);
    assert_eq!(get(&after_h2, "POA", "HTTP/2.0"), poa2);
    assert_eq!(get(&after_h2, "PRA", "HTTP/2.0"), pra2);
    assert_eq!(get(&all, "POA", "HTTP/1.1"), poa1);
    assert_eq!(get(&all, "PRA", "HTTP/1.1"), pra1);
    assert_eq!(transport(&h2), "HTTP/2 (ALPN)");
    assert_eq!(transport(&h1), "HTTP/1.1");
}

#[test]
fn caddy_logs_exactly_the_alerts_delivered_over_http3() {
    let dir = temp_dir();
    let srv = caddy(dir.path());
    let ca = srv.dir.join("cert.pem");
    // Caddy picks its certificate by SNI, which TLS never carries for an IP address.
    let url = format!("h3://127.0.0.1:{}/alerts", srv.port);
    let s = run_profile(
        &url,
        &ca,
        &dir.path().join("h3"),
        &["--server-name", "localhost"],
    );
    // Caddy writes its log as it answers; give the last lines a moment.
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(srv.dir.join("access.log")).unwrap_or_default();
    drop(srv);
    let mut logged: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in text.lines() {
        let j: serde_json::Value = serde_json::from_str(line).unwrap();
        let r = &j["request"];
        if r["method"] == "POST" && j["status"] == 204 {
            let kind = r["headers"]["X-Csp-Alert-Kind"][0]
                .as_str()
                .unwrap_or("-")
                .to_string();
            let proto = r["proto"].as_str().unwrap_or("-").to_string();
            *logged.entry((kind, proto)).or_insert(0) += 1;
        }
    }
    let (poa, pra) = delivered(&s);
    eprintln!("caddy HTTP/3: delivered POA {poa} PRA {pra}, logged {logged:?}");
    assert!(poa > 0 && pra > 0);
    assert_eq!(logged.get(&("POA".into(), "HTTP/3.0".into())), Some(&poa));
    assert_eq!(logged.get(&("PRA".into(), "HTTP/3.0".into())), Some(&pra));
    assert_eq!(logged.len(), 2, "nothing but HTTP/3 POSTs: {logged:?}");
    assert_eq!(transport(&s), "HTTP/3");
}

/// `--transport http` on the embedded reference endpoint, HTTP/2 and HTTP/3: the endpoint's ledger
/// holds exactly the delivered alerts of this run, once each.
#[test]
fn embedded_endpoint_over_http_reconciles_exactly() {
    let dir = temp_dir();
    for (name, flags) in [("h2", vec![]), ("h3", vec!["--http3"])] {
        let out = dir.path().join(name);
        let mut args: Vec<std::ffi::OsString> = vec![
            "run".into(),
            "--profile".into(),
            profile("test/mixed-short.toml").into(),
            "--transport".into(),
            "http".into(),
            "--time-scale".into(),
            "600".into(),
            // Reconciliation is the subject, not the schedule: a loaded machine may lag (exit 3).
            "--max-lag-ms".into(),
            "3600000".into(),
            "--quiet".into(),
            "--out".into(),
            out.clone().into(),
        ];
        args.extend(flags.iter().map(Into::into));
        let res = run_harness(args, Duration::from_secs(120));
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        let s = read_summary(&out);
        check_accounting(&out, &s);
        let run_id = read_run_record(&out)
            .run_id
            .expect("a run records its run id");
        let text = std::fs::read_to_string(out.join("endpoint-ledger.csv")).unwrap();
        let stored: Vec<&str> = text
            .lines()
            .skip(1)
            .filter(|l| l.starts_with(&run_id))
            .collect();
        let unique: std::collections::BTreeSet<&str> =
            stored.iter().filter_map(|l| l.split(',').nth(1)).collect();
        let (poa, pra) = delivered(&s);
        eprintln!(
            "embedded {name}: delivered {} stored {} ({})",
            poa + pra,
            stored.len(),
            transport(&s)
        );
        assert_eq!(stored.len(), unique.len(), "stored once each");
        assert_eq!(stored.len() as u64, poa + pra);
        assert!(poa + pra > 0);
    }
}

// --- The status-mapping table, one status per test, through the engine in-process. ---

/// Runs `n` POAs (deadline `deadline_ms` scenario ms at 1x) through an HTTP egress to `url`;
/// returns the statistics and the fates by name. Bounded: 60 s at most.
async fn post_alerts(
    addr: SocketAddr,
    url: &str,
    ca: &Path,
    n: u32,
    deadline_ms: u64,
    tweak: impl FnOnce(&mut EgressConfig),
) -> Result<(EgressStats, BTreeMap<String, u64>), egress::EgressError> {
    tokio::time::timeout(
        Duration::from_secs(60),
        post_alerts_unbounded(addr, url, ca, n, deadline_ms, tweak),
    )
    .await
    .expect("test timed out")
}

async fn post_alerts_unbounded(
    addr: SocketAddr,
    url: &str,
    ca: &Path,
    n: u32,
    deadline_ms: u64,
    tweak: impl FnOnce(&mut EgressConfig),
) -> Result<(EgressStats, BTreeMap<String, u64>), egress::EgressError> {
    let mut l = Ledger::new(n);
    for hub in 0..n {
        l.expect(AlertId::new(hub, AlertKind::Poa), AlertCode::Ad1, 0)
            .unwrap();
    }
    let ledger = Arc::new(Mutex::new(l));
    let clock = ScenarioClock::start(1.0);
    let mut cfg = EgressConfig {
        connections: 2,
        streams_per_connection: 1,
        max_in_flight_per_stream: 16,
        connect_timeout: Duration::from_secs(2),
        alert_deadline_ms: Some(deadline_ms),
        protocol: Protocol::Http(Box::new(HttpSettings {
            uri: url.parse().unwrap(),
            tls: true,
            version: HttpVersion::Http2,
            accept: egress::http::DEFAULT_ACCEPT.to_vec(),
            headers: Vec::new(),
            format: Format::Json,
            epoch: std::time::SystemTime::now(),
            request_timeout: Duration::from_secs(5),
        })),
        ..EgressConfig::new(addr, "localhost", ca.to_path_buf())
    };
    tweak(&mut cfg);
    let egress = Egress::start(cfg, clock, ledger.clone()).await?;
    let sink = egress.sink();
    for hub in 0..n {
        sink.submit(Outbound {
            id: AlertId::new(hub, AlertKind::Poa),
            code: AlertCode::Ad1,
            device_id: u64::from(hub),
            region: Region::NORTH,
            region_code: 1,
            event_ms: 0,
            seq: 1,
            exit_ms: clock.now_ms(),
        });
    }
    let st = egress.drain(Duration::from_secs(15)).await;
    let mut l = ledger.lock().unwrap();
    l.finish(clock.now_ms());
    let mut fates = BTreeMap::new();
    for r in l.records() {
        let k = match r.fate {
            Fate::Pending => "pending".to_string(),
            Fate::Delivered { .. } => "delivered".to_string(),
            Fate::Lost { cause, .. } => cause.as_str().to_string(),
        };
        *fates.entry(k).or_insert(0) += 1;
    }
    Ok((st, fates))
}

fn fates(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Lines of an nginx log (the `alerts` format) per idempotency key, with their times.
fn requests_by_key(log: &Path) -> BTreeMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() == 7 && f[0] == "POST" {
            m.entry(f[5].to_string())
                .or_default()
                .push(f[6].parse().unwrap_or(0.0));
        }
    }
    m
}

fn nginx_addr(srv: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], srv.port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_204_is_delivered() {
    let dir = temp_dir();
    let srv = nginx(dir.path());
    let url = format!("https://127.0.0.1:{}/alerts", srv.port);
    let (st, f) = post_alerts(
        nginx_addr(&srv),
        &url,
        &srv.dir.join("cert.pem"),
        300,
        60_000,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(f, fates(&[("delivered", 300)]), "{st:?}");
    assert_eq!(st.http_status.get(&204), Some(&300));
    assert_eq!(requests_by_key(&srv.dir.join("access.log")).len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_400_is_rejected_with_its_status() {
    let dir = temp_dir();
    let srv = nginx(dir.path());
    let url = format!("https://127.0.0.1:{}/bad", srv.port);
    let (st, f) = post_alerts(
        nginx_addr(&srv),
        &url,
        &srv.dir.join("cert.pem"),
        100,
        60_000,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(f, fates(&[("endpoint_rejected", 100)]), "{st:?}");
    assert_eq!(st.rejected_by.get("http 400"), Some(&100));
    // Rejected once each: never resent.
    let sent = requests_by_key(&srv.dir.join("bad.log"));
    assert!(
        sent.len() == 100 && sent.values().all(|t| t.len() == 1),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_401_refuses_the_start_by_name() {
    let dir = temp_dir();
    let srv = nginx(dir.path());
    let url = format!("https://127.0.0.1:{}/auth", srv.port);
    let e = post_alerts(
        nginx_addr(&srv),
        &url,
        &srv.dir.join("cert.pem"),
        10,
        60_000,
        |_| {},
    )
    .await
    .expect_err("a 401 at the start is a start error");
    let msg = e.to_string();
    assert!(msg.contains("401") && msg.contains("token"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_401_mid_run_is_fatal_and_named() {
    // The reference endpoint stops accepting the token after 200 alerts.
    let dir = temp_dir();
    let mut cfg = ingest::IngestConfig::loopback(dir.path().join("cert.pem"));
    cfg.http_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.behaviour.auth_token = Some("t0ken".into());
    cfg.behaviour.revoke_auth_after = Some(200);
    let server = ingest::start(cfg).await.unwrap();
    let addr = server.http_addr().unwrap();
    let url = format!("https://{addr}/alerts");
    let (st, f) = post_alerts(addr, &url, server.cert_pem_path(), 1_000, 60_000, |c| {
        c.auth_token = Some("t0ken".into());
    })
    .await
    .unwrap();
    server.shutdown().await;
    let fatal = st.fatal.clone().unwrap_or_default();
    assert!(fatal.contains("401"), "{st:?}");
    assert!(st.http_status.contains_key(&401), "{st:?}");
    // Answers in flight when the refusal came are not waited for: at most the 200 stored before.
    let delivered = f.get("delivered").copied().unwrap_or(0);
    assert!((1..=200).contains(&delivered), "{f:?}");
    // Nothing blamed on reachability or rejection: the rest is left for the run to end incomplete.
    assert_eq!(
        f.keys().cloned().collect::<Vec<_>>(),
        vec!["delivered".to_string(), "not_delivered_by_end".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_429_retry_after_is_honoured_until_the_deadline() {
    let dir = temp_dir();
    let srv = nginx(dir.path());
    let url = format!("https://127.0.0.1:{}/throttle", srv.port);
    let (st, f) = post_alerts(
        nginx_addr(&srv),
        &url,
        &srv.dir.join("cert.pem"),
        20,
        2_500,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(f, fates(&[("endpoint_unreachable", 20)]), "{st:?}");
    let sent = requests_by_key(&srv.dir.join("throttle.log"));
    let total: usize = sent.values().map(Vec::len).sum();
    assert_eq!(st.backpressure as usize, total, "{st:?}");
    assert_eq!(
        st.http_status.get(&429).copied().unwrap_or(0) as usize,
        total
    );
    // Resent, but never sooner than the server's Retry-After of 1 s.
    assert!(sent.values().any(|t| t.len() >= 2), "{sent:?}");
    for times in sent.values() {
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= 0.99,
                "resent after {} s: {times:?}",
                w[1] - w[0]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_503_is_backpressure_then_unreachable() {
    let dir = temp_dir();
    let srv = nginx(dir.path());
    let url = format!("https://127.0.0.1:{}/busy", srv.port);
    let (st, f) = post_alerts(
        nginx_addr(&srv),
        &url,
        &srv.dir.join("cert.pem"),
        50,
        2_500,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(f, fates(&[("endpoint_unreachable", 50)]), "{st:?}");
    let sent = requests_by_key(&srv.dir.join("busy.log"));
    let total: u64 = sent.values().map(|t| t.len() as u64).sum();
    assert_eq!(st.backpressure, total, "{st:?}");
    assert_eq!(st.rejected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_reset_mid_body_is_retried_and_reconciles() {
    // The reference endpoint cuts every 5th answer's body off after storing the alert.
    let dir = temp_dir();
    let ledger_file = dir.path().join("endpoint-ledger.csv");
    let mut cfg = ingest::IngestConfig::loopback(dir.path().join("cert.pem"));
    cfg.http_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.ledger_path = Some(ledger_file.clone());
    cfg.behaviour.bad_replies = Some(ingest::BadReplies {
        kind: ingest::BadReplyKind::Garbage,
        every: 5,
    });
    let server = ingest::start(cfg).await.unwrap();
    let addr = server.http_addr().unwrap();
    let url = format!("https://{addr}/alerts");
    let (st, f) = post_alerts(addr, &url, server.cert_pem_path(), 500, 60_000, |_| {})
        .await
        .unwrap();
    let end = server.shutdown().await;
    assert_eq!(f, fates(&[("delivered", 500)]), "{st:?}");
    assert!(st.retried > 0 && st.resent > 0, "{st:?}");
    assert!(end.duplicates > 0, "resends were recognised: {end:?}");
    assert!(st.endpoint_duplicates > 0, "{st:?}");
    let text = std::fs::read_to_string(&ledger_file).unwrap();
    let stored = ingest::read_ledger_ids(text.as_bytes()).unwrap();
    assert_eq!(stored.len(), 500, "stored once each");
    assert_eq!(text.lines().count(), 501);
}
