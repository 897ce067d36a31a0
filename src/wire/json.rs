//! JSON bodies, as the original writes them: every field, in the order of SPEC §2.

use serde_json::{Map, Value};

use super::DecodeError;
use crate::domain::{Field, JobDispatchLog, RawRecord, RawValue, ValidationErrors};

/// Reads one JSON object into raw values; unknown members are ignored, names match without
/// regard to case (as the original's serializer does).
pub fn decode_one(body: &[u8]) -> Result<RawRecord, DecodeError> {
    match parse(body)? {
        Value::Object(map) => Ok(record_of(map)),
        other => Err(DecodeError::Malformed(format!(
            "the body must be a JSON object, not {}",
            kind(&other)
        ))),
    }
}

/// Reads a JSON array of objects.
pub fn decode_list(body: &[u8]) -> Result<Vec<RawRecord>, DecodeError> {
    let Value::Array(items) = parse(body)? else {
        return Err(DecodeError::Malformed(
            "the body must be a JSON array of job_dispatch_log objects".into(),
        ));
    };
    let mut errors = ValidationErrors::default();
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(map) => records.push(record_of(map)),
            other => errors.add(
                format!("[{i}]"),
                format!("must be a JSON object, not {}", kind(&other)),
            ),
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(DecodeError::Invalid(errors))
    }
}

fn parse(body: &[u8]) -> Result<Value, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Malformed("the request body is empty".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| DecodeError::Malformed(format!("the body is not valid JSON: {e}")))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn record_of(map: Map<String, Value>) -> RawRecord {
    let mut record = RawRecord::default();
    for (name, value) in map {
        let Some(field) = Field::all().find(|f| f.name().eq_ignore_ascii_case(&name)) else {
            continue;
        };
        let value = match value {
            Value::Null => RawValue::Null,
            v => RawValue::Json(v),
        };
        record.insert(field, value);
    }
    record
}

/// Writes one row as a JSON object.
pub fn encode_row(row: &JobDispatchLog) -> String {
    let mut out = String::with_capacity(512);
    write_row(&mut out, row, None);
    out
}

/// Writes rows as a JSON array.
pub fn encode_rows(rows: &[JobDispatchLog]) -> String {
    let mut out = String::with_capacity(16 + rows.len() * 512);
    write_rows(&mut out, rows, None);
    out
}

/// Writes rows as a JSON array, each limited to `select` when given.
pub fn write_rows(out: &mut String, rows: &[JobDispatchLog], select: Option<&[Field]>) {
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_row(out, row, select);
    }
    out.push(']');
}

/// Writes one row; with `select`, only those fields (still in wire order).
pub fn write_row(out: &mut String, row: &JobDispatchLog, select: Option<&[Field]>) {
    out.push('{');
    let mut first = true;
    for field in Field::all() {
        if select.is_some_and(|s| !s.contains(&field)) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(field.name());
        out.push_str("\":");
        write_value(out, row, field);
    }
    out.push('}');
}

fn write_value(out: &mut String, row: &JobDispatchLog, field: Field) {
    use std::fmt::Write as _;
    let guid = |out: &mut String, id: &uuid::Uuid| {
        out.push('"');
        out.push_str(
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
        out.push('"');
    };
    let date = |out: &mut String, t: crate::domain::Timestamp| {
        out.push('"');
        t.write_json(out);
        out.push('"');
    };
    let boolean = |out: &mut String, b: bool| out.push_str(if b { "true" } else { "false" });
    let string = |out: &mut String, s: &str| write_string(out, s);
    match field {
        Field::Id => guid(out, &row.id),
        Field::JobsId => guid(out, &row.jobs_id),
        Field::UserId => guid(out, &row.user_id),
        Field::DateCreate => date(out, row.date_create),
        Field::DateProceeded => date(out, row.date_proceeded),
        Field::IsAccepted => boolean(out, row.is_accepted),
        Field::IsRejected => boolean(out, row.is_rejected),
        Field::RejectedReason => string(out, &row.rejected_reason),
        Field::SysLogicalDelete => boolean(out, row.sys_logical_delete),
        Field::IsWorkshop => boolean(out, row.is_workshop),
        Field::ModifiedDateutc => date(out, row.modified_dateutc),
        Field::Sequence => {
            let _ = write!(out, "{}", row.sequence);
        }
        Field::AssignedUserIds => string(out, &row.assigned_user_ids),
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_escaped_as_serde_json_reads_them() {
        for s in [
            "",
            "plain",
            "quote \" and \\ back",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}",
            "é ✓ 🚚",
        ] {
            let mut out = String::new();
            super::write_string(&mut out, s);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }
}
