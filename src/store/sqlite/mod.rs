//! The embedded SQLite engine.
//!
//! WAL journal with `synchronous=FULL`: a commit is on disk when it returns. Writes go through
//! the single writer thread (group commit); reads use a pool of read-only connections on
//! blocking threads, so they never wait for the writer. An in-memory database has one
//! connection only, so there reads go to the writer thread between groups.
//!
//! Times are 100 ns ticks (INTEGER), GUIDs 16-byte blobs, booleans 0/1; no NULLs.

mod checkpoint;
mod conn;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags};

use self::checkpoint::{Checkpointer, Checkpoints};
pub use self::conn::SqliteConn;
use super::shared::pool::Pool;
use super::shared::writer::Writer;
use super::shared::SqlStore;
use super::{StoreError, StoreOptions};
use crate::domain::Timestamp;

/// Schema versions, applied in order and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_sync_history_tokens.sql")),
    (3, include_str!("migrations/0003_tenant_stamp.sql")),
    (4, include_str!("migrations/0004_row_assignees.sql")),
    (5, include_str!("migrations/0005_credentials_version.sql")),
    (6, include_str!("migrations/0006_rows_in_stamp_order.sql")),
    (7, include_str!("migrations/0007_deleted_rows_index.sql")),
];

pub type SqliteStore = SqlStore<SqliteConn>;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        match e.sqlite_error_code() {
            Some(DiskFull) => StoreError::DiskFull,
            Some(
                DatabaseBusy | DatabaseLocked | CannotOpen | SystemIoFailure | ReadOnly
                | NotADatabase | DatabaseCorrupt,
            ) => StoreError::Unavailable(e.into()),
            _ => StoreError::Internal(e.into()),
        }
    }
}

/// Page cache of each reader and of the checkpointer, in KiB: the operating system's cache is
/// shared by all of them, so each keeps little of its own.
const READER_CACHE_KIB: i64 = 2_000;

/// Statements each connection keeps prepared: every fixed statement of the service plus the
/// list pages in use, so a steady load parses nothing.
const STATEMENT_CACHE: usize = 128;

/// Process-wide SQLite settings, applied once before the first connection opens: SQLite's
/// allocation statistics are off, since keeping them takes a process-wide lock around every
/// allocation of every connection, which readers on several threads then wait for (the service
/// reads none of those statistics).
fn configure_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: called before any connection of this process opens (every connection is
        // opened after `open_file` or `open_memory` came here first); should SQLite already be
        // initialised (a test that opened a connection itself), it refuses the change with
        // SQLITE_MISUSE and nothing else happens.
        unsafe {
            rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0);
        }
    });
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans never depend on the values bound to a statement. Without this, SQLite marks a
    // statement whose plan looked at a bound value (the tenant, a LIMIT) for a new plan at
    // every new binding, so a cached statement was parsed and planned again on every use.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{READER_CACHE_KIB};"
    ))
}

/// Opens (creating and migrating) the database file at `path`.
pub fn open_file(path: &Path, options: &StoreOptions) -> anyhow::Result<SqliteStore> {
    configure_library();
    let conn = Connection::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", path.display()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!("the database {} cannot use WAL mode", path.display());
    }
    configure(&conn)?;
    if migrate(&conn)? > 0 {
        // A migration that rebuilt a table left a log as large as the table; the writer starts
        // a log over but never shrinks its file, so empty it now. Only then: a user command
        // opens the database of a running server, and must not hold up its writes.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    conn.execute_batch(WRITER_PRAGMAS)?;
    grow_in_chunks(&conn)?;
    let wal_limit = options.wal_limit;
    let writer_path = path.to_path_buf();
    let statistics = Arc::new(AtomicU64::new(0));
    let checkpoints = Arc::new(Checkpoints::default());
    let upkeep = {
        let statistics = statistics.clone();
        let checkpoints = checkpoints.clone();
        move |c: SqliteConn| writer_upkeep(c, wal_limit, statistics.clone(), checkpoints.clone())
    };
    let writer = Writer::start(
        Some(upkeep(SqliteConn::new(conn))),
        Box::new(move || open_writer(&writer_path).map(&upkeep)),
    )?;
    let reader_path: PathBuf = path.to_path_buf();
    let readers = Pool::new(
        Box::new(move || {
            open_reader(&reader_path).map(|c| c.following_statistics(statistics.clone()))
        }),
        options.max_read_connections,
        options.acquire_timeout,
    );
    let checkpointer = Checkpointer::start(path, checkpoints, open_checkpointer)?;
    Ok(SqlStore::new(writer, Some(readers)).on_close(move || checkpointer.stop()))
}

/// The writer never checkpoints on its own: a checkpoint syncs the database file, and done
/// inside a commit it would stall every request waiting on that commit. [`Checkpointer`] does
/// it beside (see [`checkpoint`]). The
/// writer touches the indexes of every save, so it keeps a larger page cache (8 MB: every
/// interior page of every index of a table of millions of rows; the leaves a save lands on are
/// spread over the whole file, so a cache twice as large caught no more of them and only added
/// to the server's memory).
///
/// Its statement journals go to a temporary file once one passes 64 KiB (SQLite's spill
/// threshold), where [`configure`]'s `temp_store = MEMORY` kept them in memory whole: each job
/// runs in a savepoint, and a savepoint journals the first change of every page it touches, so
/// a SaveMultiple of 1,000 rows held up to 4,000 pages (16 MB) of journal on the heap while it
/// ran, on a heap that keeps what it once held (the server's peak RSS after loading a million
/// rows, `bench/README.md`). A single Save's journal, a few pages, stays in memory.
const WRITER_PRAGMAS: &str =
    "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -8000; PRAGMA temp_store = FILE;";

/// A throw-away database that lives as long as the process.
pub fn open_memory() -> anyhow::Result<SqliteStore> {
    configure_library();
    let conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migrate(&conn)?;
    let writer = Writer::start(
        Some(SqliteConn::new(conn)),
        Box::new(|| {
            Err(StoreError::Unavailable(anyhow::anyhow!(
                "the in-memory database is gone"
            )))
        }),
    )?;
    Ok(SqlStore::new(writer, None))
}

/// The writer's upkeep between groups: it keeps the WAL under `limit` bytes, starting it over
/// once it holds half of that ([`SqliteConn::bounding_wal`]), and the planner's statistics
/// current ([`SqliteConn::refreshing_statistics`]).
fn writer_upkeep(
    conn: SqliteConn,
    limit: u64,
    statistics: Arc<AtomicU64>,
    checkpoints: Arc<Checkpoints>,
) -> SqliteConn {
    conn.bounding_wal(limit / 2, checkpoints)
        .refreshing_statistics(statistics)
}

fn open_checkpointer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    grow_in_chunks(&conn)?;
    Ok(conn)
}

/// The database file grows by this much at a time.
const FILE_CHUNK_BYTES: i32 = 8 << 20;

/// On the connections that copy the WAL into the database file (the checkpoint thread and the
/// writer, which starts the log over): the file grows in [`FILE_CHUNK_BYTES`] steps instead of
/// a few pages at every checkpoint. Syncing a file that grew also commits the file system's
/// journal (its new size and blocks), which made one sync in a few take 10–30 ms instead of
/// 1–3 ms.
fn grow_in_chunks(conn: &Connection) -> rusqlite::Result<()> {
    let mut chunk = FILE_CHUNK_BYTES;
    conn.file_control(Some("main"), rusqlite::FileControl::ChunkSize(&mut chunk))
}

fn open_writer(path: &Path) -> Result<SqliteConn, StoreError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    conn.execute_batch(WRITER_PRAGMAS)?;
    grow_in_chunks(&conn)?;
    Ok(SqliteConn::new(conn))
}

fn open_reader(path: &Path) -> Result<SqliteConn, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    configure(&conn)?;
    Ok(SqliteConn::new(conn))
}

/// Applies the migrations not yet recorded, each in its own transaction; answers how many it
/// applied.
pub fn migrate(conn: &Connection) -> rusqlite::Result<usize> {
    migrate_through(conn, i64::MAX)
}

/// Applies the migrations not yet recorded up to schema version `last` (tests build a database
/// of an earlier version with it); answers how many it applied.
pub fn migrate_through(conn: &Connection, last: i64) -> rusqlite::Result<usize> {
    let mut applied_now = 0;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= last) {
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
        applied_now += usize::from(!done);
    }
    Ok(applied_now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::shared::conn::GroupConn;
    use std::sync::atomic::Ordering;

    fn plan(conn: &SqliteConn, sql: &str) -> String {
        let mut stmt = conn
            .connection()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let details: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        details.join("; ")
    }

    /// A new database file in WAL mode with the service's connection settings, no schema yet.
    fn new_database(dir: &tempfile::TempDir) -> (PathBuf, Connection) {
        let path = dir.path().join("test.db");
        let conn = Connection::open(&path).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        configure(&conn).unwrap();
        (path, conn)
    }

    /// The writer analyses the tables as they grow, and readers opened before pick the
    /// statistics up by being replaced: a job's page, ordered by stamp, is then read from the
    /// job's index, not by walking the tenant in stamp order.
    #[test]
    fn readers_plan_with_the_statistics_the_writer_refreshes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, conn) = new_database(&dir);
        migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO tenant (id, domain, created_at) VALUES (1, 'acme', 0);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
                 date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
                 is_workshop, modified_dateutc, sequence)
             SELECT 1, randomblob(16), randomblob(16), randomblob(16), i, 0, 0, 0, '', 0, 0,
                 i, 1 FROM n;",
        )
        .unwrap();
        let generation = Arc::new(AtomicU64::new(0));
        let mut writer = writer_upkeep(
            SqliteConn::new(conn),
            64 << 20,
            generation.clone(),
            Arc::default(),
        );
        let reader = open_reader(&path)
            .unwrap()
            .following_statistics(generation.clone());
        let query = "SELECT id FROM job_dispatch_log WHERE tenant_id = 1 AND jobs_id = x'00'
                     ORDER BY modified_dateutc DESC, id DESC LIMIT 21";
        assert!(!reader.is_broken());

        writer.between_groups();

        assert_eq!(generation.load(Ordering::Acquire), 1);
        assert!(
            reader.is_broken(),
            "a reader with older statistics is replaced"
        );
        assert!(!writer.is_broken());
        let fresh = open_reader(&path)
            .unwrap()
            .following_statistics(generation.clone());
        assert!(!fresh.is_broken());
        assert!(
            plan(&fresh, query).contains("job_dispatch_log_job"),
            "{}",
            plan(&fresh, query)
        );
        // Nothing changed since: the next refresh leaves the readers alone.
        writer.statistics_due = Some(std::time::Instant::now());
        writer.between_groups();
        assert_eq!(generation.load(Ordering::Acquire), 1);
    }

    /// Migration 6 keeps every row as it was and stores the rows in stamp order: a tenant's
    /// feed page is read along the table's own key, a row found by id through the id index,
    /// and a stamp stays unique in its tenant.
    #[test]
    fn migration_6_keeps_every_row_and_stores_rows_in_stamp_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_, conn) = new_database(&dir);
        migrate_through(&conn, 5).unwrap();
        conn.execute_batch(
            "INSERT INTO tenant (id, domain, created_at) VALUES (1, 'acme', 0), (2, 'other', 0);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
                 date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
                 is_workshop, modified_dateutc, sequence, assigned_user_ids)
             SELECT 1 + i % 2, randomblob(16), randomblob(16), randomblob(16), i, i + 1,
                 i % 3 = 0, i % 7 = 0, 'reason ' || i, i % 11 = 0, i % 5 = 0, 1000 + i,
                 1 + i % 3, 'text ' || i FROM n;",
        )
        .unwrap();
        let dump = |c: &Connection| -> Vec<Vec<rusqlite::types::Value>> {
            let mut stmt = c
                .prepare("SELECT * FROM job_dispatch_log ORDER BY tenant_id, id")
                .unwrap();
            let width = stmt.column_count();
            stmt.query_map([], |r| (0..width).map(|i| r.get(i)).collect())
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let before = dump(&conn);
        assert_eq!(before.len(), 3000);

        assert_eq!(migrate_through(&conn, 6).unwrap(), 1);
        assert_eq!(
            migrate_through(&conn, 6).unwrap(),
            0,
            "a migrated database is left alone"
        );

        assert_eq!(dump(&conn), before, "every row and column is kept");
        let duplicate = conn.execute(
            "INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
                 date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
                 is_workshop, modified_dateutc, sequence)
             VALUES (1, x'01', x'02', x'03', 0, 0, 0, 0, '', 0, 0, 1002, 1)",
            [],
        );
        assert!(duplicate.is_err(), "a stamp is unique in its tenant");

        let conn = SqliteConn::new(conn);
        // The page is a range of the table's key, in its order: no index, no sort.
        let feed = conn::TENANT_FEED
            .replace("?1", "1")
            .replace("?2", "0")
            .replace("?3", "500");
        let feed = plan(&conn, &feed);
        assert!(
            feed.contains("USING PRIMARY KEY") && !feed.contains("INDEX") && !feed.contains("TEMP"),
            "{feed}"
        );
        let by_id = plan(
            &conn,
            "SELECT jobs_id FROM job_dispatch_log WHERE tenant_id = 1 AND id = x'01'",
        );
        assert!(by_id.contains("job_dispatch_log_id"), "{by_id}");
    }

    /// The purge removes the rows deleted before its cutoff and their history, and nothing
    /// else; it finds them through the index of deleted rows and the history's index by row,
    /// never reading the whole table or the whole history (which took seconds at a million
    /// rows, while no Save could commit).
    #[test]
    fn the_purge_reads_only_what_it_removes() {
        use crate::query::Dialect;
        use crate::store::shared::conn::RowConn;
        use crate::store::shared::sql;
        let dir = tempfile::tempdir().unwrap();
        let (_, conn) = new_database(&dir);
        migrate(&conn).unwrap();
        // 4,000 rows in two tenants, stamps 1001..5000: every fifth deleted; two history
        // entries per row.
        conn.execute_batch(
            "INSERT INTO tenant (id, domain, created_at) VALUES (1, 'acme', 0), (2, 'other', 0);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
             INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
                 date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
                 is_workshop, modified_dateutc, sequence)
             SELECT 1 + i % 2, CAST(printf('%016d', i) AS BLOB), randomblob(16), randomblob(16),
                 i, 0, 0, 0, '', i % 5 = 0, 0, 1000 + i, 1 FROM n;
             INSERT INTO job_dispatch_log_history (tenant_id, id, at, client_at, actor, action,
                 changes)
             SELECT tenant_id, id, modified_dateutc, 0, 'admin', a.action, '{}'
             FROM job_dispatch_log, (SELECT 'create' AS action UNION ALL SELECT 'update') a;
             ANALYZE;",
        )
        .unwrap();
        let count =
            |c: &Connection, sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        let mut conn = SqliteConn::new(conn);

        let step = sql::purge_step(Dialect::Sqlite).replace("$2", "100");
        for statement in sql::purge(Dialect::Sqlite).into_iter().chain([step]) {
            let statement = statement.replace("$1", "3000");
            let plan = plan(&conn, &statement);
            // A scan of the rows or the history is one of the deleted rows' index only.
            for step in plan.split("; ") {
                assert!(
                    !step.starts_with("SCAN job_dispatch_log")
                        || step.contains("INDEX job_dispatch_log_deleted"),
                    "{statement}: {plan}"
                );
            }
            if statement.contains("job_dispatch_log ") {
                assert!(
                    plan.contains("job_dispatch_log_deleted"),
                    "{statement}: {plan}"
                );
            }
            if statement.contains("DELETE FROM job_dispatch_log_history") {
                assert!(plan.contains("job_dispatch_log_history_row"), "{plan}");
            }
        }

        // Stamps 1001..2999 are older than the cutoff 3000: 399 of them deleted, removed a
        // hundred at a time, the oldest first.
        let cutoff = Timestamp::from_ticks(3000);
        let mut steps = Vec::new();
        loop {
            let step = conn.purge(cutoff, 100).unwrap();
            steps.push(step.rows);
            if step.done {
                break;
            }
            let oldest = count(
                conn.connection(),
                "SELECT MIN(modified_dateutc) FROM job_dispatch_log WHERE sys_logical_delete = 1",
            );
            assert_eq!(oldest, 1000 + 5 * (steps.len() as i64 * 100 + 1));
        }
        assert_eq!(steps, vec![100, 100, 100, 99]);
        let c = conn.connection();
        assert_eq!(
            count(c, "SELECT COUNT(*) FROM job_dispatch_log"),
            4000 - 399
        );
        assert_eq!(
            count(
                c,
                "SELECT COUNT(*) FROM job_dispatch_log WHERE sys_logical_delete = 1"
            ),
            800 - 399,
            "rows deleted after the cutoff stay"
        );
        assert_eq!(
            count(c, "SELECT COUNT(*) FROM job_dispatch_log_history"),
            2 * (4000 - 399),
            "the history of every purged row goes, every other row's stays"
        );
        assert_eq!(
            count(
                c,
                "SELECT COUNT(*) FROM job_dispatch_log_history h WHERE NOT EXISTS (
                     SELECT 1 FROM job_dispatch_log d WHERE d.tenant_id = h.tenant_id
                     AND d.id = h.id)"
            ),
            0
        );
        // Each tenant's horizon is its newest purged change: row 1990 (stamp 2990) in acme
        // (even rows), row 1995 (stamp 2995) in the other tenant (odd rows).
        let horizons: Vec<(i64, i64)> = c
            .prepare("SELECT id, purged_through FROM tenant ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(horizons, vec![(1, 2990), (2, 2995)]);
        let again = conn.purge(cutoff, 100).unwrap();
        assert_eq!((again.rows, again.done), (0, true));
    }

    /// A step of a purge removes something even where more tenants than a step's rows deleted
    /// a row at the same stamp (stamps are unique within a tenant only).
    #[test]
    fn a_purge_step_always_removes_something() {
        use crate::store::shared::conn::RowConn;
        let dir = tempfile::tempdir().unwrap();
        let (_, conn) = new_database(&dir);
        migrate(&conn).unwrap();
        // Three tenants, each with deleted rows at stamps 1, 2 and 3.
        conn.execute_batch(
            "INSERT INTO tenant (id, domain, created_at) VALUES (1, 'a', 0), (2, 'b', 0),
                 (3, 'c', 0);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 8)
             INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
                 date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
                 is_workshop, modified_dateutc, sequence)
             SELECT 1 + i % 3, randomblob(16), randomblob(16), randomblob(16), 0, 0, 0, 0, '',
                 1, 0, 1 + i / 3, 1 FROM n;",
        )
        .unwrap();
        let mut conn = SqliteConn::new(conn);
        let mut steps = Vec::new();
        loop {
            let step = conn.purge(Timestamp::from_ticks(100), 2).unwrap();
            steps.push(step.rows);
            if step.done {
                break;
            }
        }
        // Each step takes one stamp of all three tenants (its limit of 2 is below them); the
        // last finds nothing left.
        assert_eq!(steps, vec![3, 3, 3, 0]);
    }

    /// CVE-2025-6965 (memory corruption through aggregate terms exceeding column counts) is
    /// fixed in SQLite 3.50.2; the bundled library must be at least that.
    #[test]
    fn the_bundled_sqlite_is_3_50_2_or_later() {
        assert!(
            rusqlite::version_number() >= 3_050_002,
            "{}",
            rusqlite::version()
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let running: String = conn
            .query_row("SELECT sqlite_version()", [], |r| r.get(0))
            .unwrap();
        let parts: Vec<u32> = running.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts >= vec![3, 50, 2], "{running}");
    }
}
