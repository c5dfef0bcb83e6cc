//! TLS 1.3 set-up (and the QUIC socket set-up) for both ends of every transport: `csp-alert` over
//! QUIC, HTTP/1.1 and HTTP/2 over TLS, HTTP/3 over QUIC. The harness's egress and the reference
//! endpoint both use it, so neither has to reach into the other; it knows no protocol, the caller
//! names the ALPN ids it offers.
//!
//! The endpoint presents a certificate from PEM files (`--cert`/`--key`) or a freshly generated
//! self-signed one for `localhost`, `127.0.0.1` and `::1`, whose PEM it can write where a client can
//! pin it; it can require client certificates issued by a CA it is given (mutual TLS).
//! The client trusts exactly the certificates in a PEM file (a CA or the pinned endpoint
//! certificate) or given in memory, and can present a client certificate. It skips verification
//! only when told to by the loudly named [`TrustSource::InsecureSkipVerify`], and then says so in a
//! warning. Every load error names the file and what is wrong with it. Everything uses the `ring`
//! provider (no aws-lc). [`CertAuthority`] makes CAs and certificates for tests and trials.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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
    /// **Insecure**: accept any endpoint certificate, for any name, without checking who issued
    /// it (signatures of the handshake are still checked). Anyone on the path can then read and
    /// alter the alerts. For trials against endpoints with throw-away certificates only; a warning
    /// is logged whenever a client configuration is built with it.
    InsecureSkipVerify,
}

/// A client certificate chain and key, presented when the endpoint requires mutual TLS.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// Certificate chain PEM (leaf first).
    pub cert: PathBuf,
    /// Private key PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A generated certificate and its key.
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
#[derive(Clone)]
pub struct ServerTls {
    /// rustls configuration (TLS 1.3 only, the ALPN ids the caller named).
    pub config: Arc<rustls::ServerConfig>,
    /// The leaf certificate presented.
    pub cert_der: CertificateDer<'static>,
    /// The PEM file holding the leaf certificate (loaded from or written to).
    pub cert_pem_path: PathBuf,
    /// The private key's bytes, only to derive secrets from ([`ServerTls::derive_secret`]).
    key_der: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_pem_path", &self.cert_pem_path)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A 32-byte secret for `label`, derived from the endpoint's private key (HMAC-SHA256 keyed
    /// with the key's DER): the same every time the endpoint starts with the same key, unknown to
    /// anyone without the key. (A QUIC endpoint keys its stateless resets with it, so that a
    /// client of the endpoint before a restart accepts a reset from the endpoint after it.) A
    /// self-signed endpoint has a new key, hence new secrets, every start.
    pub fn derive_secret(&self, label: &[u8]) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key_der);
        let tag = ring::hmac::sign(&key, label);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
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

/// A certificate authority made on the spot, for tests and trials of mutual TLS and of bad
/// certificates (expired, wrong name). Not for production keys.
pub struct CertAuthority {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate PEM (give it to the endpoint as `--client-ca`, or to a client as `--ca`).
    pub cert_pem: String,
    /// The CA certificate DER.
    pub cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

/// Validity of a generated certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 2020 to 2100.
    Current,
    /// Expired: valid from 2000-01-01 to 2001-01-01.
    Expired,
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

impl CertAuthority {
    /// A new CA whose certificate's common name is `name`.
    pub fn new(name: &str) -> Result<Self, TlsError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(CertAuthority {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// Issues a certificate for `names` (DNS names or IP addresses), for a server or a client.
    pub fn issue(
        &self,
        names: &[&str],
        client: bool,
        validity: Validity,
    ) -> Result<SelfSigned, TlsError> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(gen_err)?;
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        set_validity(&mut params, validity);
        let key = rcgen::KeyPair::generate().map_err(gen_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(SelfSigned {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pkcs8: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn set_validity(params: &mut rcgen::CertificateParams, validity: Validity) {
    let (from, to) = match validity {
        Validity::Current => ((2020, 1, 1), (2100, 1, 1)),
        Validity::Expired => ((2000, 1, 1), (2001, 1, 1)),
    };
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
}

/// A self-signed certificate for `names` with the given validity (e.g. an expired one, to test
/// that clients refuse it).
pub fn self_signed_for(names: &[&str], validity: Validity) -> Result<SelfSigned, TlsError> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).map_err(gen_err)?;
    set_validity(&mut params, validity);
    let key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let cert = params.self_signed(&key).map_err(gen_err)?;
    Ok(SelfSigned {
        cert_der: cert.der().clone(),
        cert_pem: cert.pem(),
        key_pkcs8: key.serialize_der(),
        key_pem: key.serialize_pem(),
    })
}

/// Builds the endpoint's TLS configuration from `source`. With `client_ca`, every client must
/// present a certificate issued by a CA in that PEM file (mutual TLS); clients without one are
/// refused in the handshake.
pub fn server_tls(
    source: &ServerCertSource,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<ServerTls, TlsError> {
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
    let key_der = key.secret_der().to_vec();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let what = "client CA certificate";
            let mut roots = rustls::RootCertStore::empty();
            for (i, cert) in load_certs(path, what)?.into_iter().enumerate() {
                roots.add(cert).map_err(|e| {
                    bad_pem(
                        what,
                        path,
                        format!("certificate #{} is not a usable CA: {e}", i + 1),
                    )
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| bad_pem(what, path, format!("unusable client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(ServerTls {
        config: Arc::new(config),
        cert_der: leaf,
        cert_pem_path,
        key_der,
    })
}

/// Builds the client's TLS configuration trusting exactly the certificates of `trust` (or nothing
/// at all, with a warning, for [`TrustSource::InsecureSkipVerify`]), presenting `identity` if given.
pub fn client_config(
    trust: &TrustSource,
    identity: Option<&ClientIdentity>,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, TlsError> {
    client_config_for(trust, identity, alpn, Versions::Tls13)
}

/// Which TLS versions a client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.3 only (QUIC requires it; the reference endpoint speaks nothing else).
    Tls13,
    /// TLS 1.3, or 1.2 if the server offers nothing newer: HTTP endpoints in the field (and
    /// nginx's defaults on some systems) still stop at TLS 1.2.
    Tls12And13,
}

/// [`client_config`] with a choice of TLS versions.
pub fn client_config_for(
    trust: &TrustSource,
    identity: Option<&ClientIdentity>,
    alpn: &[&[u8]],
    versions: Versions,
) -> Result<rustls::ClientConfig, TlsError> {
    let versions: &[&rustls::SupportedProtocolVersion] = match versions {
        Versions::Tls13 => &[&rustls::version::TLS13],
        Versions::Tls12And13 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match trust {
        TrustSource::InsecureSkipVerify => {
            tracing::warn!(
                "INSECURE: the endpoint's certificate is NOT verified (insecure-skip-verify); \
                 anyone on the network path can impersonate the endpoint and read or alter alerts"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipServerVerification(provider())))
        }
        _ => builder.with_root_certificates(trust_roots(trust)?),
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain = load_certs(&id.cert, "client certificate")?;
            let key = load_key_as(&id.key, "client private key")?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                TlsError::Config(format!(
                    "client certificate {} and key {} do not fit: {e}",
                    id.cert.display(),
                    id.key.display()
                ))
            })?
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn trust_roots(trust: &TrustSource) -> Result<rustls::RootCertStore, TlsError> {
    let (anchors, origin) = match trust {
        TrustSource::PemFile(path) => (
            load_certs(path, "CA/pinned certificate")?,
            path.display().to_string(),
        ),
        TrustSource::Der(certs) => (certs.clone(), "in-memory certificates".to_string()),
        TrustSource::InsecureSkipVerify => (Vec::new(), String::new()),
    };
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in anchors.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::BadPem {
            what: "CA/pinned certificate",
            path: PathBuf::from(&origin),
            problem: format!("certificate #{} is not a usable trust anchor: {e}", i + 1),
        })?;
    }
    Ok(roots)
}

/// The verifier behind [`TrustSource::InsecureSkipVerify`]: any certificate, any name; handshake
/// signatures are still verified so the connection is at least consistent.
#[derive(Debug)]
struct SkipServerVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SkipServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads every certificate from a PEM file; an error if there is none.
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read_file(path, what)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
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
    load_key_as(path, "private key")
}

fn load_key_as(path: &Path, what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = read_file(path, what)?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        pem::Error::NoItemsFound => bad_pem(
            what,
            path,
            "no PRIVATE KEY block found (expected PKCS#8, PKCS#1 or SEC1 PEM)".into(),
        ),
        e => bad_pem(what, path, format!("not valid PEM: {e}")),
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

/// UDP socket send and receive buffer size requested for every QUIC socket (the default
/// overflowed during bursts on the measuring machine).
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

/// A UDP socket bound to `addr` with [`UDP_BUFFER_BYTES`] send and receive buffers (a smaller
/// buffer granted by the OS is logged, not an error), for a QUIC endpoint of either side.
pub fn bind_udp(addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = sock.set_recv_buffer_size(UDP_BUFFER_BYTES) {
        tracing::warn!("cannot set UDP receive buffer to {UDP_BUFFER_BYTES} bytes: {e}");
    }
    if let Err(e) = sock.set_send_buffer_size(UDP_BUFFER_BYTES) {
        tracing::warn!("cannot set UDP send buffer to {UDP_BUFFER_BYTES} bytes: {e}");
    }
    sock.bind(&addr.into())?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

#[cfg(test)]
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
        let tls = server_tls(
            &ServerCertSource::Files {
                cert: c.clone(),
                key: k.clone(),
            },
            Some(&c),
            &[b"h2"],
        )
        .unwrap();
        assert_eq!(tls.cert_der, s.cert_der);
        // Secrets derived from the same key are the same at every start, and differ by label
        // and by key.
        let again = server_tls(
            &ServerCertSource::Files {
                cert: c.clone(),
                key: k.clone(),
            },
            None,
            &[b"h2"],
        )
        .unwrap();
        assert_eq!(tls.derive_secret(b"a"), again.derive_secret(b"a"));
        assert_ne!(tls.derive_secret(b"a"), tls.derive_secret(b"b"));
        let other = server_tls(
            &ServerCertSource::SelfSigned {
                cert_out: tmp("other.pem"),
            },
            None,
            &[b"h2"],
        )
        .unwrap();
        assert_ne!(tls.derive_secret(b"a"), other.derive_secret(b"a"));
        let _ = std::fs::remove_file(tmp("other.pem"));
        client_config(&TrustSource::PemFile(c.clone()), None, &[]).unwrap();
        let id = ClientIdentity {
            cert: c.clone(),
            key: k.clone(),
        };
        client_config(&TrustSource::InsecureSkipVerify, Some(&id), &[]).unwrap();
        let _ = std::fs::remove_file(c);
        let _ = std::fs::remove_file(k);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let missing = tmp("missing.pem");
        let e = client_config(&TrustSource::PemFile(missing.clone()), None, &[]).unwrap_err();
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
        // A certificate where the key should be is no key; a block cut off is not valid PEM.
        let s = self_signed().unwrap();
        std::fs::write(&junk, &s.cert_pem).unwrap();
        let e = load_key(&junk).unwrap_err().to_string();
        assert!(e.contains("no PRIVATE KEY block"), "{e}");
        std::fs::write(&junk, &s.cert_pem[..s.cert_pem.len() / 2]).unwrap();
        let e = load_certs(&junk, "certificate").unwrap_err().to_string();
        assert!(e.contains("not valid PEM"), "{e}");
        std::fs::write(&junk, format!("{}{}", s.key_pem, s.cert_pem)).unwrap();
        assert_eq!(load_certs(&junk, "certificate").unwrap(), vec![s.cert_der]);
        assert!(matches!(load_key(&junk).unwrap(), PrivateKeyDer::Pkcs8(_)));
        let _ = std::fs::remove_file(junk);
    }
}
