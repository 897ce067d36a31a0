//! What the shared operations need from a database connection. SQLite and PostgreSQL each
//! implement it once, with their own SQL; everything above it is engine-independent.

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::query::ListQuery;
use crate::store::{LoginRecord, NewUser, StoreError, TenantId};

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

/// A blocking connection to the database. Methods run inside whatever transaction the caller
/// has opened with [`Conn::execute_batch`].
pub trait Conn: Send + 'static {
    /// Runs statements without results (`BEGIN`, `SAVEPOINT job`, `COMMIT`, …).
    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError>;

    /// Opens a write transaction (taking the database's write lock where it has one).
    fn begin_write(&mut self) -> Result<(), StoreError>;

    /// Opens a read-only transaction whose queries all see one snapshot.
    fn begin_read(&mut self) -> Result<(), StoreError>;

    /// True when the connection is unusable and must be replaced.
    fn is_broken(&self) -> bool;

    /// The tenant's last stamp, locking the tenant against other writers until commit.
    fn lock_tenant_stamp(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError>;
    fn store_tenant_stamp(&mut self, tenant: TenantId, stamp: Timestamp) -> Result<(), StoreError>;

    fn select_row(
        &mut self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<JobDispatchLog>, StoreError>;
    /// One more than the highest sequence of the job (1 for a new job).
    fn next_sequence(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<i32, StoreError>;
    /// The job's current assignees in order (not deleted, not rejected; by sequence, user_id),
    /// read from its rows: what the writer recomputes `job_assignees` from.
    fn assignees(&mut self, tenant: TenantId, jobs_id: Uuid) -> Result<Vec<Uuid>, StoreError>;
    /// Stores the job's `assigned_user_ids` text in `job_assignees`; an empty text removes the
    /// job's entry (a job without current assignees has none).
    fn store_job_assignees(
        &mut self,
        tenant: TenantId,
        jobs_id: Uuid,
        user_ids: &str,
    ) -> Result<(), StoreError>;
    /// The stored `assigned_user_ids` text of each of these jobs that has current assignees
    /// (the others are absent).
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

    /// The newest stamp any purge of the tenant forgot.
    fn purged_through(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError>;
    /// Rows (of one user, when given) stamped after `after`, oldest first, at most `limit`,
    /// with their `assigned_user_ids` (from `job_assignees`, in the same statement).
    fn changed_rows(
        &mut self,
        tenant: TenantId,
        user: Option<Uuid>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<JobDispatchLog>, StoreError>;
    /// Rows reassigned away from `user` after `after`: (id, stamp), oldest first.
    fn scope_exits(
        &mut self,
        tenant: TenantId,
        user: Uuid,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Uuid, i64)>, StoreError>;
    /// Up to `limit` rows (of one user, when given) matching the query, after its `$skip`,
    /// and the number of all matching rows when `$count` asks for it.
    fn list(
        &mut self,
        tenant: TenantId,
        user: Option<Uuid>,
        query: &ListQuery,
        limit: usize,
    ) -> Result<(Vec<JobDispatchLog>, Option<u64>), StoreError>;
    /// Removes rows logically deleted before `cutoff` (raising each tenant's horizon).
    fn purge(&mut self, cutoff: Timestamp) -> Result<u64, StoreError>;

    /// Per tenant: its domain, its rows, and how many of them are tombstones.
    fn tenant_counts(&mut self) -> Result<Vec<(String, u64, u64)>, StoreError>;

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
}
