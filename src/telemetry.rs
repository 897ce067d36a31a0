//! Logging: `tracing` to stderr as text or JSON, level from `RUST_LOG` (default `info`).
//!
//! Lines are formatted where they happen but written by a thread of their own, which writes
//! whatever has queued up in one go: a request costs no write of its own to stderr, and a busy
//! service writes its log in large pieces. The queue holds at most [`QUEUED_LINES`]; beyond it a
//! request waits for the log to catch up rather than lose a line.

use std::io::BufWriter;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Log lines waiting for the writing thread, at most.
pub const QUEUED_LINES: usize = 8192;

/// Starts logging; the returned guard writes out what is still queued when dropped, so it is
/// held until the process ends.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        // The writing thread flushes the buffer each time it has emptied its queue.
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // The request's span (method, route, request id, tenant…) is the line's `span` object;
        // the list of enclosing spans would repeat it (a request has one), at the cost of
        // formatting its fields a second time for every line.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
    };
    guard
}
