//! The delivery engine against an in-memory, scripted fake transport: no sockets, a paused tokio
//! clock, so every rule is checked exactly and fast.

#![allow(clippy::unwrap_used)]

use crate::RetryPolicy;
use crate::engine::{EgressStats, Engine, EngineConfig};
use crate::transport::{ConnectError, Lane, LaneEnd, Reply, Transport, Verdict};
use ledger::{AlertCode, AlertId, AlertKind, Fate, Ledger, LossCause, Region};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use virtual_hubs::{Outbound, ScenarioClock};

/// What the fake endpoint does with one send of one alert.
#[derive(Debug, Clone)]
enum Answer {
    /// Answer with this verdict after this delay.
    After(Duration, Verdict),
    /// Never answer.
    Silence,
    /// Drop the connection (every alert in flight on it is unanswered).
    LoseConnection,
    /// Answer `Acked` twice.
    AckTwice,
    /// Break the lane (an undecodable reply): its alerts in flight are unanswered.
    BreakLane,
}

type Script = dyn Fn(AlertId, u32) -> Answer + Send + Sync;

/// Marks the reply that breaks a lane (never delivered to the engine as a reply).
const BREAK: &str = "break the lane";

/// A scripted endpoint: `script(id, attempt)` decides each send (attempt counts from 1).
struct Fake {
    script: Arc<Script>,
    attempts: Arc<Mutex<HashMap<AlertId, u32>>>,
    /// Send times of every attempt, per alert.
    sent_at: Arc<Mutex<HashMap<AlertId, Vec<Instant>>>>,
    connects: Arc<AtomicU64>,
    /// Connection attempts after the first that fail with this error.
    refuse_reconnects: Option<ConnectError>,
    /// The size of the first batch of every lane opened, in order.
    first_batches: Arc<Mutex<Vec<usize>>>,
}

struct FakeConn {
    closed: Arc<AtomicBool>,
}

struct FakeLane {
    fake: FakeShared,
    closed: Arc<AtomicBool>,
    pending: VecDeque<(Instant, Option<Reply>)>,
    first_batches: Option<Arc<Mutex<Vec<usize>>>>,
}

#[derive(Clone)]
struct FakeShared {
    script: Arc<Script>,
    attempts: Arc<Mutex<HashMap<AlertId, u32>>>,
    sent_at: Arc<Mutex<HashMap<AlertId, Vec<Instant>>>>,
}

impl Transport for Fake {
    type Conn = FakeConn;
    type Lane = FakeLane;

    fn name(&self) -> String {
        "fake".into()
    }

    async fn connect(&self) -> Result<FakeConn, ConnectError> {
        let n = self.connects.fetch_add(1, Ordering::SeqCst);
        if n > 0
            && let Some(e) = &self.refuse_reconnects
        {
            return Err(e.clone());
        }
        Ok(FakeConn {
            closed: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn probe(&self, _: &FakeConn) -> Result<(), ConnectError> {
        Ok(())
    }

    async fn open_lane(&self, conn: &FakeConn) -> Result<FakeLane, LaneEnd> {
        if conn.closed.load(Ordering::SeqCst) {
            return Err(LaneEnd::ConnectionLost("closed".into()));
        }
        Ok(FakeLane {
            fake: FakeShared {
                script: self.script.clone(),
                attempts: self.attempts.clone(),
                sent_at: self.sent_at.clone(),
            },
            closed: conn.closed.clone(),
            pending: VecDeque::new(),
            first_batches: Some(self.first_batches.clone()),
        })
    }

    fn closed(&self, conn: &FakeConn) -> Option<String> {
        conn.closed
            .load(Ordering::SeqCst)
            .then(|| "fake connection lost".to_string())
    }

    fn close(&self, conn: &FakeConn) {
        conn.closed.store(true, Ordering::SeqCst);
    }
}

impl Lane for FakeLane {
    fn send(&mut self, batch: &[Outbound]) {
        if let Some(first) = self.first_batches.take() {
            first.lock().unwrap().push(batch.len());
        }
        let now = Instant::now();
        for a in batch {
            let attempt = {
                let mut m = self.fake.attempts.lock().unwrap();
                let n = m.entry(a.id).or_insert(0);
                *n += 1;
                *n
            };
            self.fake
                .sent_at
                .lock()
                .unwrap()
                .entry(a.id)
                .or_default()
                .push(now);
            match (self.fake.script)(a.id, attempt) {
                Answer::After(d, v) => self.pending.push_back((now + d, Some(Reply::new(a.id, v)))),
                Answer::Silence => {}
                Answer::LoseConnection => self.pending.push_back((now, None)),
                Answer::BreakLane => self
                    .pending
                    .push_back((now, Some(Reply::new(a.id, Verdict::Retry(BREAK.into()))))),
                Answer::AckTwice => {
                    self.pending
                        .push_back((now, Some(Reply::new(a.id, Verdict::Acked))));
                    self.pending
                        .push_back((now, Some(Reply::new(a.id, Verdict::Acked))));
                }
            }
        }
        self.pending.make_contiguous().sort_by_key(|(t, _)| *t);
    }

    fn ready(&self) -> bool {
        true
    }

    async fn replies(&mut self, out: &mut Vec<Reply>) -> Result<(), LaneEnd> {
        let Some((first, _)) = self.pending.front() else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(*first).await;
        let now = Instant::now();
        while let Some((t, _)) = self.pending.front() {
            if *t > now {
                break;
            }
            match self.pending.pop_front() {
                Some((_, Some(r))) if r.verdict == Verdict::Retry(BREAK.into()) => {
                    return Err(LaneEnd::Error("fake undecodable reply".into()));
                }
                Some((_, Some(r))) => out.push(r),
                _ => {
                    self.closed.store(true, Ordering::SeqCst);
                    return Err(LaneEnd::ConnectionLost("fake connection lost".into()));
                }
            }
        }
        Ok(())
    }
}

fn fake(script: impl Fn(AlertId, u32) -> Answer + Send + Sync + 'static) -> Fake {
    Fake {
        script: Arc::new(script),
        attempts: Arc::default(),
        sent_at: Arc::default(),
        connects: Arc::default(),
        refuse_reconnects: None,
        first_batches: Arc::default(),
    }
}

fn cfg(deadline_ms: Option<u64>) -> EngineConfig {
    EngineConfig {
        connections: 2,
        lanes_per_connection: 2,
        max_in_flight_per_lane: 16,
        send_queue: 10_000,
        retry: RetryPolicy::default(),
        alert_deadline_ms: deadline_ms,
        jitter_seed: 7,
    }
}

/// Runs `n` POAs, all leaving the network at scenario time 0, through the engine; drains with
/// `drain`, closes the ledger and returns the statistics and the fates by name.
async fn run(
    t: Fake,
    cfg: EngineConfig,
    n: u32,
    drain: Duration,
) -> (EgressStats, BTreeMap<String, u64>, Ledger) {
    let mut l = Ledger::new(n);
    for hub in 0..n {
        l.expect(AlertId::new(hub, AlertKind::Poa), AlertCode::Ad1, 0)
            .unwrap();
    }
    let ledger = Arc::new(Mutex::new(l));
    let clock = ScenarioClock::start(1.0);
    let engine = Engine::start(t, cfg, clock, ledger.clone()).await.unwrap();
    let sink = engine.sink();
    for hub in 0..n {
        sink.submit(Outbound {
            id: AlertId::new(hub, AlertKind::Poa),
            code: AlertCode::Ad1,
            device_id: u64::from(hub),
            region: Region::NORTH,
            region_code: 1,
            event_ms: 0,
            seq: 1,
            exit_ms: 0,
        });
    }
    let st = engine.drain(drain).await;
    let mut l = ledger.lock().unwrap().clone();
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
    (st, fates, l)
}

fn fates(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn ack() -> Answer {
    Answer::After(Duration::from_millis(1), Verdict::Acked)
}

#[tokio::test(start_paused = true)]
async fn every_alert_acked_is_delivered_once() {
    let (st, f, _) = run(fake(|_, _| ack()), cfg(None), 500, Duration::from_secs(5)).await;
    assert_eq!(f, fates(&[("delivered", 500)]));
    assert_eq!((st.delivered, st.frames_sent, st.resent), (500, 500, 0));
}

#[tokio::test(start_paused = true)]
async fn silence_expires_at_the_deadline_not_before() {
    let t0 = Instant::now();
    let (st, f, l) = run(
        fake(|_, _| Answer::Silence),
        cfg(Some(2_000)),
        100,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(f, fates(&[("endpoint_unreachable", 100)]));
    assert_eq!(st.expired, 100);
    for r in l.records() {
        let Fate::Lost { at_ms, .. } = r.fate else {
            panic!("{r:?}")
        };
        // The tick that expires them runs every 100 ms.
        assert!((2_000..=2_200).contains(&at_ms), "lost at {at_ms}");
    }
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_lost_connection_requeues_and_resends_exactly_once_each() {
    // The first send of every 3rd alert loses the connection; everything else is acked.
    let t = fake(|id, attempt| {
        if attempt == 1 && id.hub() % 3 == 0 {
            Answer::LoseConnection
        } else {
            ack()
        }
    });
    let attempts = t.attempts.clone();
    let (st, f, l) = run(t, cfg(Some(60_000)), 300, Duration::from_secs(30)).await;
    assert_eq!(f, fates(&[("delivered", 300)]), "{st:?}");
    assert!(st.connections_lost >= 1 && st.resent > 0, "{st:?}");
    assert_eq!(st.delivered, 300);
    assert_eq!(st.duplicate_acks + l.anomalies().duplicates, 0);
    let attempts = attempts.lock().unwrap();
    assert!(attempts.values().all(|n| *n >= 1));
    assert_eq!(
        st.frames_sent,
        attempts.values().map(|n| u64::from(*n)).sum::<u64>()
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_within_the_deadline() {
    // The first answer to every alert is 503 with Retry-After: 3 s.
    let t = fake(|_, attempt| {
        if attempt == 1 {
            Answer::After(
                Duration::from_millis(5),
                Verdict::RetryAfter(Some(Duration::from_secs(3))),
            )
        } else {
            ack()
        }
    });
    let sent_at = t.sent_at.clone();
    let (st, f, _) = run(t, cfg(Some(60_000)), 50, Duration::from_secs(30)).await;
    assert_eq!(f, fates(&[("delivered", 50)]));
    assert_eq!(st.backpressure, 50);
    for (id, times) in sent_at.lock().unwrap().iter() {
        assert_eq!(times.len(), 2, "{id}");
        let gap = times[1] - times[0];
        assert!(gap >= Duration::from_secs(3), "{id} resent after {gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_past_the_deadline_loses_the_alert_as_unreachable() {
    let t = fake(|_, _| {
        Answer::After(
            Duration::from_millis(5),
            Verdict::RetryAfter(Some(Duration::from_secs(120))),
        )
    });
    let sent_at = t.sent_at.clone();
    let (st, f, _) = run(t, cfg(Some(5_000)), 20, Duration::from_secs(30)).await;
    assert_eq!(f, fates(&[("endpoint_unreachable", 20)]), "{st:?}");
    assert_eq!(st.backpressure, 20);
    // Never sent again before the endpoint said it could take it.
    assert!(sent_at.lock().unwrap().values().all(|t| t.len() == 1));
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_then_rejections_are_final() {
    // Alert-level 5xx twice, then acked; every 4th alert is rejected for good.
    let t = fake(|id, attempt| match (id.hub() % 4, attempt) {
        (0, _) => Answer::After(
            Duration::from_millis(2),
            Verdict::Rejected("http 400".into()),
        ),
        (_, 1 | 2) => Answer::After(Duration::from_millis(2), Verdict::Retry("http 500".into())),
        _ => ack(),
    });
    let (st, f, _) = run(t, cfg(Some(60_000)), 200, Duration::from_secs(60)).await;
    assert_eq!(
        f,
        fates(&[("delivered", 150), ("endpoint_rejected", 50)]),
        "{st:?}"
    );
    assert_eq!(st.rejected_by.get("http 400"), Some(&50));
    assert_eq!(st.retried, 300);
}

#[tokio::test(start_paused = true)]
async fn refused_credentials_are_fatal_and_leave_alerts_pending() {
    let t = fake(|id, _| {
        if id.hub() >= 100 {
            Answer::After(
                Duration::from_millis(2),
                Verdict::AuthRefused("http 401".into()),
            )
        } else {
            ack()
        }
    });
    let mut l = Ledger::new(200);
    for hub in 0..200 {
        l.expect(AlertId::new(hub, AlertKind::Poa), AlertCode::Ad1, 0)
            .unwrap();
    }
    let ledger = Arc::new(Mutex::new(l));
    let engine = Engine::start(
        t,
        cfg(Some(60_000)),
        ScenarioClock::start(1.0),
        ledger.clone(),
    )
    .await
    .unwrap();
    let fatal = engine.fatal_signal();
    let sink = engine.sink();
    for hub in 0..200 {
        sink.submit(Outbound {
            id: AlertId::new(hub, AlertKind::Poa),
            code: AlertCode::Ad1,
            device_id: 1,
            region: Region::NORTH,
            region_code: 1,
            event_ms: 0,
            seq: 1,
            exit_ms: 0,
        });
    }
    let why = tokio::time::timeout(Duration::from_secs(5), fatal)
        .await
        .expect("fatal within 5 s");
    assert!(why.contains("401"), "{why}");
    let st = engine.drain(Duration::from_secs(60)).await;
    assert_eq!(st.fatal.as_deref(), Some(why.as_str()));
    let l = ledger.lock().unwrap();
    // Nothing refused was lost: what was not acknowledged is still pending, for the caller to end
    // the run as incomplete.
    let lost: u64 = l.lost_by_cause(AlertKind::Poa).values().sum();
    assert_eq!(lost, 0);
    assert!(l.delivered(AlertKind::Poa) <= 100);
    assert_eq!(l.delivered(AlertKind::Poa) + l.pending(), 200);
}

#[tokio::test(start_paused = true)]
async fn refused_client_certificate_on_reconnect_is_fatal() {
    let mut t = fake(|_, _| Answer::LoseConnection);
    t.refuse_reconnects = Some(ConnectError::ClientCertificate("bad_certificate".into()));
    let (st, f, _) = run(t, cfg(Some(60_000)), 10, Duration::from_secs(10)).await;
    assert!(
        st.fatal
            .as_deref()
            .unwrap_or_default()
            .contains("bad_certificate"),
        "{st:?}"
    );
    assert_eq!(f, fates(&[("not_delivered_by_end", 10)]));
}

#[tokio::test(start_paused = true)]
async fn drain_loses_as_unreachable_only_when_no_connection_is_up() {
    // Up but silent: pending at the drain, so not_delivered_by_end.
    let (st, f, _) = run(
        fake(|_, _| Answer::Silence),
        cfg(None),
        30,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(f, fates(&[("not_delivered_by_end", 30)]));
    assert_eq!(st.unreachable_at_drain, 0);
    // Every connection lost and every reconnect refused: unreachable at the drain.
    let mut t = fake(|_, _| Answer::LoseConnection);
    t.refuse_reconnects = Some(ConnectError::NotListening("refused".into()));
    let (st, f, _) = run(t, cfg(None), 30, Duration::from_secs(2)).await;
    assert_eq!(f, fates(&[("endpoint_unreachable", 30)]), "{st:?}");
    assert_eq!(st.unreachable_at_drain, 30);
}

#[tokio::test(start_paused = true)]
async fn duplicate_acks_never_deliver_twice() {
    let t = fake(|id, _| {
        if id.hub() % 2 == 0 {
            Answer::AckTwice
        } else {
            Answer::After(Duration::from_millis(1), Verdict::AckedDuplicate)
        }
    });
    let (st, f, l) = run(t, cfg(None), 100, Duration::from_secs(5)).await;
    assert_eq!(f, fates(&[("delivered", 100)]));
    assert_eq!(st.delivered, 100);
    assert_eq!(st.duplicate_acks, 50);
    assert_eq!(l.anomalies().duplicates, 50);
    assert_eq!(st.endpoint_duplicates, 50);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_loses_the_overflow_by_name() {
    let c = EngineConfig {
        send_queue: 40,
        ..cfg(None)
    };
    let (st, f, _) = run(fake(|_, _| ack()), c, 100, Duration::from_secs(5)).await;
    // Nothing runs between the submits, so exactly the queue's capacity got in.
    assert_eq!(f, fates(&[("delivered", 40), ("send_queue_overflow", 60)]));
    assert_eq!(st.queue_overflow, 60);
    let _ = LossCause::SendQueueOverflow;
}

#[tokio::test(start_paused = true)]
async fn exactly_one_fate_under_a_random_mix_of_answers() {
    use rand::{Rng, SeedableRng};
    for seed in 0..5u64 {
        let rng = Arc::new(Mutex::new(rand_pcg::Pcg64Mcg::seed_from_u64(seed)));
        let t = fake(move |id, _| {
            let mut r = rng.lock().unwrap();
            let ms = Duration::from_millis(r.random_range(0..50));
            match r.random_range(0..10) {
                0 => Answer::LoseConnection,
                1 => Answer::Silence,
                2 => Answer::After(ms, Verdict::Rejected("x".into())),
                3 => Answer::After(ms, Verdict::Retry("5xx".into())),
                4 => Answer::After(ms, Verdict::RetryAfter(Some(Duration::from_millis(300)))),
                5 => Answer::AckTwice,
                _ if id.hub() % 7 == 0 => Answer::After(ms, Verdict::AckedDuplicate),
                _ => Answer::After(ms, Verdict::Acked),
            }
        });
        let (st, f, l) = run(t, cfg(Some(3_000)), 400, Duration::from_secs(10)).await;
        let total: u64 = f.values().sum();
        assert_eq!(total, 400, "seed {seed}: {f:?}");
        assert_eq!(f.get("pending"), None);
        assert_eq!(
            f.get("delivered").copied().unwrap_or(0),
            st.delivered,
            "seed {seed}"
        );
        assert_eq!(
            f.get("endpoint_rejected").copied().unwrap_or(0),
            st.rejected,
            "seed {seed}"
        );
        assert_eq!(st.ledger_errors, 0, "seed {seed}: {st:?}");
        assert_eq!(l.anomalies().duplicates, st.duplicate_acks);
    }
}

#[tokio::test(start_paused = true)]
async fn a_lane_reopened_after_an_error_starts_with_a_small_window() {
    // The first send of every 50th alert breaks its lane (with all it has in flight).
    let t = fake(|id, attempt| {
        if attempt == 1 && id.hub() % 50 == 0 {
            Answer::BreakLane
        } else {
            ack()
        }
    });
    let first = t.first_batches.clone();
    let c = EngineConfig {
        connections: 1,
        lanes_per_connection: 1,
        max_in_flight_per_lane: 256,
        ..cfg(Some(600_000))
    };
    let (st, f, _) = run(t, c, 2_000, Duration::from_secs(60)).await;
    assert_eq!(f, fates(&[("delivered", 2_000)]), "{st:?}");
    let first = first.lock().unwrap().clone();
    assert!(st.stream_errors >= 5, "{st:?}");
    assert_eq!(first.len() as u64, st.stream_errors + 1, "{first:?}");
    // The first lane opens with the full window; every lane re-opened after an error with 16,
    // growing by its acknowledgements, so a break costs little when breaks come often.
    assert_eq!(first[0], 256, "{first:?}");
    assert!(first[1..].iter().all(|n| *n <= 16), "{first:?}");
}
