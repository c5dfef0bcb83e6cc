//! `csp-harness ingest`: the reference endpoint's command-line flags and its serve-until-stopped
//! loop. The endpoint itself lives in the `ingest` crate; this module only maps flags onto
//! [`IngestConfig`] and prints what a client needs to reach it.

use ingest::{
    BadReplies, BadReplyKind, Behaviour, Durability, IngestConfig, IngestLimits, Refusal,
    RefuseHow, start,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tls::ServerCertSource;

/// `csp-harness ingest`: run the reference endpoint until Ctrl-C or SIGTERM.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Address to listen on for csp-alert over QUIC (UDP).
    #[arg(long, default_value = "127.0.0.1:4433")]
    pub listen: SocketAddr,
    /// Also serve HTTP/1.1 and HTTP/2 over TLS on this TCP address and HTTP/3 on the same port
    /// over UDP (advertised with Alt-Svc); alerts are POSTed to any path (docs/http.md).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Certificate chain PEM (with --key); without it a self-signed certificate is generated.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key PEM (with --cert).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Where to write the generated self-signed certificate PEM, for clients to pin (`--ca`).
    #[arg(long, default_value = "csp-ingest-cert.pem", conflicts_with = "cert")]
    pub cert_out: PathBuf,
    /// Append one CSV line per stored alert to this file (write-ahead, before the ACK). It must be
    /// a regular file: new, empty, or a ledger this endpoint wrote (re-read for de-duplication).
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Serve live Prometheus/OpenMetrics metrics at http://ADDR/metrics (stored, duplicates,
    /// rejected by reason, store latency; README "Live metrics"); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// What an ACK waits for (with --ledger): `fsync`: the batch's lines are written and
    /// fdatasync'ed (survives a power cut; one sync per group of batches); `flush`: written to the
    /// operating system (survives the endpoint being killed, not a power cut).
    #[arg(long, value_enum, default_value = "fsync", requires = "ledger")]
    pub durability: Durability,
    /// Security settings.
    #[command(flatten)]
    pub security: SecurityArgs,
    /// Resource limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Fault injection.
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// `ingest` security flags.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Security")]
pub struct SecurityArgs {
    /// Require client certificates issued by a CA in this PEM file (mutual TLS); clients without
    /// one are refused in the handshake.
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// Require a HELLO frame carrying this token at the start of every stream (HTTP: a bearer
    /// token). Prefer the environment variable or --auth-token-file: a token on the command line
    /// is visible to every user in `ps`.
    #[arg(long, env = "CSP_INGEST_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// File holding the required token (the whole file, one trailing line break removed), instead
    /// of --auth-token.
    #[arg(long, value_name = "FILE", conflicts_with = "auth_token")]
    pub auth_token_file: Option<PathBuf>,
}

/// `ingest` resource-limit flags.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Concurrent streams per connection.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_streams: u32,
    /// Concurrent connections.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Concurrent connections from one source IP address.
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_ip: usize,
    /// Close connections idle for this many seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_s: u64,
    /// Close a stream that stops part-way through a frame for this many seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stall_timeout_s: u64,
    /// QUIC handshakes from addresses not yet validated allowed at once; beyond them, Initials
    /// from unvalidated addresses get a QUIC Retry (so a flood of forged Initials holds no
    /// connection slot). 0: always validate addresses with Retry.
    #[arg(long, default_value_t = 32)]
    pub max_unvalidated_handshakes: usize,
    /// Largest frame accepted (length field: type byte + body), at most 4096.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(64..=4096))]
    pub max_frame: u32,
}

/// `ingest` fault-injection flags: make the endpoint misbehave on purpose, to test a harness
/// set-up against it. Never on an endpoint that matters.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Fault injection (testing a harness set-up; never in production)")]
pub struct FaultArgs {
    /// Reject every alert.
    #[arg(long)]
    pub reject_all: bool,
    /// Wait this many milliseconds before acknowledging each stored batch (slow acks).
    #[arg(long, default_value_t = 0)]
    pub ack_delay_ms: u64,
    /// Once this many alerts are stored, stop reading and acknowledging for --stall-for-ms.
    #[arg(long, requires = "stall_for_ms")]
    pub stall_after: Option<u64>,
    /// Length of the stall of --stall-after, in milliseconds.
    #[arg(long, requires = "stall_after")]
    pub stall_for_ms: Option<u64>,
    /// Close each connection abruptly (stored, unacknowledged batch) once it has had this many
    /// alerts acknowledged.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub close_after: Option<u64>,
    /// Send this kind of bad reply every --bad-reply-every stored batches.
    #[arg(long, value_enum)]
    pub bad_reply: Option<BadReplyKind>,
    /// How often --bad-reply is sent (every n-th stored batch).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub bad_reply_every: u64,
    /// Refuse connection attempts this way (see --refuse-after and --refuse-count).
    #[arg(long, value_enum)]
    pub refuse: Option<RefuseHow>,
    /// Connection attempts accepted before --refuse starts.
    #[arg(long, default_value_t = 0)]
    pub refuse_after: u64,
    /// Connection attempts refused by --refuse.
    #[arg(long, default_value_t = u64::MAX)]
    pub refuse_count: u64,
    /// Once this many alerts are stored, refuse every client's credentials (as if the token had
    /// been rotated mid-run): csp-alert ERROR UNAUTHENTICATED, HTTP 401.
    #[arg(long)]
    pub revoke_auth_after: Option<u64>,
}

impl IngestArgs {
    /// The endpoint configuration these flags describe (reading the token file, if any).
    pub fn to_config(&self) -> anyhow::Result<IngestConfig> {
        let auth_token = match &self.security.auth_token_file {
            Some(f) => Some(crate::token::read_token_file(f, "auth token")?),
            None => self.security.auth_token.clone(),
        };
        let tls = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => ServerCertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => ServerCertSource::SelfSigned {
                cert_out: self.cert_out.clone(),
            },
        };
        let f = &self.faults;
        Ok(IngestConfig {
            listen: self.listen,
            tls,
            client_ca: self.security.client_ca.clone(),
            ledger_path: self.ledger.clone(),
            durability: self.durability,
            http_listen: self.http_listen,
            behaviour: Behaviour {
                reject_all: f.reject_all,
                ack_delay: Duration::from_millis(f.ack_delay_ms),
                auth_token,
                stall_after: f.stall_after,
                stall_for: Duration::from_millis(f.stall_for_ms.unwrap_or(0)),
                close_after: f.close_after,
                bad_replies: f.bad_reply.map(|kind| BadReplies {
                    kind,
                    every: f.bad_reply_every,
                }),
                refuse: f.refuse.map(|how| Refusal {
                    how,
                    after: f.refuse_after,
                    count: f.refuse_count,
                }),
                revoke_auth_after: f.revoke_auth_after,
            },
            limits: IngestLimits {
                max_streams_per_connection: self.limits.max_streams,
                max_connections: self.limits.max_connections,
                max_connections_per_ip: self.limits.max_connections_per_ip,
                idle_timeout: Duration::from_secs(self.limits.idle_timeout_s),
                stall_timeout: Duration::from_secs(self.limits.stall_timeout_s),
                max_frame: self.limits.max_frame as usize,
                max_unvalidated_handshakes: self.limits.max_unvalidated_handshakes,
                ..IngestLimits::default()
            },
        })
    }
}

/// Serves until `stop` resolves (with the name of what stopped it), printing the address and the
/// certificate to pin on start and the counters (JSON) on exit.
pub async fn run_ingest(
    args: IngestArgs,
    stop: impl std::future::Future<Output = &'static str>,
) -> anyhow::Result<()> {
    let metrics = args.metrics_listen.map(crate::metrics::bind).transpose()?;
    let config = args.to_config()?;
    let token_required = config.behaviour.auth_token.is_some();
    let server = start(config).await?;
    let cert = server.cert_pem_path().display().to_string();
    println!(
        "csp-harness ingest: listening on quic://{} (ALPN {}); certificate to pin: {cert}",
        server.local_addr(),
        String::from_utf8_lossy(wire::ALPN)
    );
    if let Some(addr) = server.http_addr() {
        println!(
            "HTTP: https://{addr}/ (HTTP/1.1 and HTTP/2 over TLS on TCP, HTTP/3 on UDP {})",
            addr.port()
        );
    }
    if let Some(l) = &args.ledger {
        println!(
            "ledger: {} (durability {})",
            l.display(),
            match args.durability {
                Durability::Fsync => "fsync: an ACK means written and synced",
                Durability::Flush => "flush: an ACK means written to the OS, not synced",
            }
        );
    }
    let metrics = match metrics {
        Some(listener) => {
            let source = std::sync::Arc::new(crate::metrics::IngestSource(server.probe()));
            let m = crate::metrics::serve(listener, source)?;
            println!("metrics: {}", m.url());
            Some(m)
        }
        None => None,
    };
    println!(
        "client authentication: {}{}",
        match &args.security.client_ca {
            Some(ca) => format!("client certificate issued by {}", ca.display()),
            None => "no client certificate required".into(),
        },
        if token_required {
            "; HELLO token required"
        } else {
            "; no token required"
        }
    );
    let b = server.behaviour();
    if b.reject_all
        || !b.ack_delay.is_zero()
        || b.stall_after.is_some()
        || b.close_after.is_some()
        || b.bad_replies.is_some()
        || b.refuse.is_some()
        || b.revoke_auth_after.is_some()
    {
        tracing::warn!("fault injection is ON: this endpoint misbehaves on purpose ({b:?})");
    }
    let why = stop.await;
    eprintln!("{why}: closing gracefully");
    let stats = server.shutdown().await;
    if let Some(m) = metrics {
        m.shutdown().await;
    }
    println!("{}", serde_json::to_string(&stats)?);
    Ok(())
}
