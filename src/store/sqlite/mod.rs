//! The embedded SQLite store.
//!
//! WAL journal with `synchronous=FULL`: a commit is on disk when it returns. Writes go through
//! the single [`writer::Writer`] thread (group commit); reads use a small pool of read-only
//! connections on blocking threads, so they never wait for the writer. An in-memory database
//! has one connection only, so there reads go to the writer thread between groups.

pub mod rows;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use uuid::Uuid;

use self::rows::{assigned_user_ids, select_row};
use self::writer::{StampClock, WriteCtx, Writer};
use super::{DeleteOutcome, LoginRecord, NewUser, SaveOutcome, Store, StoreError, TenantId};
use crate::domain::{merge, DispatchDraft, JobDispatchLog, Timestamp};

/// Schema versions, applied in order and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations/0001_initial.sql"))];

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 16;

pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: Option<Arc<ReadPool>>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        match e.sqlite_error_code() {
            Some(
                DatabaseBusy | DatabaseLocked | CannotOpen | DiskFull | SystemIoFailure | ReadOnly
                | NotADatabase | DatabaseCorrupt,
            ) => StoreError::Unavailable(e.into()),
            _ => StoreError::Internal(e.into()),
        }
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16000;",
    )
}

impl SqliteStore {
    /// Opens (creating and migrating) the database file at `path`.
    pub fn open_file(path: &Path) -> anyhow::Result<SqliteStore> {
        let conn = Connection::open(path)
            .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", path.display()))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!("the database {} cannot use WAL mode", path.display());
        }
        configure(&conn)?;
        migrate(&conn)?;
        let clock = StampClock::starting_after(last_stamp(&conn)?);
        Ok(SqliteStore {
            writer: Arc::new(Writer::start(conn, clock)?),
            readers: Some(Arc::new(ReadPool {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            })),
        })
    }

    /// A throw-away database that lives as long as the process.
    pub fn open_memory() -> anyhow::Result<SqliteStore> {
        let conn = Connection::open_in_memory()?;
        configure(&conn)?;
        migrate(&conn)?;
        Ok(SqliteStore {
            writer: Arc::new(Writer::start(
                conn,
                StampClock::starting_after(Timestamp::MIN),
            )?),
            readers: None,
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        match &self.readers {
            Some(pool) => {
                let pool = pool.clone();
                tokio::task::spawn_blocking(move || pool.with(f))
                    .await
                    .map_err(|e| StoreError::Internal(e.into()))?
            }
            None => self.writer.read(f).await,
        }
    }
}

/// Applies the migrations not yet recorded, each in its own transaction.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    for (version, sql) in MIGRATIONS {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let done: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        let applied = if done {
            Ok(())
        } else {
            conn.execute_batch(sql).and_then(|_| {
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    params![version, Timestamp::now().ticks()],
                )
                .map(|_| ())
            })
        };
        match applied {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}

fn last_stamp(conn: &Connection) -> rusqlite::Result<Timestamp> {
    let ticks: Option<i64> = conn.query_row(
        "SELECT MAX(modified_dateutc) FROM job_dispatch_log",
        [],
        |r| r.get(0),
    )?;
    Ok(ticks.map(Timestamp::from_ticks).unwrap_or(Timestamp::MIN))
}

/// Read-only connections, opened on demand and kept for reuse.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                configure(&c)?;
                c
            }
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

fn save_in(
    ctx: &mut WriteCtx<'_>,
    tenant: TenantId,
    drafts: &[DispatchDraft],
) -> Result<Vec<SaveOutcome>, StoreError> {
    let conn = ctx.conn;
    let mut outcomes = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let existing = select_row(conn, tenant, draft.id)?;
        let stamp = ctx.clock.peek();
        let mut next_sequence_error = None;
        let merged = merge(
            draft,
            existing.as_ref(),
            stamp,
            || match rows::next_sequence(conn, tenant, draft.jobs_id) {
                Ok(n) => n,
                Err(e) => {
                    next_sequence_error = Some(e);
                    0
                }
            },
        );
        if let Some(e) = next_sequence_error {
            return Err(e.into());
        }
        if merged.changed {
            rows::upsert(conn, tenant, &merged.row)?;
            ctx.clock.take(stamp);
        }
        outcomes.push(SaveOutcome {
            row: merged.row,
            inserted: merged.inserted,
        });
    }
    // Assignees after every row of the batch is in place.
    for outcome in &mut outcomes {
        outcome.row.assigned_user_ids = assigned_user_ids(conn, tenant, outcome.row.jobs_id)?;
    }
    Ok(outcomes)
}

fn login_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<LoginRecord> {
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

const LOGIN_COLUMNS: &str =
    "u.id, u.tenant_id, t.domain, u.username, u.password_hash, u.role, u.user_id
     FROM app_user u JOIN tenant t ON t.id = u.tenant_id";

#[async_trait]
impl Store for SqliteStore {
    async fn save(
        &self,
        tenant: TenantId,
        drafts: Vec<DispatchDraft>,
    ) -> Result<Vec<SaveOutcome>, StoreError> {
        self.writer
            .write(move |ctx| save_in(ctx, tenant, &drafts))
            .await
    }

    async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<JobDispatchLog>, StoreError> {
        self.read(move |conn| {
            let Some(mut row) = select_row(conn, tenant, id)? else {
                return Ok(None);
            };
            row.assigned_user_ids = assigned_user_ids(conn, tenant, row.jobs_id)?;
            Ok(Some(row))
        })
        .await
    }

    async fn delete(&self, tenant: TenantId, id: Uuid) -> Result<DeleteOutcome, StoreError> {
        self.writer
            .write(move |ctx| {
                let Some(mut row) = select_row(ctx.conn, tenant, id)? else {
                    return Ok(DeleteOutcome::NotFound);
                };
                if row.sys_logical_delete {
                    return Ok(DeleteOutcome::AlreadyDeleted);
                }
                let stamp = ctx.clock.peek();
                row.sys_logical_delete = true;
                row.modified_dateutc = stamp;
                rows::upsert(ctx.conn, tenant, &row)?;
                ctx.clock.take(stamp);
                Ok(DeleteOutcome::Deleted)
            })
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn find_login(
        &self,
        domain: &str,
        username: &str,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let (domain, username) = (domain.to_string(), username.to_string());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {LOGIN_COLUMNS} WHERE t.domain = ?1 AND u.username = ?2"
            ))?;
            Ok(stmt
                .query_row(params![domain, username], login_of)
                .optional()?)
        })
        .await
    }

    async fn add_user(&self, user: NewUser) -> Result<bool, StoreError> {
        self.writer
            .write(move |ctx| {
                let conn = ctx.conn;
                let now = Timestamp::now().ticks();
                conn.execute(
                    "INSERT INTO tenant (domain, created_at) VALUES (?1, ?2)
                     ON CONFLICT (domain) DO NOTHING",
                    params![user.domain, now],
                )?;
                let tenant: i64 = conn.query_row(
                    "SELECT id FROM tenant WHERE domain = ?1",
                    [&user.domain],
                    |r| r.get(0),
                )?;
                let inserted = conn.execute(
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
            })
            .await
    }

    async fn set_password(
        &self,
        domain: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let (domain, username, hash) = (
            domain.to_string(),
            username.to_string(),
            password_hash.to_string(),
        );
        self.writer
            .write(move |ctx| {
                let n = ctx.conn.execute(
                    "UPDATE app_user SET password_hash = ?3
                     WHERE username = ?2 AND tenant_id = (SELECT id FROM tenant WHERE domain = ?1)",
                    params![domain, username, hash],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn remove_user(&self, domain: &str, username: &str) -> Result<bool, StoreError> {
        let (domain, username) = (domain.to_string(), username.to_string());
        self.writer
            .write(move |ctx| {
                let n = ctx.conn.execute(
                    "DELETE FROM app_user
                     WHERE username = ?2 AND tenant_id = (SELECT id FROM tenant WHERE domain = ?1)",
                    params![domain, username],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn list_users(&self, domain: Option<&str>) -> Result<Vec<LoginRecord>, StoreError> {
        let domain = domain.map(str::to_string);
        self.read(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {LOGIN_COLUMNS} WHERE ?1 IS NULL OR t.domain = ?1
                 ORDER BY t.domain, u.username"
            ))?;
            let users = stmt
                .query_map([domain], login_of)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(users)
        })
        .await
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM app_user", [], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    async fn close(&self) {
        if let Some(pool) = &self.readers {
            pool.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        let writer = self.writer.clone();
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
    }
}
