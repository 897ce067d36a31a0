//! The `job_dispatch_log` row, the raw values a client sends, and the rules that turn one into
//! the other.
//!
//! Whatever the wire format or the endpoint, a body goes through [`RawRecord`] and
//! [`DispatchDraft::try_from`], so every rule of SPEC §2 is written here once.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::fields::Field;
use super::timestamp::{parse_microsoft, DateError, Timestamp};

/// Longest accepted `rejected_reason`, in characters.
pub const MAX_REJECTED_REASON_CHARS: usize = 4000;

/// One dispatch of one job to one technician, as stored and as returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDispatchLog {
    pub id: Uuid,
    pub jobs_id: Uuid,
    pub user_id: Uuid,
    pub date_create: Timestamp,
    pub date_proceeded: Timestamp,
    pub is_accepted: bool,
    pub is_rejected: bool,
    pub rejected_reason: String,
    pub sys_logical_delete: bool,
    pub is_workshop: bool,
    pub modified_dateutc: Timestamp,
    pub sequence: i32,
    /// Computed on output: the job's current assignees.
    pub assigned_user_ids: String,
}

impl JobDispatchLog {
    /// The entity tag of this version of the row. `modified_dateutc` changes with every change
    /// and is unique within a tenant, so it identifies the version.
    pub fn etag(&self) -> String {
        format!("\"{:x}\"", self.modified_dateutc.ticks())
    }

    /// True when the stored columns (not the server-managed ones) are the same.
    pub fn same_content(&self, other: &JobDispatchLog) -> bool {
        self.id == other.id
            && self.jobs_id == other.jobs_id
            && self.user_id == other.user_id
            && self.date_create == other.date_create
            && self.date_proceeded == other.date_proceeded
            && self.is_accepted == other.is_accepted
            && self.is_rejected == other.is_rejected
            && self.rejected_reason == other.rejected_reason
            && self.sys_logical_delete == other.sys_logical_delete
            && self.is_workshop == other.is_workshop
            && self.sequence == other.sequence
    }

    /// What this row adds to its job's `assigned_user_ids`: `(jobs_id, sequence, user_id)` while
    /// it is neither logically deleted nor rejected, else nothing. A change that keeps this the
    /// same cannot change any job's `assigned_user_ids`.
    pub fn assignment(&self) -> Option<(Uuid, i32, Uuid)> {
        (!self.sys_logical_delete && !self.is_rejected).then_some((
            self.jobs_id,
            self.sequence,
            self.user_id,
        ))
    }
}

/// A value as it arrived, before its type is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// JSON `null` or XML `i:nil="true"`: the field's default.
    Null,
    /// A JSON value of any type.
    Json(serde_json::Value),
    /// The text content of an XML element.
    Text(String),
}

/// The fields a client sent, by name; a field not sent is absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRecord {
    values: HashMap<Field, RawValue>,
}

impl RawRecord {
    pub fn insert(&mut self, field: Field, value: RawValue) {
        self.values.insert(field, value);
    }

    pub fn get(&self, field: Field) -> Option<&RawValue> {
        self.values.get(&field)
    }
}

/// Most fields named in one `errors` member (SPEC §8): a body of a thousand broken items
/// answers with the first hundred and says how many more there were, so the answer stays small
/// whatever the body.
pub const MAX_ERROR_FIELDS: usize = 100;

/// Field name → messages; the `errors` member of a validation problem. Holds at most
/// [`MAX_ERROR_FIELDS`] fields; further ones are only counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    fields: BTreeMap<String, Vec<String>>,
    omitted: usize,
}

impl ValidationErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        if let Some(messages) = self.fields.get_mut(&field) {
            messages.push(message.into());
        } else if self.fields.len() < MAX_ERROR_FIELDS {
            self.fields.insert(field, vec![message.into()]);
        } else {
            self.omitted += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.omitted == 0
    }

    /// Does `field` have an error?
    pub fn contains(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// The fields listed, with their messages.
    pub fn fields(&self) -> &BTreeMap<String, Vec<String>> {
        &self.fields
    }

    /// How many more fields had errors than are listed.
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// Moves every error under `prefix` (e.g. `[3].`), for lists.
    pub fn absorb_prefixed(&mut self, prefix: &str, other: ValidationErrors) {
        for (field, messages) in other.fields {
            let field = format!("{prefix}{field}");
            for message in messages {
                self.add(field.clone(), message);
            }
        }
        self.omitted += other.omitted;
    }

    /// One sentence naming every field listed, for `detail`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|(field, messages)| format!("{field}: {}", messages.join("; ")))
            .collect();
        let more = match self.omitted {
            0 => String::new(),
            n => format!(" | and {n} more fields with errors, not listed"),
        };
        format!("The request is invalid. {}{more}", parts.join(" | "))
    }
}

/// A row as a client wants it saved, every rule already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchDraft {
    pub id: Uuid,
    /// False when the server generated `id` (missing, empty or all zeros in the body).
    pub id_from_client: bool,
    pub jobs_id: Uuid,
    pub user_id: Uuid,
    /// None: the server's time on insert.
    pub date_create: Option<Timestamp>,
    /// None: absent, nil, or the 1980 default.
    pub date_proceeded: Option<Timestamp>,
    pub is_accepted: bool,
    pub is_rejected: bool,
    pub rejected_reason: String,
    pub sys_logical_delete: bool,
    pub is_workshop: bool,
    /// None: 0 or missing (next of the job on insert, kept on update).
    pub sequence: Option<i32>,
}

impl TryFrom<&RawRecord> for DispatchDraft {
    type Error = ValidationErrors;

    fn try_from(raw: &RawRecord) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut read = Reader {
            raw,
            errors: &mut errors,
        };

        let id = read.guid(Field::Id);
        let jobs_id = read.guid(Field::JobsId);
        let user_id = read.guid(Field::UserId);
        let date_create = read.date(Field::DateCreate);
        let date_proceeded = read
            .date(Field::DateProceeded)
            .filter(|t| *t != Timestamp::UNSET_PROCEEDED);
        let is_accepted = read.bool(Field::IsAccepted);
        let is_rejected = read.bool(Field::IsRejected);
        let rejected_reason = read.string(Field::RejectedReason);
        let sys_logical_delete = read.bool(Field::SysLogicalDelete);
        let is_workshop = read.bool(Field::IsWorkshop);
        let sequence = read.int32(Field::Sequence);

        let jobs_id = required_guid(&mut errors, Field::JobsId, raw, jobs_id);
        let user_id = required_guid(&mut errors, Field::UserId, raw, user_id);

        if is_accepted && is_rejected {
            errors.add(
                Field::IsRejected.name(),
                "cannot be true together with is_accepted",
            );
        }
        if is_rejected && is_workshop {
            errors.add(
                Field::IsRejected.name(),
                "a workshop dispatch (is_workshop true) cannot be rejected",
            );
        }
        if !rejected_reason.is_empty() && !is_rejected {
            errors.add(
                Field::RejectedReason.name(),
                "must be empty unless is_rejected is true",
            );
        }
        check_text(&mut errors, Field::RejectedReason, &rejected_reason);
        if let Some(seq) = sequence {
            if seq < 0 {
                errors.add(Field::Sequence.name(), "must not be negative");
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        let (id, id_from_client) = match id {
            Some(id) if !id.is_nil() => (id, true),
            _ => (Uuid::new_v4(), false),
        };
        Ok(DispatchDraft {
            id,
            id_from_client,
            jobs_id: jobs_id.unwrap_or_default(),
            user_id: user_id.unwrap_or_default(),
            date_create,
            date_proceeded,
            is_accepted,
            is_rejected,
            rejected_reason,
            sys_logical_delete,
            is_workshop,
            sequence: sequence.filter(|s| *s != 0),
        })
    }
}

fn required_guid(
    errors: &mut ValidationErrors,
    field: Field,
    raw: &RawRecord,
    value: Option<Uuid>,
) -> Option<Uuid> {
    match value {
        Some(v) if !v.is_nil() => Some(v),
        Some(_) => {
            errors.add(field.name(), "is required and must not be all zeros");
            None
        }
        None => {
            // A malformed value already has its own message.
            if !errors.contains(field.name()) || raw.get(field).is_none() {
                errors.add(field.name(), "is required");
            }
            None
        }
    }
}

/// Checks free text for what neither XML nor the databases can carry.
pub fn check_text(errors: &mut ValidationErrors, field: Field, text: &str) {
    if text.chars().count() > MAX_REJECTED_REASON_CHARS {
        errors.add(
            field.name(),
            format!("must be at most {MAX_REJECTED_REASON_CHARS} characters"),
        );
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        errors.add(
            field.name(),
            "must not contain control characters (other than tab and line breaks)",
        );
    }
}

/// Reads typed values out of a [`RawRecord`], noting a message per malformed field.
pub(crate) struct Reader<'a> {
    pub raw: &'a RawRecord,
    pub errors: &'a mut ValidationErrors,
}

impl Reader<'_> {
    fn fail<T>(&mut self, field: Field, message: impl Into<String>) -> Option<T> {
        self.errors.add(field.name(), message);
        None
    }

    fn text_of(&mut self, field: Field) -> Option<Result<String, ()>> {
        match self.raw.get(field)? {
            RawValue::Null => None,
            RawValue::Text(t) => Some(Ok(t.clone())),
            RawValue::Json(serde_json::Value::String(s)) => Some(Ok(s.clone())),
            RawValue::Json(_) => Some(Err(())),
        }
    }

    pub(crate) fn guid(&mut self, field: Field) -> Option<Uuid> {
        match self.text_of(field)? {
            Err(()) => self.fail(field, "must be a GUID string"),
            Ok(t) if t.trim().is_empty() => None,
            Ok(t) => match Uuid::try_parse(t.trim()) {
                Ok(u) => Some(u),
                Err(_) => self.fail(
                    field,
                    "is not a GUID (expected e.g. 567c1c0c-91e3-4ca3-ac31-eb151e427f59)",
                ),
            },
        }
    }

    pub(crate) fn date(&mut self, field: Field) -> Option<Timestamp> {
        // Older .NET JSON serializers write `\/Date(ms)\/`; XML clients never do.
        let json = matches!(self.raw.get(field), Some(RawValue::Json(_)));
        match self.text_of(field)? {
            Err(()) => self.fail(field, "must be a date-time string"),
            Ok(t) => match parse_client_date(&t, json) {
                Ok(ts) => ts,
                Err(e) => self.fail(field, e.to_string()),
            },
        }
    }

    pub(crate) fn string(&mut self, field: Field) -> String {
        match self.text_of(field) {
            None => String::new(),
            Some(Ok(t)) => t,
            Some(Err(())) => {
                self.fail::<()>(field, "must be a string");
                String::new()
            }
        }
    }

    pub(crate) fn bool(&mut self, field: Field) -> bool {
        let value = match self.raw.get(field) {
            None | Some(RawValue::Null) => return false,
            Some(RawValue::Json(serde_json::Value::Bool(b))) => Some(*b),
            Some(RawValue::Json(_)) => None,
            Some(RawValue::Text(t)) => match t.trim() {
                "true" | "True" | "TRUE" | "1" => Some(true),
                "false" | "False" | "FALSE" | "0" => Some(false),
                _ => None,
            },
        };
        value.unwrap_or_else(|| {
            self.fail::<()>(field, "must be a boolean (true or false)");
            false
        })
    }

    pub(crate) fn int32(&mut self, field: Field) -> Option<i32> {
        let value = match self.raw.get(field)? {
            RawValue::Null => return None,
            RawValue::Json(serde_json::Value::Number(n)) => n.as_i64(),
            RawValue::Json(_) => None,
            RawValue::Text(t) => t.trim().parse::<i64>().ok(),
        };
        match value.map(i32::try_from) {
            Some(Ok(v)) => Some(v),
            _ => self.fail(field, "must be a 32-bit integer"),
        }
    }
}

/// A client date-time; `0001-01-01T00:00:00` (.NET's default `DateTime`, in either of its JSON
/// forms) means "not given". `json` admits the Microsoft form (SPEC §4.2).
fn parse_client_date(text: &str, json: bool) -> Result<Option<Timestamp>, DateError> {
    let trimmed = text.trim();
    if json {
        if let Some(date) = parse_microsoft(trimmed) {
            let date = date?;
            if date.is_dotnet_default() {
                return Ok(None);
            }
            return Timestamp::from_unix_millis(date.millis).map(Some);
        }
    }
    if let Some(rest) = trimmed.strip_prefix("0001-01-01") {
        let rest = rest.trim_start_matches(['T', ' ']);
        let zero_time = rest
            .trim_end_matches(['Z', 'z'])
            .trim_end_matches("+00:00")
            .chars()
            .all(|c| matches!(c, '0' | ':' | '.'));
        if zero_time {
            return Ok(None);
        }
    }
    Timestamp::parse(trimmed).map(Some)
}

/// What a save makes of the stored row (or of nothing, on insert).
#[derive(Debug, Clone)]
pub struct Merged {
    pub row: JobDispatchLog,
    pub inserted: bool,
    /// False when the save changes nothing: no new stamp, no new change in the feed.
    pub changed: bool,
}

/// Applies a save to the stored row. `stamp` is the server time this change would carry;
/// `next_sequence` is asked only when an insert needs a sequence.
pub fn merge(
    draft: &DispatchDraft,
    existing: Option<&JobDispatchLog>,
    stamp: Timestamp,
    next_sequence: impl FnOnce() -> i32,
) -> Merged {
    let date_proceeded = match draft.date_proceeded {
        Some(given) => given,
        None if draft.is_accepted || draft.is_rejected => match existing {
            // Already in this state: keep the decision time it has.
            Some(e)
                if (draft.is_accepted && e.is_accepted || draft.is_rejected && e.is_rejected)
                    && e.date_proceeded != Timestamp::UNSET_PROCEEDED =>
            {
                e.date_proceeded
            }
            _ => stamp,
        },
        None => Timestamp::UNSET_PROCEEDED,
    };
    let (date_create, sequence) = match existing {
        Some(e) => (e.date_create, draft.sequence.unwrap_or(e.sequence)),
        None => (
            draft.date_create.unwrap_or(stamp),
            draft.sequence.unwrap_or_else(next_sequence),
        ),
    };
    let row = JobDispatchLog {
        id: draft.id,
        jobs_id: draft.jobs_id,
        user_id: draft.user_id,
        date_create,
        date_proceeded,
        is_accepted: draft.is_accepted,
        is_rejected: draft.is_rejected,
        rejected_reason: draft.rejected_reason.clone(),
        sys_logical_delete: draft.sys_logical_delete,
        is_workshop: draft.is_workshop,
        modified_dateutc: stamp,
        sequence,
        assigned_user_ids: String::new(),
    };
    match existing {
        Some(e) if row.same_content(e) => Merged {
            row: e.clone(),
            inserted: false,
            changed: false,
        },
        Some(_) => Merged {
            row,
            inserted: false,
            changed: true,
        },
        None => Merged {
            row,
            inserted: true,
            changed: true,
        },
    }
}

/// The `assigned_user_ids` text of a job: its current assignees' ids in sequence order, once each.
pub fn assigned_user_ids(assignees_in_order: impl IntoIterator<Item = Uuid>) -> String {
    let mut seen = Vec::new();
    let mut out = String::new();
    for id in assignees_in_order {
        if seen.contains(&id) {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
        seen.push(id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: serde_json::Value) -> RawRecord {
        let mut raw = RawRecord::default();
        for (k, v) in value.as_object().unwrap() {
            let field = Field::by_name(k).unwrap();
            let v = if v.is_null() {
                RawValue::Null
            } else {
                RawValue::Json(v.clone())
            };
            raw.insert(field, v);
        }
        raw
    }

    fn draft(value: serde_json::Value) -> Result<DispatchDraft, ValidationErrors> {
        DispatchDraft::try_from(&record(value))
    }

    const JOB: &str = "5f1e9a72-a0e8-4276-9cd5-3b00416d5f59";
    const TECH: &str = "ab53b170-9ede-42f6-85e5-eac282e3ac0a";

    #[test]
    fn a_minimal_body_takes_every_default() {
        let d = draft(json!({"jobs_id": JOB, "user_id": TECH})).unwrap();
        assert!(!d.id_from_client);
        assert!(!d.id.is_nil());
        assert_eq!(d.date_proceeded, None);
        assert_eq!(d.sequence, None);
        assert_eq!(d.rejected_reason, "");
    }

    #[test]
    fn accepted_and_rejected_together_is_refused() {
        let e = draft(
            json!({"jobs_id": JOB, "user_id": TECH, "is_accepted": true, "is_rejected": true}),
        )
        .unwrap_err();
        assert!(e.contains("is_rejected"));
    }

    #[test]
    fn wrong_types_name_their_field() {
        let e =
            draft(json!({"jobs_id": 5, "user_id": TECH, "is_workshop": "yes", "sequence": 1.5}))
                .unwrap_err();
        assert!(e.contains("jobs_id"));
        assert!(e.contains("is_workshop"));
        assert!(e.contains("sequence"));
    }

    #[test]
    fn the_dotnet_default_date_means_not_given() {
        let d =
            draft(json!({"jobs_id": JOB, "user_id": TECH, "date_create": "0001-01-01T00:00:00"}))
                .unwrap();
        assert_eq!(d.date_create, None);
        let d = draft(json!({"jobs_id": JOB, "user_id": TECH,
            "date_create": "/Date(-62135596800000)/", "date_proceeded": "/Date(-62135596800000+0100)/"}))
        .unwrap();
        assert_eq!((d.date_create, d.date_proceeded), (None, None));
    }

    #[test]
    fn an_unchanged_save_is_not_a_change() {
        let d = draft(json!({"jobs_id": JOB, "user_id": TECH, "is_accepted": true})).unwrap();
        let first = merge(&d, None, Timestamp::from_ticks(100), || 1);
        assert!(first.inserted);
        assert_eq!(first.row.date_proceeded, Timestamp::from_ticks(100));
        let again = merge(&d, Some(&first.row), Timestamp::from_ticks(200), || 2);
        assert!(!again.changed);
        assert_eq!(again.row, first.row);
    }

    #[test]
    fn assignees_are_listed_once_in_order() {
        let a = Uuid::parse_str(JOB).unwrap();
        let b = Uuid::parse_str(TECH).unwrap();
        assert_eq!(assigned_user_ids([b, a, b]), format!("{TECH},{JOB}"),);
    }

    #[test]
    fn only_a_row_neither_deleted_nor_rejected_is_an_assignment() {
        let d = draft(json!({"jobs_id": JOB, "user_id": TECH, "sequence": 3})).unwrap();
        let row = merge(&d, None, Timestamp::from_ticks(100), || 1).row;
        let (job, tech) = (
            Uuid::parse_str(JOB).unwrap(),
            Uuid::parse_str(TECH).unwrap(),
        );
        assert_eq!(row.assignment(), Some((job, 3, tech)));
        let accepted = JobDispatchLog {
            is_accepted: true,
            ..row.clone()
        };
        assert_eq!(accepted.assignment(), row.assignment());
        let rejected = JobDispatchLog {
            is_rejected: true,
            ..row.clone()
        };
        assert_eq!(rejected.assignment(), None);
        let deleted = JobDispatchLog {
            sys_logical_delete: true,
            ..row
        };
        assert_eq!(deleted.assignment(), None);
    }
}
