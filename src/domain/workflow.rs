//! The dispatch workflow: who may change a row, accept and reject, `If-Match`, and what a
//! change means for the row's history.
//!
//! Technicians decide offline and sync hours later while dispatchers keep re-planning, so every
//! rule here is evaluated inside the write transaction against the row as it stands, never
//! against what the client last saw.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::fields::Field;
use super::job_dispatch_log::{
    check_text, DispatchDraft, JobDispatchLog, RawRecord, Reader, ValidationErrors,
};
use super::timestamp::Timestamp;
use super::user::Principal;

/// Why a write was refused, with what the client needs to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 404: no such row in the caller's view.
    NotFound,
    /// 403: the caller may not do this; the text names the field or action.
    Forbidden(String),
    /// 409: the row's state forbids it; carries the row as it stands when the caller may see
    /// it (not when it was reassigned away from the calling technician).
    Conflict {
        detail: String,
        current: Option<Box<JobDispatchLog>>,
    },
    /// 412: `If-Match` does not match; carries the row as it stands (none when it does not exist).
    PreconditionFailed {
        current: Option<Box<JobDispatchLog>>,
    },
}

/// How the caller relates to an existing row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Dispatchers and admins, or the technician the row is assigned to.
    Visible,
    /// A technician whose row was reassigned to someone else: stale offline writes get a 409.
    FormerlyAssigned,
    /// Another technician's row: as if it did not exist.
    Hidden,
}

/// How `caller` sees `row`; `formerly_assigned` tells whether the row was ever reassigned away
/// from the caller.
pub fn reach(caller: &Principal, row: &JobDispatchLog, formerly_assigned: bool) -> Reach {
    if !caller.is_technician() || row.user_id == caller.user_id {
        Reach::Visible
    } else if formerly_assigned {
        Reach::FormerlyAssigned
    } else {
        Reach::Hidden
    }
}

/// Checks `If-Match` (a list of entity tags, or `*`) against the row as it stands.
pub fn check_if_match(
    if_match: Option<&str>,
    current: Option<&JobDispatchLog>,
) -> Result<(), Refusal> {
    let Some(if_match) = if_match else {
        return Ok(());
    };
    let matches = match current {
        None => false,
        Some(row) => {
            let etag = row.etag();
            if_match.split(',').map(str::trim).any(|tag| {
                tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag.as_str())
            })
        }
    };
    if matches {
        Ok(())
    } else {
        Err(Refusal::PreconditionFailed {
            current: current.cloned().map(Box::new),
        })
    }
}

/// The fields a technician may not change on their own rows.
const TECHNICIAN_FIXED: [Field; 5] = [
    Field::JobsId,
    Field::UserId,
    Field::IsWorkshop,
    Field::Sequence,
    Field::SysLogicalDelete,
];

/// May `caller` save `draft` over `existing`? (Role rules of SPEC §8 and stale offline writes
/// of SPEC §9; the field rules were checked when the draft was built.)
pub fn authorize_save(
    caller: &Principal,
    draft: &DispatchDraft,
    existing: Option<&JobDispatchLog>,
    formerly_assigned: bool,
) -> Result<(), Refusal> {
    if !caller.is_technician() {
        return Ok(());
    }
    let Some(row) = existing else {
        return Err(Refusal::Forbidden(
            "a technician cannot create dispatches; ask a dispatcher".into(),
        ));
    };
    match reach(caller, row, formerly_assigned) {
        Reach::Hidden => {
            return Err(Refusal::Forbidden(
                "a technician cannot create dispatches; ask a dispatcher".into(),
            ))
        }
        // The row is someone else's now: the 409 says so without their row (SPEC §9).
        Reach::FormerlyAssigned => return Err(Refusal::Conflict {
            detail:
                "This dispatch was reassigned to another technician; your change was not applied."
                    .into(),
            current: None,
        }),
        Reach::Visible => {}
    }
    if row.sys_logical_delete {
        return Err(Refusal::Conflict {
            detail: "This dispatch was deleted; your change was not applied.".into(),
            current: Some(Box::new(row.clone())),
        });
    }
    for field in TECHNICIAN_FIXED {
        let changed = match field {
            Field::JobsId => draft.jobs_id != row.jobs_id,
            Field::UserId => draft.user_id != row.user_id,
            Field::IsWorkshop => draft.is_workshop != row.is_workshop,
            Field::Sequence => draft.sequence.is_some_and(|s| s != row.sequence),
            Field::SysLogicalDelete => draft.sys_logical_delete != row.sys_logical_delete,
            _ => false,
        };
        if changed {
            return Err(Refusal::Forbidden(format!(
                "a technician may not change {} of a dispatch",
                field.name()
            )));
        }
    }
    Ok(())
}

/// May `caller` delete `row`? Technicians may not.
pub fn authorize_delete(
    caller: &Principal,
    row: &JobDispatchLog,
    formerly_assigned: bool,
) -> Result<(), Refusal> {
    match reach(caller, row, formerly_assigned) {
        Reach::Hidden => Err(Refusal::NotFound),
        _ if caller.is_technician() => Err(Refusal::Forbidden(
            "a technician may not delete dispatches (sys_logical_delete)".into(),
        )),
        _ => Ok(()),
    }
}

/// A technician's (or dispatcher's) decision on a dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept {
        date_proceeded: Option<Timestamp>,
    },
    Reject {
        rejected_reason: String,
        date_proceeded: Option<Timestamp>,
    },
}

impl Decision {
    pub fn client_time(&self) -> Option<Timestamp> {
        match self {
            Decision::Accept { date_proceeded } | Decision::Reject { date_proceeded, .. } => {
                *date_proceeded
            }
        }
    }
}

impl Decision {
    /// An Accept body: optional `date_proceeded` (the offline decision time).
    pub fn accept_from(raw: Option<&RawRecord>) -> Result<Decision, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let date_proceeded = raw.and_then(|raw| {
            Reader {
                raw,
                errors: &mut errors,
            }
            .date(Field::DateProceeded)
        });
        if errors.is_empty() {
            Ok(Decision::Accept {
                date_proceeded: date_proceeded.filter(|d| *d != Timestamp::UNSET_PROCEEDED),
            })
        } else {
            Err(errors)
        }
    }

    /// A Reject body: a non-empty `rejected_reason`, optional `date_proceeded`.
    pub fn reject_from(raw: Option<&RawRecord>) -> Result<Decision, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let empty = RawRecord::default();
        let mut read = Reader {
            raw: raw.unwrap_or(&empty),
            errors: &mut errors,
        };
        let date_proceeded = read.date(Field::DateProceeded);
        let rejected_reason = read.string(Field::RejectedReason);
        if rejected_reason.trim().is_empty() {
            errors.add(
                Field::RejectedReason.name(),
                "is required to reject a dispatch",
            );
        }
        check_text(&mut errors, Field::RejectedReason, &rejected_reason);
        if errors.is_empty() {
            Ok(Decision::Reject {
                rejected_reason,
                date_proceeded: date_proceeded.filter(|d| *d != Timestamp::UNSET_PROCEEDED),
            })
        } else {
            Err(errors)
        }
    }
}

/// Most technicians in one Dispatch.
pub const MAX_DISPATCH_USERS: usize = 1000;

/// `POST /api/JobDispatchLog/Dispatch`: a job and the technicians to send it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchRequest {
    pub jobs_id: Uuid,
    pub user_ids: Vec<Uuid>,
    pub is_workshop: bool,
}

impl DispatchRequest {
    /// Checks the parts of a Dispatch body; `user_ids` as given (GUID texts or None for a
    /// value of the wrong type).
    pub fn parse(
        jobs_id: Option<&str>,
        user_ids: Option<Vec<Option<String>>>,
        is_workshop: bool,
    ) -> Result<DispatchRequest, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let jobs_id = match jobs_id.map(|t| Uuid::try_parse(t.trim())) {
            Some(Ok(id)) if !id.is_nil() => Some(id),
            Some(Ok(_)) => {
                errors.add("jobs_id", "must not be all zeros");
                None
            }
            Some(Err(_)) => {
                errors.add("jobs_id", "is not a GUID");
                None
            }
            None => {
                errors.add("jobs_id", "is required");
                None
            }
        };
        let mut ids = Vec::new();
        match user_ids {
            None => errors.add("user_ids", "is required: a list of technicians' user_id"),
            Some(list) if list.is_empty() => errors.add("user_ids", "must not be empty"),
            Some(list) if list.len() > MAX_DISPATCH_USERS => errors.add(
                "user_ids",
                format!("must hold at most {MAX_DISPATCH_USERS} user ids"),
            ),
            Some(list) => {
                for (i, text) in list.iter().enumerate() {
                    match text.as_deref().map(|t| Uuid::try_parse(t.trim())) {
                        Some(Ok(id)) if !id.is_nil() => {
                            if !ids.contains(&id) {
                                ids.push(id)
                            }
                        }
                        _ => errors.add(format!("user_ids[{i}]"), "must be a GUID, not all zeros"),
                    }
                }
            }
        }
        match (jobs_id, errors.is_empty()) {
            (Some(jobs_id), true) => Ok(DispatchRequest {
                jobs_id,
                user_ids: ids,
                is_workshop,
            }),
            _ => Err(errors),
        }
    }
}

/// Applies a decision to the row as it stands. Ok(None): nothing to change (already so).
pub fn decide(
    caller: &Principal,
    row: &JobDispatchLog,
    formerly_assigned: bool,
    decision: &Decision,
    stamp: Timestamp,
) -> Result<Option<JobDispatchLog>, Refusal> {
    match reach(caller, row, formerly_assigned) {
        Reach::Hidden => return Err(Refusal::NotFound),
        Reach::FormerlyAssigned => return Err(Refusal::Conflict {
            detail:
                "This dispatch was reassigned to another technician; your decision was not applied."
                    .into(),
            current: None,
        }),
        Reach::Visible => {}
    }
    let conflict = |detail: &str| {
        Err(Refusal::Conflict {
            detail: detail.into(),
            current: Some(Box::new(row.clone())),
        })
    };
    if row.sys_logical_delete {
        return conflict("This dispatch was deleted.");
    }
    let mut next = row.clone();
    match decision {
        Decision::Accept { date_proceeded } => {
            if row.is_rejected {
                return conflict("This dispatch was already rejected; it cannot be accepted.");
            }
            if row.is_accepted && date_proceeded.is_none_or(|d| d == row.date_proceeded) {
                return Ok(None);
            }
            next.is_accepted = true;
            next.date_proceeded = date_proceeded.unwrap_or(stamp);
        }
        Decision::Reject {
            rejected_reason,
            date_proceeded,
        } => {
            if row.is_workshop {
                return conflict("A workshop dispatch cannot be rejected.");
            }
            if row.is_accepted {
                return conflict("This dispatch was already accepted; it cannot be rejected.");
            }
            if row.is_rejected
                && row.rejected_reason == *rejected_reason
                && date_proceeded.is_none_or(|d| d == row.date_proceeded)
            {
                return Ok(None);
            }
            next.date_proceeded = match date_proceeded {
                Some(d) => *d,
                None if row.is_rejected => row.date_proceeded,
                None => stamp,
            };
            next.is_rejected = true;
            next.rejected_reason = rejected_reason.clone();
        }
    }
    next.modified_dateutc = stamp;
    Ok(Some(next))
}

/// One entry of a row's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: Timestamp,
    /// The client's clock, when it sent one (an offline decision time).
    pub client_at: Option<Timestamp>,
    pub actor: String,
    pub action: String,
    /// Field → [before, after], as wire text.
    pub changes: BTreeMap<String, [String; 2]>,
}

/// The part of a row's history a technician may read: from the change that made the row
/// theirs (its creation, or the latest reassignment to them) on. What the row was before that
/// hand-over belongs to another technician, so the hand-over entry keeps only what the row
/// became: its before-values are withheld (empty). Dispatchers and admins read it all.
pub fn history_seen_by(caller: &Principal, mut entries: Vec<HistoryEntry>) -> Vec<HistoryEntry> {
    if !caller.is_technician() {
        return entries;
    }
    let me = caller.user_id.to_string();
    let handed_over = entries.iter().rposition(|e| {
        e.changes
            .get(Field::UserId.name())
            .is_some_and(|[_, after]| *after == me)
    });
    if let Some(start) = handed_over {
        entries.drain(..start);
        for [before, _] in entries[0].changes.values_mut() {
            before.clear();
        }
    }
    entries
}

/// What a change did, in the words of a dispatcher: the most significant of
/// delete, reassign, reject, accept, restore, create, update.
pub fn describe_change(
    before: Option<&JobDispatchLog>,
    after: &JobDispatchLog,
) -> (&'static str, BTreeMap<String, [String; 2]>) {
    let mut changes = BTreeMap::new();
    let Some(before) = before else {
        return ("create", changes);
    };
    let mut note = |field: Field, a: String, b: String| {
        if a != b {
            changes.insert(field.name().to_string(), [a, b]);
        }
    };
    note(
        Field::JobsId,
        before.jobs_id.to_string(),
        after.jobs_id.to_string(),
    );
    note(
        Field::UserId,
        before.user_id.to_string(),
        after.user_id.to_string(),
    );
    note(
        Field::DateProceeded,
        before.date_proceeded.to_json_string(),
        after.date_proceeded.to_json_string(),
    );
    note(
        Field::IsAccepted,
        before.is_accepted.to_string(),
        after.is_accepted.to_string(),
    );
    note(
        Field::IsRejected,
        before.is_rejected.to_string(),
        after.is_rejected.to_string(),
    );
    note(
        Field::RejectedReason,
        before.rejected_reason.clone(),
        after.rejected_reason.clone(),
    );
    note(
        Field::SysLogicalDelete,
        before.sys_logical_delete.to_string(),
        after.sys_logical_delete.to_string(),
    );
    note(
        Field::IsWorkshop,
        before.is_workshop.to_string(),
        after.is_workshop.to_string(),
    );
    note(
        Field::Sequence,
        before.sequence.to_string(),
        after.sequence.to_string(),
    );
    let action = if !before.sys_logical_delete && after.sys_logical_delete {
        "delete"
    } else if before.user_id != after.user_id {
        "reassign"
    } else if !before.is_rejected && after.is_rejected {
        "reject"
    } else if !before.is_accepted && after.is_accepted {
        "accept"
    } else if before.sys_logical_delete && !after.sys_logical_delete {
        "restore"
    } else {
        "update"
    };
    (action, changes)
}
