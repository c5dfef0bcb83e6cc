//! The reference alert-ingest endpoint: a real QUIC server speaking `csp-alert/1`.
//!
//! It validates every ALERT (known code, known region, payload within the limit), de-duplicates by
//! alert id, writes each new alert to its own ledger file *before* acknowledging it (write-ahead:
//! the line is flushed to the operating system before the ACK is sent), and acknowledges duplicates
//! again without storing them twice. A frame that cannot be parsed gets an ERROR frame and closes
//! only its own stream; other streams and clients carry on. Memory is bounded: per-connection
//! stream limits, QUIC flow-control windows, a per-stream decoder that holds at most one partial
//! frame, an idle timeout and a stall timeout for half-sent frames.
//!
//! Test knobs ([`Behaviour`]) make it reject everything, acknowledge slowly or require a HELLO
//! token. It must never panic on anything a peer sends, and never acknowledge what it did not store.

use crate::tls::{ServerCertSource, TlsError, TrustSource};
use crate::wire::{self, AlertHeader, Decoder, ErrorCode, Frame, RejectReason};
use bytes::BytesMut;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::{JoinHandle, JoinSet};

/// UDP socket send and receive buffer size requested for every QUIC socket (the default
/// overflowed during bursts on the measuring machine).
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

/// First line of the endpoint's ledger file.
pub const LEDGER_HEADER: &str = "alert_id,code,device_id,region,event_ms,seq,received_unix_ms";

/// Resource limits of the endpoint.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// Concurrent bidirectional streams a client may open per connection.
    pub max_streams_per_connection: u32,
    /// Concurrent connections; further ones are refused.
    pub max_connections: usize,
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

/// Behaviour knobs for tests and fault injection.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer every alert with REJECT (reason `Policy`); store nothing.
    pub reject_all: bool,
    /// Wait this long after storing a batch before acknowledging it.
    pub ack_delay: Duration,
    /// Require every stream to start with a HELLO carrying this token.
    pub auth_token: Option<String>,
}

/// Everything [`start`] needs.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where the certificate comes from.
    pub tls: ServerCertSource,
    /// Write one CSV line per stored alert here (appending; ids already in it count as stored).
    pub ledger_path: Option<PathBuf>,
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
            ledger_path: None,
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
    streams: AtomicU64,
    alerts_stored: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    malformed: AtomicU64,
    stream_errors: AtomicU64,
    acked: AtomicU64,
    bytes_received: AtomicU64,
    max_buffered_bytes: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> IngestStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IngestStats {
            connections: g(&self.connections),
            active_connections: g(&self.active_connections),
            refused_connections: g(&self.refused_connections),
            streams: g(&self.streams),
            alerts_stored: g(&self.alerts_stored),
            duplicates: g(&self.duplicates),
            rejected: g(&self.rejected),
            malformed: g(&self.malformed),
            stream_errors: g(&self.stream_errors),
            acked: g(&self.acked),
            bytes_received: g(&self.bytes_received),
            max_buffered_bytes: g(&self.max_buffered_bytes),
        }
    }
}

fn bump(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// The de-duplicating, write-ahead alert store.
#[derive(Debug)]
struct Store {
    inner: Mutex<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    seen: HashSet<u64>,
    file: Option<BufWriter<File>>,
}

/// What storing a batch did.
#[derive(Debug, Default)]
struct Stored {
    new: u64,
    duplicates: u64,
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

    /// Stores the new alerts of `batch` (ledger lines flushed before returning). On an I/O error
    /// nothing of this batch counts as stored.
    fn store(&self, batch: &[AlertHeader]) -> io::Result<Stored> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("store lock poisoned"))?;
        let inner = &mut *guard;
        let mut fresh: Vec<u64> = Vec::new();
        let mut out = Stored::default();
        let now = unix_ms();
        for h in batch {
            if inner.seen.contains(&h.alert_id) || fresh.contains(&h.alert_id) {
                out.duplicates += 1;
                continue;
            }
            if let Some(f) = inner.file.as_mut() {
                write_ledger_line(f, h, now)?;
            }
            fresh.push(h.alert_id);
        }
        if let Some(f) = inner.file.as_mut() {
            f.flush()?;
        }
        out.new = fresh.len() as u64;
        inner.seen.extend(fresh);
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

fn write_ledger_line(f: &mut impl Write, h: &AlertHeader, now: u64) -> io::Result<()> {
    let code = h.alert_code().map_or("?", |c| c.as_str());
    let region = h.region().map_or("?", |r| r.as_str());
    writeln!(
        f,
        "{},{},{:016x},{},{},{},{}",
        h.alert_id, code, h.device_id, region, h.event_ms, h.seq, now
    )
}

/// Opens (creating if needed) a ledger file for appending and returns the ids it already holds.
/// A torn last line (a crash mid-write) is ignored and terminated so appends start on a fresh line.
fn open_ledger(path: &Path) -> io::Result<(HashSet<u64>, File)> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let seen = read_ledger_ids(BufReader::new(&mut file))?;
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

/// The alert ids of a ledger file's complete lines (the header and unparsable lines are skipped).
pub fn read_ledger_ids(reader: impl BufRead) -> io::Result<HashSet<u64>> {
    let mut seen = HashSet::new();
    for line in reader.split(b'\n') {
        let line = line?;
        let first = line.split(|b| *b == b',').next().unwrap_or_default();
        let complete = line.split(|b| *b == b',').count() == 7;
        if let (true, Some(id)) = (
            complete,
            std::str::from_utf8(first).ok().and_then(|s| s.parse().ok()),
        ) {
            seen.insert(id);
        }
    }
    Ok(seen)
}

/// What every connection and stream task shares.
#[derive(Debug)]
struct Ctx {
    store: Store,
    counters: Counters,
    behaviour: Behaviour,
    limits: IngestLimits,
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
}

impl IngestServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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

    /// Closes every connection (QUIC close, code 0) and stops; returns the final counters.
    /// Bounded in time (about one second at most).
    pub async fn shutdown(self) -> IngestStats {
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
    let tls = crate::tls::server_tls(&cfg.tls)?;
    let store = Store::open(cfg.ledger_path.as_deref())?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls.config.clone())
        .map_err(|e| IngestError::Quic(e.to_string()))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server_config.transport_config(Arc::new(server_transport(&cfg.limits)?));
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
        counters: Counters::default(),
        behaviour: cfg.behaviour,
        limits: cfg.limits,
    });
    let accept_task = tokio::spawn(accept_loop(endpoint.clone(), ctx.clone()));
    Ok(IngestServer {
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

/// A UDP socket bound to `addr` with [`UDP_BUFFER_BYTES`] send and receive buffers (a smaller
/// buffer granted by the OS is logged, not an error). Shared with the egress client.
pub fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = sock.set_recv_buffer_size(UDP_BUFFER_BYTES) {
        tracing::warn!("cannot set UDP receive buffer to {UDP_BUFFER_BYTES} bytes: {e}");
    }
    if let Err(e) = sock.set_send_buffer_size(UDP_BUFFER_BYTES) {
        tracing::warn!("cannot set UDP send buffer to {UDP_BUFFER_BYTES} bytes: {e}");
    }
    sock.bind(&addr.into())?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

async fn accept_loop(endpoint: quinn::Endpoint, ctx: Arc<Ctx>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if conns.len() >= ctx.limits.max_connections {
                    bump(&ctx.counters.refused_connections, 1);
                    incoming.refuse();
                } else {
                    conns.spawn(serve_connection(incoming, ctx.clone()));
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

async fn serve_connection(incoming: quinn::Incoming, ctx: Arc<Ctx>) {
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("handshake failed: {e}");
            return;
        }
    };
    bump(&ctx.counters.connections, 1);
    bump(&ctx.counters.active_connections, 1);
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            s = conn.accept_bi() => match s {
                Ok((send, recv)) => {
                    bump(&ctx.counters.streams, 1);
                    streams.spawn(serve_stream(send, recv, ctx.clone()));
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
    authenticated: bool,
}

async fn serve_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream, ctx: Arc<Ctx>) {
    let mut st = StreamState {
        decoder: Decoder::new(ctx.limits.max_frame),
        authenticated: ctx.behaviour.auth_token.is_none(),
    };
    loop {
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
        Ok(Some(chunk)) => ReadOutcome::Data(chunk.bytes),
        Ok(None) => ReadOutcome::Finished,
        Err(e) => {
            tracing::debug!("stream read ended: {e}");
            ReadOutcome::Gone
        }
    }
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
        commit(&batch, ctx, &mut out).await;
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
            if h.version != wire::PROTOCOL_VERSION {
                return Err(Close::error(
                    ErrorCode::UnsupportedVersion,
                    format!("protocol version {} not supported (want 1)", h.version),
                ));
            }
            if let Some(token) = &ctx.behaviour.auth_token {
                if h.token.as_ref() != token.as_bytes() {
                    return Err(Close::error(ErrorCode::Unauthenticated, "bad token"));
                }
                st.authenticated = true;
            }
            Ok(())
        }
        Frame::Alert(a) => {
            if !st.authenticated {
                return Err(Close::error(
                    ErrorCode::Unauthenticated,
                    "HELLO with a valid token required before ALERT",
                ));
            }
            match validate(&a.header, a.payload.len(), ctx) {
                Ok(()) => batch.push(a.header),
                Err((reason, text)) => {
                    bump(&ctx.counters.rejected, 1);
                    wire::encode_reject(out, a.header.alert_id, reason.wire(), &text);
                }
            }
            Ok(())
        }
        Frame::Error(e) => {
            tracing::debug!("peer closed a stream with error {}: {}", e.code, e.text);
            Err(Close::Clean)
        }
        Frame::Ack(_) | Frame::Reject(_) => Err(Close::error(
            ErrorCode::UnexpectedFrame,
            "ACK/REJECT are sent by the endpoint, not to it",
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

/// Stores a batch (write-ahead) and, only if that succeeded, acknowledges every alert of it.
async fn commit(batch: &[AlertHeader], ctx: &Ctx, out: &mut BytesMut) {
    match ctx.store.store(batch) {
        Ok(stored) => {
            bump(&ctx.counters.alerts_stored, stored.new);
            bump(&ctx.counters.duplicates, stored.duplicates);
            if !ctx.behaviour.ack_delay.is_zero() {
                tokio::time::sleep(ctx.behaviour.ack_delay).await;
            }
            let ids: Vec<u64> = batch.iter().map(|h| h.alert_id).collect();
            wire::encode_ack(out, &ids);
            bump(&ctx.counters.acked, ids.len() as u64);
        }
        Err(e) => {
            tracing::error!("cannot store alerts: {e}");
            for h in batch {
                bump(&ctx.counters.rejected, 1);
                let text = format!("storage failure: {e}");
                wire::encode_reject(out, h.alert_id, RejectReason::StorageFailure.wire(), &text);
            }
        }
    }
}

/// `csp-harness ingest`: run the reference endpoint until Ctrl-C.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Address to listen on (UDP).
    #[arg(long, default_value = "127.0.0.1:4433")]
    pub listen: SocketAddr,
    /// Certificate chain PEM (with --key); without it a self-signed certificate is generated.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key PEM (with --cert).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Where to write the generated self-signed certificate PEM, for clients to pin (`--ca`).
    #[arg(long, default_value = "csp-ingest-cert.pem", conflicts_with = "cert")]
    pub cert_out: PathBuf,
    /// Append one CSV line per stored alert to this file (write-ahead, before the ACK).
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Reject every alert (test knob).
    #[arg(long)]
    pub reject_all: bool,
    /// Wait this many milliseconds before acknowledging each stored batch (test knob).
    #[arg(long, default_value_t = 0)]
    pub ack_delay_ms: u64,
    /// Require a HELLO frame carrying this token at the start of every stream.
    #[arg(long)]
    pub auth_token: Option<String>,
    /// Concurrent streams per connection.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_streams: u32,
    /// Concurrent connections.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Close connections idle for this many seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_s: u64,
}

impl IngestArgs {
    /// The endpoint configuration these flags describe.
    pub fn to_config(&self) -> IngestConfig {
        let tls = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => ServerCertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => ServerCertSource::SelfSigned {
                cert_out: self.cert_out.clone(),
            },
        };
        IngestConfig {
            listen: self.listen,
            tls,
            ledger_path: self.ledger.clone(),
            behaviour: Behaviour {
                reject_all: self.reject_all,
                ack_delay: Duration::from_millis(self.ack_delay_ms),
                auth_token: self.auth_token.clone(),
            },
            limits: IngestLimits {
                max_streams_per_connection: self.max_streams,
                max_connections: self.max_connections,
                idle_timeout: Duration::from_secs(self.idle_timeout_s),
                ..IngestLimits::default()
            },
        }
    }
}

/// Serves until Ctrl-C, printing the address and the certificate to pin on start and the counters
/// (JSON) on exit.
pub async fn run_ingest(args: IngestArgs) -> anyhow::Result<()> {
    let server = start(args.to_config()).await?;
    let cert = server.cert_pem_path().display().to_string();
    println!(
        "csp-harness ingest: listening on quic://{} (ALPN {}); certificate to pin: {cert}",
        server.local_addr(),
        String::from_utf8_lossy(wire::ALPN)
    );
    if let Some(l) = &args.ledger {
        println!("ledger: {}", l.display());
    }
    tokio::signal::ctrl_c().await?;
    let stats = server.shutdown().await;
    println!("{}", serde_json::to_string(&stats)?);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
        let r = s.store(&[header(1), header(2), header(2)]).unwrap();
        assert_eq!((r.new, r.duplicates), (2, 1));
        drop(s);
        // A torn line from a crash mid-write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"3,AD1")
            .unwrap();
        let s = Store::open(Some(&p)).unwrap();
        let r = s.store(&[header(1), header(3)]).unwrap();
        assert_eq!((r.new, r.duplicates), (1, 1));
        drop(s);
        let text = std::fs::read_to_string(&p).unwrap();
        let ids = read_ledger_ids(text.as_bytes()).unwrap();
        assert_eq!(ids, HashSet::from([1, 2, 3]));
        assert_eq!(text.lines().next(), Some(LEDGER_HEADER));
        let _ = std::fs::remove_file(&p);
    }
}
