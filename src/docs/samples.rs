//! Sample bodies for the help pages, written by the service's own encoders.
//!
//! A sample is what the service really sends or reads, only indented for reading: clients copy
//! them, so they must parse back through the real endpoints (the tests post them).

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;
use uuid::Uuid;

use super::{Body, Document, Reply, CHANGES, DISPATCH, HISTORY, LIST_PAGE};
use crate::domain::workflow::HistoryEntry;
use crate::domain::{JobDispatchLog, Timestamp};
use crate::wire::{documents, json, xml, Format};

const SAMPLE_TIME: &str = "2026-01-11T21:02:31.7932294+00:00";

fn guid(text: &str) -> Uuid {
    Uuid::try_parse(text).unwrap_or_default()
}

fn time() -> Timestamp {
    Timestamp::parse(SAMPLE_TIME).unwrap_or(Timestamp::UNSET_PROCEEDED)
}

/// A valid row with the seed page's ids: accepted (never together with rejected).
pub fn sample_row() -> JobDispatchLog {
    let user_id = guid("ab53b170-9ede-42f6-85e5-eac282e3ac0a");
    JobDispatchLog {
        id: guid("567c1c0c-91e3-4ca3-ac31-eb151e427f59"),
        jobs_id: guid("5f1e9a72-a0e8-4276-9cd5-3b00416d5f59"),
        user_id,
        date_create: time(),
        date_proceeded: time(),
        is_accepted: true,
        is_rejected: false,
        rejected_reason: String::new(),
        sys_logical_delete: false,
        is_workshop: false,
        modified_dateutc: time(),
        sequence: 1,
        assigned_user_ids: user_id.to_string(),
    }
}

/// A second row of the same job, for lists: dispatched to another technician, not yet decided.
fn second_row() -> JobDispatchLog {
    let first = sample_row();
    let user_id = guid("4b5fa680-7b78-4ca4-b71a-1be31b3e65d1");
    JobDispatchLog {
        id: guid("9c9a9df6-6e4d-4ec1-801f-f04847d76f21"),
        user_id,
        date_proceeded: Timestamp::UNSET_PROCEEDED,
        is_accepted: false,
        sequence: 2,
        assigned_user_ids: format!("{},{user_id}", first.user_id),
        ..first
    }
}

fn sample_rows() -> Vec<JobDispatchLog> {
    let mut rows = vec![sample_row(), second_row()];
    let all = rows[1].assigned_user_ids.clone();
    rows[0].assigned_user_ids = all;
    rows
}

/// The request body of an endpoint in one format; None when it takes no body.
pub fn request(body: Body, format: Format) -> Option<String> {
    let text = match body {
        Body::None => return None,
        Body::Row => crate::wire::encode_row(format, &sample_row()),
        Body::Rows => crate::wire::encode_rows(format, &sample_rows()),
        Body::Fields { fields, .. } => {
            let mut row = sample_row();
            row.rejected_reason = "Customer not on site".into();
            let mut out = String::new();
            match format {
                Format::Json => json::write_row(&mut out, &row, Some(fields)),
                Format::Xml => xml::write_row(&mut out, &row, Some(fields), true),
            }
            out
        }
        Body::Document(doc) => document(doc, format),
    };
    Some(pretty(format, &text))
}

/// The successful response body of an endpoint in one format; None when it has none or it is
/// not in the resource's formats.
pub fn reply(reply: Reply, format: Format) -> Option<String> {
    let text = match reply {
        Reply::None | Reply::Other { .. } => return None,
        Reply::Row => crate::wire::encode_row(format, &sample_row()),
        Reply::Rows => crate::wire::encode_rows(format, &sample_rows()),
        Reply::Document(doc) => document(doc, format),
    };
    Some(pretty(format, &text))
}

fn document(doc: &Document, format: Format) -> String {
    let rows = sample_rows();
    match doc.name {
        n if n == DISPATCH.name => documents::encode_dispatch(
            format,
            rows[0].jobs_id,
            &[rows[0].user_id, rows[1].user_id],
            false,
        ),
        n if n == CHANGES.name => {
            let cursor = crate::wire::cursor::encode_cursor(Some(time()));
            let removed = [guid("3a3f6f8a-a84d-4ed8-ab7f-560bbe4362b6")];
            documents::encode_changes(format, &rows, &removed, &cursor, false)
        }
        n if n == HISTORY.name => {
            let entry = HistoryEntry {
                at: time(),
                client_at: Some(time()),
                actor: "technician@acme".into(),
                action: "accept".into(),
                changes: BTreeMap::from([
                    (
                        "date_proceeded".to_string(),
                        [
                            Timestamp::UNSET_PROCEEDED.to_json_string(),
                            time().to_json_string(),
                        ],
                    ),
                    ("is_accepted".to_string(), ["false".into(), "true".into()]),
                ]),
            };
            documents::encode_history(format, rows[0].id, &[entry])
        }
        // The context URL relative: the service writes it under the host a client called.
        n if n == LIST_PAGE.name => {
            documents::encode_list_page(format, &rows, None, "", Some(2), None)
        }
        _ => String::new(),
    }
}

/// Indents a compact body for reading, leaving every value byte for byte as encoded.
pub fn pretty(format: Format, text: &str) -> String {
    match format {
        Format::Json => serde_json::from_str::<serde_json::Value>(text)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| text.to_string()),
        Format::Xml => pretty_xml(text).unwrap_or_else(|| text.to_string()),
    }
}

/// One element per line; an element holding only text stays on one line, so text values (where
/// whitespace is significant) are never touched.
fn pretty_xml(text: &str) -> Option<String> {
    let mut reader = Reader::from_str(text);
    let mut events = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Eof => break,
            e => events.push(e.into_owned()),
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let raw = |text: &str| text.to_string();
    let mut i = 0;
    while i < events.len() {
        let indent = "  ".repeat(depth);
        match &events[i] {
            Event::Start(s) => {
                let open = format!("<{}>", raw(&s[..]));
                let close = |e: &Event| match e {
                    Event::End(end) => Some(format!("</{}>", raw(&end[..]))),
                    _ => None,
                };
                match (events.get(i + 1), events.get(i + 2)) {
                    (Some(Event::Text(t)), Some(end)) if close(end).is_some() => {
                        out.push_str(&format!("{indent}{open}{}{}\n", raw(&t[..]), close(end)?));
                        i += 3;
                        continue;
                    }
                    (Some(end), _) if close(end).is_some() => {
                        out.push_str(&format!("{indent}{open}{}\n", close(end)?));
                        i += 2;
                        continue;
                    }
                    _ => {
                        out.push_str(&format!("{indent}{open}\n"));
                        depth += 1;
                    }
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                out.push_str(&format!("{}</{}>\n", "  ".repeat(depth), raw(&e[..])));
            }
            Event::Empty(e) => out.push_str(&format!("{indent}<{}/>\n", raw(&e[..]))),
            Event::Text(t) => out.push_str(&raw(&t[..])),
            // quick-xml reports `&…;` apart from the text around it: written back as it came.
            Event::GeneralRef(r) => out.push_str(&format!("&{};", &r[..])),
            _ => {}
        }
        i += 1;
    }
    Some(out.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    #[test]
    fn indented_samples_decode_to_the_same_row() {
        for format in [Format::Json, Format::Xml] {
            let text = request(Body::Row, format).unwrap();
            assert!(text.contains('\n'), "{text}");
            let compact =
                wire::decode_one(format, wire::encode_row(format, &sample_row()).as_bytes());
            assert_eq!(wire::decode_one(format, text.as_bytes()), compact);
        }
    }

    #[test]
    fn the_sample_row_is_valid() {
        let raw = wire::decode_one(
            Format::Json,
            wire::json::encode_row(&sample_row()).as_bytes(),
        )
        .unwrap();
        assert!(crate::domain::DispatchDraft::try_from(&raw).is_ok());
    }
}
