//! Baseline for the Save benchmark (`bench/save.sh`): what SQLite alone does on this disk with
//! the service's schema, settings and statements, without HTTP, JSON, auth or tokio.
//!
//! It opens a fresh database file in `--dir` exactly as `SqliteStore::open_file` does (WAL,
//! `synchronous=FULL`, same pragmas, the crate's own `migrate`, so the indexes are the
//! service's), creates one tenant, then saves new random rows (fresh `id`, `jobs_id`,
//! `user_id`) the way the service's writer thread saves one `POST /Save`:
//!
//! ```text
//! BEGIN IMMEDIATE                           -- once per transaction
//!   SAVEPOINT job                           -- per row, as the writer does per request
//!   select_row(tenant, id)                  -- the existing row (none: ids are fresh)
//!   next_sequence(tenant, jobs_id)          -- the job's MAX(sequence)
//!   merge(..)                               -- the domain merge
//!   upsert(tenant, row)                     -- the service's INSERT .. ON CONFLICT DO UPDATE
//!   insert_history(..)                      -- the row's history entry ("create")
//!   assignees(tenant, jobs_id)              -- for assigned_user_ids
//!   RELEASE job
//! UPDATE tenant SET last_stamp = ..         -- once per transaction, as the writer does
//! COMMIT                                    -- one fsync of the WAL (synchronous=FULL)
//! ```
//!
//! The statements are the service's own: they are called through the SQLite engine's `Conn`
//! implementation, the same code the writer thread runs.
//!
//! ```text
//! ```
//!
//! `--rows-per-commit 1` is baseline (a), one commit per row; `--rows-per-commit 256` is
//! baseline (b). It runs for `--seconds` (or until `--max-rows`) and prints one line:
//! `baseline rows_per_commit=N rows=N commits=N seconds=S rows_per_sec=R`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use dispatchlog::domain::{merge, DispatchDraft, Timestamp};
use dispatchlog::store::shared::conn::{GroupConn, NewHistory, RowConn};
use dispatchlog::store::sqlite::SqliteConn;
use rusqlite::Connection;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Durable SQLite upserts with the service's schema, without HTTP")]
struct Args {
    /// Directory in which a fresh database file is created (and removed afterwards).
    #[arg(long)]
    dir: PathBuf,
    /// Rows saved per transaction (1 = one commit per row).
    #[arg(long, default_value_t = 1)]
    rows_per_commit: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop earlier after this many rows.
    #[arg(long)]
    max_rows: Option<u64>,
    /// Keep the database file instead of removing it.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.rows_per_commit >= 1,
        "--rows-per-commit must be at least 1"
    );
    let path = args.dir.join(format!("baseline-{}.db", Uuid::new_v4()));
    let result = run(&args, &path);
    if !args.keep {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    result
}

/// Opens the file as `SqliteStore::open_file` does.
fn open(path: &std::path::Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "WAL mode refused");
    // The same pragmas as `store::sqlite::configure`.
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16000;",
    )?;
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    anyhow::ensure!(
        synchronous == 2,
        "synchronous is {synchronous}, not FULL (2)"
    );
    dispatchlog::store::sqlite::migrate(&conn)?;
    Ok(conn)
}

fn run(args: &Args, path: &std::path::Path) -> anyhow::Result<()> {
    let conn = open(path)?;
    conn.execute(
        "INSERT INTO tenant (domain, created_at) VALUES ('bench', ?1)",
        [Timestamp::now().ticks()],
    )?;
    let tenant = conn.last_insert_rowid();
    let mut conn = SqliteConn::new(conn);
    let mut last = conn.lock_tenant_stamp(tenant)?;

    let limit = Duration::from_secs_f64(args.seconds);
    let max_rows = args.max_rows.unwrap_or(u64::MAX);
    let (mut saved, mut commits) = (0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < limit && saved < max_rows {
        conn.begin_write()?;
        for _ in 0..args.rows_per_commit {
            conn.execute_batch("SAVEPOINT job")?;
            last = save_one(&mut conn, tenant, last, random_draft())?;
            conn.execute_batch("RELEASE SAVEPOINT job")?;
        }
        conn.store_tenant_stamp(tenant, last)?;
        conn.execute_batch("COMMIT")?;
        saved += args.rows_per_commit as u64;
        commits += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let stored: i64 =
        conn.connection()
            .query_row("SELECT COUNT(*) FROM job_dispatch_log", [], |r| r.get(0))?;
    anyhow::ensure!(
        stored as u64 == saved,
        "stored {stored} rows, expected {saved}"
    );
    println!(
        "baseline rows_per_commit={} rows={saved} commits={commits} seconds={seconds:.3} rows_per_sec={:.1}",
        args.rows_per_commit,
        saved as f64 / seconds
    );
    Ok(())
}

/// What the benchmark's Lua script sends: fresh `id`, `jobs_id`, `user_id`, the rest default.
fn random_draft() -> DispatchDraft {
    DispatchDraft {
        id: Uuid::new_v4(),
        id_from_client: true,
        jobs_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        date_create: None,
        date_proceeded: None,
        is_accepted: false,
        is_rejected: false,
        rejected_reason: String::new(),
        sys_logical_delete: false,
        is_workshop: false,
        sequence: None,
    }
}

/// The per-row statements of the service's save; returns the stamp used.
fn save_one(
    conn: &mut SqliteConn,
    tenant: i64,
    last: Timestamp,
    draft: DispatchDraft,
) -> anyhow::Result<Timestamp> {
    let existing = conn.select_row(tenant, draft.id)?;
    let stamp = Timestamp::now().max(last.succ());
    let next_sequence = i32::try_from(conn.max_sequence(tenant, draft.jobs_id)? + 1)?;
    let merged = merge(&draft, existing.as_ref(), stamp, || next_sequence);
    if merged.changed {
        conn.upsert(tenant, &merged.row)?;
        conn.insert_history(&NewHistory {
            tenant,
            id: merged.row.id,
            at: stamp,
            client_at: None,
            actor: "bench@bench",
            action: "create",
            changes: "{}",
        })?;
    }
    std::hint::black_box(conn.assignees(tenant, merged.row.jobs_id)?);
    Ok(if merged.changed { stamp } else { last })
}
