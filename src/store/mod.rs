//! Storage: one interface, one implementation per database engine. All SQL lives below here.
//!
//! The interface speaks in domain values and whole operations ("save these rows in one
//! transaction"), not in statements, so that each engine can order stamps and group commits in
//! its own way while giving the same guarantees (SPEC §7, §10).

pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::{DispatchDraft, JobDispatchLog, Role};

/// A tenant's key in the database.
pub type TenantId = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database does not answer (stopped, unreachable, disk gone): 503.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: 500.
    #[error("storage error: {0}")]
    Internal(#[source] anyhow::Error),
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Upserts rows in one transaction, in order: all are stored or none.
    async fn save(
        &self,
        tenant: TenantId,
        drafts: Vec<DispatchDraft>,
    ) -> Result<Vec<SaveOutcome>, StoreError>;

    /// One row of the tenant, logically deleted or not.
    async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<JobDispatchLog>, StoreError>;

    /// Logically deletes a row.
    async fn delete(&self, tenant: TenantId, id: Uuid) -> Result<DeleteOutcome, StoreError>;

    /// Answers when the database does.
    async fn ping(&self) -> Result<(), StoreError>;

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
    match url {
        DatabaseUrl::SqliteFile(path) => Ok(Arc::new(sqlite::SqliteStore::open_file(path)?)),
        DatabaseUrl::SqliteMemory => Ok(Arc::new(sqlite::SqliteStore::open_memory()?)),
        DatabaseUrl::Postgres(_) => anyhow::bail!(
            "this build of dispatchlog has no PostgreSQL backend yet; use sqlite://PATH"
        ),
    }
}
