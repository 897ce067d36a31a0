//! Baseline of the sync-pull benchmark (`bench/changes.sh`): how fast SQLite alone reads the
//! same rows the changes feed returns, on the same database file, with no HTTP, JSON or tokio.
//!
//! Two measures, each a full pass over the tenant's rows in pages of `--page` rows ordered by
//! `(tenant_id, modified_dateutc)` (the feed's order and index), each page inside its own read
//! transaction as the feed reads it, the next page starting after the last `modified_dateutc`:
//!
//! - **raw**: a plain `SELECT` of every stored column through rusqlite, each column read into
//!   its Rust type (16-byte GUIDs into `Uuid`, integers, booleans, the text) — the rate the
//!   issue compares the feed with.
//! - **store**: the service's own `store::shared::ops::changes` on the SQLite engine's `Conn`
//!   (the same call the HTTP handler makes: the `SELECT`, decoding into `JobDispatchLog`, the
//!   `assigned_user_ids` of every job in the page, the purge horizon check) — the feed without
//!   HTTP, auth and JSON, to show where the time between the two goes.
//!
//! The connection is opened read-only with the pragmas of the service's read pool (its page
//! cache size can be changed with `--cache-kib`, to see what a larger cache gives). Each measure
//! runs `--passes` times; the last line reports the best and the median of each.
//! Output: `select kind=raw pass=1 rows=… seconds=… rows_per_sec=…`, then
//! `select raw_best_rows_per_sec=… raw_median_rows_per_sec=… store_best_rows_per_sec=… store_median_rows_per_sec=…`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::ensure;
use clap::Parser;
use dispatchlog::domain::{Principal, Role, Timestamp};
use dispatchlog::store::shared::conn::GroupConn;
use dispatchlog::store::shared::ops;
use dispatchlog::store::sqlite::SqliteConn;
use rusqlite::{params, Connection, OpenFlags};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Plain SELECT of a tenant's rows in feed order, for the sync-pull benchmark")]
struct Args {
    /// The database file the service wrote.
    #[arg(long)]
    db: PathBuf,
    /// The tenant (domain) whose rows are read.
    #[arg(long, default_value = "bench")]
    domain: String,
    /// Rows per page.
    #[arg(long, default_value_t = 5000)]
    page: usize,
    /// Passes of each measure.
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Fail unless every pass reads exactly this many rows.
    #[arg(long)]
    expect: Option<u64>,
    /// SQLite page cache in KiB (the service's read pool uses 2000).
    #[arg(long, default_value_t = 2000)]
    cache_kib: u32,
}

/// Every stored column of `job_dispatch_log` (what the feed's `SELECT` reads).
const SELECT: &str = "SELECT id, jobs_id, user_id, date_create, date_proceeded, is_accepted, \
     is_rejected, rejected_reason, sys_logical_delete, is_workshop, modified_dateutc, sequence \
     FROM job_dispatch_log WHERE tenant_id = ?1 AND modified_dateutc > ?2 \
     ORDER BY tenant_id, modified_dateutc LIMIT ?3";

/// Opens the file as the service's read pool does (`open_reader` + `configure`).
fn open(path: &std::path::Path, cache_kib: u32) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{cache_kib};"
    ))?;
    Ok(conn)
}

/// One raw pass; returns the rows read.
fn raw_pass(conn: &Connection, tenant: i64, page: usize) -> anyhow::Result<u64> {
    let mut stmt = conn.prepare_cached(SELECT)?;
    let (mut after, mut total) = (i64::MIN, 0u64);
    loop {
        conn.execute_batch("BEGIN")?;
        let mut rows = stmt.query(params![tenant, after, page as i64])?;
        let mut n = 0usize;
        while let Some(r) = rows.next()? {
            let id: Uuid = r.get(0)?;
            let jobs_id: Uuid = r.get(1)?;
            let user_id: Uuid = r.get(2)?;
            let date_create: i64 = r.get(3)?;
            let date_proceeded: i64 = r.get(4)?;
            let is_accepted: bool = r.get(5)?;
            let is_rejected: bool = r.get(6)?;
            let rejected_reason: String = r.get(7)?;
            let sys_logical_delete: bool = r.get(8)?;
            let is_workshop: bool = r.get(9)?;
            let modified: i64 = r.get(10)?;
            let sequence: i32 = r.get(11)?;
            std::hint::black_box((
                id,
                jobs_id,
                user_id,
                date_create,
                date_proceeded,
                is_accepted,
                is_rejected,
                rejected_reason,
                sys_logical_delete,
                is_workshop,
                sequence,
            ));
            after = modified;
            n += 1;
        }
        drop(rows);
        conn.execute_batch("COMMIT")?;
        total += n as u64;
        if n < page {
            return Ok(total);
        }
    }
}

/// One pass through the service's own `ops::changes`; returns the rows read.
fn store_pass(conn: &mut SqliteConn, caller: &Principal, page: usize) -> anyhow::Result<u64> {
    let (mut since, mut total) = (None::<Timestamp>, 0u64);
    loop {
        conn.begin_read()?;
        let result = ops::changes(conn, caller, since, page);
        conn.execute_batch("COMMIT")?;
        let result = result?;
        total += result.rows.len() as u64;
        std::hint::black_box(&result.rows);
        since = result.last.or(since);
        if !result.has_more {
            return Ok(total);
        }
    }
}

fn summarize(rates: &mut [f64]) -> (f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() - 1], rates[rates.len() / 2])
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.passes >= 1 && args.page >= 1,
        "--passes and --page must be positive"
    );
    let conn = open(&args.db, args.cache_kib)?;
    let tenant: i64 = conn.query_row(
        "SELECT id FROM tenant WHERE lower(domain) = lower(?1)",
        [&args.domain],
        |r| r.get(0),
    )?;
    let check = |kind: &str, pass: usize, rows: u64| -> anyhow::Result<()> {
        if let Some(expect) = args.expect {
            ensure!(
                rows == expect,
                "{kind} pass {pass}: read {rows} rows, expected {expect}"
            );
        }
        Ok(())
    };

    let mut raw = Vec::new();
    for pass in 1..=args.passes {
        let started = Instant::now();
        let rows = raw_pass(&conn, tenant, args.page)?;
        let seconds = started.elapsed().as_secs_f64();
        check("raw", pass, rows)?;
        raw.push(rows as f64 / seconds);
        println!(
            "select kind=raw pass={pass} rows={rows} seconds={seconds:.3} rows_per_sec={:.0}",
            rows as f64 / seconds
        );
    }

    let caller = Principal {
        tenant_id: tenant,
        domain: args.domain.clone(),
        username: "bench".into(),
        role: Role::Admin,
        user_id: Uuid::nil(),
    };
    let mut conn = SqliteConn::new(conn);
    let mut store = Vec::new();
    for pass in 1..=args.passes {
        let started = Instant::now();
        let rows = store_pass(&mut conn, &caller, args.page)?;
        let seconds = started.elapsed().as_secs_f64();
        check("store", pass, rows)?;
        store.push(rows as f64 / seconds);
        println!(
            "select kind=store pass={pass} rows={rows} seconds={seconds:.3} rows_per_sec={:.0}",
            rows as f64 / seconds
        );
    }

    let (raw_best, raw_median) = summarize(&mut raw);
    let (store_best, store_median) = summarize(&mut store);
    println!(
        "select raw_best_rows_per_sec={raw_best:.0} raw_median_rows_per_sec={raw_median:.0} store_best_rows_per_sec={store_best:.0} store_median_rows_per_sec={store_median:.0}"
    );
    Ok(())
}
