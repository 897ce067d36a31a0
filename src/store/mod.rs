//! Storage: one interface, one implementation per database engine. All SQL lives below here.
//!
//! The interface speaks in domain values and whole operations ("save these rows in one
//! transaction"), not in statements, so that each engine can order stamps and group commits in
//! its own way while giving the same guarantees (SPEC §7, §10).

pub mod postgres;
pub mod shared;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::workflow::{Decision, HistoryEntry, Refusal};
use crate::domain::{DispatchDraft, JobDispatchLog, Principal, Role, Timestamp};
use crate::query::ListQuery;

/// A tenant's key in the database.
pub type TenantId = i64;

/// Said instead of a tenant when commits may have been missed (a lost listening session):
/// every tenant's streams read from their cursors. Tenant keys start at 1.
pub const EVERY_TENANT: TenantId = 0;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database does not answer (stopped, unreachable, disk gone): 503.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: 500.
    #[error("storage error: {0}")]
    Internal(#[source] anyhow::Error),
    /// A rule refused the write (item `index` of a batch, when it is one); nothing was stored.
    #[error("refused: {refusal:?}")]
    Refused {
        index: Option<usize>,
        refusal: Refusal,
    },
    /// The database's disk is full: writes are refused (507) until space is freed; reads go on.
    #[error("{}", StoreError::DISK_FULL)]
    DiskFull,
    /// Every database connection the instance may open is in use, and none came free within
    /// the acquire timeout: 503 with `Retry-After`.
    #[error("every database connection is in use")]
    Saturated,
    /// The client's sync position is older than the purge horizon.
    #[error("the cursor is older than the purge horizon")]
    CursorPurged,
}

impl StoreError {
    /// How a full disk is reported, also when only the text of the error travels (a failed
    /// group commit is told to each of its jobs as text).
    pub const DISK_FULL: &'static str = "the database's disk is full";

    pub fn refused(refusal: Refusal) -> Self {
        StoreError::Refused {
            index: None,
            refusal,
        }
    }
}

/// One row of a Save or SaveMultiple, with the client's `If-Match` for it.
#[derive(Debug, Clone)]
pub struct SaveItem {
    pub draft: DispatchDraft,
    pub if_match: Option<String>,
}

/// A page of the changes feed (SPEC §7.2), in commit order.
#[derive(Debug, Clone, Default)]
pub struct ChangesPage {
    /// Changed rows, tombstones (logically deleted rows) included.
    pub rows: Vec<JobDispatchLog>,
    /// Rows that left the caller's scope (reassigned away from a technician), with the stamp
    /// of the change that took them away.
    pub removed: Vec<(Uuid, Timestamp)>,
    /// The stamp of the last change in the page; None when the page is empty.
    pub last: Option<Timestamp>,
    pub has_more: bool,
}

/// A page of every change of one tenant, for the live streams, which read once per tenant
/// and give each stream what its caller may see.
#[derive(Debug, Clone, Default)]
pub struct TenantChanges {
    /// Changed rows of every user, tombstones included.
    pub rows: Vec<JobDispatchLog>,
    /// Rows reassigned away from a technician: (id, that technician's user_id, stamp).
    pub exits: Vec<(Uuid, Uuid, Timestamp)>,
    /// The stamp of the last change in the page; None when the page is empty.
    pub last: Option<Timestamp>,
    pub has_more: bool,
}

/// A page of the OData list (SPEC §6).
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub rows: Vec<JobDispatchLog>,
    /// The number of rows matching the filter, when `$count=true`.
    pub count: Option<u64>,
    /// More rows follow this page.
    pub has_more: bool,
}

/// Rows of one tenant, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantFigures {
    pub tenant_id: TenantId,
    pub domain: String,
    /// Rows, tombstones included.
    pub rows: u64,
    pub tombstones: u64,
}

/// What `/metrics` reports about the store's connections (cheap: no query).
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Read connections open and idle.
    pub idle_readers: usize,
    /// Read connections open, idle or in use.
    pub open_readers: usize,
    /// Write jobs waiting for the writer.
    pub writer_queue: usize,
}

/// What a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub rows: u64,
}

/// A user as stored, with what is needed to check its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    pub login_id: i64,
    pub tenant_id: TenantId,
    pub domain: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    /// The technician's `user_id` in dispatch rows (all zeros for other roles).
    pub user_id: Uuid,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub domain: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub user_id: Uuid,
}

/// The result of saving one row.
#[derive(Debug, Clone)]
pub struct SaveOutcome {
    pub row: JobDispatchLog,
    pub inserted: bool,
}

/// The result of a logical delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    NotFound,
    Deleted,
    /// It was deleted before: nothing changed.
    AlreadyDeleted,
}

/// Users and their bearer tokens: what logins and the operator's commands need.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Stores a new bearer token (its SHA-256) for a user. False when there is no such user.
    async fn add_token(
        &self,
        domain: &str,
        username: &str,
        token_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Revokes every token of a user; the number revoked.
    async fn revoke_tokens(&self, domain: &str, username: &str) -> Result<u64, StoreError>;

    /// The user a token (by its SHA-256) belongs to.
    async fn find_token(&self, token_hash: &str) -> Result<Option<LoginRecord>, StoreError>;

    /// A number that changes whenever stored credentials change (a password set, a user
    /// removed, a token revoked), whoever changed them: the database's triggers count it.
    /// Unchanged since a login was verified, the login still holds.
    async fn credentials_version(&self) -> Result<i64, StoreError>;

    async fn find_login(
        &self,
        domain: &str,
        username: &str,
    ) -> Result<Option<LoginRecord>, StoreError>;

    /// Creates the user (and its tenant when new). False when the user already exists.
    async fn add_user(&self, user: NewUser) -> Result<bool, StoreError>;

    /// False when there is no such user.
    async fn set_password(
        &self,
        domain: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError>;

    /// False when there is no such user.
    async fn remove_user(&self, domain: &str, username: &str) -> Result<bool, StoreError>;

    /// Users of one tenant, or of all.
    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<LoginRecord>, StoreError>;

    async fn count_users(&self) -> Result<u64, StoreError>;
}

/// The dispatch rows, their sync feed and history, and the store's life: what the API's
/// handlers need. Every store also holds the accounts ([`AccountStore`]).
#[async_trait]
pub trait Store: AccountStore + 'static {
    /// Upserts rows in one transaction, in order: all are stored or none.
    async fn save(
        &self,
        caller: &Principal,
        items: Vec<SaveItem>,
    ) -> Result<Vec<SaveOutcome>, StoreError>;

    /// One row in the caller's view, logically deleted or not.
    async fn get(&self, caller: &Principal, id: Uuid)
        -> Result<Option<JobDispatchLog>, StoreError>;

    /// Logically deletes a row.
    async fn delete(
        &self,
        caller: &Principal,
        id: Uuid,
        if_match: Option<String>,
    ) -> Result<DeleteOutcome, StoreError>;

    /// Accepts or rejects a dispatch.
    async fn decide(
        &self,
        caller: &Principal,
        id: Uuid,
        decision: Decision,
        if_match: Option<String>,
    ) -> Result<JobDispatchLog, StoreError>;

    /// Dispatches a job to every technician not already assigned; returns the job's rows.
    async fn dispatch(
        &self,
        caller: &Principal,
        jobs_id: Uuid,
        user_ids: Vec<Uuid>,
        is_workshop: bool,
    ) -> Result<Vec<JobDispatchLog>, StoreError>;

    /// The row's history, oldest first; None when the row is not in the caller's view.
    async fn history(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<Option<Vec<HistoryEntry>>, StoreError>;

    /// A page of rows in the caller's view, filtered, ordered and paged as `query` says.
    async fn list(&self, caller: &Principal, query: ListQuery) -> Result<ListPage, StoreError>;

    /// Changes after `since` (a stamp of an earlier page), at most `limit`.
    async fn changes(
        &self,
        caller: &Principal,
        since: Option<Timestamp>,
        limit: usize,
    ) -> Result<ChangesPage, StoreError>;

    /// The tenant's last committed stamp: a position from which reading the tenant's
    /// changes misses none committed later.
    async fn tenant_last_stamp(&self, tenant: TenantId) -> Result<Timestamp, StoreError>;

    /// Every change of the tenant after `since` (not before the purge horizon), at most
    /// `limit`: what the live streams of a tenant read once and share.
    async fn tenant_changes(
        &self,
        tenant: TenantId,
        since: Timestamp,
        limit: usize,
    ) -> Result<TenantChanges, StoreError>;

    /// Physically removes rows logically deleted before `cutoff`.
    async fn purge(&self, cutoff: Timestamp) -> Result<PurgeReport, StoreError>;

    /// Answers when the database does.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Connection use, for `/metrics`.
    fn stats(&self) -> StoreStats;

    /// Every tenant's rows and tombstones, for `/metrics`. Counts every row: callers cache it
    /// (`metrics::TenantFiguresCache`).
    async fn tenant_figures(&self) -> Result<Vec<TenantFigures>, StoreError>;

    /// Tells, after each commit, which tenant's rows changed (on this instance; other
    /// instances' changes are found by reading).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TenantId>;

    /// Finishes queued writes and closes the database.
    async fn close(&self);
}

/// Where the data lives, from `--database` / `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    SqliteFile(std::path::PathBuf),
    SqliteMemory,
    Postgres(String),
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "sqlite::memory:" || s == "sqlite://:memory:" {
            Ok(DatabaseUrl::SqliteMemory)
        } else if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                Err("sqlite:// needs a file path, e.g. sqlite://dispatchlog.db".into())
            } else {
                Ok(DatabaseUrl::SqliteFile(path.into()))
            }
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(s.to_string()))
        } else {
            Err(format!(
                "unsupported database URL '{s}' (expected sqlite://PATH, sqlite::memory: or postgres://…)"
            ))
        }
    }
}

/// Opens (creating and migrating when needed) the database behind `url`.
pub async fn open(url: &DatabaseUrl) -> anyhow::Result<Arc<dyn Store>> {
    open_with(url, &StoreOptions::default()).await
}

/// What the store may hold: read connections, how long a read waits for one, and (SQLite)
/// the size of the write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Read connections open at most (the writer holds one more).
    pub max_read_connections: usize,
    /// How long a read waits for a connection before it is answered 503.
    pub acquire_timeout: std::time::Duration,
    /// SQLite: the WAL file's size limit in bytes. The writer empties the WAL once it holds
    /// half of this, so the rest is room for the groups committed meanwhile. Each time it
    /// empties the log, Saves wait a few milliseconds (the last frames are copied and the
    /// database file synced), so the larger the limit, the rarer that wait: at 1 GiB about
    /// once every two seconds under full-rate realistic Saves, against about twice a second at
    /// 256 MiB and three to four times at 64 MiB (`bench/README.md`).
    pub wal_limit: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_read_connections: 16,
            acquire_timeout: std::time::Duration::from_secs(5),
            wal_limit: 1024 << 20,
        }
    }
}

/// Opens the store with these pool settings.
pub async fn open_with(
    url: &DatabaseUrl,
    options: &StoreOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    match url {
        DatabaseUrl::SqliteFile(path) => Ok(Arc::new(sqlite::open_file(path, options)?)),
        DatabaseUrl::SqliteMemory => Ok(Arc::new(sqlite::open_memory()?)),
        DatabaseUrl::Postgres(url) => Ok(Arc::new(postgres::open(url, options).await?)),
    }
}
