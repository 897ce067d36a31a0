//! The catalogue of the API: every endpoint and every document it reads or writes, declared once.
//!
//! The help pages ([`crate::http::help`]) and the OpenAPI document ([`openapi`]) are both
//! generated from this catalogue and from the field table [`crate::domain::FIELDS`], so an
//! endpoint or a field added here or there shows up in both.

pub mod openapi;
pub mod samples;

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
const fn meta(field: Field) -> &'static crate::domain::fields::FieldMeta {
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

const ID_PARAM: Param = Param {
    name: "id",
    location: ParamIn::Path,
    ty: FieldType::Guid,
    description: meta(Field::Id).description,
    rules: "Required. The row's id; also accepted as guid'…'.",
    required: true,
};

const IF_MATCH: Param = Param {
    name: "If-Match",
    location: ParamIn::Header,
    ty: FieldType::String,
    description: "The ETag of the version the change is based on.",
    rules: "Optional. When the row changed since: 412 with the current row.",
    required: false,
};

const PREFER: Param = Param {
    name: "Prefer",
    location: ParamIn::Header,
    ty: FieldType::String,
    description: "return=minimal answers with the id only.",
    rules: "Optional (RFC 7240).",
    required: false,
};

pub const DISPATCH: Document = Document {
    name: "Dispatch",
    description: "A job and the technicians to send it to.",
    members: &[
        Member {
            name: "jobs_id",
            ty: MemberType::Scalar(FieldType::Guid),
            description: meta(Field::JobsId).description,
            rules: "Required, not all zeros.",
            required: true,
        },
        Member {
            name: "user_ids",
            ty: MemberType::ListOf(FieldType::Guid),
            description: "The technicians to dispatch the job to",
            rules: "Required, 1 to 1000 GUIDs, none all zeros. Technicians already assigned are skipped.",
            required: true,
        },
        Member {
            name: "is_workshop",
            ty: MemberType::Scalar(FieldType::Bool),
            description: meta(Field::IsWorkshop).description,
            rules: "Default false. Applies to every row created.",
            required: false,
        },
    ],
};

pub const CHANGES: Document = Document {
    name: "Changes",
    description: "One page of the sync feed, in commit order.",
    members: &[
        Member {
            name: "value",
            ty: MemberType::Rows,
            description: "Rows changed after the cursor, in commit order; logically deleted rows come as tombstones",
            rules: "At most limit rows.",
            required: true,
        },
        Member {
            name: "removed",
            ty: MemberType::ListOf(FieldType::Guid),
            description: "Ids of rows that left the caller's scope (reassigned to another technician)",
            rules: "Drop them from the local copy.",
            required: true,
        },
        Member {
            name: "cursor",
            ty: MemberType::Scalar(FieldType::String),
            description: "Where the next call continues",
            rules: "Opaque; send it back as since.",
            required: true,
        },
        Member {
            name: "has_more",
            ty: MemberType::Scalar(FieldType::Bool),
            description: "More changes wait after this page",
            rules: "Call again at once with the new cursor while true.",
            required: true,
        },
    ],
};

pub const HISTORY_ENTRY: Document = Document {
    name: "HistoryEntry",
    description: "One change of a row.",
    members: &[
        Member {
            name: "at",
            ty: MemberType::Scalar(FieldType::DateTime),
            description: "When the change was committed (server clock)",
            rules: "UTC.",
            required: true,
        },
        Member {
            name: "client_at",
            ty: MemberType::Nullable(FieldType::DateTime),
            description: "When it happened by the client's clock (an offline decision time)",
            rules: "Null when the client sent none.",
            required: true,
        },
        Member {
            name: "actor",
            ty: MemberType::Scalar(FieldType::String),
            description: "Who made the change",
            rules: "username@domain.",
            required: true,
        },
        Member {
            name: "action",
            ty: MemberType::Scalar(FieldType::String),
            description: "What the change did",
            rules: "One of create, update, accept, reject, reassign, delete, restore.",
            required: true,
        },
        Member {
            name: "changes",
            ty: MemberType::ChangeMap,
            description: "Each changed field with its value before and after",
            rules: "Values as wire text.",
            required: true,
        },
    ],
};

pub const HISTORY: Document = Document {
    name: "History",
    description: "Every change of one row, oldest first.",
    members: &[
        Member {
            name: "id",
            ty: MemberType::Scalar(FieldType::Guid),
            description: meta(Field::Id).description,
            rules: "The row.",
            required: true,
        },
        Member {
            name: "value",
            ty: MemberType::ListOfDocuments(&HISTORY_ENTRY),
            description: "The changes, oldest first",
            rules: "",
            required: true,
        },
    ],
};

pub const LIST_PAGE: Document = Document {
    name: "JobDispatchLogPage",
    description: "One page of a query (XML: an ArrayOfjob_dispatch_log).",
    members: &[
        Member {
            name: "@odata.context",
            ty: MemberType::Scalar(FieldType::String),
            description: "The OData context URL",
            rules: "",
            required: true,
        },
        Member {
            name: "value",
            ty: MemberType::Rows,
            description: "The rows of this page",
            rules: "At most $top rows.",
            required: true,
        },
        Member {
            name: "@odata.count",
            ty: MemberType::Scalar(FieldType::Int32),
            description: "How many rows match the filter",
            rules: "Only with $count=true.",
            required: false,
        },
        Member {
            name: "@odata.nextLink",
            ty: MemberType::Scalar(FieldType::String),
            description: "The URL of the next page",
            rules: "Only when more rows remain (also sent as a Link header).",
            required: false,
        },
    ],
};

const WRITE_ERRORS: &[u16] = &[400, 401, 403, 404, 409, 412, 413, 415, 429, 503];

/// Every endpoint of the service.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "POST",
        path: "/api/JobDispatchLog/Save",
        aliases: &[],
        page: "POST-api-JobDispatchLog-Save",
        operation_id: "save_job_dispatch_log",
        summary: "Add/update job_dispatch_log",
        description: "Adds or updates one row (upsert on id). Save replaces the whole row: a field missing from the body takes its default, except the server-managed ones.",
        params: &[IF_MATCH, PREFER],
        body: Body::Row,
        body_required: true,
        reply: Reply::Row,
        success: &[
            (200, "Updated: the stored row, server fields filled in."),
            (201, "Inserted: the stored row, with Location."),
        ],
        errors: WRITE_ERRORS,
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "POST",
        path: "/api/JobDispatchLog/SaveMultiple",
        aliases: &[],
        page: "POST-api-JobDispatchLog-SaveMultiple",
        operation_id: "save_job_dispatch_logs",
        summary: "Add/update a list of job_dispatch_log",
        description: "Adds or updates up to 1000 rows, all or nothing: an invalid item is a 400 naming its index (errors keys like [3].is_rejected) and nothing is stored.",
        params: &[],
        body: Body::Rows,
        body_required: true,
        reply: Reply::Rows,
        success: &[(200, "The stored rows, in input order.")],
        errors: &[400, 401, 403, 404, 409, 413, 415, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "GET",
        path: "/api/JobDispatchLog/{id}",
        aliases: &["/api/JobDispatchLog({id})"],
        page: "GET-api-JobDispatchLog-id",
        operation_id: "get_job_dispatch_log",
        summary: "Get one job_dispatch_log",
        description: "One row, logically deleted rows included, with its ETag.",
        params: &[ID_PARAM],
        body: Body::None,
        body_required: false,
        reply: Reply::Row,
        success: &[(200, "The row.")],
        errors: &[400, 401, 404, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "PUT",
        path: "/api/JobDispatchLog/{id}",
        aliases: &["/api/JobDispatchLog({id})"],
        page: "PUT-api-JobDispatchLog-id",
        operation_id: "put_job_dispatch_log",
        summary: "Add/update the job_dispatch_log at an id",
        description: "Upsert at the id of the URL, as Save. A different non-empty id in the body is a 400.",
        params: &[ID_PARAM, IF_MATCH, PREFER],
        body: Body::Row,
        body_required: true,
        reply: Reply::Row,
        success: &[
            (200, "Updated: the stored row."),
            (201, "Inserted: the stored row, with Location."),
        ],
        errors: WRITE_ERRORS,
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "DELETE",
        path: "/api/JobDispatchLog/{id}",
        aliases: &["/api/JobDispatchLog({id})"],
        page: "DELETE-api-JobDispatchLog-id",
        operation_id: "delete_job_dispatch_log",
        summary: "Delete a job_dispatch_log (logically)",
        description: "Sets sys_logical_delete and bumps modified_dateutc; the row stays visible to sync until purged. Deleting twice is harmless.",
        params: &[ID_PARAM, IF_MATCH],
        body: Body::None,
        body_required: false,
        reply: Reply::None,
        success: &[(204, "Deleted (or already deleted).")],
        errors: &[400, 401, 403, 404, 409, 412, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "POST",
        path: "/api/JobDispatchLog/{id}/Accept",
        aliases: &[],
        page: "POST-api-JobDispatchLog-id-Accept",
        operation_id: "accept_job_dispatch_log",
        summary: "Accept a dispatch",
        description: "The technician accepts: is_accepted becomes true and date_proceeded is stamped. An offline client sends its decision time as date_proceeded; the body is optional.",
        params: &[ID_PARAM, IF_MATCH],
        body: Body::Fields {
            fields: &[Field::DateProceeded],
            required: &[],
        },
        body_required: false,
        reply: Reply::Row,
        success: &[(200, "The accepted row.")],
        errors: &[400, 401, 403, 404, 409, 412, 413, 415, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "POST",
        path: "/api/JobDispatchLog/{id}/Reject",
        aliases: &[],
        page: "POST-api-JobDispatchLog-id-Reject",
        operation_id: "reject_job_dispatch_log",
        summary: "Reject a dispatch",
        description: "The technician rejects, saying why. Workshop dispatches and accepted or deleted rows cannot be rejected (409).",
        params: &[ID_PARAM, IF_MATCH],
        body: Body::Fields {
            fields: &[Field::RejectedReason, Field::DateProceeded],
            required: &[Field::RejectedReason],
        },
        body_required: true,
        reply: Reply::Row,
        success: &[(200, "The rejected row.")],
        errors: &[400, 401, 403, 404, 409, 412, 413, 415, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "POST",
        path: "/api/JobDispatchLog/Dispatch",
        aliases: &[],
        page: "POST-api-JobDispatchLog-Dispatch",
        operation_id: "dispatch_job",
        summary: "Dispatch a job to technicians",
        description: "Creates one row per technician not already among the job's assignees (so a technician who rejected can be dispatched again), with the next sequences.",
        params: &[],
        body: Body::Document(&DISPATCH),
        body_required: true,
        reply: Reply::Rows,
        success: &[(200, "Every row of the job.")],
        errors: &[400, 401, 403, 413, 415, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "GET",
        path: "/api/JobDispatchLog/{id}/History",
        aliases: &[],
        page: "GET-api-JobDispatchLog-id-History",
        operation_id: "get_job_dispatch_log_history",
        summary: "History of a job_dispatch_log",
        description: "Every accept, reject, reassignment and delete of the row: who, when (server clock), when by the client's clock if it sent one, and what changed.",
        params: &[ID_PARAM],
        body: Body::None,
        body_required: false,
        reply: Reply::Document(&HISTORY),
        success: &[(200, "The row's history.")],
        errors: &[400, 401, 404, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "GET",
        path: "/api/JobDispatchLog",
        aliases: &[],
        page: "GET-api-JobDispatchLog",
        operation_id: "list_job_dispatch_logs",
        summary: "Query job_dispatch_log",
        description: "Lists rows with OData query options. The original's sync: $filter=modified_dateutc gt X&$orderby=modified_dateutc never misses a row committed later.",
        params: &[
            Param {
                name: "$filter",
                location: ParamIn::Query,
                ty: FieldType::String,
                description: "Which rows: eq ne gt ge lt le, and or not, parentheses, in (…); contains, startswith, endswith on rejected_reason.",
                rules: "Any field but assigned_user_ids. Literals: GUIDs, date-times, true/false, integers, 'strings'.",
                required: false,
            },
            Param {
                name: "$orderby",
                location: ParamIn::Query,
                ty: FieldType::String,
                description: "Sort order: stored fields with asc or desc, comma-separated.",
                rules: "Default modified_dateutc asc; always completed with id.",
                required: false,
            },
            Param {
                name: "$top",
                location: ParamIn::Query,
                ty: FieldType::Int32,
                description: "Page size.",
                rules: "Default 20, at most 1000.",
                required: false,
            },
            Param {
                name: "$skip",
                location: ParamIn::Query,
                ty: FieldType::Int32,
                description: "Rows to skip.",
                rules: "Default 0.",
                required: false,
            },
            Param {
                name: "$count",
                location: ParamIn::Query,
                ty: FieldType::Bool,
                description: "Also return how many rows match.",
                rules: "true or false.",
                required: false,
            },
            Param {
                name: "$select",
                location: ParamIn::Query,
                ty: FieldType::String,
                description: "Only these fields, comma-separated.",
                rules: "Field names as on the wire.",
                required: false,
            },
        ],
        body: Body::None,
        body_required: false,
        reply: Reply::Document(&LIST_PAGE),
        success: &[(200, "One page of rows.")],
        errors: &[400, 401, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "GET",
        path: "/api/JobDispatchLog/Changes",
        aliases: &[],
        page: "GET-api-JobDispatchLog-Changes",
        operation_id: "list_job_dispatch_log_changes",
        summary: "Changes of job_dispatch_log since a cursor",
        description: "The sync feed: every change after the cursor, in commit order, deletions as tombstones. A technician's feed holds only their own rows. A row may come twice; none is ever missed.",
        params: &[
            Param {
                name: "since",
                location: ParamIn::Query,
                ty: FieldType::String,
                description: "The cursor of the previous page.",
                rules: "Optional: from the beginning when absent.",
                required: false,
            },
            Param {
                name: "limit",
                location: ParamIn::Query,
                ty: FieldType::Int32,
                description: "Most rows in the page.",
                rules: "1 to 5000, default 500.",
                required: false,
            },
        ],
        body: Body::None,
        body_required: false,
        reply: Reply::Document(&CHANGES),
        success: &[(200, "One page of changes.")],
        errors: &[400, 401, 410, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "GET",
        path: "/api/JobDispatchLog/Changes/Stream",
        aliases: &[],
        page: "GET-api-JobDispatchLog-Changes-Stream",
        operation_id: "stream_job_dispatch_log_changes",
        summary: "Changes of job_dispatch_log pushed live (Server-Sent Events)",
        description: "The changes feed as a live stream: one `change` event per changed row (the row as JSON) and, for technicians, one `removed` event per row reassigned away, as soon as they commit, on any instance. Each event's id is the cursor after it: reconnect with Last-Event-ID to resume. An expired cursor gets 410 (or a `resync` event on a stream already open).",
        params: &[
            Param {
                name: "since",
                location: ParamIn::Query,
                ty: FieldType::String,
                description: "The cursor to start after (Last-Event-ID takes precedence).",
                rules: "Optional: from the beginning when absent.",
                required: false,
            },
            Param {
                name: "Last-Event-ID",
                location: ParamIn::Header,
                ty: FieldType::String,
                description: "The id of the last event received, to resume after it.",
                rules: "Optional.",
                required: false,
            },
        ],
        body: Body::None,
        body_required: false,
        reply: Reply::Other {
            media_type: "text/event-stream",
            description: "A stream of `change`, `removed` and `resync` events.",
        },
        success: &[(200, "The stream; it stays open.")],
        errors: &[400, 401, 410, 429, 503],
        authenticated: true,
        resource: true,
    },
    Endpoint {
        method: "GET",
        path: "/health",
        aliases: &[],
        page: "GET-health",
        operation_id: "health",
        summary: "Health check",
        description: "Whether the database answers. For load balancers; no credentials.",
        params: &[],
        body: Body::None,
        body_required: false,
        reply: Reply::Other {
            media_type: "text/plain",
            description: "ok",
        },
        success: &[(200, "The database answers.")],
        errors: &[503],
        authenticated: false,
        resource: false,
    },
    Endpoint {
        method: "GET",
        path: "/metrics",
        aliases: &[],
        page: "GET-metrics",
        operation_id: "metrics",
        summary: "Metrics",
        description: "Prometheus text exposition: requests by route and status, latencies, the database writer's queue and group commits, purge runs, the caller's tenant's rows and tombstones (counted at most once per --metrics-refresh), and the standard process_* series. An admin's login only; the operator's --metrics-listen address serves every tenant's figures without credentials.",
        params: &[],
        body: Body::None,
        body_required: false,
        reply: Reply::Other {
            media_type: "text/plain",
            description: "Prometheus text format 0.0.4",
        },
        success: &[(200, "The current metrics.")],
        errors: &[401, 403, 429, 503],
        authenticated: true,
        resource: false,
    },
    Endpoint {
        method: "GET",
        path: "/openapi.json",
        aliases: &[],
        page: "GET-openapi.json",
        operation_id: "openapi",
        summary: "OpenAPI description",
        description: "This API as an OpenAPI 3.1 document. No credentials.",
        params: &[],
        body: Body::None,
        body_required: false,
        reply: Reply::Other {
            media_type: "application/json",
            description: "OpenAPI 3.1 document",
        },
        success: &[(200, "The document.")],
        errors: &[],
        authenticated: false,
        resource: false,
    },
    Endpoint {
        method: "GET",
        path: "/Help",
        aliases: &[],
        page: "GET-Help",
        operation_id: "help_index",
        summary: "Help",
        description: "The index of these help pages. No credentials.",
        params: &[],
        body: Body::None,
        body_required: false,
        reply: Reply::Other {
            media_type: "text/html",
            description: "HTML page",
        },
        success: &[(200, "The index.")],
        errors: &[],
        authenticated: false,
        resource: false,
    },
    Endpoint {
        method: "GET",
        path: "/Help/Api/{page}",
        aliases: &[],
        page: "GET-Help-Api-page",
        operation_id: "help_page",
        summary: "Help page of an endpoint",
        description: "The help page of one endpoint, named as on the original platform (e.g. POST-api-JobDispatchLog-Save). No credentials.",
        params: &[Param {
            name: "page",
            location: ParamIn::Path,
            ty: FieldType::String,
            description: "The page name: method and path joined by dashes.",
            rules: "As listed on /Help.",
            required: true,
        }],
        body: Body::None,
        body_required: false,
        reply: Reply::Other {
            media_type: "text/html",
            description: "HTML page",
        },
        success: &[(200, "The page.")],
        errors: &[404],
        authenticated: false,
        resource: false,
    },
];

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
