//! The SQL of the PostgreSQL engine: [`Conn`] over a `tokio_postgres::Client` driven by a
//! runtime of its own (the store's threads block on it), with its statements prepared once per
//! connection.
//!
//! On the writer, a group's writes are kept in a [`Group`] and sent together before the commit
//! (see `group.rs`), and the statements that open and end a group are pipelined: a group of
//! many Saves costs two round trips.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::runtime::Runtime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

use super::group::{Group, Pending, PendingHistory};

use crate::domain::job_dispatch_log::assigned_user_ids;
use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::query::{filter_sql, order_sql_for, Dialect, ListQuery, SqlValue};
use crate::store::shared::conn::{Conn, NewHistory, Prefetch};
use crate::store::{LoginRecord, NewUser, StoreError, TenantId};

/// The stored columns, in the order [`row_of`] reads them.
const COLUMNS: &str = "id, jobs_id, user_id, date_create, date_proceeded, is_accepted, \
     is_rejected, rejected_reason, sys_logical_delete, is_workshop, modified_dateutc, sequence";

/// The rows a group's jobs are about to read: every row of the jobs named, and of the jobs of
/// the rows named ($1 tenant, $2 row ids, $3 job ids). Prepared once and run with one plan ([`WRITER_SESSION`]); its shape keeps
/// that plan a loop of index lookups, one per key, whatever the table's size: the lateral
/// subquery (fenced by `OFFSET 0`) is looked up once per job, never joined as a whole table.
const PREFETCH: &str = "SELECT r.id, r.jobs_id, r.user_id, r.date_create, r.date_proceeded, \
     r.is_accepted, r.is_rejected, r.rejected_reason, r.sys_logical_delete, r.is_workshop, \
     r.modified_dateutc, r.sequence
     FROM (SELECT unnest($3::uuid[]) AS jobs_id
           UNION
           SELECT (SELECT x.jobs_id FROM job_dispatch_log x
                   WHERE x.tenant_id = $1 AND x.id = k.id)
           FROM unnest($2::uuid[]) AS k(id)) j
     CROSS JOIN LATERAL (
         SELECT * FROM job_dispatch_log r
         WHERE r.tenant_id = $1 AND r.jobs_id = j.jobs_id ORDER BY r.sequence OFFSET 0) r";

/// The writer's session: every statement it runs is a lookup by key, so each is planned once
/// (a plan made for one execution's arrays would cost more to make than to run), and never as
/// a sequential scan — a plan made while a table is small must stay right as it grows
/// between two statistics updates. Purge, the one statement that scans, turns scans back on
/// for itself.
pub(super) const WRITER_SESSION: &str =
    "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off";

/// Row upserts and history entries, one array per column.
const FLUSH: &str = "WITH upserted AS (
         INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
             date_proceeded, is_accepted, is_rejected, rejected_reason,
             sys_logical_delete, is_workshop, modified_dateutc, sequence)
         SELECT * FROM unnest($1::int8[], $2::uuid[], $3::uuid[], $4::uuid[],
             $5::int8[], $6::int8[], $7::bool[], $8::bool[], $9::text[], $10::bool[],
             $11::bool[], $12::int8[], $13::int4[])
         ON CONFLICT (tenant_id, id) DO UPDATE SET
             jobs_id = EXCLUDED.jobs_id, user_id = EXCLUDED.user_id,
             date_create = EXCLUDED.date_create, date_proceeded = EXCLUDED.date_proceeded,
             is_accepted = EXCLUDED.is_accepted, is_rejected = EXCLUDED.is_rejected,
             rejected_reason = EXCLUDED.rejected_reason,
             sys_logical_delete = EXCLUDED.sys_logical_delete,
             is_workshop = EXCLUDED.is_workshop,
             modified_dateutc = EXCLUDED.modified_dateutc, sequence = EXCLUDED.sequence)
     INSERT INTO job_dispatch_log_history (tenant_id, id, at, client_at, actor, action, changes)
     SELECT t, i, a, c, w, x, ch
     FROM unnest($14::int8[], $15::uuid[], $16::int8[], $17::int8[], $18::text[],
         $19::text[], $20::text[]) WITH ORDINALITY AS h(t, i, a, c, w, x, ch, n)
     ORDER BY n";

const SCOPE_EXIT_ADD: &str = "INSERT INTO scope_exit (tenant_id, user_id, id, modified_dateutc)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant_id, user_id, id) DO UPDATE
     SET modified_dateutc = EXCLUDED.modified_dateutc";

const SCOPE_EXIT_REMOVE: &str =
    "DELETE FROM scope_exit WHERE tenant_id = $1 AND user_id = $2 AND id = $3";

/// The outcome of opening a write group: the tenants' last stamps.
type Opened = Result<Vec<Timestamp>, StoreError>;

/// A statement sent to the server, answering its rows (none for a command).
type Request<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + 'a>>;

/// Told whether requests succeeded: `Ok`, or the first failure.
type Tell<'a> = &'a mut dyn FnMut(Result<(), String>);

/// Sends every request before waiting for any answer — one round trip for all, which the
/// server runs in order — and answers each request's outcome, in order. When `first` is given,
/// its callback is told, as soon as the first `n` requests are answered, whether they all
/// succeeded (the first failure otherwise).
fn pipeline(
    runtime: &Runtime,
    requests: Vec<Request<'_>>,
    mut first: Option<(usize, Tell<'_>)>,
) -> Vec<Result<Vec<Row>, tokio_postgres::Error>> {
    runtime.block_on(async move {
        let mut requests: Vec<Option<Request<'_>>> = requests.into_iter().map(Some).collect();
        let mut answers: Vec<Option<Result<Vec<Row>, tokio_postgres::Error>>> =
            requests.iter().map(|_| None).collect();
        // Each request goes out when first polled, so polling them in order sends them in order.
        std::future::poll_fn(|cx| {
            let mut waiting = false;
            for (slot, answer) in requests.iter_mut().zip(answers.iter_mut()) {
                if let Some(request) = slot {
                    match request.as_mut().poll(cx) {
                        Poll::Ready(result) => {
                            *answer = Some(result);
                            *slot = None;
                        }
                        Poll::Pending => waiting = true,
                    }
                }
            }
            if let Some((n, tell)) = &mut first {
                let head = &answers[..(*n).min(answers.len())];
                if head.iter().all(Option::is_some) {
                    let outcome = head.iter().flatten().try_for_each(|answer| match answer {
                        Ok(_) => Ok(()),
                        Err(e) => Err(e.to_string()),
                    });
                    tell(outcome);
                    first = None;
                }
            }
            if waiting {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        answers.into_iter().flatten().collect()
    })
}

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
    /// Runs the connection's socket while a call blocks on it.
    runtime: Runtime,
    client: Client,
    statements: HashMap<String, Statement>,
    /// An error showed the session is gone (terminated by the server, socket closed). The
    /// client itself only notices once its socket is read again, which is too late: the pool
    /// would hand the dead session to the next request.
    lost: bool,
    /// The write group in progress on this connection (the writer's), if any.
    group: Option<Group>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgConn {
    pub fn new(runtime: Runtime, client: Client) -> Self {
        PgConn {
            runtime,
            client,
            statements: HashMap::new(),
            lost: false,
            group: None,
        }
    }

    /// Converts a client error, remembering when it means the session is gone.
    fn check<T>(&mut self, result: Result<T, tokio_postgres::Error>) -> Result<T, StoreError> {
        result.map_err(|e| {
            if super::session_lost(&e) {
                self.lost = true;
            }
            e.into()
        })
    }

    /// Applies the migrations not yet recorded in `schema_migrations`, each in its own
    /// transaction, one instance at a time (an advisory lock serialises instances that start
    /// together).
    pub fn migrate(&mut self, migrations: &[(i64, &str)]) -> Result<(), StoreError> {
        self.execute_batch(
            "SELECT pg_advisory_lock(7305521984);
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             );",
        )?;
        let result = (|| {
            for (version, sql) in migrations {
                self.execute_batch("BEGIN")?;
                let applied = self
                    .query_opt(
                        "SELECT 1 FROM schema_migrations WHERE version = $1",
                        &[version],
                    )
                    .map(|row| row.is_some())
                    .and_then(|applied| {
                        if !applied {
                            self.execute_batch(sql)?;
                            self.execute(
                                "INSERT INTO schema_migrations (version, applied_at)
                                 VALUES ($1, $2)",
                                &[version, &Timestamp::now().ticks()],
                            )?;
                        }
                        self.execute_batch("COMMIT")
                    });
                if let Err(e) = applied {
                    let _ = self.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
            Ok(())
        })();
        let unlocked = self.execute_batch("SELECT pg_advisory_unlock(7305521984)");
        result.and(unlocked)
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let prepared = self.runtime.block_on(self.client.prepare(sql));
        let statement = self.check(prepared)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.runtime.block_on(self.client.query(&statement, params));
        self.check(result)
    }

    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let result = self
            .runtime
            .block_on(self.client.query_opt(&statement, params));
        self.check(result)
    }

    fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        let statement = self.statement(sql)?;
        let result = self
            .runtime
            .block_on(self.client.query_one(&statement, params));
        self.check(result)
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let result = self
            .runtime
            .block_on(self.client.execute(&statement, params));
        self.check(result)
    }

    fn rows(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<JobDispatchLog>, StoreError> {
        self.query(sql, params)?.iter().map(row_of).collect()
    }

    /// The current assignees of several jobs at once, in the order of [`Conn::assignees`].
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

    /// Sends the group's pending writes: those of the jobs already ended as they are, those of
    /// the running job inside a savepoint of its own, so that the job can still be undone alone.
    fn settle(&mut self) -> Result<(), StoreError> {
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        if !group.has_pending() {
            return Ok(());
        }
        let open_savepoint = group.needs_job_savepoint();
        let (ended, running) = group.take_pending();
        self.send(&ended)?;
        if !running.is_empty() {
            if open_savepoint {
                self.open_job_savepoint()?;
            }
            self.send(&running)?;
        }
        Ok(())
    }

    /// Settles, then makes sure the running job has a savepoint: for a statement that writes
    /// straight to the database.
    fn settle_for_write(&mut self) -> Result<(), StoreError> {
        self.settle()?;
        if self.group.as_ref().is_some_and(Group::needs_job_savepoint) {
            self.open_job_savepoint()?;
        }
        Ok(())
    }

    fn open_job_savepoint(&mut self) -> Result<(), StoreError> {
        let result = self
            .runtime
            .block_on(self.client.batch_execute("SAVEPOINT job"));
        self.check(result)?;
        if let Some(group) = self.group.as_mut() {
            group.job_savepoint_open();
        }
        Ok(())
    }

    /// Settles when the server's answer about this job would miss a pending write.
    fn settle_for_job(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<(), StoreError> {
        if self
            .group
            .as_ref()
            .is_some_and(|g| g.job_dirty(tenant, jobs_id))
        {
            self.settle()?;
        }
        Ok(())
    }

    /// Sends writes (when there are any) and nothing else, in one round trip.
    fn send(&mut self, writes: &[Pending]) -> Result<(), StoreError> {
        self.exchange(writes, None, None, None).0
    }

    /// One round trip to the server, which runs what it is sent in order:
    /// - `writes`: every row upsert and history entry in one statement (a row written twice is
    ///   written once, in its last state), then the reassignments in order;
    /// - `commit`: the tenants' new last stamps, then `COMMIT`;
    /// - `open`: `BEGIN`, the tenants' locks (in id order, as every instance takes them) and
    ///   the loading of the rows the next group's jobs will read; the new group is kept.
    ///
    /// Answers the outcome of the writes and commit — the first error: after a failed statement
    /// the rest of the transaction fails too — and, when `open` is given, the tenants' last
    /// stamps.
    fn exchange(
        &mut self,
        writes: &[Pending],
        commit: Option<&[(TenantId, Timestamp)]>,
        open: Option<&[(TenantId, Prefetch)]>,
        committed: Option<&mut dyn FnMut(Result<(), String>)>,
    ) -> (Result<(), StoreError>, Option<Opened>) {
        let prepared = self.exchange_statements(writes, commit, open.is_some());
        let (flush, reassign, stamp, lock) = match prepared {
            Ok(statements) => statements,
            Err(e) => {
                let opened = open.map(|_| Err(StoreError::Internal(anyhow::anyhow!("{e}"))));
                return (Err(e), opened);
            }
        };
        let mut last_write: HashMap<(TenantId, Uuid), usize> = HashMap::new();
        for (i, write) in writes.iter().enumerate() {
            if let Pending::Upsert(tenant, row) = write {
                last_write.insert((*tenant, row.id), i);
            }
        }
        let mut r = RowColumns::default();
        let mut h = HistoryColumns::default();
        let mut exits = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            match write {
                Pending::Upsert(tenant, row) if last_write.get(&(*tenant, row.id)) == Some(&i) => {
                    r.push(*tenant, row)
                }
                Pending::Upsert(..) => {}
                Pending::History(e) => h.push(e),
                Pending::Reassignment {
                    tenant,
                    id,
                    from,
                    to,
                    stamp,
                } => exits.push((*tenant, *id, *from, *to, stamp.ticks())),
            }
        }
        let flush_params: [&(dyn ToSql + Sync); 20] = [
            &r.tenant,
            &r.id,
            &r.jobs_id,
            &r.user_id,
            &r.date_create,
            &r.date_proceeded,
            &r.is_accepted,
            &r.is_rejected,
            &r.rejected_reason,
            &r.sys_logical_delete,
            &r.is_workshop,
            &r.modified_dateutc,
            &r.sequence,
            &h.tenant,
            &h.id,
            &h.at,
            &h.client_at,
            &h.actor,
            &h.action,
            &h.changes,
        ];
        let tenant_ids: Vec<TenantId> = open
            .unwrap_or_default()
            .iter()
            .map(|(tenant, _)| *tenant)
            .collect();
        let client = &self.client;
        let mut requests: Vec<Request<'_>> = Vec::new();
        if let Some(flush) = &flush {
            requests.push(Box::pin(async move {
                client
                    .execute(flush, &flush_params)
                    .await
                    .map(|_| Vec::new())
            }));
        }
        if let Some((add, remove)) = &reassign {
            for (tenant, id, from, to, stamp) in &exits {
                requests.push(Box::pin(async move {
                    client
                        .execute(add, &[tenant, from, id, stamp])
                        .await
                        .map(|_| Vec::new())
                }));
                requests.push(Box::pin(async move {
                    client
                        .execute(remove, &[tenant, to, id])
                        .await
                        .map(|_| Vec::new())
                }));
            }
        }
        if let Some(stamps) = commit {
            let stamps: Vec<(TenantId, i64)> =
                stamps.iter().map(|(t, s)| (*t, s.ticks())).collect();
            if let Some(stamp) = &stamp {
                for (tenant, ticks) in stamps {
                    requests.push(Box::pin(async move {
                        client
                            .execute(stamp, &[&tenant, &ticks])
                            .await
                            .map(|_| Vec::new())
                    }));
                }
            }
            // The stamps' UPDATE fails in a failed transaction, where a bare COMMIT would
            // quietly roll back; without stamps, SELECT 1 does.
            let end = if commit.is_some_and(|s| s.is_empty()) {
                "SELECT 1; COMMIT"
            } else {
                "COMMIT"
            };
            requests.push(Box::pin(async move {
                client.batch_execute(end).await.map(|()| Vec::new())
            }));
        }
        let written = requests.len();
        if let (Some(open), Some((lock, prefetch))) = (open, &lock) {
            let ids = &tenant_ids;
            requests.push(Box::pin(async move {
                client.batch_execute("BEGIN").await.map(|()| Vec::new())
            }));
            requests.push(Box::pin(async move { client.query(lock, &[ids]).await }));
            for (tenant, rows) in open {
                requests.push(Box::pin(async move {
                    client
                        .query(prefetch, &[tenant, &rows.ids, &rows.jobs])
                        .await
                }));
            }
        }
        let first = match committed {
            Some(tell) if commit.is_some() => Some((written, tell)),
            _ => None,
        };
        let mut answers = pipeline(&self.runtime, requests, first).into_iter();
        let outcome: Result<(), tokio_postgres::Error> = answers
            .by_ref()
            .take(written)
            .try_fold((), |(), answer| answer.map(|_| ()));
        let outcome = self.check(outcome);
        let opened = open.map(|open| {
            let answers: Result<Vec<Vec<Row>>, _> = answers.collect();
            let answers = self.check(answers)?;
            self.open_group(open, answers)
        });
        (outcome, opened)
    }

    /// The prepared statements an exchange needs: the flush, the scope exit pair, the stamp
    /// update, the lock and the prefetch.
    #[allow(clippy::type_complexity)]
    fn exchange_statements(
        &mut self,
        writes: &[Pending],
        commit: Option<&[(TenantId, Timestamp)]>,
        open: bool,
    ) -> Result<
        (
            Option<Statement>,
            Option<(Statement, Statement)>,
            Option<Statement>,
            Option<(Statement, Statement)>,
        ),
        StoreError,
    > {
        let flush = if writes
            .iter()
            .any(|w| matches!(w, Pending::Upsert(..) | Pending::History(_)))
        {
            Some(self.statement(FLUSH)?)
        } else {
            None
        };
        let reassign = if writes
            .iter()
            .any(|w| matches!(w, Pending::Reassignment { .. }))
        {
            Some((
                self.statement(SCOPE_EXIT_ADD)?,
                self.statement(SCOPE_EXIT_REMOVE)?,
            ))
        } else {
            None
        };
        let stamp = if commit.is_some_and(|s| !s.is_empty()) {
            Some(self.statement("UPDATE tenant SET last_stamp = $2 WHERE id = $1")?)
        } else {
            None
        };
        let lock = if open {
            Some((
                self.statement(
                    "SELECT id, last_stamp FROM tenant WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                )?,
                self.statement(PREFETCH)?,
            ))
        } else {
            None
        };
        Ok((flush, reassign, stamp, lock))
    }

    /// Starts the group whose `BEGIN`, locks and rows came back in `answers`; answers the
    /// tenants' last stamps.
    fn open_group(
        &mut self,
        tenants: &[(TenantId, Prefetch)],
        answers: Vec<Vec<Row>>,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let mut answers = answers.into_iter().skip(1);
        let locked = answers.next().unwrap_or_default();
        let mut stamps = Vec::with_capacity(tenants.len());
        for (tenant, _) in tenants {
            let mut last = 0;
            for row in &locked {
                if row.try_get::<_, i64>(0)? == *tenant {
                    last = row.try_get(1)?;
                }
            }
            stamps.push(Timestamp::from_ticks(last));
        }
        let mut group = Group::default();
        for ((tenant, rows), found) in tenants.iter().zip(answers) {
            let found = found.iter().map(row_of).collect::<Result<Vec<_>, _>>()?;
            group.load(*tenant, &rows.ids, &rows.jobs, found);
        }
        self.group = Some(group);
        Ok(stamps)
    }

    /// The plan the session keeps for the prefetch, as `EXPLAIN` prints it.
    #[cfg(test)]
    pub(super) fn prefetch_plan(&mut self, tenant: TenantId) -> Result<String, StoreError> {
        self.execute_batch(&format!(
            "PREPARE prefetch_plan(int8, uuid[], uuid[]) AS {PREFETCH}"
        ))?;
        let sql = format!(
            "EXPLAIN EXECUTE prefetch_plan({tenant}, ARRAY[gen_random_uuid()], \
             ARRAY[gen_random_uuid()])"
        );
        let messages = self.runtime.block_on(self.client.simple_query(&sql));
        let lines: Vec<String> = self
            .check(messages)?
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                _ => None,
            })
            .collect();
        Ok(lines.join("\n"))
    }

    /// Purge's statements: the tenants' horizons raised, then the rows, their history and
    /// the scope exits older than `cutoff` removed.
    fn purge_scans(&mut self, cutoff: i64) -> Result<u64, StoreError> {
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

    /// Takes every pending write of the group (outside any job, all belong to ended jobs).
    fn take_all_pending(&mut self) -> Vec<Pending> {
        match self.group.as_mut() {
            Some(group) => {
                let (mut ended, running) = group.take_pending();
                ended.extend(running);
                ended
            }
            None => Vec::new(),
        }
    }
}

/// Rows to upsert, as one array per column.
#[derive(Default)]
struct RowColumns<'a> {
    tenant: Vec<i64>,
    id: Vec<Uuid>,
    jobs_id: Vec<Uuid>,
    user_id: Vec<Uuid>,
    date_create: Vec<i64>,
    date_proceeded: Vec<i64>,
    is_accepted: Vec<bool>,
    is_rejected: Vec<bool>,
    rejected_reason: Vec<&'a str>,
    sys_logical_delete: Vec<bool>,
    is_workshop: Vec<bool>,
    modified_dateutc: Vec<i64>,
    sequence: Vec<i32>,
}

impl<'a> RowColumns<'a> {
    fn push(&mut self, tenant: TenantId, row: &'a JobDispatchLog) {
        self.tenant.push(tenant);
        self.id.push(row.id);
        self.jobs_id.push(row.jobs_id);
        self.user_id.push(row.user_id);
        self.date_create.push(row.date_create.ticks());
        self.date_proceeded.push(row.date_proceeded.ticks());
        self.is_accepted.push(row.is_accepted);
        self.is_rejected.push(row.is_rejected);
        self.rejected_reason.push(&row.rejected_reason);
        self.sys_logical_delete.push(row.sys_logical_delete);
        self.is_workshop.push(row.is_workshop);
        self.modified_dateutc.push(row.modified_dateutc.ticks());
        self.sequence.push(row.sequence);
    }
}

/// History entries to insert, as one array per column.
#[derive(Default)]
struct HistoryColumns<'a> {
    tenant: Vec<i64>,
    id: Vec<Uuid>,
    at: Vec<i64>,
    client_at: Vec<i64>,
    actor: Vec<&'a str>,
    action: Vec<&'a str>,
    changes: Vec<&'a str>,
}

impl<'a> HistoryColumns<'a> {
    fn push(&mut self, e: &'a PendingHistory) {
        self.tenant.push(e.tenant);
        self.id.push(e.id);
        self.at.push(e.at.ticks());
        self.client_at
            .push(e.client_at.map(Timestamp::ticks).unwrap_or(0));
        self.actor.push(&e.actor);
        self.action.push(&e.action);
        self.changes.push(&e.changes);
    }
}

impl Conn for PgConn {
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

    fn select_row(
        &mut self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<JobDispatchLog>, StoreError> {
        if let Some(known) = self.group.as_ref().and_then(|g| g.row(tenant, id)) {
            return Ok(known);
        }
        let sql =
            format!("SELECT {COLUMNS} FROM job_dispatch_log WHERE tenant_id = $1 AND id = $2");
        self.query_opt(&sql, &[&tenant, &id])?
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

    /// PostgreSQL keeps no `job_assignees` table: each job's text is derived from its rows
    /// when read ([`Conn::job_assignees`]), which spares every Save one more row to write on
    /// the writer's single connection.
    fn store_job_assignees(
        &mut self,
        _tenant: TenantId,
        _jobs_id: Uuid,
        _user_ids: &str,
    ) -> Result<(), StoreError> {
        Ok(())
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
        self.settle()?;
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
        self.settle()?;
        let limit = limit as i64;
        let mut rows = match user {
            Some(user) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM job_dispatch_log
                     WHERE tenant_id = $1 AND user_id = $2 AND modified_dateutc > $3
                     ORDER BY modified_dateutc LIMIT $4"
                );
                self.rows(&sql, &[&tenant, &user, &after, &limit])
            }
            None => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM job_dispatch_log
                     WHERE tenant_id = $1 AND modified_dateutc > $2
                     ORDER BY modified_dateutc LIMIT $3"
                );
                self.rows(&sql, &[&tenant, &after, &limit])
            }
        }?;
        let mut jobs: Vec<Uuid> = rows.iter().map(|r| r.jobs_id).collect();
        jobs.sort_unstable();
        jobs.dedup();
        let texts = self.job_assignees(tenant, &jobs)?;
        for row in &mut rows {
            if let Some(text) = texts.get(&row.jobs_id) {
                row.assigned_user_ids.clone_from(text);
            }
        }
        Ok(rows)
    }

    fn scope_exits(
        &mut self,
        tenant: TenantId,
        user: Uuid,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        self.settle()?;
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
        self.settle()?;
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
        let found = self
            .runtime
            .block_on(self.client.query(sql.as_str(), &refs));
        let rows = self
            .check(found)?
            .iter()
            .map(row_of)
            .collect::<Result<Vec<_>, _>>()?;
        let count = if query.count {
            let sql = format!("SELECT COUNT(*) FROM job_dispatch_log WHERE {condition}");
            let counted = self
                .runtime
                .block_on(self.client.query_one(sql.as_str(), &refs));
            let row = self.check(counted)?;
            Some(row.try_get::<_, i64>(0)? as u64)
        } else {
            None
        };
        Ok((rows, count))
    }

    fn purge(&mut self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.settle_for_write()?;
        if let Some(group) = self.group.as_mut() {
            group.forget_rows();
        }
        let cutoff = cutoff.ticks();
        // Purge scans the tables: let the planner choose scans for it (the writer's session
        // turns them off, see WRITER_SESSION), until the end of its job.
        // A purge that fails is undone with its job, scans setting included; its own error is
        // the one to report.
        self.execute_batch("SET LOCAL enable_seqscan = on")?;
        let purged = self.purge_scans(cutoff);
        let restored = self.execute_batch("SET LOCAL enable_seqscan = off");
        let rows = purged?;
        restored?;
        Ok(rows)
    }

    fn tenant_counts(&mut self) -> Result<Vec<(String, u64, u64)>, StoreError> {
        self.settle()?;
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
            "UPDATE app_user SET password_hash = $3
             WHERE lower(username) = lower($2)
               AND tenant_id = (SELECT id FROM tenant WHERE lower(domain) = lower($1))",
            &[&domain, &username, &hash],
        )?;
        Ok(n == 1)
    }

    fn remove_user(&mut self, domain: &str, username: &str) -> Result<bool, StoreError> {
        self.settle_for_write()?;
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
        self.settle_for_write()?;
        let n = self.execute(
            "INSERT INTO api_token (user_pk, token_hash, created_at)
             SELECT u.id, $3, $4 FROM app_user u JOIN tenant t ON t.id = u.tenant_id
             WHERE lower(t.domain) = lower($1) AND lower(u.username) = lower($2)",
            &[&domain, &username, &token_hash, &Timestamp::now().ticks()],
        )?;
        Ok(n == 1)
    }

    fn revoke_tokens(&mut self, domain: &str, username: &str) -> Result<u64, StoreError> {
        self.settle_for_write()?;
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
