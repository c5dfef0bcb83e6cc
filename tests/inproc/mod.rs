//! An in-process reference endpoint and a client configuration that trusts it, shared by the
//! integration tests that talk to `ingest` over raw QUIC (`floods.rs`, `ingest_robustness.rs`).
//! Included with `mod inproc;`, so each test binary compiles its own copy.

use egress::EgressConfig;
use ingest::{IngestConfig, IngestServer};
use std::path::PathBuf;
use std::time::Duration;

/// How long any one of these tests may take.
pub const LIMIT: Duration = Duration::from_secs(60);

/// A file `name` in this test binary's own temporary folder.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "csp-{}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A reference endpoint on loopback with a fresh self-signed certificate, configured by `tweak`.
pub async fn server(name: &str, tweak: impl FnOnce(&mut IngestConfig)) -> IngestServer {
    let mut cfg = IngestConfig::loopback(tmp(&format!("{name}-cert.pem")));
    tweak(&mut cfg);
    ingest::start(cfg).await.unwrap()
}

/// The egress's QUIC client configuration, trusting `s`.
pub fn client_cfg(s: &IngestServer) -> EgressConfig {
    EgressConfig {
        trust: s.trust(),
        ..EgressConfig::new(s.local_addr(), "localhost", PathBuf::new())
    }
}
