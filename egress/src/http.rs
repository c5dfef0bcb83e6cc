//! HTTP/1.1, HTTP/2 and HTTP/3 as [`Transport`]s: one POST per alert, its answer mapped onto the
//! engine's [`Verdict`]s (docs/http.md, "What an answer means").
//!
//! HTTP/1.1 uses hyper and HTTP/2 hyper's own HTTP/2 engine, the `h2` crate, directly (hyper's
//! HTTP/2 client spawns a task per request with a body, which halved the request rate), both
//! over TCP (rustls for `https`, ALPN choosing `h2` or `http/1.1` unless one is forced); HTTP/3
//! uses the `h3` crates over quinn. No HTTP is written by hand here: this module builds
//! requests, reads statuses and headers, and says what they mean.
//!
//! - HTTP/1.1: one request at a time per connection (no pipelining), so a connection is one lane
//!   with one alert in flight; concurrency comes from the number of connections (keep-alive: each
//!   connection is reused for request after request).
//! - HTTP/2 and HTTP/3: a connection carries lanes of concurrent requests (multiplexed streams),
//!   bounded by the engine's in-flight limit and the server's stream limit.
//!
//! Every request carries `Idempotency-Key: <run id>-<alert id>` (the same for every resend) and
//! the user's extra headers.

use crate::payload::Payload;
use crate::quic::{self, QuicOptions, QuicSetupError};
use crate::transport::{ConnectError, Lane, LaneEnd, Reply, Transport, Verdict};
use bytes::{Buf, Bytes};
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use ledger::AlertId;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tls::{ClientIdentity, TrustSource};
use virtual_hubs::Outbound;

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// `https`: let ALPN choose (`h2` preferred, then `http/1.1`); `http`: HTTP/1.1.
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (`http`: prior knowledge, as `curl --http2-prior-knowledge`).
    Http2,
    /// HTTP/3 over QUIC.
    Http3,
}

/// The header a server sets on the answer to a request it recognised by its `Idempotency-Key` as
/// a replay of one it had already processed (as Stripe and others do); the harness counts such an
/// answer as an endpoint-reported duplicate.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Where and how to POST alerts.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The address to connect to (TCP, or UDP for HTTP/3).
    pub addr: SocketAddr,
    /// The request URI (scheme, authority, path and query), e.g. `https://ingest:8443/alerts`.
    pub uri: Uri,
    /// `Some`: TLS with this trust and optional client certificate; `None`: plain `http`.
    pub tls: Option<(TrustSource, Option<ClientIdentity>)>,
    /// Name the server's certificate must be valid for.
    pub server_name: String,
    /// Version to speak.
    pub version: HttpVersion,
    /// Real time allowed for one connection attempt (TCP/QUIC and TLS handshakes).
    pub connect_timeout: Duration,
    /// Real time allowed for one request's answer; past it the alert is sent again.
    pub request_timeout: Duration,
    /// Statuses that mean "stored" (default 200, 201, 202, 204).
    pub accept: Vec<u16>,
    /// Extra headers on every request (the token's `Authorization`, the user's `--header`s).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How bodies are rendered.
    pub payload: Payload,
    /// A connection silent this long is lost (HTTP/2: PING unanswered; HTTP/3: QUIC idle
    /// timeout), so a crashed endpoint is noticed and the alerts are sent elsewhere.
    pub idle_timeout: Duration,
    /// Keep-alive interval (HTTP/2 PING, QUIC keep-alive), well below `idle_timeout`.
    pub keep_alive: Duration,
    /// HTTP/3: local UDP address.
    pub local_addr: Option<SocketAddr>,
}

/// The default `--accept` list.
pub const DEFAULT_ACCEPT: [u16; 4] = [200, 201, 202, 204];

/// What one answer means (docs/http.md): a status in `accept` is delivered (a replay the server
/// flagged is a duplicate it reported); 401/403 refused credentials (fatal); 429/503 back-pressure
/// with the server's `Retry-After`; other 4xx rejected for good; 5xx retried; anything else (a
/// redirect, a 2xx not accepted) rejected with its status.
pub fn verdict(status: u16, headers: &HeaderMap, accept: &[u16]) -> Verdict {
    if accept.contains(&status) {
        let replayed = headers
            .get(REPLAYED_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        return if replayed {
            Verdict::AckedDuplicate
        } else {
            Verdict::Acked
        };
    }
    match status {
        401 | 403 => Verdict::AuthRefused(format!(
            "HTTP {status} {}: the endpoint refused this client's credentials",
            reason(status)
        )),
        429 | 503 => Verdict::RetryAfter(retry_after(headers, SystemTime::now())),
        400..=499 => Verdict::Rejected(format!("http {status}")),
        500..=599 => Verdict::Retry(format!("HTTP {status} {}", reason(status))),
        _ => Verdict::Rejected(format!("http {status} (not in --accept)")),
    }
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// `Retry-After` as a delay from `now`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); a date
/// in the past is no delay; an unparsable value is treated as absent.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What a request came back with.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
}

/// Why a request got no answer.
#[derive(Debug)]
enum ExchangeError {
    /// The connection is gone.
    ConnectionLost(String),
    /// This request failed (stream reset, body cut off, timeout) on a connection that lives on.
    Request(String),
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The part of a connection requests are sent on.
#[derive(Clone)]
enum Sender {
    H1(Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>),
    H2(h2::client::SendRequest<Bytes>),
    H3(h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>),
}

impl Sender {
    fn is_h1(&self) -> bool {
        matches!(self, Sender::H1(_))
    }
}

/// Why the connection ended, once it has (set by its driver task).
#[derive(Debug, Default)]
struct Closed(Mutex<Option<String>>);

impl Closed {
    fn set(&self, why: String) {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.get_or_insert(why);
    }

    fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// An open HTTP connection.
pub struct HttpConn {
    sender: Sender,
    closed: Arc<Closed>,
    /// The QUIC connection under HTTP/3 (to close it and to see it lost).
    quic: Option<quinn::Connection>,
    /// The driver task (HTTP/1.1, HTTP/2: hyper's connection; HTTP/3: h3's).
    driver: tokio::task::AbortHandle,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// HTTP/1.1, HTTP/2 or HTTP/3 to one URL.
pub struct HttpTransport {
    opts: Arc<HttpOptions>,
    /// The parts every request shares, built once.
    prepared: Arc<Prepared>,
    /// TLS client for `https` over TCP.
    tls: Option<tokio_rustls::TlsConnector>,
    /// QUIC client endpoint for HTTP/3.
    quic: Option<quinn::Endpoint>,
    /// The version ALPN chose on the last connection (`https` without a forced version).
    negotiated: Mutex<Option<&'static str>>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("uri", &self.opts.uri)
            .field("version", &self.opts.version)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// Builds the TLS (or QUIC) client; no connection yet.
    pub fn new(opts: HttpOptions) -> Result<Self, QuicSetupError> {
        let mut t = HttpTransport {
            tls: None,
            quic: None,
            prepared: Arc::new(Prepared::new(&opts)),
            opts: Arc::new(opts),
            negotiated: Mutex::new(None),
        };
        let o = &t.opts;
        match (o.version, &o.tls) {
            (HttpVersion::Http3, tls) => {
                let Some((trust, identity)) = tls else {
                    return Err(QuicSetupError::Config(
                        "HTTP/3 always runs over TLS: use https:// or h3://".into(),
                    ));
                };
                let q = QuicOptions {
                    endpoint: o.addr,
                    server_name: o.server_name.clone(),
                    trust: trust.clone(),
                    identity: identity.clone(),
                    connect_timeout: o.connect_timeout,
                    idle_timeout: o.idle_timeout,
                    keep_alive: o.keep_alive,
                    auth_token: None,
                    local_addr: o.local_addr,
                    run_id: o.payload.run_id(),
                };
                t.quic = Some(quic::client_endpoint(&q, &[b"h3"])?);
            }
            (v, Some((trust, identity))) => {
                let alpn: &[&[u8]] = match v {
                    HttpVersion::Http1 => &[b"http/1.1"],
                    HttpVersion::Http2 => &[b"h2"],
                    _ => &[b"h2", b"http/1.1"],
                };
                let cfg = tls::client_config_for(
                    trust,
                    identity.as_ref(),
                    alpn,
                    tls::Versions::Tls12And13,
                )?;
                t.tls = Some(tokio_rustls::TlsConnector::from(Arc::new(cfg)));
            }
            (_, None) => {}
        }
        Ok(t)
    }

    async fn connect_tcp(&self) -> Result<HttpConn, ConnectError> {
        let o = &self.opts;
        let timeout = o.connect_timeout;
        let timed_out = || ConnectError::Timeout {
            what: "TCP/TLS",
            ms: timeout.as_millis(),
        };
        let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(o.addr))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => ConnectError::NotListening(e.to_string()),
                _ => ConnectError::Other(e.to_string()),
            })?;
        let _ = tcp.set_nodelay(true);
        let closed = Arc::new(Closed::default());
        let Some(tls) = &self.tls else {
            return handshake(tcp, o.version == HttpVersion::Http2, o, closed).await;
        };
        let name = rustls::pki_types::ServerName::try_from(o.server_name.clone())
            .map_err(|e| ConnectError::Other(format!("server name {}: {e}", o.server_name)))?;
        let stream = tokio::time::timeout(timeout, tls.connect(name, tcp))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| classify_io(&e))?;
        let h2 = match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") | Some(b"http/1.1") | None if o.version == HttpVersion::Auto => {
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                *self
                    .negotiated
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(if h2 {
                    "HTTP/2 (ALPN)"
                } else {
                    "HTTP/1.1 (ALPN)"
                });
                h2
            }
            Some(b"h2") => true,
            Some(b"http/1.1") | None if o.version != HttpVersion::Http2 => false,
            other => {
                return Err(ConnectError::Alpn(format!(
                    "asked for HTTP/2, the endpoint chose {}",
                    other.map_or("no protocol".into(), |p| String::from_utf8_lossy(p)
                        .into_owned())
                )));
            }
        };
        handshake(stream, h2, o, closed).await
    }

    async fn connect_h3(&self, endpoint: &quinn::Endpoint) -> Result<HttpConn, ConnectError> {
        let o = &self.opts;
        let conn = quic::connect(endpoint, o.addr, &o.server_name, o.connect_timeout).await?;
        let (mut driver, sender) = tokio::time::timeout(
            o.connect_timeout,
            h3::client::new(h3_quinn::Connection::new(conn.clone())),
        )
        .await
        .map_err(|_| ConnectError::Timeout {
            what: "HTTP/3",
            ms: o.connect_timeout.as_millis(),
        })?
        .map_err(|e| ConnectError::Other(format!("HTTP/3 set-up: {e}")))?;
        let closed = Arc::new(Closed::default());
        let c = closed.clone();
        let task = tokio::spawn(async move {
            let e = futures::future::poll_fn(|cx| driver.poll_close(cx)).await;
            c.set(format!("HTTP/3 connection closed: {e}"));
        });
        Ok(HttpConn {
            sender: Sender::H3(sender),
            closed,
            quic: Some(conn),
            driver: task.abort_handle(),
        })
    }
}

/// What every request to the endpoint shares, built once per run rather than per request: the
/// URI in both forms and the header map (content type and the user's headers) that each request
/// starts from.
#[derive(Debug)]
struct Prepared {
    /// HTTP/2 and HTTP/3: the full URI, for their `:scheme` and `:authority`.
    absolute: Uri,
    /// HTTP/1.1: the origin form (`/alerts`).
    origin: Uri,
    /// HTTP/1.1's `Host`.
    host: Option<HeaderValue>,
    /// The headers of a POST before its per-alert ones.
    post: HeaderMap,
    /// The headers of the start-up probe.
    options: HeaderMap,
}

impl Prepared {
    fn new(o: &HttpOptions) -> Self {
        let path = o.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut options = HeaderMap::with_capacity(o.headers.len() + 4);
        // The user's headers win over the harness's own (`insert`, then `or_insert` below).
        for (n, v) in &o.headers {
            options.insert(n.clone(), v.clone());
        }
        let mut post = options.clone();
        if let Ok(ct) = HeaderValue::from_str(o.payload.content_type()) {
            post.entry(http::header::CONTENT_TYPE).or_insert(ct);
        }
        Prepared {
            absolute: o.uri.clone(),
            // The path of a parsed URI is a valid URI on its own.
            origin: path.parse().unwrap_or_else(|_| Uri::from_static("/")),
            host: o
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
            post,
            options,
        }
    }
}

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const ALERT_KIND: HeaderName = HeaderName::from_static("x-csp-alert-kind");
const ALERT_CODE: HeaderName = HeaderName::from_static("x-csp-alert-code");

/// The request for alert `a` (`None`: the start-up probe, `OPTIONS` with the same URL and
/// headers). HTTP/1.1 gets the origin form (`POST /alerts` and a `Host` header); HTTP/2 and
/// HTTP/3 the full URI, for their `:scheme` and `:authority`.
fn build_request(
    p: &Prepared,
    o: &HttpOptions,
    a: Option<&Outbound>,
    origin_form: bool,
) -> Request<Bytes> {
    let mut req = match a {
        Some(a) => {
            let key = o.payload.key(a);
            let body = o.payload.render_keyed(a, &key);
            let mut req = Request::new(body);
            *req.method_mut() = Method::POST;
            let mut h = p.post.clone();
            // The key is hex digits, a dash and decimal digits: always a valid header value.
            if let Ok(key) = HeaderValue::try_from(key) {
                h.entry(IDEMPOTENCY_KEY).or_insert(key);
            }
            h.entry(ALERT_KIND)
                .or_insert(HeaderValue::from_static(crate::payload::kind_str(a.code)));
            h.entry(ALERT_CODE)
                .or_insert(HeaderValue::from_static(a.code.as_str()));
            *req.headers_mut() = h;
            req
        }
        None => {
            let mut req = Request::new(Bytes::new());
            *req.method_mut() = Method::OPTIONS;
            *req.headers_mut() = p.options.clone();
            req
        }
    };
    if origin_form {
        *req.uri_mut() = p.origin.clone();
        if let Some(host) = &p.host {
            req.headers_mut()
                .entry(http::header::HOST)
                .or_insert(host.clone());
        }
    } else {
        *req.uri_mut() = p.absolute.clone();
    }
    req
}

/// Sorts a TLS handshake error by what the user has to fix.
fn classify_io(e: &std::io::Error) -> ConnectError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("invalid peer certificate") {
        ConnectError::EndpointCertificate(text)
    } else if lower.contains("noapplicationprotocol") || lower.contains("no_application_protocol") {
        ConnectError::Alpn(text)
    } else if lower.contains("certificaterequired")
        || lower.contains("badcertificate")
        || lower.contains("unknownca")
        || lower.contains("certificate_required")
    {
        ConnectError::ClientCertificate(text)
    } else {
        ConnectError::Other(text)
    }
}

/// HTTP/1.1 or HTTP/2 on an established byte stream; the driver task records why it ended.
async fn handshake<S>(
    io: S,
    h2: bool,
    o: &HttpOptions,
    closed: Arc<Closed>,
) -> Result<HttpConn, ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let fail = |e: String| {
        let io = std::io::Error::other(e);
        match classify_io(&io) {
            ConnectError::Other(t) => ConnectError::Closed(t),
            c => c,
        }
    };
    let c = closed.clone();
    let (sender, task) = if h2 {
        let (sender, mut conn) = h2::client::Builder::new()
            .handshake::<_, Bytes>(Unvectored(io))
            .await
            .map_err(|e| fail(e.to_string()))?;
        // PINGs every keep-alive interval; no answer within the idle timeout is a lost
        // connection (a crashed endpoint behind a silent network keeps TCP up for minutes).
        let ping = conn.ping_pong();
        let (every, idle) = (o.keep_alive, o.idle_timeout);
        let task = tokio::spawn(async move {
            let pinger = async move {
                let Some(mut ping) = ping else {
                    return std::future::pending::<String>().await;
                };
                loop {
                    tokio::time::sleep(every).await;
                    match tokio::time::timeout(idle, ping.ping(h2::Ping::opaque())).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return format!("HTTP/2 connection lost: {e}"),
                        Err(_) => {
                            return format!(
                                "HTTP/2 connection lost: no PING answer within {} ms",
                                idle.as_millis()
                            );
                        }
                    }
                }
            };
            let why = tokio::select! {
                r = conn => match r {
                    Ok(()) => "HTTP/2 connection closed by the endpoint".to_string(),
                    Err(e) => format!("HTTP/2 connection lost: {e}"),
                },
                why = pinger => why,
            };
            c.set(why);
        });
        (Sender::H2(sender), task)
    } else {
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let task = tokio::spawn(async move {
            let why = match conn.await {
                Ok(()) => "HTTP/1.1 connection closed by the endpoint".to_string(),
                Err(e) => format!("HTTP/1.1 connection lost: {e}"),
            };
            c.set(why);
        });
        (Sender::H1(Arc::new(tokio::sync::Mutex::new(sender))), task)
    };
    Ok(HttpConn {
        sender,
        closed,
        quic: None,
        driver: task.abort_handle(),
    })
}

/// A byte stream that tells the `h2` crate it has no vectored writes, so that `h2` copies every
/// DATA frame under 1 KiB into its 16 KiB write buffer and writes many requests at once. With
/// vectored writes `h2` keeps any DATA frame of 256 bytes or more apart and flushes the stream
/// (one TLS record, one `writev`) for each of them: one system call per alert, most of the
/// client's time in the HTTP/2 benchmark (bench/http/RESULTS.md). Bodies of 1 KiB or more are
/// sent in frames under that size for the same reason ([`H2_FRAME`]).
struct Unvectored<S>(S);

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Unvectored<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Unvectored<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// Largest DATA frame an HTTP/2 request body is sent in: under the size from which `h2` writes a
/// frame on its own instead of copying it into its write buffer ([`Unvectored`]).
const H2_FRAME: usize = 1023;

/// Most bytes of a response body read (the rest of a larger body fails the request).
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Sends one request and reads its whole answer (the body is read and dropped, so an HTTP/1.1
/// connection can carry the next request). Not bounded in time: the caller is (a lane by its
/// requests' deadlines, the probe by a timeout). One boxed future per version, each only as large
/// as its own version's state: the future is created, moved and freed once per alert.
fn exchange(
    sender: &Sender,
    closed: &Arc<Closed>,
    req: Request<Bytes>,
) -> BoxFut<Result<Answer, ExchangeError>> {
    match sender {
        Sender::H1(s) => Box::pin(exchange_h1(s.clone(), req)),
        Sender::H2(s) => Box::pin(exchange_h2(s.clone(), closed.clone(), req)),
        Sender::H3(s) => Box::pin(exchange_h3(s.clone(), closed.clone(), req)),
    }
}

/// [`ExchangeError::ConnectionLost`] if the connection has ended, else a failure of this request.
fn lost_or(closed: &Closed, e: String) -> ExchangeError {
    match closed.get() {
        Some(why) => ExchangeError::ConnectionLost(why),
        None => ExchangeError::Request(e),
    }
}

async fn exchange_h1(
    s: Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>,
    req: Request<Bytes>,
) -> Result<Answer, ExchangeError> {
    let fut = {
        let mut s = s.lock().await;
        if let Err(e) = s.ready().await {
            return Err(ExchangeError::ConnectionLost(format!(
                "HTTP/1.1 connection unusable: {e}"
            )));
        }
        s.send_request(req.map(Full::new))
    };
    let resp = fut.await.map_err(|e| {
        // HTTP/1.1 has no streams: a failed request is a failed connection.
        ExchangeError::ConnectionLost(format!("HTTP/1.1 request failed: {e}"))
    })?;
    read_hyper(resp)
        .await
        .map_err(|e| ExchangeError::ConnectionLost(format!("HTTP/1.1 response cut off: {e}")))
}

async fn exchange_h2(
    s: h2::client::SendRequest<Bytes>,
    closed: Arc<Closed>,
    req: Request<Bytes>,
) -> Result<Answer, ExchangeError> {
    let mut s = s
        .ready()
        .await
        .map_err(|e| ExchangeError::ConnectionLost(format!("HTTP/2 connection unusable: {e}")))?;
    let (parts, body) = req.into_parts();
    let (response, mut send) = s
        .send_request(Request::from_parts(parts, ()), body.is_empty())
        .map_err(|e| lost_or(&closed, format!("HTTP/2 request refused: {e}")))?;
    // A server may answer before reading the body and close the stream (nginx's `return` does):
    // the answer still counts, so a failed send is only an error if no response follows.
    let mut send_error = None;
    let mut rest = body;
    while !rest.is_empty() && send_error.is_none() {
        let chunk = rest.split_to(rest.len().min(H2_FRAME));
        send_error = send.send_data(chunk, rest.is_empty()).err();
    }
    let resp = response.await.map_err(|e| {
        let why = match &send_error {
            Some(s) => format!("HTTP/2 request reset: {s}; then {e}"),
            None => format!("HTTP/2 request reset: {e}"),
        };
        lost_or(&closed, why)
    })?;
    let (parts, mut body) = resp.into_parts();
    let mut read = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| lost_or(&closed, format!("HTTP/2 response cut off: {e}")))?;
        read += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
        if read > MAX_RESPONSE_BODY {
            break;
        }
    }
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
    })
}

async fn exchange_h3(
    mut s: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    closed: Arc<Closed>,
    req: Request<Bytes>,
) -> Result<Answer, ExchangeError> {
    let (parts, body) = req.into_parts();
    let mut stream = s
        .send_request(Request::from_parts(parts, ()))
        .await
        .map_err(|e| lost_or(&closed, format!("HTTP/3 request refused: {e}")))?;
    // A server may answer before it has read the whole request and stop the client's sending
    // with H3_NO_ERROR (RFC 9114 §4.1): the answer still counts, so a failed send is only an
    // error if no response follows.
    let sent = async {
        if !body.is_empty() {
            stream.send_data(body).await?;
        }
        stream.finish().await
    };
    let send_error = sent.await.err();
    let received = async {
        let resp = stream.recv_response().await?;
        let mut read = 0usize;
        while let Some(chunk) = stream.recv_data().await? {
            read += chunk.remaining();
            if read > MAX_RESPONSE_BODY {
                break;
            }
        }
        Ok::<_, h3::error::StreamError>(resp)
    };
    let resp = received.await.map_err(|e| {
        let why = match &send_error {
            Some(s) => format!("HTTP/3 request reset: {s}; then {e}"),
            None => format!("HTTP/3 request reset: {e}"),
        };
        lost_or(&closed, why)
    })?;
    Ok(Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
    })
}

/// Why a request that got no answer in `timeout` is sent again.
fn no_answer(timeout: Duration) -> String {
    format!("no answer within {} ms", timeout.as_millis())
}

async fn read_hyper(resp: http::Response<hyper::body::Incoming>) -> Result<Answer, String> {
    let (parts, body) = resp.into_parts();
    Limited::new(body, MAX_RESPONSE_BODY)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
    })
}

impl Transport for HttpTransport {
    type Conn = HttpConn;
    type Lane = HttpLane;

    fn name(&self) -> String {
        match (self.opts.version, self.tls.is_some()) {
            (HttpVersion::Http3, _) => "HTTP/3".into(),
            (HttpVersion::Http1, _) | (HttpVersion::Auto, false) => "HTTP/1.1".into(),
            (HttpVersion::Http2, _) => "HTTP/2".into(),
            (HttpVersion::Auto, true) => self
                .negotiated
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or("HTTP/2 or HTTP/1.1 (ALPN)")
                .into(),
        }
    }

    async fn connect(&self) -> Result<HttpConn, ConnectError> {
        match &self.quic {
            Some(ep) => self.connect_h3(ep).await,
            None => self.connect_tcp().await,
        }
    }

    /// An `OPTIONS` request to the alert URL with exactly the headers (token, `--header`s) and
    /// the connection (TLS, client certificate) the alerts use: 401/403 is a refused token; any
    /// other answer (204, 404, 405, ...) lets the run start. A TLS 1.3 client certificate refused
    /// by the server shows up here, as the connection failing.
    async fn probe(&self, conn: &HttpConn) -> Result<(), ConnectError> {
        let req = build_request(&self.prepared, &self.opts, None, conn.sender.is_h1());
        let timeout = self.opts.connect_timeout;
        let answer = tokio::time::timeout(timeout, exchange(&conn.sender, &conn.closed, req))
            .await
            .unwrap_or_else(|_| Err(ExchangeError::Request(no_answer(timeout))));
        match answer {
            Ok(a) if a.status == 401 || a.status == 403 => Err(ConnectError::Token(format!(
                "HTTP {} {} to OPTIONS {}",
                a.status,
                reason(a.status),
                self.opts.uri
            ))),
            Ok(_) => Ok(()),
            Err(ExchangeError::ConnectionLost(why)) => {
                let io = std::io::Error::other(why);
                Err(match classify_io(&io) {
                    ConnectError::Other(t) => ConnectError::Closed(t),
                    c => c,
                })
            }
            // No answer in time: the benefit of the doubt.
            Err(ExchangeError::Request(_)) => Ok(()),
        }
    }

    async fn open_lane(&self, conn: &HttpConn) -> Result<HttpLane, LaneEnd> {
        if let Some(why) = self.closed(conn) {
            return Err(LaneEnd::ConnectionLost(why));
        }
        Ok(HttpLane {
            opts: self.opts.clone(),
            prepared: self.prepared.clone(),
            sender: conn.sender.clone(),
            closed: conn.closed.clone(),
            requests: FuturesUnordered::new(),
            overdue: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
        })
    }

    fn closed(&self, conn: &HttpConn) -> Option<String> {
        conn.closed.get().or_else(|| {
            conn.quic
                .as_ref()
                .and_then(|q| q.close_reason())
                .map(|r| format!("HTTP/3 connection lost: {r}"))
        })
    }

    fn close(&self, conn: &HttpConn) {
        if let Some(q) = &conn.quic {
            q.close(quinn::VarInt::from_u32(0x100), b"bye"); // H3_NO_ERROR
        }
        conn.driver.abort();
    }

    async fn shutdown(&self) {
        if let Some(ep) = &self.quic {
            ep.close(quinn::VarInt::from_u32(0x100), b"drained");
            ep.wait_idle().await;
        }
    }

    fn max_lanes(&self) -> Option<usize> {
        self.is_http1().then_some(1)
    }

    fn max_in_flight_per_lane(&self) -> Option<usize> {
        self.is_http1().then_some(1)
    }
}

impl HttpTransport {
    /// Whether connections speak HTTP/1.1 for sure (with ALPN on `https` it is known only per
    /// connection; such a connection still sends one request at a time, hyper queues the rest).
    fn is_http1(&self) -> bool {
        match self.opts.version {
            HttpVersion::Http1 => true,
            HttpVersion::Auto => self.tls.is_none(),
            _ => false,
        }
    }
}

/// A share of a connection's concurrent requests.
pub struct HttpLane {
    opts: Arc<HttpOptions>,
    prepared: Arc<Prepared>,
    sender: Sender,
    closed: Arc<Closed>,
    requests: FuturesUnordered<Pending>,
    /// One timer per lane, not one per request: it fires at the deadline of the oldest request
    /// it knows of; [`HttpLane::sweep`] then answers every overdue request and sets it again.
    overdue: Pin<Box<tokio::time::Sleep>>,
    /// Whether `overdue` is set (false while nothing is in flight).
    armed: bool,
}

/// One request in flight and the time its answer is due by.
struct Pending {
    id: AlertId,
    due: tokio::time::Instant,
    exchange: BoxFut<Result<Answer, ExchangeError>>,
}

impl Future for Pending {
    type Output = (AlertId, Result<Answer, ExchangeError>);

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let id = self.id;
        self.exchange.as_mut().poll(cx).map(|r| (id, r))
    }
}

impl HttpLane {
    /// Ends every request past its deadline (dropping it resets its stream; the alert is sent
    /// again) and sets the timer to the next deadline. Runs once per request timeout at most
    /// while answers come back in time, so the sweep's cost is spread over many requests.
    fn sweep(&mut self, out: &mut Vec<Reply>) {
        let now = tokio::time::Instant::now();
        let mut next: Option<tokio::time::Instant> = None;
        for p in std::mem::take(&mut self.requests) {
            if p.due <= now {
                let why = no_answer(self.opts.request_timeout);
                out.push(Reply::new(p.id, Verdict::Retry(why)));
            } else {
                next = Some(next.map_or(p.due, |n| n.min(p.due)));
                self.requests.push(p);
            }
        }
        self.armed = next.is_some();
        if let Some(at) = next {
            self.overdue.as_mut().reset(at);
        }
    }
}

impl Lane for HttpLane {
    fn send(&mut self, batch: &[Outbound]) {
        let origin_form = self.sender.is_h1();
        let due = tokio::time::Instant::now() + self.opts.request_timeout;
        for a in batch {
            let req = build_request(&self.prepared, &self.opts, Some(a), origin_form);
            self.requests.push(Pending {
                id: a.id,
                due,
                exchange: exchange(&self.sender, &self.closed, req),
            });
        }
        if !self.armed && !batch.is_empty() {
            self.overdue.as_mut().reset(due);
            self.armed = true;
        }
    }

    fn ready(&self) -> bool {
        true
    }

    async fn replies(&mut self, out: &mut Vec<Reply>) -> Result<(), LaneEnd> {
        if self.requests.is_empty() {
            return std::future::pending().await;
        }
        let first = tokio::select! {
            biased;
            next = self.requests.next() => match next {
                Some(first) => first,
                None => return Ok(()),
            },
            () = self.overdue.as_mut(), if self.armed => {
                self.sweep(out);
                return Ok(());
            }
        };
        let accept = &self.opts.accept;
        let mut one = |(id, r): (AlertId, Result<Answer, ExchangeError>)| match r {
            Ok(a) => {
                out.push(Reply {
                    id,
                    verdict: verdict(a.status, &a.headers, accept),
                    status: Some(a.status),
                });
                Ok(())
            }
            Err(ExchangeError::Request(why)) => {
                out.push(Reply::new(id, Verdict::Retry(why)));
                Ok(())
            }
            Err(ExchangeError::ConnectionLost(why)) => Err(LaneEnd::ConnectionLost(why)),
        };
        one(first)?;
        // Everything else already answered, without waiting.
        while let Some(Some(next)) = self.requests.next().now_or_never() {
            one(next)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn alert(hub: u32) -> Outbound {
        Outbound {
            id: AlertId::new(hub, ledger::AlertKind::Poa),
            code: ledger::AlertCode::Ad1,
            device_id: u64::from(hub),
            region: ledger::Region::NORTH,
            region_code: 1,
            event_ms: 1_000,
            seq: 1,
            exit_ms: 2_000,
        }
    }

    /// An HTTP/2 server (cleartext, prior knowledge) that answers 204 to the alerts in `answer`
    /// and holds every other request open without a word.
    async fn h2_server(answer: Vec<AlertId>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = h2::server::handshake(tcp).await.unwrap();
            let mut held = Vec::new();
            while let Some(Ok((req, mut respond))) = conn.accept().await {
                let key = req.headers()[IDEMPOTENCY_KEY].to_str().unwrap();
                let id: u64 = key.rsplit_once('-').unwrap().1.parse().unwrap();
                if answer.contains(&AlertId(id)) {
                    let resp = http::Response::builder().status(204).body(()).unwrap();
                    respond.send_response(resp, true).unwrap();
                } else {
                    held.push(respond);
                }
            }
        });
        addr
    }

    /// A request without an answer within the request timeout is sent again (a `Retry` reply),
    /// not before the timeout, while the answered ones on the same lane are delivered.
    #[tokio::test]
    async fn unanswered_requests_are_retried_after_the_request_timeout() {
        let answered = [alert(1).id, alert(3).id];
        let addr = h2_server(answered.to_vec()).await;
        let timeout = Duration::from_millis(300);
        let t = HttpTransport::new(HttpOptions {
            addr,
            uri: format!("http://{addr}/alerts").parse().unwrap(),
            tls: None,
            server_name: "localhost".into(),
            version: HttpVersion::Http2,
            connect_timeout: Duration::from_secs(5),
            request_timeout: timeout,
            accept: DEFAULT_ACCEPT.to_vec(),
            headers: Vec::new(),
            payload: Payload::new(
                crate::payload::Format::Json,
                wire::RunId([7; 16]),
                SystemTime::now(),
            ),
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(5),
            local_addr: None,
        })
        .unwrap();
        let conn = t.connect().await.unwrap();
        let mut lane = t.open_lane(&conn).await.unwrap();
        let sent = std::time::Instant::now();
        lane.send(&[alert(1), alert(2), alert(3), alert(4)]);
        let mut got = Vec::new();
        while got.len() < 4 {
            let mut out = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), lane.replies(&mut out))
                .await
                .unwrap()
                .unwrap();
            got.extend(out.into_iter().map(|r| (r.id, r.verdict, sent.elapsed())));
        }
        got.sort_by_key(|(id, _, _)| id.0);
        let why = format!("no answer within {} ms", timeout.as_millis());
        for (id, verdict, at) in got {
            if answered.contains(&id) {
                assert_eq!(verdict, Verdict::Acked, "{id:?}");
            } else {
                assert_eq!(verdict, Verdict::Retry(why.clone()), "{id:?}");
                assert!(at >= timeout, "{id:?} given up after {at:?}");
            }
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn statuses_map_as_documented() {
        let none = HeaderMap::new();
        let acc = DEFAULT_ACCEPT;
        for s in [200, 201, 202, 204] {
            assert_eq!(verdict(s, &none, &acc), Verdict::Acked, "{s}");
        }
        assert_eq!(
            verdict(200, &headers(&[("Idempotent-Replayed", "true")]), &acc),
            Verdict::AckedDuplicate
        );
        assert!(matches!(verdict(401, &none, &acc), Verdict::AuthRefused(_)));
        assert!(matches!(verdict(403, &none, &acc), Verdict::AuthRefused(_)));
        assert_eq!(
            verdict(429, &headers(&[("Retry-After", "7")]), &acc),
            Verdict::RetryAfter(Some(Duration::from_secs(7)))
        );
        assert_eq!(verdict(503, &none, &acc), Verdict::RetryAfter(None));
        assert_eq!(
            verdict(400, &none, &acc),
            Verdict::Rejected("http 400".into())
        );
        assert_eq!(
            verdict(422, &none, &acc),
            Verdict::Rejected("http 422".into())
        );
        assert!(matches!(verdict(500, &none, &acc), Verdict::Retry(_)));
        assert!(matches!(verdict(502, &none, &acc), Verdict::Retry(_)));
        assert!(matches!(verdict(302, &none, &acc), Verdict::Rejected(_)));
        // A narrower --accept: 200 is then not "stored".
        assert!(matches!(verdict(200, &none, &[204]), Verdict::Rejected(_)));
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let h = headers(&[("Retry-After", "Wed, 21 Oct 2015 07:28:30 GMT")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        let past = headers(&[("Retry-After", "Wed, 21 Oct 2015 07:00:00 GMT")]);
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&headers(&[("Retry-After", " 120 ")]), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_after(&headers(&[("Retry-After", "soon")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
