//! The seam between the delivery engine and a wire protocol.
//!
//! A [`Transport`] knows how to reach one endpoint (connect, probe) and how to carry alerts over a
//! connection; the engine ([`crate::engine`]) knows everything else: the queue, deadlines,
//! requeueing, backoff, fates and statistics. A connection carries one or more [`Lane`]s (a QUIC
//! stream, an HTTP/2 or HTTP/3 connection's share of concurrent requests, an HTTP/1.1
//! connection's one request at a time); the engine runs one worker per lane and hands it batches.
//!
//! A transport never records a fate and never reads the queue: it turns bytes into [`Reply`]s and
//! failures into [`LaneEnd`]s or [`ConnectError`]s, and the engine decides what they mean.

use ledger::AlertId;
use std::future::Future;
use std::time::Duration;
use virtual_hubs::Outbound;

/// What the endpoint said about one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored: the alert is delivered.
    Acked,
    /// Stored before (the endpoint recognised the run and alert id): delivered, and counted as a
    /// duplicate the endpoint reported.
    AckedDuplicate,
    /// Refused for good (a REJECT frame, an HTTP 4xx): lost as `endpoint_rejected`.
    Rejected(String),
    /// Back-pressure (HTTP 429/503): send again, not before the endpoint's `Retry-After` (if it
    /// gave one), and only within the alert's deadline.
    RetryAfter(Option<Duration>),
    /// A transient failure of this alert alone (HTTP 5xx, a request reset mid-body): send again
    /// after a backoff, within the alert's deadline.
    Retry(String),
    /// The endpoint refused this client's credentials (HTTP 401/403): fatal for the whole run.
    AuthRefused(String),
}

/// One answer, for one alert in flight on a lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The alert.
    pub id: AlertId,
    /// What it means.
    pub verdict: Verdict,
    /// The HTTP status that carried it, if any (counted per status in the statistics).
    pub status: Option<u16>,
}

impl Reply {
    /// A reply without an HTTP status.
    pub fn new(id: AlertId, verdict: Verdict) -> Self {
        Reply {
            id,
            verdict,
            status: None,
        }
    }
}

/// Why a lane stopped. Whatever was in flight on it goes back to the queue, except after
/// [`LaneEnd::AuthRefused`], which stops the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneEnd {
    /// The connection under the lane is gone: the engine reconnects with backoff.
    ConnectionLost(String),
    /// This lane is unusable (a protocol error, an undecodable reply, an ERROR frame): the engine
    /// opens a new lane on the same connection after a backoff.
    Error(String),
    /// The endpoint refused this client's credentials mid-run: fatal, named, exit 2.
    AuthRefused(String),
}

/// Why a connection attempt (or the start-up probe on it) failed, sorted by what the user has to
/// fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// No handshake completed in time: nothing listening, or packets dropped.
    #[error("no {what} handshake within {ms} ms (is an endpoint listening there?)")]
    Timeout {
        /// Which handshake (`QUIC`, `TCP/TLS`).
        what: &'static str,
        /// The connect timeout.
        ms: u128,
    },
    /// Nothing listens there (TCP connection refused).
    #[error("connection refused: {0} (is an endpoint listening there?)")]
    NotListening(String),
    /// The endpoint's certificate did not verify (expired, not valid for the server name, unknown
    /// issuer, not the pinned one).
    #[error(
        "handshake failed: the endpoint's certificate was refused: {0} (check --ca / the pinned \
         certificate, its validity dates and --server-name)"
    )]
    EndpointCertificate(String),
    /// The endpoint refused this client's certificate, or requires one and none was given.
    #[error(
        "handshake failed: the endpoint refused the client: {0} (it requires a client certificate \
         its CA issued: set client-cert/client-key)"
    )]
    ClientCertificate(String),
    /// The endpoint does not speak the protocol asked for (ALPN).
    #[error("handshake failed: the endpoint does not offer the protocol asked for: {0}")]
    Alpn(String),
    /// The endpoint refused the connection (QUIC CONNECTION_REFUSED, e.g. at its connection limit).
    #[error("the endpoint refused the connection: {0}")]
    Refused(String),
    /// The endpoint closed the connection at once, or it was lost, during the start-up probe.
    #[error("the endpoint closed the connection at once: {0}")]
    Closed(String),
    /// The endpoint refused the token or credentials (HELLO `UNAUTHENTICATED`, HTTP 401/403).
    #[error("the endpoint refused the token: {0} (set the token or credentials it expects)")]
    Token(String),
    /// Anything else.
    #[error("handshake failed: {0}")]
    Other(String),
}

impl ConnectError {
    /// Whether retrying cannot help because the endpoint refused this client's credentials (its
    /// token or its certificate). Mid-run, such a refusal is fatal.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            ConnectError::ClientCertificate(_) | ConnectError::Token(_)
        )
    }
}

/// One way of reaching an endpoint: `csp-alert` over QUIC, HTTP/1.1, HTTP/2, HTTP/3.
///
/// Implementations hold their configuration (address, TLS, credentials, payload format) and are
/// shared by every worker of the engine.
pub trait Transport: Send + Sync + 'static {
    /// An open connection.
    type Conn: Send + Sync + 'static;
    /// A lane of a connection.
    type Lane: Lane;

    /// What this transport is, for messages and statistics (e.g. `h2`, `csp-alert/2 over QUIC`).
    fn name(&self) -> String;

    /// One connection attempt, bounded in time by the transport's connect timeout.
    fn connect(&self) -> impl Future<Output = Result<Self::Conn, ConnectError>> + Send;

    /// Checks once, at start-up, that the endpoint lets this client in, using exactly the
    /// credentials the lanes will use, so that a refused token or certificate is a clear start
    /// error and not a run in which every alert fails.
    fn probe(&self, conn: &Self::Conn) -> impl Future<Output = Result<(), ConnectError>> + Send;

    /// Opens a lane on `conn`.
    fn open_lane(
        &self,
        conn: &Self::Conn,
    ) -> impl Future<Output = Result<Self::Lane, LaneEnd>> + Send;

    /// `Some(reason)` once `conn` is closed or lost.
    fn closed(&self, conn: &Self::Conn) -> Option<String>;

    /// Closes `conn` (politely, without waiting).
    fn close(&self, conn: &Self::Conn);

    /// Releases what the transport holds (sockets), bounded in time by the caller.
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Most lanes one connection can carry (HTTP/1.1: one), if the transport limits it.
    fn max_lanes(&self) -> Option<usize> {
        None
    }

    /// Most alerts one lane can have in flight (HTTP/1.1: one), if the transport limits it.
    fn max_in_flight_per_lane(&self) -> Option<usize> {
        None
    }
}

/// A lane: the engine hands it batches and waits for its replies.
pub trait Lane: Send + 'static {
    /// Takes a batch of alerts to send. Must not wait on the network: encode or start the
    /// requests and return; [`Lane::replies`] makes the progress.
    fn send(&mut self, batch: &[Outbound]);

    /// Whether the lane can take another batch now (it is not still writing the last one).
    fn ready(&self) -> bool;

    /// Makes progress (writes what is buffered, reads answers) until at least one reply is in
    /// `out`, the lane has become [`Lane::ready`] again, or the lane ends. Pends while nothing is
    /// in flight and nothing is buffered. Must be cancel-safe: the engine polls it inside a
    /// `select!`.
    fn replies(&mut self, out: &mut Vec<Reply>)
    -> impl Future<Output = Result<(), LaneEnd>> + Send;
}
