//! The operations of the store on a SQLite connection: write jobs (run by the writer thread
//! inside a group's transaction) and reads (run on a read connection inside one snapshot).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::rows::{self, assigned_user_ids, row_of, select_row, COLUMNS};
use super::writer::WriteCtx;
use crate::domain::workflow::{self, Decision, HistoryEntry, Refusal};
use crate::domain::{merge, JobDispatchLog, Principal, Timestamp};
use crate::store::{ChangesPage, DeleteOutcome, PurgeReport, SaveItem, SaveOutcome, StoreError};

/// Was this row ever reassigned away from the calling technician?
fn formerly_assigned(
    conn: &Connection,
    caller: &Principal,
    row: &JobDispatchLog,
) -> rusqlite::Result<bool> {
    if !caller.is_technician() || row.user_id == caller.user_id {
        return Ok(false);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM scope_exit WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3)",
    )?;
    stmt.query_row(params![caller.tenant_id, caller.user_id, row.id], |r| {
        r.get(0)
    })
}

/// Writes a changed row with its history and, when it changes hands, the scope exit that
/// tells the previous technician's feed to drop it.
fn write_change(
    ctx: &mut WriteCtx<'_>,
    caller: &Principal,
    before: Option<&JobDispatchLog>,
    after: &JobDispatchLog,
    client_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let conn = ctx.conn;
    let tenant = caller.tenant_id;
    rows::upsert(conn, tenant, after)?;
    if let Some(before) = before {
        if before.user_id != after.user_id {
            conn.prepare_cached(
                "INSERT INTO scope_exit (tenant_id, user_id, id, modified_dateutc)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, user_id, id) DO UPDATE
                 SET modified_dateutc = excluded.modified_dateutc",
            )?
            .execute(params![
                tenant,
                before.user_id,
                after.id,
                after.modified_dateutc.ticks()
            ])?;
            conn.prepare_cached(
                "DELETE FROM scope_exit WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3",
            )?
            .execute(params![tenant, after.user_id, after.id])?;
        }
    }
    let (action, changes) = workflow::describe_change(before, after);
    let changes = serde_json::to_string(&changes).map_err(|e| StoreError::Internal(e.into()))?;
    conn.prepare_cached(
        "INSERT INTO job_dispatch_log_history (tenant_id, id, at, client_at, actor, action, changes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        tenant,
        after.id,
        after.modified_dateutc.ticks(),
        client_at.map(Timestamp::ticks).unwrap_or(0),
        caller.actor(),
        action,
        changes
    ])?;
    ctx.clock.take(after.modified_dateutc);
    Ok(())
}

/// Fills `assigned_user_ids` of each row, one query per job.
fn fill_assignees(
    conn: &Connection,
    tenant: i64,
    rows: &mut [JobDispatchLog],
) -> rusqlite::Result<()> {
    let mut by_job: HashMap<Uuid, String> = HashMap::new();
    for row in rows {
        if let Some(ids) = by_job.get(&row.jobs_id) {
            row.assigned_user_ids = ids.clone();
        } else {
            let ids = assigned_user_ids(conn, tenant, row.jobs_id)?;
            by_job.insert(row.jobs_id, ids.clone());
            row.assigned_user_ids = ids;
        }
    }
    Ok(())
}

pub fn save(
    ctx: &mut WriteCtx<'_>,
    caller: &Principal,
    items: &[SaveItem],
) -> Result<Vec<SaveOutcome>, StoreError> {
    let tenant = caller.tenant_id;
    let batch = items.len() > 1;
    let mut outcomes = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let conn = ctx.conn;
        let draft = &item.draft;
        let refused = |refusal| StoreError::Refused {
            index: batch.then_some(index),
            refusal,
        };
        let existing = select_row(conn, tenant, draft.id)?;
        let formerly = match &existing {
            Some(row) => formerly_assigned(conn, caller, row)?,
            None => false,
        };
        workflow::check_if_match(item.if_match.as_deref(), existing.as_ref()).map_err(refused)?;
        workflow::authorize_save(caller, draft, existing.as_ref(), formerly).map_err(refused)?;
        let stamp = ctx.clock.peek();
        let mut sequence_error = None;
        let merged = merge(draft, existing.as_ref(), stamp, || {
            rows::next_sequence(conn, tenant, draft.jobs_id).unwrap_or_else(|e| {
                sequence_error = Some(e);
                0
            })
        });
        if let Some(e) = sequence_error {
            return Err(e.into());
        }
        if merged.changed {
            let client_at = draft
                .date_proceeded
                .filter(|_| draft.is_accepted || draft.is_rejected);
            write_change(ctx, caller, existing.as_ref(), &merged.row, client_at)?;
        }
        outcomes.push(SaveOutcome {
            row: merged.row,
            inserted: merged.inserted,
        });
    }
    // Assignees once every row of the batch is in place.
    for outcome in &mut outcomes {
        outcome.row.assigned_user_ids = assigned_user_ids(ctx.conn, tenant, outcome.row.jobs_id)?;
    }
    Ok(outcomes)
}

pub fn delete(
    ctx: &mut WriteCtx<'_>,
    caller: &Principal,
    id: Uuid,
    if_match: Option<&str>,
) -> Result<DeleteOutcome, StoreError> {
    let Some(row) = select_row(ctx.conn, caller.tenant_id, id)? else {
        return Ok(DeleteOutcome::NotFound);
    };
    let formerly = formerly_assigned(ctx.conn, caller, &row)?;
    workflow::authorize_delete(caller, &row, formerly).map_err(StoreError::refused)?;
    workflow::check_if_match(if_match, Some(&row)).map_err(StoreError::refused)?;
    if row.sys_logical_delete {
        return Ok(DeleteOutcome::AlreadyDeleted);
    }
    let mut deleted = row.clone();
    deleted.sys_logical_delete = true;
    deleted.modified_dateutc = ctx.clock.peek();
    write_change(ctx, caller, Some(&row), &deleted, None)?;
    Ok(DeleteOutcome::Deleted)
}

pub fn decide(
    ctx: &mut WriteCtx<'_>,
    caller: &Principal,
    id: Uuid,
    decision: &Decision,
    if_match: Option<&str>,
) -> Result<JobDispatchLog, StoreError> {
    let tenant = caller.tenant_id;
    let Some(row) = select_row(ctx.conn, tenant, id)? else {
        return Err(StoreError::refused(Refusal::NotFound));
    };
    let formerly = formerly_assigned(ctx.conn, caller, &row)?;
    if workflow::reach(caller, &row, formerly) != workflow::Reach::Hidden {
        workflow::check_if_match(if_match, Some(&row)).map_err(StoreError::refused)?;
    }
    let stamp = ctx.clock.peek();
    let mut result = match workflow::decide(caller, &row, formerly, decision, stamp)
        .map_err(StoreError::refused)?
    {
        Some(next) => {
            write_change(ctx, caller, Some(&row), &next, decision.client_time())?;
            next
        }
        None => row,
    };
    result.assigned_user_ids = assigned_user_ids(ctx.conn, tenant, result.jobs_id)?;
    Ok(result)
}

fn job_rows(
    conn: &Connection,
    tenant: i64,
    jobs_id: Uuid,
) -> rusqlite::Result<Vec<JobDispatchLog>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM job_dispatch_log WHERE tenant_id = ?1 AND jobs_id = ?2
         ORDER BY sequence, user_id"
    ))?;
    let rows = stmt
        .query_map(params![tenant, jobs_id], row_of)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn dispatch(
    ctx: &mut WriteCtx<'_>,
    caller: &Principal,
    jobs_id: Uuid,
    user_ids: &[Uuid],
    is_workshop: bool,
) -> Result<Vec<JobDispatchLog>, StoreError> {
    let tenant = caller.tenant_id;
    let existing = job_rows(ctx.conn, tenant, jobs_id)?;
    let mut assigned: Vec<Uuid> = existing
        .iter()
        .filter(|r| !r.sys_logical_delete && !r.is_rejected)
        .map(|r| r.user_id)
        .collect();
    for user_id in user_ids {
        if assigned.contains(user_id) {
            continue;
        }
        let stamp = ctx.clock.peek();
        let row = JobDispatchLog {
            id: Uuid::new_v4(),
            jobs_id,
            user_id: *user_id,
            date_create: stamp,
            date_proceeded: Timestamp::UNSET_PROCEEDED,
            is_accepted: false,
            is_rejected: false,
            rejected_reason: String::new(),
            sys_logical_delete: false,
            is_workshop,
            modified_dateutc: stamp,
            sequence: rows::next_sequence(ctx.conn, tenant, jobs_id)?,
            assigned_user_ids: String::new(),
        };
        write_change(ctx, caller, None, &row, None)?;
        assigned.push(*user_id);
    }
    let mut rows = job_rows(ctx.conn, tenant, jobs_id)?;
    fill_assignees(ctx.conn, tenant, &mut rows)?;
    Ok(rows)
}

pub fn purge(ctx: &mut WriteCtx<'_>, cutoff: Timestamp) -> Result<PurgeReport, StoreError> {
    let conn = ctx.conn;
    // Raise each tenant's horizon to the newest change this purge forgets.
    conn.execute(
        "UPDATE tenant SET purged_through = MAX(purged_through, COALESCE((
             SELECT MAX(m) FROM (
                 SELECT MAX(modified_dateutc) AS m FROM job_dispatch_log
                 WHERE tenant_id = tenant.id AND sys_logical_delete = 1 AND modified_dateutc < ?1
                 UNION ALL
                 SELECT MAX(modified_dateutc) FROM scope_exit
                 WHERE tenant_id = tenant.id AND modified_dateutc < ?1)), 0))",
        [cutoff.ticks()],
    )?;
    conn.execute(
        "DELETE FROM job_dispatch_log_history WHERE EXISTS (
             SELECT 1 FROM job_dispatch_log d
             WHERE d.tenant_id = job_dispatch_log_history.tenant_id
               AND d.id = job_dispatch_log_history.id
               AND d.sys_logical_delete = 1 AND d.modified_dateutc < ?1)",
        [cutoff.ticks()],
    )?;
    let rows = conn.execute(
        "DELETE FROM job_dispatch_log WHERE sys_logical_delete = 1 AND modified_dateutc < ?1",
        [cutoff.ticks()],
    )?;
    conn.execute(
        "DELETE FROM scope_exit WHERE modified_dateutc < ?1",
        [cutoff.ticks()],
    )?;
    Ok(PurgeReport { rows: rows as u64 })
}

/// Runs `f` inside one read transaction, so that every query sees the same snapshot.
pub fn in_snapshot<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN")?;
    let result = f(conn);
    let _ = conn.execute_batch("COMMIT");
    result
}

/// One row as the caller may see it.
pub fn get(
    conn: &Connection,
    caller: &Principal,
    id: Uuid,
) -> Result<Option<JobDispatchLog>, StoreError> {
    let Some(mut row) = select_row(conn, caller.tenant_id, id)? else {
        return Ok(None);
    };
    if caller.is_technician() && row.user_id != caller.user_id {
        return Ok(None);
    }
    row.assigned_user_ids = assigned_user_ids(conn, caller.tenant_id, row.jobs_id)?;
    Ok(Some(row))
}

pub fn history(
    conn: &Connection,
    caller: &Principal,
    id: Uuid,
) -> Result<Option<Vec<HistoryEntry>>, StoreError> {
    let Some(row) = select_row(conn, caller.tenant_id, id)? else {
        return Ok(None);
    };
    if workflow::reach(caller, &row, formerly_assigned(conn, caller, &row)?)
        == workflow::Reach::Hidden
    {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT at, client_at, actor, action, changes FROM job_dispatch_log_history
         WHERE tenant_id = ?1 AND id = ?2 ORDER BY seq",
    )?;
    let entries = stmt
        .query_map(params![caller.tenant_id, id], |r| {
            let client_at: i64 = r.get(1)?;
            let changes: String = r.get(4)?;
            Ok(HistoryEntry {
                at: Timestamp::from_ticks(r.get(0)?),
                client_at: (client_at != 0).then(|| Timestamp::from_ticks(client_at)),
                actor: r.get(2)?,
                action: r.get(3)?,
                changes: serde_json::from_str(&changes).unwrap_or_default(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(entries))
}

pub fn changes(
    conn: &Connection,
    caller: &Principal,
    since: Option<Timestamp>,
    limit: usize,
) -> Result<ChangesPage, StoreError> {
    let tenant = caller.tenant_id;
    let purged_through: i64 = conn
        .prepare_cached("SELECT purged_through FROM tenant WHERE id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if let Some(since) = since {
        if since.ticks() < purged_through {
            return Err(StoreError::CursorPurged);
        }
    }
    let after = since.map(Timestamp::ticks).unwrap_or(i64::MIN);
    let fetch = (limit + 1) as i64;
    let mut rows: Vec<JobDispatchLog> = if caller.is_technician() {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM job_dispatch_log
             WHERE tenant_id = ?1 AND user_id = ?2 AND modified_dateutc > ?3
             ORDER BY modified_dateutc LIMIT ?4"
        ))?;
        let rows = stmt
            .query_map(params![tenant, caller.user_id, after, fetch], row_of)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows
    } else {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM job_dispatch_log
             WHERE tenant_id = ?1 AND modified_dateutc > ?2
             ORDER BY modified_dateutc LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(params![tenant, after, fetch], row_of)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows
    };
    let mut removals: Vec<(Uuid, i64)> = if caller.is_technician() {
        let mut stmt = conn.prepare_cached(
            "SELECT id, modified_dateutc FROM scope_exit
             WHERE tenant_id = ?1 AND user_id = ?2 AND modified_dateutc > ?3
             ORDER BY modified_dateutc LIMIT ?4",
        )?;
        let removals = stmt
            .query_map(params![tenant, caller.user_id, after, fetch], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        removals
    } else {
        Vec::new()
    };
    // Merge the two streams by stamp and keep the first `limit` changes.
    let total = rows.len() + removals.len();
    let mut page = ChangesPage {
        has_more: total > limit,
        ..ChangesPage::default()
    };
    if total > limit {
        let mut stamps: Vec<i64> = rows
            .iter()
            .map(|r| r.modified_dateutc.ticks())
            .chain(removals.iter().map(|(_, t)| *t))
            .collect();
        stamps.sort_unstable();
        let last_kept = stamps[limit - 1];
        rows.retain(|r| r.modified_dateutc.ticks() <= last_kept);
        removals.retain(|(_, t)| *t <= last_kept);
    }
    page.last = rows
        .iter()
        .map(|r| r.modified_dateutc.ticks())
        .chain(removals.iter().map(|(_, t)| *t))
        .max()
        .map(Timestamp::from_ticks);
    fill_assignees(conn, tenant, &mut rows)?;
    page.rows = rows;
    page.removed = removals.into_iter().map(|(id, _)| id).collect();
    Ok(page)
}
