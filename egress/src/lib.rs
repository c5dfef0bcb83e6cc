//! The QUIC egress: carries alerts from the modelled network to the real endpoint under test.
//!
//! [`Egress`] implements the [`Sink`] seam. `submit` never blocks: it puts the alert on a bounded
//! send queue (a full queue loses the alert as [`LossCause::SendQueueOverflow`]). A small pool of
//! connections, each with a few long-lived bidirectional streams, takes alerts from the queue,
//! batches them into ALERT frames (`docs/protocol.md`) and keeps a bounded number in flight per
//! stream. Fates are recorded in the [`Ledger`] as follows:
//!
//! - ACK → `deliver(id, now)`. Nothing else ever counts as delivered. An ACK for an alert that is
//!   already delivered is counted as a duplicate (stats and ledger), never as a second delivery.
//! - REJECT → `lose(id, EndpointRejected, now)`.
//! - A stream or connection lost → its unacknowledged alerts go back to the front of the queue and
//!   are sent again after reconnecting with bounded, jittered exponential backoff (the endpoint
//!   de-duplicates, so a resend is safe).
//! - An alert not acknowledged within `alert_deadline_ms` (scenario ms after its `exit_ms`) →
//!   `lose(id, EndpointUnreachable, now)`, whether it was waiting in the queue or in flight.
//! - [`Egress::drain`] waits (bounded) for everything outstanding; what is still unacknowledged
//!   afterwards is lost as `EndpointUnreachable` if no connection to the endpoint was up at that
//!   moment, and otherwise left pending so that `Ledger::finish` records it as `NotDeliveredByEnd`.
//!
//! Everything is bounded in time (connect timeout, idle timeout, keep-alives, deadlines, drain
//! timeout) and in memory (queue capacity, in-flight per stream, connection and stream counts).
//! A stream whose writes are blocked by a stalled endpoint (QUIC flow control) keeps reading
//! replies and still expires its alerts at their deadline: writes are cancel-safe partial writes
//! inside the same `select!` as the deadline tick and the stop signal.
//!
//! Security: the endpoint's certificate is verified against a CA or pinned certificate
//! ([`TrustSource`]) unless the loudly named [`TrustSource::InsecureSkipVerify`] is chosen (a
//! warning is logged); a client certificate can be presented for mutual TLS, and a token in HELLO.
//! [`Egress::start`] probes the endpoint once (HELLO on a fresh stream), so a refused certificate,
//! client certificate or token is a clear, typed start error ([`ConnectError`]) and not a run in
//! which every alert silently expires.

/// The QUIC library, re-exported so callers (tests, tools) can name connection and stream types.
pub use quinn;

use bytes::{Buf, BytesMut};
use ledger::{AlertId, Fate, Ledger, LedgerError, LossCause};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tls::{ClientIdentity, TlsError, TrustSource};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use virtual_hubs::{Outbound, ScenarioClock, Sink};
use wire::{self, AlertHeader, Decoder, ErrorCode, Frame};

/// Bounded exponential backoff with jitter, for reconnects and stream re-opens.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay.
    pub initial: Duration,
    /// Largest delay (the doubling stops here).
    pub max: Duration,
    /// Fraction of each delay taken off at random (0 = none, 1 = full jitter).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(2),
            jitter: 0.5,
        }
    }
}

/// Everything [`Egress::start`] needs.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// The endpoint's UDP address.
    pub endpoint: SocketAddr,
    /// Name the endpoint's certificate must be valid for.
    pub server_name: String,
    /// Certificates to trust (CA or pinned endpoint certificate).
    pub trust: TrustSource,
    /// Connections in the pool.
    pub connections: usize,
    /// Long-lived streams per connection.
    pub streams_per_connection: usize,
    /// Alerts sent but not yet answered, per stream.
    pub max_in_flight_per_stream: usize,
    /// Capacity of the send queue (alerts waiting for a stream).
    pub send_queue: usize,
    /// Backoff between reconnects and stream re-opens.
    pub retry: RetryPolicy,
    /// Real time allowed for one connection attempt (handshake included).
    pub connect_timeout: Duration,
    /// Scenario ms after `exit_ms` after which an unacknowledged alert is lost as
    /// `EndpointUnreachable`; `None`: only the drain decides.
    pub alert_deadline_ms: Option<u64>,
    /// A connection silent this long (real time) is considered lost.
    pub idle_timeout: Duration,
    /// Keep-alive interval (real time), well below `idle_timeout`.
    pub keep_alive: Duration,
    /// Token to send in a HELLO at the start of each stream, if the endpoint requires one.
    pub auth_token: Option<String>,
    /// Client certificate chain PEM to present (mutual TLS); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// Private key PEM of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Local address to bind the client's UDP socket to (default: the unspecified address of the
    /// endpoint's family, any port).
    pub local_addr: Option<SocketAddr>,
    /// Seed of the backoff jitter.
    pub jitter_seed: u64,
}

impl EgressConfig {
    /// Defaults for an endpoint at `endpoint` whose certificate is valid for `server_name` and
    /// verifies against the PEM file `ca_pem`.
    pub fn new(endpoint: SocketAddr, server_name: impl Into<String>, ca_pem: PathBuf) -> Self {
        EgressConfig {
            endpoint,
            server_name: server_name.into(),
            trust: TrustSource::PemFile(ca_pem),
            connections: 4,
            streams_per_connection: 4,
            max_in_flight_per_stream: 256,
            send_queue: 65_536,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(3),
            alert_deadline_ms: Some(15 * 60_000),
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            auth_token: None,
            client_cert: None,
            client_key: None,
            local_addr: None,
            jitter_seed: 0x5EED,
        }
    }
}

/// Why the egress could not start.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The trust PEM could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The local UDP socket could not be created.
    #[error("cannot open a local UDP socket: {0}")]
    Socket(std::io::Error),
    /// The configuration is unusable.
    #[error("bad egress configuration: {0}")]
    Config(String),
    /// The first connection attempt (or the probe on it) failed.
    #[error("cannot connect to endpoint {endpoint} (server name '{server_name}'): {reason}")]
    Unreachable {
        /// The endpoint address.
        endpoint: SocketAddr,
        /// The server name used for verification.
        server_name: String,
        /// What went wrong (timeout, certificate refused, ...).
        reason: ConnectError,
    },
}

/// Why a connection attempt failed, sorted by what the user has to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// No handshake completed in time: nothing listening, or packets dropped.
    #[error("no QUIC handshake within {ms} ms (is an endpoint listening there?)")]
    Timeout {
        /// The connect timeout.
        ms: u128,
    },
    /// The endpoint's certificate did not verify (expired, not valid for the server name, unknown
    /// issuer, not the pinned one).
    #[error(
        "handshake failed: the endpoint's certificate was refused: {0} (check --ca / the pinned \
         certificate, its validity dates and --server-name)"
    )]
    EndpointCertificate(String),
    /// The endpoint refused this client's certificate, or requires one and none was given.
    #[error(
        "handshake failed: the endpoint refused the client: {0} (it requires a client certificate \
         its CA issued: set client-cert/client-key)"
    )]
    ClientCertificate(String),
    /// The endpoint does not speak `csp-alert/1`.
    #[error("handshake failed: the endpoint does not offer ALPN csp-alert/1: {0}")]
    Alpn(String),
    /// The endpoint refused the connection (QUIC CONNECTION_REFUSED, e.g. at its connection limit).
    #[error("the endpoint refused the connection: {0}")]
    Refused(String),
    /// The endpoint closed the connection at once, or it was lost, during the start-up probe.
    #[error("the endpoint closed the connection at once: {0}")]
    Closed(String),
    /// The endpoint refused the HELLO token (`UNAUTHENTICATED`).
    #[error("the endpoint refused the token: {0} (set the token it expects)")]
    Token(String),
    /// Anything else.
    #[error("handshake failed: {0}")]
    Other(String),
}

impl ConnectError {
    /// Sorts a QUIC connection error by what the user has to fix.
    pub fn classify(e: &quinn::ConnectionError) -> ConnectError {
        use quinn::ConnectionError as E;
        let text = e.to_string();
        let lower = text.to_ascii_lowercase();
        // TLS alerts travel as QUIC crypto errors 0x100 + alert.
        let alert = |code: quinn::TransportErrorCode| -> Option<u8> {
            let v = u64::from(code);
            (0x100..0x200).contains(&v).then_some((v - 0x100) as u8)
        };
        match e {
            E::TimedOut => ConnectError::Closed(text),
            E::TransportError(t) if lower.contains("invalid peer certificate") => {
                let _ = t;
                ConnectError::EndpointCertificate(text)
            }
            E::ConnectionClosed(c)
                if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
            {
                ConnectError::Refused(text)
            }
            E::ConnectionClosed(c) => match alert(c.error_code) {
                // no_application_protocol
                Some(120) => ConnectError::Alpn(text),
                // bad_certificate, unsupported/revoked/expired/unknown certificate, unknown_ca,
                // certificate_required
                Some(42..=46) | Some(48) | Some(116) => ConnectError::ClientCertificate(text),
                _ => ConnectError::Other(text),
            },
            E::ApplicationClosed(_) | E::Reset | E::LocallyClosed => ConnectError::Closed(text),
            _ if lower.contains("application protocol") => ConnectError::Alpn(text),
            _ => ConnectError::Other(text),
        }
    }
}

/// What the egress did, reported by [`Egress::drain`] (and [`Egress::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EgressStats {
    /// Alerts handed to `submit`.
    pub submitted: u64,
    /// Lost because the send queue was full.
    pub queue_overflow: u64,
    /// ALERT frames written (first sends and resends).
    pub frames_sent: u64,
    /// ALERT frames written again after a stream or connection was lost.
    pub resent: u64,
    /// Alerts delivered (acknowledged).
    pub delivered: u64,
    /// ACKs for alerts already delivered (never a second delivery).
    pub duplicate_acks: u64,
    /// ACKs or REJECTs for alerts not in flight on that stream (late or bogus); ignored.
    pub unsolicited_replies: u64,
    /// Alerts lost as `EndpointRejected`.
    pub rejected: u64,
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
    /// Streams that ended with an error while their connection stayed up.
    pub stream_errors: u64,
    /// Largest send lag (scenario ms from `exit_ms` to the first send).
    pub send_lag_max_ms: u64,
    /// 99th percentile of the send lag (scenario ms; HDR histogram, 3 significant digits).
    pub send_lag_p99_ms: u64,
    /// First sends per real second, between the first and the last send.
    pub send_rate_per_s: f64,
    /// Last connection or stream error seen, if any.
    pub last_error: Option<String>,
}

/// Atomic counters behind [`EgressStats`].
#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    queue_overflow: AtomicU64,
    frames_sent: AtomicU64,
    resent: AtomicU64,
    delivered: AtomicU64,
    duplicate_acks: AtomicU64,
    unsolicited_replies: AtomicU64,
    rejected: AtomicU64,
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

/// Records a lag, growing the histogram for it (clamped only if growing is impossible).
fn record_lag(h: &mut hdrhistogram::Histogram<u64>, v: u64) {
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

/// An alert waiting for, or in, a stream.
#[derive(Debug, Clone, Copy)]
struct Queued {
    alert: Outbound,
    sends: u32,
}

/// State shared by the sink, the workers and the drain.
#[derive(Debug)]
struct Shared {
    cfg: EgressConfig,
    clock: ScenarioClock,
    ledger: Arc<Mutex<Ledger>>,
    queue: Mutex<VecDeque<Queued>>,
    work: Notify,
    /// Admitted alerts not yet fated by the egress (queued or in flight).
    outstanding: AtomicU64,
    closing: AtomicBool,
    stop: watch::Sender<bool>,
    connections_up: AtomicUsize,
    counters: Counters,
    /// Send lags (scenario ms from `exit_ms` to the first send), 3 significant digits.
    lag: Mutex<hdrhistogram::Histogram<u64>>,
    last_error: Mutex<Option<String>>,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn admit(&self, alert: Outbound) {
        bump(&self.counters.submitted, 1);
        if self.closing.load(Ordering::Acquire) {
            bump(&self.counters.submitted_after_drain, 1);
            return;
        }
        let admitted = {
            let mut q = lock(&self.queue);
            if q.len() >= self.cfg.send_queue {
                false
            } else {
                q.push_back(Queued { alert, sends: 0 });
                self.outstanding.fetch_add(1, Ordering::AcqRel);
                true
            }
        };
        if admitted {
            self.work.notify_one();
        } else {
            bump(&self.counters.queue_overflow, 1);
            self.lose(&[alert.id], LossCause::SendQueueOverflow);
        }
    }

    /// Up to `max` queued alerts; waits until there is at least one. Cancel-safe.
    async fn take(&self, max: usize) -> Vec<Queued> {
        loop {
            let notified = self.work.notified();
            {
                let mut q = lock(&self.queue);
                if !q.is_empty() {
                    let n = max.min(q.len());
                    let batch: Vec<Queued> = q.drain(..n).collect();
                    if !q.is_empty() {
                        self.work.notify_one();
                    }
                    return batch;
                }
            }
            // The timeout is a safety net against a lost wake-up; the notify is the normal path.
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// Puts alerts whose stream died back at the front of the queue, to be sent first.
    fn requeue(&self, items: impl IntoIterator<Item = Queued>) {
        let mut q = lock(&self.queue);
        let before = q.len();
        for it in items {
            q.push_front(it);
        }
        if q.len() > before {
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
        self.outstanding
            .fetch_sub(ids.len() as u64, Ordering::AcqRel);
    }

    /// Records the replies read from one stream.
    fn record_replies(&self, r: &Replies) {
        let now = self.clock.now_ms();
        {
            let mut l = lock(&self.ledger);
            for id in &r.acked {
                match l.deliver(*id, now) {
                    Ok(()) => bump(&self.counters.delivered, 1),
                    Err(LedgerError::AlreadyFated {
                        existing: Fate::Delivered { .. },
                        ..
                    }) => bump(&self.counters.duplicate_acks, 1),
                    Err(_) => bump(&self.counters.ledger_errors, 1),
                }
            }
            for id in &r.unsolicited_acks {
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
        bump(&self.counters.unsolicited_replies, r.unsolicited_rejects);
        self.outstanding
            .fetch_sub(r.acked.len() as u64, Ordering::AcqRel);
        bump(&self.counters.rejected, r.rejected.len() as u64);
        self.lose_admitted(&r.rejected, LossCause::EndpointRejected);
    }

    fn note_send(&self, batch: &[Queued]) {
        let now_ms = self.clock.now_ms();
        let mut first = 0;
        {
            let mut h = lock(&self.lag);
            for q in batch.iter().filter(|q| q.sends == 0) {
                record_lag(&mut h, now_ms.saturating_sub(q.alert.exit_ms));
                first += 1;
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

    /// Loses every queued alert past its deadline.
    fn sweep_queue(&self) {
        if self.cfg.alert_deadline_ms.is_none() {
            return;
        }
        let now = self.clock.now_ms();
        let mut expired = Vec::new();
        lock(&self.queue).retain(|q| {
            let keep = !self.is_expired(&q.alert, now);
            if !keep {
                expired.push(q.alert.id);
            }
            keep
        });
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
            submitted: g(&c.submitted),
            queue_overflow: g(&c.queue_overflow),
            frames_sent: g(&c.frames_sent),
            resent: g(&c.resent),
            delivered: g(&c.delivered),
            duplicate_acks: g(&c.duplicate_acks),
            unsolicited_replies: g(&c.unsolicited_replies),
            rejected: g(&c.rejected),
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
        }
    }
}

/// The egress's [`Sink`].
#[derive(Debug)]
struct EgressSink(Arc<Shared>);

impl Sink for EgressSink {
    fn submit(&self, alert: Outbound) {
        self.0.admit(alert);
    }
}

/// A running egress: a connection pool to the endpoint and the sink that feeds it.
#[derive(Debug)]
pub struct Egress {
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    workers: JoinSet<()>,
}

impl Egress {
    /// Connects once (bounded by `connect_timeout`) — an unreachable endpoint or a refused
    /// certificate is an error here — then starts the pool.
    pub async fn start(
        cfg: EgressConfig,
        clock: ScenarioClock,
        ledger: Arc<Mutex<Ledger>>,
    ) -> Result<Egress, EgressError> {
        if cfg.connections == 0 || cfg.streams_per_connection == 0 {
            return Err(EgressError::Config(
                "connections and streams per connection must be at least 1".into(),
            ));
        }
        if cfg.max_in_flight_per_stream == 0 || cfg.send_queue == 0 {
            return Err(EgressError::Config(
                "in-flight limit and send queue must be at least 1".into(),
            ));
        }
        let endpoint = client_endpoint(&cfg)?;
        let unreachable = |reason| EgressError::Unreachable {
            endpoint: cfg.endpoint,
            server_name: cfg.server_name.clone(),
            reason,
        };
        let first = connect(&endpoint, &cfg).await.map_err(unreachable)?;
        if let Err(reason) = probe(&first, &cfg).await {
            first.close(quinn::VarInt::from_u32(0), b"refused");
            return Err(unreachable(reason));
        }
        let (stop, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::with_capacity(cfg.send_queue.min(1 << 16))),
            cfg,
            clock,
            ledger,
            work: Notify::new(),
            outstanding: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            stop,
            connections_up: AtomicUsize::new(0),
            counters: Counters {
                first_send_ns: AtomicU64::new(u64::MAX),
                ..Counters::default()
            },
            lag: Mutex::new(lag_histogram()),
            last_error: Mutex::new(None),
            started: Instant::now(),
        });
        let mut workers = JoinSet::new();
        let mut first = Some(first);
        for i in 0..shared.cfg.connections {
            workers.spawn(connection_worker(
                shared.clone(),
                endpoint.clone(),
                first.take(),
                i as u64,
            ));
        }
        workers.spawn(sweeper(shared.clone()));
        Ok(Egress {
            shared,
            endpoint,
            workers,
        })
    }

    /// The sink to hand to the model. `submit` never blocks.
    pub fn sink(&self) -> Arc<dyn Sink> {
        Arc::new(EgressSink(self.shared.clone()))
    }

    /// Counters so far.
    pub fn stats(&self) -> EgressStats {
        self.shared.stats()
    }

    /// Alerts admitted but not yet fated (queued or in flight).
    pub fn outstanding(&self) -> u64 {
        self.shared.outstanding.load(Ordering::Acquire)
    }

    /// Stops taking alerts, waits up to `timeout` (real time) for every outstanding alert to be
    /// answered, then stops the pool. Alerts still unanswered are lost as `EndpointUnreachable` if
    /// no connection was up at the end of the wait, and otherwise left pending (so
    /// `Ledger::finish` records them as `NotDeliveredByEnd`). Returns within `timeout` + ~3 s.
    pub async fn drain(mut self, timeout: Duration) -> EgressStats {
        let sh = self.shared.clone();
        sh.closing.store(true, Ordering::Release);
        let until = Instant::now() + timeout;
        while sh.outstanding.load(Ordering::Acquire) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let reachable = sh.connections_up.load(Ordering::Acquire) > 0;
        let _ = sh.stop.send(true);
        let joined = tokio::time::timeout(Duration::from_secs(2), async {
            while self.workers.join_next().await.is_some() {}
        })
        .await;
        if joined.is_err() {
            self.workers.abort_all();
        }
        let left: Vec<AlertId> = lock(&sh.queue).drain(..).map(|q| q.alert.id).collect();
        if reachable {
            bump(&sh.counters.pending_at_drain, left.len() as u64);
        } else {
            bump(&sh.counters.unreachable_at_drain, left.len() as u64);
            sh.lose(&left, LossCause::EndpointUnreachable);
        }
        self.endpoint.close(quinn::VarInt::from_u32(0), b"drained");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        sh.stats()
    }
}

/// Sweeps the queue for alerts past their deadline (they may wait there while no connection is up).
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

/// A client QUIC endpoint (one UDP socket with 4 MiB buffers) configured to trust `cfg.trust`.
pub fn client_endpoint(cfg: &EgressConfig) -> Result<quinn::Endpoint, EgressError> {
    let identity = match (&cfg.client_cert, &cfg.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(ClientIdentity {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => {
            return Err(EgressError::Config(
                "a client certificate needs its key and a key its certificate \
                 (client-cert and client-key go together)"
                    .into(),
            ));
        }
    };
    let tls = tls::client_config(&cfg.trust, identity.as_ref(), &[wire::ALPN])?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| EgressError::Config(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(0))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .keep_alive_interval(Some(cfg.keep_alive))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(cfg.idle_timeout)
                .map_err(|e| EgressError::Config(format!("idle timeout: {e}")))?,
        ));
    client.transport_config(Arc::new(transport));
    let local: SocketAddr = match cfg.local_addr {
        Some(a) => a,
        None if cfg.endpoint.is_ipv6() => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        None => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
    };
    let socket = tls::bind_udp(local).map_err(EgressError::Socket)?;
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(EgressError::Socket)?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// One connection attempt, bounded by `cfg.connect_timeout`; the error says what went wrong.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    cfg: &EgressConfig,
) -> Result<quinn::Connection, ConnectError> {
    let connecting = endpoint
        .connect(cfg.endpoint, &cfg.server_name)
        .map_err(|e| ConnectError::Other(e.to_string()))?;
    match tokio::time::timeout(cfg.connect_timeout, connecting).await {
        Err(_) => Err(ConnectError::Timeout {
            ms: cfg.connect_timeout.as_millis(),
        }),
        Ok(Err(e)) => Err(ConnectError::classify(&e)),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Checks that the endpoint lets this client in: sends HELLO (with the token, if any) on a fresh
/// stream and finishes it; the endpoint answers with nothing (then finishes its side) or with an
/// ERROR. A refused client certificate shows up here as the connection being closed (in TLS 1.3
/// the client finishes its handshake before the server has checked its certificate). An endpoint
/// that does not answer within `connect_timeout` is given the benefit of the doubt.
pub async fn probe(conn: &quinn::Connection, cfg: &EgressConfig) -> Result<(), ConnectError> {
    let lost = |e: quinn::ConnectionError| match ConnectError::classify(&e) {
        ConnectError::Other(t) => ConnectError::Closed(t),
        c => c,
    };
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(lost)?;
        let mut hello = BytesMut::new();
        let token = cfg.auth_token.as_deref().unwrap_or_default();
        wire::encode_hello(&mut hello, wire::PROTOCOL_VERSION, token.as_bytes());
        let write = async {
            send.write_all(&hello).await.ok()?;
            send.finish().ok()
        };
        let _ = write.await;
        let reply = match recv.read_to_end(64 * 1024).await {
            Ok(r) => r,
            Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(e))) => {
                return Err(lost(e));
            }
            Err(_) => Vec::new(),
        };
        let mut dec = Decoder::default();
        dec.push(&reply);
        match dec.next_frame() {
            Ok(Some(Frame::Error(e)))
                if ErrorCode::from_wire(e.code) == ErrorCode::Unauthenticated =>
            {
                Err(ConnectError::Token(e.text))
            }
            Ok(Some(Frame::Error(e))) => Err(ConnectError::Other(format!(
                "the endpoint answered HELLO with error {:?} ({})",
                ErrorCode::from_wire(e.code),
                e.text
            ))),
            _ => Ok(()),
        }
    };
    match tokio::time::timeout(cfg.connect_timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// Keeps one pool slot connected: runs its streams, reconnects with backoff when it is lost.
async fn connection_worker(
    sh: Arc<Shared>,
    endpoint: quinn::Endpoint,
    mut initial: Option<quinn::Connection>,
    slot: u64,
) {
    let stop = sh.stop.subscribe();
    let mut backoff = Backoff::new(sh.cfg.retry, sh.cfg.jitter_seed ^ slot);
    while !*stop.borrow() {
        let conn = match initial.take() {
            Some(c) => Ok(c),
            None => {
                let mut stopped = stop.clone();
                tokio::select! {
                    c = connect(&endpoint, &sh.cfg) => c,
                    _ = stopped.changed() => return,
                }
            }
        };
        match conn {
            Ok(conn) => {
                bump(&sh.counters.connects, 1);
                backoff.reset();
                sh.connections_up.fetch_add(1, Ordering::AcqRel);
                run_connection(&conn, &sh).await;
                sh.connections_up.fetch_sub(1, Ordering::AcqRel);
                if let Some(reason) = conn.close_reason()
                    && !*stop.borrow()
                {
                    bump(&sh.counters.connections_lost, 1);
                    sh.note_error(format!("connection lost: {reason}"));
                }
                conn.close(quinn::VarInt::from_u32(0), b"bye");
            }
            Err(e) => {
                bump(&sh.counters.connect_failures, 1);
                sh.note_error(e.to_string());
            }
        }
        if !pause(backoff.next(), &stop).await {
            return;
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

async fn run_connection(conn: &quinn::Connection, sh: &Arc<Shared>) {
    let mut streams = JoinSet::new();
    for i in 0..sh.cfg.streams_per_connection {
        streams.spawn(stream_worker(conn.clone(), sh.clone(), i as u64));
    }
    while streams.join_next().await.is_some() {}
}

/// Keeps one stream of a connection busy; re-opens it after a stream-level error.
async fn stream_worker(conn: quinn::Connection, sh: Arc<Shared>, idx: u64) {
    let stop = sh.stop.subscribe();
    let mut backoff = Backoff::new(sh.cfg.retry, sh.cfg.jitter_seed ^ (idx << 32));
    loop {
        let (end, progressed) = run_stream(&conn, &sh, stop.clone()).await;
        if progressed {
            // The endpoint answered on this stream: the next error starts a fresh backoff.
            backoff.reset();
        }
        match end {
            StreamEnd::Stopped | StreamEnd::ConnectionLost => return,
            StreamEnd::Error(e) => {
                bump(&sh.counters.stream_errors, 1);
                sh.note_error(e);
            }
        }
        if conn.close_reason().is_some() || !pause(backoff.next(), &stop).await {
            return;
        }
    }
}

enum StreamEnd {
    Stopped,
    ConnectionLost,
    Error(String),
}

/// Replies decoded from one read.
#[derive(Debug, Default)]
struct Replies {
    acked: Vec<AlertId>,
    rejected: Vec<AlertId>,
    unsolicited_acks: Vec<AlertId>,
    unsolicited_rejects: u64,
}

/// One stream's life: send batches from the queue, read replies, expire overdue alerts. Whatever
/// is still in flight when it ends goes back to the queue. Also says whether any alert was
/// acknowledged on it.
async fn run_stream(
    conn: &quinn::Connection,
    sh: &Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> (StreamEnd, bool) {
    if *stop.borrow() {
        return (StreamEnd::Stopped, false);
    }
    let (mut send, mut recv) = match conn.open_bi().await {
        Ok(s) => s,
        Err(e) => {
            sh.note_error(format!("cannot open stream: {e}"));
            return (StreamEnd::ConnectionLost, false);
        }
    };
    let mut inflight: HashMap<AlertId, Queued> = HashMap::new();
    let mut progressed = false;
    let end = stream_loop(
        &mut send,
        &mut recv,
        &mut inflight,
        sh,
        &mut stop,
        &mut progressed,
    )
    .await;
    let _ = send.finish();
    sh.requeue(inflight.into_values());
    (end, progressed)
}

async fn stream_loop(
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    inflight: &mut HashMap<AlertId, Queued>,
    sh: &Arc<Shared>,
    stop: &mut watch::Receiver<bool>,
    progressed: &mut bool,
) -> StreamEnd {
    let cap = sh.cfg.max_in_flight_per_stream;
    let mut decoder = Decoder::default();
    // Encoded frames not yet accepted by QUIC. Written with `write` (cancel-safe, partial) inside
    // the select, so a write blocked by flow control never stops replies being read, alerts
    // expiring at their deadline, or the stop signal.
    let mut out = BytesMut::new();
    if let Some(token) = &sh.cfg.auth_token {
        wire::encode_hello(&mut out, wire::PROTOCOL_VERSION, token.as_bytes());
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return StreamEnd::Stopped,
            _ = tick.tick() => expire_in_flight(inflight, sh),
            r = recv.read_chunk(64 * 1024, true) => {
                let chunk = match r {
                    Ok(Some(c)) => c,
                    Ok(None) => return StreamEnd::Error("endpoint finished the stream".into()),
                    Err(quinn::ReadError::ConnectionLost(_)) => return StreamEnd::ConnectionLost,
                    Err(e) => return StreamEnd::Error(format!("stream read: {e}")),
                };
                decoder.push(&chunk.bytes);
                let (replies, res) = decode_replies(&mut decoder, inflight);
                *progressed |= !replies.acked.is_empty();
                sh.record_replies(&replies);
                if let Err(e) = res {
                    return StreamEnd::Error(e);
                }
            }
            w = send.write(&out), if !out.is_empty() => match w {
                Ok(n) => out.advance(n),
                Err(quinn::WriteError::ConnectionLost(_)) => return StreamEnd::ConnectionLost,
                Err(e) => return StreamEnd::Error(format!("stream write: {e}")),
            },
            batch = sh.take(cap - inflight.len()), if out.is_empty() && inflight.len() < cap => {
                encode_batch(&batch, &mut out);
                sh.note_send(&batch);
                inflight.extend(batch.into_iter().map(|q| (q.alert.id, Queued { sends: q.sends + 1, ..q })));
            }
        }
    }
}

fn encode_batch(batch: &[Queued], out: &mut BytesMut) {
    let mut payload = [0u8; wire::SYNTHETIC_PAYLOAD_LEN];
    for q in batch {
        let a = &q.alert;
        let h = AlertHeader {
            alert_id: a.id.0,
            code: a.code.wire(),
            device_id: a.device_id,
            region: a.region.wire(),
            event_ms: a.event_ms,
            seq: a.seq,
        };
        wire::synthetic_payload(&h, &mut payload);
        wire::encode_alert(out, &h, &payload);
    }
}

/// Decodes every buffered reply frame, matching it against this stream's in-flight alerts.
fn decode_replies(
    dec: &mut Decoder,
    inflight: &mut HashMap<AlertId, Queued>,
) -> (Replies, Result<(), String>) {
    let mut r = Replies::default();
    let res = loop {
        match dec.next_frame() {
            Ok(None) => break Ok(()),
            Ok(Some(Frame::Ack(ids))) => {
                for id in ids.into_iter().map(AlertId) {
                    match inflight.remove(&id) {
                        Some(_) => r.acked.push(id),
                        None => r.unsolicited_acks.push(id),
                    }
                }
            }
            Ok(Some(Frame::Reject(rej))) => match inflight.remove(&AlertId(rej.alert_id)) {
                Some(_) => r.rejected.push(AlertId(rej.alert_id)),
                None => r.unsolicited_rejects += 1,
            },
            Ok(Some(Frame::Error(e))) => {
                let code = ErrorCode::from_wire(e.code);
                let hint = if code == ErrorCode::Unauthenticated {
                    " — the endpoint wants a (different) token"
                } else {
                    ""
                };
                break Err(format!(
                    "endpoint closed the stream: error {code:?} ({}){hint}",
                    e.text
                ));
            }
            Ok(Some(_)) => break Err("endpoint sent a frame only clients send".into()),
            Err(e) => break Err(format!("undecodable reply from endpoint: {e}")),
        }
    };
    (r, res)
}

fn expire_in_flight(inflight: &mut HashMap<AlertId, Queued>, sh: &Shared) {
    if sh.cfg.alert_deadline_ms.is_none() {
        return;
    }
    let now = sh.clock.now_ms();
    let expired: Vec<AlertId> = inflight
        .values()
        .filter(|q| sh.is_expired(&q.alert, now))
        .map(|q| q.alert.id)
        .collect();
    for id in &expired {
        inflight.remove(id);
    }
    bump(&sh.counters.expired, expired.len() as u64);
    sh.lose_admitted(&expired, LossCause::EndpointUnreachable);
}

/// Exponential backoff state.
#[derive(Debug)]
struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
    rng: rand_pcg::Pcg64Mcg,
}

impl Backoff {
    fn new(policy: RetryPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            attempt: 0,
            rng: rand_pcg::Pcg64Mcg::seed_from_u64(seed),
        }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next(&mut self) -> Duration {
        let factor = 2f64.powi(self.attempt.min(30) as i32);
        let base = self.policy.initial.mul_f64(factor).min(self.policy.max);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = self.policy.jitter.clamp(0.0, 1.0) * self.rng.random::<f64>();
        base.mul_f64(1.0 - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_histogram_reports_tight_percentiles() {
        let mut h = lag_histogram();
        for v in 1..=1000 {
            record_lag(&mut h, v);
        }
        let p99 = h.value_at_quantile(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.max(), 1000);
        record_lag(&mut h, 1 << 40);
        let huge = (1u64 << 40) as f64;
        assert!(
            (h.max() as f64 - huge).abs() <= huge * 0.001,
            "auto-resizes for huge lags: {}",
            h.max()
        );
    }

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new(RetryPolicy::default(), 1);
        let d: Vec<Duration> = (0..10).map(|_| b.next()).collect();
        assert!(d[0] <= Duration::from_millis(50) && d[0] >= Duration::from_millis(25));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(2)));
        assert!(d[9] >= Duration::from_secs(1));
        b.reset();
        assert!(b.next() <= Duration::from_millis(50));
    }
}
