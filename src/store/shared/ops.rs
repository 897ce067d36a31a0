//! The store's operations, written once for every engine: write jobs (run by the writer inside a
//! group's transaction) and reads (run on a read connection inside one snapshot).

use std::collections::HashMap;

use uuid::Uuid;

use super::conn::{Conn, NewHistory};
use super::writer::WriteCtx;
use crate::domain::job_dispatch_log::assigned_user_ids;
use crate::domain::workflow::{self, Decision, HistoryEntry, Reach, Refusal};
use crate::domain::{merge, JobDispatchLog, Principal, Timestamp};
use crate::query::ListQuery;
use crate::store::{
    ChangesPage, DeleteOutcome, ListPage, SaveItem, SaveOutcome, StoreError, TenantChanges,
    TenantId,
};

/// The `assigned_user_ids` texts a write job has just recomputed, by job, so that its answer
/// does not read them back.
type JobTexts = HashMap<Uuid, String>;

/// Keeps each job's `assigned_user_ids` exact after a row changed from `before` to `after`:
/// when the change can have altered a job's assignees (the row joined, left or moved within
/// one) or the row is new or moved to another job (it must carry its new job's text), the jobs
/// before and after are recomputed from their rows and stored with
/// [`super::conn::RowConn::store_job_assignees`]. Most changes (accepting, editing the reason, …) alter no
/// assignment and cost nothing here.
fn refresh_job_assignees<C: Conn>(
    conn: &mut C,
    tenant: TenantId,
    before: Option<&JobDispatchLog>,
    after: &JobDispatchLog,
    texts: &mut JobTexts,
) -> Result<(), StoreError> {
    let was = before.and_then(JobDispatchLog::assignment);
    let same_job = before.is_some_and(|b| b.jobs_id == after.jobs_id);
    if was == after.assignment() && same_job {
        return Ok(());
    }
    let left = before
        .map(|b| b.jobs_id)
        .filter(|job| *job != after.jobs_id);
    for job in [Some(after.jobs_id), left].into_iter().flatten() {
        let text = assigned_user_ids(conn.assignees(tenant, job)?);
        conn.store_job_assignees(tenant, job, &text)?;
        texts.insert(job, text);
    }
    Ok(())
}

/// Was this row ever reassigned away from the calling technician?
fn formerly_assigned<C: Conn>(
    conn: &mut C,
    caller: &Principal,
    row: &JobDispatchLog,
) -> Result<bool, StoreError> {
    if !caller.is_technician() || row.user_id == caller.user_id {
        return Ok(false);
    }
    conn.formerly_assigned(caller.tenant_id, caller.user_id, row.id)
}

/// Writes a changed row (stamped by `after.modified_dateutc`, from [`WriteCtx::peek`]) with its
/// history, its jobs' `assigned_user_ids` (recomputed into `texts`) and, when it changes hands,
/// the reassignment that tells the previous technician's feed to drop it.
fn write_change<C: Conn>(
    ctx: &mut WriteCtx<'_, C>,
    caller: &Principal,
    before: Option<&JobDispatchLog>,
    after: &JobDispatchLog,
    client_at: Option<Timestamp>,
    texts: &mut JobTexts,
) -> Result<(), StoreError> {
    let tenant = caller.tenant_id;
    ctx.conn.upsert(tenant, after)?;
    refresh_job_assignees(ctx.conn, tenant, before, after, texts)?;
    if let Some(before) = before {
        if before.user_id != after.user_id {
            ctx.conn.record_reassignment(
                tenant,
                after.id,
                before.user_id,
                after.user_id,
                after.modified_dateutc,
            )?;
        }
    }
    let (action, changes) = workflow::describe_change(before, after);
    let changes = serde_json::to_string(&changes).map_err(|e| StoreError::Internal(e.into()))?;
    ctx.conn.insert_history(&NewHistory {
        tenant,
        id: after.id,
        at: after.modified_dateutc,
        client_at,
        actor: &caller.actor(),
        action,
        changes: &changes,
    })?;
    ctx.take(tenant, after.modified_dateutc);
    Ok(())
}

/// Fills `assigned_user_ids` of each row: from `known` (just recomputed by this write job), the
/// other jobs' with one [`super::conn::RowConn::job_assignees`] call.
fn fill_assignees<'a, C: Conn>(
    conn: &mut C,
    tenant: TenantId,
    rows: impl IntoIterator<Item = &'a mut JobDispatchLog>,
    known: &JobTexts,
) -> Result<(), StoreError> {
    let rows: Vec<&mut JobDispatchLog> = rows.into_iter().collect();
    let mut missing: Vec<Uuid> = rows
        .iter()
        .map(|r| r.jobs_id)
        .filter(|job| !known.contains_key(job))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    let stored = if missing.is_empty() {
        HashMap::new()
    } else {
        conn.job_assignees(tenant, &missing)?
    };
    for row in rows {
        row.assigned_user_ids = known
            .get(&row.jobs_id)
            .or_else(|| stored.get(&row.jobs_id))
            .cloned()
            .unwrap_or_default();
    }
    Ok(())
}

/// A refusal as the caller receives it: a row it carries (the 409's or 412's `current`) is
/// shown exactly as a GET shows it, `assigned_user_ids` included (SPEC §9).
fn refusal<C: Conn>(
    conn: &mut C,
    tenant: TenantId,
    index: Option<usize>,
    mut refusal: Refusal,
) -> StoreError {
    if let Refusal::Conflict {
        current: Some(row), ..
    }
    | Refusal::PreconditionFailed { current: Some(row) } = &mut refusal
    {
        if let Err(e) = fill_assignees(conn, tenant, [&mut **row], &JobTexts::new()) {
            return e;
        }
    }
    StoreError::Refused { index, refusal }
}

/// The sequence of a job's next dispatch: one more than its highest. A job whose highest is
/// already `i32::MAX` has none left, which is a 409 rather than a second row with the same
/// sequence.
fn next_sequence<C: Conn>(
    conn: &mut C,
    tenant: TenantId,
    jobs_id: Uuid,
    index: Option<usize>,
) -> Result<i32, StoreError> {
    let next = conn.max_sequence(tenant, jobs_id)? + 1;
    i32::try_from(next).map_err(|_| StoreError::Refused {
        index,
        refusal: Refusal::Conflict {
            detail: format!(
                "Job {jobs_id} already has a dispatch with sequence {}, the highest possible; \
                 give this dispatch its sequence explicitly.",
                i32::MAX
            ),
            current: None,
        },
    })
}

pub fn save<C: Conn>(
    ctx: &mut WriteCtx<'_, C>,
    caller: &Principal,
    items: &[SaveItem],
) -> Result<Vec<SaveOutcome>, StoreError> {
    let tenant = caller.tenant_id;
    let batch = items.len() > 1;
    let mut outcomes = Vec::with_capacity(items.len());
    let mut texts = JobTexts::new();
    for (index, item) in items.iter().enumerate() {
        let draft = &item.draft;
        let index = batch.then_some(index);
        let existing = ctx.conn.select_row(tenant, draft.id)?;
        let formerly = match &existing {
            Some(row) => formerly_assigned(ctx.conn, caller, row)?,
            None => false,
        };
        // Scope and role first: a stale If-Match on another technician's row must not answer
        // with that row (SPEC §8).
        workflow::authorize_save(caller, draft, existing.as_ref(), formerly)
            .and_then(|()| workflow::check_if_match(item.if_match.as_deref(), existing.as_ref()))
            .map_err(|r| refusal(ctx.conn, tenant, index, r))?;
        let stamp = ctx.peek(tenant)?;
        let next_sequence = if existing.is_none() && draft.sequence.is_none() {
            next_sequence(ctx.conn, tenant, draft.jobs_id, index)?
        } else {
            0
        };
        let merged = merge(draft, existing.as_ref(), stamp, || next_sequence);
        if merged.changed {
            let client_at = draft
                .date_proceeded
                .filter(|_| draft.is_accepted || draft.is_rejected);
            write_change(
                ctx,
                caller,
                existing.as_ref(),
                &merged.row,
                client_at,
                &mut texts,
            )?;
        }
        outcomes.push(SaveOutcome {
            row: merged.row,
            inserted: merged.inserted,
        });
    }
    // Assignees once every row of the batch is in place.
    fill_assignees(
        ctx.conn,
        tenant,
        outcomes.iter_mut().map(|o| &mut o.row),
        &texts,
    )?;
    Ok(outcomes)
}

pub fn delete<C: Conn>(
    ctx: &mut WriteCtx<'_, C>,
    caller: &Principal,
    id: Uuid,
    if_match: Option<&str>,
) -> Result<DeleteOutcome, StoreError> {
    let Some(row) = ctx.conn.select_row(caller.tenant_id, id)? else {
        return Ok(DeleteOutcome::NotFound);
    };
    let formerly = formerly_assigned(ctx.conn, caller, &row)?;
    // Another technician's row answers exactly as an unknown id does.
    if workflow::reach(caller, &row, formerly) == Reach::Hidden {
        return Ok(DeleteOutcome::NotFound);
    }
    workflow::authorize_delete(caller, &row, formerly)
        .and_then(|()| workflow::check_if_match(if_match, Some(&row)))
        .map_err(|r| refusal(ctx.conn, caller.tenant_id, None, r))?;
    if row.sys_logical_delete {
        return Ok(DeleteOutcome::AlreadyDeleted);
    }
    let mut deleted = row.clone();
    deleted.sys_logical_delete = true;
    deleted.modified_dateutc = ctx.peek(caller.tenant_id)?;
    write_change(
        ctx,
        caller,
        Some(&row),
        &deleted,
        None,
        &mut JobTexts::new(),
    )?;
    Ok(DeleteOutcome::Deleted)
}

pub fn decide<C: Conn>(
    ctx: &mut WriteCtx<'_, C>,
    caller: &Principal,
    id: Uuid,
    decision: &Decision,
    if_match: Option<&str>,
) -> Result<JobDispatchLog, StoreError> {
    let tenant = caller.tenant_id;
    let Some(row) = ctx.conn.select_row(tenant, id)? else {
        return Err(StoreError::refused(Refusal::NotFound));
    };
    let formerly = formerly_assigned(ctx.conn, caller, &row)?;
    // If-Match only where the caller may see the row: `decide` answers the others without it.
    if workflow::reach(caller, &row, formerly) == Reach::Visible {
        workflow::check_if_match(if_match, Some(&row))
            .map_err(|r| refusal(ctx.conn, tenant, None, r))?;
    }
    let stamp = ctx.peek(tenant)?;
    let mut texts = JobTexts::new();
    let mut result = match workflow::decide(caller, &row, formerly, decision, stamp)
        .map_err(|r| refusal(ctx.conn, tenant, None, r))?
    {
        Some(next) => {
            let client_at = decision.client_time();
            write_change(ctx, caller, Some(&row), &next, client_at, &mut texts)?;
            next
        }
        None => row,
    };
    fill_assignees(ctx.conn, tenant, [&mut result], &texts)?;
    Ok(result)
}

pub fn dispatch<C: Conn>(
    ctx: &mut WriteCtx<'_, C>,
    caller: &Principal,
    jobs_id: Uuid,
    user_ids: &[Uuid],
    is_workshop: bool,
) -> Result<Vec<JobDispatchLog>, StoreError> {
    let tenant = caller.tenant_id;
    let mut assigned = ctx.conn.assignees(tenant, jobs_id)?;
    let mut texts = JobTexts::new();
    for user_id in user_ids {
        if assigned.contains(user_id) {
            continue;
        }
        let stamp = ctx.peek(tenant)?;
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
            sequence: next_sequence(ctx.conn, tenant, jobs_id, None)?,
            assigned_user_ids: String::new(),
        };
        write_change(ctx, caller, None, &row, None, &mut texts)?;
        assigned.push(*user_id);
    }
    let mut rows = ctx.conn.job_rows(tenant, jobs_id)?;
    fill_assignees(ctx.conn, tenant, &mut rows, &texts)?;
    Ok(rows)
}

/// One row as the caller may see it.
pub fn get<C: Conn>(
    conn: &mut C,
    caller: &Principal,
    id: Uuid,
) -> Result<Option<JobDispatchLog>, StoreError> {
    let Some(mut row) = conn.select_row(caller.tenant_id, id)? else {
        return Ok(None);
    };
    if caller.is_technician() && row.user_id != caller.user_id {
        return Ok(None);
    }
    fill_assignees(conn, caller.tenant_id, [&mut row], &JobTexts::new())?;
    Ok(Some(row))
}

pub fn history<C: Conn>(
    conn: &mut C,
    caller: &Principal,
    id: Uuid,
) -> Result<Option<Vec<HistoryEntry>>, StoreError> {
    let Some(row) = conn.select_row(caller.tenant_id, id)? else {
        return Ok(None);
    };
    // A row reassigned away from a technician is no longer theirs to read (SPEC §8).
    if caller.is_technician() && row.user_id != caller.user_id {
        return Ok(None);
    }
    let entries = conn.history(caller.tenant_id, id)?;
    Ok(Some(workflow::history_seen_by(caller, entries)))
}

pub fn changes<C: Conn>(
    conn: &mut C,
    caller: &Principal,
    since: Option<Timestamp>,
    limit: usize,
) -> Result<ChangesPage, StoreError> {
    let tenant = caller.tenant_id;
    if let Some(since) = since {
        if since < conn.purged_through(tenant)? {
            return Err(StoreError::CursorPurged);
        }
    }
    let after = since.map(Timestamp::ticks).unwrap_or(i64::MIN);
    let technician = caller.is_technician().then_some(caller.user_id);
    let mut rows = conn.changed_rows(tenant, technician, after, limit + 1)?;
    let mut removals = match technician {
        Some(user) => conn.scope_exits(tenant, user, after, limit + 1)?,
        None => Vec::new(),
    };
    // Merge the two streams by stamp (unique within the tenant) and keep the first `limit`.
    let total = rows.len() + removals.len();
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
    let last = rows
        .iter()
        .map(|r| r.modified_dateutc.ticks())
        .chain(removals.iter().map(|(_, t)| *t))
        .max()
        .map(Timestamp::from_ticks);
    Ok(ChangesPage {
        rows,
        removed: removals
            .into_iter()
            .map(|(id, t)| (id, Timestamp::from_ticks(t)))
            .collect(),
        last,
        has_more: total > limit,
    })
}

/// Every change of a tenant after `since`, with the reassignments away from technicians:
/// merged by stamp (unique within the tenant) and cut after `limit`, as [`changes`] does.
pub fn tenant_changes<C: Conn>(
    conn: &mut C,
    tenant: TenantId,
    since: Timestamp,
    limit: usize,
) -> Result<TenantChanges, StoreError> {
    if since < conn.purged_through(tenant)? {
        return Err(StoreError::CursorPurged);
    }
    let after = since.ticks();
    let mut rows = conn.changed_rows(tenant, None, after, limit + 1)?;
    let mut exits = conn.tenant_scope_exits(tenant, after, limit + 1)?;
    let total = rows.len() + exits.len();
    if total > limit {
        let mut stamps: Vec<i64> = rows
            .iter()
            .map(|r| r.modified_dateutc.ticks())
            .chain(exits.iter().map(|(_, _, t)| *t))
            .collect();
        stamps.sort_unstable();
        let last_kept = stamps[limit - 1];
        rows.retain(|r| r.modified_dateutc.ticks() <= last_kept);
        exits.retain(|(_, _, t)| *t <= last_kept);
    }
    let last = rows
        .iter()
        .map(|r| r.modified_dateutc.ticks())
        .chain(exits.iter().map(|(_, _, t)| *t))
        .max()
        .map(Timestamp::from_ticks);
    Ok(TenantChanges {
        rows,
        exits: exits
            .into_iter()
            .map(|(id, user, t)| (id, user, Timestamp::from_ticks(t)))
            .collect(),
        last,
        has_more: total > limit,
    })
}

pub fn list<C: Conn>(
    conn: &mut C,
    caller: &Principal,
    query: &ListQuery,
) -> Result<ListPage, StoreError> {
    let tenant = caller.tenant_id;
    let technician = caller.is_technician().then_some(caller.user_id);
    let top = query.top as usize;
    let (mut rows, count) = conn.list(tenant, technician, query, top + 1)?;
    let has_more = rows.len() > top;
    rows.truncate(top);
    Ok(ListPage {
        rows,
        count,
        has_more,
    })
}
