//! The SQL of the SQLite engine: [`Conn`] over a `rusqlite::Connection`.

use std::collections::HashMap;

use rusqlite::types::Value as SqliteValue;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::query::{filter_sql, order_sql_for, Dialect, ListQuery, SqlValue};
use crate::store::shared::conn::{Conn, NewHistory};
use crate::store::{LoginRecord, NewUser, StoreError, TenantId};

/// The stored columns, in the order [`row_of`] reads them.
pub const COLUMNS: &str = "id, jobs_id, user_id, date_create, date_proceeded, is_accepted, \
     is_rejected, rejected_reason, sys_logical_delete, is_workshop, modified_dateutc, sequence";

/// A row from the columns of [`COLUMNS`]; `assigned_user_ids` is left empty.
pub fn row_of(r: &Row<'_>) -> rusqlite::Result<JobDispatchLog> {
    Ok(JobDispatchLog {
        id: r.get(0)?,
        jobs_id: r.get(1)?,
        user_id: r.get(2)?,
        date_create: Timestamp::from_ticks(r.get(3)?),
        date_proceeded: Timestamp::from_ticks(r.get(4)?),
        is_accepted: r.get(5)?,
        is_rejected: r.get(6)?,
        rejected_reason: r.get(7)?,
        sys_logical_delete: r.get(8)?,
        is_workshop: r.get(9)?,
        modified_dateutc: Timestamp::from_ticks(r.get(10)?),
        sequence: r.get(11)?,
        assigned_user_ids: String::new(),
    })
}

/// [`COLUMNS`] of `job_dispatch_log j`, then the job's `assigned_user_ids` the row carries, as
/// [`row_with_assignees_of`] reads them.
const COLUMNS_WITH_ASSIGNEES: &str = "j.id, j.jobs_id, j.user_id, j.date_create, \
     j.date_proceeded, j.is_accepted, j.is_rejected, j.rejected_reason, j.sys_logical_delete, \
     j.is_workshop, j.modified_dateutc, j.sequence, j.assigned_user_ids \
     FROM job_dispatch_log j";

/// A row from the columns of [`COLUMNS_WITH_ASSIGNEES`].
fn row_with_assignees_of(r: &Row<'_>) -> rusqlite::Result<JobDispatchLog> {
    let mut row = row_of(r)?;
    row.assigned_user_ids = r.get(12)?;
    Ok(row)
}

const LOGIN_COLUMNS: &str = "u.id, u.tenant_id, t.domain, u.username, u.password_hash, u.role, \
     u.user_id FROM app_user u JOIN tenant t ON t.id = u.tenant_id";

fn login_of(r: &Row<'_>) -> rusqlite::Result<LoginRecord> {
    let role: String = r.get(5)?;
    Ok(LoginRecord {
        login_id: r.get(0)?,
        tenant_id: r.get(1)?,
        domain: r.get(2)?,
        username: r.get(3)?,
        password_hash: r.get(4)?,
        role: role.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?,
        user_id: r.get(6)?,
    })
}

pub struct SqliteConn {
    conn: Connection,
}

impl SqliteConn {
    pub fn new(conn: Connection) -> Self {
        SqliteConn { conn }
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

impl Conn for SqliteConn {
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

    fn is_broken(&self) -> bool {
        false
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
            .prepare_cached("UPDATE tenant SET last_stamp = ?2 WHERE id = ?1")?
            .execute(params![tenant, stamp.ticks()])?;
        Ok(())
    }

    fn select_row(
        &mut self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<JobDispatchLog>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM job_dispatch_log WHERE tenant_id = ?1 AND id = ?2"
        ))?;
        Ok(stmt.query_row(params![tenant, id], row_of).optional()?)
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
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
                 date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
                 is_workshop, modified_dateutc, sequence)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (tenant_id, id) DO UPDATE SET
                 jobs_id = excluded.jobs_id, user_id = excluded.user_id,
                 date_create = excluded.date_create, date_proceeded = excluded.date_proceeded,
                 is_accepted = excluded.is_accepted, is_rejected = excluded.is_rejected,
                 rejected_reason = excluded.rejected_reason,
                 sys_logical_delete = excluded.sys_logical_delete,
                 is_workshop = excluded.is_workshop, modified_dateutc = excluded.modified_dateutc,
                 sequence = excluded.sequence",
        )?;
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
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM job_dispatch_log WHERE tenant_id = ?1 AND jobs_id = ?2
                 ORDER BY sequence, user_id"
            ),
            params![tenant, jobs_id],
        )
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
            .prepare_cached(
                "INSERT INTO scope_exit (tenant_id, user_id, id, modified_dateutc)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, user_id, id) DO UPDATE
                 SET modified_dateutc = excluded.modified_dateutc",
            )?
            .execute(params![tenant, from, id, stamp.ticks()])?;
        self.conn
            .prepare_cached(
                "DELETE FROM scope_exit WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3",
            )?
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
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, client_at, actor, action, changes FROM job_dispatch_log_history
             WHERE tenant_id = ?1 AND id = ?2 ORDER BY seq",
        )?;
        let entries = stmt
            .query_map(params![tenant, id], |r| {
                let client_at: i64 = r.get(1)?;
                let changes: String = r.get(4)?;
                Ok(HistoryEntry {
                    at: Timestamp::from_ticks(r.get(0)?),
                    client_at: (client_at != 0).then(|| Timestamp::from_ticks(client_at)),
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    changes: serde_json::from_str(&changes).unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(entries)
    }

    fn purged_through(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        let ticks: Option<i64> = self
            .conn
            .prepare_cached("SELECT purged_through FROM tenant WHERE id = ?1")?
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
                &format!(
                    "SELECT {COLUMNS_WITH_ASSIGNEES}
                     WHERE j.tenant_id = ?1 AND j.modified_dateutc > ?2
                     ORDER BY j.modified_dateutc LIMIT ?3"
                ),
                params![tenant, after, limit],
                row_with_assignees_of,
            ),
        }
    }

    fn scope_exits(
        &mut self,
        tenant: TenantId,
        user: Uuid,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, modified_dateutc FROM scope_exit
             WHERE tenant_id = ?1 AND user_id = ?2 AND modified_dateutc > ?3
             ORDER BY modified_dateutc LIMIT ?4",
        )?;
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
        let mut params: Vec<SqliteValue> = vec![SqliteValue::Integer(tenant)];
        let mut condition = String::from("tenant_id = ?1");
        if let Some(user) = user {
            params.push(SqliteValue::Blob(user.as_bytes().to_vec()));
            condition.push_str(" AND user_id = ?2");
        }
        if let Some(filter) = &query.filter {
            let fragment = filter_sql(filter, Dialect::Sqlite, params.len() + 1);
            condition.push_str(" AND ");
            condition.push_str(&fragment.sql);
            params.extend(fragment.params.into_iter().map(|p| match p {
                SqlValue::Int(i) => SqliteValue::Integer(i),
                SqlValue::Text(t) => SqliteValue::Text(t),
                SqlValue::Uuid(u) => SqliteValue::Blob(u.as_bytes().to_vec()),
                SqlValue::Bool(b) => SqliteValue::Integer(i64::from(b)),
            }));
        }
        let skip = i64::try_from(query.skip).unwrap_or(i64::MAX);
        let rows = self.rows(
            &format!(
                "SELECT {COLUMNS} FROM job_dispatch_log WHERE {condition} ORDER BY {} \
                 LIMIT {} OFFSET {skip}",
                order_sql_for(&query.ordering(), Dialect::Sqlite),
                limit as i64
            ),
            rusqlite::params_from_iter(params.iter()),
        )?;
        let count = if query.count {
            let n: i64 = self
                .conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM job_dispatch_log WHERE {condition}"
                ))?
                .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?;
            Some(n as u64)
        } else {
            None
        };
        Ok((rows, count))
    }

    fn purge(&mut self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let conn = &self.conn;
        let cutoff = cutoff.ticks();
        // Raise each tenant's horizon to the newest change this purge forgets.
        conn.execute(
            "UPDATE tenant SET purged_through = MAX(purged_through, COALESCE((
                 SELECT MAX(m) FROM (
                     SELECT MAX(modified_dateutc) AS m FROM job_dispatch_log
                     WHERE tenant_id = tenant.id AND sys_logical_delete = 1
                       AND modified_dateutc < ?1
                     UNION ALL
                     SELECT MAX(modified_dateutc) FROM scope_exit
                     WHERE tenant_id = tenant.id AND modified_dateutc < ?1)), 0))",
            [cutoff],
        )?;
        conn.execute(
            "DELETE FROM job_dispatch_log_history WHERE EXISTS (
                 SELECT 1 FROM job_dispatch_log d
                 WHERE d.tenant_id = job_dispatch_log_history.tenant_id
                   AND d.id = job_dispatch_log_history.id
                   AND d.sys_logical_delete = 1 AND d.modified_dateutc < ?1)",
            [cutoff],
        )?;
        let rows = conn.execute(
            "DELETE FROM job_dispatch_log WHERE sys_logical_delete = 1 AND modified_dateutc < ?1",
            [cutoff],
        )?;
        conn.execute(
            "DELETE FROM scope_exit WHERE modified_dateutc < ?1",
            [cutoff],
        )?;
        Ok(rows as u64)
    }

    fn tenant_counts(&mut self) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.domain, COUNT(j.id), COALESCE(SUM(j.sys_logical_delete), 0)
             FROM tenant t LEFT JOIN job_dispatch_log j ON j.tenant_id = t.id
             GROUP BY t.id ORDER BY t.domain",
        )?;
        let counts = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(counts)
    }

    fn find_login(
        &mut self,
        domain: &str,
        username: &str,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {LOGIN_COLUMNS} WHERE t.domain = ?1 AND u.username = ?2"
        ))?;
        Ok(stmt
            .query_row(params![domain, username], login_of)
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
            "UPDATE app_user SET password_hash = ?3
             WHERE username = ?2 AND tenant_id = (SELECT id FROM tenant WHERE domain = ?1)",
            params![domain, username, hash],
        )?;
        Ok(n == 1)
    }

    fn remove_user(&mut self, domain: &str, username: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM app_user
             WHERE username = ?2 AND tenant_id = (SELECT id FROM tenant WHERE domain = ?1)",
            params![domain, username],
        )?;
        Ok(n == 1)
    }

    fn list_users(&mut self, domain: Option<&str>) -> Result<Vec<LoginRecord>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {LOGIN_COLUMNS} WHERE ?1 IS NULL OR t.domain = ?1
             ORDER BY t.domain, u.username"
        ))?;
        let users = stmt
            .query_map([domain], login_of)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(users)
    }

    fn count_users(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM app_user", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn add_token(
        &mut self,
        domain: &str,
        username: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO api_token (user_pk, token_hash, created_at)
             SELECT u.id, ?3, ?4 FROM app_user u JOIN tenant t ON t.id = u.tenant_id
             WHERE t.domain = ?1 AND u.username = ?2",
            params![domain, username, token_hash, Timestamp::now().ticks()],
        )?;
        Ok(n == 1)
    }

    fn revoke_tokens(&mut self, domain: &str, username: &str) -> Result<u64, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM api_token WHERE user_pk IN (
                 SELECT u.id FROM app_user u JOIN tenant t ON t.id = u.tenant_id
                 WHERE t.domain = ?1 AND u.username = ?2)",
            params![domain, username],
        )?;
        Ok(n as u64)
    }

    fn find_token(&mut self, token_hash: &str) -> Result<Option<LoginRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {LOGIN_COLUMNS} JOIN api_token k ON k.user_pk = u.id WHERE k.token_hash = ?1"
        ))?;
        Ok(stmt.query_row([token_hash], login_of).optional()?)
    }
}
