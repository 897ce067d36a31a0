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
mod listen;
mod pipeline;
#[cfg(test)]
mod tests;
pub mod tls;

use std::time::Duration;

pub use self::client::PgConn;
pub use self::tls::PgTarget;
use super::shared::conn::GroupConn;
use super::shared::pool::Pool;
use super::shared::writer::Writer;
use super::shared::SqlStore;
use super::{StoreError, StoreOptions};

/// Schema versions, applied in order and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_write_path.sql")),
    (3, include_str!("migrations/0003_credentials_version.sql")),
    (4, include_str!("migrations/0004_row_assignees.sql")),
    (5, include_str!("migrations/0005_deleted_rows_index.sql")),
];

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

fn connect(target: &PgTarget) -> Result<PgConn, StoreError> {
    let mut config = target.config.clone();
    config.application_name("dispatchlog");
    config.connect_timeout(Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Internal(e.into()))?;
    // Whatever keeps a session from opening — the server down or unreachable, the database
    // refusing connections (55000 while ALLOW_CONNECTIONS is off), too many clients, a TLS
    // handshake that fails — means the database is unavailable to this request: 503, and the
    // next request tries again.
    let client = match target.tls.clone() {
        Some(tls) => {
            let (client, connection) = runtime
                .block_on(config.connect(tls))
                .map_err(|e| StoreError::Unavailable(e.into()))?;
            // The connection runs whenever a call blocks on the runtime; it ends with the
            // session.
            runtime.spawn(async move {
                let _ = connection.await;
            });
            client
        }
        None => {
            let (client, connection) = runtime
                .block_on(config.connect(tokio_postgres::NoTls))
                .map_err(|e| StoreError::Unavailable(e.into()))?;
            runtime.spawn(async move {
                let _ = connection.await;
            });
            client
        }
    };
    Ok(PgConn::new(runtime, client))
}

/// A connection for the writer, with its session settings.
fn connect_writer(target: &PgTarget) -> Result<PgConn, StoreError> {
    let mut conn = connect(target)?;
    conn.execute_batch(pipeline::WRITER_SESSION)?;
    Ok(conn)
}

/// Connects, applies the migrations not yet recorded, and starts the writer and readers.
pub async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<PostgresStore> {
    let target = PgTarget::parse(url).map_err(|e| anyhow::anyhow!("--database: {e}"))?;
    let options = options.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let mut conn = connect(&target).map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to the PostgreSQL database: {}",
                error_chain(&e)
            )
        })?;
        conn.migrate(MIGRATIONS)?;
        conn.execute_batch(pipeline::WRITER_SESSION)
            .map_err(|e| anyhow::anyhow!("cannot set up the writer's session: {e}"))?;
        let writer_target = target.clone();
        let writer = Writer::start(Some(conn), Box::new(move || connect_writer(&writer_target)))?;
        let reader_target = target.clone();
        let readers = Pool::new(
            Box::new(move || connect(&reader_target)),
            options.max_read_connections,
            options.acquire_timeout,
        );
        anyhow::Ok((SqlStore::new(writer, Some(readers)), target))
    })
    .await??;
    let (store, target) = opened;
    let listener = tokio::spawn(listen::listen_for_commits(target, store.commit_sender()));
    Ok(store.on_close(move || listener.abort()))
}

/// Applies the migrations up to schema version `last` (tests build a database of an earlier
/// version with it, to check that the service upgrades it).
pub fn migrate_through(url: &str, last: i64) -> anyhow::Result<()> {
    let migrations: Vec<(i64, &str)> = MIGRATIONS
        .iter()
        .copied()
        .filter(|(version, _)| *version <= last)
        .collect();
    let target = PgTarget::parse(url).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut conn = connect(&target).map_err(|e| anyhow::anyhow!("{}", error_chain(&e)))?;
    conn.migrate(&migrations)?;
    Ok(())
}

/// An error and its causes, one after another: tokio-postgres's own message for a failed TLS
/// handshake ("error performing TLS handshake") leaves out why (an unknown issuer, a name the
/// certificate does not cover), which is what the operator needs to read.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
