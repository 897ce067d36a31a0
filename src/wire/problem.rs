//! Error bodies: RFC 9457 problem details, in JSON or XML, and the same members in the form
//! ASP.NET Web API's `HttpError` takes (SPEC §4.4, [`super::ProblemForm`]).
//!
//! `Message` repeats `detail` because clients written for ASP.NET Web API read that member.

use std::collections::BTreeMap;

use super::xml::{escape_into, write_row};
use super::{Format, ProblemForm};
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

    pub fn encode(&self, form: ProblemForm) -> String {
        match form.format {
            Format::Json => self.to_json(),
            Format::Xml => self.to_xml(!form.rfc9457),
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

    /// The members as child elements: of `<problem>` in RFC 9457's namespace, or, for `web_api`,
    /// of `<Error>` in no namespace with `Message` first. Web API clients read errors with
    /// `DataContractSerializer` into `HttpError`, which refuses any other root, and `HttpError`
    /// writes `Message` first.
    fn to_xml(&self, web_api: bool) -> String {
        let (start, root) = if web_api {
            ("Error", "Error")
        } else {
            ("problem xmlns=\"urn:ietf:rfc:7807\"", "problem")
        };
        let mut out = format!("<{start}>");
        let element = |out: &mut String, name: &str, text: &str| {
            out.push('<');
            out.push_str(name);
            out.push('>');
            escape_into(out, text);
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        };
        if web_api {
            element(&mut out, "Message", &self.detail);
        }
        element(&mut out, "type", &self.type_uri());
        element(&mut out, "title", self.title);
        element(&mut out, "status", &self.status.to_string());
        element(&mut out, "detail", &self.detail);
        if !web_api {
            element(&mut out, "Message", &self.detail);
        }
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
        out.push_str("</");
        out.push_str(root);
        out.push('>');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem() -> Problem {
        let mut errors = BTreeMap::new();
        errors.insert("[3].is_rejected".to_string(), vec!["a & b".to_string()]);
        Problem {
            status: 400,
            kind: "validation",
            title: "Validation failed",
            detail: "One field <is> wrong.".into(),
            errors: Some(errors),
            current: None,
        }
    }

    #[test]
    fn web_api_xml_errors_have_an_error_root_without_namespace_and_message_first() {
        let xml = problem().encode(ProblemForm {
            format: Format::Xml,
            rfc9457: false,
        });
        assert_eq!(
            xml,
            "<Error><Message>One field &lt;is&gt; wrong.</Message>\
             <type>urn:dispatchlog:problem:validation</type><title>Validation failed</title>\
             <status>400</status><detail>One field &lt;is&gt; wrong.</detail>\
             <errors><error field=\"[3].is_rejected\"><message>a &amp; b</message></error></errors>\
             </Error>"
        );
    }

    #[test]
    fn rfc_9457_xml_problems_keep_their_namespace_and_order() {
        let xml = problem().encode(ProblemForm {
            format: Format::Xml,
            rfc9457: true,
        });
        assert!(
            xml.starts_with("<problem xmlns=\"urn:ietf:rfc:7807\"><type>"),
            "{xml}"
        );
        assert!(xml.ends_with("</errors></problem>"), "{xml}");
    }

    #[test]
    fn json_is_the_same_object_in_either_form() {
        let [a, b] = [true, false].map(|rfc9457| {
            problem().encode(ProblemForm {
                format: Format::Json,
                rfc9457,
            })
        });
        assert_eq!(a, b);
    }
}
