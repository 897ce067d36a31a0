//! Error media types (SPEC §4.4): RFC 9457 types only when `Accept` names them; otherwise the
//! same members as `application/json`, or as `application/xml` with root `<Error>` in no
//! namespace and `<Message>` first, which ASP.NET Web API's `ReadAsAsync<HttpError>` reads.

mod common;

use std::process::Command;

use common::{db_url, guid, new_row, parse_xml, row_path, spawn_app, spawn_app_adjusted, Resp};
use dispatchlog::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};

/// The ways a client can ask, and what it must get: (Accept, content type, XML root or None for
/// JSON).
const ASKS: [(Option<&str>, &str, Option<&str>); 7] = [
    (None, "application/json", None),
    (Some("application/json"), "application/json", None),
    (
        Some("application/problem+json"),
        "application/problem+json",
        None,
    ),
    (
        Some("application/json, application/problem+json"),
        "application/problem+json",
        None,
    ),
    (Some("application/xml"), "application/xml", Some("Error")),
    (Some("text/xml"), "application/xml", Some("Error")),
    (
        Some("application/problem+xml"),
        "application/problem+xml",
        Some("problem"),
    ),
];

/// Checks one error answer against what its `Accept` asked for; returns the `detail`.
fn assert_error_form(what: &str, status: u16, accept: Option<&str>, res: &Resp) -> String {
    let (_, content_type, root) = ASKS
        .iter()
        .find(|(a, _, _)| *a == accept)
        .expect("a known way of asking");
    assert_eq!(res.status, status, "{what} ({accept:?}): {}", res.text);
    let got = res.content_type();
    assert_eq!(
        got.split(';').next().unwrap(),
        *content_type,
        "{what} ({accept:?}): {}",
        res.text
    );
    match root {
        None => {
            let body: Value = res.json();
            for member in ["type", "title", "detail", "Message"] {
                assert!(
                    body[member].as_str().is_some_and(|s| !s.is_empty()),
                    "{what} ({accept:?}) {member}: {body}"
                );
            }
            assert_eq!(body["status"], json!(status), "{what}");
            assert_eq!(body["detail"], body["Message"], "{what}");
            body["detail"].as_str().unwrap().to_string()
        }
        Some(root) => {
            let el = parse_xml(&res.text);
            assert_eq!(el.name, *root, "{what} ({accept:?}): {}", res.text);
            let names = el.child_names();
            if *root == "Error" {
                // Web API's HttpError: no namespace, Message first.
                assert_eq!(el.attr("xmlns"), None, "{what}: {}", res.text);
                assert_eq!(names[0], "Message", "{what}: {}", res.text);
            } else {
                assert_eq!(
                    el.attr("xmlns").as_deref(),
                    Some("urn:ietf:rfc:7807"),
                    "{what}"
                );
                assert_eq!(names[0], "type", "{what}: {}", res.text);
            }
            for member in ["type", "title", "detail", "Message"] {
                assert!(!el.text_of(member).is_empty(), "{what} {member}");
            }
            assert_eq!(el.text_of("status"), status.to_string(), "{what}");
            assert_eq!(el.text_of("detail"), el.text_of("Message"), "{what}");
            el.text_of("detail")
        }
    }
}

fn with_accept(req: reqwest::RequestBuilder, accept: Option<&str>) -> reqwest::RequestBuilder {
    match accept {
        Some(a) => req.header("accept", a),
        None => req,
    }
}

#[tokio::test]
async fn every_error_of_a_running_service_takes_the_form_its_accept_asks_for() {
    let app = spawn_app().await;
    let admin = app.admin();
    let tech_user = uuid::Uuid::new_v4();
    app.add_user("tina:pw@acme", Role::Technician, tech_user)
        .await;
    let tech = app.as_user("tina:pw@acme");
    let saved = admin.save(&new_row()).await;
    let id = saved["id"].as_str().unwrap().to_string();
    let workshop = admin
        .save(&json!({"jobs_id": guid(), "user_id": tech_user, "is_workshop": true}))
        .await;
    let workshop_id = workshop["id"].as_str().unwrap().to_string();

    for (accept, _, _) in ASKS {
        // 400: a field that breaks a rule, with the field named under `errors`.
        let res = admin
            .send(with_accept(
                admin
                    .request(Method::POST, common::SAVE)
                    .header("content-type", "application/json")
                    .body(r#"{"jobs_id":"not a guid"}"#),
                accept,
            ))
            .await;
        assert_error_form("400", 400, accept, &res);
        if accept.is_some_and(|a| a.contains("xml")) {
            let el = parse_xml(&res.text);
            let errors = el.child("errors").expect("<errors>");
            assert!(
                errors
                    .children
                    .iter()
                    .any(|e| e.attr("field").as_deref() == Some("jobs_id")),
                "{}",
                res.text
            );
        } else {
            assert!(!res.field_errors("jobs_id").is_empty(), "{}", res.text);
        }

        // 401, with the Basic challenge.
        let anon = app.anonymous();
        let res = anon
            .send(with_accept(
                anon.request(Method::GET, "/api/JobDispatchLog"),
                accept,
            ))
            .await;
        assert_error_form("401", 401, accept, &res);
        assert!(res
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic")));

        // 403: a technician may not delete.
        let res = tech
            .send(with_accept(
                tech.request(Method::DELETE, &row_path(&workshop_id)),
                accept,
            ))
            .await;
        assert_error_form("403", 403, accept, &res);

        // 404: an unknown row, and an unknown route.
        let res = admin
            .send(with_accept(
                admin.request(Method::GET, &row_path(&guid())),
                accept,
            ))
            .await;
        assert_error_form("404 row", 404, accept, &res);
        let res = admin
            .send(with_accept(
                admin.request(Method::GET, "/api/Nothing/Here"),
                accept,
            ))
            .await;
        assert_error_form("404 route", 404, accept, &res);

        // 405.
        let res = admin
            .send(with_accept(
                admin.request(Method::DELETE, common::SAVE),
                accept,
            ))
            .await;
        assert_error_form("405", 405, accept, &res);

        // 409: a workshop dispatch cannot be rejected; the row comes along.
        let res = admin
            .send(with_accept(
                admin
                    .request(
                        Method::POST,
                        &format!("/api/JobDispatchLog/{workshop_id}/Reject"),
                    )
                    .header("content-type", "application/json")
                    .body(r#"{"rejected_reason":"no"}"#),
                accept,
            ))
            .await;
        assert_error_form("409", 409, accept, &res);
        if accept.is_some_and(|a| a.contains("xml")) {
            assert!(parse_xml(&res.text).child("current").is_some());
        } else {
            assert_eq!(res.json()["current"]["id"], json!(workshop_id));
        }

        // 412: a stale If-Match.
        let res = admin
            .send(with_accept(
                admin
                    .request(Method::DELETE, &row_path(&id))
                    .header("if-match", "\"stale\""),
                accept,
            ))
            .await;
        assert_error_form("412", 412, accept, &res);

        // 413: a body over 1 MiB.
        let res = admin
            .send(with_accept(
                admin
                    .request(Method::POST, common::SAVE)
                    .header("content-type", "application/json")
                    .body(vec![b' '; 1024 * 1024 + 1]),
                accept,
            ))
            .await;
        assert_error_form("413", 413, accept, &res);

        // 415.
        let res = admin
            .send(with_accept(
                admin
                    .request(Method::POST, common::SAVE)
                    .header("content-type", "text/plain")
                    .body("x"),
                accept,
            ))
            .await;
        assert_error_form("415", 415, accept, &res);

        // 400 for a bad $format is written as JSON, the default, in the form Accept names.
        let res = admin
            .send(with_accept(
                admin.request(Method::GET, &format!("{}?$format=csv", row_path(&id))),
                accept,
            ))
            .await;
        assert_eq!(res.status, 400);
        let expected = if accept.is_some_and(|a| a.contains("problem+json")) {
            "application/problem+json"
        } else {
            "application/json"
        };
        assert!(res.content_type().starts_with(expected), "{accept:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_410_and_a_429_take_the_form_their_accept_asks_for() {
    let app = spawn_app_adjusted(|s| s.login_failures_per_minute = 1).await;
    let admin = app.admin();
    // A cursor past one row, then a deletion that the purge forgets.
    admin.save(&new_row()).await;
    let start = admin.get("/api/JobDispatchLog/Changes").await.json()["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let gone = admin.save(&new_row()).await;
    admin.delete(&row_path(gone["id"].as_str().unwrap())).await;
    let out = Command::new(env!("CARGO_BIN_EXE_dispatchlog"))
        .args(["purge", "--older-than", "0s", "--database", &db_url(&app)])
        .output()
        .unwrap();
    assert!(out.status.success());
    for (accept, _, _) in ASKS {
        let res = admin
            .send(with_accept(
                admin.request(
                    Method::GET,
                    &format!("/api/JobDispatchLog/Changes?since={start}"),
                ),
                accept,
            ))
            .await;
        assert_error_form("410", 410, accept, &res);
    }
    let bad = app.as_user("admin:wrong@acme");
    assert_eq!(bad.get("/api/JobDispatchLog").await.status, 401);
    for (accept, _, _) in ASKS {
        let res = bad
            .send(with_accept(
                bad.request(Method::GET, "/api/JobDispatchLog"),
                accept,
            ))
            .await;
        assert_error_form("429", 429, accept, &res);
        assert!(res.header("retry-after").is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn problem_types_are_weighed_by_their_q_values_and_the_format_option() {
    let app = spawn_app().await;
    let missing = row_path(&guid());
    for (accept, query, expected) in [
        // Named, but less wanted than the plain type: the plain type.
        (
            "application/json, application/problem+json;q=0.5",
            "",
            "application/json",
        ),
        (
            "application/problem+json;q=0, application/json",
            "",
            "application/json",
        ),
        (
            "application/xml;q=0.5, application/problem+xml",
            "",
            "application/problem+xml",
        ),
        // The problem type of the other format does not make this one RFC 9457.
        (
            "application/xml, application/problem+json;q=0.1",
            "",
            "application/xml",
        ),
        ("*/*", "", "application/json"),
        (
            "application/problem+xml",
            "?$format=json",
            "application/json",
        ),
        (
            "application/problem+xml",
            "?$format=xml",
            "application/problem+xml",
        ),
        (
            "application/problem+json",
            "?$format=json",
            "application/problem+json",
        ),
    ] {
        let res = app
            .admin()
            .get_accept(&format!("{missing}{query}"), accept)
            .await;
        assert_eq!(res.status, 404);
        assert_eq!(
            res.content_type().split(';').next().unwrap(),
            expected,
            "{accept} {query}"
        );
    }
    // Successful answers are unaffected: asking only for problem+json reads a row as JSON.
    let saved = app.admin().save(&new_row()).await;
    let res = app
        .admin()
        .get_accept(
            &row_path(saved["id"].as_str().unwrap()),
            "application/problem+xml",
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(res.content_type().starts_with("application/json"));
    app.stop().await;
}
