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

/// Reads a JSON array of at most `max` objects. The items are read one at a time and the
/// reading stops at item `max + 1`, so a body of millions of tiny items costs no more than one
/// of `max` items: neither the items nor an error per item are ever held beyond that.
pub fn decode_list(body: &[u8], max: usize) -> Result<Vec<RawRecord>, DecodeError> {
    use serde::Deserializer as _;

    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        parse(body)?;
        return Err(DecodeError::Malformed(
            "the body must be a JSON array of job_dispatch_log objects".into(),
        ));
    }
    let mut too_many = false;
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = (&mut de)
        .deserialize_seq(BoundedItems {
            max,
            too_many: &mut too_many,
        })
        .and_then(|items| de.end().map(|()| items));
    let items = match items {
        Ok(items) => items,
        Err(_) if too_many => return Err(DecodeError::TooMany(max)),
        Err(e) => {
            return Err(DecodeError::Malformed(format!(
                "the body is not valid JSON: {e}"
            )))
        }
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

/// The items of a JSON array, refusing the one past `max` as soon as it is read.
struct BoundedItems<'a> {
    max: usize,
    too_many: &'a mut bool,
}

impl<'de> serde::de::Visitor<'de> for BoundedItems<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of job_dispatch_log objects")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            if items.len() == self.max {
                *self.too_many = true;
                return Err(serde::de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
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

/// `,"name":` of every field, by field, built once from the field metadata (the first member
/// of an object is written without its comma).
fn member_keys() -> &'static [String] {
    static KEYS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        Field::all()
            .map(|f| format!(",\"{}\":", f.name()))
            .collect()
    })
}

/// Room for one row without `select`: keys, three GUIDs, three dates and the two strings.
fn row_capacity(row: &JobDispatchLog) -> usize {
    320 + row.rejected_reason.len() + row.assigned_user_ids.len()
}

/// Writes one row; with `select`, only those fields (still in wire order).
pub fn write_row(out: &mut String, row: &JobDispatchLog, select: Option<&[Field]>) {
    // The feed writes thousands of rows per page: every field below then appends without
    // growing the buffer (JSON escapes may still grow it).
    out.reserve(row_capacity(row));
    out.push('{');
    let keys = member_keys();
    let mut first = true;
    for field in Field::all() {
        if select.is_some_and(|s| !s.contains(&field)) {
            continue;
        }
        let key = keys[field as usize].as_str();
        out.push_str(if first { &key[1..] } else { key });
        first = false;
        write_value(out, row, field);
    }
    out.push('}');
}

fn write_value(out: &mut String, row: &JobDispatchLog, field: Field) {
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
        Field::Sequence => write_int(out, row.sequence),
        Field::AssignedUserIds => string(out, &row.assigned_user_ids),
    }
}

/// Appends `n` in decimal, without the formatting machinery.
fn write_int(out: &mut String, n: i32) {
    let mut digits = [0u8; 11];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// The bytes a JSON string cannot hold as they are: `"`, `\` and the control characters.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// True when one of the eight bytes of `word` is below 0x20, `"` or `\\` (the classic
/// "has a zero byte" test, applied to the word and to its XOR with each special byte).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGHS;
    below(word, 0x20) | below(word ^ (ONES * 0x22), 1) | below(word ^ (ONES * 0x5c), 1) != 0
}

/// Appends `s` as a JSON string literal. Runs of characters that need no escape (all of a GUID
/// list, nearly all of a reason) are copied whole.
pub fn write_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    let bytes = s.as_bytes();
    // Eight bytes at a time up to the first that needs an escape (most strings have none).
    let mut clean = 0;
    while let Some(word) = bytes.get(clean..clean + 8) {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if needs_escape(word) {
            break;
        }
        clean += 8;
    }
    let mut plain_from = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `b` is ASCII, so `i` and `i + 1` are character boundaries.
        out.push_str(&s[plain_from..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        plain_from = i + 1;
    }
    out.push_str(&s[plain_from..]);
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
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn every_byte_that_needs_an_escape_is_found_at_every_position() {
        for b in 0u8..=255 {
            for at in 0..8 {
                let mut word = [b'a'; 8];
                word[at] = b;
                let expected = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(
                    super::needs_escape(u64::from_le_bytes(word)),
                    expected,
                    "byte {b:#x} at {at}"
                );
            }
        }
        // Long strings with the special byte after the first words, and multi-byte text.
        for s in [
            "0123456789abcdef\"x",
            "0123456789abcdefgh\u{1}",
            "ééééééééé\\é",
            "✓✓✓✓✓✓✓✓✓",
        ] {
            let mut out = String::new();
            super::write_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 12, -1, -10, 2_147_483_647, i32::MIN] {
            let mut out = String::new();
            super::write_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn a_row_is_written_as_serde_json_reads_it_whole_or_selected() {
        use crate::domain::{Field, JobDispatchLog, Timestamp};
        let row = JobDispatchLog {
            id: uuid::Uuid::new_v4(),
            jobs_id: uuid::Uuid::new_v4(),
            user_id: uuid::Uuid::new_v4(),
            date_create: Timestamp::from_ticks(639_000_000_000_000_000),
            date_proceeded: Timestamp::UNSET_PROCEEDED,
            is_accepted: true,
            is_rejected: false,
            rejected_reason: "a \"quoted\"\nreason".into(),
            sys_logical_delete: false,
            is_workshop: true,
            modified_dateutc: Timestamp::from_ticks(639_000_000_000_000_001),
            sequence: -3,
            assigned_user_ids: "x,y".into(),
        };
        let mut out = String::new();
        super::write_row(&mut out, &row, None);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        let names: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let expected: Vec<&str> = Field::all().map(Field::name).collect();
        assert_eq!(names, expected);
        assert_eq!(value["rejected_reason"], "a \"quoted\"\nreason");
        assert_eq!(value["sequence"], -3);
        assert_eq!(value["assigned_user_ids"], "x,y");
        let mut out = String::new();
        super::write_row(&mut out, &row, Some(&[Field::Sequence, Field::Id]));
        assert_eq!(out, format!("{{\"id\":\"{}\",\"sequence\":-3}}", row.id));
    }
}
