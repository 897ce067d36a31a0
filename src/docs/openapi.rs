//! The OpenAPI 3.1 document of the service, built from the catalogue and the field table.

use serde_json::{json, Map, Value};

use super::{
    error_meaning, Body, Document, Endpoint, MemberType, Param, Reply, ENDPOINTS, LIST_PAGE,
};
use crate::domain::fields::FieldMeta;
use crate::domain::{Field, FieldType, FIELDS};

/// Every media type a resource body may use (SPEC §4.1).
pub const MEDIA_TYPES: [&str; 4] = [
    "application/json",
    "text/json",
    "application/xml",
    "text/xml",
];

/// Error media types (SPEC §4.4), each with its schema: the RFC 9457 types when the request's
/// Accept names them, otherwise the plain types ASP.NET Web API clients read.
const ERROR_MEDIA_TYPES: [(&str, &str); 4] = [
    ("application/json", PROBLEM_SCHEMA),
    ("application/problem+json", PROBLEM_SCHEMA),
    ("application/xml", WEB_API_ERROR_SCHEMA),
    ("application/problem+xml", PROBLEM_SCHEMA),
];

pub const ROW_SCHEMA: &str = "job_dispatch_log";
pub const ROWS_SCHEMA: &str = "ArrayOfjob_dispatch_log";
pub const PROBLEM_SCHEMA: &str = "problem";
pub const WEB_API_ERROR_SCHEMA: &str = "Error";

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn scalar(ty: FieldType) -> Value {
    match ty {
        FieldType::Guid => json!({"type": "string", "format": "uuid"}),
        FieldType::DateTime => json!({"type": "string", "format": "date-time"}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::String => json!({"type": "string"}),
        FieldType::Int32 => json!({"type": "integer", "format": "int32"}),
    }
}

fn described(mut schema: Value, description: &str, rules: &str) -> Value {
    let text = match (description.is_empty(), rules.is_empty()) {
        (_, true) => description.to_string(),
        (true, false) => rules.to_string(),
        (false, false) => format!("{description}. {rules}"),
    };
    if !text.is_empty() {
        schema["description"] = text.into();
    }
    schema
}

/// The schema of one field of the row, with the limits its rules state.
pub fn field_schema(meta: &FieldMeta) -> Value {
    let mut schema = described(scalar(meta.ty), meta.description, meta.rules);
    match meta.field {
        Field::RejectedReason => schema["maxLength"] = 4000.into(),
        Field::Sequence => schema["minimum"] = 0.into(),
        _ => {}
    }
    if meta.server_managed {
        schema["readOnly"] = true.into();
    }
    schema
}

fn row_schema(fields: &[&FieldMeta], required: &[&str], description: &str) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|m| (m.name.to_string(), field_schema(m)))
        .collect();
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "xml": {"name": ROW_SCHEMA},
    })
}

fn member_schema(ty: MemberType) -> Value {
    match ty {
        MemberType::Scalar(t) => scalar(t),
        MemberType::Nullable(t) => {
            let mut s = scalar(t);
            let base = s["type"].clone();
            s["type"] = json!([base, "null"]);
            s
        }
        MemberType::ListOf(t) => {
            let mut items = scalar(t);
            items["xml"] = json!({"name": "guid"});
            json!({"type": "array", "items": items, "xml": {"wrapped": true}})
        }
        MemberType::Row => schema_ref(ROW_SCHEMA),
        MemberType::Rows => json!({
            "type": "array",
            "items": schema_ref(ROW_SCHEMA),
            "xml": {"wrapped": true},
        }),
        MemberType::ListOfDocuments(d) => json!({
            "type": "array",
            "items": schema_ref(d.name),
            "xml": {"wrapped": true},
        }),
        MemberType::ChangeMap => json!({
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
            },
        }),
    }
}

fn document_schema(doc: &Document) -> Value {
    let properties: Map<String, Value> = doc
        .members
        .iter()
        .map(|m| {
            let schema = member_schema(m.ty);
            // A $ref takes no siblings in older tools; keep descriptions off references.
            let schema = if schema.get("$ref").is_some() {
                schema
            } else {
                described(schema, m.description, m.rules)
            };
            (m.name.to_string(), schema)
        })
        .collect();
    let required: Vec<&str> = doc
        .members
        .iter()
        .filter(|m| m.required)
        .map(|m| m.name)
        .collect();
    let xml_name = if doc.name == LIST_PAGE.name {
        ROWS_SCHEMA
    } else {
        doc.name
    };
    json!({
        "type": "object",
        "description": doc.description,
        "properties": properties,
        "required": required,
        "xml": {"name": xml_name},
    })
}

/// The members of every error (SPEC §4.4), `Message` first or after `detail`.
fn problem_properties(message_first: bool) -> Map<String, Value> {
    let message = (
        "Message".to_string(),
        json!({"type": "string", "description": "Same text as detail"}),
    );
    let mut properties = Map::new();
    if message_first {
        properties.insert(message.0.clone(), message.1.clone());
    }
    properties.insert(
        "type".into(),
        json!({"type": "string", "description": "A URI naming the kind of problem"}),
    );
    properties.insert("title".into(), json!({"type": "string"}));
    properties.insert("status".into(), json!({"type": "integer"}));
    properties.insert("detail".into(), json!({"type": "string"}));
    if !message_first {
        properties.insert(message.0, message.1);
    }
    properties.insert(
        "errors".into(),
        json!({
            "type": "object",
            "description": "Validation errors: field name (or [index].field) to messages. In XML: <error field=\"…\"> elements, each holding <message> elements.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }),
    );
    properties.insert("current".into(), schema_ref(ROW_SCHEMA));
    properties
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details (application/problem+json, or application/problem+xml with root <problem>), sent when the request's Accept names that media type; application/json carries the same object. Message repeats detail for ASP.NET Web API clients.",
        "properties": problem_properties(false),
        "required": ["type", "title", "status", "detail", "Message"],
        "xml": {"name": "problem", "namespace": "urn:ietf:rfc:7807"},
    })
}

fn web_api_error_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error in XML for clients that did not name application/problem+xml: root <Error> in no namespace, one child element per member, Message first, as ASP.NET Web API's HttpError writes it.",
        "properties": problem_properties(true),
        "required": ["Message", "type", "title", "status", "detail"],
        "xml": {"name": WEB_API_ERROR_SCHEMA},
    })
}

/// Every schema the operations refer to.
fn schemas() -> Map<String, Value> {
    let all: Vec<&FieldMeta> = FIELDS.iter().collect();
    let mut schemas = Map::new();
    schemas.insert(
        ROW_SCHEMA.into(),
        row_schema(
            &all,
            &[Field::JobsId.name(), Field::UserId.name()],
            "One dispatch of one job to one technician.",
        ),
    );
    schemas.insert(
        ROWS_SCHEMA.into(),
        json!({
            "type": "array",
            "items": schema_ref(ROW_SCHEMA),
            "xml": {"name": ROWS_SCHEMA, "wrapped": true},
        }),
    );
    for doc in documents() {
        schemas.insert(doc.name.into(), document_schema(doc));
    }
    schemas.insert(PROBLEM_SCHEMA.into(), problem_schema());
    schemas.insert(WEB_API_ERROR_SCHEMA.into(), web_api_error_schema());
    schemas
}

/// Every document named by an endpoint, nested ones included, each once.
pub fn documents() -> Vec<&'static Document> {
    let mut docs: Vec<&'static Document> = Vec::new();
    fn add(docs: &mut Vec<&'static Document>, doc: &'static Document) {
        if docs.iter().any(|d| d.name == doc.name) {
            return;
        }
        docs.push(doc);
        for m in doc.members {
            if let MemberType::ListOfDocuments(d) = m.ty {
                add(docs, d);
            }
        }
    }
    for e in ENDPOINTS {
        if let Body::Document(d) = e.body {
            add(&mut docs, d);
        }
        if let Reply::Document(d) = e.reply {
            add(&mut docs, d);
        }
    }
    docs
}

fn content(media_types: &[&str], schema: &Value) -> Value {
    let map: Map<String, Value> = media_types
        .iter()
        .map(|mt| (mt.to_string(), json!({ "schema": schema })))
        .collect();
    Value::Object(map)
}

fn parameter(p: &Param) -> Value {
    json!({
        "name": p.name,
        "in": p.location.openapi_name(),
        "required": p.required,
        "description": format!("{} {}", p.description, p.rules).trim().to_string(),
        "schema": scalar(p.ty),
    })
}

fn request_body(e: &Endpoint) -> Option<Value> {
    let schema = match e.body {
        Body::None => return None,
        Body::Row => schema_ref(ROW_SCHEMA),
        Body::Rows => schema_ref(ROWS_SCHEMA),
        Body::Fields { fields, required } => {
            let metas: Vec<&FieldMeta> = fields.iter().map(|f| f.meta()).collect();
            let required: Vec<&str> = required.iter().map(|f| f.name()).collect();
            let mut schema = row_schema(&metas, &required, e.summary);
            if let Some(reason) = schema.pointer_mut("/properties/rejected_reason") {
                if required.contains(&Field::RejectedReason.name()) {
                    reason["minLength"] = 1.into();
                }
            }
            schema
        }
        Body::Document(d) => schema_ref(d.name),
    };
    Some(json!({
        "required": e.body_required,
        "content": content(&MEDIA_TYPES, &schema),
    }))
}

fn responses(e: &Endpoint) -> Value {
    let mut out = Map::new();
    for (status, meaning) in e.success {
        let mut response = json!({ "description": meaning });
        let schema = match e.reply {
            Reply::None => None,
            Reply::Row => Some((MEDIA_TYPES.to_vec(), schema_ref(ROW_SCHEMA))),
            Reply::Rows => Some((MEDIA_TYPES.to_vec(), schema_ref(ROWS_SCHEMA))),
            Reply::Document(d) => Some((MEDIA_TYPES.to_vec(), schema_ref(d.name))),
            Reply::Other { media_type, .. } => {
                let schema = match media_type {
                    "application/json" => json!({"type": "object"}),
                    // Each Server-Sent Event: its type, its data (a row or an id, as JSON text)
                    // and its id (the cursor after it).
                    "text/event-stream" => json!({
                        "type": "object",
                        "properties": {
                            "event": {"type": "string", "enum": ["change", "removed", "resync"]},
                            "data": {"type": "string"},
                            "id": {"type": "string"}
                        }
                    }),
                    _ => json!({"type": "string"}),
                };
                Some((vec![media_type], schema))
            }
        };
        if let Some((media_types, schema)) = schema {
            response["content"] = content(&media_types, &schema);
        }
        if matches!(e.reply, Reply::Row) {
            response["headers"] = json!({
                "ETag": {"description": "The row's version, for If-Match", "schema": {"type": "string"}},
            });
            if *status == 201 {
                response["headers"]["Location"] =
                    json!({"description": "The row's URL", "schema": {"type": "string"}});
            }
        }
        out.insert(status.to_string(), response);
    }
    for status in e.errors {
        let mut response = json!({
            "description": error_meaning(*status),
            "content": ERROR_MEDIA_TYPES
                .iter()
                .map(|(media_type, schema)| {
                    (media_type.to_string(), json!({"schema": schema_ref(schema)}))
                })
                .collect::<Map<String, Value>>(),
        });
        if *status == 401 {
            response["headers"] = json!({
                "WWW-Authenticate": {"schema": {"type": "string"}},
            });
        }
        out.insert(status.to_string(), response);
    }
    Value::Object(out)
}

fn operation(e: &Endpoint, alias: bool) -> Value {
    let operation_id = if alias {
        format!("{}_by_key", e.operation_id)
    } else {
        e.operation_id.to_string()
    };
    let mut op = json!({
        "operationId": operation_id,
        "summary": e.summary,
        "description": e.description,
        "tags": [if e.resource { "JobDispatchLog" } else { "Service" }],
        "parameters": e.all_params().map(parameter).collect::<Vec<_>>(),
        "responses": responses(e),
    });
    if let Some(body) = request_body(e) {
        op["requestBody"] = body;
    }
    if !e.authenticated {
        op["security"] = json!([]);
    }
    op
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        for (i, path) in e.paths().enumerate() {
            let item = paths
                .entry(path.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            item[e.method.to_ascii_lowercase()] = operation(e, i > 0);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dispatchlog",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The job_dispatch_log resource of a field-service platform: who was dispatched where, synced exactly. Every resource endpoint speaks JSON and XML (Content-Type and Accept, or $format); errors carry RFC 9457 problem details members, as application/problem+json or application/problem+xml when Accept names those types, otherwise as application/json or application/xml (root <Error>, as ASP.NET Web API's HttpError).",
        },
        "tags": [
            {"name": "JobDispatchLog", "description": "Dispatches of jobs to technicians"},
            {"name": "Service", "description": "Operations: health, metrics, documentation"},
        ],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "username:password@domain, the domain being the tenant.",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token issued by `dispatchlog user token`.",
                },
            },
        },
    })
}
