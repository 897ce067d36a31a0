//! The half of the store both engines share: the writer with group commit, the read pool, and
//! every operation, over the [`Conn`] trait that each engine implements with its own SQL.

pub mod conn;
pub mod ops;
pub mod pool;
pub mod sql;
pub mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

pub use self::conn::{Conn, Prefetch};
use self::pool::Pool;
use self::writer::Writer;
use super::{
    AccountStore, ChangesPage, DeleteOutcome, ListPage, LoginRecord, NewUser, PurgeReport,
    SaveItem, SaveOutcome, Store, StoreError, StoreStats, TenantChanges, TenantFigures, TenantId,
};
use crate::domain::workflow::{Decision, HistoryEntry};
use crate::domain::{JobDispatchLog, Principal, Timestamp};
use crate::query::ListQuery;

/// Rows one step of a purge removes at most (with their history): a step holds the writer for
/// tens of milliseconds at most, however many rows the purge removes in all (1,000 rows a step
/// took about 250 ms at a million rows, each row's index entries and history being spread over
/// the whole file; `bench/README.md`).
pub const PURGE_STEP_ROWS: u64 = 200;

/// A [`Store`] over one writer connection and, when the engine allows several connections,
/// a pool of readers.
pub struct SqlStore<C: Conn> {
    writer: Arc<Writer<C>>,
    readers: Option<Arc<Pool<C>>>,
    /// Tenants whose rows a commit of this instance changed.
    committed: tokio::sync::broadcast::Sender<TenantId>,
    /// Engine housekeeping to stop when the store closes, after the writer.
    on_close: std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    /// The last write failed for a full disk.
    disk_full: AtomicBool,
}

/// Runs `f` inside one read transaction, so that every query sees the same snapshot.
fn in_snapshot<C: Conn, T>(
    conn: &mut C,
    f: impl FnOnce(&mut C) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.begin_read()?;
    let result = f(conn);
    let _ = conn.execute_batch("COMMIT");
    result
}

impl<C: Conn> SqlStore<C> {
    pub fn new(writer: Writer<C>, readers: Option<Pool<C>>) -> Self {
        SqlStore {
            writer: Arc::new(writer),
            readers: readers.map(Arc::new),
            on_close: std::sync::Mutex::new(Vec::new()),
            committed: tokio::sync::broadcast::channel(1024).0,
            disk_full: AtomicBool::new(false),
        }
    }

    /// A write job on the tenant's rows (reading those `prefetch` names); listeners hear of it
    /// once it is committed.
    async fn write_rows<T, F>(
        &self,
        tenant: TenantId,
        prefetch: Prefetch,
        f: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(&mut writer::WriteCtx<'_, C>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let result = self.writer.write(Some(tenant), Some(prefetch), f).await;
        self.note_write(&result);
        if result.is_ok() {
            // No listener is fine: nobody is streaming.
            let _ = self.committed.send(tenant);
        }
        result
    }

    /// Remembers whether writes fail for a full disk, for `/health`; the next write that
    /// succeeds (space came back) clears it.
    fn note_write<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => self.disk_full.store(false, Ordering::Relaxed),
            Err(StoreError::DiskFull) => self.disk_full.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    /// Where commits are announced to this instance's streams, for a listener of other
    /// instances' commits.
    pub fn commit_sender(&self) -> tokio::sync::broadcast::Sender<TenantId> {
        self.committed.clone()
    }

    /// Runs `f` (blocking allowed) when the store closes.
    pub fn on_close(self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_close
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(f));
        self
    }

    /// Runs a read on a pooled connection (or, without a pool, on the writer between groups).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut C) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        match &self.readers {
            Some(pool) => {
                let permit = pool.acquire().await?;
                pool.run(permit, f).await
            }
            None => self.writer.read(f).await,
        }
    }

    /// Writes that touch no tenant's rows (users, tokens).
    async fn admin_write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut C) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let result = self.writer.write(None, None, move |ctx| f(ctx.conn)).await;
        self.note_write(&result);
        result
    }
}

#[async_trait]
impl<C: Conn> AccountStore for SqlStore<C> {
    async fn find_login(
        &self,
        domain: &str,
        username: &str,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let (domain, username) = (domain.to_string(), username.to_string());
        self.read(move |conn| conn.find_login(&domain, &username))
            .await
    }

    async fn add_user(&self, user: NewUser) -> Result<bool, StoreError> {
        self.admin_write(move |conn| conn.add_user(&user)).await
    }

    async fn set_password(
        &self,
        domain: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let (d, u, h) = (
            domain.to_string(),
            username.to_string(),
            password_hash.to_string(),
        );
        self.admin_write(move |conn| conn.set_password(&d, &u, &h))
            .await
    }

    async fn remove_user(&self, domain: &str, username: &str) -> Result<bool, StoreError> {
        let (d, u) = (domain.to_string(), username.to_string());
        self.admin_write(move |conn| conn.remove_user(&d, &u)).await
    }

    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<LoginRecord>, StoreError> {
        let domain = domain.map(str::to_string);
        self.read(move |conn| conn.list_users(domain.as_deref()))
            .await
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        self.read(|conn| conn.count_users()).await
    }

    async fn add_token(
        &self,
        domain: &str,
        username: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let (d, u, h) = (
            domain.to_string(),
            username.to_string(),
            token_hash.to_string(),
        );
        self.admin_write(move |conn| conn.add_token(&d, &u, &h))
            .await
    }

    async fn revoke_tokens(&self, domain: &str, username: &str) -> Result<u64, StoreError> {
        let (d, u) = (domain.to_string(), username.to_string());
        self.admin_write(move |conn| conn.revoke_tokens(&d, &u))
            .await
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<LoginRecord>, StoreError> {
        let hash = token_hash.to_string();
        self.read(move |conn| conn.find_token(&hash)).await
    }

    async fn credentials_version(&self) -> Result<i64, StoreError> {
        self.read(|conn| conn.credentials_version()).await
    }
}

#[async_trait]
impl<C: Conn> Store for SqlStore<C> {
    async fn save(
        &self,
        caller: &Principal,
        items: Vec<SaveItem>,
    ) -> Result<Vec<SaveOutcome>, StoreError> {
        let caller = caller.clone();
        let prefetch = Prefetch {
            ids: items.iter().map(|i| i.draft.id).collect(),
            jobs: items.iter().map(|i| i.draft.jobs_id).collect(),
        };
        self.write_rows(caller.tenant_id, prefetch, move |ctx| {
            ops::save(ctx, &caller, &items)
        })
        .await
    }

    async fn get(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<Option<JobDispatchLog>, StoreError> {
        let caller = caller.clone();
        self.read(move |conn| in_snapshot(conn, |conn| ops::get(conn, &caller, id)))
            .await
    }

    async fn delete(
        &self,
        caller: &Principal,
        id: Uuid,
        if_match: Option<String>,
    ) -> Result<DeleteOutcome, StoreError> {
        let caller = caller.clone();
        let prefetch = Prefetch {
            ids: vec![id],
            jobs: Vec::new(),
        };
        self.write_rows(caller.tenant_id, prefetch, move |ctx| {
            ops::delete(ctx, &caller, id, if_match.as_deref())
        })
        .await
    }

    async fn decide(
        &self,
        caller: &Principal,
        id: Uuid,
        decision: Decision,
        if_match: Option<String>,
    ) -> Result<JobDispatchLog, StoreError> {
        let caller = caller.clone();
        let prefetch = Prefetch {
            ids: vec![id],
            jobs: Vec::new(),
        };
        self.write_rows(caller.tenant_id, prefetch, move |ctx| {
            ops::decide(ctx, &caller, id, &decision, if_match.as_deref())
        })
        .await
    }

    async fn dispatch(
        &self,
        caller: &Principal,
        jobs_id: Uuid,
        user_ids: Vec<Uuid>,
        is_workshop: bool,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        let caller = caller.clone();
        let prefetch = Prefetch {
            ids: Vec::new(),
            jobs: vec![jobs_id],
        };
        self.write_rows(caller.tenant_id, prefetch, move |ctx| {
            ops::dispatch(ctx, &caller, jobs_id, &user_ids, is_workshop)
        })
        .await
    }

    async fn history(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<Option<Vec<HistoryEntry>>, StoreError> {
        let caller = caller.clone();
        self.read(move |conn| in_snapshot(conn, |conn| ops::history(conn, &caller, id)))
            .await
    }

    async fn list(&self, caller: &Principal, query: ListQuery) -> Result<ListPage, StoreError> {
        let caller = caller.clone();
        if query.count {
            self.read(move |conn| in_snapshot(conn, |conn| ops::list(conn, &caller, &query)))
                .await
        } else {
            // One statement (`RowConn::list`): its own snapshot.
            self.read(move |conn| ops::list(conn, &caller, &query))
                .await
        }
    }

    async fn changes(
        &self,
        caller: &Principal,
        since: Option<Timestamp>,
        limit: usize,
    ) -> Result<ChangesPage, StoreError> {
        let caller = caller.clone();
        self.read(move |conn| in_snapshot(conn, |conn| ops::changes(conn, &caller, since, limit)))
            .await
    }

    async fn tenant_last_stamp(&self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        self.read(move |conn| conn.tenant_last_stamp(tenant)).await
    }

    async fn tenant_changes(
        &self,
        tenant: TenantId,
        since: Timestamp,
        limit: usize,
    ) -> Result<TenantChanges, StoreError> {
        self.read(move |conn| {
            in_snapshot(conn, |conn| ops::tenant_changes(conn, tenant, since, limit))
        })
        .await
    }

    /// A step at a time, each its own write ([`PURGE_STEP_ROWS`] rows at most), and after each
    /// step a rest as long as the step took, waiting included: Saves commit between the steps
    /// and keep at least half the writer's time, however many rows a purge removes (back to
    /// back, steps left Saves a group between two steps: 114 Saves/s). Each step is a whole
    /// purge with a cutoff of its own, the oldest rows first, so a purge that stops early has
    /// forgotten only changes older than every row it left.
    async fn purge(&self, cutoff: Timestamp) -> Result<PurgeReport, StoreError> {
        let mut rows = 0;
        loop {
            let started = std::time::Instant::now();
            let step = self
                .admin_write(move |conn| conn.purge(cutoff, PURGE_STEP_ROWS))
                .await?;
            rows += step.rows;
            if step.done {
                return Ok(PurgeReport { rows });
            }
            tokio::time::sleep(started.elapsed()).await;
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.count_users().map(|_| ())).await?;
        if self.disk_full.load(Ordering::Relaxed) {
            return Err(StoreError::DiskFull);
        }
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            idle_readers: self.readers.as_ref().map_or(0, |p| p.idle()),
            open_readers: self.readers.as_ref().map_or(0, |p| p.open()),
            writer_queue: self.writer.queue_depth(),
        }
    }

    async fn tenant_figures(&self) -> Result<Vec<TenantFigures>, StoreError> {
        self.read(|conn| conn.tenant_counts()).await
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TenantId> {
        self.committed.subscribe()
    }

    async fn close(&self) {
        // Closing a connection may block (PostgreSQL's client runs its own runtime), so it
        // happens off the async threads.
        let readers = self.readers.clone();
        let writer = self.writer.clone();
        let hooks: Vec<_> = self
            .on_close
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(pool) = readers {
                pool.clear();
            }
            writer.close();
            for hook in hooks {
                hook();
            }
        })
        .await;
    }
}
