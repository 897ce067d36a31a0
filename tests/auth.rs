//! Credentials (SPEC §8): every way of not being a known user is the same 401.

mod common;

use common::{new_row, row_path, spawn_app, SAVE, SAVE_MULTIPLE};
use dispatchlog::domain::Role;
use serde_json::json;
use uuid::Uuid;

async fn assert_unauthorized(res: &common::Resp, case: &str) {
    assert_eq!(res.status, 401, "{case}: {}", res.text);
    let challenge = res.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Basic"), "{case}: {challenge:?}");
    assert!(res.content_type().starts_with("application/json"), "{case}");
    assert_eq!(res.json()["status"], json!(401), "{case}");
}

#[tokio::test]
async fn missing_wrong_unknown_or_malformed_credentials_are_the_same_401() {
    let app = spawn_app().await;
    app.add_user("jo:right@acme", Role::Dispatcher, Uuid::nil())
        .await;
    let saved = app.admin().save(&new_row()).await;
    let path = row_path(saved["id"].as_str().unwrap());

    let mut details = Vec::new();
    for (case, api) in [
        ("no credentials", app.anonymous()),
        ("wrong password", app.as_user("jo:wrong@acme")),
        ("password of another user", app.as_user("jo:secret@acme")),
        ("unknown user", app.as_user("nobody:right@acme")),
        ("unknown domain", app.as_user("jo:right@elsewhere")),
        ("no domain", app.as_user("jo:right")),
        ("no password", app.as_user("jo@acme")),
    ] {
        let res = api.get(&path).await;
        assert_unauthorized(&res, case).await;
        details.push(res.json()["detail"].clone());
    }
    for (case, header) in [
        ("not base64", "Basic !!!not-base64!!!"),
        ("no scheme", "am86cmlnaHRAYWNtZQ=="),
        ("unknown scheme", "Digest username=\"jo\""),
        ("bearer garbage", "Bearer not-a-token"),
        ("empty basic", "Basic "),
    ] {
        let api = common::Api {
            app: &app,
            authorization: Some(header.to_string()),
        };
        let res = api.get(&path).await;
        assert_unauthorized(&res, case).await;
        details.push(res.json()["detail"].clone());
    }
    details.dedup();
    assert_eq!(details.len(), 1, "every 401 says the same: {details:?}");

    // The right password works, so the 401s above were about the credentials.
    assert_eq!(app.as_user("jo:right@acme").get(&path).await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn every_api_route_needs_credentials() {
    let app = spawn_app().await;
    let anon = app.anonymous();
    let id = Uuid::new_v4().to_string();
    assert_unauthorized(&anon.post_json(SAVE, &new_row()).await, "save").await;
    assert_unauthorized(
        &anon.post_json(SAVE_MULTIPLE, &json!([new_row()])).await,
        "list",
    )
    .await;
    assert_unauthorized(&anon.get(&row_path(&id)).await, "get").await;
    assert_unauthorized(&anon.put_json(&row_path(&id), &new_row()).await, "put").await;
    assert_unauthorized(&anon.delete(&row_path(&id)).await, "delete").await;
    // Nothing was written by the refused requests.
    assert_eq!(app.admin().get(&row_path(&id)).await.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_domain_is_after_the_last_at_and_the_password_after_the_first_colon() {
    let app = spawn_app().await;
    app.add_user("jo@field:pa:ss@word@acme", Role::Dispatcher, Uuid::nil())
        .await;
    let res = app
        .as_user("jo@field:pa:ss@word@acme")
        .post_json(SAVE, &new_row())
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    app.stop().await;
}

#[tokio::test]
async fn a_removed_user_keeps_access_only_until_the_login_is_rechecked() {
    let app =
        common::spawn_app_adjusted(|s| s.login_recheck = std::time::Duration::from_secs(1)).await;
    app.add_user("eve:pw@acme", Role::Dispatcher, uuid::Uuid::nil())
        .await;
    let eve = app.as_user("eve:pw@acme");
    assert_eq!(eve.get("/api/JobDispatchLog/Changes").await.status, 200);
    assert!(app.store.remove_user("acme", "eve").await.unwrap());
    // Within the interval the verified login is still trusted …
    let started = std::time::Instant::now();
    let early = eve.get("/api/JobDispatchLog/Changes").await.status;
    if started.elapsed() < std::time::Duration::from_millis(500) {
        assert_eq!(early, 200, "the login was just verified");
    }
    // … and once it has passed, the user's row is read again and the login refused.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(eve.get("/api/JobDispatchLog/Changes").await.status, 401);
    app.stop().await;
}
