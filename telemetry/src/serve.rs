//! The `/metrics` endpoint: plain HTTP/1.1 on a TCP address of the operator's choosing.
//!
//! `GET /metrics` renders every source of the [`Registry`] at that moment, as OpenMetrics when
//! the client asks for it (Prometheus does) and in the Prometheus text format otherwise. The
//! rendering runs on a blocking thread, so a source that has to scan something large never holds
//! up the async tasks of the program being observed. Connections that send no request within a
//! few seconds are closed; the server stops when [`MetricsServer::shutdown`] is called or it is
//! dropped.

use crate::exposition::{Format, Registry};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a connection may take to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// A running `/metrics` endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address it listens on (the port chosen when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to scrape.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` and serves `registry` on it in a background task of the current tokio runtime.
pub async fn serve(addr: SocketAddr, registry: Arc<Registry>) -> std::io::Result<MetricsServer> {
    serve_on(std::net::TcpListener::bind(addr)?, registry)
}

/// Serves `registry` on a listener bound earlier (so a program can refuse a busy address before
/// it starts anything else), in a background task of the current tokio runtime.
pub fn serve_on(
    listener: std::net::TcpListener,
    registry: Arc<Registry>,
) -> std::io::Result<MetricsServer> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, registry));
    Ok(MetricsServer { addr, task })
}

async fn accept_loop(listener: TcpListener, registry: Arc<Registry>) {
    // Connections live in this set: aborting the accept loop aborts them all.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    conns.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            respond(req, registry.clone())
                        });
                        let served = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(e) = served {
                            tracing::debug!("metrics connection: {e}");
                        }
                    });
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(e) => {
                    tracing::warn!("metrics endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn respond(
    req: Request<Incoming>,
    registry: Arc<Registry>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status: StatusCode, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n"));
    }
    match req.uri().path() {
        "/metrics" => {}
        "/" => return Ok(text(StatusCode::OK, "csp-loadtest metrics: GET /metrics\n")),
        _ => return Ok(text(StatusCode::NOT_FOUND, "not found: GET /metrics\n")),
    }
    let format = Format::negotiate(req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()));
    let rendered = tokio::task::spawn_blocking(move || registry.render(format)).await;
    Ok(match rendered {
        Ok(Ok(body)) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            r
        }
        _ => {
            tracing::error!("metrics endpoint: a source could not render its metrics");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics could not be rendered\n",
            )
        }
    })
}
