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

mod http;
mod probe;

pub use probe::IngestProbe;

use bytes::BytesMut;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
pub use tls::bind_udp;
use tls::{ServerCertSource, TlsError, TrustSource};
use tokio::task::{JoinHandle, JoinSet};
use wire::{self, AlertHeader, Decoder, ErrorCode, Frame, RejectReason, RunId};

/// First line of the endpoint's ledger file.
pub const LEDGER_HEADER: &str =
    "run_id,alert_id,code,device_id,region,event_ms,seq,received_unix_ms";

/// Fields of a complete ledger line.
const LEDGER_FIELDS: usize = 8;

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
    /// A stream that stops part-way through a frame for this long gets an ERROR and is closed.
    pub stall_timeout: Duration,
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
const REVOKED: &str = "fault injection: this client's token is no longer accepted";

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
            http_listen: None,
            behaviour: Behaviour::default(),
            limits: IngestLimits::default(),
        }
    }

    /// The endpoint `run` embeds when no `--endpoint` is given: loopback, self-signed certificate
    /// written to `cert_out`, ledger written to `ledger`.
    pub fn embedded(cert_out: PathBuf, ledger: PathBuf) -> Self {
        IngestConfig {
            ledger_path: Some(ledger),
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
    /// Rejections per reason, in [`probe::REJECT_REASONS`] order (for the metrics exporter).
    rejected_by: [AtomicU64; probe::REJECT_REASONS.len()],
    /// Duration of every store call (for the metrics exporter).
    store_latency: telemetry::AtomicHistogram,
}

impl Counters {
    fn snapshot(&self) -> IngestStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IngestStats {
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

/// The de-duplicating, write-ahead alert store.
#[derive(Debug)]
struct Store {
    inner: Mutex<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    seen: HashSet<(RunId, u64)>,
    file: Option<BufWriter<File>>,
}

/// What storing a batch did: the ids stored now and the ids stored before (for this run).
#[derive(Debug, Default)]
struct Stored {
    new: Vec<u64>,
    duplicates: Vec<u64>,
}

impl Store {
    fn open(path: Option<&Path>) -> Result<Store, IngestError> {
        let (seen, file) = match path {
            None => (HashSet::new(), None),
            Some(p) => {
                let (seen, file) = open_ledger(p).map_err(|source| IngestError::Ledger {
                    path: p.to_path_buf(),
                    source,
                })?;
                (seen, Some(BufWriter::new(file)))
            }
        };
        Ok(Store {
            inner: Mutex::new(StoreInner { seen, file }),
        })
    }

    /// Stores the new alerts of `batch` for `run` (ledger lines flushed before returning). On an
    /// I/O error nothing of this batch counts as stored.
    fn store(&self, run: RunId, batch: &[AlertHeader]) -> io::Result<Stored> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("store lock poisoned"))?;
        let inner = &mut *guard;
        let mut out = Stored::default();
        let now = unix_ms();
        for h in batch {
            if inner.seen.contains(&(run, h.alert_id)) || out.new.contains(&h.alert_id) {
                out.duplicates.push(h.alert_id);
                continue;
            }
            if let Some(f) = inner.file.as_mut() {
                write_ledger_line(f, run, h, now)?;
            }
            out.new.push(h.alert_id);
        }
        if let Some(f) = inner.file.as_mut() {
            f.flush()?;
        }
        inner.seen.extend(out.new.iter().map(|id| (run, *id)));
        Ok(out)
    }

    fn flush(&self) {
        if let Ok(mut g) = self.inner.lock()
            && let Some(f) = g.file.as_mut()
        {
            let _ = f.flush();
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn write_ledger_line(f: &mut impl Write, run: RunId, h: &AlertHeader, now: u64) -> io::Result<()> {
    let code = h.alert_code().map_or("?", |c| c.as_str());
    let region = h.region().map_or("?", |r| r.as_str());
    writeln!(
        f,
        "{run},{},{},{:016x},{},{},{},{}",
        h.alert_id, code, h.device_id, region, h.event_ms, h.seq, now
    )
}

/// Opens (creating if needed) a ledger file for appending and returns the ids it already holds.
/// A torn last line (a crash mid-write) is ignored and terminated so appends start on a fresh line.
fn open_ledger(path: &Path) -> io::Result<(HashSet<(RunId, u64)>, File)> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let seen = read_ledger_keys(BufReader::new(&mut file))?;
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        writeln!(file, "{LEDGER_HEADER}")?;
    } else {
        file.seek(SeekFrom::End(-1))?;
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok((seen, file))
}

/// The (run, alert id) keys of a ledger file's complete lines (the header and unparsable lines
/// are skipped).
pub fn read_ledger_keys(reader: impl BufRead) -> io::Result<HashSet<(RunId, u64)>> {
    let mut seen = HashSet::new();
    for line in reader.split(b'\n') {
        let line = line?;
        let Ok(line) = std::str::from_utf8(&line) else {
            continue;
        };
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != LEDGER_FIELDS {
            continue;
        }
        if let (Ok(run), Ok(id)) = (fields[0].parse::<RunId>(), fields[1].parse::<u64>()) {
            seen.insert((run, id));
        }
    }
    Ok(seen)
}

/// The alert ids of a ledger file's complete lines, whatever their run.
pub fn read_ledger_ids(reader: impl BufRead) -> io::Result<HashSet<u64>> {
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
    /// Connections (handshakes included) per source IP.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// While set and in the future, streams neither read nor acknowledge (fault injection).
    stall_until: Mutex<Option<tokio::time::Instant>>,
    /// A configuration offering the wrong ALPN, for [`RefuseHow::WrongAlpn`].
    wrong_alpn: Arc<quinn::ServerConfig>,
    /// Whether clients must present a certificate.
    mutual_tls: bool,
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
        if let Some(token) = &self.behaviour.auth_token
            && presented != token.as_bytes()
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

/// Releases a per-IP connection slot when the connection task ends.
struct IpSlot {
    ctx: Arc<Ctx>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self
            .ctx
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A running endpoint.
#[derive(Debug)]
pub struct IngestServer {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    cert_der: CertificateDer<'static>,
    cert_pem_path: PathBuf,
    ctx: Arc<Ctx>,
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

    /// The certificate it presents (DER): pin this.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
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
        self.ctx.counters.snapshot()
    }

    /// The behaviour knobs it runs with.
    pub fn behaviour(&self) -> &Behaviour {
        &self.ctx.behaviour
    }

    /// Closes every connection (QUIC close, code 0) and stops; returns the final counters.
    /// Bounded in time (about one second at most).
    pub async fn shutdown(self) -> IngestStats {
        if let Some(h) = self.http {
            h.shutdown().await;
        }
        self.endpoint.close(quinn::VarInt::from_u32(0), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        self.accept_task.abort();
        let _ = self.accept_task.await;
        self.ctx.store.flush();
        self.ctx.counters.snapshot()
    }
}

/// Starts the endpoint: binds, then serves in background tasks until [`IngestServer::shutdown`].
pub async fn start(cfg: IngestConfig) -> Result<IngestServer, IngestError> {
    let tls = tls::server_tls(&cfg.tls, cfg.client_ca.as_deref(), &[wire::ALPN])?;
    let store = Store::open(cfg.ledger_path.as_deref())?;
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
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
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
    let ctx = Arc::new(Ctx {
        store,
        counters: Arc::default(),
        behaviour: cfg.behaviour,
        limits: cfg.limits,
        per_ip: Mutex::new(HashMap::new()),
        stall_until: Mutex::new(None),
        wrong_alpn,
        mutual_tls: cfg.client_ca.is_some(),
    });
    let accept_task = tokio::spawn(accept_loop(
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
            Some(http::start(listen, &tls.config, Arc::new(t), ctx.clone()).await?)
        }
    };
    Ok(IngestServer {
        http,
        endpoint,
        local_addr,
        cert_der: tls.cert_der,
        cert_pem_path: tls.cert_pem_path,
        ctx,
        accept_task,
    })
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

async fn accept_loop(endpoint: quinn::Endpoint, ctx: Arc<Ctx>, proto: QuicProto) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if let Some(task) = admit(incoming, conns.len(), &ctx, proto) {
                    conns.spawn(task);
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// Applies the connection limits (global, per source IP) and the refusal fault to a connection
/// attempt; returns the task that serves it if it is let in.
/// What a connection slot was granted with: the per-IP slot (released on drop) and the refusal
/// fault to apply, if any.
struct Admitted {
    slot: IpSlot,
    refusal: Option<RefuseHow>,
}

/// Applies the connection limits (global, per source IP) and the refusal fault to a connection
/// attempt from `ip` while `open` connections are open; `None`: refuse it (already counted and
/// logged). Shared by every protocol.
fn gate(ip: IpAddr, open: usize, ctx: &Arc<Ctx>) -> Option<Admitted> {
    if open >= ctx.limits.max_connections {
        let n = bump(&ctx.counters.refused_connections, 1);
        if sparse(n) {
            tracing::warn!(
                "refusing connection from {ip}: {} connections open (limit; {n} refused so far)",
                open
            );
        }
        return None;
    }
    {
        let mut m = ctx
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(ip).or_insert(0);
        if *n >= ctx.limits.max_connections_per_ip {
            let r = bump(&ctx.counters.refused_per_ip, 1);
            if sparse(r) {
                tracing::warn!(
                    "refusing connection from {ip}: it has {n} connections open (per-IP limit; \
                     {r} refused so far)"
                );
            }
            return None;
        }
        *n += 1;
    }
    let slot = IpSlot {
        ctx: ctx.clone(),
        ip,
    };
    let attempt = ctx.counters.attempts.fetch_add(1, Ordering::Relaxed);
    let refusal = ctx.refusal(attempt);
    if refusal.is_some() {
        bump(&ctx.counters.faults_injected, 1);
    }
    Some(Admitted { slot, refusal })
}

/// Which protocol a QUIC endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuicProto {
    CspAlert,
    H3,
}

/// Gates a QUIC connection attempt; returns the task that serves it if it is let in.
fn admit(
    incoming: quinn::Incoming,
    open: usize,
    ctx: &Arc<Ctx>,
    proto: QuicProto,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    let ip = incoming.remote_address().ip();
    let Some(Admitted { slot, refusal }) = gate(ip, open, ctx) else {
        incoming.refuse();
        return None;
    };
    let connecting = match refusal {
        Some(RefuseHow::Refuse) => {
            incoming.refuse();
            return None;
        }
        Some(RefuseHow::WrongAlpn) => incoming.accept_with(ctx.wrong_alpn.clone()),
        _ => incoming.accept(),
    };
    let ctx = ctx.clone();
    Some(async move {
        let _slot = slot;
        let close_at_once = refusal == Some(RefuseHow::Close);
        match connecting {
            Ok(c) => {
                let Some(conn) = establish(c, close_at_once, &ctx).await else {
                    return;
                };
                match proto {
                    QuicProto::CspAlert => serve_connection(conn, ctx).await,
                    QuicProto::H3 => http::serve_h3(conn, ctx).await,
                }
            }
            Err(e) => {
                let n = bump(&ctx.counters.handshake_failures, 1);
                if sparse(n) {
                    tracing::warn!("connection from {ip} refused: {e}");
                }
            }
        }
    })
}

/// Completes a QUIC handshake (a failure is counted and logged sparsely) and applies the
/// close-at-once fault; the connection, if it is to be served. Shared by csp-alert and HTTP/3.
async fn establish(
    connecting: quinn::Connecting,
    close_at_once: bool,
    ctx: &Ctx,
) -> Option<quinn::Connection> {
    let remote = connecting.remote_address();
    let conn = match connecting.await {
        Ok(c) => c,
        Err(e) => {
            let n = bump(&ctx.counters.handshake_failures, 1);
            if sparse(n) {
                let hint = if ctx.mutual_tls {
                    " (this endpoint requires a client certificate issued by its --client-ca)"
                } else {
                    ""
                };
                tracing::warn!(
                    "handshake with {remote} failed: {e}{hint} ({n} failed handshakes so far)"
                );
            }
            return None;
        }
    };
    if close_at_once {
        conn.close(
            quinn::VarInt::from_u32(FAULT_CLOSE_CODE),
            b"fault injection: connection refused",
        );
        return None;
    }
    Some(conn)
}

async fn serve_connection(conn: quinn::Connection, ctx: Arc<Ctx>) {
    bump(&ctx.counters.connections, 1);
    bump(&ctx.counters.active_connections, 1);
    let acked_here = Arc::new(AtomicU64::new(0));
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            s = conn.accept_bi() => match s {
                Ok((send, recv)) => {
                    bump(&ctx.counters.streams, 1);
                    let link = ConnLink { conn: conn.clone(), acked: acked_here.clone() };
                    streams.spawn(serve_stream(send, recv, link, ctx.clone()));
                }
                Err(e) => {
                    tracing::debug!("connection from {} ended: {e}", conn.remote_address());
                    break;
                }
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
    streams.shutdown().await;
    ctx.counters
        .active_connections
        .fetch_sub(1, Ordering::Relaxed);
}

/// Why a stream is being closed by the endpoint.
enum Close {
    /// The peer finished or abandoned the stream cleanly: finish our side, report nothing.
    Clean,
    /// A protocol error: send an ERROR frame, then close.
    Error {
        /// The code.
        code: ErrorCode,
        /// The text.
        text: String,
    },
}

impl Close {
    fn error(code: ErrorCode, text: impl Into<String>) -> Self {
        Close::Error {
            code,
            text: text.into(),
        }
    }
}

/// Per-stream protocol state.
struct StreamState {
    decoder: Decoder,
    /// The run of this stream's alerts, from its HELLO (none yet: HELLO is due).
    run: Option<RunId>,
    link: ConnLink,
}

/// A stream's handle on its connection (for the `close_after` fault).
struct ConnLink {
    conn: quinn::Connection,
    /// Alerts acknowledged on this connection so far.
    acked: Arc<AtomicU64>,
}

async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    link: ConnLink,
    ctx: Arc<Ctx>,
) {
    let mut st = StreamState {
        decoder: Decoder::new(ctx.limits.max_frame),
        run: None,
        link,
    };
    loop {
        ctx.wait_while_stalled().await;
        let read = read_some(&mut recv, &st.decoder, &ctx.limits).await;
        let (out, close) = match read {
            ReadOutcome::Data(bytes) => {
                bump(&ctx.counters.bytes_received, bytes.len() as u64);
                st.decoder.push(&bytes);
                ctx.counters
                    .max_buffered_bytes
                    .fetch_max(st.decoder.buffered() as u64, Ordering::Relaxed);
                process_frames(&mut st, &ctx).await
            }
            ReadOutcome::Finished => {
                let close = match st.decoder.finish() {
                    Ok(()) => Close::Clean,
                    Err(e) => Close::error(e.code(), e.to_string()),
                };
                (BytesMut::new(), Some(close))
            }
            ReadOutcome::Stalled => (
                BytesMut::new(),
                Some(Close::error(
                    ErrorCode::Timeout,
                    "stream stalled part-way through a frame",
                )),
            ),
            ReadOutcome::Gone => return,
        };
        if close_or_continue(&mut send, &mut recv, out, close, &ctx)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Writes `out`; if `close` is set, reports it (unless it is the clean end marker) and closes the
/// stream. `Err` means the stream is finished with.
async fn close_or_continue(
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    mut out: BytesMut,
    close: Option<Close>,
    ctx: &Ctx,
) -> Result<(), ()> {
    let Some(close) = close else {
        return send.write_all(&out).await.map_err(|_| ());
    };
    if let Close::Error { code, text } = close {
        let counter = match code {
            ErrorCode::Malformed | ErrorCode::Oversized | ErrorCode::UnknownFrameType => {
                &ctx.counters.malformed
            }
            _ => &ctx.counters.stream_errors,
        };
        bump(counter, 1);
        wire::encode_error(&mut out, code.wire(), &text);
        let _ = recv.stop(quinn::VarInt::from_u32(u32::from(code.wire())));
    }
    let _ = send.write_all(&out).await;
    let _ = send.finish();
    // Give the peer a moment to read the ERROR before the stream state is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
    Err(())
}

enum ReadOutcome {
    Data(bytes::Bytes),
    Finished,
    Stalled,
    Gone,
}

async fn read_some(
    recv: &mut quinn::RecvStream,
    dec: &Decoder,
    limits: &IngestLimits,
) -> ReadOutcome {
    let read = recv.read_chunk(limits.read_chunk, true);
    let res = if dec.buffered() > 0 {
        match tokio::time::timeout(limits.stall_timeout, read).await {
            Ok(r) => r,
            Err(_) => return ReadOutcome::Stalled,
        }
    } else {
        read.await
    };
    match res {
        Ok(Some(chunk)) => ReadOutcome::Data(gather(recv, chunk.bytes, limits.read_chunk)),
        Ok(None) => ReadOutcome::Finished,
        Err(e) => {
            tracing::debug!("stream read ended: {e}");
            ReadOutcome::Gone
        }
    }
}

/// Adds to `first` whatever else the stream has already received, up to `max` bytes in all, without
/// waiting: a client's batch arrives in many QUIC packets, and storing (and, with a slow endpoint,
/// acknowledging late) once per packet instead of once per batch multiplied the cost of every
/// commit. An end or error seen here is seen again by the next read.
fn gather(recv: &mut quinn::RecvStream, first: bytes::Bytes, max: usize) -> bytes::Bytes {
    use futures::FutureExt as _;
    let mut all: Option<BytesMut> = None;
    let mut len = first.len();
    while len < max {
        match recv.read_chunk(max - len, true).now_or_never() {
            Some(Ok(Some(c))) => {
                len += c.bytes.len();
                all.get_or_insert_with(|| BytesMut::from(&first[..]))
                    .extend_from_slice(&c.bytes);
            }
            _ => break,
        }
    }
    all.map_or(first, BytesMut::freeze)
}

/// Handles every complete frame buffered: rejects go out at once, accepted alerts are stored as
/// one batch and then acknowledged. Returns the bytes to send and, if the stream must close, why.
async fn process_frames(st: &mut StreamState, ctx: &Ctx) -> (BytesMut, Option<Close>) {
    let mut out = BytesMut::new();
    let mut batch = Vec::new();
    let close = loop {
        match st.decoder.next_frame() {
            Ok(Some(frame)) => {
                if let Err(c) = handle_frame(frame, st, ctx, &mut batch, &mut out) {
                    break Some(c);
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(Close::error(e.code(), e.to_string())),
        }
    };
    if !batch.is_empty() {
        let fault_close = commit(&batch, st, ctx, &mut out).await;
        if close.is_none() {
            return (out, fault_close);
        }
    }
    (out, close)
}

fn handle_frame(
    frame: Frame,
    st: &mut StreamState,
    ctx: &Ctx,
    batch: &mut Vec<AlertHeader>,
    out: &mut BytesMut,
) -> Result<(), Close> {
    match frame {
        Frame::Hello(h) => {
            if st.run.is_some() {
                return Err(Close::error(
                    ErrorCode::UnexpectedFrame,
                    "a second HELLO on one stream",
                ));
            }
            if h.version != wire::PROTOCOL_VERSION {
                return Err(Close::error(
                    ErrorCode::UnsupportedVersion,
                    format!(
                        "protocol version {} not supported (want {})",
                        h.version,
                        wire::PROTOCOL_VERSION
                    ),
                ));
            }
            if let Err(what) = ctx.check_token(&h.token, st.link.conn.remote_address()) {
                return Err(Close::error(ErrorCode::Unauthenticated, what));
            }
            st.run = Some(h.run_id);
            Ok(())
        }
        Frame::Alert(a) => {
            if st.run.is_none() {
                return Err(Close::error(
                    ErrorCode::UnexpectedFrame,
                    "HELLO (protocol version, run id, token) must be the first frame of a stream",
                ));
            }
            if ctx.auth_revoked() {
                bump(&ctx.counters.auth_failures, 1);
                return Err(Close::error(ErrorCode::Unauthenticated, REVOKED));
            }
            match validate(&a.header, a.payload.len(), ctx) {
                Ok(()) => batch.push(a.header),
                Err((reason, text)) => {
                    ctx.counters.reject(reason);
                    wire::encode_reject(out, a.header.alert_id, reason.wire(), &text);
                }
            }
            Ok(())
        }
        Frame::Error(e) => {
            tracing::debug!("peer closed a stream with error {}: {}", e.code, e.text);
            Err(Close::Clean)
        }
        Frame::Ack(_) | Frame::Duplicate(_) | Frame::Reject(_) => Err(Close::error(
            ErrorCode::UnexpectedFrame,
            "ACK/DUPLICATE/REJECT are sent by the endpoint, not to it",
        )),
    }
}

fn validate(h: &AlertHeader, payload_len: usize, ctx: &Ctx) -> Result<(), (RejectReason, String)> {
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

/// Stores a batch (write-ahead) and, only if that succeeded, acknowledges every alert of it —
/// unless a fault is injected instead, in which case the stream close it calls for is returned.
async fn commit(
    batch: &[AlertHeader],
    st: &StreamState,
    ctx: &Ctx,
    out: &mut BytesMut,
) -> Option<Close> {
    let run = st.run.unwrap_or_default();
    match ctx.store_timed(run, batch) {
        Ok(stored) => {
            let total = bump(&ctx.counters.alerts_stored, stored.new.len() as u64);
            bump(&ctx.counters.duplicates, stored.duplicates.len() as u64);
            if !ctx.behaviour.ack_delay.is_zero() {
                tokio::time::sleep(ctx.behaviour.ack_delay).await;
            }
            let acked = (stored.new.len() + stored.duplicates.len()) as u64;
            if let Some(n) = ctx.behaviour.close_after
                && st.link.acked.load(Ordering::Relaxed) >= n
            {
                // Stored, never acknowledged: the client must resend on a new connection.
                bump(&ctx.counters.faults_injected, 1);
                st.link.conn.close(
                    quinn::VarInt::from_u32(FAULT_CLOSE_CODE),
                    b"fault injection: abrupt close",
                );
                return Some(Close::Clean);
            }
            let batch_no = bump(&ctx.counters.batches, 1);
            let bad = ctx
                .behaviour
                .bad_replies
                .filter(|b| batch_no.is_multiple_of(b.every.max(1)))
                .map(|b| b.kind);
            if bad.is_some() {
                bump(&ctx.counters.faults_injected, 1);
            }
            let close = match bad {
                Some(BadReplyKind::Garbage) => {
                    // An unknown frame type with a junk body: undecodable for the client.
                    out.extend_from_slice(&[0, 0, 0, 4, 0x7E, 0xDE, 0xAD, 0xBF]);
                    None
                }
                Some(BadReplyKind::Error) => Some(Close::error(
                    ErrorCode::Internal,
                    "fault injection: internal error",
                )),
                Some(BadReplyKind::UnknownIds) | None => {
                    if !stored.new.is_empty() {
                        wire::encode_ack(out, &stored.new);
                    }
                    if !stored.duplicates.is_empty() {
                        wire::encode_duplicate(out, &stored.duplicates);
                    }
                    bump(&ctx.counters.acked, acked);
                    st.link.acked.fetch_add(acked, Ordering::Relaxed);
                    if bad == Some(BadReplyKind::UnknownIds) {
                        let bogus: Vec<u64> = stored.new.iter().map(|id| !id).collect();
                        wire::encode_ack(out, &bogus);
                        wire::encode_reject(
                            out,
                            u64::MAX - batch_no,
                            RejectReason::Other.wire(),
                            "fault injection: reject for an id never sent",
                        );
                    }
                    None
                }
            };
            ctx.maybe_start_stall(total);
            close
        }
        Err(e) => {
            tracing::error!("cannot store alerts: {e}");
            for h in batch {
                ctx.counters.reject(RejectReason::StorageFailure);
                let text = format!("storage failure: {e}");
                wire::encode_reject(out, h.alert_id, RejectReason::StorageFailure.wire(), &text);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: u64) -> AlertHeader {
        AlertHeader {
            alert_id: id,
            code: ledger::AlertCode::Ad1.wire(),
            device_id: 1,
            region: 1,
            event_ms: 2,
            seq: 1,
        }
    }

    #[test]
    fn ledger_file_survives_restart_and_torn_lines() {
        let p = std::env::temp_dir().join(format!("csp-ingest-ledger-{}.csv", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let s = Store::open(Some(&p)).unwrap();
        let run = RunId([1; 16]);
        let r = s.store(run, &[header(1), header(2), header(2)]).unwrap();
        assert_eq!((r.new, r.duplicates), (vec![1, 2], vec![2]));
        drop(s);
        // A torn line from a crash mid-write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(format!("{run},3,AD1").as_bytes())
            .unwrap();
        let s = Store::open(Some(&p)).unwrap();
        let r = s.store(run, &[header(1), header(3)]).unwrap();
        assert_eq!((r.new, r.duplicates), (vec![3], vec![1]));
        // Another run's alert 1 is a different alert.
        let other = RunId([2; 16]);
        let r = s.store(other, &[header(1)]).unwrap();
        assert_eq!((r.new, r.duplicates), (vec![1], vec![]));
        drop(s);
        let text = std::fs::read_to_string(&p).unwrap();
        let keys = read_ledger_keys(text.as_bytes()).unwrap();
        assert_eq!(
            keys,
            HashSet::from([(run, 1), (run, 2), (run, 3), (other, 1)])
        );
        assert_eq!(text.lines().next(), Some(LEDGER_HEADER));
        let _ = std::fs::remove_file(&p);
    }
}
