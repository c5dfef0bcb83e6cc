//! `csp-alert` over QUIC (docs/protocol.md) as a [`Transport`]: one lane per long-lived
//! bidirectional stream, ALERT frames written in batches, ACK/REJECT frames read back.
//!
//! A stream whose writes are blocked by a stalled endpoint (QUIC flow control) keeps reading
//! replies: writes are cancel-safe partial writes inside the same `select!` as the reads, and the
//! engine's deadline tick and stop signal stay live around [`Lane::replies`].

use crate::transport::{ConnectError, Lane, LaneEnd, Reply, Transport, Verdict};
use bytes::{Buf, Bytes, BytesMut};
use ledger::AlertId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tls::{ClientIdentity, TlsError, TrustSource};
use virtual_hubs::Outbound;
use wire::{AlertHeader, Decoder, ErrorCode, Frame, RejectReason, RunId};

/// Where and how to reach a `csp-alert` endpoint.
#[derive(Debug, Clone)]
pub struct QuicOptions {
    /// The endpoint's UDP address.
    pub endpoint: SocketAddr,
    /// Name the endpoint's certificate must be valid for.
    pub server_name: String,
    /// Certificates to trust.
    pub trust: TrustSource,
    /// Client certificate for mutual TLS.
    pub identity: Option<ClientIdentity>,
    /// Real time allowed for one connection attempt (handshake included).
    pub connect_timeout: Duration,
    /// A connection silent this long (real time) is considered lost.
    pub idle_timeout: Duration,
    /// Keep-alive interval (real time), well below `idle_timeout`.
    pub keep_alive: Duration,
    /// Token to present in HELLO.
    pub auth_token: Option<String>,
    /// Local address to bind the client's UDP socket to.
    pub local_addr: Option<SocketAddr>,
    /// The run the alerts belong to (in every HELLO).
    pub run_id: RunId,
}

/// Why a QUIC client endpoint could not be built.
#[derive(Debug, thiserror::Error)]
pub enum QuicSetupError {
    /// The trust or identity PEM could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The local UDP socket could not be created.
    #[error("cannot open a local UDP socket: {0}")]
    Socket(std::io::Error),
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
}

/// A client QUIC endpoint (one UDP socket with 4 MiB buffers) trusting `trust`, offering `alpn`.
pub fn client_endpoint(
    opts: &QuicOptions,
    alpn: &[&[u8]],
) -> Result<quinn::Endpoint, QuicSetupError> {
    let tls = tls::client_config(&opts.trust, opts.identity.as_ref(), alpn)?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| QuicSetupError::Config(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    // HTTP/3 servers open unidirectional streams (control, QPACK); csp-alert uses none.
    let uni = if alpn.contains(&b"h3".as_slice()) {
        16
    } else {
        0
    };
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(0))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(uni))
        .keep_alive_interval(Some(opts.keep_alive))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(opts.idle_timeout)
                .map_err(|e| QuicSetupError::Config(format!("idle timeout: {e}")))?,
        ));
    client.transport_config(Arc::new(transport));
    let local: SocketAddr = match opts.local_addr {
        Some(a) => a,
        None if opts.endpoint.is_ipv6() => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        None => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
    };
    let socket = tls::bind_udp(local).map_err(QuicSetupError::Socket)?;
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(QuicSetupError::Socket)?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

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
        E::TransportError(_) if lower.contains("invalid peer certificate") => {
            ConnectError::EndpointCertificate(text)
        }
        E::ConnectionClosed(c) if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED => {
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

/// One connection attempt, bounded by `timeout`; the error says what went wrong.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
) -> Result<quinn::Connection, ConnectError> {
    let connecting = endpoint
        .connect(addr, server_name)
        .map_err(|e| ConnectError::Other(e.to_string()))?;
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(ConnectError::Timeout {
            what: "QUIC",
            ms: timeout.as_millis(),
        }),
        Ok(Err(e)) => Err(classify(&e)),
        Ok(Ok(c)) => Ok(c),
    }
}

/// `csp-alert` over QUIC.
#[derive(Debug)]
pub struct QuicTransport {
    endpoint: quinn::Endpoint,
    opts: QuicOptions,
    /// The HELLO every lane starts with and the probe sends: the same bytes, so the probe tests
    /// exactly what the data streams present.
    hello: Bytes,
}

impl QuicTransport {
    /// Builds the client endpoint (no connection yet).
    pub fn new(opts: QuicOptions) -> Result<Self, QuicSetupError> {
        let endpoint = client_endpoint(&opts, &[wire::ALPN])?;
        let mut hello = BytesMut::new();
        let token = opts.auth_token.as_deref().unwrap_or_default();
        wire::encode_hello(
            &mut hello,
            wire::PROTOCOL_VERSION,
            &opts.run_id,
            token.as_bytes(),
        );
        Ok(QuicTransport {
            endpoint,
            opts,
            hello: hello.freeze(),
        })
    }
}

impl Transport for QuicTransport {
    type Conn = quinn::Connection;
    type Lane = QuicLane;

    fn name(&self) -> String {
        format!("{} over QUIC", String::from_utf8_lossy(wire::ALPN))
    }

    async fn connect(&self) -> Result<quinn::Connection, ConnectError> {
        connect(
            &self.endpoint,
            self.opts.endpoint,
            &self.opts.server_name,
            self.opts.connect_timeout,
        )
        .await
    }

    /// Sends the lanes' HELLO (run id, token) on a fresh stream and finishes it; the endpoint
    /// answers with nothing (then finishes its side) or with an ERROR. A refused client
    /// certificate shows up here as the connection being closed (in TLS 1.3 the client finishes
    /// its handshake before the server has checked its certificate). An endpoint that does not
    /// answer within the connect timeout is given the benefit of the doubt.
    async fn probe(&self, conn: &quinn::Connection) -> Result<(), ConnectError> {
        let lost = |e: quinn::ConnectionError| match classify(&e) {
            ConnectError::Other(t) => ConnectError::Closed(t),
            c => c,
        };
        let exchange = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(lost)?;
            let write = async {
                send.write_all(&self.hello).await.ok()?;
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
        match tokio::time::timeout(self.opts.connect_timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }

    async fn open_lane(&self, conn: &quinn::Connection) -> Result<QuicLane, LaneEnd> {
        let (send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| LaneEnd::ConnectionLost(format!("cannot open stream: {e}")))?;
        Ok(QuicLane {
            send,
            recv,
            decoder: Decoder::default(),
            out: BytesMut::from(&self.hello[..]),
        })
    }

    fn closed(&self, conn: &quinn::Connection) -> Option<String> {
        conn.close_reason().map(|r| r.to_string())
    }

    fn close(&self, conn: &quinn::Connection) {
        conn.close(quinn::VarInt::from_u32(0), b"bye");
    }

    async fn shutdown(&self) {
        self.endpoint.close(quinn::VarInt::from_u32(0), b"drained");
        self.endpoint.wait_idle().await;
    }
}

/// One long-lived bidirectional stream.
#[derive(Debug)]
pub struct QuicLane {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: Decoder,
    /// Encoded frames not yet accepted by QUIC.
    out: BytesMut,
}

impl Drop for QuicLane {
    fn drop(&mut self) {
        let _ = self.send.finish();
    }
}

impl Lane for QuicLane {
    fn send(&mut self, batch: &[Outbound]) {
        encode_batch(batch, &mut self.out);
    }

    fn ready(&self) -> bool {
        self.out.is_empty()
    }

    async fn replies(&mut self, out: &mut Vec<Reply>) -> Result<(), LaneEnd> {
        loop {
            tokio::select! {
                r = self.recv.read_chunk(64 * 1024, true) => {
                    let chunk = match r {
                        Ok(Some(c)) => c,
                        Ok(None) => return Err(LaneEnd::Error("endpoint finished the stream".into())),
                        Err(quinn::ReadError::ConnectionLost(e)) => {
                            return Err(LaneEnd::ConnectionLost(e.to_string()));
                        }
                        Err(e) => return Err(LaneEnd::Error(format!("stream read: {e}"))),
                    };
                    self.decoder.push(&chunk.bytes);
                    decode_replies(&mut self.decoder, out)?;
                    if !out.is_empty() {
                        return Ok(());
                    }
                }
                w = self.send.write(&self.out), if !self.out.is_empty() => match w {
                    Ok(n) => {
                        self.out.advance(n);
                        if self.out.is_empty() {
                            // Written: the lane can take the next batch.
                            return Ok(());
                        }
                    }
                    Err(quinn::WriteError::ConnectionLost(e)) => {
                        return Err(LaneEnd::ConnectionLost(e.to_string()));
                    }
                    Err(e) => return Err(LaneEnd::Error(format!("stream write: {e}"))),
                },
            }
        }
    }
}

fn encode_batch(batch: &[Outbound], out: &mut BytesMut) {
    let mut payload = [0u8; wire::SYNTHETIC_PAYLOAD_LEN];
    out.reserve(batch.len() * (wire::HEADER_LEN + wire::ALERT_FIXED_LEN + payload.len()));
    for a in batch {
        let h = AlertHeader {
            alert_id: a.id.0,
            code: a.code.wire(),
            device_id: a.device_id,
            region: a.region_code,
            event_ms: a.event_ms,
            seq: a.seq,
        };
        wire::synthetic_payload(&h, &mut payload);
        wire::encode_alert(out, &h, &payload);
    }
}

/// Decodes every buffered reply frame into `out`; an ERROR frame or undecodable bytes end the
/// lane (an `UNAUTHENTICATED` one fatally).
fn decode_replies(dec: &mut Decoder, out: &mut Vec<Reply>) -> Result<(), LaneEnd> {
    loop {
        match dec.next_frame() {
            Ok(None) => return Ok(()),
            Ok(Some(Frame::Ack(ids))) => {
                out.extend(
                    ids.into_iter()
                        .map(|id| Reply::new(AlertId(id), Verdict::Acked)),
                );
            }
            Ok(Some(Frame::Duplicate(ids))) => {
                out.extend(
                    ids.into_iter()
                        .map(|id| Reply::new(AlertId(id), Verdict::AckedDuplicate)),
                );
            }
            Ok(Some(Frame::Reject(rej))) => {
                let reason = RejectReason::from_wire(rej.reason);
                // The endpoint stored nothing and may store it on the next try (a full disk
                // freed): transient, like HTTP 507, so sent again within the deadline. Every
                // other reason is about the alert itself and final.
                let verdict = if reason == RejectReason::StorageFailure {
                    Verdict::Retry(format!("REJECT {reason:?}: {}", rej.text))
                } else {
                    Verdict::Rejected(format!("{reason:?}"))
                };
                out.push(Reply::new(AlertId(rej.alert_id), verdict));
            }
            Ok(Some(Frame::Error(e))) => {
                let code = ErrorCode::from_wire(e.code);
                let text = format!("endpoint closed the stream: error {code:?} ({})", e.text);
                return Err(if code == ErrorCode::Unauthenticated {
                    LaneEnd::AuthRefused(format!(
                        "{text} — the endpoint no longer accepts this client's token"
                    ))
                } else {
                    LaneEnd::Error(text)
                });
            }
            Ok(Some(_)) => {
                return Err(LaneEnd::Error(
                    "endpoint sent a frame only clients send".into(),
                ));
            }
            Err(e) => {
                return Err(LaneEnd::Error(format!(
                    "undecodable reply from endpoint: {e}"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn replies_to(reason: RejectReason) -> Vec<Reply> {
        let mut buf = BytesMut::new();
        wire::encode_reject(&mut buf, 7, reason.wire(), "disk full");
        let mut dec = Decoder::new(wire::MAX_FRAME_LEN);
        dec.push(&buf);
        let mut out = Vec::new();
        decode_replies(&mut dec, &mut out).unwrap();
        out
    }

    #[test]
    fn a_storage_failure_is_retried_and_every_other_reject_is_final() {
        let r = replies_to(RejectReason::StorageFailure);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].id, AlertId(7));
        assert!(
            matches!(&r[0].verdict, Verdict::Retry(why) if why.contains("StorageFailure") && why.contains("disk full")),
            "{:?}",
            r[0].verdict
        );
        for reason in [
            RejectReason::UnknownCode,
            RejectReason::UnknownRegion,
            RejectReason::PayloadTooLarge,
            RejectReason::Policy,
            RejectReason::Other,
        ] {
            let r = replies_to(reason);
            assert_eq!(
                r[0].verdict,
                Verdict::Rejected(format!("{reason:?}")),
                "{reason:?}"
            );
        }
    }
}
