//! The reference alert-ingest endpoint: a real QUIC server speaking `csp-alert/2`.
//!
//! It validates every ALERT (known code, known region, payload within the limit), de-duplicates by
//! alert id, writes each new alert to its own ledger file *before* acknowledging it (write-ahead:
//! the line is flushed to the operating system before the ACK is sent), and acknowledges duplicates
//! again without storing them twice. A frame that cannot be parsed gets an ERROR frame and closes
//! only its own stream; other streams and clients carry on. Memory is bounded: per-connection
//! stream limits, QUIC flow-control windows, a per-stream decoder that holds at most one partial
//! frame, an idle timeout and a stall timeout for half-sent frames.
//!
//! Security: TLS 1.3 only; optionally mutual TLS (client certificates issued by `--client-ca`) and/or
//! a HELLO token; per-source-IP connection limits so that one flooding client cannot starve others.
//!
//! Fault-injection knobs ([`Behaviour`]) make it reject everything, acknowledge slowly, stall,
//! close connections abruptly, send malformed or unexpected replies, or refuse connections; they
//! exist to test the harness (and a team's own harness set-up) against a misbehaving endpoint.
//! Whatever the knobs, it never acknowledges what it did not store. It must never panic on
//! anything a peer sends.

mod admission;
mod csp;
mod http;
mod probe;
pub mod store;

pub use probe::IngestProbe;

use serde::Serialize;
use std::collections::{HashMap, HashSet};

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use tls::bind_udp;
use tls::{ServerCertSource, TlsError, TrustSource};
use tokio::task::JoinHandle;
use wire::{self, AlertHeader, RejectReason, RunId};

pub use admission::BUSY_CLOSE_CODE;
pub use store::{Durability, LEDGER_HEADER, MAX_LEDGER_LINE};
use store::{Store, StoreError};

/// How long a closing endpoint waits for its streams to answer what they hold before it closes
/// their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Label of the secret, derived from the endpoint's private key, that keys its QUIC stateless
/// resets (the same after a restart with the same key, so clients accept the restarted
/// endpoint's resets and reconnect at once).
const RESET_KEY_LABEL: &[u8] = b"csp-loadtest ingest: QUIC stateless reset key v1";

/// Resource limits of the endpoint.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// Concurrent bidirectional streams a client may open per connection.
    pub max_streams_per_connection: u32,
    /// Concurrent connections; further ones are refused.
    pub max_connections: usize,
    /// Concurrent connections (handshakes included) from one source IP address; further ones are
    /// refused, so that one flooding client cannot take every connection slot.
    pub max_connections_per_ip: usize,
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
    /// A frame must arrive whole within this long of its first byte (however the bytes trickle
    /// in); otherwise its stream gets an ERROR `TIMEOUT` and is closed.
    pub stall_timeout: Duration,
    /// A QUIC or TLS handshake that takes longer is dropped.
    pub handshake_timeout: Duration,
    /// QUIC handshakes from addresses not yet validated, at most, at once; beyond them, Initials
    /// from unvalidated addresses are answered with Retry (0: always validate with Retry).
    pub max_unvalidated_handshakes: usize,
    /// Bytes held in partial frames across every stream of the server, at most; a stream that
    /// would go past it is closed with an ERROR.
    pub max_partial_bytes: usize,
    /// Largest ALERT payload accepted (bytes); larger ones are rejected.
    pub max_payload: usize,
    /// Largest frame accepted (type byte + body); larger ones close the stream.
    pub max_frame: usize,
    /// Bytes read from a stream at a time.
    pub read_chunk: usize,
    /// QUIC flow-control window per stream (bytes a client may have in flight on one stream).
    pub stream_window: u32,
    /// QUIC flow-control window per connection.
    pub connection_window: u32,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_streams_per_connection: 256,
            max_connections: 1024,
            max_connections_per_ip: 64,
            idle_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_unvalidated_handshakes: 32,
            max_partial_bytes: 64 << 20,
            max_payload: 1024,
            max_frame: wire::MAX_FRAME_LEN,
            read_chunk: 16 * 1024,
            stream_window: 256 * 1024,
            connection_window: 4 << 20,
        }
    }
}

/// Behaviour knobs for tests and fault injection. The default is a well-behaved endpoint.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer every alert with REJECT (reason `Policy`); store nothing.
    pub reject_all: bool,
    /// Wait this long after storing a batch before acknowledging it (slow acks).
    pub ack_delay: Duration,
    /// Require every stream to start with a HELLO carrying this token.
    pub auth_token: Option<String>,
    /// Fault: once this many alerts are stored, stop reading and acknowledging on every stream
    /// for [`Behaviour::stall_for`], then resume (once per endpoint run).
    pub stall_after: Option<u64>,
    /// How long the stall of [`Behaviour::stall_after`] lasts.
    pub stall_for: Duration,
    /// Fault: once a connection has had this many alerts acknowledged, the next batch it sends is
    /// stored but, instead of being acknowledged, the connection is closed abruptly
    /// (CONNECTION_CLOSE with application code [`FAULT_CLOSE_CODE`]) — every connection, every time.
    pub close_after: Option<u64>,
    /// Fault: every n-th stored batch is answered with a bad reply instead of (or beside) its ACK.
    pub bad_replies: Option<BadReplies>,
    /// Fault: refuse some connection attempts.
    pub refuse: Option<Refusal>,
    /// Fault: once this many alerts are stored, refuse every client's credentials (csp-alert:
    /// ERROR `UNAUTHENTICATED` on every stream; HTTP: 401), as an endpoint whose token was
    /// rotated mid-run would.
    pub revoke_auth_after: Option<u64>,
}

/// What a client is told once [`Behaviour::revoke_auth_after`] has struck.
pub(crate) const REVOKED: &str = "fault injection: this client's token is no longer accepted";

/// Application error code of the CONNECTION_CLOSE sent by fault injection.
pub const FAULT_CLOSE_CODE: u32 = 0x0F;

/// Which bad reply [`Behaviour::bad_replies`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BadReplyKind {
    /// Bytes that are not a valid frame (an unknown frame type), instead of the ACK; the batch is
    /// stored but not acknowledged on this stream.
    Garbage,
    /// The real ACK, plus an ACK and a REJECT for alert ids that were never sent.
    UnknownIds,
    /// An ERROR frame (`INTERNAL`) instead of the ACK, and the stream is closed; the batch is
    /// stored but not acknowledged on this stream.
    Error,
}

/// Configuration of [`Behaviour::bad_replies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadReplies {
    /// What to send.
    pub kind: BadReplyKind,
    /// Every how many stored batches (1 = every batch).
    pub every: u64,
}

/// How a refused connection attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RefuseHow {
    /// QUIC CONNECTION_REFUSED before the handshake.
    Refuse,
    /// The handshake fails: the endpoint offers ALPN `csp-alert/0` only.
    WrongAlpn,
    /// The handshake completes, then the endpoint closes the connection at once.
    Close,
}

/// Configuration of [`Behaviour::refuse`]: accept the first `after` connection attempts, refuse the
/// next `count`, then accept again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// How to refuse.
    pub how: RefuseHow,
    /// Attempts accepted before refusing starts.
    pub after: u64,
    /// Attempts refused.
    pub count: u64,
}

/// Everything [`start`] needs.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where the certificate comes from.
    pub tls: ServerCertSource,
    /// Require client certificates issued by a CA in this PEM file (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Write one CSV line per stored alert here (appending; ids already in it count as stored).
    pub ledger_path: Option<PathBuf>,
    /// What an ACK waits for: the ledger's lines synced (`fsync`, default) or written (`flush`).
    pub durability: Durability,
    /// Also serve HTTP/1.1 and HTTP/2 over TLS on this TCP address and HTTP/3 on the same port
    /// over UDP (port 0: a free port, the same number for both).
    pub http_listen: Option<SocketAddr>,
    /// Test and fault-injection knobs.
    pub behaviour: Behaviour,
    /// Resource limits.
    pub limits: IngestLimits,
}

impl IngestConfig {
    /// An endpoint on `127.0.0.1` (free port) with a self-signed certificate written to
    /// `cert_out`, no ledger file, default behaviour and limits.
    pub fn loopback(cert_out: PathBuf) -> Self {
        IngestConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: ServerCertSource::SelfSigned { cert_out },
            client_ca: None,
            ledger_path: None,
            durability: Durability::default(),
            http_listen: None,
            behaviour: Behaviour::default(),
            limits: IngestLimits::default(),
        }
    }

    /// The endpoint `run` embeds when no `--endpoint` is given: loopback, self-signed certificate
    /// written to `cert_out`, ledger written to `ledger` with `flush` durability.
    ///
    /// Not `fsync`: the embedded endpoint lives in the harness's process and its ledger in the
    /// run's results folder. A process kill takes both down, and `flush` already survives it;
    /// what only `fsync` survives (the machine losing power) loses the run itself, whose own
    /// files are not synced either. Syncing would cost the harness speed and buy nothing a run
    /// can use; a standalone `ingest` keeps `fsync` as its default.
    pub fn embedded(cert_out: PathBuf, ledger: PathBuf) -> Self {
        IngestConfig {
            ledger_path: Some(ledger),
            durability: Durability::Flush,
            ..IngestConfig::loopback(cert_out)
        }
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Certificate or key problem.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The UDP socket could not be created or bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
    /// The ledger file could not be opened or read.
    #[error("ledger file {path}: {source}")]
    Ledger {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// quinn refused the configuration.
    #[error("QUIC configuration refused: {0}")]
    Quic(String),
}

/// Counters of the endpoint, as a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestStats {
    /// Connections accepted (handshake completed).
    pub connections: u64,
    /// Connections open now.
    pub active_connections: u64,
    /// Connections refused at the connection limit.
    pub refused_connections: u64,
    /// Connections refused at the per-source-IP limit.
    pub refused_per_ip: u64,
    /// Handshakes that failed (no or bad client certificate, wrong ALPN, timeout, ...).
    pub handshake_failures: u64,
    /// Streams refused for a missing or wrong HELLO token.
    pub auth_failures: u64,
    /// Faults injected by [`Behaviour`] (refusals, abrupt closes, bad replies, stalls).
    pub faults_injected: u64,
    /// Streams accepted.
    pub streams: u64,
    /// Alerts stored (new, acknowledged).
    pub alerts_stored: u64,
    /// Alerts received again after being stored (acknowledged again, not stored twice).
    pub duplicates: u64,
    /// Alerts answered with REJECT.
    pub rejected: u64,
    /// Streams closed because a frame could not be parsed (malformed, truncated, oversized).
    pub malformed: u64,
    /// Streams closed for another protocol error (unauthenticated, unexpected frame, stall).
    pub stream_errors: u64,
    /// Alert ids acknowledged (including duplicates).
    pub acked: u64,
    /// HTTP requests answered (HTTP/1.1, HTTP/2 and HTTP/3).
    pub http_requests: u64,
    /// Bytes received on streams.
    pub bytes_received: u64,
    /// Largest number of bytes one stream's decoder held at once.
    pub max_buffered_bytes: u64,
    /// Largest number of bytes held in partial frames across every stream at once.
    pub max_partial_bytes_total: u64,
    /// Streams closed because the server-wide bound on partial-frame bytes was reached.
    pub partial_bytes_refusals: u64,
    /// Initials from unvalidated addresses answered with a QUIC Retry (under load).
    pub retries: u64,
    /// Group commits written to the ledger file (one write each, many batches each when busy).
    pub ledger_writes: u64,
    /// `fdatasync`s of the ledger file (one per group commit under `--durability fsync`).
    pub ledger_syncs: u64,
    /// Group commits refused because the ledger could not be written or synced (their alerts
    /// REJECTed with `STORAGE_FAILURE`, nothing of them kept).
    pub storage_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    active_connections: AtomicU64,
    refused_connections: AtomicU64,
    refused_per_ip: AtomicU64,
    handshake_failures: AtomicU64,
    auth_failures: AtomicU64,
    faults_injected: AtomicU64,
    attempts: AtomicU64,
    batches: AtomicU64,
    streams: AtomicU64,
    alerts_stored: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    malformed: AtomicU64,
    stream_errors: AtomicU64,
    acked: AtomicU64,
    http_requests: AtomicU64,
    bytes_received: AtomicU64,
    max_buffered_bytes: AtomicU64,
    max_partial_bytes_total: AtomicU64,
    partial_bytes_refusals: AtomicU64,
    retries: AtomicU64,
    /// Rejections per reason, in [`probe::REJECT_REASONS`] order (for the metrics exporter).
    rejected_by: [AtomicU64; probe::REJECT_REASONS.len()],
    /// Duration of every store call (for the metrics exporter).
    store_latency: telemetry::AtomicHistogram,
}

impl Counters {
    fn snapshot(&self, store: &store::StoreCounters) -> IngestStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IngestStats {
            ledger_writes: g(&store.writes),
            ledger_syncs: g(&store.syncs),
            storage_failures: g(&store.failures),
            connections: g(&self.connections),
            active_connections: g(&self.active_connections),
            refused_connections: g(&self.refused_connections),
            refused_per_ip: g(&self.refused_per_ip),
            handshake_failures: g(&self.handshake_failures),
            auth_failures: g(&self.auth_failures),
            faults_injected: g(&self.faults_injected),
            streams: g(&self.streams),
            alerts_stored: g(&self.alerts_stored),
            duplicates: g(&self.duplicates),
            rejected: g(&self.rejected),
            malformed: g(&self.malformed),
            stream_errors: g(&self.stream_errors),
            acked: g(&self.acked),
            http_requests: g(&self.http_requests),
            bytes_received: g(&self.bytes_received),
            max_buffered_bytes: g(&self.max_buffered_bytes),
            max_partial_bytes_total: g(&self.max_partial_bytes_total),
            partial_bytes_refusals: g(&self.partial_bytes_refusals),
            retries: g(&self.retries),
        }
    }
}

/// Adds `n`; returns the new value.
fn bump(a: &AtomicU64, n: u64) -> u64 {
    a.fetch_add(n, Ordering::Relaxed) + n
}

/// Logs at most ~log2(n) of `n` repeated events (the 1st, 2nd, 4th, 8th, ...), so a flood of bad
/// peers cannot flood the log.
fn sparse(n: u64) -> bool {
    n.is_power_of_two()
}

/// The (run, alert id) keys of a ledger file's complete lines (the header and unparsable lines
/// are skipped); lines are read one at a time, each bounded by [`MAX_LEDGER_LINE`].
pub fn read_ledger_keys(reader: impl io::Read) -> io::Result<HashSet<(RunId, u64)>> {
    Ok(store::read_keys(reader)?.keys())
}

/// The alert ids of a ledger file's complete lines, whatever their run.
pub fn read_ledger_ids(reader: impl io::Read) -> io::Result<HashSet<u64>> {
    Ok(read_ledger_keys(reader)?
        .into_iter()
        .map(|(_, id)| id)
        .collect())
}

/// What every connection and stream task shares.
#[derive(Debug)]
struct Ctx {
    store: Store,
    counters: Arc<Counters>,
    behaviour: Behaviour,
    limits: IngestLimits,
    /// Connection slots held per source IP (proven addresses only).
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Connection slots held, all protocols together.
    slots: AtomicUsize,
    /// QUIC handshakes under way from addresses not yet validated.
    unvalidated: AtomicUsize,
    /// Bytes held in partial frames across every stream.
    partial_bytes: AtomicUsize,
    /// Becomes true when the server starts closing.
    closing: tokio::sync::watch::Receiver<bool>,
    /// While set and in the future, streams neither read nor acknowledge (fault injection).
    stall_until: Mutex<Option<tokio::time::Instant>>,
    /// A configuration offering the wrong ALPN, for [`RefuseHow::WrongAlpn`].
    wrong_alpn: Arc<quinn::ServerConfig>,
    /// Whether clients must present a certificate.
    mutual_tls: bool,
    /// SHA-256 of the required token, if one is required (see [`token_matches`]).
    token_digest: Option<[u8; 32]>,
}

impl Ctx {
    async fn wait_while_stalled(&self) {
        let until = *self
            .stall_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = until
            && t > tokio::time::Instant::now()
        {
            tokio::time::sleep_until(t).await;
        }
    }

    fn maybe_start_stall(&self, stored_total: u64) {
        let Some(n) = self.behaviour.stall_after else {
            return;
        };
        if stored_total < n {
            return;
        }
        let mut g = self
            .stall_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.is_none() {
            *g = Some(tokio::time::Instant::now() + self.behaviour.stall_for);
            bump(&self.counters.faults_injected, 1);
            tracing::warn!(
                "fault injection: stalling every stream for {:?}",
                self.behaviour.stall_for
            );
        }
    }

    /// Checks the token a client presented (csp-alert HELLO, HTTP bearer token) against the
    /// endpoint's, and the revocation fault; the error says why, for the client.
    fn check_token(&self, presented: &[u8], from: SocketAddr) -> Result<(), &'static str> {
        if let Some(want) = &self.token_digest
            && !token_matches(want, presented)
        {
            let n = bump(&self.counters.auth_failures, 1);
            if sparse(n) {
                tracing::warn!("client {from} refused: missing or wrong token");
            }
            return Err(if presented.is_empty() {
                "this endpoint requires a token (none was presented)"
            } else {
                "wrong token"
            });
        }
        if self.auth_revoked() {
            bump(&self.counters.auth_failures, 1);
            return Err(REVOKED);
        }
        Ok(())
    }

    /// Whether the credentials of every client are refused from now on (fault injection).
    fn auth_revoked(&self) -> bool {
        self.behaviour
            .revoke_auth_after
            .is_some_and(|n| self.counters.alerts_stored.load(Ordering::Relaxed) >= n)
    }

    /// Whether attempt number `i` (0-based) is to be refused, and how.
    fn refusal(&self, i: u64) -> Option<RefuseHow> {
        let r = self.behaviour.refuse?;
        (i >= r.after && i - r.after < r.count).then_some(r.how)
    }
}

/// A running endpoint.
#[derive(Debug)]
pub struct IngestServer {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    /// The certificate presented, for [`IngestServer::trust`].
    cert_der: rustls::pki_types::CertificateDer<'static>,
    cert_pem_path: PathBuf,
    ctx: Arc<Ctx>,
    closing: tokio::sync::watch::Sender<bool>,
    accept_task: JoinHandle<()>,
    http: Option<http::HttpFront>,
}

impl IngestServer {
    /// The address it listens on (`csp-alert` over QUIC, UDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the HTTP front, if it serves one (HTTP/1.1 and HTTP/2 on TCP, HTTP/3 on
    /// UDP, the same port).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
    }

    /// The certificate PEM file (loaded from or written to): give it to clients as `--ca`.
    pub fn cert_pem_path(&self) -> &Path {
        &self.cert_pem_path
    }

    /// A client trust source pinning this endpoint's certificate.
    pub fn trust(&self) -> TrustSource {
        TrustSource::Der(vec![self.cert_der.clone()])
    }

    /// Counters so far.
    pub fn stats(&self) -> IngestStats {
        self.ctx.counters.snapshot(self.ctx.store.counters())
    }

    /// The behaviour knobs it runs with.
    pub fn behaviour(&self) -> &Behaviour {
        &self.ctx.behaviour
    }

    /// Closes gracefully and stops; returns the final counters. New connections are refused at
    /// once; every stream answers (ACK, DUPLICATE, REJECT) the alerts it has read and finishes;
    /// then every connection is closed (QUIC close, code 0) and the ledger is synced and closed.
    /// Bounded in time (about three seconds at most).
    pub async fn shutdown(self) -> IngestStats {
        let _ = self.closing.send(true);
        self.endpoint.set_server_config(None);
        let grace = async {
            let _ = self.accept_task.await;
        };
        let _ = tokio::time::timeout(2 * SHUTDOWN_GRACE, grace).await;
        if let Some(h) = self.http {
            h.shutdown().await;
        }
        self.endpoint.close(quinn::VarInt::from_u32(0), b"shutdown");
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.endpoint.wait_idle()).await;
        // Batches handed to the writer are answered (and synced) before it stops.
        let ctx = self.ctx.clone();
        let _ = tokio::task::spawn_blocking(move || ctx.store.close()).await;
        self.ctx.counters.snapshot(self.ctx.store.counters())
    }
}

/// Starts the endpoint: binds, then serves in background tasks until [`IngestServer::shutdown`].
pub async fn start(cfg: IngestConfig) -> Result<IngestServer, IngestError> {
    let tls = tls::server_tls(&cfg.tls, cfg.client_ca.as_deref(), &[wire::ALPN])?;
    let store = match &cfg.ledger_path {
        None => Store::memory(),
        Some(p) => Store::open(p, cfg.durability).map_err(|source| IngestError::Ledger {
            path: p.clone(),
            source,
        })?,
    };
    let transport = Arc::new(server_transport(&cfg.limits)?);
    let quic_config = |tls: Arc<rustls::ServerConfig>| -> Result<quinn::ServerConfig, IngestError> {
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| IngestError::Quic(e.to_string()))?;
        let mut c = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        c.transport_config(transport.clone());
        Ok(c)
    };
    let server_config = quic_config(tls.config.clone())?;
    let mut wrong = (*tls.config).clone();
    wrong.alpn_protocols = vec![b"csp-alert/0".to_vec()];
    let wrong_alpn = Arc::new(quic_config(Arc::new(wrong))?);
    let socket = bind_udp(cfg.listen).map_err(|source| IngestError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let endpoint_config = endpoint_config(&tls);
    let endpoint = quinn::Endpoint::new(
        endpoint_config.clone(),
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| IngestError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let local_addr = endpoint.local_addr().map_err(|source| IngestError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let token_digest = cfg
        .behaviour
        .auth_token
        .as_deref()
        .map(|t| sha256(t.as_bytes()));
    let ctx = Arc::new(Ctx {
        store,
        counters: Arc::default(),
        behaviour: cfg.behaviour,
        limits: cfg.limits,
        per_ip: Mutex::new(HashMap::new()),
        slots: AtomicUsize::new(0),
        unvalidated: AtomicUsize::new(0),
        partial_bytes: AtomicUsize::new(0),
        closing,
        stall_until: Mutex::new(None),
        token_digest,
        wrong_alpn,
        mutual_tls: cfg.client_ca.is_some(),
    });
    let accept_task = tokio::spawn(admission::accept_loop(
        endpoint.clone(),
        ctx.clone(),
        QuicProto::CspAlert,
    ));
    let http = match cfg.http_listen {
        None => None,
        Some(listen) => {
            // HTTP/3 needs unidirectional streams (control and QPACK streams).
            let mut t = server_transport(&ctx.limits)?;
            t.max_concurrent_uni_streams(quinn::VarInt::from_u32(16));
            Some(
                http::start(
                    listen,
                    &tls.config,
                    endpoint_config,
                    Arc::new(t),
                    ctx.clone(),
                )
                .await?,
            )
        }
    };
    Ok(IngestServer {
        http,
        endpoint,
        local_addr,
        cert_der: tls.cert_der,
        cert_pem_path: tls.cert_pem_path,
        ctx,
        closing: closing_tx,
        accept_task,
    })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Whether `presented` is the token whose SHA-256 is `want`, in time that depends neither on
/// where the two first differ nor on their lengths (both are hashed to 32 bytes, compared in
/// constant time): a client cannot find the token byte by byte by timing refusals.
fn token_matches(want: &[u8; 32], presented: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(want.ct_eq(&sha256(presented)))
}

/// Resolves once the server has started closing (at once if it already has).
async fn until_closing(closing: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, before the caller awaits anything else.
    let _ = closing.wait_for(|c| *c).await.map(|_| ());
}

/// Which protocol a QUIC endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuicProto {
    CspAlert,
    H3,
}

/// The QUIC endpoint configuration: stateless resets keyed by a secret derived from the
/// endpoint's private key, so that after a crash and a restart with the same key the endpoint's
/// resets are ones its former clients accept (they then reconnect at once instead of waiting out
/// their idle timeout).
fn endpoint_config(tls: &tls::ServerTls) -> quinn::EndpointConfig {
    let secret = tls.derive_secret(RESET_KEY_LABEL);
    quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &secret,
    )))
}

fn server_transport(limits: &IngestLimits) -> Result<quinn::TransportConfig, IngestError> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(limits.max_streams_per_connection))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .stream_receive_window(quinn::VarInt::from_u32(limits.stream_window))
        .receive_window(quinn::VarInt::from_u32(limits.connection_window))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(limits.idle_timeout)
                .map_err(|e| IngestError::Quic(format!("idle timeout: {e}")))?,
        ));
    Ok(t)
}

pub(crate) fn validate(
    h: &AlertHeader,
    payload_len: usize,
    ctx: &Ctx,
) -> Result<(), (RejectReason, String)> {
    if ctx.behaviour.reject_all {
        return Err((RejectReason::Policy, "endpoint rejects every alert".into()));
    }
    if h.alert_code().is_none() {
        return Err((
            RejectReason::UnknownCode,
            format!("unknown alert code 0x{:04x}", h.code),
        ));
    }
    if h.region().is_none() {
        return Err((
            RejectReason::UnknownRegion,
            format!("unknown region {}", h.region),
        ));
    }
    if payload_len > ctx.limits.max_payload {
        return Err((
            RejectReason::PayloadTooLarge,
            format!("payload {payload_len} bytes > {}", ctx.limits.max_payload),
        ));
    }
    Ok(())
}

/// Logs a refused store, sparsely (a full disk refuses every batch until it is freed).
pub(crate) fn log_store_error(e: &StoreError, ctx: &Ctx) {
    let n = ctx.store.counters().failures.load(Ordering::Relaxed);
    if matches!(e, StoreError::Closed) || sparse(n.max(1)) {
        tracing::error!("cannot store alerts: {e} ({n} group commits refused so far)");
    }
}
