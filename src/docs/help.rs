//! The help pages' HTML, in the structure of the original platform's generated pages (field
//! table, JSON and XML samples), built from the endpoint catalogue and the field table: the
//! sibling of [`super::openapi`]. The HTTP handlers that serve them are in `http/help.rs`.

use super::samples;
use super::{
    error_meaning, Body, Document, Endpoint, Member, MemberType, Param, ParamIn, Reply, ENDPOINTS,
};
use crate::domain::{Field, FIELDS};
use crate::wire::Format;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;line-height:1.5;color:#1f2328;margin:0;background:#fff}\
header{background:#1e3a5f;color:#fff;padding:.75rem 1rem}\
header a{color:#fff;text-decoration:none;font-weight:600}\
main{max-width:64rem;margin:0 auto;padding:1rem}\
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.3rem;border-bottom:1px solid #d0d7de;padding-bottom:.25rem;margin-top:2rem}\
h3{font-size:1.1rem;margin-top:1.5rem}h4{font-size:1rem;margin:1rem 0 .25rem}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}\
.endpoint{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5rem .75rem;overflow-wrap:anywhere}\
.method{font-weight:700;color:#0a3069;margin-right:.5rem}\
.table-wrap{overflow-x:auto}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}\
th,td{border:1px solid #d0d7de;padding:.4rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}\
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.75rem;overflow-x:auto;font-size:.85rem}\
.type-name{font-weight:600;margin:.75rem 0 .25rem}\
@media (max-width:40rem){main{padding:.5rem}\
table.fields thead,table.parameters thead{display:none}\
table.fields tr,table.parameters tr{display:block;border:1px solid #d0d7de;border-radius:6px;margin-bottom:.5rem}\
table.fields td,table.parameters td{display:block;border:none;padding:.2rem .5rem}\
table.fields td[data-label]::before,table.parameters td[data-label]::before{content:attr(data-label) \": \";font-weight:600}\
table.fields td:first-child,table.parameters td:first-child{background:#f6f8fa;font-weight:600}}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - dispatchlog API Help</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><a href=\"/Help\">dispatchlog API Help</a></header>\n<main>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// The index of every endpoint's page.
pub fn index_page() -> String {
    let mut body = String::from(
        "<h1>dispatchlog API</h1>\n<p>Dispatches of jobs to technicians: save, decide, query and \
         sync them. Every resource endpoint reads and writes JSON (<code>application/json</code>, \
         <code>text/json</code>) and XML (<code>application/xml</code>, <code>text/xml</code>) and \
         needs credentials: <code>Authorization: Basic base64(username:password@domain)</code> or a \
         Bearer token. The machine-readable description is <a href=\"/openapi.json\">/openapi.json</a>.</p>\n",
    );
    for (resource, heading) in [(true, "JobDispatchLog"), (false, "Service")] {
        body.push_str(&format!(
            "<h2>{heading}</h2>\n<div class=\"table-wrap\"><table class=\"endpoints\">\n\
             <thead><tr><th>API</th><th>Description</th></tr></thead>\n<tbody>\n"
        ));
        for e in ENDPOINTS.iter().filter(|e| e.resource == resource) {
            body.push_str(&format!(
                "<tr><td><a href=\"/Help/Api/{page}\"><span class=\"method\">{method}</span><code>{path}</code></a></td><td>{summary}</td></tr>\n",
                page = escape(e.page),
                method = escape(e.method),
                path = escape(e.path),
                summary = escape(e.summary),
            ));
        }
        body.push_str("</tbody></table></div>\n");
    }
    layout("Help", &body)
}

fn table(class: &str, data_type: &str, rows: &[[String; 4]], keys: &[&str]) -> String {
    let mut out = format!(
        "<div class=\"table-wrap\"><table class=\"{class}\" data-type=\"{}\">\n<thead><tr><th>Name</th><th>Description</th><th>Type</th><th>Additional information</th></tr></thead>\n<tbody>\n",
        escape(data_type)
    );
    for (row, key) in rows.iter().zip(keys) {
        out.push_str(&format!(
            "<tr data-field=\"{}\"><td><code>{}</code></td><td data-label=\"Description\">{}</td><td data-label=\"Type\">{}</td><td data-label=\"Additional information\">{}</td></tr>\n",
            escape(key),
            escape(&row[0]),
            escape(&row[1]),
            escape(&row[2]),
            escape(&row[3]),
        ));
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// The field table of `job_dispatch_log`, limited to `only` when given.
fn fields_table(only: Option<&[Field]>) -> String {
    let metas: Vec<_> = FIELDS
        .iter()
        .filter(|m| only.is_none_or(|o| o.contains(&m.field)))
        .collect();
    let rows: Vec<[String; 4]> = metas
        .iter()
        .map(|m| {
            [
                m.name.to_string(),
                m.description.to_string(),
                m.ty.help_name().to_string(),
                m.rules.to_string(),
            ]
        })
        .collect();
    let keys: Vec<&str> = metas.iter().map(|m| m.name).collect();
    format!(
        "<p class=\"type-name\">job_dispatch_log</p>\n{}",
        table("fields", "job_dispatch_log", &rows, &keys)
    )
}

fn member_type_name(ty: MemberType) -> String {
    match ty {
        MemberType::Scalar(t) => t.help_name().to_string(),
        MemberType::Nullable(t) => format!("{}, or null", t.help_name()),
        MemberType::ListOf(t) => format!("Collection of {}", t.help_name()),
        MemberType::Row => "job_dispatch_log".into(),
        MemberType::Rows => "Collection of job_dispatch_log".into(),
        MemberType::ListOfDocuments(d) => format!("Collection of {}", d.name),
        MemberType::ChangeMap => "Dictionary of field name and {from, to}".into(),
    }
}

fn document_tables(doc: &Document) -> String {
    let rows: Vec<[String; 4]> = doc
        .members
        .iter()
        .map(|m: &Member| {
            let mut rules = m.rules.to_string();
            if m.required {
                rules = format!("Required. {rules}").trim().to_string();
            }
            [
                m.name.to_string(),
                m.description.to_string(),
                member_type_name(m.ty),
                rules,
            ]
        })
        .collect();
    let keys: Vec<&str> = doc.members.iter().map(|m| m.name).collect();
    let mut out = format!(
        "<p class=\"type-name\">{}</p>\n<p>{}</p>\n{}",
        escape(doc.name),
        escape(doc.description),
        table("fields", doc.name, &rows, &keys)
    );
    let mut rows_shown = false;
    for m in doc.members {
        match m.ty {
            MemberType::Row | MemberType::Rows if !rows_shown => {
                rows_shown = true;
                out.push_str(&fields_table(None));
            }
            MemberType::ListOfDocuments(d) => out.push_str(&document_tables(d)),
            _ => {}
        }
    }
    out
}

fn params_table(params: &[&Param]) -> String {
    if params.is_empty() {
        return "<p>None.</p>\n".into();
    }
    let rows: Vec<[String; 4]> = params
        .iter()
        .map(|p| {
            let rules = if p.required {
                format!("Required. {}", p.rules)
            } else {
                p.rules.to_string()
            };
            [
                p.name.to_string(),
                p.description.to_string(),
                p.ty.help_name().to_string(),
                rules,
            ]
        })
        .collect();
    let keys: Vec<&str> = params.iter().map(|p| p.name).collect();
    table("parameters", "parameters", &rows, &keys)
}

fn samples_section(part: &str, json: Option<String>, xml: Option<String>) -> String {
    let mut out = String::new();
    for (label, format, text) in [
        ("application/json, text/json", "json", json),
        ("application/xml, text/xml", "xml", xml),
    ] {
        if let Some(text) = text {
            out.push_str(&format!(
                "<h4>{label}</h4>\n<p>Sample:</p>\n<pre class=\"sample\" data-part=\"{part}\" data-format=\"{format}\"><code>{}</code></pre>\n",
                escape(&text)
            ));
        }
    }
    if out.is_empty() {
        out.push_str("<p>None.</p>\n");
    }
    out
}

/// The page of one endpoint.
pub fn endpoint_page(e: &Endpoint) -> String {
    let mut b = format!("<h1>{}</h1>\n", escape(e.summary));
    for path in e.paths() {
        b.push_str(&format!(
            "<p class=\"endpoint\"><span class=\"method\">{}</span><code>{}</code></p>\n",
            escape(e.method),
            escape(path)
        ));
    }
    b.push_str(&format!("<p>{}</p>\n", escape(e.description)));
    b.push_str(if e.authenticated {
        "<p>Needs credentials: <code>Authorization: Basic base64(username:password@domain)</code> or <code>Bearer</code> token.</p>\n"
    } else {
        "<p>No credentials needed.</p>\n"
    });

    b.push_str("<h2>Request Information</h2>\n<h3>URI Parameters</h3>\n");
    let uri: Vec<&Param> = e
        .all_params()
        .filter(|p| p.location != ParamIn::Header)
        .collect();
    b.push_str(&params_table(&uri));
    let headers: Vec<&Param> = e
        .all_params()
        .filter(|p| p.location == ParamIn::Header)
        .collect();
    if !headers.is_empty() {
        b.push_str("<h3>Header Parameters</h3>\n");
        b.push_str(&params_table(&headers));
    }
    b.push_str("<h3>Body Parameters</h3>\n");
    match e.body {
        Body::None => b.push_str("<p>None.</p>\n"),
        Body::Row => b.push_str(&fields_table(None)),
        Body::Rows => {
            b.push_str("<p>Collection of job_dispatch_log (at most 1000).</p>\n");
            b.push_str(&fields_table(None));
        }
        Body::Fields { fields, .. } => {
            if !e.body_required {
                b.push_str("<p>Optional.</p>\n");
            }
            b.push_str(&fields_table(Some(fields)));
        }
        Body::Document(d) => b.push_str(&document_tables(d)),
    }
    b.push_str("<h3>Request Formats</h3>\n");
    b.push_str(&samples_section(
        "request",
        samples::request(e.body, Format::Json),
        samples::request(e.body, Format::Xml),
    ));

    b.push_str("<h2>Response Information</h2>\n<h3>Resource Description</h3>\n");
    match e.reply {
        Reply::None => b.push_str("<p>None.</p>\n"),
        Reply::Row => b.push_str(&fields_table(None)),
        Reply::Rows => {
            b.push_str("<p>Collection of job_dispatch_log.</p>\n");
            b.push_str(&fields_table(None));
        }
        Reply::Document(d) => b.push_str(&document_tables(d)),
        Reply::Other {
            media_type,
            description,
        } => b.push_str(&format!(
            "<p>{} (<code>{}</code>).</p>\n",
            escape(description),
            escape(media_type)
        )),
    }
    if e.resource {
        b.push_str("<h3>Response Formats</h3>\n");
        b.push_str(&samples_section(
            "response",
            samples::reply(e.reply, Format::Json),
            samples::reply(e.reply, Format::Xml),
        ));
    }

    b.push_str("<h3>Status Codes</h3>\n<div class=\"table-wrap\"><table class=\"statuses\">\n<thead><tr><th>Status</th><th>Meaning</th></tr></thead>\n<tbody>\n");
    let statuses = e
        .success
        .iter()
        .copied()
        .chain(e.errors.iter().map(|s| (*s, error_meaning(*s))));
    for (status, meaning) in statuses {
        b.push_str(&format!(
            "<tr><td>{status}</td><td>{}</td></tr>\n",
            escape(meaning)
        ));
    }
    b.push_str("</tbody></table></div>\n");
    if e.errors.iter().any(|s| *s >= 400) {
        b.push_str("<p>Errors carry the members of RFC 9457 problem details: <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, <code>Message</code> (same text as <code>detail</code>) and, for validation errors, <code>errors</code> by field. In JSON they come as <code>application/json</code>, or as <code>application/problem+json</code> when the request's <code>Accept</code> names it. In XML they come as <code>application/xml</code> with root <code>&lt;Error&gt;</code> and <code>&lt;Message&gt;</code> first, which ASP.NET Web API's <code>ReadAsAsync&lt;HttpError&gt;()</code> reads, or as <code>application/problem+xml</code> with root <code>&lt;problem&gt;</code> when <code>Accept</code> names it.</p>\n");
    }
    layout(e.summary, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn every_endpoint_has_a_page_listed_on_the_index() {
        let index = index_page();
        for e in ENDPOINTS {
            assert!(
                index.contains(&format!("/Help/Api/{}", e.page)),
                "{}",
                e.page
            );
            assert!(endpoint_page(e).contains("<h2>Request Information</h2>"));
        }
    }
}
