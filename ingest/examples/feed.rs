//! Benchmark driver (not a test): a raw quinn client that feeds a `csp-alert` endpoint as fast as
//! it acknowledges, with the egress's settings (4 connections × 4 streams, 190-byte ALERT frames,
//! 256 alerts in flight per stream), and prints acknowledged alerts per second.
//! `bench/ingest/run.sh` runs it against `csp-harness ingest` with and without a ledger.
//!
//! ```text
//! feed --endpoint 127.0.0.1:4433 --ca cert.pem [--alerts 2000000] [--connections 4] [--streams 4]
//!      [--in-flight 256] [--threads 1]
//! ```
//! It owns no delivery rules (no deadlines, no resends): an alert counts once its ACK (or
//! DUPLICATE) arrives; an ERROR, a REJECT or a lost connection ends the run with an error.

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::{Buf, BytesMut};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wire::{AlertHeader, Decoder, Frame, RunId};

#[derive(Parser)]
struct Args {
    /// The endpoint's UDP address.
    #[arg(long)]
    endpoint: SocketAddr,
    /// The endpoint's certificate (PEM) to pin.
    #[arg(long)]
    ca: PathBuf,
    #[arg(long, default_value = "localhost")]
    server_name: String,
    #[arg(long, default_value_t = 2_000_000)]
    alerts: u64,
    #[arg(long, default_value_t = 4)]
    connections: u64,
    #[arg(long, default_value_t = 4)]
    streams: u64,
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Alerts encoded per write.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// HELLO token, if the endpoint requires one.
    #[arg(long, env = "CSP_TOKEN")]
    token: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let tls = tls::client_config(
        &tls::TrustSource::PemFile(args.ca.clone()),
        None,
        &[wire::ALPN],
    )?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(0u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .keep_alive_interval(Some(Duration::from_secs(2)));
    client.transport_config(Arc::new(transport));
    let socket = tls::bind_udp(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )?;
    endpoint.set_default_client_config(client);

    // A new run every time, so a ledger kept between runs stores every alert again.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let run_id = RunId(nanos.to_be_bytes());
    let lanes = args.connections * args.streams;
    let per_lane = args.alerts / lanes;
    let acked = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        conns.push(endpoint.connect(args.endpoint, &args.server_name)?.await?);
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (c, conn) in conns.iter().enumerate() {
        for s in 0..args.streams {
            let lane = c as u64 * args.streams + s;
            let (send, recv) = conn.open_bi().await?;
            tasks.spawn(lane_task(
                send,
                recv,
                run_id,
                lane << 40,
                per_lane,
                args.in_flight,
                args.batch,
                args.token.clone().unwrap_or_default(),
                acked.clone(),
            ));
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = acked.load(Ordering::Relaxed);
    println!(
        "acked {n} alerts in {secs:.3} s: {:.0} alerts/s ({} connections x {} streams, {} in \
         flight per stream, {}-byte frames)",
        n as f64 / secs,
        args.connections,
        args.streams,
        args.in_flight,
        wire::HEADER_LEN + wire::ALERT_FIXED_LEN + wire::SYNTHETIC_PAYLOAD_LEN
    );
    for c in conns {
        c.close(0u32.into(), b"done");
    }
    endpoint.wait_idle().await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn lane_task(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    run_id: RunId,
    first_id: u64,
    count: u64,
    in_flight: usize,
    batch: usize,
    token: String,
    acked: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let window = Arc::new(Semaphore::new(in_flight));
    let writer = {
        let window = window.clone();
        async move {
            let mut out = BytesMut::new();
            wire::encode_hello(&mut out, wire::PROTOCOL_VERSION, &run_id, token.as_bytes());
            let mut payload = [0u8; wire::SYNTHETIC_PAYLOAD_LEN];
            let mut next = 0u64;
            while next < count {
                let n = (batch as u64).min(count - next);
                window.acquire_many(n as u32).await?.forget();
                for i in next..next + n {
                    let h = AlertHeader {
                        alert_id: first_id + i,
                        code: ledger::AlertCode::Ad1.wire(),
                        device_id: first_id + i,
                        region: 1,
                        event_ms: i,
                        seq: 1,
                    };
                    wire::synthetic_payload(&h, &mut payload);
                    wire::encode_alert(&mut out, &h, &payload);
                }
                next += n;
                send.write_all(&out).await?;
                out.clear();
            }
            send.finish()?;
            anyhow::Ok(())
        }
    };
    let reader = async move {
        let mut dec = Decoder::default();
        let mut done = 0u64;
        while done < count {
            let Some(chunk) = recv.read_chunk(64 * 1024, true).await? else {
                anyhow::bail!("the endpoint finished the stream after {done} acks");
            };
            dec.push(&chunk.bytes);
            while let Some(f) = dec.next_frame()? {
                let n = match f {
                    Frame::Ack(ids) | Frame::Duplicate(ids) => ids.len(),
                    other => anyhow::bail!("unexpected reply {other:?}"),
                };
                done += n as u64;
                acked.fetch_add(n as u64, Ordering::Relaxed);
                window.add_permits(n);
            }
        }
        let _ = chunk_rest(&mut recv).await;
        anyhow::Ok(())
    };
    let (w, r) = tokio::join!(writer, reader);
    w?;
    r
}

/// Reads whatever is left of the stream (its end), bounded in time.
async fn chunk_rest(recv: &mut quinn::RecvStream) -> anyhow::Result<()> {
    let mut buf = BytesMut::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(Some(c)) = recv.read_chunk(64 * 1024, true).await {
            buf.extend_from_slice(&c.bytes);
            buf.advance(buf.len());
        }
    })
    .await;
    Ok(())
}
