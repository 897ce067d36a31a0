//! What the shared operations need from a database connection, in three traits by job:
//! transactions and the writer's group protocol ([`GroupConn`]), rows ([`RowConn`]), users and
//! tokens ([`AccountConn`]). SQLite and PostgreSQL each implement them once, with the SQL they
//! share (`sql.rs`) and their own; everything above them is engine-independent.

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::query::ListQuery;
use crate::store::{LoginRecord, NewUser, StoreError, TenantFigures, TenantId};

/// One history entry to record.
pub struct NewHistory<'a> {
    pub tenant: TenantId,
    pub id: Uuid,
    pub at: Timestamp,
    pub client_at: Option<Timestamp>,
    pub actor: &'a str,
    pub action: &'a str,
    /// JSON: field → [before, after].
    pub changes: &'a str,
}

/// The rows a write job is about to read: its row ids, and jobs whose rows it reads (the jobs
/// of the rows named by `ids` are implied). An engine with costly round trips loads them for
/// the whole group at once; a hint that misses a row only costs a query.
#[derive(Debug, Default, Clone)]
pub struct Prefetch {
    pub ids: Vec<Uuid>,
    pub jobs: Vec<Uuid>,
}

/// A blocking connection to the database: transactions and the writer's group protocol
/// ([`GroupConn`]), the operations on dispatch rows ([`RowConn`]) and on users and tokens
/// ([`AccountConn`]). Each engine implements the three; everything above is written once.
pub trait Conn: GroupConn + RowConn + AccountConn {}

impl<C: GroupConn + RowConn + AccountConn> Conn for C {}

/// Transactions, and the protocol by which the writer runs a group of jobs in one.
///
/// The writer drives a group through [`GroupConn::begin_group`], one
/// [`GroupConn::job_begin`]/[`GroupConn::job_end`] pair per job, and
/// [`GroupConn::commit_group`] (or [`GroupConn::rollback_group`]), or
/// [`GroupConn::commit_then_begin`] when the next group is waiting. The provided methods do
/// this with plain statements and a savepoint per job; an engine may instead keep the group's
/// writes and send them together, as long as every [`RowConn`] method answers as if each write
/// had been executed at once.
pub trait GroupConn: Send + 'static {
    /// Runs statements without results (`BEGIN`, `SAVEPOINT job`, `COMMIT`, …).
    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError>;

    /// Opens a write transaction (taking the database's write lock where it has one).
    fn begin_write(&mut self) -> Result<(), StoreError>;

    /// Opens a read-only transaction whose queries all see one snapshot.
    fn begin_read(&mut self) -> Result<(), StoreError>;

    /// True when the connection is unusable and must be replaced.
    fn is_broken(&self) -> bool;

    /// Runs on the writer's connection after a group was committed and answered, before the
    /// next one begins: upkeep that must not run while a write is in progress (SQLite bounds
    /// its WAL here).
    fn between_groups(&mut self) {}

    /// Opens a write group's transaction and locks the tenants' stamps, in the order given;
    /// answers each tenant's last stamp. With each tenant come the rows the group's jobs are
    /// about to read, which an engine may load now.
    fn begin_group(
        &mut self,
        tenants: &[(TenantId, Prefetch)],
    ) -> Result<Vec<Timestamp>, StoreError> {
        self.begin_write()?;
        tenants
            .iter()
            .map(|(tenant, _)| self.lock_tenant_stamp(*tenant))
            .collect()
    }

    /// Starts one job of the group: what it writes can be undone alone by `job_end(false)`.
    fn job_begin(&mut self) -> Result<(), StoreError> {
        self.execute_batch("SAVEPOINT job")
    }

    /// Ends the job started last, keeping its writes or undoing them.
    fn job_end(&mut self, keep: bool) -> Result<(), StoreError> {
        self.execute_batch(if keep {
            "RELEASE SAVEPOINT job"
        } else {
            "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job"
        })
    }

    /// Stores the tenants' new last stamps and commits the group.
    fn commit_group(&mut self, stamps: &[(TenantId, Timestamp)]) -> Result<(), StoreError> {
        for (tenant, stamp) in stamps {
            self.store_tenant_stamp(*tenant, *stamp)?;
        }
        self.execute_batch("COMMIT")
    }

    /// True when [`GroupConn::commit_then_begin`] saves a round trip, so that the writer forms the
    /// next group before committing the current one.
    fn pipelines_groups(&self) -> bool {
        false
    }

    /// Commits the group like [`GroupConn::commit_group`], then begins the next one like
    /// [`GroupConn::begin_group`]; an engine may send both together. The next group is begun even
    /// when the commit failed. `committed` is told the commit's outcome as soon as it is known
    /// (an engine that sends both together knows it before the next group has its locks, which
    /// may mean waiting for another instance's group), and at most once.
    fn commit_then_begin(
        &mut self,
        stamps: &[(TenantId, Timestamp)],
        next: &[(TenantId, Prefetch)],
        committed: &mut dyn FnMut(Result<(), String>),
    ) -> (Result<(), StoreError>, Result<Vec<Timestamp>, StoreError>) {
        let outcome = self.commit_group(stamps);
        if outcome.is_err() {
            self.rollback_group();
        }
        committed(outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
        (outcome, self.begin_group(next))
    }

    /// Abandons the group's transaction.
    fn rollback_group(&mut self) {
        let _ = self.execute_batch("ROLLBACK");
    }

    /// The tenant's last stamp, locking the tenant against other writers until commit.
    fn lock_tenant_stamp(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError>;
    fn store_tenant_stamp(&mut self, tenant: TenantId, stamp: Timestamp) -> Result<(), StoreError>;
}

/// The dispatch rows, their history and scope exits, and the tenants' horizons. Methods run
/// inside whatever transaction the caller has opened ([`GroupConn`]).
/// What one step of a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeStep {
    /// Rows removed.
    pub rows: u64,
    /// Nothing older than the cutoff is left to remove.
    pub done: bool,
}

pub trait RowConn {
    fn select_row(
        &mut self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<JobDispatchLog>, StoreError>;
    /// The highest sequence of the job (0 for a new job).
    fn max_sequence(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<i64, StoreError>;
    /// The job's current assignees in order (not deleted, not rejected; by sequence, user_id),
    /// read from its rows: what the writer recomputes the stored texts from.
    fn assignees(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<Vec<Uuid>, StoreError>;
    /// Stores the job's `assigned_user_ids` text on every row of the job (an empty text when
    /// it has no current assignee).
    fn store_job_assignees(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
        user_ids: &str,
    ) -> Result<(), StoreError>;
    /// The `assigned_user_ids` text of each of these jobs that has current assignees (the
    /// others are absent): stored on SQLite; on PostgreSQL derived from the rows, which its
    /// writer knows within a group before they are sent.
    fn job_assignees(
        &mut self,
        tenant: TenantId,
        jobs: &[Uuid],
    ) -> Result<HashMap<Uuid, String>, StoreError>;
    fn upsert(&mut self, tenant: TenantId, row: &JobDispatchLog) -> Result<(), StoreError>;
    /// All rows of a job by sequence, then user_id.
    fn job_rows(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
    ) -> Result<Vec<JobDispatchLog>, StoreError>;

    /// Was the row ever reassigned away from this technician?
    fn formerly_assigned(
        &mut self,
        tenant: TenantId,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError>;
    /// The row moved from one technician to another at `stamp`.
    fn record_reassignment(
        &mut self,
        tenant: TenantId,
        id: Uuid,
        from: Uuid,
        to: Uuid,
        stamp: Timestamp,
    ) -> Result<(), StoreError>;
    fn insert_history(&mut self, entry: &NewHistory<'_>) -> Result<(), StoreError>;
    fn history(&mut self, tenant: TenantId, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError>;

    /// The tenant's last committed stamp (0 when it has none).
    fn tenant_last_stamp(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError>;
    /// The newest stamp any purge of the tenant forgot.
    fn purged_through(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError>;
    /// Rows (of one user, when given) stamped after `after`, oldest first, at most `limit`,
    /// with their `assigned_user_ids` (read in the same statement on SQLite).
    fn changed_rows(
        &mut self,
        tenant: TenantId,
        user: Option<Uuid>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<JobDispatchLog>, StoreError>;
    /// Rows reassigned away from any technician after `after`: (id, the technician's
    /// user_id, stamp), oldest first.
    fn tenant_scope_exits(
        &mut self,
        tenant: TenantId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, Uuid, i64)>, StoreError>;
    /// Rows reassigned away from `user` after `after`: (id, stamp), oldest first.
    fn scope_exits(
        &mut self,
        tenant: TenantId,
        user: Uuid,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, i64)>, StoreError>;
    /// Up to `limit` rows (of one user, when given) matching the query, after its `$skip`,
    /// each with its `assigned_user_ids`, and the number of all matching rows when `$count`
    /// asks for it. Without `$count` the page is one statement, so it sees one snapshot
    /// without a transaction around it.
    fn list(
        &mut self,
        tenant: TenantId,
        user: Option<Uuid>,
        query: &ListQuery,
        limit: usize,
    ) -> Result<(Vec<JobDispatchLog>, Option<u64>), StoreError>;
    /// One step of a purge: removes rows logically deleted before `cutoff` (raising each
    /// tenant's horizon), the oldest first and at most about `limit` of them.
    fn purge(&mut self, cutoff: Timestamp, limit: u64) -> Result<PurgeStep, StoreError>;

    /// Per tenant: its id, its domain, its rows, and how many of them are tombstones.
    fn tenant_counts(&mut self) -> Result<Vec<TenantFigures>, StoreError>;
}

/// Users and their bearer tokens. Domains and user names match without regard to case.
pub trait AccountConn {
    fn find_login(
        &mut self,
        domain: &str,
        username: &str,
    ) -> Result<Option<LoginRecord>, StoreError>;
    fn add_user(&mut self, user: &NewUser) -> Result<bool, StoreError>;
    fn set_password(
        &mut self,
        domain: &str,
        username: &str,
        hash: &str,
    ) -> Result<bool, StoreError>;
    fn remove_user(&mut self, domain: &str, username: &str) -> Result<bool, StoreError>;
    fn list_users(&mut self, domain: Option<&str>) -> Result<Vec<LoginRecord>, StoreError>;
    fn count_users(&mut self) -> Result<u64, StoreError>;
    fn add_token(
        &mut self,
        domain: &str,
        username: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError>;
    fn revoke_tokens(&mut self, domain: &str, username: &str) -> Result<u64, StoreError>;
    fn find_token(&mut self, token_hash: &str) -> Result<Option<LoginRecord>, StoreError>;
    /// The number that changes with every change of stored credentials
    /// ([`super::sql::CREDENTIALS_VERSION`]).
    fn credentials_version(&mut self) -> Result<i64, StoreError>;
}
