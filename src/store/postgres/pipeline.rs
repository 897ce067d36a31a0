//! The group protocol of the PostgreSQL writer, built around round trips, which cost far more
//! than the work of a Save. A group's writes are kept in a [`Group`] (see `group.rs`) and sent
//! together before the commit, and the statements that open and end a group are pipelined
//! ([`pipeline`]): a group of many Saves costs two round trips. See docs/ARCHITECTURE.md.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

use super::client::row_of;
use super::columns::{HistoryColumns, RowColumns};
use super::group::{Group, Pending};
use super::PgConn;
use crate::domain::Timestamp;
use crate::store::shared::conn::Prefetch;
use crate::store::shared::sql::{self, row_columns, upsert_set};
use crate::store::{StoreError, TenantId};

/// The rows a group's jobs are about to read: every row of the jobs named, and of the jobs of
/// the rows named ($1 tenant, $2 row ids, $3 job ids). Prepared once and run with one plan
/// ([`WRITER_SESSION`]); its shape keeps that plan a loop of index lookups, one per key, whatever the table's size: the lateral
/// subquery (fenced by `OFFSET 0`) is looked up once per job, never joined as a whole table.
const PREFETCH: &str = concat!(
    "SELECT ",
    row_columns!("r."),
    "
     FROM (SELECT unnest($3::uuid[]) AS jobs_id
           UNION
           SELECT (SELECT x.jobs_id FROM job_dispatch_log x
                   WHERE x.tenant_id = $1 AND x.id = k.id)
           FROM unnest($2::uuid[]) AS k(id)) j
     CROSS JOIN LATERAL (
         SELECT * FROM job_dispatch_log r
         WHERE r.tenant_id = $1 AND r.jobs_id = j.jobs_id ORDER BY r.sequence OFFSET 0) r"
);

/// The writer's session: every statement it runs is a lookup by key, so each is planned once
/// (a plan made for one execution's arrays would cost more to make than to run), and never as
/// a sequential scan — a plan made while a table is small must stay right as it grows
/// between two statistics updates. Purge, the one statement that scans, turns scans back on
/// for itself.
pub(super) const WRITER_SESSION: &str =
    "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off";

/// Row upserts and history entries, one array per column. A new row takes its job's
/// `assigned_user_ids` as the group left it ($14); an existing row keeps its text, which
/// [`JOB_TEXTS`] sets where its job's changed.
const FLUSH: &str = concat!(
    "WITH upserted AS (
         INSERT INTO job_dispatch_log (tenant_id, ",
    row_columns!(""),
    ", assigned_user_ids)
         SELECT * FROM unnest($1::int8[], $2::uuid[], $3::uuid[], $4::uuid[],
             $5::int8[], $6::int8[], $7::bool[], $8::bool[], $9::text[], $10::bool[],
             $11::bool[], $12::int8[], $13::int4[], $14::text[])
         ON CONFLICT (tenant_id, id) DO UPDATE SET ",
    upsert_set!(),
    ")
     INSERT INTO job_dispatch_log_history (tenant_id, id, at, client_at, actor, action, changes)
     SELECT t, i, a, c, w, x, ch
     FROM unnest($15::int8[], $16::uuid[], $17::int8[], $18::int8[], $19::text[],
         $20::text[], $21::text[]) WITH ORDINALITY AS h(t, i, a, c, w, x, ch, n)
     ORDER BY n"
);

/// Jobs' new `assigned_user_ids` ($1 tenants, $2 jobs, $3 texts), on every row of each job
/// that does not hold it yet: after [`FLUSH`], so rows the group inserted already do.
const JOB_TEXTS: &str = "UPDATE job_dispatch_log j SET assigned_user_ids = u.text
     FROM unnest($1::int8[], $2::uuid[], $3::text[]) AS u(tenant_id, jobs_id, text)
     WHERE j.tenant_id = u.tenant_id AND j.jobs_id = u.jobs_id
       AND j.assigned_user_ids <> u.text";

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

/// The prepared statements an exchange needs, each only when it has something to send.
struct ExchangeStatements {
    /// Every row upsert and history entry, in one statement.
    flush: Option<Statement>,
    /// Every job's new `assigned_user_ids`, in one statement.
    job_texts: Option<Statement>,
    /// The scope exit added for the technician a row left, and removed for the one it reached.
    reassign: Option<(Statement, Statement)>,
    /// A tenant's new last stamp.
    stamp: Option<Statement>,
    /// The tenants' locks, and the loading of the rows the group's jobs will read.
    open: Option<(Statement, Statement)>,
}

impl PgConn {
    /// Sends the group's pending writes: those of the jobs already ended as they are, those of
    /// the running job inside a savepoint of its own, so that the job can still be undone alone.
    pub(super) fn settle(&mut self) -> Result<(), StoreError> {
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
    pub(super) fn settle_for_write(&mut self) -> Result<(), StoreError> {
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
    pub(super) fn settle_for_job(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
    ) -> Result<(), StoreError> {
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
    pub(super) fn send(&mut self, writes: &[Pending]) -> Result<(), StoreError> {
        self.exchange(writes, None, None, None).0
    }

    /// One round trip to the server, which runs what it is sent in order:
    /// - `writes`: every row upsert and history entry in one statement (a row written twice is
    ///   written once, in its last state), then the jobs' new texts in one statement, then the
    ///   reassignments in order;
    /// - `commit`: the tenants' new last stamps, then `COMMIT`;
    /// - `open`: `BEGIN`, the tenants' locks (in id order, as every instance takes them) and
    ///   the loading of the rows the next group's jobs will read; the new group is kept.
    ///
    /// Answers the outcome of the writes and commit — the first error: after a failed statement
    /// the rest of the transaction fails too — and, when `open` is given, the tenants' last
    /// stamps.
    pub(super) fn exchange(
        &mut self,
        writes: &[Pending],
        commit: Option<&[(TenantId, Timestamp)]>,
        open: Option<&[(TenantId, Prefetch)]>,
        committed: Option<&mut dyn FnMut(Result<(), String>)>,
    ) -> (Result<(), StoreError>, Option<Opened>) {
        let prepared = self.exchange_statements(writes, commit, open.is_some());
        let ExchangeStatements {
            flush,
            job_texts,
            reassign,
            stamp,
            open: lock,
        } = match prepared {
            Ok(statements) => statements,
            Err(e) => {
                let opened = open.map(|_| Err(StoreError::Internal(anyhow::anyhow!("{e}"))));
                return (Err(e), opened);
            }
        };
        let mut last_write: HashMap<(TenantId, Uuid), usize> = HashMap::new();
        // Each job's last text; a job changed twice in these writes is written once.
        let mut texts: HashMap<(TenantId, Uuid), &str> = HashMap::new();
        for (i, write) in writes.iter().enumerate() {
            match write {
                Pending::Upsert(tenant, row) => {
                    last_write.insert((*tenant, row.id), i);
                }
                Pending::JobText {
                    tenant,
                    jobs_id,
                    text,
                } => {
                    texts.insert((*tenant, *jobs_id), text);
                }
                _ => {}
            }
        }
        let mut r = RowColumns::default();
        let mut h = HistoryColumns::default();
        let mut exits = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            match write {
                Pending::Upsert(tenant, row) if last_write.get(&(*tenant, row.id)) == Some(&i) => {
                    // Every new row's job has a text in the same writes or a later send (the
                    // writer recomputes it after the upsert); JOB_TEXTS corrects the latter.
                    let text = texts.get(&(*tenant, row.jobs_id)).copied().unwrap_or("");
                    r.push(*tenant, row, text)
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
                Pending::JobText { .. } => {}
            }
        }
        let (mut text_tenants, mut text_jobs, mut text_values) =
            (Vec::new(), Vec::new(), Vec::new());
        for ((tenant, job), text) in &texts {
            text_tenants.push(*tenant);
            text_jobs.push(*job);
            text_values.push(*text);
        }
        let flush_params: [&(dyn ToSql + Sync); 21] = [
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
            &r.assigned_user_ids,
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
        if let Some(job_texts) = &job_texts {
            let params: [&(dyn ToSql + Sync); 3] = [&text_tenants, &text_jobs, &text_values];
            requests.push(Box::pin(async move {
                client.execute(job_texts, &params).await.map(|_| Vec::new())
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
            // Other instances' streams hear of the commit through this notification, which
            // the server delivers only once the transaction commits (the feed stays the truth:
            // a listener that missed it reads from its cursor after reconnecting).
            let mut notified: Vec<TenantId> = stamps_tenants(commit);
            notified.dedup();
            for tenant in notified {
                requests.push(Box::pin(async move {
                    client
                        .batch_execute(&format!("NOTIFY {COMMIT_CHANNEL}, '{tenant}'"))
                        .await
                        .map(|()| Vec::new())
                }));
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

    /// The prepared statements an exchange needs: the flush, the jobs' texts, the scope exit
    /// pair, the stamp update, the lock and the prefetch.
    fn exchange_statements(
        &mut self,
        writes: &[Pending],
        commit: Option<&[(TenantId, Timestamp)]>,
        open: bool,
    ) -> Result<ExchangeStatements, StoreError> {
        let flush = if writes
            .iter()
            .any(|w| matches!(w, Pending::Upsert(..) | Pending::History(_)))
        {
            Some(self.statement(FLUSH)?)
        } else {
            None
        };
        let job_texts = if writes.iter().any(|w| matches!(w, Pending::JobText { .. })) {
            Some(self.statement(JOB_TEXTS)?)
        } else {
            None
        };
        let reassign = if writes
            .iter()
            .any(|w| matches!(w, Pending::Reassignment { .. }))
        {
            Some((
                self.statement(sql::SCOPE_EXIT_ADD)?,
                self.statement(sql::SCOPE_EXIT_REMOVE)?,
            ))
        } else {
            None
        };
        let stamp = if commit.is_some_and(|s| !s.is_empty()) {
            Some(self.statement(sql::STORE_TENANT_STAMP)?)
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
        Ok(ExchangeStatements {
            flush,
            job_texts,
            reassign,
            stamp,
            open: lock,
        })
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
        use crate::store::shared::conn::GroupConn;
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

    /// Takes every pending write of the group (outside any job, all belong to ended jobs).
    pub(super) fn take_all_pending(&mut self) -> Vec<Pending> {
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

/// The channel on which every commit names its tenants (`NOTIFY dispatchlog_commits, '17'`).
pub const COMMIT_CHANNEL: &str = "dispatchlog_commits";

fn stamps_tenants(commit: Option<&[(TenantId, Timestamp)]>) -> Vec<TenantId> {
    commit.unwrap_or_default().iter().map(|(t, _)| *t).collect()
}
