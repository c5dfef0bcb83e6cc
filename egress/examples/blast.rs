//! Benchmark driver (not a test): feeds N alerts straight into the real delivery engine and
//! transport — no model — and prints acknowledged alerts per second. `bench/http/run.sh` runs it
//! beside h2load against the same server with the same body size and concurrency.
//!
//! ```text
//! blast --url https://127.0.0.1:8443/alerts --ca cert.pem [--http1.1|--http2|--http3]
//!       [--connections 4] [--streams 1] [--in-flight 100] [--alerts 200000]
//! blast --write-body body.json     # the JSON body of one alert, for h2load -d
//! ```
//! It runs on one tokio worker thread by default (`--threads`), as h2load runs on one thread.
//! `--url quic://HOST:PORT` drives csp-alert instead.

#![allow(clippy::unwrap_used, missing_docs)]

use clap::Parser;
use egress::http::HttpVersion;
use egress::payload::{Format, Payload};
use egress::{Egress, EgressConfig, HttpSettings, Protocol, RunId};
use ledger::{AlertCode, AlertId, AlertKind, Ledger, Region};
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use virtual_hubs::{Outbound, ScenarioClock};

#[derive(Parser)]
struct Args {
    /// https://HOST:PORT/PATH, http://..., h3://... or quic://HOST:PORT.
    #[arg(long)]
    url: Option<String>,
    /// CA or pinned certificate PEM.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// TLS server name [default: the URL's host].
    #[arg(long)]
    server_name: Option<String>,
    #[arg(long = "http1.1")]
    http1: bool,
    #[arg(long)]
    http2: bool,
    #[arg(long)]
    http3: bool,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value_t = 1)]
    streams: usize,
    #[arg(long, default_value_t = 100)]
    in_flight: usize,
    #[arg(long, default_value_t = 200_000)]
    alerts: u32,
    /// Write one alert's JSON body here and exit.
    #[arg(long)]
    write_body: Option<PathBuf>,
    /// tokio worker threads (h2load uses one thread unless told otherwise).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn alert(hub: u32) -> Outbound {
    Outbound {
        id: AlertId::new(hub, AlertKind::Poa),
        code: AlertCode::Ad1,
        device_id: 0x00AB_CDEF_0000_0000 | u64::from(hub),
        region: Region::NORTH,
        region_code: 1,
        event_ms: 1_234_567,
        seq: 1,
        exit_ms: 1_300_000,
    }
}

fn main() {
    let a = Args::parse();
    // As `csp-harness` does (RUST_LOG, default warnings): with no subscriber at all, every trace
    // span of h2 and quinn would also be offered to the `log` crate, a cost the harness never pays.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads)
        .enable_all()
        .build()
        .unwrap()
        .block_on(blast(a));
}

async fn blast(a: Args) {
    if let Some(path) = a.write_body {
        let p = Payload::new(Format::Json, RunId([0x5A; 16]), SystemTime::now());
        std::fs::write(&path, p.render(&alert(123_456))).unwrap();
        return;
    }
    let url = a.url.expect("--url");
    let (scheme, rest) = url.split_once("://").expect("scheme://");
    let authority = rest.split('/').next().unwrap();
    let addr = authority.to_socket_addrs().unwrap().next().unwrap();
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let name = a.server_name.unwrap_or_else(|| host.to_string());
    let protocol = if scheme == "quic" {
        Protocol::CspAlert
    } else {
        let version = if a.http3 || scheme == "h3" {
            HttpVersion::Http3
        } else if a.http2 {
            HttpVersion::Http2
        } else if a.http1 {
            HttpVersion::Http1
        } else {
            HttpVersion::Auto
        };
        let path = &rest[authority.len()..];
        Protocol::Http(Box::new(HttpSettings {
            uri: format!("https://{authority}{path}").parse().unwrap(),
            tls: scheme != "http",
            version,
            accept: egress::http::DEFAULT_ACCEPT.to_vec(),
            headers: Vec::new(),
            format: Format::Json,
            epoch: SystemTime::now(),
            request_timeout: Duration::from_secs(30),
        }))
    };
    let n = a.alerts;
    let mut l = Ledger::new(n);
    for hub in 0..n {
        l.expect(AlertId::new(hub, AlertKind::Poa), AlertCode::Ad1, 0)
            .unwrap();
    }
    let ledger = Arc::new(Mutex::new(l));
    let cfg = EgressConfig {
        connections: a.connections,
        streams_per_connection: a.streams,
        max_in_flight_per_stream: a.in_flight,
        send_queue: n as usize + 1,
        alert_deadline_ms: None,
        run_id: RunId([0x5A; 16]),
        protocol,
        ..EgressConfig::new(addr, name, a.ca.unwrap_or_default())
    };
    let egress = Egress::start(cfg, ScenarioClock::start(1.0), ledger)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sink = egress.sink();
    let t0 = Instant::now();
    for hub in 0..n {
        sink.submit(alert(hub));
    }
    while egress.outstanding() > 0 && t0.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = t0.elapsed();
    let st = egress.drain(Duration::from_secs(5)).await;
    println!(
        "transport={} delivered={} seconds={:.3} acked_per_s={:.0} resent={} last_error={:?}",
        st.transport,
        st.delivered,
        took.as_secs_f64(),
        st.delivered as f64 / took.as_secs_f64(),
        st.resent,
        st.last_error
    );
}
