//! The SQL of the PostgreSQL engine: [`Conn`] over a `postgres::Client`, with its statements
//! prepared once per connection.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use uuid::Uuid;

use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::query::{filter_sql, order_sql_for, Dialect, ListQuery, SqlValue};
use crate::store::sql::conn::{Conn, NewHistory};
use crate::store::{LoginRecord, NewUser, StoreError, TenantId};

/// The stored columns, in the order [`row_of`] reads them.
const COLUMNS: &str = "id, jobs_id, user_id, date_create, date_proceeded, is_accepted, \
     is_rejected, rejected_reason, sys_logical_delete, is_workshop, modified_dateutc, sequence";

fn row_of(r: &Row) -> Result<JobDispatchLog, StoreError> {
    Ok(JobDispatchLog {
        id: r.try_get(0)?,
        jobs_id: r.try_get(1)?,
        user_id: r.try_get(2)?,
        date_create: Timestamp::from_ticks(r.try_get(3)?),
        date_proceeded: Timestamp::from_ticks(r.try_get(4)?),
        is_accepted: r.try_get(5)?,
        is_rejected: r.try_get(6)?,
        rejected_reason: r.try_get(7)?,
        sys_logical_delete: r.try_get(8)?,
        is_workshop: r.try_get(9)?,
        modified_dateutc: Timestamp::from_ticks(r.try_get(10)?),
        sequence: r.try_get(11)?,
        assigned_user_ids: String::new(),
    })
}

/// [`COLUMNS`] of `job_dispatch_log j`, then the job's `assigned_user_ids` from
/// `job_assignees a` (joined on the job; '' when it has no entry), as [`row_with_assignees_of`]
/// reads them.
const COLUMNS_WITH_ASSIGNEES: &str = "j.id, j.jobs_id, j.user_id, j.date_create, \
     j.date_proceeded, j.is_accepted, j.is_rejected, j.rejected_reason, j.sys_logical_delete, \
     j.is_workshop, j.modified_dateutc, j.sequence, COALESCE(a.user_ids, '') \
     FROM job_dispatch_log j LEFT JOIN job_assignees a \
     ON a.tenant_id = j.tenant_id AND a.jobs_id = j.jobs_id";

/// A row from the columns of [`COLUMNS_WITH_ASSIGNEES`].
fn row_with_assignees_of(r: &Row) -> Result<JobDispatchLog, StoreError> {
    let mut row = row_of(r)?;
    row.assigned_user_ids = r.try_get(12)?;
    Ok(row)
}

const LOGIN_COLUMNS: &str = "u.id, u.tenant_id, t.domain, u.username, u.password_hash, u.role, \
     u.user_id FROM app_user u JOIN tenant t ON t.id = u.tenant_id";

fn login_of(r: &Row) -> Result<LoginRecord, StoreError> {
    let role: String = r.try_get(5)?;
    Ok(LoginRecord {
        login_id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        domain: r.try_get(2)?,
        username: r.try_get(3)?,
        password_hash: r.try_get(4)?,
        role: role
            .parse()
            .map_err(|e: String| StoreError::Internal(anyhow::anyhow!(e)))?,
        user_id: r.try_get(6)?,
    })
}

pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// An error showed the session is gone (terminated by the server, socket closed). The
    /// client itself only notices once its socket is read again, which is too late: the pool
    /// would hand the dead session to the next request.
    lost: bool,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgConn {
    pub fn new(client: Client) -> Self {
        PgConn {
            client,
            statements: HashMap::new(),
            lost: false,
        }
    }

    /// Converts a client error, remembering when it means the session is gone.
    fn check<T>(&mut self, result: Result<T, postgres::Error>) -> Result<T, StoreError> {
        result.map_err(|e| {
            if super::session_lost(&e) {
                self.lost = true;
            }
            e.into()
        })
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let prepared = self.client.prepare(sql);
        let statement = self.check(prepared)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.client.query(&statement, params);
        self.check(result)
    }

    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.client.query_opt(&statement, params);
        self.check(result)
    }

    fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.client.query_one(&statement, params);
        self.check(result)
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.client.execute(&statement, params);
        self.check(result)
    }

    fn rows(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<JobDispatchLog>, StoreError> {
        self.query(sql, params)?.iter().map(row_of).collect()
    }
}

impl Conn for PgConn {
    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let result = self.client.batch_execute(sql);
        self.check(result)
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        self.execute_batch("BEGIN")
    }

    fn begin_read(&mut self) -> Result<(), StoreError> {
        self.execute_batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }

    fn is_broken(&self) -> bool {
        self.lost || self.client.is_closed()
    }

    fn lock_tenant_stamp(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        let row = self.query_opt(
            "SELECT last_stamp FROM tenant WHERE id = $1 FOR UPDATE",
            &[&tenant],
        )?;
        Ok(Timestamp::from_ticks(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        }))
    }

    fn store_tenant_stamp(&mut self, tenant: TenantId, stamp: Timestamp) -> Result<(), StoreError> {
        self.execute(
            "UPDATE tenant SET last_stamp = $2 WHERE id = $1",
            &[&tenant, &stamp.ticks()],
        )?;
        Ok(())
    }

    fn select_row(
        &mut self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<JobDispatchLog>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM job_dispatch_log WHERE tenant_id = $1 AND id = $2");
        self.query_opt(&sql, &[&tenant, &id])?
            .as_ref()
            .map(row_of)
            .transpose()
    }

    fn next_sequence(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<i32, StoreError> {
        let row = self.query_one(
            "SELECT COALESCE(MAX(sequence), 0)::BIGINT FROM job_dispatch_log
             WHERE tenant_id = $1 AND jobs_id = $2",
            &[&tenant, &jobs_id],
        )?;
        let max: i64 = row.try_get(0)?;
        Ok(i32::try_from(max + 1).unwrap_or(i32::MAX))
    }

    fn assignees(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        self.query(
            "SELECT user_id FROM job_dispatch_log
             WHERE tenant_id = $1 AND jobs_id = $2 AND NOT sys_logical_delete AND NOT is_rejected
             ORDER BY sequence, user_id",
            &[&tenant, &jobs_id],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    fn store_job_assignees(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
        user_ids: &str,
    ) -> Result<(), StoreError> {
        if user_ids.is_empty() {
            self.execute(
                "DELETE FROM job_assignees WHERE tenant_id = $1 AND jobs_id = $2",
                &[&tenant, &jobs_id],
            )?;
        } else {
            // An unchanged text is not written again.
            self.execute(
                "INSERT INTO job_assignees (tenant_id, jobs_id, user_ids) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, jobs_id) DO UPDATE SET user_ids = EXCLUDED.user_ids
                 WHERE job_assignees.user_ids <> EXCLUDED.user_ids",
                &[&tenant, &jobs_id, &user_ids],
            )?;
        }
        Ok(())
    }

    fn job_assignees(
        &mut self,
        tenant: TenantId,
        jobs: &[Uuid],
    ) -> Result<HashMap<Uuid, String>, StoreError> {
        let mut by_job = HashMap::with_capacity(jobs.len());
        if let [job] = jobs {
            // A single job (every Save, every GET of a row) uses the plain equality, whose
            // plan is always a key lookup; the array form is for pages of many jobs.
            let row = self.query_opt(
                "SELECT user_ids FROM job_assignees WHERE tenant_id = $1 AND jobs_id = $2",
                &[&tenant, job],
            )?;
            if let Some(r) = row {
                by_job.insert(*job, r.try_get(0)?);
            }
            return Ok(by_job);
        }
        let jobs = jobs.to_vec();
        // Unprepared, so the plan is made for this array: a plan cached for "an array of some
        // size" may scan the whole table.
        let found = self.client.query(
            "SELECT jobs_id, user_ids FROM job_assignees WHERE tenant_id = $1 AND jobs_id = ANY($2)",
            &[&tenant, &jobs],
        );
        for r in self.check(found)? {
            by_job.insert(r.try_get(0)?, r.try_get(1)?);
        }
        Ok(by_job)
    }

    fn upsert(&mut self, tenant: TenantId, row: &JobDispatchLog) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
                 date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
                 is_workshop, modified_dateutc, sequence)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (tenant_id, id) DO UPDATE SET
                 jobs_id = EXCLUDED.jobs_id, user_id = EXCLUDED.user_id,
                 date_create = EXCLUDED.date_create, date_proceeded = EXCLUDED.date_proceeded,
                 is_accepted = EXCLUDED.is_accepted, is_rejected = EXCLUDED.is_rejected,
                 rejected_reason = EXCLUDED.rejected_reason,
                 sys_logical_delete = EXCLUDED.sys_logical_delete,
                 is_workshop = EXCLUDED.is_workshop, modified_dateutc = EXCLUDED.modified_dateutc,
                 sequence = EXCLUDED.sequence",
            &[
                &tenant,
                &row.id,
                &row.jobs_id,
                &row.user_id,
                &row.date_create.ticks(),
                &row.date_proceeded.ticks(),
                &row.is_accepted,
                &row.is_rejected,
                &row.rejected_reason,
                &row.sys_logical_delete,
                &row.is_workshop,
                &row.modified_dateutc.ticks(),
                &row.sequence,
            ],
        )?;
        Ok(())
    }

    fn job_rows(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM job_dispatch_log WHERE tenant_id = $1 AND jobs_id = $2
             ORDER BY sequence, user_id"
        );
        self.rows(&sql, &[&tenant, &jobs_id])
    }

    fn formerly_assigned(
        &mut self,
        tenant: TenantId,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM scope_exit WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
                &[&tenant, &user_id, &id],
            )?
            .is_some())
    }

    fn record_reassignment(
        &mut self,
        tenant: TenantId,
        id: Uuid,
        from: Uuid,
        to: Uuid,
        stamp: Timestamp,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO scope_exit (tenant_id, user_id, id, modified_dateutc)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, user_id, id) DO UPDATE
             SET modified_dateutc = EXCLUDED.modified_dateutc",
            &[&tenant, &from, &id, &stamp.ticks()],
        )?;
        self.execute(
            "DELETE FROM scope_exit WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
            &[&tenant, &to, &id],
        )?;
        Ok(())
    }

    fn insert_history(&mut self, e: &NewHistory<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO job_dispatch_log_history
                 (tenant_id, id, at, client_at, actor, action, changes)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &e.tenant,
                &e.id,
                &e.at.ticks(),
                &e.client_at.map(Timestamp::ticks).unwrap_or(0),
                &e.actor,
                &e.action,
                &e.changes,
            ],
        )?;
        Ok(())
    }

    fn history(&mut self, tenant: TenantId, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        self.query(
            "SELECT at, client_at, actor, action, changes FROM job_dispatch_log_history
             WHERE tenant_id = $1 AND id = $2 ORDER BY seq",
            &[&tenant, &id],
        )?
        .iter()
        .map(|r| {
            let client_at: i64 = r.try_get(1)?;
            let changes: String = r.try_get(4)?;
            Ok(HistoryEntry {
                at: Timestamp::from_ticks(r.try_get(0)?),
                client_at: (client_at != 0).then(|| Timestamp::from_ticks(client_at)),
                actor: r.try_get(2)?,
                action: r.try_get(3)?,
                changes: serde_json::from_str(&changes).unwrap_or_default(),
            })
        })
        .collect()
    }

    fn purged_through(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        let row = self.query_opt(
            "SELECT purged_through FROM tenant WHERE id = $1",
            &[&tenant],
        )?;
        Ok(Timestamp::from_ticks(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        }))
    }

    fn changed_rows(
        &mut self,
        tenant: TenantId,
        user: Option<Uuid>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        let limit = limit as i64;
        let rows = match user {
            Some(user) => {
                let sql = format!(
                    "SELECT {COLUMNS_WITH_ASSIGNEES}
                     WHERE j.tenant_id = $1 AND j.user_id = $2 AND j.modified_dateutc > $3
                     ORDER BY j.modified_dateutc LIMIT $4"
                );
                self.query(&sql, &[&tenant, &user, &after, &limit])?
            }
            None => {
                let sql = format!(
                    "SELECT {COLUMNS_WITH_ASSIGNEES}
                     WHERE j.tenant_id = $1 AND j.modified_dateutc > $2
                     ORDER BY j.modified_dateutc LIMIT $3"
                );
                self.query(&sql, &[&tenant, &after, &limit])?
            }
        };
        rows.iter().map(row_with_assignees_of).collect()
    }

    fn scope_exits(
        &mut self,
        tenant: TenantId,
        user: Uuid,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        self.query(
            "SELECT id, modified_dateutc FROM scope_exit
             WHERE tenant_id = $1 AND user_id = $2 AND modified_dateutc > $3
             ORDER BY modified_dateutc LIMIT $4",
            &[&tenant, &user, &after, &(limit as i64)],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
    }

    fn list(
        &mut self,
        tenant: TenantId,
        user: Option<Uuid>,
        query: &ListQuery,
        limit: usize,
    ) -> Result<(Vec<JobDispatchLog>, Option<u64>), StoreError> {
        let mut params: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(tenant)];
        let mut condition = String::from("tenant_id = $1");
        if let Some(user) = user {
            params.push(Box::new(user));
            condition.push_str(" AND user_id = $2");
        }
        if let Some(filter) = &query.filter {
            let fragment = filter_sql(filter, Dialect::Postgres, params.len() + 1);
            condition.push_str(" AND ");
            condition.push_str(&fragment.sql);
            for p in fragment.params {
                params.push(match p {
                    SqlValue::Int(i) => Box::new(i),
                    SqlValue::Text(t) => Box::new(t),
                    SqlValue::Uuid(u) => Box::new(u),
                    SqlValue::Bool(b) => Box::new(b),
                });
            }
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        let skip = i64::try_from(query.skip).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {COLUMNS} FROM job_dispatch_log WHERE {condition} ORDER BY {} \
             LIMIT {} OFFSET {skip}",
            order_sql_for(&query.ordering(), Dialect::Postgres),
            limit as i64
        );
        // Filters vary with every request: run them unprepared rather than fill the cache.
        let found = self.client.query(sql.as_str(), &refs);
        let rows = self
            .check(found)?
            .iter()
            .map(row_of)
            .collect::<Result<Vec<_>, _>>()?;
        let count = if query.count {
            let counted = self.client.query_one(
                format!("SELECT COUNT(*) FROM job_dispatch_log WHERE {condition}").as_str(),
                &refs,
            );
            let row = self.check(counted)?;
            Some(row.try_get::<_, i64>(0)? as u64)
        } else {
            None
        };
        Ok((rows, count))
    }

    fn purge(&mut self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let cutoff = cutoff.ticks();
        self.execute(
            "UPDATE tenant SET purged_through = GREATEST(purged_through, COALESCE((
                 SELECT MAX(m) FROM (
                     SELECT MAX(modified_dateutc) AS m FROM job_dispatch_log
                     WHERE tenant_id = tenant.id AND sys_logical_delete AND modified_dateutc < $1
                     UNION ALL
                     SELECT MAX(modified_dateutc) FROM scope_exit
                     WHERE tenant_id = tenant.id AND modified_dateutc < $1) horizon), 0))",
            &[&cutoff],
        )?;
        self.execute(
            "DELETE FROM job_dispatch_log_history h USING job_dispatch_log d
             WHERE d.tenant_id = h.tenant_id AND d.id = h.id
               AND d.sys_logical_delete AND d.modified_dateutc < $1",
            &[&cutoff],
        )?;
        let rows = self.execute(
            "DELETE FROM job_dispatch_log WHERE sys_logical_delete AND modified_dateutc < $1",
            &[&cutoff],
        )?;
        self.execute(
            "DELETE FROM scope_exit WHERE modified_dateutc < $1",
            &[&cutoff],
        )?;
        Ok(rows)
    }

    fn tenant_counts(&mut self) -> Result<Vec<(String, u64, u64)>, StoreError> {
        self.query(
            "SELECT t.domain, COUNT(j.id), COUNT(j.id) FILTER (WHERE j.sys_logical_delete)
             FROM tenant t LEFT JOIN job_dispatch_log j ON j.tenant_id = t.id
             GROUP BY t.id ORDER BY t.domain",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get::<_, i64>(1)? as u64,
                r.try_get::<_, i64>(2)? as u64,
            ))
        })
        .collect()
    }

    fn find_login(
        &mut self,
        domain: &str,
        username: &str,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let sql = format!(
            "SELECT {LOGIN_COLUMNS}
             WHERE lower(t.domain) = lower($1) AND lower(u.username) = lower($2)"
        );
        self.query_opt(&sql, &[&domain, &username])?
            .as_ref()
            .map(login_of)
            .transpose()
    }

    fn add_user(&mut self, user: &NewUser) -> Result<bool, StoreError> {
        let now = Timestamp::now().ticks();
        self.execute(
            "INSERT INTO tenant (domain, created_at) VALUES ($1, $2)
             ON CONFLICT ((lower(domain))) DO NOTHING",
            &[&user.domain, &now],
        )?;
        let inserted = self.execute(
            "INSERT INTO app_user (tenant_id, username, password_hash, role, user_id, created_at)
             SELECT id, $2, $3, $4, $5, $6 FROM tenant WHERE lower(domain) = lower($1)
             ON CONFLICT (tenant_id, (lower(username))) DO NOTHING",
            &[
                &user.domain,
                &user.username,
                &user.password_hash,
                &user.role.as_str(),
                &user.user_id,
                &now,
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
        let n = self.execute(
            "UPDATE app_user SET password_hash = $3
             WHERE lower(username) = lower($2)
               AND tenant_id = (SELECT id FROM tenant WHERE lower(domain) = lower($1))",
            &[&domain, &username, &hash],
        )?;
        Ok(n == 1)
    }

    fn remove_user(&mut self, domain: &str, username: &str) -> Result<bool, StoreError> {
        let n = self.execute(
            "DELETE FROM app_user
             WHERE lower(username) = lower($2)
               AND tenant_id = (SELECT id FROM tenant WHERE lower(domain) = lower($1))",
            &[&domain, &username],
        )?;
        Ok(n == 1)
    }

    fn list_users(&mut self, domain: Option<&str>) -> Result<Vec<LoginRecord>, StoreError> {
        let sql = format!(
            "SELECT {LOGIN_COLUMNS}
             WHERE $1::TEXT IS NULL OR lower(t.domain) = lower($1::TEXT)
             ORDER BY t.domain, u.username"
        );
        self.query(&sql, &[&domain])?.iter().map(login_of).collect()
    }

    fn count_users(&mut self) -> Result<u64, StoreError> {
        let row = self.query_one("SELECT COUNT(*) FROM app_user", &[])?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    fn add_token(
        &mut self,
        domain: &str,
        username: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        let n = self.execute(
            "INSERT INTO api_token (user_pk, token_hash, created_at)
             SELECT u.id, $3, $4 FROM app_user u JOIN tenant t ON t.id = u.tenant_id
             WHERE lower(t.domain) = lower($1) AND lower(u.username) = lower($2)",
            &[&domain, &username, &token_hash, &Timestamp::now().ticks()],
        )?;
        Ok(n == 1)
    }

    fn revoke_tokens(&mut self, domain: &str, username: &str) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM api_token WHERE user_pk IN (
                 SELECT u.id FROM app_user u JOIN tenant t ON t.id = u.tenant_id
                 WHERE lower(t.domain) = lower($1) AND lower(u.username) = lower($2))",
            &[&domain, &username],
        )
    }

    fn find_token(&mut self, token_hash: &str) -> Result<Option<LoginRecord>, StoreError> {
        let sql = format!(
            "SELECT {LOGIN_COLUMNS} JOIN api_token k ON k.user_pk = u.id WHERE k.token_hash = $1"
        );
        self.query_opt(&sql, &[&token_hash])?
            .as_ref()
            .map(login_of)
            .transpose()
    }
}
