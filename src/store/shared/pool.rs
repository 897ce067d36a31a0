//! Read connections, opened on demand and kept for reuse; a broken one is dropped, so the pool
//! heals by itself when the database comes back.
//!
//! Reads run on the pool's own threads, one per connection place: a request hands its read to
//! an idle thread over a channel and is woken with the answer, which costs less than a task of
//! the runtime's general blocking pool (shared by everything that blocks) per read.
//!
//! At most `max_open` connections exist at once: a read first takes one of as many permits
//! (waiting asynchronously, so a crowd of waiting requests holds no threads), and a connection is
//! only opened by a permit holder that finds none idle. A read that waits longer than the
//! acquire timeout is answered 503 with `Retry-After` rather than queued without end, and a
//! PostgreSQL server never sees more than this many readers of one instance.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conn::Conn;
use crate::store::StoreError;

pub type ConnectShared<C> = Box<dyn Fn() -> Result<C, StoreError> + Send + Sync>;

/// A read handed to the pool's threads.
type Job = Box<dyn FnOnce() + Send>;

pub struct Pool<C: Conn> {
    connect: ConnectShared<C>,
    /// To the pool's threads; they end when the pool is dropped.
    jobs: crossbeam_channel::Sender<Job>,
    idle: Mutex<Vec<C>>,
    /// One permit per connection that may be open.
    permits: Arc<Semaphore>,
    max_open: usize,
    acquire_timeout: Duration,
    /// Connections open now, idle or in use.
    opened: AtomicUsize,
}

/// A place to use one connection; held from before the connection is taken until after it is
/// given back.
pub struct Permit(#[allow(dead_code)] OwnedSemaphorePermit);

impl<C: Conn> Pool<C> {
    pub fn new(connect: ConnectShared<C>, max_open: usize, acquire_timeout: Duration) -> Self {
        let max_open = max_open.max(1);
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        for n in 0..max_open {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("db-reader-{n}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv() {
                        job();
                    }
                });
            if let Err(e) = spawned {
                // Fewer threads only means fewer reads at once; one is enough to serve.
                tracing::warn!(error = %e, "cannot start a database reader thread");
            }
        }
        Pool {
            connect,
            jobs,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max_open)),
            max_open,
            acquire_timeout,
            opened: AtomicUsize::new(0),
        }
    }

    /// Waits for a free connection place, at most the acquire timeout.
    pub async fn acquire(&self) -> Result<Permit, StoreError> {
        match tokio::time::timeout(self.acquire_timeout, self.permits.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => Ok(Permit(permit)),
            Ok(Err(closed)) => Err(StoreError::Internal(closed.into())),
            Err(_) => Err(StoreError::Saturated),
        }
    }

    /// Runs `f` on a pooled connection on one of the pool's threads, in the place `permit`
    /// holds, and gives back its result.
    pub async fn run<T, F>(self: &Arc<Self>, permit: Permit, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut C) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, result) = tokio::sync::oneshot::channel();
        let pool = self.clone();
        let job: Job = Box::new(move || {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.with(&permit, f)));
            drop(permit);
            // A read that panicked answers nothing: the caller sees an internal error below.
            if let Ok(outcome) = outcome {
                let _ = answer.send(outcome);
            }
        });
        self.jobs.send(job).map_err(|_| {
            StoreError::Internal(anyhow::anyhow!("the database readers have ended"))
        })?;
        result.await.map_err(|_| {
            StoreError::Internal(anyhow::anyhow!("a database read ended without an answer"))
        })?
    }

    /// Connections open now, idle or in use (at most `max_open`).
    pub fn open(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// Runs `f` on a pooled connection (blocking), in the place `_permit` holds.
    fn with<T>(
        &self,
        _permit: &Permit,
        f: impl FnOnce(&mut C) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(c) if !c.is_broken() => c,
            broken => {
                if broken.is_some() {
                    self.opened.fetch_sub(1, Ordering::Relaxed);
                }
                let conn = (self.connect)()?;
                self.opened.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        let result = f(&mut conn);
        let kept = !conn.is_broken() && {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let room = idle.len() < self.max_open;
            if room {
                idle.push(conn);
            }
            room
        };
        if !kept {
            self.opened.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    /// Connections kept open for reuse.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn clear(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.opened.fetch_sub(idle.len(), Ordering::Relaxed);
        idle.clear();
    }
}

impl<C: Conn> Drop for Pool<C> {
    /// Closing a connection may block (PostgreSQL's client says goodbye on a runtime of its
    /// own), which panics on an async thread, and a second panic while the first unwinds aborts
    /// the process. A store dropped without `close` (its last handle held by an async task) so
    /// closes its idle connections on a thread of their own.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("db-pool-close".into())
                .spawn(move || drop(idle));
        }
    }
}
