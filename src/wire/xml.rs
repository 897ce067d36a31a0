//! XML bodies in the original's DataContract shape.
//!
//! Output: root `<job_dispatch_log xmlns:i="…">`, one element per field in alphabetical order,
//! dates with milliseconds and `Z`. Input is lenient about order, namespaces and unknown elements,
//! and strict about safety: no DOCTYPE (so no entity expansion of any kind).

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::DecodeError;
use crate::domain::fields::xml_order;
use crate::domain::{Field, FieldType, JobDispatchLog, RawRecord, RawValue};

pub const INSTANCE_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const ROOT: &str = "job_dispatch_log";
pub const LIST_ROOT: &str = "ArrayOfjob_dispatch_log";

fn malformed(message: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(message.into())
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
}

impl<'a> Parser<'a> {
    fn new(body: &'a [u8]) -> Result<Self, DecodeError> {
        let text =
            std::str::from_utf8(body).map_err(|_| malformed("the XML body is not valid UTF-8"))?;
        if text.trim().is_empty() {
            return Err(malformed("the request body is empty"));
        }
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Ok(Parser { reader })
    }

    fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn next(&mut self) -> Result<Event<'a>, DecodeError> {
        match self.reader.read_event() {
            Ok(Event::DocType(_)) => Err(malformed(
                "a DOCTYPE is not allowed in the XML body (no DTDs, no entities)",
            )),
            Ok(event) => Ok(event),
            Err(e) => Err(malformed(format!(
                "the body is not well-formed XML (near byte {}): {e}",
                self.position()
            ))),
        }
    }

    /// Skips the prolog and returns the root element and whether it is empty (`<x/>`).
    fn root(&mut self) -> Result<(String, bool), DecodeError> {
        loop {
            match self.next()? {
                Event::Start(e) => return Ok((local_name(&e), false)),
                Event::Empty(e) => return Ok((local_name(&e), true)),
                Event::Text(t) if is_blank(&t) => {}
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(malformed("the XML body has no root element")),
                _ => return Err(malformed("unexpected content before the root element")),
            }
        }
    }

    /// After the whole document: nothing but comments and white space may follow.
    fn finish(&mut self) -> Result<(), DecodeError> {
        loop {
            match self.next()? {
                Event::Eof => return Ok(()),
                Event::Text(t) if is_blank(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(malformed("unexpected content after the root element")),
            }
        }
    }

    /// Reads the children of an open `<job_dispatch_log>` up to its end tag.
    fn record(&mut self) -> Result<RawRecord, DecodeError> {
        let mut record = RawRecord::default();
        loop {
            match self.next()? {
                Event::Start(e) => {
                    let name = local_name(&e);
                    let nil = is_nil(&e)?;
                    match field_named(&name) {
                        Some(field) => {
                            let text = self.text_until_end(&name)?;
                            put(&mut record, field, &name, nil, text)?;
                        }
                        None => {
                            let end = e.to_end().into_owned();
                            self.reader.read_to_end(end.name()).map_err(|err| {
                                malformed(format!("the body is not well-formed XML: {err}"))
                            })?;
                        }
                    }
                }
                Event::Empty(e) => {
                    let name = local_name(&e);
                    if let Some(field) = field_named(&name) {
                        let nil = is_nil(&e)?;
                        put(&mut record, field, &name, nil, String::new())?;
                    }
                }
                Event::End(_) => return Ok(record),
                Event::Eof => return Err(malformed("the XML body ends inside <job_dispatch_log>")),
                _ => {}
            }
        }
    }

    fn text_until_end(&mut self, name: &str) -> Result<String, DecodeError> {
        let mut text = String::new();
        loop {
            match self.next()? {
                Event::Text(t) => text.push_str(&t),
                Event::GeneralRef(r) => text.push_str(&resolve_reference(&r, name)?),
                // The body was checked to be UTF-8 as a whole, so CDATA is text as it stands.
                Event::CData(c) => text.push_str(&c),
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(_) => return Ok(text),
                Event::Start(_) | Event::Empty(_) => {
                    return Err(malformed(format!("<{name}> must hold text, not elements")))
                }
                Event::Eof => return Err(malformed(format!("the XML body ends inside <{name}>"))),
                _ => {}
            }
        }
    }
}

fn put(
    record: &mut RawRecord,
    field: Field,
    name: &str,
    nil: bool,
    text: String,
) -> Result<(), DecodeError> {
    if record.get(field).is_some() {
        return Err(malformed(format!("<{name}> appears more than once")));
    }
    let value = if nil {
        RawValue::Null
    } else if text.trim().is_empty() && field.meta().ty != FieldType::String {
        // An empty non-text element carries no value: the default.
        RawValue::Null
    } else {
        RawValue::Text(text)
    };
    record.insert(field, value);
    Ok(())
}

fn is_blank(t: &quick_xml::events::BytesText<'_>) -> bool {
    t.bytes().all(|b| b.is_ascii_whitespace())
}

/// The text of `&…;` inside an element: a character reference (`&#38;`, `&#x26;`) or one of
/// XML's five predefined entities. quick-xml reports references apart from the text around
/// them; anything else is an entity a DTD would have to declare, and DTDs are refused.
fn resolve_reference(r: &BytesRef<'_>, name: &str) -> Result<String, DecodeError> {
    let unknown = |e: String| {
        malformed(format!(
            "<{name}> holds an unknown or malformed entity: {e}"
        ))
    };
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c.to_string()),
            Ok(None) => Err(unknown(format!("&{};", &**r))),
            Err(e) => Err(unknown(e.to_string())),
        };
    }
    quick_xml::escape::resolve_predefined_entity(r)
        .map(str::to_string)
        .ok_or_else(|| unknown(format!("&{};", &**r)))
}

fn local_name(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_string()
}

fn field_named(name: &str) -> Option<Field> {
    Field::by_name(name)
}

fn is_nil(e: &BytesStart<'_>) -> Result<bool, DecodeError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| malformed(format!("malformed XML attribute: {err}")))?;
        if attr.key.local_name().as_ref() == "nil" {
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| malformed(format!("malformed XML attribute: {err}")))?;
            return Ok(value.trim() == "true" || value.trim() == "1");
        }
    }
    Ok(false)
}

/// The value of one child of a small request document (such as a Dispatch body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlValue {
    Nil,
    Text(String),
    /// The texts of its child elements (a list such as `<user_ids><guid>…</guid></user_ids>`).
    List(Vec<String>),
}

/// Reads a flat document: the root's children by local name, each text or a list of texts.
pub fn decode_fields(body: &[u8]) -> Result<Vec<(String, XmlValue)>, DecodeError> {
    let mut p = Parser::new(body)?;
    let (_, empty) = p.root()?;
    let mut fields = Vec::new();
    if !empty {
        loop {
            match p.next()? {
                Event::Start(e) => {
                    let name = local_name(&e);
                    let nil = is_nil(&e)?;
                    let mut text = String::new();
                    let mut list = Vec::new();
                    loop {
                        match p.next()? {
                            Event::Text(t) => text.push_str(&t),
                            Event::GeneralRef(r) => text.push_str(&resolve_reference(&r, &name)?),
                            Event::Start(item) => {
                                let item_name = local_name(&item);
                                list.push(p.text_until_end(&item_name)?);
                            }
                            Event::Empty(_) => list.push(String::new()),
                            Event::End(_) => break,
                            Event::Eof => {
                                return Err(malformed(format!("the XML body ends inside <{name}>")))
                            }
                            _ => {}
                        }
                    }
                    let value = if nil {
                        XmlValue::Nil
                    } else if !list.is_empty() {
                        XmlValue::List(list)
                    } else {
                        XmlValue::Text(text)
                    };
                    fields.push((name, value));
                }
                Event::Empty(e) => {
                    let value = if is_nil(&e)? {
                        XmlValue::Nil
                    } else {
                        XmlValue::Text(String::new())
                    };
                    fields.push((local_name(&e), value));
                }
                Event::End(_) => break,
                Event::Eof => return Err(malformed("the XML body ends inside its root element")),
                _ => {}
            }
        }
    }
    p.finish()?;
    Ok(fields)
}

/// Reads a `<job_dispatch_log>` document.
pub fn decode_one(body: &[u8]) -> Result<RawRecord, DecodeError> {
    let mut p = Parser::new(body)?;
    let (root, empty) = p.root()?;
    if root != ROOT {
        return Err(malformed(format!(
            "the root element must be <{ROOT}>, not <{root}>"
        )));
    }
    let record = if empty {
        RawRecord::default()
    } else {
        p.record()?
    };
    p.finish()?;
    Ok(record)
}

/// Reads an `<ArrayOfjob_dispatch_log>` document of at most `max` rows; reading stops at the
/// first row too many.
pub fn decode_list(body: &[u8], max: usize) -> Result<Vec<RawRecord>, DecodeError> {
    let mut p = Parser::new(body)?;
    let (root, empty) = p.root()?;
    if root != LIST_ROOT {
        return Err(malformed(format!(
            "the root element must be <{LIST_ROOT}>, not <{root}>"
        )));
    }
    let mut records = Vec::new();
    if !empty {
        loop {
            match p.next()? {
                Event::Start(e) | Event::Empty(e)
                    if local_name(&e) == ROOT && records.len() == max =>
                {
                    return Err(DecodeError::TooMany(max))
                }
                Event::Start(e) if local_name(&e) == ROOT => records.push(p.record()?),
                Event::Empty(e) if local_name(&e) == ROOT => records.push(RawRecord::default()),
                Event::Start(e) | Event::Empty(e) => {
                    return Err(malformed(format!(
                        "<{LIST_ROOT}> may only hold <{ROOT}> elements, not <{}>",
                        local_name(&e)
                    )))
                }
                Event::End(_) => break,
                Event::Eof => {
                    return Err(malformed(format!("the XML body ends inside <{LIST_ROOT}>")))
                }
                _ => {}
            }
        }
    }
    p.finish()?;
    Ok(records)
}

/// Writes one row as a document.
pub fn encode_row(row: &JobDispatchLog) -> String {
    let mut out = String::with_capacity(768);
    write_row(&mut out, row, None, true);
    out
}

/// Writes rows as an `ArrayOfjob_dispatch_log` document.
pub fn encode_rows(rows: &[JobDispatchLog]) -> String {
    let mut out = String::with_capacity(96 + rows.len() * 768);
    write_rows(&mut out, rows, None);
    out
}

/// Writes rows as an `ArrayOfjob_dispatch_log` document, each limited to `select` when given.
pub fn write_rows(out: &mut String, rows: &[JobDispatchLog], select: Option<&[Field]>) {
    out.push_str(&format!("<{LIST_ROOT} xmlns:i=\"{INSTANCE_NS}\">"));
    for row in rows {
        write_row(out, row, select, false);
    }
    out.push_str(&format!("</{LIST_ROOT}>"));
}

/// Writes one `<job_dispatch_log>` element; `root` adds the namespace declaration.
pub fn write_row(out: &mut String, row: &JobDispatchLog, select: Option<&[Field]>, root: bool) {
    if root {
        out.push_str(&format!("<{ROOT} xmlns:i=\"{INSTANCE_NS}\">"));
    } else {
        out.push_str(&format!("<{ROOT}>"));
    }
    for field in xml_order() {
        if select.is_some_and(|s| !s.contains(&field)) {
            continue;
        }
        let name = field.name();
        out.push('<');
        out.push_str(name);
        out.push('>');
        write_value(out, row, field);
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    out.push_str(&format!("</{ROOT}>"));
}

/// Escapes text for element content; carriage returns are kept as character references so they
/// survive the parser's line-end normalisation.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, row: &JobDispatchLog, field: Field) {
    let guid = |out: &mut String, id: &uuid::Uuid| {
        out.push_str(
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        )
    };
    let boolean = |out: &mut String, b: bool| out.push_str(if b { "true" } else { "false" });
    match field {
        Field::Id => guid(out, &row.id),
        Field::JobsId => guid(out, &row.jobs_id),
        Field::UserId => guid(out, &row.user_id),
        Field::DateCreate => out.push_str(&row.date_create.to_xml_string()),
        Field::DateProceeded => out.push_str(&row.date_proceeded.to_xml_string()),
        Field::IsAccepted => boolean(out, row.is_accepted),
        Field::IsRejected => boolean(out, row.is_rejected),
        Field::RejectedReason => escape_into(out, &row.rejected_reason),
        Field::SysLogicalDelete => boolean(out, row.sys_logical_delete),
        Field::IsWorkshop => boolean(out, row.is_workshop),
        Field::ModifiedDateutc => out.push_str(&row.modified_dateutc.to_xml_string()),
        Field::Sequence => out.push_str(&row.sequence.to_string()),
        Field::AssignedUserIds => escape_into(out, &row.assigned_user_ids),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doctype_is_refused() {
        let body = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><job_dispatch_log><rejected_reason>&e;</rejected_reason></job_dispatch_log>"#;
        let err = decode_one(body).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(m) if m.contains("DOCTYPE")));
    }

    #[test]
    fn any_order_nil_and_unknown_elements_are_accepted() {
        let body = br#"<job_dispatch_log xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="urn:x">
            <user_id>ab53b170-9ede-42f6-85e5-eac282e3ac0a</user_id>
            <extra><deep>1</deep></extra>
            <date_proceeded i:nil="true"/>
            <rejected_reason> a &amp; b </rejected_reason>
        </job_dispatch_log>"#;
        let r = decode_one(body).unwrap();
        assert_eq!(r.get(Field::DateProceeded), Some(&RawValue::Null));
        assert_eq!(
            r.get(Field::RejectedReason),
            Some(&RawValue::Text(" a & b ".into()))
        );
        assert!(r.get(Field::UserId).is_some());
    }

    #[test]
    fn unknown_entities_are_refused() {
        let body = b"<job_dispatch_log><rejected_reason>&xxe;</rejected_reason></job_dispatch_log>";
        assert!(decode_one(body).is_err());
    }

    fn reason(body: &str) -> Result<RawRecord, DecodeError> {
        decode_one(
            format!(
                "<job_dispatch_log><rejected_reason>{body}</rejected_reason></job_dispatch_log>"
            )
            .as_bytes(),
        )
    }

    #[test]
    fn character_references_and_predefined_entities_become_their_text() {
        let r = reason("1&#x26;2&#38;3&lt;&gt;&quot;&apos;&#xD;&#10;é&#233;").unwrap();
        assert_eq!(
            r.get(Field::RejectedReason),
            Some(&RawValue::Text("1&2&3<>\"'\r\néé".into()))
        );
        // Our own encoder's output reads back identical (carriage returns included).
        let row = JobDispatchLog {
            id: uuid::Uuid::new_v4(),
            jobs_id: uuid::Uuid::new_v4(),
            user_id: uuid::Uuid::new_v4(),
            date_create: crate::domain::Timestamp::from_ticks(0),
            date_proceeded: crate::domain::Timestamp::UNSET_PROCEEDED,
            is_accepted: false,
            is_rejected: true,
            rejected_reason: "a\r\nb & <c>".into(),
            sys_logical_delete: false,
            is_workshop: false,
            modified_dateutc: crate::domain::Timestamp::from_ticks(0),
            sequence: 1,
            assigned_user_ids: String::new(),
        };
        let back = decode_one(encode_row(&row).as_bytes()).unwrap();
        assert_eq!(
            back.get(Field::RejectedReason),
            Some(&RawValue::Text("a\r\nb & <c>".into()))
        );
    }

    #[test]
    fn malformed_references_are_refused_with_the_element_named() {
        for bad in ["&#0;", "&#xFFFFFFFF;", "&#x;", "&#12a;", "&amp", "& b"] {
            match reason(bad) {
                Err(DecodeError::Malformed(m)) => assert!(!m.is_empty(), "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        match reason("&#0;") {
            Err(DecodeError::Malformed(m)) => assert!(m.contains("<rejected_reason>"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
