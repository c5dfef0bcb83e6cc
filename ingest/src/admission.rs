//! Who gets in, for every protocol (csp-alert and HTTP/3 over QUIC, HTTP/1.1 and HTTP/2 over
//! TCP): the connection limits (all protocols together, and per source IP), QUIC address
//! validation under load, a time bound on every handshake, and the refusal fault.
//!
//! A QUIC Initial's source address can be forged. An endpoint that reserved a connection slot for
//! every Initial let about a thousand forged packets lock every client out until their handshakes
//! timed out. Here a handshake from an address QUIC has not validated holds no connection slot: it
//! counts only in a small pool of unvalidated handshakes, and once that pool is full every further
//! unvalidated Initial is answered with a stateless Retry (nothing is kept; a real client comes
//! back with the Retry token, its address proven; a forged source never does). Connection slots
//! are charged to proven addresses only: at once for a validated Initial or a TCP connection,
//! when its handshake completes for the others.
//!
//! It must never keep state for an unvalidated address beyond that pool, and never let one source
//! IP hold more than its share of slots.

use crate::{Ctx, FAULT_CLOSE_CODE, QuicProto, RefuseHow, bump, sparse};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::task::JoinSet;

/// Application close code of a connection refused after its handshake because the endpoint's
/// connection limits were reached while it was under way.
pub const BUSY_CLOSE_CODE: u32 = 0x10;

/// A connection slot (global and per source IP), released when dropped.
pub(crate) struct Slot {
    ctx: Arc<Ctx>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self
            .ctx
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.ctx.slots.fetch_sub(1, Ordering::AcqRel);
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Which limit refuses a connection.
enum Full {
    Global(usize),
    PerIp(usize),
}

/// Whether `ip` may have one more connection (without charging it).
fn full(ip: IpAddr, ctx: &Ctx, per_ip: &std::collections::HashMap<IpAddr, usize>) -> Option<Full> {
    let open = ctx.slots.load(Ordering::Acquire);
    if open >= ctx.limits.max_connections {
        return Some(Full::Global(open));
    }
    let n = per_ip.get(&ip).copied().unwrap_or(0);
    (n >= ctx.limits.max_connections_per_ip).then_some(Full::PerIp(n))
}

/// Counts and logs (sparsely) a refusal at a limit.
fn refused(ip: IpAddr, why: Full, ctx: &Ctx) {
    match why {
        Full::Global(open) => {
            let n = bump(&ctx.counters.refused_connections, 1);
            if sparse(n) {
                tracing::warn!(
                    "refusing connection from {ip}: {open} connections open (limit; {n} refused \
                     so far)"
                );
            }
        }
        Full::PerIp(open) => {
            let n = bump(&ctx.counters.refused_per_ip, 1);
            if sparse(n) {
                tracing::warn!(
                    "refusing connection from {ip}: it has {open} connections open (per-IP \
                     limit; {n} refused so far)"
                );
            }
        }
    }
}

/// Charges a connection slot to `ip` (a proven address), or refuses at a limit (counted).
pub(crate) fn charge(ip: IpAddr, ctx: &Arc<Ctx>) -> Option<Slot> {
    let mut m = ctx
        .per_ip
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(why) = full(ip, ctx, &m) {
        drop(m);
        refused(ip, why, ctx);
        return None;
    }
    *m.entry(ip).or_insert(0) += 1;
    ctx.slots.fetch_add(1, Ordering::AcqRel);
    Some(Slot {
        ctx: ctx.clone(),
        ip,
    })
}

/// The refusal fault for the next connection attempt, if it is to be refused.
pub(crate) fn fault_refusal(ctx: &Ctx) -> Option<RefuseHow> {
    let attempt = ctx.counters.attempts.fetch_add(1, Ordering::Relaxed);
    let refusal = ctx.refusal(attempt);
    if refusal.is_some() {
        bump(&ctx.counters.faults_injected, 1);
    }
    refusal
}

/// A place in the pool of handshakes from unvalidated addresses, released when dropped.
struct Unvalidated(Arc<Ctx>);

impl Drop for Unvalidated {
    fn drop(&mut self) {
        self.0.unvalidated.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves a QUIC endpoint's connection attempts until the endpoint closes or the server starts
/// closing; then waits (bounded) for its connections to finish gracefully.
pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, ctx: Arc<Ctx>, proto: QuicProto) {
    let mut conns = JoinSet::new();
    let mut closing = ctx.closing.clone();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if let Some(task) = admit(incoming, &ctx, proto) {
                    conns.spawn(task);
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = crate::until_closing(&mut closing) => break,
        }
    }
    let _ = tokio::time::timeout(crate::SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.shutdown().await;
}

/// Gates a QUIC connection attempt; returns the task that serves it if it is let in.
fn admit(
    incoming: quinn::Incoming,
    ctx: &Arc<Ctx>,
    proto: QuicProto,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    let ip = incoming.remote_address().ip();
    let validated = incoming.remote_address_validated();
    let mut pooled = None;
    let mut slot = None;
    if validated {
        let Some(s) = charge(ip, ctx) else {
            incoming.refuse();
            return None;
        };
        slot = Some(s);
    } else {
        // Nothing is charged to an address nobody has proven; past the pool, prove it first.
        let in_pool = ctx.unvalidated.fetch_add(1, Ordering::AcqRel);
        let guard = Unvalidated(ctx.clone());
        if in_pool >= ctx.limits.max_unvalidated_handshakes && incoming.may_retry() {
            drop(guard);
            let n = bump(&ctx.counters.retries, 1);
            if sparse(n) {
                tracing::info!(
                    "under load: answering Initials from unvalidated addresses with Retry ({n} \
                     so far)"
                );
            }
            let _ = incoming.retry();
            return None;
        }
        // Refused now, cleanly, if the limits are already reached (nothing charged yet).
        let why = {
            let m = ctx
                .per_ip
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            full(ip, ctx, &m)
        };
        if let Some(why) = why {
            refused(ip, why, ctx);
            incoming.refuse();
            return None;
        }
        pooled = Some(guard);
    }
    let refusal = fault_refusal(ctx);
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
        let close_at_once = refusal == Some(RefuseHow::Close);
        let connecting = match connecting {
            Ok(c) => c,
            Err(e) => {
                let n = bump(&ctx.counters.handshake_failures, 1);
                if sparse(n) {
                    tracing::warn!("connection from {ip} refused: {e}");
                }
                return;
            }
        };
        let Some(conn) = establish(connecting, close_at_once, &ctx).await else {
            return;
        };
        drop(pooled);
        // The handshake proved the address: charge its slot now.
        let _slot = match slot {
            Some(s) => s,
            None => match charge(ip, &ctx) {
                Some(s) => s,
                None => {
                    conn.close(
                        quinn::VarInt::from_u32(BUSY_CLOSE_CODE),
                        b"connection limit reached",
                    );
                    return;
                }
            },
        };
        match proto {
            QuicProto::CspAlert => crate::csp::serve_connection(conn, ctx).await,
            QuicProto::H3 => crate::http::serve_h3(conn, ctx).await,
        }
    })
}

/// Completes a QUIC handshake within the handshake timeout (a failure is counted and logged
/// sparsely) and applies the close-at-once fault; the connection, if it is to be served. Shared
/// by csp-alert and HTTP/3.
async fn establish(
    connecting: quinn::Connecting,
    close_at_once: bool,
    ctx: &Ctx,
) -> Option<quinn::Connection> {
    let remote = connecting.remote_address();
    let done = tokio::time::timeout(ctx.limits.handshake_timeout, connecting).await;
    let conn = match done {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
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
        Err(_) => {
            // Dropping the handshake drops its state: a forged Initial costs no more than this.
            let n = bump(&ctx.counters.handshake_failures, 1);
            if sparse(n) {
                tracing::warn!(
                    "handshake with {remote} did not complete within {:?} ({n} failed handshakes \
                     so far)",
                    ctx.limits.handshake_timeout
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
