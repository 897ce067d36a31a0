//! What the PostgreSQL writer knows during one write group: the rows the group's jobs read
//! (loaded with one query when the group starts), the writes the jobs made and that are not
//! sent yet, and how to undo the running job.
//!
//! A round trip to the server costs far more than the work a Save asks of it, so the writer
//! does not send each statement as a job makes it. Writes are kept here and sent together —
//! once per group, just before the commit — and reads of the rows loaded are answered from
//! here, with every write of the group applied. A read this cannot answer goes to the server,
//! after the writes it depends on have been sent.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::domain::{JobDispatchLog, Timestamp};
use crate::store::TenantId;

type Key = (TenantId, Uuid);

/// One history entry, owned until it is sent.
pub struct PendingHistory {
    pub tenant: TenantId,
    pub id: Uuid,
    pub at: Timestamp,
    pub client_at: Option<Timestamp>,
    pub actor: String,
    pub action: String,
    pub changes: String,
}

/// A write made by a job and not sent yet.
pub enum Pending {
    Upsert(TenantId, JobDispatchLog),
    History(PendingHistory),
    Reassignment {
        tenant: TenantId,
        id: Uuid,
        from: Uuid,
        to: Uuid,
        stamp: Timestamp,
    },
    /// A job's new `assigned_user_ids`, for every row of the job.
    JobText {
        tenant: TenantId,
        jobs_id: Uuid,
        text: String,
    },
}

/// How to put back what the running job changed in what the group knows.
enum Undo {
    Row(Key, Option<Option<JobDispatchLog>>),
    Job(Key, Option<Vec<Uuid>>),
}

#[derive(Default)]
pub struct Group {
    /// Rows in their current state within the group: `Some(None)` is a row known not to exist.
    rows: HashMap<Key, Option<JobDispatchLog>>,
    /// The ids of every row of a job loaded whole (each of them is in `rows`).
    jobs: HashMap<Key, Vec<Uuid>>,
    pending: Vec<Pending>,
    /// Rows, jobs and scope exits that pending writes change: a server read of one of them
    /// must wait until the writes are sent.
    dirty_rows: HashSet<Key>,
    dirty_jobs: HashSet<Key>,
    dirty_exits: HashSet<Key>,
    /// A pending write moved a row out of a job that is not known (its earlier state was not
    /// loaded): every server read of a job must wait until the writes are sent.
    unknown_moves: bool,
    /// Where the running job's writes start in `pending`; None between jobs.
    job_mark: Option<usize>,
    undo: Vec<Undo>,
    /// The running job's writes were sent inside a server savepoint.
    job_savepoint: bool,
}

impl Group {
    /// Takes in the rows loaded for the group: every row of `jobs`, plus `ids` that are known
    /// not to exist when they are not among `found`.
    pub fn load(
        &mut self,
        tenant: TenantId,
        ids: &[Uuid],
        jobs: &[Uuid],
        found: Vec<JobDispatchLog>,
    ) {
        for job in jobs {
            self.jobs.entry((tenant, *job)).or_default();
        }
        for row in found {
            let job = self.jobs.entry((tenant, row.jobs_id)).or_default();
            if !job.contains(&row.id) {
                job.push(row.id);
            }
            self.rows.insert((tenant, row.id), Some(row));
        }
        for id in ids {
            self.rows.entry((tenant, *id)).or_insert(None);
        }
    }

    /// The row as the group knows it: `None` when it was not loaded.
    pub fn row(&self, tenant: TenantId, id: Uuid) -> Option<Option<JobDispatchLog>> {
        self.rows.get(&(tenant, id)).cloned()
    }

    /// Every row of a job loaded whole, by sequence then user_id.
    pub fn job_rows(&self, tenant: TenantId, jobs_id: Uuid) -> Option<Vec<JobDispatchLog>> {
        let ids = self.jobs.get(&(tenant, jobs_id))?;
        let mut rows: Vec<JobDispatchLog> = ids
            .iter()
            .filter_map(|id| self.rows.get(&(tenant, *id)).cloned().flatten())
            .collect();
        rows.sort_by_key(|r| (r.sequence, r.user_id));
        Some(rows)
    }

    /// The highest sequence of a job loaded whole (0 for none).
    pub fn max_sequence(&self, tenant: TenantId, jobs_id: Uuid) -> Option<i32> {
        let ids = self.jobs.get(&(tenant, jobs_id))?;
        Some(
            ids.iter()
                .filter_map(|id| self.rows.get(&(tenant, *id)).and_then(Option::as_ref))
                .map(|r| r.sequence)
                .max()
                .unwrap_or(0),
        )
    }

    /// The current assignees of a job loaded whole: neither deleted nor rejected, by sequence
    /// then user_id.
    pub fn assignees(&self, tenant: TenantId, jobs_id: Uuid) -> Option<Vec<Uuid>> {
        let rows = self.job_rows(tenant, jobs_id)?;
        Some(
            rows.into_iter()
                .filter(|r| !r.sys_logical_delete && !r.is_rejected)
                .map(|r| r.user_id)
                .collect(),
        )
    }

    /// Must the pending writes be sent before the server is asked about this job?
    pub fn job_dirty(&self, tenant: TenantId, jobs_id: Uuid) -> bool {
        self.unknown_moves || self.dirty_jobs.contains(&(tenant, jobs_id))
    }

    /// Must the pending writes be sent before the server is asked about this row's scope exits?
    pub fn exits_dirty(&self, tenant: TenantId, id: Uuid) -> bool {
        self.dirty_exits.contains(&(tenant, id))
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn set_row(&mut self, key: Key, value: Option<JobDispatchLog>) {
        let before = self.rows.insert(key, value);
        if self.job_mark.is_some() {
            self.undo.push(Undo::Row(key, before));
        }
    }

    fn edit_job(&mut self, key: Key, edit: impl FnOnce(&mut Vec<Uuid>)) {
        if let Some(ids) = self.jobs.get_mut(&key) {
            if self.job_mark.is_some() {
                self.undo.push(Undo::Job(key, Some(ids.clone())));
            }
            edit(ids);
        }
    }

    /// Keeps a row's new state, to be written.
    pub fn upsert(&mut self, tenant: TenantId, row: JobDispatchLog) {
        let key = (tenant, row.id);
        match self.rows.get(&key) {
            Some(Some(old)) if old.jobs_id != row.jobs_id => {
                let old_job = (tenant, old.jobs_id);
                self.dirty_jobs.insert(old_job);
                self.edit_job(old_job, |ids| ids.retain(|id| *id != row.id));
            }
            Some(_) => {}
            None => self.unknown_moves = true,
        }
        let job = (tenant, row.jobs_id);
        self.dirty_jobs.insert(job);
        self.dirty_rows.insert(key);
        let id = row.id;
        self.edit_job(job, |ids| {
            if !ids.contains(&id) {
                ids.push(id);
            }
        });
        self.set_row(key, Some(row.clone()));
        self.pending.push(Pending::Upsert(tenant, row));
    }

    /// Keeps a job's new `assigned_user_ids` ([`Pending::JobText`]), to be written. Reads of
    /// the writer never read the text back from the rows (the jobs' texts are derived from
    /// the rows the group knows), so it dirties nothing.
    pub fn store_job_text(&mut self, write: Pending) {
        self.pending.push(write);
    }

    pub fn insert_history(&mut self, entry: PendingHistory) {
        self.pending.push(Pending::History(entry));
    }

    pub fn record_reassignment(
        &mut self,
        tenant: TenantId,
        id: Uuid,
        from: Uuid,
        to: Uuid,
        stamp: Timestamp,
    ) {
        self.dirty_exits.insert((tenant, id));
        self.pending.push(Pending::Reassignment {
            tenant,
            id,
            from,
            to,
            stamp,
        });
    }

    /// Forgets every row and job loaded (after a statement changed rows behind the group's
    /// back, such as a purge); reads then go to the server.
    pub fn forget_rows(&mut self) {
        self.rows.clear();
        self.jobs.clear();
    }

    pub fn job_begin(&mut self) {
        self.job_mark = Some(self.pending.len());
        self.undo.clear();
        self.job_savepoint = false;
    }

    /// Ends the running job. Answers whether a server savepoint was opened for it, which the
    /// caller must release (kept) or roll back to (undone).
    pub fn job_end(&mut self, keep: bool) -> bool {
        let mark = self.job_mark.take().unwrap_or(self.pending.len());
        if !keep {
            self.pending.truncate(mark);
            while let Some(undo) = self.undo.pop() {
                match undo {
                    Undo::Row(key, Some(value)) => {
                        self.rows.insert(key, value);
                    }
                    Undo::Row(key, None) => {
                        self.rows.remove(&key);
                    }
                    Undo::Job(key, Some(ids)) => {
                        self.jobs.insert(key, ids);
                    }
                    Undo::Job(key, None) => {
                        self.jobs.remove(&key);
                    }
                }
            }
        }
        self.undo.clear();
        std::mem::take(&mut self.job_savepoint)
    }

    /// Takes the pending writes to send: first those of the jobs already ended (to send
    /// outside any savepoint), then those of the running job (to send inside its savepoint,
    /// which the caller opens when the second part is not empty and
    /// [`Group::job_savepoint_open`] is false).
    pub fn take_pending(&mut self) -> (Vec<Pending>, Vec<Pending>) {
        let running = match self.job_mark {
            Some(mark) if mark < self.pending.len() => self.pending.split_off(mark),
            _ => Vec::new(),
        };
        if self.job_mark.is_some() {
            self.job_mark = Some(0);
        }
        self.dirty_rows.clear();
        self.dirty_jobs.clear();
        self.dirty_exits.clear();
        self.unknown_moves = false;
        (std::mem::take(&mut self.pending), running)
    }

    /// Must the running job's writes be sent inside a savepoint of their own (a job is running
    /// and none was opened yet)?
    pub fn needs_job_savepoint(&self) -> bool {
        self.job_mark.is_some() && !self.job_savepoint
    }

    pub fn job_savepoint_open(&mut self) {
        self.job_savepoint = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u128, job: u128, user: u128, sequence: i32) -> JobDispatchLog {
        JobDispatchLog {
            id: Uuid::from_u128(id),
            jobs_id: Uuid::from_u128(job),
            user_id: Uuid::from_u128(user),
            date_create: Timestamp::from_ticks(1),
            date_proceeded: Timestamp::UNSET_PROCEEDED,
            is_accepted: false,
            is_rejected: false,
            rejected_reason: String::new(),
            sys_logical_delete: false,
            is_workshop: false,
            modified_dateutc: Timestamp::from_ticks(id as i64),
            sequence,
            assigned_user_ids: String::new(),
        }
    }

    #[test]
    fn answers_loaded_jobs_with_the_group_writes_applied() {
        let mut g = Group::default();
        g.load(
            1,
            &[Uuid::from_u128(9)],
            &[Uuid::from_u128(100)],
            vec![row(1, 100, 5, 1)],
        );
        assert_eq!(g.row(1, Uuid::from_u128(9)), Some(None));
        assert_eq!(g.row(1, Uuid::from_u128(8)), None);
        assert_eq!(g.max_sequence(1, Uuid::from_u128(100)), Some(1));
        g.job_begin();
        g.upsert(1, row(9, 100, 3, 2));
        assert!(!g.job_end(true));
        assert_eq!(g.max_sequence(1, Uuid::from_u128(100)), Some(2));
        assert_eq!(
            g.assignees(1, Uuid::from_u128(100)),
            Some(vec![Uuid::from_u128(5), Uuid::from_u128(3)])
        );
        // A job that moves a row to another job, then is undone, leaves both jobs as they were.
        g.job_begin();
        g.upsert(1, row(1, 200, 5, 1));
        assert_eq!(
            g.assignees(1, Uuid::from_u128(100)),
            Some(vec![Uuid::from_u128(3)])
        );
        g.job_end(false);
        assert_eq!(
            g.assignees(1, Uuid::from_u128(100)),
            Some(vec![Uuid::from_u128(5), Uuid::from_u128(3)])
        );
        assert_eq!(
            g.row(1, Uuid::from_u128(1)).flatten().unwrap().jobs_id,
            Uuid::from_u128(100)
        );
        let (ended, running) = g.take_pending();
        assert_eq!(ended.len(), 1);
        assert!(running.is_empty());
    }

    #[test]
    fn splits_the_running_job_from_the_ended_ones() {
        let mut g = Group::default();
        g.load(1, &[], &[Uuid::from_u128(100)], Vec::new());
        g.job_begin();
        g.upsert(1, row(1, 100, 5, 1));
        g.job_end(true);
        g.job_begin();
        g.upsert(1, row(2, 100, 6, 2));
        assert!(g.needs_job_savepoint());
        let (ended, running) = g.take_pending();
        assert_eq!((ended.len(), running.len()), (1, 1));
        g.job_savepoint_open();
        g.upsert(1, row(3, 100, 7, 3));
        // Undone: the savepoint must be rolled back, and nothing of the job stays pending.
        assert!(g.job_end(false));
        assert!(!g.has_pending());
        assert_eq!(g.max_sequence(1, Uuid::from_u128(100)), Some(1));
    }

    #[test]
    fn a_row_not_loaded_makes_every_job_read_wait_for_the_writes() {
        let mut g = Group::default();
        assert!(!g.job_dirty(1, Uuid::from_u128(300)));
        g.upsert(1, row(1, 100, 5, 1));
        assert!(g.job_dirty(1, Uuid::from_u128(300)));
        g.take_pending();
        assert!(!g.job_dirty(1, Uuid::from_u128(300)));
    }
}
