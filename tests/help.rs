//! The help pages (SPEC §5): every endpoint and every field, samples that the service accepts.

mod common;

use common::{spawn_app, TestApp};
use serde_json::Value;

/// The pages of the original's naming scheme that integrators link to.
const PAGES: [&str; 11] = [
    "POST-api-JobDispatchLog-Save",
    "GET-api-JobDispatchLog-id",
    "PUT-api-JobDispatchLog-id",
    "DELETE-api-JobDispatchLog-id",
    "POST-api-JobDispatchLog-SaveMultiple",
    "POST-api-JobDispatchLog-id-Accept",
    "POST-api-JobDispatchLog-id-Reject",
    "POST-api-JobDispatchLog-Dispatch",
    "GET-api-JobDispatchLog-id-History",
    "GET-api-JobDispatchLog",
    "GET-api-JobDispatchLog-Changes",
];

/// The fields of SPEC §2, in its order.
const FIELDS: [&str; 13] = [
    "id",
    "jobs_id",
    "user_id",
    "date_create",
    "date_proceeded",
    "is_accepted",
    "is_rejected",
    "rejected_reason",
    "sys_logical_delete",
    "is_workshop",
    "modified_dateutc",
    "sequence",
    "assigned_user_ids",
];

fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The sample of a page for `part` (request or response) in `format` (json or xml).
fn sample(html: &str, part: &str, format: &str) -> Option<String> {
    let start =
        format!("<pre class=\"sample\" data-part=\"{part}\" data-format=\"{format}\"><code>");
    let from = html.find(&start)? + start.len();
    let to = from + html[from..].find("</code></pre>")?;
    Some(unescape(&html[from..to]))
}

async fn page(app: &TestApp, name: &str) -> String {
    let res = app.anonymous().get(&format!("/Help/Api/{name}")).await;
    assert_eq!(res.status, 200, "{name}: {}", res.text);
    assert!(res.content_type().starts_with("text/html"), "{name}");
    res.text
}

#[tokio::test]
async fn the_index_links_every_endpoint_page_without_credentials() {
    let app = spawn_app().await;
    let res = app.anonymous().get("/Help").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.content_type().starts_with("text/html"));
    assert!(res.text.contains("name=\"viewport\""));
    for name in PAGES {
        assert!(
            res.text.contains(&format!("href=\"/Help/Api/{name}\"")),
            "the index does not link {name}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_page_has_the_seed_structure() {
    let app = spawn_app().await;
    for name in PAGES {
        let html = page(&app, name).await;
        for heading in [
            "<h2>Request Information</h2>",
            "<h3>URI Parameters</h3>",
            "<h3>Body Parameters</h3>",
            "<h3>Request Formats</h3>",
            "<h2>Response Information</h2>",
            "<h3>Resource Description</h3>",
            "<h3>Response Formats</h3>",
            "<h3>Status Codes</h3>",
        ] {
            assert!(html.contains(heading), "{name} lacks {heading}");
        }
        assert!(html.starts_with("<!DOCTYPE html>"), "{name}");
        assert!(html.contains("name=\"viewport\""), "{name}");
        assert!(
            !html.contains("<script") && !html.contains("<link"),
            "{name} must not load external assets"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_field_of_the_resource_is_described_with_its_type() {
    let app = spawn_app().await;
    for name in [
        "POST-api-JobDispatchLog-Save",
        "PUT-api-JobDispatchLog-id",
        "GET-api-JobDispatchLog-id",
        "POST-api-JobDispatchLog-SaveMultiple",
        "GET-api-JobDispatchLog",
        "GET-api-JobDispatchLog-Changes",
    ] {
        let html = page(&app, name).await;
        for field in FIELDS {
            assert!(
                html.contains(&format!(
                    "<tr data-field=\"{field}\"><td><code>{field}</code></td>"
                )),
                "{name} lacks a row for {field}"
            );
        }
    }
    let save = page(&app, "POST-api-JobDispatchLog-Save").await;
    // The original's descriptions and type names.
    let cells = |description: &str, ty: &str| {
        format!(
            "<td data-label=\"Description\">{description}</td><td data-label=\"Type\">{ty}</td>"
        )
    };
    assert!(save.contains(&cells("Primary Key", "globally unique identifier")));
    assert!(save.contains(&cells(
        "Date+Time in UTC when the row has been created",
        "date"
    )));
    assert!(save.contains(&cells("sequence", "integer")));
    app.stop().await;
}

#[tokio::test]
async fn the_save_pages_samples_are_accepted_by_save() {
    let app = spawn_app().await;
    let html = page(&app, "POST-api-JobDispatchLog-Save").await;
    let json = sample(&html, "request", "json").expect("a JSON request sample");
    let json: Value = serde_json::from_str(&json).expect("the JSON sample parses");
    let res = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &json)
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.json()["id"], json["id"]);

    let xml = sample(&html, "request", "xml").expect("an XML request sample");
    assert!(xml.starts_with("<job_dispatch_log xmlns:i="), "{xml}");
    let res = app.admin().post_xml("/api/JobDispatchLog/Save", &xml).await;
    assert_eq!(res.status, 200, "the same row again: {}", res.text);

    // The response samples are rows too.
    let other = spawn_app().await;
    let response = sample(&html, "response", "json").unwrap();
    let res = other
        .admin()
        .post_json(
            "/api/JobDispatchLog/Save",
            &serde_json::from_str(&response).unwrap(),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let response = sample(&html, "response", "xml").unwrap();
    let res = other
        .admin()
        .post_xml("/api/JobDispatchLog/Save", &response)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    other.stop().await;
    app.stop().await;
}

/// Posts a page's request sample in both formats to `path`, on a fresh app each time.
async fn post_samples(name: &str, path: &str, setup: Option<&str>, expected: &[u16]) {
    for format in ["json", "xml"] {
        let app = spawn_app().await;
        let html = page(&app, name).await;
        if let Some(setup) = setup {
            let body: Value = serde_json::from_str(setup).unwrap();
            app.admin().save(&body).await;
        }
        let body = sample(&html, "request", format)
            .unwrap_or_else(|| panic!("{name} has no {format} request sample"));
        let media = format!("application/{format}");
        let method = if name.starts_with("PUT") {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let res = app
            .admin()
            .send(
                app.admin()
                    .request(method, path)
                    .header("content-type", &media)
                    .header("accept", &media)
                    .body(body),
            )
            .await;
        assert!(
            expected.contains(&res.status),
            "{name} {format}: {} {}",
            res.status,
            res.text
        );
        app.stop().await;
    }
}

const SAMPLE_ID: &str = "567c1c0c-91e3-4ca3-ac31-eb151e427f59";

#[tokio::test]
async fn the_request_samples_of_every_page_parse_back_through_their_endpoint() {
    let undecided = format!(
        r#"{{"id":"{SAMPLE_ID}","jobs_id":"5f1e9a72-a0e8-4276-9cd5-3b00416d5f59","user_id":"ab53b170-9ede-42f6-85e5-eac282e3ac0a"}}"#
    );
    post_samples(
        "PUT-api-JobDispatchLog-id",
        &format!("/api/JobDispatchLog/{SAMPLE_ID}"),
        None,
        &[201],
    )
    .await;
    post_samples(
        "POST-api-JobDispatchLog-SaveMultiple",
        "/api/JobDispatchLog/SaveMultiple",
        None,
        &[200],
    )
    .await;
    post_samples(
        "POST-api-JobDispatchLog-Dispatch",
        "/api/JobDispatchLog/Dispatch",
        None,
        &[200],
    )
    .await;
    post_samples(
        "POST-api-JobDispatchLog-id-Accept",
        &format!("/api/JobDispatchLog/{SAMPLE_ID}/Accept"),
        Some(&undecided),
        &[200],
    )
    .await;
    post_samples(
        "POST-api-JobDispatchLog-id-Reject",
        &format!("/api/JobDispatchLog/{SAMPLE_ID}/Reject"),
        Some(&undecided),
        &[200],
    )
    .await;
}

#[tokio::test]
async fn the_response_samples_are_well_formed() {
    let app = spawn_app().await;
    for name in PAGES {
        let html = page(&app, name).await;
        if let Some(json) = sample(&html, "response", "json") {
            serde_json::from_str::<Value>(&json)
                .unwrap_or_else(|e| panic!("{name}: the JSON sample does not parse: {e}"));
        }
        if let Some(xml) = sample(&html, "response", "xml") {
            assert!(xml.starts_with('<') && xml.ends_with('>'), "{name}: {xml}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn page_names_match_without_regard_to_case() {
    let app = spawn_app().await;
    let res = app
        .anonymous()
        .get("/help/api/post-api-jobdispatchlog-save")
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.text.contains("<h1>Add/update job_dispatch_log</h1>"));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_404_problem() {
    let app = spawn_app().await;
    let res = app
        .anonymous()
        .get("/Help/Api/GET-api-Nothing-<script>")
        .await;
    assert_eq!(res.status, 404, "{}", res.text);
    assert!(res.content_type().starts_with("application/json"));
    assert_eq!(res.json()["status"], 404);
    app.stop().await;
}
