//! The PostgreSQL engine: the same schema and behaviour as SQLite, for several stateless
//! `dispatchlog serve` instances on one database.
//!
//! Each instance has one writer connection (group commit, as on SQLite) and a pool of readers.
//! Stamps follow commit order across instances because every write group locks the rows of the
//! tenants it writes to for its whole transaction (see `store::shared::writer`). A connection that
//! breaks (database restarted, network cut) is replaced on next use, so the service answers 503
//! while the database is away and recovers by itself when it returns.

mod client;
mod columns;
mod conn;
mod group;
mod pipeline;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use self::client::PgConn;
use super::shared::conn::GroupConn;
use super::shared::pool::Pool;
use super::shared::writer::Writer;
use super::shared::SqlStore;
use super::StoreError;

/// Schema versions, applied in order and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_write_path.sql")),
];

/// Idle read connections kept open per instance.
const MAX_IDLE_READERS: usize = 16;

pub type PostgresStore = SqlStore<PgConn>;

/// True when the error means the session is gone and the connection must be replaced: the
/// socket closed or failed, the server terminated the backend (57P01 admin shutdown, 57P02
/// crash shutdown, 57P03 cannot connect now), or a connection exception (08).
fn session_lost(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
        None => {
            e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // 53: insufficient resources (disk full, too many connections) passes too.
        let unavailable = session_lost(&e)
            || match e.as_db_error() {
                Some(db) => db.code().code().starts_with("53"),
                None => e.to_string().contains("connect"),
            };
        if unavailable {
            StoreError::Unavailable(e.into())
        } else {
            StoreError::Internal(e.into())
        }
    }
}

fn connect(url: &str) -> Result<PgConn, StoreError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| StoreError::Internal(e.into()))?;
    config.application_name("dispatchlog");
    config.connect_timeout(Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Internal(e.into()))?;
    // Whatever keeps a session from opening — the server down or unreachable, the database
    // refusing connections (55000 while ALLOW_CONNECTIONS is off), too many clients — means
    // the database is unavailable to this request: 503, and the next request tries again.
    let (client, connection) = runtime
        .block_on(config.connect(tokio_postgres::NoTls))
        .map_err(|e| StoreError::Unavailable(e.into()))?;
    // The connection runs whenever a call blocks on the runtime; it ends with the session.
    runtime.spawn(async move {
        let _ = connection.await;
    });
    Ok(PgConn::new(runtime, client))
}

/// A connection for the writer, with its session settings.
fn connect_writer(url: &str) -> Result<PgConn, StoreError> {
    let mut conn = connect(url)?;
    conn.execute_batch(pipeline::WRITER_SESSION)?;
    Ok(conn)
}

/// Connects, applies the migrations not yet recorded, and starts the writer and readers.
pub async fn open(url: &str) -> anyhow::Result<PostgresStore> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = connect(&url)
            .map_err(|e| anyhow::anyhow!("cannot connect to the PostgreSQL database: {e}"))?;
        conn.migrate(MIGRATIONS)?;
        conn.execute_batch(pipeline::WRITER_SESSION)
            .map_err(|e| anyhow::anyhow!("cannot set up the writer's session: {e}"))?;
        let writer_url = url.clone();
        let writer = Writer::start(Some(conn), Box::new(move || connect_writer(&writer_url)))?;
        let readers = Pool::new(Box::new(move || connect(&url)), MAX_IDLE_READERS);
        Ok(SqlStore::new(writer, Some(readers)))
    })
    .await?
}

/// Applies the migrations up to schema version `last` (tests build a database of an earlier
/// version with it, to check that the service upgrades it).
pub fn migrate_through(url: &str, last: i64) -> anyhow::Result<()> {
    let migrations: Vec<(i64, &str)> = MIGRATIONS
        .iter()
        .copied()
        .filter(|(version, _)| *version <= last)
        .collect();
    let mut conn = connect(url).map_err(|e| anyhow::anyhow!("{e}"))?;
    conn.migrate(&migrations)?;
    Ok(())
}
