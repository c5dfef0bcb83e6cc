//! The transport-neutral delivery engine: the rules by which an alert handed to the sink reaches
//! exactly one fate, whatever carries it.
//!
//! - `submit` never blocks: it puts the alert on a bounded, lock-free queue (a full queue loses it
//!   as [`LossCause::SendQueueOverflow`]).
//! - A pool of connection workers keeps `connections` connections up (reconnecting with bounded,
//!   jittered exponential backoff); each runs one worker per lane. A lane worker takes alerts from
//!   the queue in batches (one hand-off per batch, never per alert), keeps at most
//!   `max_in_flight_per_lane` unanswered, and records the replies of each read in one ledger lock.
//! - ACK → `deliver`. Nothing else ever counts as delivered. An ACK for an alert already delivered
//!   is a duplicate (stats and ledger), never a second delivery; an endpoint that says it stored
//!   the alert before (same run, same id) is counted as an endpoint-reported duplicate.
//! - REJECT / HTTP 4xx → `lose(EndpointRejected)`, counted per reason or status.
//! - Back-pressure (HTTP 429/503) → the alert goes back to the front of the queue and no lane sends
//!   until the endpoint's `Retry-After` has passed (or a backoff, without one).
//! - A transient failure of one alert (HTTP 5xx, reset mid-body) → back to the queue; that lane
//!   waits a backoff.
//! - A lane or connection lost → its unanswered alerts go back to the front of the queue and are
//!   sent again (the endpoint de-duplicates by run and alert id, so a resend is safe).
//! - An alert not acknowledged within `alert_deadline_ms` (scenario ms after its `exit_ms`) →
//!   `lose(EndpointUnreachable)`, whether it waited in the queue or in flight.
//! - The endpoint refusing this client's credentials (token, client certificate, HTTP 401/403) at
//!   any time → a fatal, named error: every worker stops, nothing more is sent, the alerts not yet
//!   answered stay pending, and the caller ends the run as incomplete (exit 2). Never a silent loss.
//! - [`Engine::drain`] waits (bounded) for everything outstanding; what is still unanswered is lost
//!   as `EndpointUnreachable` if no connection was up at that moment, and otherwise left pending
//!   so that `Ledger::finish` records it as `NotDeliveredByEnd`.
//!
//! It never touches a socket or a wire format: that is the [`Transport`]'s job.

use crate::backoff::{Backoff, RetryPolicy};
use crate::inflight::InFlight;
use crate::transport::{ConnectError, Lane, LaneEnd, Reply, Transport, Verdict};
use crossbeam_queue::ArrayQueue;
use ledger::{AlertId, Fate, Ledger, LedgerError, LossCause};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use virtual_hubs::{Outbound, ScenarioClock, Sink};

/// The engine's rules, independent of the transport.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Connections in the pool.
    pub connections: usize,
    /// Lanes per connection (capped by the transport's own limit).
    pub lanes_per_connection: usize,
    /// Alerts sent but not yet answered, per lane (capped by the transport's own limit).
    pub max_in_flight_per_lane: usize,
    /// Capacity of the send queue (alerts waiting for a lane).
    pub send_queue: usize,
    /// Backoff between reconnects, lane re-opens and retried alerts.
    pub retry: RetryPolicy,
    /// Scenario ms after `exit_ms` after which an unacknowledged alert is lost as
    /// `EndpointUnreachable`; `None`: only the drain decides.
    pub alert_deadline_ms: Option<u64>,
    /// Seed of the backoff jitter.
    pub jitter_seed: u64,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error("bad egress configuration: {0}")]
    Config(String),
    /// The first connection attempt, or the probe on it, failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

/// What the engine did, reported by [`Engine::drain`] (and [`Engine::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EgressStats {
    /// The transport (e.g. `h2`, `csp-alert/2 over QUIC`).
    pub transport: String,
    /// Alerts handed to `submit`.
    pub submitted: u64,
    /// Lost because the send queue was full.
    pub queue_overflow: u64,
    /// Alerts sent (first sends and resends).
    pub frames_sent: u64,
    /// Alerts sent again (after a lane or connection was lost, back-pressure or a retryable
    /// failure).
    pub resent: u64,
    /// Alerts delivered (acknowledged).
    pub delivered: u64,
    /// Acknowledgements for alerts already delivered (never a second delivery).
    pub duplicate_acks: u64,
    /// Alerts the endpoint acknowledged as stored before (same run, same alert id): a resend it
    /// recognised. Delivered, and counted here.
    pub endpoint_duplicates: u64,
    /// ACKs or REJECTs for alerts not in flight on that lane (late or bogus); ignored.
    pub unsolicited_replies: u64,
    /// Alerts lost as `EndpointRejected`.
    pub rejected: u64,
    /// Rejections by reason (csp-alert) or HTTP status.
    pub rejected_by: BTreeMap<String, u64>,
    /// Back-pressure answers (HTTP 429/503): the alert was sent again after the endpoint's
    /// `Retry-After`, within its deadline.
    pub backpressure: u64,
    /// Transient failures of one alert (HTTP 5xx other than 503, reset mid-body): sent again.
    pub retried: u64,
    /// Every HTTP status received, by status.
    pub http_status: BTreeMap<u16, u64>,
    /// Alerts lost as `EndpointUnreachable` at their deadline.
    pub expired: u64,
    /// Alerts lost as `EndpointUnreachable` by the drain (no connection up at its end).
    pub unreachable_at_drain: u64,
    /// Alerts left pending by the drain (endpoint up but no answer in time).
    pub pending_at_drain: u64,
    /// Alerts submitted after the drain began (left pending).
    pub submitted_after_drain: u64,
    /// Ledger calls that failed (alert never expected, or fated elsewhere).
    pub ledger_errors: u64,
    /// Connections established.
    pub connects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Connections lost while in use.
    pub connections_lost: u64,
    /// Lanes (streams) that ended with an error while their connection stayed up.
    pub stream_errors: u64,
    /// Largest send lag (scenario ms from `exit_ms` to the first send).
    pub send_lag_max_ms: u64,
    /// 99th percentile of the send lag (scenario ms; HDR histogram, 3 significant digits).
    pub send_lag_p99_ms: u64,
    /// First sends per real second, between the first and the last send.
    pub send_rate_per_s: f64,
    /// Last connection or lane error seen, if any.
    pub last_error: Option<String>,
    /// The fatal error that stopped the engine (credentials refused), if any.
    pub fatal: Option<String>,
}

/// Atomic counters behind [`EgressStats`].
#[derive(Debug, Default)]
struct Counters {
    queue_overflow: AtomicU64,
    frames_sent: AtomicU64,
    resent: AtomicU64,
    delivered: AtomicU64,
    duplicate_acks: AtomicU64,
    endpoint_duplicates: AtomicU64,
    unsolicited_replies: AtomicU64,
    rejected: AtomicU64,
    backpressure: AtomicU64,
    retried: AtomicU64,
    expired: AtomicU64,
    unreachable_at_drain: AtomicU64,
    pending_at_drain: AtomicU64,
    submitted_after_drain: AtomicU64,
    ledger_errors: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    connections_lost: AtomicU64,
    stream_errors: AtomicU64,
    first_send_ns: AtomicU64,
    last_send_ns: AtomicU64,
}

fn bump(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// An empty send-lag histogram: 3 significant digits, growing as large lags arrive.
fn lag_histogram() -> hdrhistogram::Histogram<u64> {
    // `new` makes an auto-resizing histogram; 3 significant digits is a constant, valid precision.
    hdrhistogram::Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// Records `n` lags of `v`, growing the histogram for them (clamped only if growing is
/// impossible).
fn record_lag(h: &mut hdrhistogram::Histogram<u64>, v: u64, n: u64) {
    if h.record_n(v, n).is_err() {
        h.saturating_record_n(v, n);
    }
}

/// An alert waiting for, or in, a lane.
#[derive(Debug, Clone, Copy)]
struct Queued {
    alert: Outbound,
    sends: u32,
}

/// Counts per HTTP status (100..=599), lock-free.
struct StatusCounts([AtomicU64; 500]);

impl StatusCounts {
    fn new() -> Self {
        StatusCounts(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    fn bump(&self, status: u16) {
        if let Some(a) = status
            .checked_sub(100)
            .and_then(|i| self.0.get(usize::from(i)))
        {
            bump(a, 1);
        }
    }

    fn snapshot(&self) -> BTreeMap<u16, u64> {
        (100u16..)
            .zip(self.0.iter())
            .map(|(s, a)| (s, a.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

impl std::fmt::Debug for StatusCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// What only `submit` writes, on a cache line of its own: the sink is called for every alert from
/// the driver's thread, and sharing a line with what the lanes write made every call wait for
/// that line to come back from another core.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Producer {
    /// Alerts handed to `submit`.
    submitted: AtomicU64,
    /// Alerts admitted to the queue (not after the drain began), counted before they are pushed.
    admitted: AtomicU64,
}

/// State shared by the sink, the workers and the drain.
#[derive(Debug)]
struct Shared {
    cfg: EngineConfig,
    transport: String,
    clock: ScenarioClock,
    ledger: Arc<Mutex<Ledger>>,
    /// Fresh alerts, in submission order.
    queue: ArrayQueue<Queued>,
    /// Alerts to send again, taken before fresh ones.
    retry: Mutex<VecDeque<Queued>>,
    retry_len: AtomicUsize,
    work: Notify,
    /// Lanes waiting in `take` for the queue to fill: `submit` wakes one only if there is one, so
    /// a busy engine takes alerts without a wake-up per alert.
    idle: AtomicUsize,
    producer: Producer,
    /// Admitted alerts fated by the engine (or lost on a full queue). `admitted - settled` is
    /// what is outstanding (queued or in flight).
    settled: AtomicU64,
    closing: AtomicBool,
    stop: watch::Sender<bool>,
    fatal: watch::Sender<Option<String>>,
    connections_up: AtomicUsize,
    /// No lane sends before this (ns after `started`): the endpoint's `Retry-After`.
    pause_until_ns: AtomicU64,
    counters: Counters,
    statuses: StatusCounts,
    rejected_by: Mutex<BTreeMap<String, u64>>,
    /// Send lags (scenario ms from `exit_ms` to the first send), 3 significant digits.
    lag: Mutex<hdrhistogram::Histogram<u64>>,
    last_error: Mutex<Option<String>>,
    started: Instant,
}

/// Counts a lane as idle while it lives (a `take` cancelled mid-wait included).
struct IdleGuard<'a>(&'a AtomicUsize);

impl<'a> IdleGuard<'a> {
    fn new(idle: &'a AtomicUsize) -> Self {
        idle.fetch_add(1, Ordering::SeqCst);
        IdleGuard(idle)
    }
}

impl Drop for IdleGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What recording one read's replies asks of the lane.
#[derive(Debug, Default)]
struct Recorded {
    acked: usize,
    retry: bool,
    auth: Option<String>,
}

impl Shared {
    fn admit(&self, alert: Outbound) {
        bump(&self.producer.submitted, 1);
        if self.closing.load(Ordering::Acquire) {
            bump(&self.counters.submitted_after_drain, 1);
            return;
        }
        self.producer.admitted.fetch_add(1, Ordering::AcqRel);
        match self.queue.push(Queued { alert, sends: 0 }) {
            Ok(()) => self.wake_idle_lane(),
            Err(_) => {
                bump(&self.counters.queue_overflow, 1);
                self.lose_admitted(&[alert.id], LossCause::SendQueueOverflow);
            }
        }
    }

    /// Wakes one lane waiting for work, if any lane is waiting. Pairs with the idle count and
    /// the re-check in `take`: either the lane's re-check sees what was queued, or this sees the
    /// lane counted as idle (both sides order their operations with `SeqCst`).
    fn wake_idle_lane(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.idle.load(Ordering::SeqCst) > 0 {
            self.work.notify_one();
        }
    }

    /// Admitted alerts not yet fated (queued or in flight). Never less than the true count:
    /// `settled` is read first, and only grows.
    fn outstanding(&self) -> u64 {
        let settled = self.settled.load(Ordering::SeqCst);
        self.producer
            .admitted
            .load(Ordering::SeqCst)
            .saturating_sub(settled)
    }

    /// Whether nothing is queued (fresh or to resend).
    fn queue_empty(&self) -> bool {
        self.queue.is_empty() && self.retry_len.load(Ordering::SeqCst) == 0
    }

    /// Fills `batch` (emptied first) with up to `max` queued alerts, alerts to resend first;
    /// waits until there is at least one. Alerts already past their deadline are lost here
    /// instead of being sent. Cancel-safe: it only waits while `batch` is empty.
    async fn take(&self, max: usize, batch: &mut Vec<Queued>) {
        loop {
            batch.clear();
            if self.retry_len.load(Ordering::Acquire) > 0 {
                let mut r = lock(&self.retry);
                let n = max.min(r.len());
                batch.extend(r.drain(..n));
                self.retry_len.store(r.len(), Ordering::Release);
            }
            while batch.len() < max {
                match self.queue.pop() {
                    Some(q) => batch.push(q),
                    None => break,
                }
            }
            if !batch.is_empty() {
                if !self.queue_empty() {
                    self.wake_idle_lane();
                }
                if self.cfg.alert_deadline_ms.is_some() {
                    let now = self.clock.now_ms();
                    let mut expired = Vec::new();
                    batch.retain(|q| {
                        let late = self.is_expired(&q.alert, now);
                        if late {
                            expired.push(q.alert.id);
                        }
                        !late
                    });
                    if !expired.is_empty() {
                        bump(&self.counters.expired, expired.len() as u64);
                        self.lose_admitted(&expired, LossCause::EndpointUnreachable);
                    }
                }
                if !batch.is_empty() {
                    return;
                }
                continue;
            }
            // Nothing queued: wait, counted as idle, unless something arrived meanwhile. The
            // timeout is a safety net against a lost wake-up; the notify is the normal path.
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _idle = IdleGuard::new(&self.idle);
            if self.queue_empty() {
                let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
            }
        }
    }

    /// Puts alerts back at the front of the queue, in their order, to be sent first.
    fn requeue(&self, items: impl IntoIterator<Item = Queued>) {
        let items: Vec<Queued> = items.into_iter().collect();
        let mut r = lock(&self.retry);
        let before = r.len();
        for it in items.into_iter().rev() {
            r.push_front(it);
        }
        self.retry_len.store(r.len(), Ordering::Release);
        if r.len() > before {
            self.work.notify_one();
        }
    }

    fn is_expired(&self, a: &Outbound, now_ms: u64) -> bool {
        self.cfg
            .alert_deadline_ms
            .is_some_and(|d| now_ms > a.exit_ms.saturating_add(d))
    }

    /// Records losses in the ledger (one lock for the batch).
    fn lose(&self, ids: &[AlertId], cause: LossCause) {
        if ids.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        let mut l = lock(&self.ledger);
        for id in ids {
            if l.lose(*id, cause, now).is_err() {
                bump(&self.counters.ledger_errors, 1);
            }
        }
    }

    /// Loses admitted alerts (they leave the outstanding count).
    fn lose_admitted(&self, ids: &[AlertId], cause: LossCause) {
        self.lose(ids, cause);
        self.settled.fetch_add(ids.len() as u64, Ordering::AcqRel);
    }

    /// Records the replies of one read: fates in one ledger lock, resends back on the queue.
    /// `acked` is scratch space, kept by the lane so that a read allocates nothing.
    fn record(
        &self,
        replies: &[Reply],
        inflight: &mut InFlight<Queued>,
        acked: &mut Vec<AlertId>,
    ) -> Recorded {
        let mut out = Recorded::default();
        acked.clear();
        let mut rejected = Vec::new();
        let mut again = Vec::new();
        let mut stray_acks = Vec::new();
        let mut reasons: Vec<String> = Vec::new();
        for r in replies {
            if let Some(s) = r.status {
                self.statuses.bump(s);
            }
            let Some(q) = inflight.remove(r.id) else {
                match r.verdict {
                    Verdict::Acked | Verdict::AckedDuplicate => stray_acks.push(r.id),
                    _ => bump(&self.counters.unsolicited_replies, 1),
                }
                continue;
            };
            match &r.verdict {
                Verdict::Acked => acked.push(r.id),
                Verdict::AckedDuplicate => {
                    bump(&self.counters.endpoint_duplicates, 1);
                    acked.push(r.id);
                }
                Verdict::Rejected(reason) => {
                    rejected.push(r.id);
                    reasons.push(reason.clone());
                }
                Verdict::RetryAfter(after) => {
                    bump(&self.counters.backpressure, 1);
                    match after {
                        Some(d) => self.pause_for(*d),
                        None => out.retry = true,
                    }
                    again.push(q);
                }
                Verdict::Retry(why) => {
                    bump(&self.counters.retried, 1);
                    self.note_error(why.clone());
                    out.retry = true;
                    again.push(q);
                }
                Verdict::AuthRefused(why) => {
                    out.auth.get_or_insert_with(|| why.clone());
                    again.push(q);
                }
            }
        }
        if !acked.is_empty() || !stray_acks.is_empty() {
            let now = self.clock.now_ms();
            let mut l = lock(&self.ledger);
            for id in acked.iter() {
                match l.deliver(*id, now) {
                    Ok(()) => bump(&self.counters.delivered, 1),
                    Err(LedgerError::AlreadyFated {
                        existing: Fate::Delivered { .. },
                        ..
                    }) => bump(&self.counters.duplicate_acks, 1),
                    Err(_) => bump(&self.counters.ledger_errors, 1),
                }
            }
            for id in &stray_acks {
                // Only an ack for an alert already delivered is a duplicate; any other stray ack
                // (late, after the alert was lost) must not change its fate.
                if matches!(l.fate(*id), Some(Fate::Delivered { .. })) {
                    let _ = l.deliver(*id, now);
                    bump(&self.counters.duplicate_acks, 1);
                } else {
                    bump(&self.counters.unsolicited_replies, 1);
                }
            }
        }
        self.settled.fetch_add(acked.len() as u64, Ordering::AcqRel);
        if !rejected.is_empty() {
            bump(&self.counters.rejected, rejected.len() as u64);
            let mut by = lock(&self.rejected_by);
            for r in reasons {
                *by.entry(r).or_insert(0) += 1;
            }
            drop(by);
            self.lose_admitted(&rejected, LossCause::EndpointRejected);
        }
        if !again.is_empty() {
            self.requeue(again);
        }
        out.acked = acked.len();
        out
    }

    /// No lane sends for `d` from now (or longer, if an earlier pause lasts longer).
    fn pause_for(&self, d: Duration) {
        let until = (self.started.elapsed() + d).as_nanos() as u64;
        self.pause_until_ns.fetch_max(until, Ordering::AcqRel);
    }

    /// The end of the current back-pressure pause, if one is on.
    fn paused_until(&self) -> Option<Instant> {
        let ns = self.pause_until_ns.load(Ordering::Acquire);
        let until = self.started + Duration::from_nanos(ns);
        (until > Instant::now()).then_some(until)
    }

    fn note_send(&self, batch: &[Queued]) {
        let now_ms = self.clock.now_ms();
        let mut first = 0;
        {
            // Alerts of one batch mostly left the model in the same millisecond: one record per
            // run of equal lags.
            let mut h = lock(&self.lag);
            let mut run: Option<(u64, u64)> = None;
            for q in batch.iter().filter(|q| q.sends == 0) {
                let lag = now_ms.saturating_sub(q.alert.exit_ms);
                first += 1;
                match &mut run {
                    Some((v, n)) if *v == lag => *n += 1,
                    _ => {
                        if let Some((v, n)) = run.replace((lag, 1)) {
                            record_lag(&mut h, v, n);
                        }
                    }
                }
            }
            if let Some((v, n)) = run {
                record_lag(&mut h, v, n);
            }
        }
        bump(&self.counters.frames_sent, batch.len() as u64);
        bump(&self.counters.resent, batch.len() as u64 - first);
        if first > 0 {
            let ns = self.started.elapsed().as_nanos() as u64;
            self.counters.first_send_ns.fetch_min(ns, Ordering::Relaxed);
            self.counters.last_send_ns.fetch_max(ns, Ordering::Relaxed);
        }
    }

    fn note_error(&self, e: String) {
        tracing::debug!("egress: {e}");
        *lock(&self.last_error) = Some(e);
    }

    /// Stops every worker for good because the endpoint refused this client's credentials.
    fn set_fatal(&self, why: String) {
        let first = self.fatal.send_if_modified(|f| {
            if f.is_none() {
                *f = Some(why.clone());
                true
            } else {
                false
            }
        });
        if first {
            tracing::error!("egress: the endpoint refused this client's credentials: {why}");
            self.note_error(why);
        }
        let _ = self.stop.send(true);
    }

    /// Loses every queued alert past its deadline (they may wait there while no lane is up).
    fn sweep_queue(&self) {
        if self.cfg.alert_deadline_ms.is_none() {
            return;
        }
        let now = self.clock.now_ms();
        let mut expired = Vec::new();
        {
            let mut r = lock(&self.retry);
            r.retain(|q| {
                let keep = !self.is_expired(&q.alert, now);
                if !keep {
                    expired.push(q.alert.id);
                }
                keep
            });
            // Fresh alerts arrive in exit order, so the expired ones are at the front; the first
            // one still in time goes to the front of the resend queue, keeping its place.
            while let Some(q) = self.queue.pop() {
                if self.is_expired(&q.alert, now) {
                    expired.push(q.alert.id);
                } else {
                    r.push_front(q);
                    break;
                }
            }
            self.retry_len.store(r.len(), Ordering::Release);
        }
        bump(&self.counters.expired, expired.len() as u64);
        self.lose_admitted(&expired, LossCause::EndpointUnreachable);
    }

    fn expire_in_flight(&self, inflight: &mut InFlight<Queued>) {
        if self.cfg.alert_deadline_ms.is_none() {
            return;
        }
        let now = self.clock.now_ms();
        let expired = inflight.remove_where(|q| self.is_expired(&q.alert, now));
        bump(&self.counters.expired, expired.len() as u64);
        self.lose_admitted(&expired, LossCause::EndpointUnreachable);
    }

    fn stats(&self) -> EgressStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (lag_max, lag_p99, sends) = {
            let h = lock(&self.lag);
            (h.max(), h.value_at_quantile(0.99), h.len())
        };
        let span_s = g(&c.last_send_ns).saturating_sub(g(&c.first_send_ns)) as f64 / 1e9;
        EgressStats {
            transport: self.transport.clone(),
            submitted: g(&self.producer.submitted),
            queue_overflow: g(&c.queue_overflow),
            frames_sent: g(&c.frames_sent),
            resent: g(&c.resent),
            delivered: g(&c.delivered),
            duplicate_acks: g(&c.duplicate_acks),
            endpoint_duplicates: g(&c.endpoint_duplicates),
            unsolicited_replies: g(&c.unsolicited_replies),
            rejected: g(&c.rejected),
            rejected_by: lock(&self.rejected_by).clone(),
            backpressure: g(&c.backpressure),
            retried: g(&c.retried),
            http_status: self.statuses.snapshot(),
            expired: g(&c.expired),
            unreachable_at_drain: g(&c.unreachable_at_drain),
            pending_at_drain: g(&c.pending_at_drain),
            submitted_after_drain: g(&c.submitted_after_drain),
            ledger_errors: g(&c.ledger_errors),
            connects: g(&c.connects),
            connect_failures: g(&c.connect_failures),
            connections_lost: g(&c.connections_lost),
            stream_errors: g(&c.stream_errors),
            send_lag_max_ms: lag_max,
            send_lag_p99_ms: lag_p99,
            send_rate_per_s: if span_s > 0.0 {
                sends as f64 / span_s
            } else {
                0.0
            },
            last_error: lock(&self.last_error).clone(),
            fatal: self.fatal.borrow().clone(),
        }
    }
}

/// The engine's [`Sink`].
#[derive(Debug)]
struct EngineSink(Arc<Shared>);

impl Sink for EngineSink {
    fn submit(&self, alert: Outbound) {
        self.0.admit(alert);
    }
}

type Shutdown = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A running engine: a connection pool to the endpoint and the sink that feeds it.
pub struct Engine {
    shared: Arc<Shared>,
    workers: JoinSet<()>,
    shutdown: Option<Shutdown>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("transport", &self.shared.transport)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Connects once and probes the endpoint with the credentials the lanes will use (a refused
    /// certificate or token is an error here), then starts the pool.
    pub async fn start<T: Transport>(
        transport: T,
        cfg: EngineConfig,
        clock: ScenarioClock,
        ledger: Arc<Mutex<Ledger>>,
    ) -> Result<Engine, StartError> {
        if cfg.connections == 0 || cfg.lanes_per_connection == 0 {
            return Err(StartError::Config(
                "connections and streams per connection must be at least 1".into(),
            ));
        }
        if cfg.max_in_flight_per_lane == 0 || cfg.send_queue == 0 {
            return Err(StartError::Config(
                "in-flight limit and send queue must be at least 1".into(),
            ));
        }
        let transport = Arc::new(transport);
        let first = transport.connect().await?;
        if let Err(e) = transport.probe(&first).await {
            transport.close(&first);
            return Err(e.into());
        }
        let (stop, _) = watch::channel(false);
        let (fatal, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(cfg.send_queue),
            retry: Mutex::new(VecDeque::new()),
            retry_len: AtomicUsize::new(0),
            transport: transport.name(),
            cfg,
            clock,
            ledger,
            work: Notify::new(),
            idle: AtomicUsize::new(0),
            producer: Producer::default(),
            settled: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            stop,
            fatal,
            connections_up: AtomicUsize::new(0),
            pause_until_ns: AtomicU64::new(0),
            counters: Counters {
                first_send_ns: AtomicU64::new(u64::MAX),
                ..Counters::default()
            },
            statuses: StatusCounts::new(),
            rejected_by: Mutex::new(BTreeMap::new()),
            lag: Mutex::new(lag_histogram()),
            last_error: Mutex::new(None),
            started: Instant::now(),
        });
        let mut workers = JoinSet::new();
        let mut first = Some(first);
        for i in 0..shared.cfg.connections {
            workers.spawn(connection_worker(
                shared.clone(),
                transport.clone(),
                first.take(),
                i as u64,
            ));
        }
        workers.spawn(sweeper(shared.clone()));
        let t = transport.clone();
        let shutdown: Shutdown = Box::new(move || Box::pin(async move { t.shutdown().await }));
        Ok(Engine {
            shared,
            workers,
            shutdown: Some(shutdown),
        })
    }

    /// The sink to hand to the model. `submit` never blocks.
    pub fn sink(&self) -> Arc<dyn Sink> {
        Arc::new(EngineSink(self.shared.clone()))
    }

    /// Counters so far.
    pub fn stats(&self) -> EgressStats {
        self.shared.stats()
    }

    /// Alerts admitted but not yet fated (queued or in flight).
    pub fn outstanding(&self) -> u64 {
        self.shared.outstanding()
    }

    /// A read-only view of the counters that stays valid after [`Engine::drain`] (for a metrics
    /// exporter reading them on every scrape).
    pub fn probe(&self) -> EngineProbe {
        EngineProbe(self.shared.clone())
    }

    /// The fatal error that stopped the engine, if any.
    pub fn fatal(&self) -> Option<String> {
        self.shared.fatal.borrow().clone()
    }

    /// Resolves with the fatal error once the endpoint has refused this client's credentials
    /// (never, otherwise).
    pub fn fatal_signal(&self) -> impl Future<Output = String> + Send + 'static {
        let mut rx = self.shared.fatal.subscribe();
        async move {
            loop {
                if let Some(e) = rx.borrow_and_update().clone() {
                    return e;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Stops taking alerts, waits up to `timeout` (real time) for every outstanding alert to be
    /// answered, then stops the pool. Alerts still unanswered are lost as `EndpointUnreachable` if
    /// no connection was up at the end of the wait, and otherwise left pending (so
    /// `Ledger::finish` records them as `NotDeliveredByEnd`). After a fatal error nothing is
    /// waited for and everything unanswered is left pending. Returns within `timeout` + ~3 s.
    pub async fn drain(mut self, timeout: Duration) -> EgressStats {
        let sh = self.shared.clone();
        sh.closing.store(true, Ordering::Release);
        let until = Instant::now() + timeout;
        while sh.outstanding() > 0 && Instant::now() < until && sh.fatal.borrow().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let reachable =
            sh.connections_up.load(Ordering::Acquire) > 0 || sh.fatal.borrow().is_some();
        let _ = sh.stop.send(true);
        let joined = tokio::time::timeout(Duration::from_secs(2), async {
            while self.workers.join_next().await.is_some() {}
        })
        .await;
        if joined.is_err() {
            self.workers.abort_all();
        }
        let mut left: Vec<AlertId> = lock(&sh.retry).drain(..).map(|q| q.alert.id).collect();
        sh.retry_len.store(0, Ordering::Release);
        while let Some(q) = sh.queue.pop() {
            left.push(q.alert.id);
        }
        if reachable {
            bump(&sh.counters.pending_at_drain, left.len() as u64);
        } else {
            bump(&sh.counters.unreachable_at_drain, left.len() as u64);
            sh.lose(&left, LossCause::EndpointUnreachable);
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), shutdown()).await;
        }
        sh.stats()
    }
}

/// A read-only view of a running (or drained) engine's counters: [`Engine::probe`].
#[derive(Debug, Clone)]
pub struct EngineProbe(Arc<Shared>);

impl EngineProbe {
    /// Counters so far (see [`Engine::stats`]).
    pub fn stats(&self) -> EgressStats {
        self.0.stats()
    }

    /// Alerts admitted but not yet fated (see [`Engine::outstanding`]).
    pub fn outstanding(&self) -> u64 {
        self.0.outstanding()
    }

    /// Connections up now.
    pub fn connections_up(&self) -> u64 {
        self.0.connections_up.load(Ordering::Acquire) as u64
    }
}

/// The in-flight window of a lane re-opened after an error (it grows back to the cap with acks).
const RESTART_WINDOW: usize = 16;

/// Sweeps the queue for alerts past their deadline.
async fn sweeper(sh: Arc<Shared>) {
    let mut stop = sh.stop.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => sh.sweep_queue(),
            _ = stop.changed() => return,
        }
    }
}

/// Sleeps for `d` unless stopped first; `false` if stopped.
async fn pause(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    let mut stop = stop.clone();
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Keeps one pool slot connected: runs its lanes, reconnects with backoff when it is lost.
async fn connection_worker<T: Transport>(
    sh: Arc<Shared>,
    t: Arc<T>,
    mut initial: Option<T::Conn>,
    slot: u64,
) {
    let stop = sh.stop.subscribe();
    let mut backoff = Backoff::new(sh.cfg.retry, sh.cfg.jitter_seed ^ slot);
    let lanes = sh
        .cfg
        .lanes_per_connection
        .min(t.max_lanes().unwrap_or(usize::MAX))
        .max(1);
    while !*stop.borrow() {
        let conn = match initial.take() {
            Some(c) => Ok(c),
            None => {
                let mut stopped = stop.clone();
                tokio::select! {
                    c = t.connect() => c,
                    _ = stopped.changed() => return,
                }
            }
        };
        match conn {
            Ok(conn) => {
                bump(&sh.counters.connects, 1);
                backoff.reset();
                sh.connections_up.fetch_add(1, Ordering::AcqRel);
                let conn = Arc::new(conn);
                let mut set = JoinSet::new();
                for i in 0..lanes {
                    set.spawn(lane_worker(
                        sh.clone(),
                        t.clone(),
                        conn.clone(),
                        slot,
                        i as u64,
                    ));
                }
                let mut lost = None;
                while let Some(r) = set.join_next().await {
                    if let Ok(Some(why)) = r {
                        lost.get_or_insert(why);
                    }
                }
                sh.connections_up.fetch_sub(1, Ordering::AcqRel);
                if let Some(reason) = t.closed(&conn).or(lost)
                    && !*stop.borrow()
                {
                    bump(&sh.counters.connections_lost, 1);
                    sh.note_error(format!("connection lost: {reason}"));
                }
                t.close(&conn);
            }
            Err(e) => {
                bump(&sh.counters.connect_failures, 1);
                if e.is_auth() {
                    sh.set_fatal(e.to_string());
                    return;
                }
                sh.note_error(e.to_string());
            }
        }
        if !pause(backoff.next(), &stop).await {
            return;
        }
    }
}

/// Keeps one lane of a connection busy; re-opens it after a lane-level error. Returns why the
/// connection was lost, if it was.
async fn lane_worker<T: Transport>(
    sh: Arc<Shared>,
    t: Arc<T>,
    conn: Arc<T::Conn>,
    slot: u64,
    idx: u64,
) -> Option<String> {
    let stop = sh.stop.subscribe();
    let seed = sh.cfg.jitter_seed ^ (slot << 48) ^ (idx << 32);
    let mut backoff = Backoff::new(sh.cfg.retry, seed);
    let cap = sh
        .cfg
        .max_in_flight_per_lane
        .min(t.max_in_flight_per_lane().unwrap_or(usize::MAX))
        .max(1);
    // A lane re-opened after an error starts with a small window that grows with every
    // acknowledgement (slow start): an endpoint that keeps breaking lanes then costs a few
    // resends per break, not a full window's.
    let mut window = cap;
    loop {
        if *stop.borrow() {
            return None;
        }
        let mut stopped = stop.clone();
        let lane = tokio::select! {
            l = t.open_lane(&conn) => l,
            _ = stopped.changed() => return None,
        };
        let (end, progressed) = match lane {
            Ok(lane) => run_lane(lane, &sh, stop.clone(), cap, window, seed).await,
            Err(e) => (Some(e), false),
        };
        if progressed {
            // The endpoint answered on this lane: the next error starts a fresh backoff.
            backoff.reset();
        }
        match end {
            None => return None,
            Some(LaneEnd::ConnectionLost(why)) => return Some(why),
            Some(LaneEnd::AuthRefused(why)) => {
                sh.set_fatal(why);
                return None;
            }
            Some(LaneEnd::Error(e)) => {
                bump(&sh.counters.stream_errors, 1);
                sh.note_error(e);
                window = cap.min(RESTART_WINDOW);
            }
        }
        if let Some(why) = t.closed(&conn) {
            return Some(why);
        }
        if !pause(backoff.next(), &stop).await {
            return None;
        }
    }
}

/// One lane's life: send batches from the queue, record replies, expire overdue alerts. Whatever
/// is still in flight when it ends goes back to the queue. Also says whether any alert was
/// acknowledged on it.
async fn run_lane<L: Lane>(
    mut lane: L,
    sh: &Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    cap: usize,
    mut window: usize,
    seed: u64,
) -> (Option<LaneEnd>, bool) {
    let mut inflight: InFlight<Queued> = InFlight::with_capacity(cap);
    let mut replies: Vec<Reply> = Vec::new();
    let mut acked: Vec<AlertId> = Vec::new();
    let mut batch: Vec<Queued> = Vec::with_capacity(cap);
    let mut alerts: Vec<Outbound> = Vec::with_capacity(cap);
    let mut progressed = false;
    // A lane that met a retryable failure waits before sending again.
    let mut hold: Option<Instant> = None;
    let mut backoff = Backoff::new(sh.cfg.retry, seed ^ 0xB0FF);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = loop {
        if *stop.borrow() {
            break None;
        }
        let now = Instant::now();
        let held = hold.filter(|h| *h > now);
        let wait = match (sh.paused_until(), held) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let can_send = wait.is_none() && lane.ready() && inflight.len() < window;
        tokio::select! {
            biased;
            _ = stop.changed() => break None,
            _ = tick.tick() => sh.expire_in_flight(&mut inflight),
            r = lane.replies(&mut replies) => {
                // Replies read before a lane error still count.
                let rec = sh.record(&replies, &mut inflight, &mut acked);
                replies.clear();
                if let Err(e) = r {
                    break Some(e);
                }
                if rec.acked > 0 {
                    progressed = true;
                    window = (window + rec.acked).min(cap);
                }
                if let Some(why) = rec.auth {
                    break Some(LaneEnd::AuthRefused(why));
                }
                // An endpoint that still stores most alerts is not backed off far: the backoff
                // grows only while nothing at all is acknowledged.
                if rec.acked > 0 {
                    backoff.reset();
                }
                if rec.retry {
                    hold = Some(Instant::now() + backoff.next());
                }
            }
            _ = tokio::time::sleep_until(wait.unwrap_or(now)), if wait.is_some() => {}
            _ = sh.take(window - inflight.len(), &mut batch), if can_send => {
                if sh.paused_until().is_some() {
                    // Back-pressure began while this lane waited for work: honour it.
                    sh.requeue(batch.drain(..));
                    continue;
                }
                alerts.clear();
                alerts.extend(batch.iter().map(|q| q.alert));
                lane.send(&alerts);
                sh.note_send(&batch);
                for q in batch.drain(..) {
                    inflight.push(q.alert.id, Queued { sends: q.sends + 1, ..q });
                }
            }
        }
    };
    sh.requeue(inflight.drain());
    (end, progressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_histogram_reports_tight_percentiles() {
        let mut h = lag_histogram();
        for v in 1..=1000 {
            record_lag(&mut h, v, 1);
        }
        let p99 = h.value_at_quantile(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.max(), 1000);
        record_lag(&mut h, 1 << 40, 1);
        let huge = (1u64 << 40) as f64;
        assert!(
            (h.max() as f64 - huge).abs() <= huge * 0.001,
            "auto-resizes for huge lags: {}",
            h.max()
        );
    }
}
