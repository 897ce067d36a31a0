//! `GET /openapi.json`: every route of the router, every field, both media types, the
//! documented statuses (SPEC §4.4, §5).

mod common;

use common::{guid, spawn_app};
use serde_json::Value;

const METHODS: [&str; 4] = ["get", "put", "post", "delete"];

async fn document() -> Value {
    let app = spawn_app().await;
    let res = app.anonymous().get("/openapi.json").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.content_type().starts_with("application/json"));
    let doc = res.json();
    app.stop().await;
    doc
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.push((path.clone(), method.to_string(), op.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route_of_the_router() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // That the router serves exactly the catalogue's routes is checked in-process (src/http/routes.rs).
    for path in [
        "/api/JobDispatchLog/Save",
        "/api/JobDispatchLog/SaveMultiple",
        "/api/JobDispatchLog/{id}",
        "/api/JobDispatchLog({id})",
        "/api/JobDispatchLog/{id}/Accept",
        "/api/JobDispatchLog/{id}/Reject",
        "/api/JobDispatchLog/Dispatch",
        "/api/JobDispatchLog/{id}/History",
        "/api/JobDispatchLog",
        "/api/JobDispatchLog/Changes",
        "/health",
        "/metrics",
        "/openapi.json",
        "/Help",
        "/Help/Api/{page}",
    ] {
        assert!(
            paths.contains_key(path),
            "SPEC §5: {path} is not documented"
        );
    }
    let ids: Vec<String> = operations(&doc)
        .into_iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_string())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "operationIds must be unique");
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let doc = document().await;
    let app = spawn_app().await;
    for (path, method, _) in operations(&doc) {
        let url = path
            .replace("{id}", &guid())
            .replace("{page}", "POST-api-JobDispatchLog-Save");
        let method: reqwest::Method = method.to_uppercase().parse().unwrap();
        if path.ends_with("/Stream") {
            // A live stream never ends: its status and media type are what can be checked.
            let res = app
                .admin()
                .request(method.clone(), &url)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{method} {path}");
            assert!(res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream"));
            continue;
        }
        let res = app
            .admin()
            .send(app.admin().request(method.clone(), &url))
            .await;
        assert_ne!(res.status, 405, "{method} {path}");
        assert!(
            !(res.status == 404 && res.text.contains("No resource at")),
            "{method} {path} is documented but not routed"
        );
        assert!(res.status < 500, "{method} {path}: {}", res.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn every_field_is_in_the_row_schema_with_its_type_and_format() {
    let doc = document().await;
    let schema = &doc["components"]["schemas"]["job_dispatch_log"];
    let properties = schema["properties"].as_object().unwrap();
    let expected = [
        ("id", "string", Some("uuid")),
        ("jobs_id", "string", Some("uuid")),
        ("user_id", "string", Some("uuid")),
        ("date_create", "string", Some("date-time")),
        ("date_proceeded", "string", Some("date-time")),
        ("is_accepted", "boolean", None),
        ("is_rejected", "boolean", None),
        ("rejected_reason", "string", None),
        ("sys_logical_delete", "boolean", None),
        ("is_workshop", "boolean", None),
        ("modified_dateutc", "string", Some("date-time")),
        ("sequence", "integer", Some("int32")),
        ("assigned_user_ids", "string", None),
    ];
    let names: Vec<&String> = properties.keys().collect();
    let expected_names: Vec<&str> = expected.iter().map(|e| e.0).collect();
    assert_eq!(
        names, expected_names,
        "every field, in the order of SPEC §2"
    );
    for (name, ty, format) in expected {
        let p = &properties[name];
        assert_eq!(p["type"], ty, "{name}");
        assert_eq!(p["format"].as_str(), format, "{name}");
        assert!(
            !p["description"].as_str().unwrap_or("").is_empty(),
            "{name} has no description"
        );
    }
    assert_eq!(properties["modified_dateutc"]["readOnly"], true);
    assert_eq!(properties["assigned_user_ids"]["readOnly"], true);
    assert!(properties["id"].get("readOnly").is_none());
    assert_eq!(properties["rejected_reason"]["maxLength"], 4000);
    assert_eq!(
        schema["required"],
        serde_json::json!(["jobs_id", "user_id"])
    );
    assert_eq!(schema["xml"]["name"], "job_dispatch_log");
}

#[tokio::test]
async fn bodies_and_responses_come_in_json_and_xml_and_errors_as_problems() {
    let doc = document().await;
    let media = [
        "application/json",
        "text/json",
        "application/xml",
        "text/xml",
    ];
    for (path, method, op) in operations(&doc) {
        let resource = path.starts_with("/api/");
        if let Some(body) = op.get("requestBody") {
            for m in media {
                assert!(body["content"].get(m).is_some(), "{method} {path}: {m}");
            }
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            let status: u16 = status.parse().unwrap();
            if status >= 400 {
                // SPEC §4.4: RFC 9457 types when asked for, Web API's otherwise.
                for (m, schema) in [
                    ("application/json", "problem"),
                    ("application/problem+json", "problem"),
                    ("application/xml", "Error"),
                    ("application/problem+xml", "problem"),
                ] {
                    assert_eq!(
                        response["content"][m]["schema"]["$ref"],
                        format!("#/components/schemas/{schema}"),
                        "{method} {path} {status}"
                    );
                }
            } else if resource
                && status != 204
                && response["content"].get("text/event-stream").is_none()
            {
                for m in media {
                    assert!(
                        response["content"].get(m).is_some(),
                        "{method} {path} {status}: {m}"
                    );
                }
            }
        }
        // The resource's endpoints and `/metrics` (an admin's) need credentials.
        if resource || path == "/metrics" {
            assert!(
                op.get("security").is_none(),
                "{method} {path} needs credentials"
            );
            assert!(op["responses"].get("401").is_some(), "{method} {path}");
        } else {
            assert_eq!(op["security"], serde_json::json!([]), "{method} {path}");
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let problem = &doc["components"]["schemas"]["problem"]["properties"];
    for member in ["type", "title", "status", "detail", "Message", "errors"] {
        assert!(problem.get(member).is_some(), "problem lacks {member}");
    }
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["xml"]["name"], "Error");
    assert!(error["xml"].get("namespace").is_none());
    let members: Vec<&String> = error["properties"].as_object().unwrap().keys().collect();
    assert_eq!(members[0], "Message");
    assert_eq!(
        doc["components"]["schemas"]["problem"]["xml"]["namespace"],
        "urn:ietf:rfc:7807"
    );
}

#[tokio::test]
async fn each_endpoint_documents_its_statuses() {
    let doc = document().await;
    let statuses = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"))
            .keys()
            .cloned()
            .collect()
    };
    let has = |list: &[String], wanted: &[&str]| {
        for w in wanted {
            assert!(list.iter().any(|s| s == w), "{w} missing from {list:?}");
        }
    };
    has(
        &statuses("/api/JobDispatchLog/Save", "post"),
        &[
            "200", "201", "400", "401", "403", "409", "412", "413", "415",
        ],
    );
    has(
        &statuses("/api/JobDispatchLog/{id}", "get"),
        &["200", "401", "404"],
    );
    has(
        &statuses("/api/JobDispatchLog/{id}", "delete"),
        &["204", "404", "412"],
    );
    has(
        &statuses("/api/JobDispatchLog/{id}/Reject", "post"),
        &["200", "400", "409"],
    );
    has(
        &statuses("/api/JobDispatchLog/Changes", "get"),
        &["200", "400", "410"],
    );
    has(&statuses("/api/JobDispatchLog", "get"), &["200", "400"]);
    for name in ["$filter", "$orderby", "$top", "$skip", "$count", "$select"] {
        let params = doc["paths"]["/api/JobDispatchLog"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(params.iter().any(|p| p["name"] == name), "{name}");
    }
}
