//! Response documents beyond single rows: the changes feed and a row's history.

use uuid::Uuid;

use super::xml::{escape_into, INSTANCE_NS};
use super::{json, xml, Format};
use crate::domain::workflow::HistoryEntry;
use crate::domain::JobDispatchLog;

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
