//! `csp-alert` over QUIC, one connection at a time: its streams, each a HELLO then ALERT frames,
//! validated, stored as one batch per read (write-ahead, through the store) and only then
//! acknowledged; the fault-injection knobs that act on replies. A stream reads on while its
//! batches wait for the store (a few at most) and answers them in order.
//!
//! Memory and time per stream are bounded: the decoder holds at most one partial frame, at most
//! [`MAX_WAITING_BATCHES`] reads' batches wait for the store; a frame
//! must arrive whole within the stall timeout of its first byte (a client that drips one byte
//! every few seconds does not hold a stream for ever); and the bytes held in partial frames
//! across the whole server are bounded ([`IngestLimits::max_partial_bytes`]), a stream that would
//! go past it being closed with an ERROR. It must never acknowledge what the store has not stored,
//! and never panic on anything a peer sends.

use crate::store::{Pending, StoreError, Stored};
use crate::{
    BadReplyKind, Ctx, FAULT_CLOSE_CODE, IngestLimits, REVOKED, bump, log_store_error, sparse,
    validate,
};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use wire::{AlertHeader, Decoder, ErrorCode, Frame, RejectReason, RunId};

/// Serves one csp-alert connection: a task per stream, until the connection ends or the server
/// closes (then the streams finish what they hold and the connection is closed normally).
pub(crate) async fn serve_connection(conn: quinn::Connection, ctx: Arc<Ctx>) {
    bump(&ctx.counters.connections, 1);
    bump(&ctx.counters.active_connections, 1);
    let acked_here = Arc::new(AtomicU64::new(0));
    let mut streams = JoinSet::new();
    let mut closing = ctx.closing.clone();
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
            _ = crate::until_closing(&mut closing) => {
                // Closing: the streams answer what they have read and finish; then the
                // connection is closed normally.
                let _ = tokio::time::timeout(crate::SHUTDOWN_GRACE, async {
                    while streams.join_next().await.is_some() {}
                })
                .await;
                conn.close(quinn::VarInt::from_u32(0), b"endpoint shutting down");
                break;
            }
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
    /// When the frame now partly buffered must be whole (none: no partial frame).
    frame_due: Option<Instant>,
    /// This stream's share of the server-wide partial-frame bytes.
    partial: PartialCharge,
    /// Frames decoded so far.
    frames: u64,
    /// Alerts in the last batch stored (the next batch's first allocation).
    last_batch: usize,
}

/// A stream's handle on its connection (for the `close_after` fault).
struct ConnLink {
    conn: quinn::Connection,
    /// Alerts acknowledged on this connection so far.
    acked: Arc<AtomicU64>,
}

/// The bytes one stream holds in a partial frame, charged to the server-wide bound and given
/// back when the stream ends.
struct PartialCharge {
    ctx: Arc<Ctx>,
    held: usize,
}

impl PartialCharge {
    /// Charges the stream's new holding; `false` (nothing charged) if that would take the server
    /// past its bound.
    fn set(&mut self, now_held: usize) -> bool {
        if now_held <= self.held {
            self.ctx
                .partial_bytes
                .fetch_sub(self.held - now_held, Ordering::AcqRel);
            self.held = now_held;
            return true;
        }
        let more = now_held - self.held;
        let before = self.ctx.partial_bytes.fetch_add(more, Ordering::AcqRel);
        if before + more > self.ctx.limits.max_partial_bytes {
            self.ctx.partial_bytes.fetch_sub(more, Ordering::AcqRel);
            return false;
        }
        self.held = now_held;
        self.ctx
            .counters
            .max_partial_bytes_total
            .fetch_max((before + more) as u64, Ordering::Relaxed);
        true
    }
}

impl Drop for PartialCharge {
    fn drop(&mut self) {
        self.ctx
            .partial_bytes
            .fetch_sub(self.held, Ordering::AcqRel);
    }
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
        frame_due: None,
        frames: 0,
        last_batch: 0,
        partial: PartialCharge {
            ctx: ctx.clone(),
            held: 0,
        },
    };
    let mut closing = ctx.closing.clone();
    // Reads answered in order: each with its batch's store answer to come, if it had alerts.
    let mut waiting: VecDeque<Answer> = VecDeque::new();
    // Set once a read ends the stream: nothing more is read, the answers before it are sent.
    let mut ended = false;
    loop {
        let can_read = !ended && waiting.len() < MAX_WAITING_BATCHES;
        let event = tokio::select! {
            biased;
            stored = front_answer(&mut waiting), if !waiting.is_empty() => Event::Answered(stored),
            _ = crate::until_closing(&mut closing), if !ended => Event::Read(ReadOutcome::Closing),
            r = async {
                ctx.wait_while_stalled().await;
                read_some(&mut recv, &mut st.decoder, st.frame_due, &ctx.limits).await
            }, if can_read => Event::Read(r),
        };
        let answer = match event {
            Event::Answered(stored) => {
                let Some(a) = waiting.pop_front() else {
                    continue;
                };
                let (out, close) = a.finish(stored, &st, &ctx).await;
                if close_or_continue(&mut send, &mut recv, out, close, &ctx)
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Event::Read(ReadOutcome::Data(len)) => {
                bump(&ctx.counters.bytes_received, len as u64);
                let frames_before = st.frames;
                ctx.counters
                    .max_buffered_bytes
                    .fetch_max(st.decoder.buffered() as u64, Ordering::Relaxed);
                let mut a = process_frames(&mut st, &ctx);
                if a.close.is_none() {
                    a.close = track_partial(&mut st, frames_before, &ctx);
                }
                a
            }
            Event::Read(ReadOutcome::Finished) => Answer::closing(match st.decoder.finish() {
                Ok(()) => Close::Clean,
                Err(e) => Close::error(e.code(), e.to_string()),
            }),
            Event::Read(ReadOutcome::Stalled) => Answer::closing(Close::error(
                ErrorCode::Timeout,
                format!(
                    "a frame did not arrive whole within {:?} of its first byte",
                    ctx.limits.stall_timeout
                ),
            )),
            Event::Read(ReadOutcome::Closing) => Answer::closing(Close::Clean),
            Event::Read(ReadOutcome::Gone) => break,
        };
        ended |= answer.close.is_some();
        waiting.push_back(answer);
    }
    // The stream is gone, but what was handed to the store is stored (and resent alerts will be
    // DUPLICATEs): count it, unacknowledged.
    for a in waiting {
        if let Some(b) = a.batch {
            if let Ok(stored) = b.pending.await {
                count_stored(&stored, &ctx);
            }
            ctx.store_answered(b.start);
        }
    }
}

/// Counts a batch the store answered for; the alerts stored so far in all.
fn count_stored(stored: &Stored, ctx: &Ctx) -> u64 {
    bump(&ctx.counters.duplicates, stored.duplicates.len() as u64);
    bump(&ctx.counters.alerts_stored, stored.new.len() as u64)
}

/// Batches one stream may have handed to the store and not yet answered. Reading on while a
/// batch waits for its group commit lets the stream's next batch join the next group (instead
/// of being read only after the answer, too late for it, and waiting a commit more); bounded, so
/// that a stream holds at most this many reads beyond its flow-control window.
const MAX_WAITING_BATCHES: usize = 4;

/// What the stream loop woke up for.
enum Event {
    /// The oldest read's batch was answered by the store (none: it had no batch).
    Answered(Option<Result<Stored, StoreError>>),
    Read(ReadOutcome),
}

/// One read's reply to come: the bytes decided when it was read (REJECTs), its batch's store
/// answer to come, and the stream's close if the read ended it.
struct Answer {
    out: BytesMut,
    batch: Option<Submitted>,
    close: Option<Close>,
}

/// A batch handed to the store.
struct Submitted {
    pending: Pending,
    /// When it was handed in (the store-latency histogram).
    start: std::time::Instant,
    /// Its alerts' ids, to REJECT should the store refuse it.
    ids: Vec<u64>,
}

impl Answer {
    fn closing(close: Close) -> Answer {
        Answer {
            out: BytesMut::new(),
            batch: None,
            close: Some(close),
        }
    }

    /// The bytes to send for this read (REJECTs, then its batch's ACKs/DUPLICATEs, or its
    /// REJECTs if the store refused it) and, if the stream must close, why. A close decided when
    /// the read was decoded wins over one a fault injection calls for.
    async fn finish(
        self,
        stored: Option<Result<Stored, StoreError>>,
        st: &StreamState,
        ctx: &Ctx,
    ) -> (BytesMut, Option<Close>) {
        let Answer {
            mut out,
            batch,
            close,
        } = self;
        let (Some(batch), Some(stored)) = (batch, stored) else {
            return (out, close);
        };
        ctx.store_answered(batch.start);
        let fault_close = acknowledge(stored, batch.ids, st, ctx, &mut out).await;
        (out, close.or(fault_close))
    }
}

/// The oldest read's store answer, once it is there (none if that read had no batch).
async fn front_answer(waiting: &mut VecDeque<Answer>) -> Option<Result<Stored, StoreError>> {
    match waiting.front_mut().and_then(|a| a.batch.as_mut()) {
        Some(b) => Some((&mut b.pending).await),
        None => None,
    }
}

/// After a read: starts the clock of a new partial frame (a frame must be whole within the stall
/// timeout of its first byte, however its bytes trickle in) and charges the bytes it holds to the
/// server-wide bound; the close, if the bound is reached.
fn track_partial(st: &mut StreamState, frames_before: u64, ctx: &Ctx) -> Option<Close> {
    let held = st.decoder.buffered();
    if held == 0 {
        st.frame_due = None;
    } else if st.frame_due.is_none() || st.frames != frames_before {
        st.frame_due = Some(Instant::now() + ctx.limits.stall_timeout);
    }
    if st.partial.set(held) {
        return None;
    }
    let n = bump(&ctx.counters.partial_bytes_refusals, 1);
    if sparse(n) {
        tracing::warn!(
            "stream from {} closed: partial frames across the server hold {} bytes (limit; {n}              streams closed so far)",
            st.link.conn.remote_address(),
            ctx.limits.max_partial_bytes
        );
    }
    Some(Close::error(
        ErrorCode::Other,
        "the endpoint holds too many partly received frames; send whole frames",
    ))
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
    /// This many bytes were read and pushed into the decoder.
    Data(usize),
    Finished,
    Stalled,
    Closing,
    Gone,
}

/// Reads the next bytes of the stream into `decoder`; with a partial frame buffered, only until
/// that frame is due.
async fn read_some(
    recv: &mut quinn::RecvStream,
    decoder: &mut Decoder,
    frame_due: Option<Instant>,
    limits: &IngestLimits,
) -> ReadOutcome {
    let read = recv.read_chunk(limits.read_chunk, true);
    let res = match frame_due {
        Some(due) => match tokio::time::timeout_at(due, read).await {
            Ok(r) => r,
            Err(_) => return ReadOutcome::Stalled,
        },
        None => read.await,
    };
    match res {
        Ok(Some(chunk)) => {
            decoder.push(&chunk.bytes);
            ReadOutcome::Data(gather(recv, decoder, chunk.bytes.len(), limits.read_chunk))
        }
        Ok(None) => ReadOutcome::Finished,
        Err(e) => {
            tracing::debug!("stream read ended: {e}");
            ReadOutcome::Gone
        }
    }
}

/// Pushes into `decoder` whatever else the stream has already received, up to `max` bytes in all
/// (`len` read so far), without waiting; returns the bytes read in all. A client's batch arrives
/// in many QUIC packets, and storing (and, with a slow endpoint, acknowledging late) once per
/// packet instead of once per batch multiplied the cost of every commit. Each chunk goes straight
/// into the decoder (gathering them into one buffer first copied every byte twice). An end or
/// error seen here is seen again by the next read.
fn gather(
    recv: &mut quinn::RecvStream,
    decoder: &mut Decoder,
    mut len: usize,
    max: usize,
) -> usize {
    use futures::FutureExt as _;
    while len < max {
        match recv.read_chunk(max - len, true).now_or_never() {
            Some(Ok(Some(c))) => {
                len += c.bytes.len();
                decoder.push(&c.bytes);
            }
            _ => break,
        }
    }
    len
}

/// Handles every complete frame buffered: rejects are encoded at once, accepted alerts are
/// handed to the store as one batch (acknowledged once it answers). Returns the read's reply to
/// come and, if the stream must close, why.
fn process_frames(st: &mut StreamState, ctx: &Ctx) -> Answer {
    let mut out = BytesMut::new();
    // Sized like the last one: a batch grown from empty was reallocated a handful of times.
    let mut batch = Vec::with_capacity(st.last_batch);
    let close = loop {
        match st.decoder.next_frame() {
            Ok(Some(frame)) => {
                st.frames += 1;
                if let Err(c) = handle_frame(frame, st, ctx, &mut batch, &mut out) {
                    break Some(c);
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(Close::error(e.code(), e.to_string())),
        }
    };
    let batch = (!batch.is_empty()).then(|| {
        st.last_batch = batch.len();
        // Kept to answer with REJECTs should the store refuse the batch.
        let ids = batch.iter().map(|h| h.alert_id).collect();
        let start = std::time::Instant::now();
        Submitted {
            pending: ctx.store.submit(st.run.unwrap_or_default(), batch),
            start,
            ids,
        }
    });
    Answer { out, batch, close }
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

/// Acknowledges every alert of a batch the store answered for, only if it stored it — unless a
/// fault is injected instead, in which case the stream close it calls for is returned.
async fn acknowledge(
    stored: Result<Stored, StoreError>,
    ids: Vec<u64>,
    st: &StreamState,
    ctx: &Ctx,
    out: &mut BytesMut,
) -> Option<Close> {
    match stored {
        Ok(stored) => {
            let total = count_stored(&stored, ctx);
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
            log_store_error(&e, ctx);
            let text = format!("storage failure: {e}");
            for id in ids {
                ctx.counters.reject(RejectReason::StorageFailure);
                wire::encode_reject(out, id, RejectReason::StorageFailure.wire(), &text);
            }
            None
        }
    }
}
