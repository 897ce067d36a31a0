//! The catalogue of the API: every endpoint and every document it reads or writes, declared once.
//!
//! The help pages ([`help`]) and the OpenAPI document ([`openapi`]) are both
//! generated from this catalogue and from the field table [`crate::domain::FIELDS`], so an
//! endpoint or a field added here or there shows up in both.

mod documents;
mod endpoints;
pub mod help;
pub mod openapi;
pub mod samples;

pub use documents::{CHANGES, DISPATCH, HISTORY, HISTORY_ENTRY, LIST_PAGE};
pub use endpoints::ENDPOINTS;

use crate::domain::{Field, FieldType, FIELDS};

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
    Header,
}

impl ParamIn {
    pub fn openapi_name(self) -> &'static str {
        match self {
            ParamIn::Path => "path",
            ParamIn::Query => "query",
            ParamIn::Header => "header",
        }
    }
}

/// One URI, query or header parameter.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub location: ParamIn,
    pub ty: FieldType,
    pub description: &'static str,
    pub rules: &'static str,
    pub required: bool,
}

/// The type of a member of a document.
#[derive(Debug, Clone, Copy)]
pub enum MemberType {
    Scalar(FieldType),
    /// A scalar or null (null: the client sent none).
    Nullable(FieldType),
    ListOf(FieldType),
    /// One `job_dispatch_log`.
    Row,
    /// A list of `job_dispatch_log`.
    Rows,
    ListOfDocuments(&'static Document),
    /// Field name → `{from, to}` as wire text.
    ChangeMap,
}

/// One member of a document other than a row.
#[derive(Debug)]
pub struct Member {
    pub name: &'static str,
    pub ty: MemberType,
    pub description: &'static str,
    pub rules: &'static str,
    pub required: bool,
}

/// A request or response document other than a row or a list of rows.
#[derive(Debug)]
pub struct Document {
    /// The schema name, and the XML root element.
    pub name: &'static str,
    pub description: &'static str,
    pub members: &'static [Member],
}

/// What a request carries.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    None,
    Row,
    Rows,
    /// A `job_dispatch_log` holding only these fields (Accept, Reject).
    Fields {
        fields: &'static [Field],
        required: &'static [Field],
    },
    Document(&'static Document),
}

/// What a successful response carries.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    None,
    Row,
    Rows,
    Document(&'static Document),
    /// Not part of the resource's wire formats: a page, a text or a metrics exposition.
    Other {
        media_type: &'static str,
        description: &'static str,
    },
}

/// One endpoint.
#[derive(Debug)]
pub struct Endpoint {
    pub method: &'static str,
    /// The path template, axum style (`{id}`).
    pub path: &'static str,
    /// Other paths that reach the same action (the original's OData key syntax).
    pub aliases: &'static [&'static str],
    /// The help page name, as the original names it (`POST-api-JobDispatchLog-Save`).
    pub page: &'static str,
    pub operation_id: &'static str,
    /// The title of the help page.
    pub summary: &'static str,
    pub description: &'static str,
    pub params: &'static [Param],
    pub body: Body,
    pub body_required: bool,
    pub reply: Reply,
    /// Successful statuses and what each means.
    pub success: &'static [(u16, &'static str)],
    /// Error statuses; their meaning is [`error_meaning`].
    pub errors: &'static [u16],
    pub authenticated: bool,
    /// Resource endpoints speak JSON and XML; service endpoints have their own media type.
    pub resource: bool,
}

impl Endpoint {
    /// Every path that reaches this endpoint, the main one first.
    pub fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.path).chain(self.aliases.iter().copied())
    }

    /// The parameters, with `$format` added to every resource endpoint.
    pub fn all_params(&self) -> impl Iterator<Item = &'static Param> + '_ {
        self.params
            .iter()
            .chain(self.resource.then_some(&FORMAT_PARAM))
    }
}

/// What an error status means on this API (SPEC §4.4).
pub fn error_meaning(status: u16) -> &'static str {
    match status {
        400 => "Bad request: a malformed body, field, query option or id; `errors` names the fields.",
        401 => "No or bad credentials (the response carries `WWW-Authenticate: Basic`).",
        403 => "Authenticated, but the caller's role does not allow this.",
        404 => "No such row in the caller's view, or no such route.",
        405 => "The path exists, not with this method.",
        409 => "The row's state forbids the change (deleted, reassigned, already decided); `current` holds the row.",
        410 => "The sync cursor is older than the retention of deleted rows: resync from scratch.",
        412 => "If-Match did not match the row's ETag; `current` holds the row.",
        413 => "The request body is too large (1 MiB, or 16 MiB for SaveMultiple).",
        415 => "Unsupported Content-Type; send application/json, text/json, application/xml or text/xml.",
        429 => "Too many failed logins from this address; see Retry-After.",
        500 => "Unexpected error; it is logged with the request id.",
        503 => "The database is unavailable; retry later.",
        _ => "",
    }
}

/// The field metadata of one field, for documents that reuse its description.
pub(crate) const fn meta(field: Field) -> &'static crate::domain::fields::FieldMeta {
    &FIELDS[field as usize]
}

pub static FORMAT_PARAM: Param = Param {
    name: "$format",
    location: ParamIn::Query,
    ty: FieldType::String,
    description: "Response format: json or xml. Overrides the Accept header.",
    rules: "Optional; json or xml.",
    required: false,
};

/// The endpoint with this help page name (the original's names are case-insensitive).
pub fn endpoint_by_page(page: &str) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().find(|e| e.page.eq_ignore_ascii_case(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_names_and_operation_ids_are_unique() {
        for (i, a) in ENDPOINTS.iter().enumerate() {
            for b in &ENDPOINTS[i + 1..] {
                assert_ne!(a.page, b.page);
                assert_ne!(a.operation_id, b.operation_id);
                assert!(a.method != b.method || a.path != b.path, "{}", a.path);
            }
        }
    }

    #[test]
    fn every_error_status_has_a_meaning() {
        for e in ENDPOINTS {
            for status in e.errors {
                assert!(!error_meaning(*status).is_empty(), "{status}");
            }
        }
    }
}
