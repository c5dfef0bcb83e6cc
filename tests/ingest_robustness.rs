//! The reference ingest endpoint against bad input over real QUIC on loopback: malformed,
//! truncated, oversized and random frames get an ERROR and close only their stream; a well-behaved
//! client carries on; memory stays bounded; a client pinning the wrong certificate is refused.
//! Security defaults and bad certificates: mutual TLS, tokens, expired and wrong-host certificates,
//! missing files, and the explicit insecure mode — each refused with one clear, typed error.

// Helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use egress::{ConnectError, Egress, EgressConfig, EgressError, quinn};
use ingest::{IngestConfig, IngestServer};
use ledger::{AlertCode, Ledger};
use rand::{Rng, RngCore, SeedableRng};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tls::{CertAuthority, ServerCertSource, TrustSource, Validity};
use virtual_hubs::ScenarioClock;
use wire::{AlertHeader, Decoder, ErrorCode, Frame, RejectReason, RunId};

mod inproc;
use inproc::{LIMIT, client_cfg, server, tmp};

/// A raw QUIC connection to the server (the endpoint must outlive it).
async fn raw_conn(s: &IngestServer) -> (quinn::Endpoint, quinn::Connection) {
    let cfg = client_cfg(s);
    let ep = egress::client_endpoint(&cfg).unwrap();
    let conn = egress::connect(&ep, &cfg).await.unwrap();
    (ep, conn)
}

/// The run id of the hand-written streams here.
const RUN: RunId = RunId([0x7E; 16]);

/// A HELLO for [`RUN`] with `token`.
fn hello(token: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    wire::encode_hello(&mut b, wire::PROTOCOL_VERSION, &RUN, token);
    b
}

/// Sends a HELLO (no token) and then `bytes` on a new stream, finishes it, and decodes every
/// reply frame until the server closes its side.
async fn exchange(conn: &quinn::Connection, bytes: &[u8]) -> Vec<Frame> {
    let mut all = hello(b"");
    all.extend_from_slice(bytes);
    exchange_raw(conn, &all).await
}

/// Sends exactly `bytes` on a new stream, finishes it, and decodes every reply frame until the
/// server closes its side. Write errors (the server stopped reading) are expected for bad input.
async fn exchange_raw(conn: &quinn::Connection, bytes: &[u8]) -> Vec<Frame> {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    let reply = recv.read_to_end(1 << 20).await.unwrap_or_default();
    let mut dec = Decoder::default();
    dec.push(&reply);
    let mut frames = Vec::new();
    while let Ok(Some(f)) = dec.next_frame() {
        frames.push(f);
    }
    frames
}

fn alert(id: u64, code: u16, region: u8, payload_len: usize) -> Vec<u8> {
    let h = AlertHeader {
        alert_id: id,
        code,
        device_id: 0x0011_2233_0000_0000 + id,
        region,
        event_ms: 180_000,
        seq: 1,
    };
    let mut out = BytesMut::new();
    wire::encode_alert(&mut out, &h, &vec![0xA5; payload_len]);
    out.to_vec()
}

fn good_alerts(ids: std::ops::Range<u64>) -> Vec<u8> {
    ids.flat_map(|id| alert(id, AlertCode::Ad1.wire(), 1, 152))
        .collect()
}

fn acked_ids(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .flat_map(|f| match f {
            Frame::Ack(ids) => ids.clone(),
            _ => vec![],
        })
        .collect()
}

fn duplicate_ids(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .flat_map(|f| match f {
            Frame::Duplicate(ids) => ids.clone(),
            _ => vec![],
        })
        .collect()
}

fn error_code(frames: &[Frame]) -> Option<ErrorCode> {
    frames.iter().find_map(|f| match f {
        Frame::Error(e) => Some(ErrorCode::from_wire(e.code)),
        _ => None,
    })
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_stream_and_good_clients_carry_on() {
    tokio::time::timeout(LIMIT, async {
        let ledger = tmp("bad-frames-ledger.csv");
        let _ = std::fs::remove_file(&ledger);
        let s = server("bad-frames", |c| c.ledger_path = Some(ledger.clone())).await;
        let (_ep_good, good) = raw_conn(&s).await;
        let (_ep_bad, bad) = raw_conn(&s).await;

        let first = exchange(&good, &good_alerts(0..100)).await;
        assert_eq!(acked_ids(&first), (0..100).collect::<Vec<_>>());

        // Structural garbage: each gets an ERROR with the right code.
        let mut truncated = alert(500, AlertCode::Ad1.wire(), 1, 152);
        truncated.truncate(60);
        let cases: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
            (
                "oversized",
                (1u32 << 20).to_be_bytes().to_vec(),
                ErrorCode::Oversized,
            ),
            (
                "unknown type",
                vec![0, 0, 0, 1, 0x7F],
                ErrorCode::UnknownFrameType,
            ),
            ("empty", vec![0, 0, 0, 0], ErrorCode::Malformed),
            (
                "bad ACK count",
                vec![0, 0, 0, 3, wire::frame_type::ACK, 0, 9],
                ErrorCode::Malformed,
            ),
            (
                "ACK from a client",
                vec![
                    0,
                    0,
                    0,
                    11,
                    wire::frame_type::ACK,
                    0,
                    1,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    7,
                ],
                ErrorCode::UnexpectedFrame,
            ),
            (
                "short ALERT",
                vec![0, 0, 0, 3, wire::frame_type::ALERT, 1, 2],
                ErrorCode::Malformed,
            ),
            ("truncated", truncated, ErrorCode::Malformed),
        ];
        for (what, bytes, want) in &cases {
            let frames = exchange(&bad, bytes).await;
            let got = error_code(&frames);
            assert_eq!(got, Some(*want), "{what}: {frames:?}");
        }

        // Well-formed but invalid alerts are rejected, not stored; the stream stays open.
        let mut mixed = alert(900, 0x1234, 1, 10);
        mixed.extend(alert(901, AlertCode::Ad1.wire(), 9, 10));
        mixed.extend(alert(902, AlertCode::Ad1.wire(), 1, 2000));
        mixed.extend(alert(903, AlertCode::Restored8F36.wire(), 2, 152));
        let frames = exchange(&bad, &mixed).await;
        let reasons: Vec<(u64, RejectReason)> = frames
            .iter()
            .filter_map(|f| match f {
                Frame::Reject(r) => Some((r.alert_id, RejectReason::from_wire(r.reason))),
                _ => None,
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                (900, RejectReason::UnknownCode),
                (901, RejectReason::UnknownRegion),
                (902, RejectReason::PayloadTooLarge),
            ]
        );
        assert_eq!(acked_ids(&frames), vec![903]);

        // Random bytes on many streams: never a panic, at most an ERROR each.
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0xBAD);
        for _ in 0..50 {
            let mut junk = vec![0u8; rng.random_range(1..8192)];
            rng.fill_bytes(&mut junk);
            let frames = exchange(&bad, &junk).await;
            assert!(acked_ids(&frames).is_empty());
        }

        // The good client carries on, on its old connection.
        let again = exchange(&good, &good_alerts(100..200)).await;
        assert_eq!(acked_ids(&again).len(), 100);
        // ... and duplicates are acknowledged as duplicates but not stored again.
        let dup = exchange(&good, &good_alerts(0..10)).await;
        assert_eq!(duplicate_ids(&dup), (0..10).collect::<Vec<_>>());
        assert!(acked_ids(&dup).is_empty());
        // The same ids in another run are new alerts.
        let mut other = BytesMut::new();
        wire::encode_hello(&mut other, wire::PROTOCOL_VERSION, &RunId([1; 16]), b"");
        other.extend_from_slice(&good_alerts(0..10));
        let fresh = exchange_raw(&good, &other).await;
        assert_eq!(acked_ids(&fresh), (0..10).collect::<Vec<_>>());
        // A stream without a HELLO is refused.
        let frames = exchange_raw(&good, &good_alerts(300..301)).await;
        assert_eq!(error_code(&frames), Some(ErrorCode::UnexpectedFrame));

        let st = s.stats();
        println!("stats after bad input: {st:?}");
        assert_eq!(st.alerts_stored, 211);
        assert_eq!(st.duplicates, 10);
        assert_eq!(st.rejected, 3);
        assert!(
            st.malformed + st.stream_errors >= cases.len() as u64 + 45,
            "{st:?}"
        );
        assert!(st.max_buffered_bytes <= (wire::MAX_FRAME_LEN + 4 + 16 * 1024) as u64);
        let lines = std::fs::read_to_string(&ledger).unwrap();
        assert_eq!(
            lines.lines().count(),
            1 + 211,
            "header + one line per stored alert"
        );
        s.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_frames_are_bounded_and_time_out() {
    tokio::time::timeout(LIMIT, async {
        let s = server("stall", |c| {
            c.limits.stall_timeout = Duration::from_millis(500)
        })
        .await;
        let rss_before = rss_kib();
        let (_ep, conn) = raw_conn(&s).await;
        // 200 streams each announcing a 4000-byte frame and sending all but its last byte.
        let mut partial = 4000u32.to_be_bytes().to_vec();
        partial.push(wire::frame_type::ALERT);
        partial.extend(vec![0u8; 3998]);
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.write_all(&partial).await.unwrap();
            tasks.push(tokio::spawn(async move {
                let reply = recv.read_to_end(1 << 16).await.unwrap_or_default();
                drop(send);
                let mut dec = Decoder::default();
                dec.push(&reply);
                match dec.next_frame() {
                    Ok(Some(Frame::Error(e))) => ErrorCode::from_wire(e.code),
                    _ => ErrorCode::Other,
                }
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), ErrorCode::Timeout);
        }
        let st = s.stats();
        let rss_after = rss_kib();
        println!("stalled streams: {st:?}; RSS {rss_before} KiB -> {rss_after} KiB");
        assert_eq!(st.stream_errors, 200);
        assert!(st.max_buffered_bytes <= (wire::MAX_FRAME_LEN + 4) as u64);
        assert!(
            rss_after.saturating_sub(rss_before) < 64 * 1024,
            "RSS grew by more than 64 MiB"
        );
        s.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_flood_keeps_memory_bounded() {
    tokio::time::timeout(LIMIT, async {
        let s = server("flood", |_| {}).await;
        let (_ep, conn) = raw_conn(&s).await;
        let rss_before = rss_kib();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(42);
        // 32 MiB of plausible-looking frames with lying lengths and junk bodies.
        for _ in 0..64 {
            let mut junk = vec![0u8; 512 * 1024];
            rng.fill_bytes(&mut junk);
            for chunk in junk.chunks_mut(997) {
                chunk[..4].copy_from_slice(&rng.random_range(1u32..4096).to_be_bytes());
                chunk[4] = rng.random_range(1..=5);
            }
            let frames = exchange(&conn, &junk).await;
            assert!(error_code(&frames).is_some());
        }
        let st = s.stats();
        let rss_after = rss_kib();
        println!("flood: {st:?}; RSS {rss_before} KiB -> {rss_after} KiB");
        assert!(st.max_buffered_bytes <= (wire::MAX_FRAME_LEN + 4 + 16 * 1024) as u64);
        assert!(
            rss_after.saturating_sub(rss_before) < 64 * 1024,
            "RSS grew by more than 64 MiB"
        );
        s.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_required_when_configured() {
    tokio::time::timeout(LIMIT, async {
        let s = server("token", |c| c.behaviour.auth_token = Some("s3cret".into())).await;
        let (_ep, conn) = raw_conn(&s).await;
        let frames = exchange(&conn, &good_alerts(0..1)).await;
        assert_eq!(error_code(&frames), Some(ErrorCode::Unauthenticated));
        let frames = exchange_raw(&conn, &hello(b"wrong")).await;
        assert_eq!(error_code(&frames), Some(ErrorCode::Unauthenticated));
        let mut bytes = hello(b"s3cret");
        bytes.extend_from_slice(&good_alerts(0..3));
        let frames = exchange_raw(&conn, &bytes).await;
        assert_eq!(acked_ids(&frames), vec![0, 1, 2]);
        s.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pinning_another_certificate_is_refused() {
    tokio::time::timeout(LIMIT, async {
        let s = server("pin", |_| {}).await;
        let other = tls::self_signed().unwrap();
        let cfg = EgressConfig {
            trust: TrustSource::Der(vec![other.cert_der]),
            connect_timeout: Duration::from_secs(2),
            ..EgressConfig::new(s.local_addr(), "localhost", PathBuf::new())
        };
        let ledger = Arc::new(Mutex::new(Ledger::new(1)));
        let t0 = std::time::Instant::now();
        let err = Egress::start(cfg, ScenarioClock::start(1.0), ledger)
            .await
            .expect_err("wrong certificate must be refused");
        let msg = err.to_string();
        println!("refused in {:?}: {msg}", t0.elapsed());
        assert!(
            msg.contains("handshake failed") && msg.contains("certificate"),
            "{msg}"
        );
        assert_eq!(s.stats().connections, 0);
        // A wrong server name is refused too.
        let cfg = EgressConfig {
            trust: s.trust(),
            ..EgressConfig::new(s.local_addr(), "not-the-endpoint.example", PathBuf::new())
        };
        let ledger = Arc::new(Mutex::new(Ledger::new(1)));
        assert!(
            Egress::start(cfg, ScenarioClock::start(1.0), ledger)
                .await
                .is_err()
        );
        s.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// Starts an egress with `cfg` and returns its start error (or `None` if it started).
async fn start_err(cfg: EgressConfig) -> Option<EgressError> {
    let ledger = Arc::new(Mutex::new(Ledger::new(1)));
    match Egress::start(cfg, ScenarioClock::start(1.0), ledger).await {
        Ok(e) => {
            e.drain(Duration::from_millis(10)).await;
            None
        }
        Err(e) => Some(e),
    }
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_clients_without_a_certificate_from_its_ca() {
    tokio::time::timeout(LIMIT, async {
        let ca = CertAuthority::new("csp test client CA").unwrap();
        let ca_pem = write("mtls-ca.pem", &ca.cert_pem);
        let s = server("mtls", |c| c.client_ca = Some(ca_pem.clone())).await;

        // No client certificate: a typed start error that says what to do.
        let e = start_err(client_cfg(&s)).await.expect("refused");
        eprintln!("mTLS, no client certificate: {e}");
        assert!(
            matches!(
                e,
                EgressError::Unreachable {
                    reason: ConnectError::ClientCertificate(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("client certificate"), "{e}");

        // A client certificate from another CA: refused the same way.
        let other = CertAuthority::new("someone else").unwrap();
        let id = other.issue(&["harness"], true, Validity::Current).unwrap();
        let cfg = EgressConfig {
            client_cert: Some(write("mtls-other-cert.pem", &id.cert_pem)),
            client_key: Some(write("mtls-other-key.pem", &id.key_pem)),
            ..client_cfg(&s)
        };
        let e = start_err(cfg).await.expect("refused");
        eprintln!("mTLS, certificate from another CA: {e}");
        assert!(
            matches!(
                e,
                EgressError::Unreachable {
                    reason: ConnectError::ClientCertificate(_),
                    ..
                }
            ),
            "{e:?}"
        );
        let refused = s.stats().handshake_failures;
        assert!(refused >= 2, "endpoint counted the refusals: {refused}");

        // The right one: alerts flow.
        let id = ca.issue(&["harness"], true, Validity::Current).unwrap();
        let cfg = EgressConfig {
            client_cert: Some(write("mtls-cert.pem", &id.cert_pem)),
            client_key: Some(write("mtls-key.pem", &id.key_pem)),
            ..client_cfg(&s)
        };
        let ep = egress::client_endpoint(&cfg).unwrap();
        let conn = egress::connect(&ep, &cfg).await.unwrap();
        let frames = exchange(&conn, &good_alerts(0..5)).await;
        assert_eq!(acked_ids(&frames), vec![0, 1, 2, 3, 4]);

        // A certificate without its key is a configuration error naming both flags.
        let cfg = EgressConfig {
            client_cert: Some(tmp("mtls-cert.pem")),
            ..client_cfg(&s)
        };
        let e = start_err(cfg).await.expect("config error").to_string();
        assert!(e.contains("client-cert") && e.contains("client-key"), "{e}");
        // A missing client certificate file is named.
        let missing = tmp("no-such-client-cert.pem");
        let cfg = EgressConfig {
            client_cert: Some(missing.clone()),
            client_key: Some(tmp("mtls-key.pem")),
            ..client_cfg(&s)
        };
        let e = start_err(cfg).await.expect("missing file").to_string();
        assert!(
            e.contains("client certificate") && e.contains(&missing.display().to_string()),
            "{e}"
        );
        s.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_fails_the_start_clearly() {
    tokio::time::timeout(LIMIT, async {
        let s = server("token-start", |c| {
            c.behaviour.auth_token = Some("s3cret".into())
        })
        .await;
        for token in [None, Some("wrong".to_string())] {
            let cfg = EgressConfig {
                auth_token: token.clone(),
                ..client_cfg(&s)
            };
            let e = start_err(cfg).await.expect("refused");
            eprintln!("token {token:?}: {e}");
            assert!(
                matches!(
                    e,
                    EgressError::Unreachable {
                        reason: ConnectError::Token(_),
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        assert!(s.stats().auth_failures >= 2);
        let cfg = EgressConfig {
            auth_token: Some("s3cret".into()),
            ..client_cfg(&s)
        };
        assert!(start_err(cfg).await.is_none());
        s.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_endpoint_certificates_give_one_clear_typed_error() {
    tokio::time::timeout(LIMIT, async {
        let ca = CertAuthority::new("csp test CA").unwrap();
        let ca_pem = write("certs-ca.pem", &ca.cert_pem);
        let start_with = |name: &'static str, cert: tls::SelfSigned| async move {
            let c = write(&format!("{name}-cert.pem"), &cert.cert_pem);
            let k = write(&format!("{name}-key.pem"), &cert.key_pem);
            server(name, |cfg| {
                cfg.tls = ServerCertSource::Files { cert: c, key: k };
            })
            .await
        };
        let expired = start_with(
            "expired",
            ca.issue(&["localhost"], false, Validity::Expired).unwrap(),
        )
        .await;
        let wrong_host = start_with(
            "wrong-host",
            ca.issue(&["ingest.example.net"], false, Validity::Current)
                .unwrap(),
        )
        .await;
        let cases = [(&expired, "expired"), (&wrong_host, "not valid for")];
        for (s, want) in cases {
            let cfg = EgressConfig {
                trust: TrustSource::PemFile(ca_pem.clone()),
                ..client_cfg(s)
            };
            let e = start_err(cfg).await.expect("refused");
            eprintln!("{want}: {e}");
            assert!(
                matches!(
                    e,
                    EgressError::Unreachable {
                        reason: ConnectError::EndpointCertificate(_),
                        ..
                    }
                ),
                "{e:?}"
            );
            let msg = e.to_string().to_ascii_lowercase();
            assert!(msg.contains(want), "{msg}");
        }
        // The explicit insecure mode connects to the wrong-host (unverifiable) endpoint.
        let cfg = EgressConfig {
            trust: TrustSource::InsecureSkipVerify,
            ..client_cfg(&wrong_host)
        };
        assert!(
            start_err(cfg).await.is_none(),
            "insecure-skip-verify connects"
        );
        // A missing endpoint certificate or key file is named by the endpoint.
        let mut cfg = IngestConfig::loopback(PathBuf::new());
        let missing = tmp("no-such-endpoint-cert.pem");
        cfg.tls = ServerCertSource::Files {
            cert: missing.clone(),
            key: missing.clone(),
        };
        let e = ingest::start(cfg)
            .await
            .expect_err("missing cert")
            .to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
        // So is a missing client CA.
        let mut cfg = IngestConfig::loopback(tmp("client-ca-missing-cert.pem"));
        cfg.client_ca = Some(missing.clone());
        let e = ingest::start(cfg)
            .await
            .expect_err("missing client CA")
            .to_string();
        assert!(
            e.contains("client CA") && e.contains(&missing.display().to_string()),
            "{e}"
        );
        expired.shutdown().await;
        wrong_host.shutdown().await;
    })
    .await
    .expect("test timed out");
}
