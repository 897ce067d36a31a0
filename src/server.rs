//! The HTTP/1.1 server loop: accepts connections up to a maximum, gives each client a deadline
//! for its headers (and so for idling between requests) and its body, closes a connection
//! whose client stops reading, and drains on shutdown within a deadline of its own.
//!
//! A client that opens a socket and never finishes a request costs a file descriptor and a
//! task; without these bounds a few thousand such sockets exhaust the descriptors and every
//! other client, `/health` included, goes unanswered. The same goes for a client that stops
//! reading an answer (a phone that lost its network in a list or a live stream): once the
//! socket's buffers are full the answer waits forever, holding its stream slot and what it
//! buffered. The limits are settings ([`Limits`], `dispatchlog serve --help`).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

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
    /// How long an answer may wait for a client that accepts none of its bytes (its socket
    /// buffers are full) before the connection is closed.
    pub write_timeout: Duration,
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
            write_timeout: Duration::from_secs(30),
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
            .serve_connection(
                TokioIo::new(WriteDeadline::new(stream, limits.write_timeout)),
                TowerToHyperService::new(service),
            );
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

/// A connection's socket whose writes fail with [`io::ErrorKind::TimedOut`] once the client
/// has accepted none of the answer's bytes for the write timeout; hyper then closes the
/// connection, which ends its answer (a live stream gives back its slot). The deadline runs
/// only while a write waits for room in the socket: a slow client that keeps taking bytes, and
/// an idle connection, are never cut by it.
struct WriteDeadline<T> {
    io: T,
    timeout: Duration,
    /// The deadline's timer, kept between stalls so that a stall costs no allocation.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether the last write found the socket full (the timer then runs).
    stalled: bool,
}

impl<T> WriteDeadline<T> {
    fn new(io: T, timeout: Duration) -> Self {
        WriteDeadline {
            io,
            timeout,
            timer: None,
            stalled: false,
        }
    }

    /// After a write found no room: starts the deadline (on the first such write of a stall)
    /// and fails once it has passed.
    fn still_stalled<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timer = match (&mut self.timer, self.stalled) {
            (Some(timer), true) => timer,
            (Some(timer), false) => {
                timer.as_mut().reset(deadline);
                timer
            }
            (timer @ None, _) => timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.stalled = true;
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                crate::metrics::global().record_write_timeout();
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client accepted no data within the write timeout",
                )))
            }
        }
    }

    /// What a write of the socket answered: a stall keeps (or starts) the deadline, anything
    /// else ends it.
    fn after_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        answer: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match answer {
            Poll::Pending => self.still_stalled(cx),
            ready => {
                self.stalled = false;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let answer = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(cx, answer)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let answer = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, answer)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let answer = Pin::new(&mut this.io).poll_flush(cx);
        this.after_write(cx, answer)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
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
