//! Read connections, opened on demand and kept for reuse; a broken one is dropped, so the pool
//! heals by itself when the database comes back.
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

pub struct Pool<C: Conn> {
    connect: ConnectShared<C>,
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
        Pool {
            connect,
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

    /// Connections open now, idle or in use (at most `max_open`).
    pub fn open(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// Runs `f` on a pooled connection (blocking), in the place `_permit` holds.
    pub fn with<T>(
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
