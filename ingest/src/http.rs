//! The reference endpoint's HTTP front: HTTP/1.1 and HTTP/2 over TLS on a TCP port (hyper; ALPN
//! and the connection preface choose), HTTP/3 on the same port number over UDP (h3 over quinn),
//! advertised to TCP clients with `Alt-Svc`.
//!
//! One POST carries one alert (JSON or DUIS-shaped XML, as the harness sends them; docs/http.md).
//! It goes through the same write-ahead store, the same de-duplication by (run, alert), the same
//! validation, limits and fault injection as `csp-alert`, so a fault test reconciles the
//! endpoint's ledger with the harness's exactly over HTTP too. The protocol-neutral decision is
//! [`decide`]; the two fronts only read bodies and write answers.
//!
//! Answers: 201 stored; 200 with `Idempotent-Replayed: true` stored before (a resend); 401 token
//! refused; 400 unparsable; 413 too large; 422 refused (unknown code or region, policy); 405 not a
//! POST; 507 could not store (the client retries). It must never panic on anything a peer sends.

use crate::{
    BadReplyKind, Ctx, FAULT_CLOSE_CODE, IngestError, QuicProto, RefuseHow, admission, bump,
    log_store_error, sparse, validate,
};
use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use ledger::{AlertCode, Region};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use wire::{AlertHeader, RejectReason, RunId};

/// Per-connection state for the faults that act on a connection.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Alerts acknowledged on this connection.
    acked: AtomicU64,
    /// Signalled to drop the connection at once (fault injection).
    kill: Notify,
}

/// What the fault injection does to an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// No answer: the connection is dropped (stored, never acknowledged).
    KillConnection,
    /// The answer's head is sent, then its body is cut off (a reset mid-body).
    CutBody,
}

/// The answer to one request.
#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    fault: Option<Fault>,
}

impl Outcome {
    fn text(status: StatusCode, text: impl Into<String>) -> Self {
        let mut body = text.into();
        body.push('\n');
        Outcome {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            body: Bytes::from(body),
            fault: None,
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Stalled,
    Broken(String),
}

/// The alert a request carries.
#[derive(Debug)]
struct Parsed {
    run: RunId,
    header: AlertHeader,
}

/// The fields of the JSON body the reference endpoint needs (others are ignored).
#[derive(serde::Deserialize)]
struct JsonIn {
    run_id: String,
    alert_id: u64,
    alert_code: String,
    device_id: String,
    region: String,
    event_ms: u64,
    seq: u32,
}

/// The largest request body read: the alert's own limit plus room for the JSON/XML around it.
fn max_body(ctx: &Ctx) -> usize {
    ctx.limits.max_payload + 4096
}

fn code_wire(s: &str) -> u16 {
    [
        AlertCode::Ad1,
        AlertCode::Restored8F35,
        AlertCode::Restored8F36,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
    .map_or(0, AlertCode::wire)
}

fn region_wire(s: &str) -> u8 {
    Region::wire_code_of(s).unwrap_or(0)
}

fn device(s: &str) -> Option<u64> {
    let hex: String = s.chars().filter(|c| *c != '-' && *c != ':').collect();
    u64::from_str_radix(&hex, 16).ok()
}

/// Parses the alert of a JSON or DUIS-shaped body (unknown codes and regions parse, as wire value
/// 0, so that validation rejects them like `csp-alert` does).
fn parse_alert(content_type: &str, body: &[u8]) -> Result<Parsed, String> {
    if content_type.contains("xml") {
        return parse_duis(body);
    }
    let j: JsonIn = serde_json::from_slice(body).map_err(|e| format!("not an alert: {e}"))?;
    Ok(Parsed {
        run: j.run_id.parse().map_err(|e| format!("run_id: {e}"))?,
        header: AlertHeader {
            alert_id: j.alert_id,
            code: code_wire(&j.alert_code),
            device_id: device(&j.device_id).ok_or("device_id is not an EUI-64")?,
            region: region_wire(&j.region),
            event_ms: j.event_ms,
            seq: j.seq,
        },
    })
}

/// Reads the harness's `csp:` elements of a DUIS-shaped alert.
fn parse_duis(body: &[u8]) -> Result<Parsed, String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(body);
    let mut current: Option<String> = None;
    let mut fields: std::collections::HashMap<String, String> = Default::default();
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                current = name.strip_prefix("csp:").map(str::to_string);
            }
            Ok(Event::Text(t)) => {
                if let Some(name) = &current {
                    let text = t.decode().map_err(|e| format!("XML text: {e}"))?;
                    let text =
                        quick_xml::escape::unescape(&text).map_err(|e| format!("XML text: {e}"))?;
                    fields.insert(name.clone(), text.trim().to_string());
                }
            }
            Ok(Event::End(_)) => current = None,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("not well-formed XML: {e}")),
        }
        buf.clear();
    }
    let get = |k: &str| {
        fields
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("csp:{k} missing"))
    };
    let num = |k: &str| -> Result<u64, String> {
        get(k)?
            .parse()
            .map_err(|_| format!("csp:{k} is not a number"))
    };
    Ok(Parsed {
        run: get("RunID")?
            .parse()
            .map_err(|e| format!("csp:RunID: {e}"))?,
        header: AlertHeader {
            alert_id: num("AlertID")?,
            code: code_wire(get("AlertCode")?),
            device_id: device(get("DeviceID")?).ok_or("csp:DeviceID is not an EUI-64")?,
            region: region_wire(get("Region")?),
            event_ms: num("EventMs")?,
            seq: u32::try_from(num("Seq")?).map_err(|_| "csp:Seq out of range")?,
        },
    })
}

/// The bearer token of an `Authorization` header (empty if none).
fn bearer(headers: &HeaderMap) -> &[u8] {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default()
}

/// The protocol-neutral answer to one request: authentication, validation, the write-ahead
/// store, de-duplication and the faults, exactly as `csp-alert` does them.
async fn decide(
    ctx: &Ctx,
    conn: &ConnState,
    from: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
    body: Result<Bytes, BodyError>,
) -> Outcome {
    bump(&ctx.counters.http_requests, 1);
    if ctx.check_token(bearer(headers), from).is_err() {
        let mut o = Outcome::text(StatusCode::UNAUTHORIZED, "missing or refused bearer token");
        o.headers.push((
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        ));
        return o;
    }
    if method == Method::OPTIONS {
        let mut o = Outcome::text(StatusCode::NO_CONTENT, "");
        o.body = Bytes::new();
        o.headers.push((
            http::header::ALLOW,
            HeaderValue::from_static("POST, OPTIONS"),
        ));
        return o;
    }
    if method != Method::POST {
        return Outcome::text(StatusCode::METHOD_NOT_ALLOWED, "alerts are POSTed");
    }
    let body = match body {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            ctx.counters.reject(RejectReason::PayloadTooLarge);
            return Outcome::text(StatusCode::PAYLOAD_TOO_LARGE, "body over the limit");
        }
        Err(BodyError::Stalled) => {
            bump(&ctx.counters.stream_errors, 1);
            return Outcome::text(StatusCode::REQUEST_TIMEOUT, "body stalled");
        }
        Err(BodyError::Broken(e)) => {
            bump(&ctx.counters.stream_errors, 1);
            return Outcome::text(StatusCode::BAD_REQUEST, format!("body: {e}"));
        }
    };
    bump(&ctx.counters.bytes_received, body.len() as u64);
    ctx.wait_while_stalled().await;
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let parsed = match parse_alert(content_type, &body) {
        Ok(p) => p,
        Err(e) => {
            bump(&ctx.counters.malformed, 1);
            return Outcome::text(StatusCode::BAD_REQUEST, e);
        }
    };
    let key = format!("{}-{}", parsed.run, parsed.header.alert_id);
    match headers.get("idempotency-key").map(HeaderValue::as_bytes) {
        Some(k) if k == key.as_bytes() => {}
        _ => {
            bump(&ctx.counters.malformed, 1);
            return Outcome::text(
                StatusCode::BAD_REQUEST,
                format!("Idempotency-Key must be {key} (run id - alert id)"),
            );
        }
    }
    // The body is at most max_payload + 4 KiB; the alert itself is the payload's stand-in here.
    if let Err((reason, text)) = validate(&parsed.header, body.len().saturating_sub(4096), ctx) {
        ctx.counters.reject(reason);
        let status = match reason {
            RejectReason::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        return Outcome::text(status, text);
    }
    let stored = match ctx.store_timed(parsed.run, vec![parsed.header]).await {
        Ok(s) => s,
        Err(e) => {
            log_store_error(&e, ctx);
            return Outcome::text(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("storage failure: {e}"),
            );
        }
    };
    let duplicate = stored.new.is_empty();
    let total = bump(&ctx.counters.alerts_stored, stored.new.len() as u64);
    bump(&ctx.counters.duplicates, stored.duplicates.len() as u64);
    if !ctx.behaviour.ack_delay.is_zero() {
        tokio::time::sleep(ctx.behaviour.ack_delay).await;
    }
    ctx.maybe_start_stall(total);
    if let Some(n) = ctx.behaviour.close_after
        && conn.acked.load(Ordering::Relaxed) >= n
    {
        // Stored, never acknowledged: the client must resend on a new connection.
        bump(&ctx.counters.faults_injected, 1);
        return Outcome {
            fault: Some(Fault::KillConnection),
            ..Outcome::text(StatusCode::INTERNAL_SERVER_ERROR, "")
        };
    }
    let batch_no = bump(&ctx.counters.batches, 1);
    let bad = ctx
        .behaviour
        .bad_replies
        .filter(|b| batch_no.is_multiple_of(b.every.max(1)))
        .map(|b| b.kind);
    match bad {
        Some(BadReplyKind::Error) => {
            bump(&ctx.counters.faults_injected, 1);
            return Outcome::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "fault injection: internal error",
            );
        }
        Some(BadReplyKind::Garbage) => {
            bump(&ctx.counters.faults_injected, 1);
            return Outcome {
                fault: Some(Fault::CutBody),
                ..Outcome::text(StatusCode::CREATED, "fault injection: this body is cut off")
            };
        }
        // HTTP answers belong to their request: there are no unknown ids to acknowledge.
        Some(BadReplyKind::UnknownIds) | None => {}
    }
    bump(&ctx.counters.acked, 1);
    conn.acked.fetch_add(1, Ordering::Relaxed);
    if duplicate {
        let mut o = Outcome::text(StatusCode::OK, "stored before");
        o.headers.push((
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        ));
        o
    } else {
        Outcome::text(StatusCode::CREATED, "stored")
    }
}

type RespBody = BoxBody<Bytes, std::io::Error>;

fn hyper_response(o: Outcome, alt_svc: &HeaderValue) -> Response<RespBody> {
    let body: RespBody = match o.fault {
        Some(Fault::CutBody) => {
            let half = o.body.slice(..o.body.len() / 2);
            let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
                Ok(Frame::data(half)),
                Err(std::io::Error::other("fault injection: body cut off")),
            ];
            BoxBody::new(StreamBody::new(futures::stream::iter(frames)))
        }
        _ => BoxBody::new(Full::new(o.body.clone()).map_err(|never| match never {})),
    };
    let mut r = Response::new(body);
    *r.status_mut() = o.status;
    let h = r.headers_mut();
    for (n, v) in o.headers {
        h.insert(n, v);
    }
    if o.fault == Some(Fault::CutBody) {
        h.insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from(o.body.len()),
        );
    }
    h.insert(http::header::ALT_SVC, alt_svc.clone());
    r
}

/// A running HTTP front.
#[derive(Debug)]
pub(crate) struct HttpFront {
    /// The TCP and UDP port's address.
    pub(crate) addr: SocketAddr,
    tcp_task: JoinHandle<()>,
    h3: quinn::Endpoint,
    h3_task: JoinHandle<()>,
}

impl HttpFront {
    pub(crate) async fn shutdown(self) {
        self.tcp_task.abort();
        let _ = self.tcp_task.await;
        self.h3.close(quinn::VarInt::from_u32(0x100), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.h3.wait_idle()).await;
        self.h3_task.abort();
        let _ = self.h3_task.await;
    }
}

/// Binds TCP `listen` and UDP on the same port (port 0: a free one, the same number for both)
/// and serves them.
pub(crate) async fn start(
    listen: SocketAddr,
    tls: &rustls::ServerConfig,
    endpoint_config: quinn::EndpointConfig,
    h3_transport: Arc<quinn::TransportConfig>,
    ctx: Arc<Ctx>,
) -> Result<HttpFront, IngestError> {
    let bind_err = |addr, source| IngestError::Bind { addr, source };
    let mut attempts = 0;
    let (tcp, udp) = loop {
        let tcp = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| bind_err(listen, e))?;
        let addr = tcp.local_addr().map_err(|e| bind_err(listen, e))?;
        match tls::bind_udp(addr) {
            Ok(udp) => break (tcp, udp),
            // With port 0 the TCP port's number may be taken on UDP: try another.
            Err(_) if listen.port() == 0 && attempts < 20 => attempts += 1,
            Err(e) => return Err(bind_err(addr, e)),
        }
    };
    let addr = tcp.local_addr().map_err(|e| bind_err(listen, e))?;
    let mut tcp_tls = tls.clone();
    tcp_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut wrong = tls.clone();
    wrong.alpn_protocols = vec![b"csp-alert/0".to_vec()];
    let acceptors = (
        tokio_rustls::TlsAcceptor::from(Arc::new(tcp_tls)),
        tokio_rustls::TlsAcceptor::from(Arc::new(wrong)),
    );
    let mut h3_tls = tls.clone();
    h3_tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(h3_tls)
        .map_err(|e| IngestError::Quic(e.to_string()))?;
    let mut h3_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    h3_config.transport_config(h3_transport);
    let h3 = quinn::Endpoint::new(
        endpoint_config,
        Some(h3_config),
        udp,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| bind_err(addr, e))?;
    let alt_svc = HeaderValue::from_str(&format!("h3=\":{}\"; ma=3600", addr.port()))
        .unwrap_or_else(|_| HeaderValue::from_static("clear"));
    let tcp_task = tokio::spawn(tcp_accept_loop(tcp, acceptors, ctx.clone(), alt_svc));
    let h3_task = tokio::spawn(admission::accept_loop(h3.clone(), ctx, QuicProto::H3));
    Ok(HttpFront {
        addr,
        tcp_task,
        h3,
        h3_task,
    })
}

async fn tcp_accept_loop(
    listener: tokio::net::TcpListener,
    acceptors: (tokio_rustls::TlsAcceptor, tokio_rustls::TlsAcceptor),
    ctx: Arc<Ctx>,
    alt_svc: HeaderValue,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, from)) = accepted else { continue };
                let Some(slot) = admission::charge(from.ip(), &ctx) else {
                    continue;
                };
                let refusal = admission::fault_refusal(&ctx);
                if refusal == Some(RefuseHow::Refuse) {
                    continue;
                }
                let acceptor = if refusal == Some(RefuseHow::WrongAlpn) {
                    acceptors.1.clone()
                } else {
                    acceptors.0.clone()
                };
                let (ctx, alt_svc) = (ctx.clone(), alt_svc.clone());
                let close_at_once = refusal == Some(RefuseHow::Close);
                conns.spawn(async move {
                    let _slot = slot;
                    serve_tcp(tcp, from, acceptor, close_at_once, ctx, alt_svc).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_tcp(
    tcp: tokio::net::TcpStream,
    from: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    close_at_once: bool,
    ctx: Arc<Ctx>,
    alt_svc: HeaderValue,
) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::time::timeout(ctx.limits.handshake_timeout, acceptor.accept(tcp)).await;
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let n = bump(&ctx.counters.handshake_failures, 1);
            if sparse(n) {
                tracing::warn!("TLS handshake with {from} failed: {e} ({n} so far)");
            }
            return;
        }
        Err(_) => {
            bump(&ctx.counters.handshake_failures, 1);
            return;
        }
    };
    if close_at_once {
        return;
    }
    bump(&ctx.counters.connections, 1);
    bump(&ctx.counters.active_connections, 1);
    let conn = Arc::new(ConnState::default());
    let service = {
        let (ctx, conn) = (ctx.clone(), conn.clone());
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let (ctx, conn, alt_svc) = (ctx.clone(), conn.clone(), alt_svc.clone());
            async move {
                let (parts, body) = req.into_parts();
                let limit = max_body(&ctx);
                let read = tokio::time::timeout(
                    ctx.limits.stall_timeout,
                    Limited::new(body, limit).collect(),
                )
                .await;
                let body = match read {
                    Err(_) => Err(BodyError::Stalled),
                    Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                        Err(BodyError::TooLarge)
                    }
                    Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
                    Ok(Ok(c)) => Ok(c.to_bytes()),
                };
                let o = decide(&ctx, &conn, from, &parts.method, &parts.headers, body).await;
                if o.fault == Some(Fault::KillConnection) {
                    conn.kill.notify_one();
                    // Never answered: the connection goes first.
                    std::future::pending::<()>().await;
                }
                Ok::<_, std::convert::Infallible>(hyper_response(o, &alt_svc))
            }
        })
    };
    // The same limits as csp-alert: concurrent streams per connection, a bound on a request
    // head that stalls, and PINGs that drop an HTTP/2 peer that stopped answering.
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.limits.stall_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(ctx.limits.max_streams_per_connection)
        .keep_alive_interval(Some(ctx.limits.idle_timeout / 3))
        .keep_alive_timeout(ctx.limits.idle_timeout);
    let serve = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        r = serve => {
            if let Err(e) = r {
                tracing::debug!("HTTP connection from {from} ended: {e}");
            }
        }
        _ = conn.kill.notified() => {
            tracing::debug!("fault injection: dropping the HTTP connection from {from}");
        }
    }
    ctx.counters
        .active_connections
        .fetch_sub(1, Ordering::Relaxed);
}

/// Serves one HTTP/3 connection.
pub(crate) async fn serve_h3(conn: quinn::Connection, ctx: Arc<Ctx>) {
    let remote = conn.remote_address();
    let mut h3c = match h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(
        conn.clone(),
    ))
    .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("HTTP/3 set-up with {remote} failed: {e}");
            return;
        }
    };
    bump(&ctx.counters.connections, 1);
    bump(&ctx.counters.active_connections, 1);
    let state = Arc::new(ConnState::default());
    let mut requests = JoinSet::new();
    loop {
        tokio::select! {
            r = h3c.accept() => match r {
                Ok(Some(resolver)) => {
                    let (ctx, state) = (ctx.clone(), state.clone());
                    requests.spawn(async move {
                        if let Ok((req, stream)) = resolver.resolve_request().await {
                            serve_h3_request(req, stream, remote, &ctx, &state).await;
                        }
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("HTTP/3 connection from {remote} ended: {e}");
                    break;
                }
            },
            _ = state.kill.notified() => {
                conn.close(quinn::VarInt::from_u32(FAULT_CLOSE_CODE), b"fault injection: abrupt close");
                break;
            }
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
        }
    }
    requests.shutdown().await;
    ctx.counters
        .active_connections
        .fetch_sub(1, Ordering::Relaxed);
}

async fn serve_h3_request(
    req: Request<()>,
    mut stream: h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
    from: SocketAddr,
    ctx: &Ctx,
    conn: &ConnState,
) {
    let limit = max_body(ctx);
    let read = async {
        let mut body = bytes::BytesMut::new();
        while let Some(mut chunk) = stream
            .recv_data()
            .await
            .map_err(|e| BodyError::Broken(e.to_string()))?
        {
            if body.len() + chunk.remaining() > limit {
                return Err(BodyError::TooLarge);
            }
            while chunk.has_remaining() {
                let c = chunk.chunk();
                body.extend_from_slice(c);
                let n = c.len();
                chunk.advance(n);
            }
        }
        Ok(body.freeze())
    };
    let body = tokio::time::timeout(ctx.limits.stall_timeout, read)
        .await
        .unwrap_or(Err(BodyError::Stalled));
    let o = decide(ctx, conn, from, req.method(), req.headers(), body).await;
    if o.fault == Some(Fault::KillConnection) {
        conn.kill.notify_one();
        return;
    }
    let mut resp = Response::new(());
    *resp.status_mut() = o.status;
    for (n, v) in o.headers {
        resp.headers_mut().insert(n, v);
    }
    if stream.send_response(resp).await.is_err() {
        return;
    }
    if o.fault == Some(Fault::CutBody) {
        let _ = stream.send_data(o.body.slice(..o.body.len() / 2)).await;
        stream.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
        return;
    }
    if !o.body.is_empty() && stream.send_data(o.body).await.is_err() {
        return;
    }
    let _ = stream.finish().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn json_and_duis_bodies_parse_to_the_same_alert() {
        let json = br#"{"run_id":"abababababababababababababababab","alert_id":85,
            "alert_code":"8F36","device_id":"00-AB-CD-EF-00-01-23-45","region":"central-south",
            "event_ms":180000,"seq":2,"extra":"ignored"}"#;
        let j = parse_alert("application/json", json).unwrap();
        let xml = br#"<?xml version="1.0"?><sr:ResponseMessage xmlns:sr="x" xmlns:csp="y">
            <csp:Alert><csp:RunID>abababababababababababababababab</csp:RunID>
            <csp:AlertID>85</csp:AlertID><csp:AlertCode>8F36</csp:AlertCode>
            <csp:DeviceID>00-AB-CD-EF-00-01-23-45</csp:DeviceID>
            <csp:Region>central-south</csp:Region><csp:EventMs>180000</csp:EventMs>
            <csp:Seq>2</csp:Seq></csp:Alert></sr:ResponseMessage>"#;
        let x = parse_alert("application/xml", xml).unwrap();
        assert_eq!(j.run, x.run);
        assert_eq!(j.header, x.header);
        assert_eq!(j.header.device_id, 0x00AB_CDEF_0001_2345);
        assert_eq!(j.header.code, 0x8F36);
        assert!(parse_alert("application/json", b"{").is_err());
        assert!(parse_alert("application/xml", b"<a><csp:AlertID>1</csp:AlertID></a>").is_err());
        // Unknown codes parse (as 0) so that validation rejects them by name.
        let odd = br#"{"run_id":"abababababababababababababababab","alert_id":1,
            "alert_code":"FFFF","device_id":"01","region":"north","event_ms":0,"seq":1}"#;
        assert_eq!(parse_alert("application/json", odd).unwrap().header.code, 0);
    }
}
