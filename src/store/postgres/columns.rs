//! The group's writes as one array per column: the flush sends every upsert and history entry
//! of a group in one statement over `unnest`.

use uuid::Uuid;

use super::group::PendingHistory;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::store::TenantId;

/// Rows to upsert, as one array per column.
#[derive(Default)]
pub(super) struct RowColumns<'a> {
    pub(super) tenant: Vec<i64>,
    pub(super) id: Vec<Uuid>,
    pub(super) jobs_id: Vec<Uuid>,
    pub(super) user_id: Vec<Uuid>,
    pub(super) date_create: Vec<i64>,
    pub(super) date_proceeded: Vec<i64>,
    pub(super) is_accepted: Vec<bool>,
    pub(super) is_rejected: Vec<bool>,
    pub(super) rejected_reason: Vec<&'a str>,
    pub(super) sys_logical_delete: Vec<bool>,
    pub(super) is_workshop: Vec<bool>,
    pub(super) modified_dateutc: Vec<i64>,
    pub(super) sequence: Vec<i32>,
    pub(super) assigned_user_ids: Vec<&'a str>,
}

impl<'a> RowColumns<'a> {
    /// A row to upsert, with its job's text for when it is new.
    pub(super) fn push(&mut self, tenant: TenantId, row: &'a JobDispatchLog, job_text: &'a str) {
        self.tenant.push(tenant);
        self.id.push(row.id);
        self.jobs_id.push(row.jobs_id);
        self.user_id.push(row.user_id);
        self.date_create.push(row.date_create.ticks());
        self.date_proceeded.push(row.date_proceeded.ticks());
        self.is_accepted.push(row.is_accepted);
        self.is_rejected.push(row.is_rejected);
        self.rejected_reason.push(&row.rejected_reason);
        self.sys_logical_delete.push(row.sys_logical_delete);
        self.is_workshop.push(row.is_workshop);
        self.modified_dateutc.push(row.modified_dateutc.ticks());
        self.sequence.push(row.sequence);
        self.assigned_user_ids.push(job_text);
    }
}

/// History entries to insert, as one array per column.
#[derive(Default)]
pub(super) struct HistoryColumns<'a> {
    pub(super) tenant: Vec<i64>,
    pub(super) id: Vec<Uuid>,
    pub(super) at: Vec<i64>,
    pub(super) client_at: Vec<i64>,
    pub(super) actor: Vec<&'a str>,
    pub(super) action: Vec<&'a str>,
    pub(super) changes: Vec<&'a str>,
}

impl<'a> HistoryColumns<'a> {
    pub(super) fn push(&mut self, e: &'a PendingHistory) {
        self.tenant.push(e.tenant);
        self.id.push(e.id);
        self.at.push(e.at.ticks());
        self.client_at
            .push(e.client_at.map(Timestamp::ticks).unwrap_or(0));
        self.actor.push(&e.actor);
        self.action.push(&e.action);
        self.changes.push(&e.changes);
    }
}
