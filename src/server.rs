//! The HTTP/1.1 server loop: accepts connections up to a maximum, gives each client a deadline
//! for its headers (and so for idling between requests) and its body, and drains on shutdown
//! within a deadline of its own.
//!
//! A client that opens a socket and never finishes a request costs a file descriptor and a
//! task; without these bounds a few thousand such sockets exhaust the descriptors and every
//! other client, `/health` included, goes unanswered. The limits are settings
//! ([`Limits`], `dispatchlog serve --help`).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The bounds of one instance's client connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; a connection beyond it is answered 503 and closed.
    pub max_connections: usize,
    /// Change streams open at once; a stream beyond it is answered 503.
    pub max_streams: usize,
    /// Time to send a request's headers, from when the connection is ready for a request (on a
    /// kept-alive connection, this includes its idle time).
    pub header_timeout: Duration,
    /// Time to send a request's whole body.
    pub body_timeout: Duration,
    /// How long shutdown waits for requests in flight and open streams.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_streams: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The body deadline, for the body extractor: carried by each request.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// What a connection over the limit is told before it is closed.
const REFUSAL: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\n",
    "Content-Type: application/json; charset=utf-8\r\n",
    "Retry-After: 1\r\n",
    "Connection: close\r\n",
    "Content-Length: 238\r\n",
    "\r\n",
    r#"{"type":"urn:dispatchlog:problem:busy","title":"Service busy","status":503,"detail":"This instance has its maximum of connections open; retry in a second.","Message":"This instance has its maximum of connections open; retry in a second."}"#,
);

/// Serves `router` on `listener` until `shutdown` resolves, then lets connections finish for
/// at most `limits.shutdown_timeout`.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let body_timeout = BodyTimeout(limits.body_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: wait for connections to end rather
                    // than spin on the error.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::metrics::global().record_refused_connection();
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = tower::util::MapRequest::new(
            service.clone(),
            move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(body_timeout);
                req
            },
        );
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        crate::metrics::global().record_connection(true);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            crate::metrics::global().record_connection(false);
            drop(slot);
        });
    }
    drop(listener);
    let open = graceful.count();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_timeout) => {
            tracing::warn!(
                connections = open,
                "shutdown timeout reached: closing the connections still open"
            );
        }
    }
}

/// Tells a connection over the limit to come back later, without reading its request.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(REFUSAL.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::REFUSAL;

    #[test]
    fn the_refusal_declares_its_body_length() {
        let (head, body) = REFUSAL.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 503);
    }
}
