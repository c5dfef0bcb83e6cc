//! TLS 1.3 set-up for both ends of the `csp-alert/1` QUIC connection.
//!
//! The endpoint presents a certificate from PEM files (`--cert`/`--key`) or a freshly generated
//! self-signed one for `localhost`, `127.0.0.1` and `::1`, whose PEM it can write where a client can
//! pin it. The client trusts exactly the certificates in a PEM file (a CA or the pinned endpoint
//! certificate) or given in memory; it never skips verification. Every load error names the file
//! and what is wrong with it. Everything uses the `ring` provider (no aws-lc).

use crate::wire::ALPN;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Names the self-signed certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Errors loading or building TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} file {path}: {source}")]
    Read {
        /// What the file was meant to hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file was read but its content is unusable.
    #[error("{what} file {path}: {problem}")]
    BadPem {
        /// What the file was meant to hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file could not be written.
    #[error("cannot write {what} to {path}: {source}")]
    Write {
        /// What was being written.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// Where the endpoint's certificate comes from.
#[derive(Debug, Clone)]
pub enum ServerCertSource {
    /// PEM files: a certificate chain (leaf first) and its private key.
    Files {
        /// Certificate chain PEM.
        cert: PathBuf,
        /// Private key PEM (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// Generate a self-signed certificate for [`SELF_SIGNED_NAMES`] and write its PEM to
    /// `cert_out`, so a client can pin it.
    SelfSigned {
        /// Where to write the certificate PEM.
        cert_out: PathBuf,
    },
}

/// Where the client's trust comes from.
#[derive(Debug, Clone)]
pub enum TrustSource {
    /// Every certificate in this PEM file is a trust anchor (a CA, or the pinned endpoint cert).
    PemFile(PathBuf),
    /// These certificates (DER) are the trust anchors.
    Der(Vec<CertificateDer<'static>>),
}

/// A generated self-signed certificate and key.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// Certificate DER.
    pub cert_der: CertificateDer<'static>,
    /// Certificate PEM.
    pub cert_pem: String,
    /// Private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
    /// Private key PEM.
    pub key_pem: String,
}

/// The endpoint's TLS configuration and the certificate a client should pin.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// rustls configuration (TLS 1.3 only, ALPN `csp-alert/1`).
    pub config: Arc<rustls::ServerConfig>,
    /// The leaf certificate presented.
    pub cert_der: CertificateDer<'static>,
    /// The PEM file holding the leaf certificate (loaded from or written to).
    pub cert_pem_path: PathBuf,
}

/// Generates a self-signed certificate for [`SELF_SIGNED_NAMES`].
pub fn self_signed() -> Result<SelfSigned, TlsError> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(SelfSigned {
        cert_der: ck.cert.der().clone(),
        cert_pem: ck.cert.pem(),
        key_pkcs8: ck.signing_key.serialize_der(),
        key_pem: ck.signing_key.serialize_pem(),
    })
}

/// Builds the endpoint's TLS configuration from `source`.
pub fn server_tls(source: &ServerCertSource) -> Result<ServerTls, TlsError> {
    let (chain, key, cert_pem_path) = match source {
        ServerCertSource::Files { cert, key } => (
            load_certs(cert, "certificate")?,
            load_key(key)?,
            cert.clone(),
        ),
        ServerCertSource::SelfSigned { cert_out } => {
            let s = self_signed()?;
            write_file(cert_out, s.cert_pem.as_bytes(), "the certificate PEM")?;
            (
                vec![s.cert_der],
                PrivateKeyDer::Pkcs8(s.key_pkcs8.into()),
                cert_out.clone(),
            )
        }
    };
    let Some(leaf) = chain.first().cloned() else {
        return Err(TlsError::Config("no certificate".into()));
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        cert_der: leaf,
        cert_pem_path,
    })
}

/// Builds the client's TLS configuration trusting exactly the certificates of `trust`.
pub fn client_config(trust: &TrustSource) -> Result<rustls::ClientConfig, TlsError> {
    let (anchors, origin) = match trust {
        TrustSource::PemFile(path) => (
            load_certs(path, "CA/pinned certificate")?,
            path.display().to_string(),
        ),
        TrustSource::Der(certs) => (certs.clone(), "in-memory certificates".to_string()),
    };
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in anchors.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::BadPem {
            what: "CA/pinned certificate",
            path: PathBuf::from(&origin),
            problem: format!("certificate #{} is not a usable trust anchor: {e}", i + 1),
        })?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Reads every certificate from a PEM file; an error if there is none.
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read_file(path, what)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| bad_pem(what, path, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad_pem(
            what,
            path,
            "no CERTIFICATE block found (expected PEM '-----BEGIN CERTIFICATE-----')".into(),
        ));
    }
    Ok(certs)
}

/// Reads the first private key from a PEM file; an error if there is none.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "private key";
    let data = read_file(path, what)?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| bad_pem(what, path, format!("not valid PEM: {e}")))?
        .ok_or_else(|| {
            bad_pem(
                what,
                path,
                "no PRIVATE KEY block found (expected PKCS#8, PKCS#1 or SEC1 PEM)".into(),
            )
        })
}

/// Writes `data` to `path`, creating or truncating it.
pub fn write_file(path: &Path, data: &[u8], what: &'static str) -> Result<(), TlsError> {
    std::fs::write(path, data).map_err(|source| TlsError::Write {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn bad_pem(what: &'static str, path: &Path, problem: String) -> TlsError {
    TlsError::BadPem {
        what,
        path: path.to_path_buf(),
        problem,
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("csp-tls-{}-{name}", std::process::id()))
    }

    #[test]
    fn self_signed_round_trips_through_files() {
        let s = self_signed().unwrap();
        let (c, k) = (tmp("cert.pem"), tmp("key.pem"));
        std::fs::write(&c, &s.cert_pem).unwrap();
        std::fs::write(&k, &s.key_pem).unwrap();
        let tls = server_tls(&ServerCertSource::Files {
            cert: c.clone(),
            key: k.clone(),
        })
        .unwrap();
        assert_eq!(tls.cert_der, s.cert_der);
        client_config(&TrustSource::PemFile(c.clone())).unwrap();
        let _ = std::fs::remove_file(c);
        let _ = std::fs::remove_file(k);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let missing = tmp("missing.pem");
        let e = client_config(&TrustSource::PemFile(missing.clone())).unwrap_err();
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
        let junk = tmp("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        let e = load_certs(&junk, "certificate").unwrap_err().to_string();
        assert!(
            e.contains("no CERTIFICATE block") && e.contains("junk.pem"),
            "{e}"
        );
        let e = load_key(&junk).unwrap_err().to_string();
        assert!(e.contains("no PRIVATE KEY block"), "{e}");
        let _ = std::fs::remove_file(junk);
    }
}
