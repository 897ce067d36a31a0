//! The SQL of the PostgreSQL engine: the row and account operations over [`PgConn`]. The
//! statements both engines run are in `shared/sql.rs`; the writer's group protocol, which
//! these operations consult so that they answer as if each write had been executed at once,
//! is in `pipeline.rs`.

use std::collections::HashMap;

use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::client::row_of;
use super::group::{Pending, PendingHistory};
use super::PgConn;
use crate::domain::job_dispatch_log::assigned_user_ids;
use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::query::{Dialect, ListQuery, SqlValue};
use crate::store::shared::conn::{
    AccountConn, GroupConn, NewHistory, Prefetch, PurgeStep, RowConn,
};
use crate::store::shared::sql::{self, decode_history, decode_login};
use crate::store::{LoginRecord, NewUser, StoreError, TenantFigures, TenantId};

/// A row from the columns of [`sql::ROW_COLUMNS`], then its job's `assigned_user_ids`
/// ([`sql::JOB_ASSIGNEES_COLUMN`]).
fn row_with_assignees_of(r: &tokio_postgres::Row) -> Result<JobDispatchLog, StoreError> {
    let mut row = row_of(r)?;
    row.assigned_user_ids = r.try_get(sql::ROW_COLUMN_COUNT)?;
    Ok(row)
}

impl PgConn {
    /// The current assignees of several jobs at once, in the order of [`RowConn::assignees`].
    fn assignees_of_jobs(
        &mut self,
        tenant: TenantId,
        jobs: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<Uuid>>, StoreError> {
        let mut by_job: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        if let Some(group) = &self.group {
            let known: Option<Vec<(Uuid, Vec<Uuid>)>> = jobs
                .iter()
                .map(|job| group.assignees(tenant, *job).map(|ids| (*job, ids)))
                .collect();
            if let Some(known) = known {
                return Ok(known.into_iter().collect());
            }
            if jobs.iter().any(|job| group.job_dirty(tenant, *job)) {
                self.settle()?;
            }
        }
        if let [job] = jobs {
            // A single job (every Save) uses the plain equality, whose plan is always an index
            // lookup; the array form is for pages of many jobs.
            by_job.insert(*job, self.assignees(tenant, *job)?);
            return Ok(by_job);
        }
        let jobs = jobs.to_vec();
        // Unprepared, so a reader plans it for this array: a plan cached for "an array of some
        // size" may scan the whole table. (The writer's session plans it without the array and
        // without sequential scans; its ORDER BY, which the job index gives, keeps it there.)
        // Typed, so it is sent in one round trip without a prepared statement.
        let found = self.runtime.block_on(self.client.query_typed(
            "SELECT jobs_id, user_id FROM job_dispatch_log
             WHERE tenant_id = $1 AND jobs_id = ANY($2)
               AND NOT sys_logical_delete AND NOT is_rejected
             ORDER BY jobs_id, sequence, user_id",
            &[(&tenant, Type::INT8), (&jobs, Type::UUID_ARRAY)],
        ));
        for r in self.check(found)? {
            by_job.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        Ok(by_job)
    }
}

impl PgConn {
    /// One step of a purge (`shared::sql::purge_step`, `shared::sql::purge`).
    fn purge_statements(&mut self, cutoff: i64, limit: u64) -> Result<PurgeStep, StoreError> {
        let [horizon, history, rows, exits] = sql::purge(Dialect::Postgres);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let step: Option<i64> = self
            .query_opt(&sql::purge_step(Dialect::Postgres), &[&cutoff, &limit])?
            .map(|r| r.try_get(0))
            .transpose()?;
        let cutoff = step.unwrap_or(cutoff);
        self.execute(&horizon, &[&cutoff])?;
        self.execute(&history, &[&cutoff])?;
        let rows = self.execute(&rows, &[&cutoff])?;
        self.execute(&exits, &[&cutoff])?;
        Ok(PurgeStep {
            rows,
            done: step.is_none(),
        })
    }
}

impl GroupConn for PgConn {
    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let result = self.runtime.block_on(self.client.batch_execute(sql));
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

    /// `BEGIN`, the tenants' locks and the loading of the rows the jobs will read: one round
    /// trip.
    fn begin_group(
        &mut self,
        tenants: &[(TenantId, Prefetch)],
    ) -> Result<Vec<Timestamp>, StoreError> {
        self.group = None;
        let (_, opened) = self.exchange(&[], None, Some(tenants), None);
        opened.unwrap_or_else(|| Ok(Vec::new()))
    }

    fn job_begin(&mut self) -> Result<(), StoreError> {
        match self.group.as_mut() {
            Some(group) => {
                group.job_begin();
                Ok(())
            }
            None => self.execute_batch("SAVEPOINT job"),
        }
    }

    fn job_end(&mut self, keep: bool) -> Result<(), StoreError> {
        let savepoint = match self.group.as_mut() {
            Some(group) => group.job_end(keep),
            None => true,
        };
        if !savepoint {
            return Ok(());
        }
        self.execute_batch(if keep {
            "RELEASE SAVEPOINT job"
        } else {
            "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job"
        })
    }

    /// The group's writes, the tenants' new stamps and `COMMIT`: one round trip.
    fn commit_group(&mut self, stamps: &[(TenantId, Timestamp)]) -> Result<(), StoreError> {
        let writes = self.take_all_pending();
        let (committed, _) = self.exchange(&writes, Some(stamps), None, None);
        self.group = None;
        committed
    }

    fn pipelines_groups(&self) -> bool {
        true
    }

    /// The group's writes, stamps and `COMMIT`, and the next group's `BEGIN`, locks and rows:
    /// one round trip for both.
    fn commit_then_begin(
        &mut self,
        stamps: &[(TenantId, Timestamp)],
        next: &[(TenantId, Prefetch)],
        committed: &mut dyn FnMut(Result<(), String>),
    ) -> (Result<(), StoreError>, Result<Vec<Timestamp>, StoreError>) {
        let writes = self.take_all_pending();
        self.group = None;
        let (committed, opened) = self.exchange(&writes, Some(stamps), Some(next), Some(committed));
        match (committed, opened) {
            (Ok(()), Some(opened)) => (Ok(()), opened),
            (committed, _) => {
                // The commit failed, so what followed it ran in a failed transaction (or none):
                // start the next group afresh.
                self.rollback_group();
                let opened = if self.is_broken() {
                    Err(StoreError::Unavailable(anyhow::anyhow!(
                        "the database connection was lost"
                    )))
                } else {
                    self.begin_group(next)
                };
                (committed, opened)
            }
        }
    }

    fn rollback_group(&mut self) {
        self.group = None;
        let _ = self.execute_batch("ROLLBACK");
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
}

impl RowConn for PgConn {
    fn select_row(
        &mut self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<JobDispatchLog>, StoreError> {
        if let Some(known) = self.group.as_ref().and_then(|g| g.row(tenant, id)) {
            return Ok(known);
        }
        self.query_opt(sql::SELECT_ROW, &[&tenant, &id])?
            .as_ref()
            .map(row_of)
            .transpose()
    }

    fn max_sequence(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<i64, StoreError> {
        if let Some(max) = self
            .group
            .as_ref()
            .and_then(|g| g.max_sequence(tenant, jobs_id))
        {
            return Ok(max.into());
        }
        self.settle_for_job(tenant, jobs_id)?;
        let row = self.query_one(
            "SELECT COALESCE(MAX(sequence), 0)::BIGINT FROM job_dispatch_log
             WHERE tenant_id = $1 AND jobs_id = $2",
            &[&tenant, &jobs_id],
        )?;
        Ok(row.try_get(0)?)
    }

    fn assignees(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        if let Some(known) = self
            .group
            .as_ref()
            .and_then(|g| g.assignees(tenant, jobs_id))
        {
            return Ok(known);
        }
        self.settle_for_job(tenant, jobs_id)?;
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

    /// Stored on every row of the job whose text differs, with the group's other writes
    /// (`pipeline.rs`: a row the group upserts takes its job's text in the upsert itself).
    fn store_job_assignees(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
        user_ids: &str,
    ) -> Result<(), StoreError> {
        let write = Pending::JobText {
            tenant,
            jobs_id,
            text: user_ids.to_string(),
        };
        match self.group.as_mut() {
            Some(group) => {
                group.store_job_text(write);
                Ok(())
            }
            None => self.send(&[write]),
        }
    }

    fn job_assignees(
        &mut self,
        tenant: TenantId,
        jobs: &[Uuid],
    ) -> Result<HashMap<Uuid, String>, StoreError> {
        Ok(self
            .assignees_of_jobs(tenant, jobs)?
            .into_iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(job, ids)| (job, assigned_user_ids(ids)))
            .collect())
    }

    fn upsert(&mut self, tenant: TenantId, row: &JobDispatchLog) -> Result<(), StoreError> {
        match self.group.as_mut() {
            Some(group) => {
                group.upsert(tenant, row.clone());
                Ok(())
            }
            None => self.send(&[Pending::Upsert(tenant, row.clone())]),
        }
    }

    fn job_rows(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        if let Some(known) = self
            .group
            .as_ref()
            .and_then(|g| g.job_rows(tenant, jobs_id))
        {
            return Ok(known);
        }
        self.settle_for_job(tenant, jobs_id)?;
        self.rows(sql::JOB_ROWS, &[&tenant, &jobs_id])
    }

    fn formerly_assigned(
        &mut self,
        tenant: TenantId,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        if self
            .group
            .as_ref()
            .is_some_and(|g| g.exits_dirty(tenant, id))
        {
            self.settle()?;
        }
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
        match self.group.as_mut() {
            Some(group) => {
                group.record_reassignment(tenant, id, from, to, stamp);
                Ok(())
            }
            None => self.send(&[Pending::Reassignment {
                tenant,
                id,
                from,
                to,
                stamp,
            }]),
        }
    }

    fn insert_history(&mut self, e: &NewHistory<'_>) -> Result<(), StoreError> {
        let entry = PendingHistory {
            tenant: e.tenant,
            id: e.id,
            at: e.at,
            client_at: e.client_at,
            actor: e.actor.to_string(),
            action: e.action.to_string(),
            changes: e.changes.to_string(),
        };
        match self.group.as_mut() {
            Some(group) => {
                group.insert_history(entry);
                Ok(())
            }
            None => self.send(&[Pending::History(entry)]),
        }
    }

    fn history(&mut self, tenant: TenantId, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        self.settle()?;
        self.query(sql::HISTORY, &[&tenant, &id])?
            .iter()
            .map(decode_history)
            .collect()
    }

    fn tenant_last_stamp(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        self.settle()?;
        let row = self.query_opt(sql::TENANT_LAST_STAMP, &[&tenant])?;
        Ok(Timestamp::from_ticks(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        }))
    }

    fn purged_through(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        self.settle()?;
        let row = self.query_opt(sql::PURGED_THROUGH, &[&tenant])?;
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
        self.settle()?;
        let limit = limit as i64;
        // Each row with its job's assignees, in one statement (see `sql::list`).
        let assignees = sql::JOB_ASSIGNEES_COLUMN;
        let found = match user {
            Some(user) => {
                let sql = format!(
                    "SELECT {}, {assignees} FROM job_dispatch_log j
                     WHERE tenant_id = $1 AND user_id = $2 AND modified_dateutc > $3
                     ORDER BY modified_dateutc LIMIT $4",
                    sql::ROW_COLUMNS
                );
                self.query(&sql, &[&tenant, &user, &after, &limit])
            }
            None => {
                let sql = format!(
                    "SELECT {}, {assignees} FROM job_dispatch_log j
                     WHERE tenant_id = $1 AND modified_dateutc > $2
                     ORDER BY modified_dateutc LIMIT $3",
                    sql::ROW_COLUMNS
                );
                self.query(&sql, &[&tenant, &after, &limit])
            }
        }?;
        found.iter().map(row_with_assignees_of).collect()
    }

    fn tenant_scope_exits(
        &mut self,
        tenant: TenantId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, Uuid, i64)>, StoreError> {
        self.settle()?;
        self.query(sql::TENANT_SCOPE_EXITS, &[&tenant, &after, &(limit as i64)])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    fn scope_exits(
        &mut self,
        tenant: TenantId,
        user: Uuid,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        self.settle()?;
        self.query(sql::SCOPE_EXITS, &[&tenant, &user, &after, &(limit as i64)])?
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
        self.settle()?;
        let list = sql::list(Dialect::Postgres, tenant, user, query, limit);
        let params: Vec<(Box<dyn ToSql + Sync>, Type)> = list
            .params
            .into_iter()
            .map(|p| -> (Box<dyn ToSql + Sync>, Type) {
                match p {
                    SqlValue::Int(i) => (Box::new(i), Type::INT8),
                    SqlValue::Text(t) => (Box::new(t), Type::TEXT),
                    SqlValue::Uuid(u) => (Box::new(u), Type::UUID),
                    SqlValue::Bool(b) => (Box::new(b), Type::BOOL),
                }
            })
            .collect();
        let types: Vec<Type> = params.iter().map(|(_, ty)| ty.clone()).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(p, _)| p.as_ref()).collect();
        let statement = self.list_statement(&list.rows, &types)?;
        let found = self.runtime.block_on(self.client.query(&statement, &refs));
        let rows = self
            .check(found)?
            .iter()
            .map(row_with_assignees_of)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let count = match &list.count {
            Some(sql) => {
                let statement = self.list_statement(sql, &types)?;
                let counted = self.runtime.block_on(self.client.query(&statement, &refs));
                let counted = self.check(counted)?;
                let row = counted.first().ok_or_else(|| {
                    StoreError::Internal(anyhow::anyhow!("the count query returned no row"))
                })?;
                Some(row.try_get::<_, i64>(0)? as u64)
            }
            None => None,
        };
        Ok((rows, count))
    }

    fn purge(&mut self, cutoff: Timestamp, limit: u64) -> Result<PurgeStep, StoreError> {
        self.settle_for_write()?;
        if let Some(group) = self.group.as_mut() {
            group.forget_rows();
        }
        let cutoff = cutoff.ticks();
        // A purge step scans `scope_exit` (no index by stamp alone; the table holds no more than
        // the retention): let the planner choose scans for it (the writer's session turns them
        // off, see WRITER_SESSION), until the end of its job. The rows and their history are
        // found through indexes (`sql::purge`).
        // A purge that fails is undone with its job, scans setting included; its own error is
        // the one to report.
        self.execute_batch("SET LOCAL enable_seqscan = on")?;
        let purged = self.purge_statements(cutoff, limit);
        let restored = self.execute_batch("SET LOCAL enable_seqscan = off");
        let rows = purged?;
        restored?;
        Ok(rows)
    }

    fn tenant_counts(&mut self) -> Result<Vec<TenantFigures>, StoreError> {
        self.settle()?;
        self.query(
            "SELECT t.id, t.domain, COUNT(j.id), COUNT(j.id) FILTER (WHERE j.sys_logical_delete)
             FROM tenant t LEFT JOIN job_dispatch_log j ON j.tenant_id = t.id
             GROUP BY t.id ORDER BY t.id",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(TenantFigures {
                tenant_id: r.try_get(0)?,
                domain: r.try_get(1)?,
                rows: r.try_get::<_, i64>(2)? as u64,
                tombstones: r.try_get::<_, i64>(3)? as u64,
            })
        })
        .collect()
    }
}

impl AccountConn for PgConn {
    fn find_login(
        &mut self,
        domain: &str,
        username: &str,
    ) -> Result<Option<LoginRecord>, StoreError> {
        self.query_opt(&sql::find_login(Dialect::Postgres), &[&domain, &username])?
            .as_ref()
            .map(decode_login)
            .transpose()
    }

    fn add_user(&mut self, user: &NewUser) -> Result<bool, StoreError> {
        self.settle_for_write()?;
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
        self.settle_for_write()?;
        let n = self.execute(
            &sql::set_password(Dialect::Postgres),
            &[&domain, &username, &hash],
        )?;
        Ok(n == 1)
    }

    fn remove_user(&mut self, domain: &str, username: &str) -> Result<bool, StoreError> {
        self.settle_for_write()?;
        let n = self.execute(&sql::remove_user(Dialect::Postgres), &[&domain, &username])?;
        Ok(n == 1)
    }

    fn list_users(&mut self, domain: Option<&str>) -> Result<Vec<LoginRecord>, StoreError> {
        self.query(&sql::list_users(Dialect::Postgres), &[&domain])?
            .iter()
            .map(decode_login)
            .collect()
    }

    fn count_users(&mut self) -> Result<u64, StoreError> {
        let row = self.query_one(sql::COUNT_USERS, &[])?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    fn add_token(
        &mut self,
        domain: &str,
        username: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        self.settle_for_write()?;
        let n = self.execute(
            &sql::add_token(Dialect::Postgres),
            &[&domain, &username, &token_hash, &Timestamp::now().ticks()],
        )?;
        Ok(n == 1)
    }

    fn revoke_tokens(&mut self, domain: &str, username: &str) -> Result<u64, StoreError> {
        self.settle_for_write()?;
        self.execute(
            &sql::revoke_tokens(Dialect::Postgres),
            &[&domain, &username],
        )
    }

    fn find_token(&mut self, token_hash: &str) -> Result<Option<LoginRecord>, StoreError> {
        self.query_opt(&sql::find_token(Dialect::Postgres), &[&token_hash])?
            .as_ref()
            .map(decode_login)
            .transpose()
    }

    fn credentials_version(&mut self) -> Result<i64, StoreError> {
        let row = self.query_one(sql::CREDENTIALS_VERSION, &[])?;
        row.try_get(0).map_err(|e| StoreError::Internal(e.into()))
    }
}
