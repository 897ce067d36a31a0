//! The SQL of the SQLite engine: [`Conn`] over a `rusqlite::Connection`. The statements both
//! engines run are in `shared/sql.rs`; here are SQLite's own (its write lock, the job's
//! `assigned_user_ids` stored on every row, the index hints).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::types::Value as SqliteValue;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::checkpoint::Checkpoints;
use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::query::{Dialect, ListQuery, SqlValue};
use crate::store::shared::conn::{AccountConn, GroupConn, NewHistory, PurgeStep, RowConn};
use crate::store::shared::sql::{self, decode_history, decode_login, decode_row, SqlRow};
use crate::store::{LoginRecord, NewUser, StoreError, TenantFigures, TenantId};

impl SqlRow for Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn int32(&self, i: usize) -> rusqlite::Result<i32> {
        self.get(i)
    }
    fn uuid(&self, i: usize) -> rusqlite::Result<Uuid> {
        self.get(i)
    }
    fn boolean(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn invalid(&self, i: usize, message: String) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, message.into())
    }
}

/// A shared statement in SQLite's parameter syntax.
fn sqlite_form(sql: &str) -> std::borrow::Cow<'_, str> {
    sql::for_dialect(Dialect::Sqlite, sql)
}

/// A row from the columns of [`sql::ROW_COLUMNS`].
fn row_of(r: &Row<'_>) -> rusqlite::Result<JobDispatchLog> {
    decode_row(r)
}

/// The row columns of `job_dispatch_log j`, then the job's `assigned_user_ids` the row carries,
/// as [`row_with_assignees_of`] reads them.
const COLUMNS_WITH_ASSIGNEES: &str = concat!(
    sql::row_columns!("j."),
    ", j.assigned_user_ids FROM job_dispatch_log j"
);

/// A tenant's feed page ($1 tenant, $2 the stamp after which it starts, $3 its length): read
/// along the table's own key, since rows are stored in stamp order (migration 0006).
pub(super) const TENANT_FEED: &str = concat!(
    "SELECT ",
    sql::row_columns!("j."),
    ", j.assigned_user_ids FROM job_dispatch_log j
     WHERE j.tenant_id = ?1 AND j.modified_dateutc > ?2
     ORDER BY j.modified_dateutc LIMIT ?3"
);

/// A row from the columns of [`COLUMNS_WITH_ASSIGNEES`].
fn row_with_assignees_of(r: &Row<'_>) -> rusqlite::Result<JobDispatchLog> {
    let mut row = row_of(r)?;
    row.assigned_user_ids = r.get(sql::ROW_COLUMN_COUNT)?;
    Ok(row)
}

/// How often the writer refreshes the planner's statistics, at most.
const STATISTICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// Rows per index that an analysis samples (`PRAGMA analysis_limit`).
const STATISTICS_SAMPLE: u32 = 1000;

/// Bytes of a WAL frame's header, before its page.
const WAL_FRAME_HEADER: u64 = 24;

/// How the writer keeps the WAL under its limit.
struct WalBound {
    /// Frames in the WAL after the last commit (SQLite's WAL hook counts them).
    frames: Arc<AtomicU64>,
    /// Bytes of one frame.
    frame_bytes: u64,
    /// The size past which the writer asks the checkpoint thread for a pass and then starts
    /// the log over.
    reset_at: u64,
    checkpoints: Arc<Checkpoints>,
    /// Passes were asked for, once the WAL passed `reset_at`.
    asked: bool,
}

pub struct SqliteConn {
    conn: Connection,
    /// On the writer's connection: how it keeps the WAL bounded.
    wal_bound: Option<WalBound>,
    /// On the writer's connection: when the planner's statistics are next refreshed.
    pub(super) statistics_due: Option<std::time::Instant>,
    /// The generation of the planner's statistics, shared by the writer (which counts up when
    /// it changed them) and the readers, and the generation this connection loaded. A reader
    /// reads the statistics only when it opens, so one with older statistics is replaced.
    statistics: Option<(Arc<AtomicU64>, u64)>,
}

impl SqliteConn {
    pub fn new(conn: Connection) -> Self {
        SqliteConn {
            conn,
            wal_bound: None,
            statistics_due: None,
            statistics: None,
        }
    }

    /// The writer's connection: between groups, once the WAL holds more than `reset_at` bytes,
    /// it is copied back and started over (see [`Conn::between_groups`]). SQLite tells the
    /// connection after each commit how many frames the log holds; registered after
    /// `PRAGMA wal_autocheckpoint`, which would replace it.
    pub fn bounding_wal(mut self, reset_at: u64, checkpoints: Arc<Checkpoints>) -> Self {
        let page_size: u64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
            .map_or(4096, |p| p.max(512) as u64);
        let frames = Arc::new(AtomicU64::new(0));
        let counted = frames.clone();
        let told = checkpoints.clone();
        let hooked = self
            .conn
            .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
                counted.store(u64::try_from(pages).unwrap_or(0), Ordering::Release);
                told.committed();
                Ok(())
            }));
        match hooked {
            Ok(()) => {
                self.wal_bound = Some(WalBound {
                    frames,
                    frame_bytes: page_size + WAL_FRAME_HEADER,
                    reset_at,
                    checkpoints,
                    asked: false,
                })
            }
            Err(e) => tracing::error!(error = %e, "the WAL cannot be bounded: no WAL hook"),
        }
        self
    }

    /// On the writer's connection: keeps the planner's statistics current between groups
    /// ([`SqliteConn::refresh_statistics`]), the first time before the first group, and counts
    /// `generation` up each time they changed.
    pub fn refreshing_statistics(mut self, generation: Arc<AtomicU64>) -> Self {
        self.statistics_due = Some(std::time::Instant::now());
        self.statistics = Some((generation, 0));
        self
    }

    /// On a reader's connection: it counts as worn out once the writer changed the planner's
    /// statistics after it opened (see [`GroupConn::is_broken`]).
    pub fn following_statistics(mut self, generation: Arc<AtomicU64>) -> Self {
        let loaded = generation.load(Ordering::Acquire);
        self.statistics = Some((generation, loaded));
        self
    }

    /// The planner's statistics as stored, to tell whether an analysis changed them.
    fn statistics_fingerprint(&self) -> rusqlite::Result<Option<String>> {
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        self.conn.query_row(
            "SELECT group_concat(tbl || ' ' || coalesce(idx, '') || ' ' || stat, ';')
             FROM sqlite_stat1",
            [],
            |r| r.get(0),
        )
    }

    /// Empties the WAL once it holds more than half its limit (see [`GroupConn::between_groups`]):
    /// first asks the checkpoint thread to catch up, and starts the log over once it has (see
    /// [`super::checkpoint`]), or at once should the log reach three quarters of its limit first.
    fn bound_wal(&mut self) {
        let Some(bound) = &mut self.wal_bound else {
            return;
        };
        let size = bound.frames.load(Ordering::Acquire) * bound.frame_bytes;
        if size <= bound.reset_at {
            return;
        }
        if !bound.asked {
            bound.checkpoints.request();
            bound.asked = true;
        }
        let ready = bound.checkpoints.ready();
        if !ready && size <= bound.reset_at + bound.reset_at / 2 {
            return;
        }
        let started = std::time::Instant::now();
        let outcome = self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            });
        match outcome {
            Ok((0, _)) => {
                // The next commit writes the log from its start, and counts again.
                bound.frames.store(0, Ordering::Release);
                bound.asked = false;
                bound.checkpoints.reset_done();
                tracing::debug!(
                    bytes = size,
                    waited_for_pass = ready,
                    millis = started.elapsed().as_secs_f64() * 1e3,
                    "the WAL was copied back and started over"
                )
            }
            Ok((_, frames)) => tracing::info!(
                bytes = size,
                frames,
                "the WAL could not be emptied: a read kept an older snapshot past the busy timeout"
            ),
            Err(e) => tracing::warn!(error = %e, bytes = size, "the WAL could not be emptied"),
        }
    }

    /// Keeps the query planner's table statistics current, at most every
    /// [`STATISTICS_INTERVAL`]: SQLite's `PRAGMA optimize` analyses the tables whose size changed
    /// much since their last analysis (on a sample of [`STATISTICS_SAMPLE`] rows per index, so a
    /// run takes milliseconds at any size). Without statistics SQLite cannot tell a job's or a
    /// technician's index from the stamp order, and a list filtered by job and ordered by stamp
    /// walked the whole tenant (120 ms at 50,000 rows instead of under 1 ms).
    fn refresh_statistics(&mut self) {
        let Some(due) = self.statistics_due else {
            return;
        };
        let now = std::time::Instant::now();
        if now < due {
            return;
        }
        self.statistics_due = Some(now + STATISTICS_INTERVAL);
        let sql =
            format!("PRAGMA analysis_limit = {STATISTICS_SAMPLE}; PRAGMA optimize = 0x10002;");
        let refreshed = self.statistics_fingerprint().and_then(|before| {
            self.conn.execute_batch(&sql)?;
            Ok(before != self.statistics_fingerprint()?)
        });
        match refreshed {
            Ok(true) => {
                tracing::debug!("the planner's statistics were refreshed");
                if let Some((generation, _)) = &self.statistics {
                    generation.fetch_add(1, Ordering::AcqRel);
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "the planner's statistics could not be refreshed"),
        }
    }

    /// The connection itself, for tools that run their own statements (benchmarks).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn rows(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        self.rows_with(sql, params, row_of)
    }

    fn rows_with(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: fn(&Row<'_>) -> rusqlite::Result<JobDispatchLog>,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params, decode)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

impl GroupConn for SqliteConn {
    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        // Take the write lock up front: a deferred transaction could fail to upgrade later.
        self.execute_batch("BEGIN IMMEDIATE")
    }

    fn begin_read(&mut self) -> Result<(), StoreError> {
        self.execute_batch("BEGIN")
    }

    /// A reader whose planner statistics are older than the writer's is replaced: SQLite loads
    /// them only when a connection opens, and plans made without them can walk a whole tenant.
    fn is_broken(&self) -> bool {
        match &self.statistics {
            Some((generation, loaded)) if self.statistics_due.is_none() => {
                generation.load(Ordering::Acquire) != *loaded
            }
            _ => false,
        }
    }

    /// A writer that never pauses never lets a passive checkpoint reach the end of the WAL,
    /// so SQLite never starts it over and it grows without bound. Here no write can be in
    /// progress: a RESTART checkpoint copies what the checkpoint thread has not yet copied
    /// (little: the writer asked it to catch up first, see [`super::checkpoint`]), waits for
    /// reads still on older snapshots (reads
    /// that start meanwhile use the database file, so they cannot hold it up), and makes the
    /// next group write the log from its start again. The file keeps its size (at most the
    /// limit), so commits overwrite blocks it already has: a log truncated to nothing grew
    /// again with every commit, and each commit's sync then also had to write the file's new
    /// size (`bench/README.md`: Save 7,000/s and p99 41 ms with TRUNCATE). If a read holds it
    /// past the busy timeout, the next group tries again.
    fn between_groups(&mut self) {
        self.refresh_statistics();
        self.bound_wal();
    }

    fn lock_tenant_stamp(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        // The single writer already holds the database's write lock.
        let ticks: Option<i64> = self
            .conn
            .prepare_cached("SELECT last_stamp FROM tenant WHERE id = ?1")?
            .query_row([tenant], |r| r.get(0))
            .optional()?;
        Ok(Timestamp::from_ticks(ticks.unwrap_or(0)))
    }

    fn store_tenant_stamp(&mut self, tenant: TenantId, stamp: Timestamp) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(&sqlite_form(sql::STORE_TENANT_STAMP))?
            .execute(params![tenant, stamp.ticks()])?;
        Ok(())
    }
}

impl RowConn for SqliteConn {
    fn select_row(
        &mut self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<JobDispatchLog>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&sqlite_form(sql::SELECT_ROW))?
            .query_row(params![tenant, id], row_of)
            .optional()?)
    }

    fn max_sequence(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<i64, StoreError> {
        let max: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(MAX(sequence), 0) FROM job_dispatch_log
                 WHERE tenant_id = ?1 AND jobs_id = ?2",
            )?
            .query_row(params![tenant, jobs_id], |r| r.get(0))?;
        Ok(max)
    }

    fn assignees(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id FROM job_dispatch_log
             WHERE tenant_id = ?1 AND jobs_id = ?2 AND sys_logical_delete = 0 AND is_rejected = 0
             ORDER BY sequence, user_id",
        )?;
        let ids = stmt
            .query_map(params![tenant, jobs_id], |r| r.get::<_, Uuid>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids)
    }

    fn store_job_assignees(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
        user_ids: &str,
    ) -> Result<(), StoreError> {
        // Every row of the job carries the text; rows that have it already are not written.
        // The job index is named: without it the extra condition makes SQLite scan the tenant.
        self.conn
            .prepare_cached(
                "UPDATE job_dispatch_log INDEXED BY job_dispatch_log_job
                 SET assigned_user_ids = ?3
                 WHERE tenant_id = ?1 AND jobs_id = ?2 AND assigned_user_ids <> ?3",
            )?
            .execute(params![tenant, jobs_id, user_ids])?;
        Ok(())
    }

    fn job_assignees(
        &mut self,
        tenant: TenantId,
        jobs: &[Uuid],
    ) -> Result<HashMap<Uuid, String>, StoreError> {
        let mut by_job = HashMap::with_capacity(jobs.len());
        if let [job] = jobs {
            let text: Option<String> = self
                .conn
                .prepare_cached(
                    "SELECT assigned_user_ids FROM job_dispatch_log INDEXED BY job_dispatch_log_job
                     WHERE tenant_id = ?1 AND jobs_id = ?2 LIMIT 1",
                )?
                .query_row(params![tenant, job], |r| r.get(0))
                .optional()?;
            by_job.extend(text.filter(|t| !t.is_empty()).map(|t| (*job, t)));
            return Ok(by_job);
        }
        // Chunks keep the statement's parameter count well under SQLite's limit.
        for chunk in jobs.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
            let sql = format!(
                "SELECT DISTINCT jobs_id, assigned_user_ids
                 FROM job_dispatch_log INDEXED BY job_dispatch_log_job
                 WHERE tenant_id = ?1 AND jobs_id IN ({}) AND assigned_user_ids <> ''",
                placeholders.join(", ")
            );
            let mut params: Vec<SqliteValue> = vec![SqliteValue::Integer(tenant)];
            params.extend(
                chunk
                    .iter()
                    .map(|j| SqliteValue::Blob(j.as_bytes().to_vec())),
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
            while let Some(r) = rows.next()? {
                by_job.insert(r.get(0)?, r.get(1)?);
            }
        }
        Ok(by_job)
    }

    fn upsert(&mut self, tenant: TenantId, row: &JobDispatchLog) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "INSERT INTO job_dispatch_log (tenant_id, ",
            sql::row_columns!(""),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (tenant_id, id) DO UPDATE SET ",
            sql::upsert_set!()
        ))?;
        stmt.execute(params![
            tenant,
            row.id,
            row.jobs_id,
            row.user_id,
            row.date_create.ticks(),
            row.date_proceeded.ticks(),
            row.is_accepted,
            row.is_rejected,
            row.rejected_reason,
            row.sys_logical_delete,
            row.is_workshop,
            row.modified_dateutc.ticks(),
            row.sequence,
        ])?;
        Ok(())
    }

    fn job_rows(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        self.rows(&sqlite_form(sql::JOB_ROWS), params![tenant, jobs_id])
    }

    fn formerly_assigned(
        &mut self,
        tenant: TenantId,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM scope_exit
                 WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3)",
            )?
            .query_row(params![tenant, user_id, id], |r| r.get(0))?)
    }

    fn record_reassignment(
        &mut self,
        tenant: TenantId,
        id: Uuid,
        from: Uuid,
        to: Uuid,
        stamp: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(&sqlite_form(sql::SCOPE_EXIT_ADD))?
            .execute(params![tenant, from, id, stamp.ticks()])?;
        self.conn
            .prepare_cached(&sqlite_form(sql::SCOPE_EXIT_REMOVE))?
            .execute(params![tenant, to, id])?;
        Ok(())
    }

    fn insert_history(&mut self, e: &NewHistory<'_>) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO job_dispatch_log_history
                     (tenant_id, id, at, client_at, actor, action, changes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                e.tenant,
                e.id,
                e.at.ticks(),
                e.client_at.map(Timestamp::ticks).unwrap_or(0),
                e.actor,
                e.action,
                e.changes
            ])?;
        Ok(())
    }

    fn history(&mut self, tenant: TenantId, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&sqlite_form(sql::HISTORY))?;
        let entries = stmt
            .query_map(params![tenant, id], |r| decode_history(r))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(entries)
    }

    fn tenant_last_stamp(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        let ticks: Option<i64> = self
            .conn
            .prepare_cached(&sqlite_form(sql::TENANT_LAST_STAMP))?
            .query_row([tenant], |r| r.get(0))
            .optional()?;
        Ok(Timestamp::from_ticks(ticks.unwrap_or(0)))
    }

    fn purged_through(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        let ticks: Option<i64> = self
            .conn
            .prepare_cached(&sqlite_form(sql::PURGED_THROUGH))?
            .query_row([tenant], |r| r.get(0))
            .optional()?;
        Ok(Timestamp::from_ticks(ticks.unwrap_or(0)))
    }

    fn changed_rows(
        &mut self,
        tenant: TenantId,
        user: Option<Uuid>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        let limit = limit as i64;
        match user {
            Some(user) => self.rows_with(
                &format!(
                    "SELECT {COLUMNS_WITH_ASSIGNEES}
                     WHERE j.tenant_id = ?1 AND j.user_id = ?2 AND j.modified_dateutc > ?3
                     ORDER BY j.modified_dateutc LIMIT ?4"
                ),
                params![tenant, user, after, limit],
                row_with_assignees_of,
            ),
            None => self.rows_with(
                TENANT_FEED,
                params![tenant, after, limit],
                row_with_assignees_of,
            ),
        }
    }

    fn tenant_scope_exits(
        &mut self,
        tenant: TenantId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, Uuid, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&sqlite_form(sql::TENANT_SCOPE_EXITS))?;
        let exits = stmt
            .query_map(params![tenant, after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(exits)
    }

    fn scope_exits(
        &mut self,
        tenant: TenantId,
        user: Uuid,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&sqlite_form(sql::SCOPE_EXITS))?;
        let exits = stmt
            .query_map(params![tenant, user, after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(exits)
    }

    fn list(
        &mut self,
        tenant: TenantId,
        user: Option<Uuid>,
        query: &ListQuery,
        limit: usize,
    ) -> Result<(Vec<JobDispatchLog>, Option<u64>), StoreError> {
        let list = sql::list(Dialect::Sqlite, tenant, user, query, limit);
        let params: Vec<SqliteValue> = list
            .params
            .into_iter()
            .map(|p| match p {
                SqlValue::Int(i) => SqliteValue::Integer(i),
                SqlValue::Text(t) => SqliteValue::Text(t),
                SqlValue::Uuid(u) => SqliteValue::Blob(u.as_bytes().to_vec()),
                SqlValue::Bool(b) => SqliteValue::Integer(i64::from(b)),
            })
            .collect();
        let rows = self.rows_with(
            &list.rows,
            rusqlite::params_from_iter(params.iter()),
            row_with_assignees_of,
        )?;
        let count = match list.count {
            Some(count) => {
                let n: i64 = self
                    .conn
                    .prepare_cached(&count)?
                    .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?;
                Some(n as u64)
            }
            None => None,
        };
        Ok((rows, count))
    }

    fn purge(&mut self, cutoff: Timestamp, limit: u64) -> Result<PurgeStep, StoreError> {
        let [horizon, history, rows, exits] = sql::purge(Dialect::Sqlite);
        let step: Option<i64> = self
            .conn
            .query_row(
                &sqlite_form(&sql::purge_step(Dialect::Sqlite)),
                params![cutoff.ticks(), i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()?;
        let cutoff = step.unwrap_or(cutoff.ticks());
        self.conn.execute(&sqlite_form(&horizon), [cutoff])?;
        self.conn.execute(&sqlite_form(&history), [cutoff])?;
        let rows = self.conn.execute(&sqlite_form(&rows), [cutoff])?;
        self.conn.execute(&sqlite_form(&exits), [cutoff])?;
        Ok(PurgeStep {
            rows: rows as u64,
            done: step.is_none(),
        })
    }

    fn tenant_counts(&mut self) -> Result<Vec<TenantFigures>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.id, t.domain, COUNT(j.id), COALESCE(SUM(j.sys_logical_delete), 0)
             FROM tenant t LEFT JOIN job_dispatch_log j ON j.tenant_id = t.id
             GROUP BY t.id ORDER BY t.id",
        )?;
        let counts = stmt
            .query_map([], |r| {
                Ok(TenantFigures {
                    tenant_id: r.get(0)?,
                    domain: r.get(1)?,
                    rows: r.get::<_, i64>(2)? as u64,
                    tombstones: r.get::<_, i64>(3)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(counts)
    }
}

impl AccountConn for SqliteConn {
    fn find_login(
        &mut self,
        domain: &str,
        username: &str,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&sqlite_form(&sql::find_login(Dialect::Sqlite)))?;
        Ok(stmt
            .query_row(params![domain, username], |r| decode_login(r))
            .optional()?)
    }

    fn add_user(&mut self, user: &NewUser) -> Result<bool, StoreError> {
        let now = Timestamp::now().ticks();
        self.conn.execute(
            "INSERT INTO tenant (domain, created_at) VALUES (?1, ?2)
             ON CONFLICT (domain) DO NOTHING",
            params![user.domain, now],
        )?;
        let tenant: i64 = self.conn.query_row(
            "SELECT id FROM tenant WHERE domain = ?1",
            [&user.domain],
            |r| r.get(0),
        )?;
        let inserted = self.conn.execute(
            "INSERT INTO app_user (tenant_id, username, password_hash, role, user_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, username) DO NOTHING",
            params![
                tenant,
                user.username,
                user.password_hash,
                user.role.as_str(),
                user.user_id,
                now
            ],
        )?;
        Ok(inserted == 1)
    }

    fn set_password(
        &mut self,
        domain: &str,
        username: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            &sqlite_form(&sql::set_password(Dialect::Sqlite)),
            params![domain, username, hash],
        )?;
        Ok(n == 1)
    }

    fn remove_user(&mut self, domain: &str, username: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            &sqlite_form(&sql::remove_user(Dialect::Sqlite)),
            params![domain, username],
        )?;
        Ok(n == 1)
    }

    fn list_users(&mut self, domain: Option<&str>) -> Result<Vec<LoginRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&sqlite_form(&sql::list_users(Dialect::Sqlite)))?;
        let users = stmt
            .query_map([domain], |r| decode_login(r))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(users)
    }

    fn count_users(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(sql::COUNT_USERS, [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn add_token(
        &mut self,
        domain: &str,
        username: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            &sqlite_form(&sql::add_token(Dialect::Sqlite)),
            params![domain, username, token_hash, Timestamp::now().ticks()],
        )?;
        Ok(n == 1)
    }

    fn revoke_tokens(&mut self, domain: &str, username: &str) -> Result<u64, StoreError> {
        let n = self.conn.execute(
            &sqlite_form(&sql::revoke_tokens(Dialect::Sqlite)),
            params![domain, username],
        )?;
        Ok(n as u64)
    }

    fn find_token(&mut self, token_hash: &str) -> Result<Option<LoginRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&sqlite_form(&sql::find_token(Dialect::Sqlite)))?;
        Ok(stmt
            .query_row([token_hash], |r| decode_login(r))
            .optional()?)
    }

    fn credentials_version(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(sql::CREDENTIALS_VERSION)?
            .query_row([], |r| r.get(0))?)
    }
}
