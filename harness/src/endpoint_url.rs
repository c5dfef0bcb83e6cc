//! Endpoint URLs as users write them: `quic://HOST:PORT`.
//!
//! Parsing only checks the form; resolving the host happens when the run starts, so a name that does
//! not resolve is reported as an endpoint error (exit 2), not a usage error.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// A parsed endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    /// Transport scheme (only `quic` today).
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// UDP port.
    pub port: u16,
}

/// Supported transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// QUIC with the csp-alert protocol (docs/protocol.md).
    Quic,
}

/// Why an endpoint URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://`.
    #[error("'{0}' is not a URL: expected quic://HOST:PORT")]
    NoScheme(String),
    /// Unknown scheme.
    #[error("unsupported scheme '{0}': expected quic://HOST:PORT")]
    Scheme(String),
    /// Missing or bad port.
    #[error("'{0}' has no valid port: expected quic://HOST:PORT")]
    Port(String),
    /// Missing host.
    #[error("'{0}' has no host: expected quic://HOST:PORT")]
    Host(String),
    /// Path, query or credentials present.
    #[error("'{0}' has a path, query or user part; give only quic://HOST:PORT")]
    Extra(String),
}

impl FromStr for EndpointUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| UrlError::NoScheme(s.to_string()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "quic" => Scheme::Quic,
            other => return Err(UrlError::Scheme(other.to_string())),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(UrlError::Extra(s.to_string()));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::Host(s.to_string()))?;
            (
                h,
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::Port(s.to_string()))?,
            )
        } else {
            rest.rsplit_once(':')
                .ok_or_else(|| UrlError::Port(s.to_string()))?
        };
        if host.is_empty() {
            return Err(UrlError::Host(s.to_string()));
        }
        let port: u16 = port.parse().map_err(|_| UrlError::Port(s.to_string()))?;
        if port == 0 {
            return Err(UrlError::Port(s.to_string()));
        }
        Ok(EndpointUrl {
            scheme,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "quic://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "quic://{}:{}", self.host, self.port)
        }
    }
}

impl EndpointUrl {
    /// Resolves the host to a socket address (the first one, IPv4 preferred).
    pub fn resolve(&self) -> std::io::Result<SocketAddr> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} resolves to no address", self.host),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_write() {
        let u: EndpointUrl = "quic://127.0.0.1:4433".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 4433));
        let u: EndpointUrl = "QUIC://[::1]:9000/".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.to_string(), "quic://[::1]:9000");
        let u: EndpointUrl = "quic://localhost:1".parse().unwrap();
        assert_eq!(u.host, "localhost");
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for bad in [
            "127.0.0.1:4433",
            "http://h:1",
            "quic://h",
            "quic://h:0",
            "quic://h:99999",
            "quic://:4433",
            "quic://h:1/path",
            "quic://u@h:1",
        ] {
            assert!(bad.parse::<EndpointUrl>().is_err(), "{bad} accepted");
        }
    }
}
