//! The PostgreSQL connection: a `tokio_postgres::Client` driven by a runtime of its own (the
//! store's threads block on it), its statements prepared once per connection, and how a lost
//! session is noticed. The group protocol is in `pipeline.rs`, the operations in `conn.rs`.

use std::collections::{HashMap, VecDeque};

use tokio::runtime::Runtime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

use super::group::Group;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::store::shared::conn::GroupConn;
use crate::store::shared::sql::{decode_row, SqlRow};
use crate::store::StoreError;

impl SqlRow for Row {
    type Error = StoreError;
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn int32(&self, i: usize) -> Result<i32, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn boolean(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn invalid(&self, _: usize, message: String) -> StoreError {
        StoreError::Internal(anyhow::anyhow!(message))
    }
}

/// A row from the columns of `shared::sql::ROW_COLUMNS`.
pub(super) fn row_of(r: &Row) -> Result<JobDispatchLog, StoreError> {
    decode_row(r)
}

/// List-page statements each connection keeps prepared.
pub const LIST_STATEMENTS: usize = 32;

pub struct PgConn {
    /// Runs the connection's socket while a call blocks on it.
    pub(super) runtime: Runtime,
    pub(super) client: Client,
    statements: HashMap<String, Statement>,
    /// The list pages prepared most recently, least recent first ([`PgConn::list_statement`]).
    list_statements: VecDeque<(String, Statement)>,
    /// An error showed the session is gone (terminated by the server, socket closed). The
    /// client itself only notices once its socket is read again, which is too late: the pool
    /// would hand the dead session to the next request.
    pub(super) lost: bool,
    /// The write group in progress on this connection (the writer's), if any.
    pub(super) group: Option<Group>,
}

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgConn {
    pub fn new(runtime: Runtime, client: Client) -> Self {
        PgConn {
            runtime,
            client,
            statements: HashMap::new(),
            list_statements: VecDeque::new(),
            lost: false,
            group: None,
        }
    }

    /// Converts a client error, remembering when it means the session is gone.
    pub(super) fn check<T>(
        &mut self,
        result: Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        result.map_err(|e| {
            if super::session_lost(&e) {
                self.lost = true;
            }
            e.into()
        })
    }

    /// Applies the migrations not yet recorded in `schema_migrations`, each in its own
    /// transaction, one instance at a time (an advisory lock serialises instances that start
    /// together).
    pub fn migrate(&mut self, migrations: &[(i64, &str)]) -> Result<(), StoreError> {
        self.execute_batch(
            "SELECT pg_advisory_lock(7305521984);
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             );",
        )?;
        let result = (|| {
            for (version, sql) in migrations {
                self.execute_batch("BEGIN")?;
                let applied = self
                    .query_opt(
                        "SELECT 1 FROM schema_migrations WHERE version = $1",
                        &[version],
                    )
                    .map(|row| row.is_some())
                    .and_then(|applied| {
                        if !applied {
                            self.execute_batch(sql)?;
                            self.execute(
                                "INSERT INTO schema_migrations (version, applied_at)
                                 VALUES ($1, $2)",
                                &[version, &Timestamp::now().ticks()],
                            )?;
                        }
                        self.execute_batch("COMMIT")
                    });
                if let Err(e) = applied {
                    let _ = self.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
            Ok(())
        })();
        let unlocked = self.execute_batch("SELECT pg_advisory_unlock(7305521984)");
        result.and(unlocked)
    }

    pub(super) fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let prepared = self.runtime.block_on(self.client.prepare(sql));
        let statement = self.check(prepared)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// A list page's statement, prepared with its parameters' types. A connection keeps the
    /// [`LIST_STATEMENTS`] used most recently: the pages clients ask for again and again (a
    /// dispatch screen's first page, a technician's pending jobs) are planned once per session,
    /// while a filter seen once only pushes out the oldest.
    pub(super) fn list_statement(
        &mut self,
        sql: &str,
        types: &[Type],
    ) -> Result<Statement, StoreError> {
        if let Some(at) = self.list_statements.iter().position(|(s, _)| s == sql) {
            let entry = self.list_statements.remove(at).expect("found above");
            let statement = entry.1.clone();
            self.list_statements.push_back(entry);
            return Ok(statement);
        }
        let prepared = self.runtime.block_on(self.client.prepare_typed(sql, types));
        let statement = self.check(prepared)?;
        if self.list_statements.len() >= LIST_STATEMENTS {
            // Dropping the statement closes it on the server.
            self.list_statements.pop_front();
        }
        self.list_statements
            .push_back((sql.to_string(), statement.clone()));
        Ok(statement)
    }

    pub(super) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let result = self.runtime.block_on(self.client.query(&statement, params));
        self.check(result)
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let result = self
            .runtime
            .block_on(self.client.query_opt(&statement, params));
        self.check(result)
    }

    pub(super) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        let statement = self.statement(sql)?;
        let result = self
            .runtime
            .block_on(self.client.query_one(&statement, params));
        self.check(result)
    }

    pub(super) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let result = self
            .runtime
            .block_on(self.client.execute(&statement, params));
        self.check(result)
    }

    pub(super) fn rows(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<JobDispatchLog>, StoreError> {
        self.query(sql, params)?.iter().map(row_of).collect()
    }
}
