//! Benchmark driver (not a test): acknowledged alerts per second over `csp-alert/2` on QUIC, sent
//! either by the harness's egress (the real delivery engine and QUIC transport, fed through its
//! `Sink` from a thread of its own as the real-time driver feeds it) or by a raw quinn client (no
//! engine: a counter of unanswered frames per stream), to either the reference ingest (the
//! endpoint `run` embeds, with its ledger file) or a raw quinn server (decodes frames and answers
//! each read with one ACK frame, stores nothing). `bench/egress/run.sh` runs the four pairs side
//! by side and prints the ratios.
//!
//! Both clients use the same QUIC client configuration (`egress::client_endpoint`), the same
//! connections × streams, the same in-flight window per stream and the same 190-byte ALERT frames
//! (`wire::encode_alert` with the synthetic payload); both servers use the reference ingest's
//! transport limits. By default the server runs in the same process and tokio runtime as the
//! client, as `csp-harness run` embeds its endpoint; `serve` runs one in a process of its own.
//!
//! ```text
//! egress-bench run --client raw|egress --server raw|ingest [--alerts 1000000]
//!                  [--connections 4] [--streams 4] [--in-flight 256] [--threads N]
//! egress-bench run --client raw|egress --endpoint 127.0.0.1:PORT --ca cert.pem
//! egress-bench serve --server raw|ingest --listen 127.0.0.1:PORT --cert-out cert.pem
//! ```

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, Bytes, BytesMut};
use clap::{Parser, Subcommand, ValueEnum};
use egress::{Egress, EgressConfig, RunId};
use ledger::{AlertCode, AlertId, AlertKind, Ledger, Region};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tls::{ServerCertSource, TrustSource};
use virtual_hubs::{Outbound, ScenarioClock};
use wire::{AlertHeader, Decoder, Frame};

#[derive(Parser)]
#[command(about = "Egress benchmark: the harness's egress vs a raw quinn client (not a test)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sends `--alerts` alerts and prints acknowledged alerts per second.
    Run(RunArgs),
    /// Serves until killed (for a server in a process of its own).
    Serve(ServeArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Client {
    /// The harness's egress: `Egress` (engine + QUIC transport + ledger), fed through its sink.
    Egress,
    /// quinn alone: frames written in batches up to the window, ACK frames counted.
    Raw,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Server {
    /// The reference ingest as `run` embeds it (ledger file written before each ACK, `flush`).
    Ingest,
    /// The same with `fsync` durability, a standalone `csp-harness ingest`'s default (each group
    /// commit synced before its ACKs).
    IngestFsync,
    /// quinn alone: decode the frames of each read, answer with one ACK frame.
    Raw,
}

#[derive(Parser)]
struct RunArgs {
    #[arg(long, value_enum)]
    client: Client,
    /// The server to start in this process (ignored with --endpoint).
    #[arg(long, value_enum, default_value = "ingest")]
    server: Server,
    /// A server in another process (`serve`) instead of one in this process.
    #[arg(long, requires = "ca")]
    endpoint: Option<SocketAddr>,
    /// That server's certificate PEM.
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long, default_value_t = 1_000_000)]
    alerts: u32,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Unanswered alerts per stream.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// tokio worker threads [default: the cores, as `csp-harness run` uses].
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Parser)]
struct ServeArgs {
    #[arg(long, value_enum)]
    server: Server,
    #[arg(long)]
    listen: SocketAddr,
    /// Where to write the self-signed certificate for clients (`--ca`).
    #[arg(long)]
    cert_out: PathBuf,
    /// The ingest's ledger file [default: next to the certificate].
    #[arg(long)]
    ledger: Option<PathBuf>,
    #[arg(long)]
    threads: Option<usize>,
}

fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = threads {
        b.worker_threads(t);
    }
    Ok(b.enable_all().build()?)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Run(a) => runtime(a.threads)?.block_on(run(a)),
        Cmd::Serve(a) => runtime(a.threads)?.block_on(serve(a)),
    }
}

/// The alert for premises `hub`: what the model would hand over (a North POA).
fn alert(hub: u32) -> Outbound {
    Outbound {
        id: AlertId::new(hub, AlertKind::Poa),
        code: AlertCode::Ad1,
        device_id: 0x0012_4B00_0000_0000 | u64::from(hub),
        region: Region::NORTH,
        region_code: 1,
        event_ms: 1_234_567,
        seq: 1,
        exit_ms: 0,
    }
}

/// A server started in this process; kept alive until the measurement ends.
enum Started {
    Ingest(Box<ingest::IngestServer>),
    Raw(quinn::Endpoint),
}

/// Starts `server` on a free loopback port; its address and the trust to reach it.
async fn start_server(
    server: Server,
    listen: SocketAddr,
    cert_out: &Path,
    ledger: &Path,
) -> anyhow::Result<(Started, SocketAddr, TrustSource)> {
    match server {
        Server::Ingest | Server::IngestFsync => {
            let embedded =
                ingest::IngestConfig::embedded(cert_out.to_path_buf(), ledger.to_path_buf());
            let cfg = ingest::IngestConfig {
                listen,
                durability: if server == Server::IngestFsync {
                    ingest::Durability::Fsync
                } else {
                    embedded.durability
                },
                ..embedded
            };
            let s = ingest::start(cfg).await?;
            let (addr, trust) = (s.local_addr(), s.trust());
            Ok((Started::Ingest(Box::new(s)), addr, trust))
        }
        Server::Raw => {
            let tls = tls::server_tls(
                &ServerCertSource::SelfSigned {
                    cert_out: cert_out.to_path_buf(),
                },
                None,
                &[wire::ALPN],
            )?;
            let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls.config.clone())?;
            let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
            // The reference ingest's transport limits, so that only the work behind the socket
            // differs between the two servers.
            let l = ingest::IngestLimits::default();
            let mut t = quinn::TransportConfig::default();
            t.max_concurrent_bidi_streams(l.max_streams_per_connection.into())
                .max_concurrent_uni_streams(0u32.into())
                .stream_receive_window(l.stream_window.into())
                .receive_window(l.connection_window.into())
                .max_idle_timeout(Some(l.idle_timeout.try_into()?));
            sc.transport_config(Arc::new(t));
            let ep = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(sc),
                tls::bind_udp(listen)?,
                Arc::new(quinn::TokioRuntime),
            )?;
            let addr = ep.local_addr()?;
            tokio::spawn(raw_accept(ep.clone()));
            Ok((Started::Raw(ep), addr, TrustSource::Der(vec![tls.cert_der])))
        }
    }
}

async fn raw_accept(ep: quinn::Endpoint) {
    while let Some(incoming) = ep.accept().await {
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((send, recv)) = conn.accept_bi().await {
                tokio::spawn(raw_serve_stream(send, recv));
            }
        });
    }
}

/// Decodes every frame of each read (every chunk the stream has received, as the reference
/// ingest gathers them) and answers the read's ALERTs with one ACK frame.
async fn raw_serve_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let mut dec = Decoder::default();
    let mut ids = Vec::new();
    let mut out = BytesMut::new();
    let mut chunks: [Bytes; 32] = Default::default();
    while let Ok(Some(n)) = recv.read_chunks(&mut chunks).await {
        for c in &mut chunks[..n] {
            dec.push(c);
            *c = Bytes::new();
        }
        loop {
            match dec.next_frame() {
                Ok(Some(Frame::Alert(a))) => ids.push(a.header.alert_id),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        for c in ids.chunks(wire::MAX_ACK_IDS) {
            wire::encode_ack(&mut out, c);
        }
        ids.clear();
        if send.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
    let _ = send.finish();
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let ledger = a
        .ledger
        .unwrap_or_else(|| a.cert_out.with_extension("ledger.csv"));
    let (_server, addr, _) = start_server(a.server, a.listen, &a.cert_out, &ledger).await?;
    println!("listening on {addr}");
    std::future::pending::<()>().await;
    Ok(())
}

/// One measurement: how many alerts were acknowledged, how long it took, the CPU time the
/// process (client and server, when they share it) used meanwhile and how long its threads
/// waited for a core.
struct Measured {
    acked: u64,
    took: Duration,
    cpu: Option<Duration>,
    waited: Option<Duration>,
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (Linux; in
/// units of 1/100 s, the fixed USER_HZ of that file). The machine is shared: CPU time per alert
/// moves less than wall time when other work competes for the cores.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Time the threads of this process that are alive now have spent runnable but waiting for a
/// core (the second field of each `/proc/self/task/*/schedstat`, ns; Linux with schedstats). On
/// a shared machine this is the disturbance: a run whose threads waited longer than they ran
/// measured the other work on the machine more than its own.
fn runqueue_wait() -> Option<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            // The thread ended meanwhile.
            continue;
        };
        ns += stat.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(ns))
}

/// Starts timing a measurement.
struct Timer {
    at: Instant,
    cpu: Option<Duration>,
    waited: Option<Duration>,
}

impl Timer {
    fn start() -> Self {
        Timer {
            at: Instant::now(),
            cpu: cpu_time(),
            waited: runqueue_wait(),
        }
    }

    fn stop(&self, acked: u64) -> Measured {
        let took = self.at.elapsed();
        let since = |now: Option<Duration>, then: Option<Duration>| {
            now.zip(then).map(|(b, a)| b.saturating_sub(a))
        };
        Measured {
            acked,
            took,
            cpu: since(cpu_time(), self.cpu),
            waited: since(runqueue_wait(), self.waited),
        }
    }
}

async fn run(a: RunArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, addr, trust, where_) = match (&a.endpoint, &a.ca) {
        (Some(addr), Some(ca)) => (None, *addr, TrustSource::PemFile(ca.clone()), "other"),
        _ => {
            let (s, addr, trust) = start_server(
                a.server,
                SocketAddr::from(([127, 0, 0, 1], 0)),
                &dir.path().join("cert.pem"),
                &dir.path().join("ledger.csv"),
            )
            .await?;
            (Some(s), addr, trust, "same")
        }
    };
    let cfg = EgressConfig {
        trust,
        connections: a.connections,
        streams_per_connection: a.streams,
        max_in_flight_per_stream: a.in_flight,
        run_id: RunId([0x5A; 16]),
        ..EgressConfig::new(addr, "localhost", PathBuf::new())
    };
    let m = match a.client {
        Client::Egress => egress_client(cfg, a.alerts).await?,
        Client::Raw => raw_client(cfg, a.alerts).await?,
    };
    if m.acked != u64::from(a.alerts) {
        bail!("only {} of {} alerts acknowledged", m.acked, a.alerts);
    }
    let server_name = match (where_, a.server) {
        ("other", _) => "endpoint",
        (_, Server::Ingest) => "ingest",
        (_, Server::IngestFsync) => "ingest-fsync",
        (_, Server::Raw) => "raw",
    };
    let client_name = match a.client {
        Client::Egress => "egress",
        Client::Raw => "raw",
    };
    let cpu_ns = m.cpu.map_or("n/a".to_string(), |c| {
        format!("{:.0}", c.as_nanos() as f64 / m.acked as f64)
    });
    let waited_ms = m
        .waited
        .map_or("n/a".to_string(), |w| w.as_millis().to_string());
    println!(
        "client={client_name} server={server_name} server_process={where_} connections={} \
         streams={} in_flight={} frame_bytes={} alerts={} seconds={:.3} acked_per_s={:.0} \
         cpu_ns_per_alert={cpu_ns} runqueue_wait_ms={waited_ms}",
        a.connections,
        a.streams,
        a.in_flight,
        wire::HEADER_LEN + wire::ALERT_FIXED_LEN + wire::SYNTHETIC_PAYLOAD_LEN,
        a.alerts,
        m.took.as_secs_f64(),
        m.acked as f64 / m.took.as_secs_f64()
    );
    match server {
        Some(Started::Ingest(s)) => {
            let st = s.shutdown().await;
            if st.alerts_stored != u64::from(a.alerts) {
                bail!("the ingest stored {} alerts", st.alerts_stored);
            }
        }
        Some(Started::Raw(ep)) => ep.close(0u32.into(), b"done"),
        None => {}
    }
    Ok(())
}

/// The harness's egress with its default send queue: every alert expected in a ledger, handed to
/// the sink from a thread of its own (as the real-time driver's hand-over thread does), timed
/// from the first hand-over to the last fate. The sink never blocks and a full queue loses
/// alerts, so the feeder hands over only while the queue has room for the next block (a model
/// producing exactly as fast as the egress takes alerts). Once the queue is full it sleeps until
/// half of it has gone, in 1 ms naps: half a queue (32k alerts by default) lasts far longer than
/// a nap even at raw QUIC's rate, so the lanes never run dry, and the feeder's wake-ups (a
/// stand-in for the model, not part of the egress) stay few.
///
/// The feeder learns how many alerts have their fate from this task, which polls
/// `Egress::outstanding` every millisecond anyway: it uses only the public API every version of
/// the egress has, so a build of an older commit (`run.sh --baseline-rev`) measures the same way.
async fn egress_client(cfg: EgressConfig, n: u32) -> anyhow::Result<Measured> {
    const BLOCK: u32 = 1024;
    let connections = cfg.connections as u64;
    let room = (cfg.send_queue as u64).saturating_sub(u64::from(BLOCK));
    let low_water = room / 2;
    let mut l = Ledger::new(n);
    for hub in 0..n {
        l.expect(AlertId::new(hub, AlertKind::Poa), AlertCode::Ad1, 0)?;
    }
    let ledger = Arc::new(Mutex::new(l));
    let egress = Egress::start(cfg, ScenarioClock::start(1.0), ledger.clone()).await?;
    // Every connection up before the clock starts, as the raw client connects first too.
    let up = Instant::now();
    while egress.stats().connects < connections {
        if up.elapsed() > Duration::from_secs(10) {
            bail!("the egress did not connect {connections} connections");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let sink = egress.sink();
    // Alerts handed over (published by the feeder after each block) and alerts with a fate
    // (published by this task): the feeder's estimate of what is outstanding, `handed - fated`,
    // is never below the truth, because `fated` is computed from a `handed` read before
    // `outstanding()`, which never reads low.
    let handed = Arc::new(AtomicU64::new(0));
    let fated = Arc::new(AtomicU64::new(0));
    let (h2, f2) = (handed.clone(), fated.clone());
    let t0 = Timer::start();
    let feeder = std::thread::spawn(move || {
        for hub in 0..n {
            if hub % BLOCK == 0 {
                h2.store(u64::from(hub), Ordering::Release);
                let outstanding = |f: &AtomicU64| u64::from(hub) - f.load(Ordering::Acquire);
                if outstanding(&f2) > room {
                    while outstanding(&f2) > low_water {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            sink.submit(alert(hub));
        }
        h2.store(u64::from(n), Ordering::Release);
    });
    loop {
        let h = handed.load(Ordering::Acquire);
        let out = egress.outstanding();
        fated.store(h.saturating_sub(out), Ordering::Release);
        if feeder.is_finished() && out == 0 {
            break;
        }
        if t0.at.elapsed() > Duration::from_secs(300) {
            bail!("not every alert was answered within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let m = t0.stop(u64::from(n));
    let _ = feeder.join();
    let st = egress.drain(Duration::from_secs(5)).await;
    let delivered = ledger
        .lock()
        .map_err(|_| anyhow!("ledger lock poisoned"))?
        .delivered(AlertKind::Poa);
    if delivered != st.delivered || st.resent > 0 || st.ledger_errors > 0 || st.queue_overflow > 0 {
        bail!(
            "ledger says {delivered} delivered, egress {} (resent {}, ledger errors {}, queue \
             overflow {}, last error {:?})",
            st.delivered,
            st.resent,
            st.ledger_errors,
            st.queue_overflow,
            st.last_error
        );
    }
    Ok(Measured {
        acked: delivered,
        ..m
    })
}

/// quinn alone, with the same client configuration: connect, open the streams, then time every
/// stream's loop of batched writes and ACK reads until every alert is acknowledged.
async fn raw_client(cfg: EgressConfig, n: u32) -> anyhow::Result<Measured> {
    let ep = egress::client_endpoint(&cfg)?;
    let mut hello = BytesMut::new();
    wire::encode_hello(&mut hello, wire::PROTOCOL_VERSION, &cfg.run_id, b"");
    let mut streams = Vec::new();
    for _ in 0..cfg.connections {
        let conn = egress::connect(&ep, &cfg).await?;
        for _ in 0..cfg.streams_per_connection {
            streams.push(conn.open_bi().await.context("open stream")?);
        }
    }
    let next = Arc::new(AtomicU32::new(0));
    let t0 = Timer::start();
    let mut tasks = tokio::task::JoinSet::new();
    for (send, recv) in streams {
        let lane = RawLane {
            send,
            recv,
            out: hello.clone(),
            next: next.clone(),
            n,
            window: cfg.max_in_flight_per_stream,
        };
        tasks.spawn(lane.run());
    }
    let mut acked = 0;
    while let Some(r) = tasks.join_next().await {
        acked += r??;
    }
    let m = t0.stop(acked);
    ep.close(0u32.into(), b"done");
    Ok(m)
}

/// One stream of the raw client.
struct RawLane {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    out: BytesMut,
    /// The next premises to send (shared by every stream).
    next: Arc<AtomicU32>,
    n: u32,
    window: usize,
}

impl RawLane {
    async fn run(mut self) -> anyhow::Result<u64> {
        let mut dec = Decoder::default();
        let mut payload = [0u8; wire::SYNTHETIC_PAYLOAD_LEN];
        let (mut in_flight, mut acked, mut exhausted) = (0usize, 0u64, false);
        loop {
            // Top the window up, all in one write, as soon as the last write is taken.
            if self.out.is_empty() && !exhausted && in_flight < self.window {
                let want = (self.window - in_flight) as u32;
                let first = self.next.fetch_add(want, Ordering::Relaxed);
                let last = first.saturating_add(want).min(self.n);
                exhausted = last >= self.n;
                // The same frames as the egress's QUIC lane encodes (`quic::encode_batch`), from
                // `wire` alone: the raw client uses nothing of the egress's send path, and this
                // program must build against older egress versions (`run.sh --baseline-rev`).
                for hub in first..last {
                    let o = alert(hub);
                    let h = AlertHeader {
                        alert_id: o.id.0,
                        code: o.code.wire(),
                        device_id: o.device_id,
                        region: o.region_code,
                        event_ms: o.event_ms,
                        seq: o.seq,
                    };
                    wire::synthetic_payload(&h, &mut payload);
                    wire::encode_alert(&mut self.out, &h, &payload);
                    in_flight += 1;
                }
            }
            if exhausted && in_flight == 0 {
                let _ = self.send.finish();
                return Ok(acked);
            }
            tokio::select! {
                r = self.recv.read_chunk(64 * 1024, true) => {
                    let chunk = r?.ok_or_else(|| anyhow!("server finished the stream"))?;
                    dec.push(&chunk.bytes);
                    while let Some(f) = dec.next_frame()? {
                        match f {
                            Frame::Ack(ids) | Frame::Duplicate(ids) => {
                                in_flight -= ids.len();
                                acked += ids.len() as u64;
                            }
                            other => bail!("unexpected reply {other:?}"),
                        }
                    }
                }
                w = self.send.write(&self.out), if !self.out.is_empty() => self.out.advance(w?),
            }
        }
    }
}
