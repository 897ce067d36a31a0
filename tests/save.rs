//! Saving and reading rows: the basics of SPEC §2 and §5.

mod common;

use common::{guid, new_row, spawn_app};
use serde_json::json;

#[tokio::test]
async fn a_saved_row_is_created_then_read_back_identically() {
    let app = spawn_app().await;
    let id = guid();
    let mut body = new_row();
    body["id"] = json!(id);
    body["date_create"] = json!("2026-01-11T21:02:31.7932294+00:00");
    let res = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &body)
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let saved = res.json();
    assert_eq!(saved["id"], json!(id));
    assert_eq!(
        saved["date_create"],
        json!("2026-01-11T21:02:31.7932294+00:00")
    );
    assert_eq!(saved["sequence"], json!(1));

    let read = app.admin().get(&format!("/api/JobDispatchLog({id})")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), saved);
    let read = app.admin().get(&format!("/api/JobDispatchLog/{id}")).await;
    assert_eq!(read.json(), saved);
    app.stop().await;
}

#[tokio::test]
async fn saving_the_same_body_twice_is_an_update_that_changes_nothing() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    let first = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &body)
        .await;
    assert_eq!(first.status, 201);
    let second = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &body)
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(first.json(), second.json());
    app.stop().await;
}

#[tokio::test]
async fn accepted_and_rejected_together_is_a_400_naming_is_rejected() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["is_accepted"] = json!(true);
    body["is_rejected"] = json!(true);
    let res = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &body)
        .await;
    assert_eq!(res.status, 400);
    assert!(res.content_type().starts_with("application/problem+json"));
    assert!(!res.field_errors("is_rejected").is_empty(), "{}", res.text);
    app.stop().await;
}
