//! RFC 9457 problem details, in JSON or XML.
//!
//! `Message` repeats `detail` because clients written for ASP.NET Web API read that member.

use std::collections::BTreeMap;

use super::xml::{escape_into, write_row};
use super::Format;
use crate::domain::JobDispatchLog;

/// One error, as sent to the client.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: u16,
    /// A short, stable slug that becomes the `type` URI.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Field name → messages, for validation problems.
    pub errors: Option<BTreeMap<String, Vec<String>>>,
    /// The row as it stands now, for conflicts and failed preconditions.
    pub current: Option<Box<JobDispatchLog>>,
}

impl Problem {
    pub fn type_uri(&self) -> String {
        format!("urn:dispatchlog:problem:{}", self.kind)
    }

    pub fn encode(&self, format: Format) -> String {
        match format {
            Format::Json => self.to_json(),
            Format::Xml => self.to_xml(),
        }
    }

    fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("type".into(), self.type_uri().into());
        map.insert("title".into(), self.title.into());
        map.insert("status".into(), self.status.into());
        map.insert("detail".into(), self.detail.clone().into());
        map.insert("Message".into(), self.detail.clone().into());
        if let Some(errors) = &self.errors {
            map.insert(
                "errors".into(),
                serde_json::to_value(errors).unwrap_or_default(),
            );
        }
        let mut out = serde_json::Value::Object(map).to_string();
        if let Some(row) = &self.current {
            // Append the row in its own wire form, ahead of the closing brace.
            out.pop();
            out.push_str(",\"current\":");
            super::json::write_row(&mut out, row, None);
            out.push('}');
        }
        out
    }

    fn to_xml(&self) -> String {
        let mut out = String::from("<problem xmlns=\"urn:ietf:rfc:7807\">");
        let element = |out: &mut String, name: &str, text: &str| {
            out.push('<');
            out.push_str(name);
            out.push('>');
            escape_into(out, text);
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        };
        element(&mut out, "type", &self.type_uri());
        element(&mut out, "title", self.title);
        element(&mut out, "status", &self.status.to_string());
        element(&mut out, "detail", &self.detail);
        element(&mut out, "Message", &self.detail);
        if let Some(errors) = &self.errors {
            out.push_str("<errors>");
            for (field, messages) in errors {
                out.push_str("<error field=\"");
                escape_into(&mut out, field);
                out.push_str("\">");
                for message in messages {
                    element(&mut out, "message", message);
                }
                out.push_str("</error>");
            }
            out.push_str("</errors>");
        }
        if let Some(row) = &self.current {
            out.push_str("<current>");
            write_row(&mut out, row, None, true);
            out.push_str("</current>");
        }
        out.push_str("</problem>");
        out
    }
}
