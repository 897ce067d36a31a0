//! Read connections, opened on demand and kept for reuse; a broken one is dropped, so the pool
//! heals by itself when the database comes back.

use std::sync::Mutex;

use super::conn::Conn;
use crate::store::StoreError;

pub type ConnectShared<C> = Box<dyn Fn() -> Result<C, StoreError> + Send + Sync>;

pub struct Pool<C: Conn> {
    connect: ConnectShared<C>,
    idle: Mutex<Vec<C>>,
    max_idle: usize,
}

impl<C: Conn> Pool<C> {
    pub fn new(connect: ConnectShared<C>, max_idle: usize) -> Self {
        Pool {
            connect,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// Runs `f` on a pooled connection (blocking).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut C) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(c) if !c.is_broken() => c,
            _ => (self.connect)()?,
        };
        let result = f(&mut conn);
        if !conn.is_broken() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        result
    }

    /// Connections kept open for reuse.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
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
