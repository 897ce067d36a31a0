//! Documents beyond single rows, both ways: the Dispatch request, an OData list page, the
//! changes feed and a row's history. Handlers and the help samples both use these, so a sample
//! is always what the service really reads or writes.

use serde_json::Value;
use uuid::Uuid;

use super::xml::{escape_into, XmlValue, INSTANCE_NS};
use super::{json, xml, DecodeError, Format};
use crate::domain::workflow::{DispatchRequest, HistoryEntry};
use crate::domain::{Field, JobDispatchLog, ValidationErrors};

/// Reads a Dispatch body, `{"jobs_id", "user_ids", "is_workshop"}` or its XML form, and checks
/// it ([`DispatchRequest::parse`]).
pub fn decode_dispatch(format: Format, body: &[u8]) -> Result<DispatchRequest, DecodeError> {
    let mut errors = ValidationErrors::default();
    let (jobs_id, user_ids, is_workshop) = match format {
        Format::Json => {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| DecodeError::Malformed(format!("the body is not valid JSON: {e}")))?;
            let Value::Object(map) = value else {
                return Err(DecodeError::Malformed(
                    "the body must be a JSON object {\"jobs_id\", \"user_ids\", \"is_workshop\"}"
                        .into(),
                ));
            };
            let get = |name: &str| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let jobs_id = match get("jobs_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    errors.add("jobs_id", "must be a GUID string");
                    None
                }
            };
            let user_ids = match get("user_ids") {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect(),
                ),
                Some(_) => {
                    errors.add("user_ids", "must be an array of GUID strings");
                    None
                }
            };
            let is_workshop = match get("is_workshop") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    errors.add("is_workshop", "must be a boolean (true or false)");
                    false
                }
            };
            (jobs_id, user_ids, is_workshop)
        }
        Format::Xml => {
            let fields = xml::decode_fields(body)?;
            let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            let jobs_id = match get("jobs_id") {
                Some(XmlValue::Text(t)) if !t.trim().is_empty() => Some(t.clone()),
                _ => None,
            };
            let user_ids = match get("user_ids") {
                Some(XmlValue::List(items)) => Some(items.iter().cloned().map(Some).collect()),
                Some(XmlValue::Text(t)) if !t.trim().is_empty() => {
                    Some(t.split(',').map(|s| Some(s.trim().to_string())).collect())
                }
                _ => None,
            };
            let is_workshop = match get("is_workshop") {
                Some(XmlValue::Text(t)) => match t.trim() {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    _ => {
                        errors.add("is_workshop", "must be a boolean (true or false)");
                        false
                    }
                },
                _ => false,
            };
            (jobs_id, user_ids, is_workshop)
        }
    };
    match DispatchRequest::parse(jobs_id.as_deref(), user_ids, is_workshop) {
        Ok(request) if errors.is_empty() => Ok(request),
        Ok(_) => Err(DecodeError::Invalid(errors)),
        Err(more) => {
            errors.absorb_prefixed("", more);
            Err(DecodeError::Invalid(errors))
        }
    }
}

/// A Dispatch body as a client writes it (the help pages' sample).
pub fn encode_dispatch(
    format: Format,
    jobs_id: Uuid,
    user_ids: &[Uuid],
    is_workshop: bool,
) -> String {
    match format {
        Format::Json => serde_json::json!({
            "jobs_id": jobs_id.to_string(),
            "user_ids": user_ids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
            "is_workshop": is_workshop,
        })
        .to_string(),
        Format::Xml => {
            let mut out = format!(
                "<Dispatch xmlns:i=\"{INSTANCE_NS}\"><is_workshop>{is_workshop}</is_workshop><jobs_id>{jobs_id}</jobs_id><user_ids>"
            );
            for id in user_ids {
                out.push_str(&format!("<guid>{id}</guid>"));
            }
            out.push_str("</user_ids></Dispatch>");
            out
        }
    }
}

/// One page of the OData list: in JSON `{"@odata.context", "value", "@odata.count"?,
/// "@odata.nextLink"?}` (the context URL under `base`, the service's `scheme://host`); in XML
/// the `ArrayOfjob_dispatch_log` alone (count and next link travel as headers).
pub fn encode_list_page(
    format: Format,
    rows: &[JobDispatchLog],
    select: Option<&[Field]>,
    base: &str,
    count: Option<u64>,
    next_link: Option<&str>,
) -> String {
    let mut body = String::with_capacity(256 + rows.len() * 600);
    match format {
        Format::Json => {
            body.push_str("{\"@odata.context\":");
            body.push_str(
                &serde_json::Value::from(format!("{base}/api/$metadata#JobDispatchLog"))
                    .to_string(),
            );
            body.push_str(",\"value\":");
            json::write_rows(&mut body, rows, select);
            if let Some(count) = count {
                body.push_str(&format!(",\"@odata.count\":{count}"));
            }
            if let Some(next) = next_link {
                body.push_str(",\"@odata.nextLink\":");
                body.push_str(&serde_json::Value::from(next).to_string());
            }
            body.push('}');
        }
        Format::Xml => xml::write_rows(&mut body, rows, select),
    }
    body
}

/// `{"value": [...], "removed": [...], "cursor": "...", "has_more": bool}` or its XML form.
pub fn encode_changes(
    format: Format,
    rows: &[JobDispatchLog],
    removed: &[Uuid],
    cursor: &str,
    has_more: bool,
) -> String {
    let mut out = String::with_capacity(128 + rows.len() * 600);
    match format {
        Format::Json => {
            out.push_str("{\"value\":");
            json::write_rows(&mut out, rows, None);
            out.push_str(",\"removed\":[");
            for (i, id) in removed.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(&id.to_string());
                out.push('"');
            }
            out.push_str("],\"cursor\":");
            out.push_str(&serde_json::Value::from(cursor).to_string());
            out.push_str(",\"has_more\":");
            out.push_str(if has_more { "true" } else { "false" });
            out.push('}');
        }
        Format::Xml => {
            out.push_str(&format!("<Changes xmlns:i=\"{INSTANCE_NS}\"><cursor>"));
            escape_into(&mut out, cursor);
            out.push_str("</cursor><has_more>");
            out.push_str(if has_more { "true" } else { "false" });
            out.push_str("</has_more><removed>");
            for id in removed {
                out.push_str(&format!("<guid>{id}</guid>"));
            }
            out.push_str("</removed><value>");
            for row in rows {
                xml::write_row(&mut out, row, None, false);
            }
            out.push_str("</value></Changes>");
        }
    }
    out
}

/// A row's history, oldest first.
pub fn encode_history(format: Format, id: Uuid, entries: &[HistoryEntry]) -> String {
    match format {
        Format::Json => {
            let value: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let changes: serde_json::Map<String, serde_json::Value> = e
                        .changes
                        .iter()
                        .map(|(field, [from, to])| {
                            (field.clone(), serde_json::json!({"from": from, "to": to}))
                        })
                        .collect();
                    serde_json::json!({
                        "at": e.at.to_json_string(),
                        "client_at": e.client_at.map(|t| t.to_json_string()),
                        "actor": e.actor,
                        "action": e.action,
                        "changes": changes,
                    })
                })
                .collect();
            serde_json::json!({"id": id.to_string(), "value": value}).to_string()
        }
        Format::Xml => {
            let mut out = format!("<History xmlns:i=\"{INSTANCE_NS}\"><id>{id}</id><value>");
            for e in entries {
                out.push_str("<entry><action>");
                escape_into(&mut out, &e.action);
                out.push_str("</action><actor>");
                escape_into(&mut out, &e.actor);
                out.push_str(&format!(
                    "</actor><at>{}</at><changes>",
                    e.at.to_xml_string()
                ));
                for (field, [from, to]) in &e.changes {
                    out.push_str("<change field=\"");
                    escape_into(&mut out, field);
                    out.push_str("\"><from>");
                    escape_into(&mut out, from);
                    out.push_str("</from><to>");
                    escape_into(&mut out, to);
                    out.push_str("</to></change>");
                }
                out.push_str("</changes>");
                match e.client_at {
                    Some(t) => {
                        out.push_str(&format!("<client_at>{}</client_at>", t.to_xml_string()))
                    }
                    None => out.push_str("<client_at i:nil=\"true\"/>"),
                }
                out.push_str("</entry>");
            }
            out.push_str("</value></History>");
            out
        }
    }
}
