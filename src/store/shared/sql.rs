//! The SQL both engines run, and how both decode what it answers: written once here, so that
//! a column added to `job_dispatch_log` is added to one list. Statements are written with
//! PostgreSQL's `$n` parameters; [`for_dialect`] gives SQLite's `?n`. What really differs
//! between the engines (booleans, case-insensitive names, a few functions) is chosen by
//! [`Dialect`], as the OData translation in `query` does; each engine's `conn.rs` keeps only
//! the statements that have no counterpart on the other.

use std::borrow::Cow;

use uuid::Uuid;

use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::query::{filter_sql, order_sql_for, Dialect, ListQuery, SqlValue};
use crate::store::{LoginRecord, TenantId};

/// The stored columns of `job_dispatch_log`, each behind `$prefix`, in the order
/// [`decode_row`] reads them.
macro_rules! row_columns {
    ($prefix:literal) => {
        concat!(
            $prefix,
            "id, ",
            $prefix,
            "jobs_id, ",
            $prefix,
            "user_id, ",
            $prefix,
            "date_create, ",
            $prefix,
            "date_proceeded, ",
            $prefix,
            "is_accepted, ",
            $prefix,
            "is_rejected, ",
            $prefix,
            "rejected_reason, ",
            $prefix,
            "sys_logical_delete, ",
            $prefix,
            "is_workshop, ",
            $prefix,
            "modified_dateutc, ",
            $prefix,
            "sequence"
        )
    };
}
pub(crate) use row_columns;

/// The stored columns, in the order [`decode_row`] reads them.
pub const ROW_COLUMNS: &str = row_columns!("");
/// How many columns [`ROW_COLUMNS`] names: the index of a column that follows them.
pub const ROW_COLUMN_COUNT: usize = 12;

/// The `SET` list of an upsert: every stored column but the key takes the value offered.
macro_rules! upsert_set {
    () => {
        "jobs_id = excluded.jobs_id, user_id = excluded.user_id, \
         date_create = excluded.date_create, date_proceeded = excluded.date_proceeded, \
         is_accepted = excluded.is_accepted, is_rejected = excluded.is_rejected, \
         rejected_reason = excluded.rejected_reason, \
         sys_logical_delete = excluded.sys_logical_delete, \
         is_workshop = excluded.is_workshop, modified_dateutc = excluded.modified_dateutc, \
         sequence = excluded.sequence"
    };
}
pub(crate) use upsert_set;

/// [`upsert_set!`] as a constant.
pub const UPSERT_SET: &str = upsert_set!();

/// One row by key.
pub const SELECT_ROW: &str = concat!(
    "SELECT ",
    row_columns!(""),
    " FROM job_dispatch_log WHERE tenant_id = $1 AND id = $2"
);

/// All rows of a job, by sequence then user.
pub const JOB_ROWS: &str = concat!(
    "SELECT ",
    row_columns!(""),
    " FROM job_dispatch_log WHERE tenant_id = $1 AND jobs_id = $2 ORDER BY sequence, user_id"
);

/// A row's history, oldest first, as [`decode_history`] reads it.
pub const HISTORY: &str = "SELECT at, client_at, actor, action, changes
     FROM job_dispatch_log_history WHERE tenant_id = $1 AND id = $2 ORDER BY seq";

/// A row reassigned away from a technician ($2) at a stamp ($4).
pub const SCOPE_EXIT_ADD: &str = "INSERT INTO scope_exit (tenant_id, user_id, id, modified_dateutc)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant_id, user_id, id) DO UPDATE
     SET modified_dateutc = excluded.modified_dateutc";

/// The technician it moved to ($2) has it again: no removal for them.
pub const SCOPE_EXIT_REMOVE: &str =
    "DELETE FROM scope_exit WHERE tenant_id = $1 AND user_id = $2 AND id = $3";

/// Rows reassigned away from a technician after a stamp, oldest first.
pub const SCOPE_EXITS: &str = "SELECT id, modified_dateutc FROM scope_exit
     WHERE tenant_id = $1 AND user_id = $2 AND modified_dateutc > $3
     ORDER BY modified_dateutc LIMIT $4";

/// Rows reassigned away from any technician after a stamp, with whose they were: (id,
/// user_id, stamp), oldest first. For the live streams' one read per tenant.
pub const TENANT_SCOPE_EXITS: &str = "SELECT id, user_id, modified_dateutc FROM scope_exit
     WHERE tenant_id = $1 AND modified_dateutc > $2
     ORDER BY modified_dateutc LIMIT $3";

pub const PURGED_THROUGH: &str = "SELECT purged_through FROM tenant WHERE id = $1";

/// The tenant's last stamp as committed: stamps follow commit order, so every change at or
/// below it is visible to whoever reads it, and every later one will be stamped above it.
pub const TENANT_LAST_STAMP: &str = "SELECT last_stamp FROM tenant WHERE id = $1";

pub const STORE_TENANT_STAMP: &str = "UPDATE tenant SET last_stamp = $2 WHERE id = $1";

pub const COUNT_USERS: &str = "SELECT COUNT(*) FROM app_user";

/// A statement in the dialect's parameter syntax: `$n` as written, or SQLite's `?n`. The
/// statements here hold no other `$`.
pub fn for_dialect(dialect: Dialect, sql: &str) -> Cow<'_, str> {
    match dialect {
        Dialect::Postgres => Cow::Borrowed(sql),
        Dialect::Sqlite => Cow::Owned(sql.replace('$', "?")),
    }
}

/// `column` is true: SQLite stores booleans as integers.
fn is_true(dialect: Dialect, column: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("{column} = 1"),
        Dialect::Postgres => column.to_string(),
    }
}

/// A domain or user name equals a parameter, without regard to case. SQLite's columns compare
/// so by themselves (`COLLATE NOCASE`); PostgreSQL's unique indexes are on `lower(…)`, so its
/// lookups name the same expression.
fn name_is(dialect: Dialect, column: &str, param: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("{column} = {param}"),
        Dialect::Postgres => format!("lower({column}) = lower({param})"),
    }
}

/// A result row of either engine, read by column index.
pub trait SqlRow {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn int32(&self, i: usize) -> Result<i32, Self::Error>;
    fn uuid(&self, i: usize) -> Result<Uuid, Self::Error>;
    fn boolean(&self, i: usize) -> Result<bool, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    /// The error for a value of column `i` that reads but means nothing to the service.
    fn invalid(&self, i: usize, message: String) -> Self::Error;
}

/// A row from the columns of [`ROW_COLUMNS`]; `assigned_user_ids` is left empty.
pub fn decode_row<R: SqlRow>(r: &R) -> Result<JobDispatchLog, R::Error> {
    Ok(JobDispatchLog {
        id: r.uuid(0)?,
        jobs_id: r.uuid(1)?,
        user_id: r.uuid(2)?,
        date_create: Timestamp::from_ticks(r.int(3)?),
        date_proceeded: Timestamp::from_ticks(r.int(4)?),
        is_accepted: r.boolean(5)?,
        is_rejected: r.boolean(6)?,
        rejected_reason: r.text(7)?,
        sys_logical_delete: r.boolean(8)?,
        is_workshop: r.boolean(9)?,
        modified_dateutc: Timestamp::from_ticks(r.int(10)?),
        sequence: r.int32(11)?,
        assigned_user_ids: String::new(),
    })
}

/// A history entry from the columns of [`HISTORY`]. A `client_at` of 0 means none was sent
/// (the database holds no NULLs).
pub fn decode_history<R: SqlRow>(r: &R) -> Result<HistoryEntry, R::Error> {
    let client_at = r.int(1)?;
    let changes = r.text(4)?;
    Ok(HistoryEntry {
        at: Timestamp::from_ticks(r.int(0)?),
        client_at: (client_at != 0).then(|| Timestamp::from_ticks(client_at)),
        actor: r.text(2)?,
        action: r.text(3)?,
        changes: serde_json::from_str(&changes).unwrap_or_default(),
    })
}

/// The columns of a user with its tenant, as [`decode_login`] reads them.
const LOGIN_COLUMNS: &str = "u.id, u.tenant_id, t.domain, u.username, u.password_hash, u.role, \
     u.user_id FROM app_user u JOIN tenant t ON t.id = u.tenant_id";

/// A user from the columns of [`LOGIN_COLUMNS`].
pub fn decode_login<R: SqlRow>(r: &R) -> Result<LoginRecord, R::Error> {
    let role = r.text(5)?;
    Ok(LoginRecord {
        login_id: r.int(0)?,
        tenant_id: r.int(1)?,
        domain: r.text(2)?,
        username: r.text(3)?,
        password_hash: r.text(4)?,
        role: role.parse().map_err(|e: String| r.invalid(5, e))?,
        user_id: r.uuid(6)?,
    })
}

/// A user by domain ($1) and name ($2).
pub fn find_login(d: Dialect) -> String {
    format!(
        "SELECT {LOGIN_COLUMNS} WHERE {} AND {}",
        name_is(d, "t.domain", "$1"),
        name_is(d, "u.username", "$2")
    )
}

/// The users of a domain ($1), or of all when it is NULL, by domain then name.
pub fn list_users(d: Dialect) -> String {
    let domain = match d {
        Dialect::Sqlite => "$1",
        Dialect::Postgres => "$1::TEXT",
    };
    format!(
        "SELECT {LOGIN_COLUMNS} WHERE {domain} IS NULL OR {}
         ORDER BY t.domain, u.username",
        name_is(d, "t.domain", domain)
    )
}

/// The user of a token (by its SHA-256, $1).
pub fn find_token(_: Dialect) -> String {
    format!("SELECT {LOGIN_COLUMNS} JOIN api_token k ON k.user_pk = u.id WHERE k.token_hash = $1")
}

/// The number the database's triggers count up at every change of stored credentials
/// (migrations `credentials_version`).
pub const CREDENTIALS_VERSION: &str = "SELECT version FROM credentials_version WHERE id = 1";

/// The tenant of domain $1 and user $2, for the statements below.
fn user_of(d: Dialect) -> String {
    format!(
        "{} AND tenant_id = (SELECT id FROM tenant WHERE {})",
        name_is(d, "username", "$2"),
        name_is(d, "domain", "$1")
    )
}

/// Sets the password hash ($3) of a user.
pub fn set_password(d: Dialect) -> String {
    format!(
        "UPDATE app_user SET password_hash = $3 WHERE {}",
        user_of(d)
    )
}

pub fn remove_user(d: Dialect) -> String {
    format!("DELETE FROM app_user WHERE {}", user_of(d))
}

/// A token (its SHA-256, $3, created at $4) for a user.
pub fn add_token(d: Dialect) -> String {
    format!(
        "INSERT INTO api_token (user_pk, token_hash, created_at)
         SELECT u.id, $3, $4 FROM app_user u JOIN tenant t ON t.id = u.tenant_id
         WHERE {} AND {}",
        name_is(d, "t.domain", "$1"),
        name_is(d, "u.username", "$2")
    )
}

pub fn revoke_tokens(d: Dialect) -> String {
    format!(
        "DELETE FROM api_token WHERE user_pk IN (
             SELECT u.id FROM app_user u JOIN tenant t ON t.id = u.tenant_id
             WHERE {} AND {})",
        name_is(d, "t.domain", "$1"),
        name_is(d, "u.username", "$2")
    )
}

/// The stamp one step of a purge stops before ($1 the purge's cutoff, $2 the rows a step
/// removes at most): that of the deleted row after the first $2 (but past the first one, so
/// that a step always removes something even where many tenants deleted at one stamp). No row
/// when at most $2 deleted rows are older than the cutoff: the step that takes them all is
/// the last.
pub fn purge_step(d: Dialect) -> String {
    let (greatest, deleted_rows) = purge_names(d);
    let deleted = is_true(d, "sys_logical_delete");
    format!(
        "SELECT {greatest}(s.modified_dateutc, f.first + 1)
         FROM (SELECT modified_dateutc FROM {deleted_rows}
               WHERE {deleted} AND modified_dateutc < $1
               ORDER BY modified_dateutc LIMIT 1 OFFSET $2) s,
              (SELECT MIN(modified_dateutc) AS first FROM {deleted_rows}
               WHERE {deleted} AND modified_dateutc < $1) f"
    )
}

/// Purge (one step of it, $1 the step's cutoff), in order: each tenant's horizon raised to the
/// newest change it forgets; the history of the rows it removes; those rows (logically deleted
/// before the cutoff); scope exits older than the cutoff. The number of rows removed is the
/// third statement's count.
///
/// The rows it may remove are found through `job_dispatch_log_deleted`, an index of deleted
/// rows only, ordered by stamp, and their history by row: the purge reads what it removes,
/// not every row older than the cutoff and every history entry (3.5 s at a million rows on
/// SQLite, every `--purge-interval`, during which no Save could commit; `bench/README.md`).
/// SQLite is told to use that index (`INDEXED BY`: with an error rather than a scan should it
/// ever not apply); PostgreSQL's planner picks it for the few rows it selects.
pub fn purge(d: Dialect) -> [String; 4] {
    let (greatest, deleted_rows) = purge_names(d);
    let deleted = is_true(d, "sys_logical_delete");
    [
        format!(
            "UPDATE tenant SET purged_through = {greatest}(purged_through, horizon.m)
             FROM (SELECT tenant_id, MAX(m) AS m FROM (
                       SELECT tenant_id, MAX(modified_dateutc) AS m FROM {deleted_rows}
                       WHERE {deleted} AND modified_dateutc < $1 GROUP BY tenant_id
                       UNION ALL
                       SELECT tenant_id, MAX(modified_dateutc) FROM scope_exit
                       WHERE modified_dateutc < $1 GROUP BY tenant_id) forgotten
                   GROUP BY tenant_id) horizon
             WHERE tenant.id = horizon.tenant_id"
        ),
        format!(
            "DELETE FROM job_dispatch_log_history WHERE (tenant_id, id) IN (
                 SELECT tenant_id, id FROM {deleted_rows}
                 WHERE {deleted} AND modified_dateutc < $1)"
        ),
        format!("DELETE FROM {deleted_rows} WHERE {deleted} AND modified_dateutc < $1"),
        "DELETE FROM scope_exit WHERE modified_dateutc < $1".to_string(),
    ]
}

/// The greater-of function, and the deleted rows' table as the purge names it.
fn purge_names(d: Dialect) -> (&'static str, &'static str) {
    match d {
        Dialect::Sqlite => (
            "MAX",
            "job_dispatch_log INDEXED BY job_dispatch_log_deleted",
        ),
        Dialect::Postgres => ("GREATEST", "job_dispatch_log"),
    }
}

/// The statements of one list page (`$count` asks for the second) and their parameters.
pub struct ListSql {
    pub rows: String,
    pub count: Option<String>,
    pub params: Vec<SqlValue>,
}

/// The column after [`ROW_COLUMNS`] in a list or feed page: the job's `assigned_user_ids`,
/// which every row of the job carries (kept by the writer), so a page is one statement and
/// looks up nothing per row.
pub const JOB_ASSIGNEES_COLUMN: &str = "j.assigned_user_ids";

/// A page of rows of the tenant (and of one technician, when given) as the OData query says:
/// filtered, ordered (always completed with `id`), `$skip` rows skipped, at most `limit`; each
/// row's job assignees follow its columns ([`JOB_ASSIGNEES_COLUMN`]).
pub fn list(
    d: Dialect,
    tenant: TenantId,
    user: Option<Uuid>,
    query: &ListQuery,
    limit: usize,
) -> ListSql {
    let mut params = vec![SqlValue::Int(tenant)];
    let mut condition = format!("tenant_id = {}", for_dialect(d, "$1"));
    if let Some(user) = user {
        params.push(SqlValue::Uuid(user));
        condition.push_str(&format!(" AND user_id = {}", for_dialect(d, "$2")));
    }
    if let Some(filter) = &query.filter {
        let fragment = filter_sql(filter, d, params.len() + 1);
        condition.push_str(" AND ");
        condition.push_str(&fragment.sql);
        params.extend(fragment.params);
    }
    let skip = i64::try_from(query.skip).unwrap_or(i64::MAX);
    ListSql {
        rows: format!(
            "SELECT {ROW_COLUMNS}, {JOB_ASSIGNEES_COLUMN} FROM job_dispatch_log j \
             WHERE {condition} ORDER BY {} LIMIT {} OFFSET {skip}",
            order_sql_for(&query.ordering(), d),
            limit as i64
        ),
        count: query
            .count
            .then(|| format!("SELECT COUNT(*) FROM job_dispatch_log WHERE {condition}")),
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_statements_take_numbered_question_marks() {
        assert_eq!(
            for_dialect(Dialect::Sqlite, SCOPE_EXIT_REMOVE),
            "DELETE FROM scope_exit WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3"
        );
        assert!(!set_password(Dialect::Postgres).contains('?'));
    }

    #[test]
    fn an_upsert_sets_every_column_but_the_key() {
        let set: Vec<&str> = UPSERT_SET
            .split(',')
            .map(|part| part.split('=').next().unwrap().trim())
            .collect();
        let columns: Vec<&str> = ROW_COLUMNS.split(", ").filter(|c| *c != "id").collect();
        assert_eq!(set, columns);
        assert_eq!(ROW_COLUMNS.split(", ").count(), ROW_COLUMN_COUNT);
    }
}
