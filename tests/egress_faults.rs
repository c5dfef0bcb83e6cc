//! The QUIC egress against the reference endpoint on loopback, healthy and faulty: every alert ends
//! with exactly one honest fate, and the harness's ledger agrees with the endpoint's. (The endpoint
//! faults proper — restarts, crashes, stalls, refusals, bad replies — are in `faults.rs`.)

// Helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use egress::{Egress, EgressConfig, EgressStats};
use ingest::{IngestConfig, IngestServer, read_ledger_ids};
use ledger::{AlertCode, AlertId, AlertKind, Fate, Ledger, LossCause, Region};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use virtual_hubs::{Outbound, ScenarioClock};

const LIMIT: Duration = Duration::from_secs(60);

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("csp-egress-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A ledger expecting one POA per hub, and the alerts to submit.
fn population(n: u32) -> (Arc<Mutex<Ledger>>, Vec<Outbound>) {
    let mut l = Ledger::new(n);
    let alerts = (0..n)
        .map(|hub| {
            let id = AlertId::new(hub, AlertKind::Poa);
            l.expect(id, AlertCode::Ad1, 0).unwrap();
            Outbound {
                id,
                code: AlertCode::Ad1,
                device_id: 0x00AB_CDEF_0000_0000 | u64::from(hub),
                region: Region::CENTRAL_SOUTH,
                region_code: 2,
                event_ms: 0,
                seq: 1,
                exit_ms: 0,
            }
        })
        .collect();
    (Arc::new(Mutex::new(l)), alerts)
}

fn egress_cfg(s: &IngestServer) -> EgressConfig {
    EgressConfig {
        trust: s.trust(),
        connect_timeout: Duration::from_millis(500),
        ..EgressConfig::new(s.local_addr(), "localhost", PathBuf::new())
    }
}

fn fates(l: &Arc<Mutex<Ledger>>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in l.lock().unwrap().records() {
        let k = match r.fate {
            Fate::Pending => "pending".to_string(),
            Fate::Delivered { .. } => "delivered".to_string(),
            Fate::Lost { cause, .. } => cause.as_str().to_string(),
        };
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

fn delivered_ids(l: &Arc<Mutex<Ledger>>) -> HashSet<u64> {
    l.lock()
        .unwrap()
        .records()
        .filter(|r| matches!(r.fate, Fate::Delivered { .. }))
        .map(|r| r.id.0)
        .collect()
}

/// Ids in the endpoint's ledger file; panics if any id appears twice.
fn endpoint_ids(path: &PathBuf) -> HashSet<u64> {
    let text = std::fs::read_to_string(path).unwrap();
    let ids = read_ledger_ids(text.as_bytes()).unwrap();
    assert_eq!(ids.len(), text.lines().count() - 1, "an id stored twice");
    ids
}

fn report(name: &str, st: &EgressStats, l: &Arc<Mutex<Ledger>>) {
    println!("{name}: fates {:?}", fates(l));
    println!("{name}: {st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_all_endpoint_loses_every_alert_as_rejected() {
    tokio::time::timeout(LIMIT, async {
        let mut cfg = IngestConfig::loopback(tmp("reject-cert.pem"));
        cfg.behaviour.reject_all = true;
        let s = ingest::start(cfg).await.unwrap();
        let (ledger, alerts) = population(500);
        let e = Egress::start(egress_cfg(&s), ScenarioClock::start(1.0), ledger.clone())
            .await
            .unwrap();
        let sink = e.sink();
        for a in alerts {
            sink.submit(a);
        }
        let st = e.drain(Duration::from_secs(10)).await;
        report("reject_all", &st, &ledger);
        assert_eq!(st.rejected, 500);
        assert_eq!(st.delivered, 0);
        s.shutdown().await;
        let l = ledger.lock().unwrap();
        assert_eq!(l.delivered(AlertKind::Poa), 0);
        assert_eq!(
            l.lost_by_cause(AlertKind::Poa),
            BTreeMap::from([(LossCause::EndpointRejected, 500)])
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_fast_and_clearly_when_nothing_listens() {
    tokio::time::timeout(LIMIT, async {
        // A port that was free a moment ago.
        let addr: SocketAddr = {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.local_addr().unwrap()
        };
        let cert = tls::self_signed().unwrap();
        let cfg = EgressConfig {
            trust: tls::TrustSource::Der(vec![cert.cert_der]),
            connect_timeout: Duration::from_secs(1),
            ..EgressConfig::new(addr, "localhost", PathBuf::new())
        };
        let ledger = Arc::new(Mutex::new(Ledger::new(1)));
        let t0 = Instant::now();
        let err = Egress::start(cfg, ScenarioClock::start(1.0), ledger)
            .await
            .expect_err("nothing listens there");
        let took = t0.elapsed();
        let msg = err.to_string();
        println!("unreachable after {took:?}: {msg}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
        assert!(
            msg.contains(&addr.to_string()) && msg.contains("no QUIC handshake"),
            "{msg}"
        );
        // A CA file that does not exist is named in the error.
        let missing = tmp("no-such-ca.pem");
        let cfg = EgressConfig::new(addr, "localhost", missing.clone());
        let ledger = Arc::new(Mutex::new(Ledger::new(1)));
        let msg = Egress::start(cfg, ScenarioClock::start(1.0), ledger)
            .await
            .expect_err("missing CA")
            .to_string();
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_delivered_once_and_ledgers_agree() {
    tokio::time::timeout(LIMIT, async {
        let ledger_file = tmp("e2e-endpoint-ledger.csv");
        let _ = std::fs::remove_file(&ledger_file);
        let cfg = IngestConfig::embedded(tmp("e2e-cert.pem"), ledger_file.clone());
        let s = ingest::start(cfg).await.unwrap();
        const N: u32 = 20_000;
        let (ledger, alerts) = population(N);
        // Trust the PEM file the endpoint wrote, as `run --ca` would.
        let cfg = EgressConfig {
            connect_timeout: Duration::from_millis(500),
            ..EgressConfig::new(s.local_addr(), "localhost", s.cert_pem_path().to_path_buf())
        };
        let e = Egress::start(cfg, ScenarioClock::start(1.0), ledger.clone())
            .await
            .unwrap();
        let sink = e.sink();
        let t0 = Instant::now();
        for a in alerts {
            sink.submit(a);
        }
        let submit_took = t0.elapsed();
        let st = e.drain(Duration::from_secs(30)).await;
        let took = t0.elapsed();
        report("e2e", &st, &ledger);
        println!(
            "e2e: submit of {N} took {submit_took:?}; all acked after {took:?} ({:.0} alerts/s end to end)",
            f64::from(N) / took.as_secs_f64()
        );
        assert_eq!(st.delivered, u64::from(N));
        assert_eq!(st.duplicate_acks, 0);
        let server_stats = s.shutdown().await;
        println!("e2e endpoint: {server_stats:?}");
        let delivered = delivered_ids(&ledger);
        assert_eq!(delivered.len(), N as usize);
        assert_eq!(endpoint_ids(&ledger_file), delivered);
        assert_eq!(ledger.lock().unwrap().anomalies().duplicates, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_send_queue_overflows_honestly() {
    tokio::time::timeout(LIMIT, async {
        let mut cfg = IngestConfig::loopback(tmp("overflow-cert.pem"));
        cfg.behaviour.ack_delay = Duration::from_millis(200);
        let s = ingest::start(cfg).await.unwrap();
        let (ledger, alerts) = population(2_000);
        let cfg = EgressConfig {
            connections: 1,
            streams_per_connection: 1,
            max_in_flight_per_stream: 50,
            send_queue: 100,
            ..egress_cfg(&s)
        };
        let e = Egress::start(cfg, ScenarioClock::start(1.0), ledger.clone())
            .await
            .unwrap();
        let sink = e.sink();
        for a in alerts {
            sink.submit(a);
        }
        let st = e.drain(Duration::from_secs(20)).await;
        report("overflow", &st, &ledger);
        assert!(st.queue_overflow > 0);
        assert_eq!(st.queue_overflow + st.delivered, 2_000);
        s.shutdown().await;
        let l = ledger.lock().unwrap();
        assert_eq!(
            l.lost_by_cause(AlertKind::Poa)
                .get(&LossCause::SendQueueOverflow),
            Some(&st.queue_overflow)
        );
        assert_eq!(l.pending(), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_gone_for_good_loses_alerts_as_unreachable() {
    tokio::time::timeout(LIMIT, async {
        let s = ingest::start(IngestConfig::loopback(tmp("gone-cert.pem")))
            .await
            .unwrap();
        let (ledger, alerts) = population(300);
        let cfg = EgressConfig {
            alert_deadline_ms: Some(500),
            ..egress_cfg(&s)
        };
        let e = Egress::start(cfg, ScenarioClock::start(1.0), ledger.clone())
            .await
            .unwrap();
        s.shutdown().await;
        let sink = e.sink();
        let (early, late) = alerts.split_at(200);
        for a in early {
            sink.submit(*a);
        }
        // These are still within their deadline when the drain gives up.
        tokio::time::sleep(Duration::from_millis(700)).await;
        for a in late {
            sink.submit(Outbound { exit_ms: 600, ..*a });
        }
        let t0 = Instant::now();
        let st = e.drain(Duration::from_millis(300)).await;
        report("gone", &st, &ledger);
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "drain took {:?}",
            t0.elapsed()
        );
        assert_eq!(st.delivered, 0);
        assert_eq!(st.expired + st.unreachable_at_drain, 300, "{st:?}");
        assert!(st.expired >= 200);
        let l = ledger.lock().unwrap();
        assert_eq!(
            l.lost_by_cause(AlertKind::Poa),
            BTreeMap::from([(LossCause::EndpointUnreachable, 300)])
        );
    })
    .await
    .expect("test timed out");
}
