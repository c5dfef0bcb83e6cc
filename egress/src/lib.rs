//! The egress: carries alerts from the modelled network to the real endpoint under test.
//!
//! - [`engine`]: the transport-neutral delivery rules (bounded queue, per-alert deadline,
//!   requeue, backoff, drain, exactly-once fates in the [`Ledger`], statistics).
//! - [`transport`]: the small interface a wire protocol implements (connect, probe, lanes that
//!   send batches and return replies).
//! - [`quic`]: `csp-alert` over QUIC (docs/protocol.md).
//! - [`http`]: HTTP/1.1, HTTP/2 and HTTP/3, one POST per alert (docs/http.md), with the bodies
//!   of [`payload`].
//!
//! [`Egress`] puts them together from one [`EgressConfig`] and implements the `Sink` seam of the
//! model. Security: the endpoint's certificate is verified against a CA or pinned certificate
//! ([`TrustSource`]) unless the loudly named [`TrustSource::InsecureSkipVerify`] is chosen (a
//! warning is logged); a client certificate can be presented for mutual TLS, and a token. The
//! start probes the endpoint with exactly the credentials the data path uses, so a refused
//! certificate or token is a clear, typed start error ([`ConnectError`]); refused mid-run, it is
//! fatal ([`Egress::fatal_signal`]).

/// The QUIC library, re-exported so callers (tests, tools) can name connection and stream types.
pub use quinn;

pub mod backoff;
pub mod engine;
pub mod http;
mod inflight;
pub mod payload;
pub mod quic;
pub mod transport;

#[cfg(test)]
mod engine_tests;

pub use backoff::RetryPolicy;
pub use engine::{EgressStats, Engine, EngineConfig, EngineProbe, StartError};
pub use transport::{ConnectError, Lane, LaneEnd, Reply, Transport, Verdict};

use ledger::Ledger;
use quic::{QuicOptions, QuicSetupError, QuicTransport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tls::{ClientIdentity, TlsError, TrustSource};
use virtual_hubs::{ScenarioClock, Sink};
pub use wire::RunId;

/// Everything [`Egress::start`] needs.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// The endpoint's UDP address.
    pub endpoint: SocketAddr,
    /// Name the endpoint's certificate must be valid for.
    pub server_name: String,
    /// Certificates to trust (CA or pinned endpoint certificate).
    pub trust: TrustSource,
    /// Connections in the pool.
    pub connections: usize,
    /// Long-lived streams per connection.
    pub streams_per_connection: usize,
    /// Alerts sent but not yet answered, per stream.
    pub max_in_flight_per_stream: usize,
    /// Capacity of the send queue (alerts waiting for a stream).
    pub send_queue: usize,
    /// Backoff between reconnects and stream re-opens.
    pub retry: RetryPolicy,
    /// Real time allowed for one connection attempt (handshake included).
    pub connect_timeout: Duration,
    /// Scenario ms after `exit_ms` after which an unacknowledged alert is lost as
    /// `EndpointUnreachable`; `None`: only the drain decides.
    pub alert_deadline_ms: Option<u64>,
    /// A connection silent this long (real time) is considered lost.
    pub idle_timeout: Duration,
    /// Keep-alive interval (real time), well below `idle_timeout`.
    pub keep_alive: Duration,
    /// Token to send in a HELLO at the start of each stream, if the endpoint requires one.
    pub auth_token: Option<String>,
    /// Client certificate chain PEM to present (mutual TLS); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// Private key PEM of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Local address to bind the client's UDP socket to (default: the unspecified address of the
    /// endpoint's family, any port).
    pub local_addr: Option<SocketAddr>,
    /// Seed of the backoff jitter.
    pub jitter_seed: u64,
    /// The run the alerts belong to: endpoints de-duplicate by (run, alert id).
    pub run_id: RunId,
    /// The protocol: `csp-alert` over QUIC, or HTTP.
    pub protocol: Protocol,
}

/// Which protocol carries the alerts.
#[derive(Debug, Clone)]
pub enum Protocol {
    /// `csp-alert` over QUIC (docs/protocol.md).
    CspAlert,
    /// HTTP/1.1, HTTP/2 or HTTP/3 POSTs (docs/http.md).
    Http(Box<HttpSettings>),
}

/// The HTTP side of [`EgressConfig`].
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The URL alerts are POSTed to (`http`, `https`; HTTP/3 uses its `https` form).
    pub uri: ::http::Uri,
    /// TLS (`https`, HTTP/3) or not (`http`).
    pub tls: bool,
    /// The version to speak.
    pub version: http::HttpVersion,
    /// Statuses that mean "stored".
    pub accept: Vec<u16>,
    /// Extra headers (already expanded from the environment).
    pub headers: Vec<(::http::HeaderName, ::http::HeaderValue)>,
    /// The body format.
    pub format: payload::Format,
    /// Wall-clock time of scenario time 0, for the bodies' timestamps.
    pub epoch: std::time::SystemTime,
    /// Real time allowed for one request's answer.
    pub request_timeout: Duration,
}

/// The idle timeout a run at `time_scale` gets unless told otherwise: a quarter of the alert
/// deadline in real time, between 1 s and 10 s (10 s up to 22.5x, 3.75 s at 60x, 1.9 s at 120x,
/// 1 s from 225x). A dead endpoint is then noticed while the alerts in flight to it can still
/// make their deadline once it is back (a fixed 10 s is 20 scenario minutes at 120x).
pub fn scaled_idle_timeout(time_scale: f64, alert_deadline_ms: Option<u64>) -> Duration {
    let deadline_s = alert_deadline_ms.unwrap_or(15 * 60_000) as f64 / 1000.0;
    let quarter = deadline_s / time_scale.max(f64::MIN_POSITIVE) / 4.0;
    Duration::from_secs_f64(quarter.clamp(1.0, 10.0))
}

impl EgressConfig {
    /// Sets the idle timeout (real time) and what follows from it: keep-alives at a quarter of
    /// it (at most 2 s), connection attempts bounded by it (at most 3 s), and reconnect backoff
    /// up to half of it (at most 2 s), so that a lost or restarted endpoint is noticed and
    /// reconnected to within about one idle timeout.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self.keep_alive = (idle / 4).min(Duration::from_secs(2));
        self.connect_timeout = idle.min(Duration::from_secs(3));
        self.retry.max = (idle / 2).clamp(self.retry.initial, Duration::from_secs(2));
        self
    }

    /// Defaults for an endpoint at `endpoint` whose certificate is valid for `server_name` and
    /// verifies against the PEM file `ca_pem`.
    pub fn new(endpoint: SocketAddr, server_name: impl Into<String>, ca_pem: PathBuf) -> Self {
        EgressConfig {
            endpoint,
            server_name: server_name.into(),
            trust: TrustSource::PemFile(ca_pem),
            connections: 4,
            streams_per_connection: 4,
            max_in_flight_per_stream: 256,
            send_queue: 65_536,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(3),
            alert_deadline_ms: Some(15 * 60_000),
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            auth_token: None,
            client_cert: None,
            client_key: None,
            local_addr: None,
            jitter_seed: 0x5EED,
            run_id: RunId::default(),
            protocol: Protocol::CspAlert,
        }
    }
}

/// Why the egress could not start.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The trust PEM could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The local UDP socket could not be created.
    #[error("cannot open a local UDP socket: {0}")]
    Socket(std::io::Error),
    /// The configuration is unusable.
    #[error("bad egress configuration: {0}")]
    Config(String),
    /// The first connection attempt (or the probe on it) failed.
    #[error("cannot connect to endpoint {endpoint} (server name '{server_name}'): {reason}")]
    Unreachable {
        /// The endpoint address.
        endpoint: SocketAddr,
        /// The server name used for verification.
        server_name: String,
        /// What went wrong (timeout, certificate refused, ...).
        reason: ConnectError,
    },
}

impl EgressConfig {
    fn identity(&self) -> Result<Option<ClientIdentity>, EgressError> {
        match (&self.client_cert, &self.client_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(ClientIdentity {
                cert: cert.clone(),
                key: key.clone(),
            })),
            _ => Err(EgressError::Config(
                "a client certificate needs its key and a key its certificate \
                 (client-cert and client-key go together)"
                    .into(),
            )),
        }
    }

    fn quic_options(&self) -> Result<QuicOptions, EgressError> {
        Ok(QuicOptions {
            endpoint: self.endpoint,
            server_name: self.server_name.clone(),
            trust: self.trust.clone(),
            identity: self.identity()?,
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            keep_alive: self.keep_alive,
            auth_token: self.auth_token.clone(),
            local_addr: self.local_addr,
            run_id: self.run_id,
        })
    }

    fn http_options(&self, h: &HttpSettings) -> Result<http::HttpOptions, EgressError> {
        let mut headers = h.headers.clone();
        if let Some(token) = &self.auth_token {
            let mut v =
                ::http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    EgressError::Config("the token has characters a header cannot carry".into())
                })?;
            v.set_sensitive(true);
            headers.push((::http::header::AUTHORIZATION, v));
        }
        Ok(http::HttpOptions {
            addr: self.endpoint,
            uri: h.uri.clone(),
            tls: h
                .tls
                .then(|| Ok::<_, EgressError>((self.trust.clone(), self.identity()?)))
                .transpose()?,
            server_name: self.server_name.clone(),
            version: h.version,
            connect_timeout: self.connect_timeout,
            request_timeout: h.request_timeout,
            accept: h.accept.clone(),
            headers,
            payload: payload::Payload::new(h.format.clone(), self.run_id, h.epoch),
            idle_timeout: self.idle_timeout,
            keep_alive: self.keep_alive,
            local_addr: self.local_addr,
        })
    }

    fn engine(&self) -> EngineConfig {
        EngineConfig {
            connections: self.connections,
            lanes_per_connection: self.streams_per_connection,
            max_in_flight_per_lane: self.max_in_flight_per_stream,
            send_queue: self.send_queue,
            retry: self.retry,
            alert_deadline_ms: self.alert_deadline_ms,
            jitter_seed: self.jitter_seed,
        }
    }
}

impl From<QuicSetupError> for EgressError {
    fn from(e: QuicSetupError) -> Self {
        match e {
            QuicSetupError::Tls(t) => EgressError::Tls(t),
            QuicSetupError::Socket(s) => EgressError::Socket(s),
            QuicSetupError::Config(c) => EgressError::Config(c),
        }
    }
}

/// A running egress: the engine with the transport the configuration chose.
#[derive(Debug)]
pub struct Egress {
    engine: Engine,
}

impl Egress {
    /// Connects once (bounded by `connect_timeout`) and probes the endpoint — an unreachable
    /// endpoint or a refused certificate or token is an error here — then starts the pool.
    pub async fn start(
        cfg: EgressConfig,
        clock: ScenarioClock,
        ledger: Arc<Mutex<Ledger>>,
    ) -> Result<Egress, EgressError> {
        let started = match &cfg.protocol {
            Protocol::CspAlert => {
                let transport = QuicTransport::new(cfg.quic_options()?)?;
                Engine::start(transport, cfg.engine(), clock, ledger).await
            }
            Protocol::Http(h) => {
                let transport = http::HttpTransport::new(cfg.http_options(h)?)?;
                Engine::start(transport, cfg.engine(), clock, ledger).await
            }
        };
        let engine = started.map_err(|e| match e {
            StartError::Config(c) => EgressError::Config(c),
            StartError::Connect(reason) => EgressError::Unreachable {
                endpoint: cfg.endpoint,
                server_name: cfg.server_name.clone(),
                reason,
            },
        })?;
        Ok(Egress { engine })
    }

    /// The sink to hand to the model. `submit` never blocks.
    pub fn sink(&self) -> Arc<dyn Sink> {
        self.engine.sink()
    }

    /// Counters so far.
    pub fn stats(&self) -> EgressStats {
        self.engine.stats()
    }

    /// Alerts admitted but not yet fated (queued or in flight).
    pub fn outstanding(&self) -> u64 {
        self.engine.outstanding()
    }

    /// A read-only view of the counters that outlives [`Egress::drain`] (see [`Engine::probe`]).
    pub fn probe(&self) -> EngineProbe {
        self.engine.probe()
    }

    /// Resolves with the fatal error once the endpoint has refused this client's credentials.
    pub fn fatal_signal(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        self.engine.fatal_signal()
    }

    /// See [`Engine::drain`].
    pub async fn drain(self, timeout: Duration) -> EgressStats {
        self.engine.drain(timeout).await
    }
}

/// A client QUIC endpoint for `cfg` offering `csp-alert` (for tools and tests that speak the
/// protocol by hand).
pub fn client_endpoint(cfg: &EgressConfig) -> Result<quinn::Endpoint, EgressError> {
    Ok(quic::client_endpoint(&cfg.quic_options()?, &[wire::ALPN])?)
}

/// One QUIC connection attempt to `cfg.endpoint`, bounded by `cfg.connect_timeout`.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    cfg: &EgressConfig,
) -> Result<quinn::Connection, ConnectError> {
    quic::connect(
        endpoint,
        cfg.endpoint,
        &cfg.server_name,
        cfg.connect_timeout,
    )
    .await
}
