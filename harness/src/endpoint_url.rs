//! Endpoint URLs as users write them: `quic://HOST:PORT` (`csp-alert` over QUIC),
//! `http://HOST[:PORT]/PATH`, `https://HOST[:PORT]/PATH` (HTTP/1.1 or HTTP/2) and
//! `h3://HOST[:PORT]/PATH` (HTTP/3; the same as `https://` with `--http3`).
//!
//! Parsing only checks the form; resolving the host happens when the run starts, so a name that does
//! not resolve is reported as an endpoint error (exit 2), not a usage error.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// A parsed endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    /// Transport scheme.
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port (UDP for `quic` and `h3`, TCP for `http` and `https`).
    pub port: u16,
    /// Path and query of HTTP URLs (`/` at least); empty for `quic`.
    pub path: String,
}

/// Supported transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// QUIC with the csp-alert protocol (docs/protocol.md).
    Quic,
    /// Plain HTTP (HTTP/1.1, or HTTP/2 with prior knowledge).
    Http,
    /// HTTP over TLS (ALPN chooses HTTP/2 or HTTP/1.1).
    Https,
    /// HTTP/3 over QUIC.
    H3,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Quic => "quic",
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::H3 => "h3",
        }
    }

    fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Quic => None,
            Scheme::Http => Some(80),
            Scheme::Https | Scheme::H3 => Some(443),
        }
    }
}

const FORMS: &str = "quic://HOST:PORT, http(s)://HOST[:PORT]/PATH or h3://HOST[:PORT]/PATH";

/// Why an endpoint URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://`.
    #[error("'{0}' is not a URL: expected {FORMS}")]
    NoScheme(String),
    /// Unknown scheme.
    #[error("unsupported scheme '{0}': expected {FORMS}")]
    Scheme(String),
    /// Missing or bad port.
    #[error("'{0}' has no valid port: expected {FORMS}")]
    Port(String),
    /// Missing host.
    #[error("'{0}' has no host: expected {FORMS}")]
    Host(String),
    /// Path, query or credentials where none may be.
    #[error("'{0}' has a path, query or user part; give only quic://HOST:PORT")]
    Extra(String),
    /// Credentials in an HTTP URL (they would sit on the command line).
    #[error("'{0}' has a user part; pass credentials with --header or --token instead")]
    UserInfo(String),
}

impl FromStr for EndpointUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| UrlError::NoScheme(s.to_string()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "quic" => Scheme::Quic,
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "h3" => Scheme::H3,
            other => return Err(UrlError::Scheme(other.to_string())),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(match scheme {
                Scheme::Quic => UrlError::Extra(s.to_string()),
                _ => UrlError::UserInfo(s.to_string()),
            });
        }
        let path = match scheme {
            Scheme::Quic if !path.is_empty() && path != "/" => {
                return Err(UrlError::Extra(s.to_string()));
            }
            Scheme::Quic => String::new(),
            _ => {
                let p = path.split('#').next().unwrap_or_default();
                match p {
                    "" => "/".to_string(),
                    p if p.starts_with('?') => format!("/{p}"),
                    p => p.to_string(),
                }
            }
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::Host(s.to_string()))?;
            (h, p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::Host(s.to_string()));
        }
        let port = match (port, scheme.default_port()) {
            (Some(p), _) => p
                .parse::<u16>()
                .map_err(|_| UrlError::Port(s.to_string()))?,
            (None, Some(d)) => d,
            (None, None) => return Err(UrlError::Port(s.to_string())),
        };
        if port == 0 {
            return Err(UrlError::Port(s.to_string()));
        }
        Ok(EndpointUrl {
            scheme,
            host: host.to_string(),
            port,
            path,
        })
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
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

    /// The URI HTTP requests carry (`h3` becomes `https`, its scheme on the wire).
    pub fn http_uri(&self) -> Result<http::Uri, http::Error> {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            _ => "https",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let uri = http::Uri::builder()
            .scheme(scheme)
            .authority(format!("{host}:{}", self.port))
            .path_and_query(self.path.as_str())
            .build()?;
        Ok(uri)
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
        let u: EndpointUrl = "https://ingest.example.net/alerts?src=csp".parse().unwrap();
        assert_eq!(
            (u.scheme, u.port, u.path.as_str()),
            (Scheme::Https, 443, "/alerts?src=csp")
        );
        assert_eq!(
            u.http_uri().unwrap().to_string(),
            "https://ingest.example.net:443/alerts?src=csp"
        );
        let u: EndpointUrl = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/"));
        let u: EndpointUrl = "h3://[::1]:8443/a".parse().unwrap();
        assert_eq!(u.scheme, Scheme::H3);
        assert_eq!(u.http_uri().unwrap().to_string(), "https://[::1]:8443/a");
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for bad in [
            "127.0.0.1:4433",
            "ftp://h:1",
            "quic://h",
            "quic://h:0",
            "quic://h:99999",
            "quic://:4433",
            "quic://h:1/path",
            "quic://u@h:1",
            "https://user:pw@h/alerts",
            "http://:80/x",
        ] {
            assert!(bad.parse::<EndpointUrl>().is_err(), "{bad} accepted");
        }
    }
}
