//! The PostgreSQL engine: the same schema and behaviour as SQLite, for several stateless
//! `dispatchlog serve` instances on one database.
//!
//! Each instance has one writer connection (group commit, as on SQLite) and a pool of readers.
//! Stamps follow commit order across instances because every write group locks the rows of the
//! tenants it writes to for its whole transaction (see `store::sql::writer`). A connection that
//! breaks (database restarted, network cut) is replaced on next use, so the service answers 503
//! while the database is away and recovers by itself when it returns.

mod conn;

use std::time::Duration;

pub use self::conn::PgConn;
use super::sql::pool::Pool;
use super::sql::writer::Writer;
use super::sql::SqlStore;
use super::StoreError;
use crate::domain::Timestamp;

/// Schema versions, applied in order and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_job_assignees.sql")),
];

/// Idle read connections kept open per instance.
const MAX_IDLE_READERS: usize = 16;

pub type PostgresStore = SqlStore<PgConn>;

/// True when the error means the session is gone and the connection must be replaced: the
/// socket closed or failed, the server terminated the backend (57P01 admin shutdown, 57P02
/// crash shutdown, 57P03 cannot connect now), or a connection exception (08).
fn session_lost(e: &postgres::Error) -> bool {
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

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
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
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::Internal(e.into()))?;
    config.application_name("dispatchlog");
    config.connect_timeout(Duration::from_secs(5));
    // Whatever keeps a session from opening — the server down or unreachable, the database
    // refusing connections (55000 while ALLOW_CONNECTIONS is off), too many clients — means
    // the database is unavailable to this request: 503, and the next request tries again.
    let client = config
        .connect(postgres::NoTls)
        .map_err(|e| StoreError::Unavailable(e.into()))?;
    Ok(PgConn::new(client))
}

/// Connects, applies the migrations not yet recorded, and starts the writer and readers.
pub async fn open(url: &str) -> anyhow::Result<PostgresStore> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = connect(&url)
            .map_err(|e| anyhow::anyhow!("cannot connect to the PostgreSQL database: {e}"))?;
        migrate(conn.client())?;
        let writer_url = url.clone();
        let writer = Writer::start(Some(conn), Box::new(move || connect(&writer_url)))?;
        let readers = Pool::new(Box::new(move || connect(&url)), MAX_IDLE_READERS);
        Ok(SqlStore::new(writer, Some(readers)))
    })
    .await?
}

/// Applies the migrations, one instance at a time (an advisory lock serialises instances that
/// start together).
pub fn migrate(client: &mut postgres::Client) -> anyhow::Result<()> {
    migrate_through(client, i64::MAX)
}

/// Applies the migrations up to schema version `last` (tests build a database of an earlier
/// version with it).
pub fn migrate_through(client: &mut postgres::Client, last: i64) -> anyhow::Result<()> {
    client.batch_execute(
        "SELECT pg_advisory_lock(7305521984);
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         );",
    )?;
    let result = (|| -> anyhow::Result<()> {
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= last) {
            let mut tx = client.transaction()?;
            let done = tx
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[version],
                )?
                .is_some();
            if !done {
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[version, &Timestamp::now().ticks()],
                )?;
            }
            tx.commit()?;
        }
        Ok(())
    })();
    client.batch_execute("SELECT pg_advisory_unlock(7305521984)")?;
    result
}
