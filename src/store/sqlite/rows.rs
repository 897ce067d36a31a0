//! Reading and writing `job_dispatch_log` rows on a SQLite connection.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use crate::domain::job_dispatch_log::assigned_user_ids as join_assignees;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::store::TenantId;

/// The stored columns, in the order [`row_of`] reads them.
pub const COLUMNS: &str = "id, jobs_id, user_id, date_create, date_proceeded, is_accepted, \
     is_rejected, rejected_reason, sys_logical_delete, is_workshop, modified_dateutc, sequence";

/// A row from the columns of [`COLUMNS`]; `assigned_user_ids` is left empty.
pub fn row_of(r: &Row<'_>) -> rusqlite::Result<JobDispatchLog> {
    Ok(JobDispatchLog {
        id: r.get(0)?,
        jobs_id: r.get(1)?,
        user_id: r.get(2)?,
        date_create: Timestamp::from_ticks(r.get(3)?),
        date_proceeded: Timestamp::from_ticks(r.get(4)?),
        is_accepted: r.get(5)?,
        is_rejected: r.get(6)?,
        rejected_reason: r.get(7)?,
        sys_logical_delete: r.get(8)?,
        is_workshop: r.get(9)?,
        modified_dateutc: Timestamp::from_ticks(r.get(10)?),
        sequence: r.get(11)?,
        assigned_user_ids: String::new(),
    })
}

pub fn select_row(
    conn: &Connection,
    tenant: TenantId,
    id: Uuid,
) -> rusqlite::Result<Option<JobDispatchLog>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM job_dispatch_log WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    stmt.query_row(params![tenant, id], row_of).optional()
}

/// One more than the highest sequence of the job (1 for a new job).
pub fn next_sequence(conn: &Connection, tenant: TenantId, jobs_id: Uuid) -> rusqlite::Result<i32> {
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(MAX(sequence), 0) FROM job_dispatch_log
         WHERE tenant_id = ?1 AND jobs_id = ?2",
    )?;
    let max: i64 = stmt.query_row(params![tenant, jobs_id], |r| r.get(0))?;
    Ok(i32::try_from(max + 1).unwrap_or(i32::MAX))
}

/// The job's current assignees: rows neither deleted nor rejected, by sequence then user.
pub fn assigned_user_ids(
    conn: &Connection,
    tenant: TenantId,
    jobs_id: Uuid,
) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM job_dispatch_log
         WHERE tenant_id = ?1 AND jobs_id = ?2 AND sys_logical_delete = 0 AND is_rejected = 0
         ORDER BY sequence, user_id",
    )?;
    let ids = stmt
        .query_map(params![tenant, jobs_id], |r| r.get::<_, Uuid>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(join_assignees(ids))
}

pub fn upsert(conn: &Connection, tenant: TenantId, row: &JobDispatchLog) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
             date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete,
             is_workshop, modified_dateutc, sequence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (tenant_id, id) DO UPDATE SET
             jobs_id = excluded.jobs_id, user_id = excluded.user_id,
             date_create = excluded.date_create, date_proceeded = excluded.date_proceeded,
             is_accepted = excluded.is_accepted, is_rejected = excluded.is_rejected,
             rejected_reason = excluded.rejected_reason,
             sys_logical_delete = excluded.sys_logical_delete,
             is_workshop = excluded.is_workshop, modified_dateutc = excluded.modified_dateutc,
             sequence = excluded.sequence",
    )?;
    stmt.execute(params![
        tenant,
        row.id,
        row.jobs_id,
        row.user_id,
        row.date_create.ticks(),
        row.date_proceeded.ticks(),
        row.is_accepted,
        row.is_rejected,
        row.rejected_reason,
        row.sys_logical_delete,
        row.is_workshop,
        row.modified_dateutc.ticks(),
        row.sequence,
    ])?;
    Ok(())
}
