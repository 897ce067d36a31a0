//! Roles, tokens and tenancy (SPEC §8): each technician sees their own dispatches and nothing
//! else; no tenant ever reaches another's rows.

mod common;

use std::process::Command;

use common::{db_url, guid, spawn_app, spawn_app_adjusted};
use dispatchlog::domain::Role;
use serde_json::json;
use uuid::Uuid;

const ALICE: &str = "alice:pw@acme";

struct Fixture {
    app: common::TestApp,
    alice: Uuid,
    own: serde_json::Value,
    other: serde_json::Value,
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let alice = Uuid::new_v4();
    app.add_user(ALICE, Role::Technician, alice).await;
    app.add_user("dora:pw@acme", Role::Dispatcher, Uuid::nil())
        .await;
    let own = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": alice}))
        .await;
    let other = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    Fixture {
        app,
        alice,
        own,
        other,
    }
}

#[tokio::test]
async fn a_technician_reads_only_their_own_rows() {
    let f = fixture().await;
    let tech = f.app.as_user(ALICE);
    let own = f.own["id"].as_str().unwrap();
    let other = f.other["id"].as_str().unwrap();
    assert_eq!(
        tech.get(&format!("/api/JobDispatchLog/{own}")).await.status,
        200
    );
    for path in [
        format!("/api/JobDispatchLog/{other}"),
        format!("/api/JobDispatchLog({other})"),
        format!("/api/JobDispatchLog/{other}/History"),
    ] {
        assert_eq!(tech.get(&path).await.status, 404, "{path}");
    }
    let dispatcher = f.app.as_user("dora:pw@acme");
    assert_eq!(
        dispatcher
            .get(&format!("/api/JobDispatchLog/{other}"))
            .await
            .status,
        200
    );
    f.app.stop().await;
}

#[tokio::test]
async fn a_technician_may_not_change_the_fixed_fields_of_their_own_row() {
    let f = fixture().await;
    let tech = f.app.as_user(ALICE);
    for (field, value) in [
        ("jobs_id", json!(guid())),
        ("user_id", json!(guid())),
        ("is_workshop", json!(true)),
        ("sequence", json!(7)),
        ("sys_logical_delete", json!(true)),
    ] {
        let mut body = f.own.clone();
        body[field] = value;
        let res = tech.post_json("/api/JobDispatchLog/Save", &body).await;
        assert_eq!(res.status, 403, "{field}: {}", res.text);
        assert!(
            res.json()["detail"].as_str().unwrap().contains(field),
            "{}",
            res.text
        );
    }
    // Rejecting through Save is allowed: it changes only what a technician decides.
    let mut body = f.own.clone();
    body["is_rejected"] = json!(true);
    body["rejected_reason"] = json!("no parts");
    let res = tech.post_json("/api/JobDispatchLog/Save", &body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    f.app.stop().await;
}

#[tokio::test]
async fn a_technician_cannot_create_delete_dispatch_or_touch_others() {
    let f = fixture().await;
    let tech = f.app.as_user(ALICE);
    let created = tech
        .post_json(
            "/api/JobDispatchLog/Save",
            &json!({"jobs_id": guid(), "user_id": f.alice}),
        )
        .await;
    assert_eq!(created.status, 403);
    let own = f.own["id"].as_str().unwrap();
    let other = f.other["id"].as_str().unwrap();
    assert_eq!(
        tech.delete(&format!("/api/JobDispatchLog/{own}"))
            .await
            .status,
        403
    );
    assert_eq!(
        tech.delete(&format!("/api/JobDispatchLog/{other}"))
            .await
            .status,
        404
    );
    let accept_other = tech
        .post_json(&format!("/api/JobDispatchLog/{other}/Accept"), &json!({}))
        .await;
    assert_eq!(accept_other.status, 404);
    let dispatch = tech
        .post_json(
            "/api/JobDispatchLog/Dispatch",
            &json!({"jobs_id": guid(), "user_ids": [f.alice]}),
        )
        .await;
    assert_eq!(dispatch.status, 403);
    let overwrite_other = tech.post_json("/api/JobDispatchLog/Save", &f.other).await;
    assert_eq!(overwrite_other.status, 403);
    f.app.stop().await;
}

#[tokio::test]
async fn a_batch_mixing_allowed_and_forbidden_rows_stores_nothing() {
    let f = fixture().await;
    let tech = f.app.as_user(ALICE);
    let mut allowed = f.own.clone();
    allowed["is_accepted"] = json!(true);
    let res = tech
        .post_json(
            "/api/JobDispatchLog/SaveMultiple",
            &json!([allowed, f.other.clone()]),
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.text);
    assert!(res.json()["detail"].as_str().unwrap().starts_with("[1]"));
    let own = f.own["id"].as_str().unwrap();
    let now = f
        .app
        .admin()
        .get(&format!("/api/JobDispatchLog/{own}"))
        .await
        .json();
    assert_eq!(now["is_accepted"], json!(false));
    f.app.stop().await;
}

#[tokio::test]
async fn the_same_id_in_two_tenants_is_two_rows() {
    let app = spawn_app().await;
    app.add_user("bob:pw@other", Role::Admin, Uuid::nil()).await;
    let id = guid();
    let a = app
        .admin()
        .save(&json!({"id": id, "jobs_id": guid(), "user_id": guid()}))
        .await;
    let other = app.as_user("bob:pw@other");
    assert_eq!(
        other.get(&format!("/api/JobDispatchLog/{id}")).await.status,
        404
    );
    assert_eq!(
        other
            .delete(&format!("/api/JobDispatchLog/{id}"))
            .await
            .status,
        404
    );
    let b = other
        .post_json(
            "/api/JobDispatchLog/Save",
            &json!({"id": id, "jobs_id": guid(), "user_id": guid()}),
        )
        .await;
    assert_eq!(b.status, 201, "tenant B gets its own row: {}", b.text);
    let a_now = app
        .admin()
        .get(&format!("/api/JobDispatchLog/{id}"))
        .await
        .json();
    assert_eq!(a_now, a);
    let feed = other.get("/api/JobDispatchLog/Changes").await.json();
    assert_eq!(feed["value"].as_array().unwrap().len(), 1);
    assert_eq!(feed["value"][0]["jobs_id"], b.json()["jobs_id"]);
    app.stop().await;
}

#[tokio::test]
async fn a_bearer_token_works_until_revoked() {
    let f = fixture().await;
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dispatchlog"))
            .args(args)
            .args(["--database", &db_url(&f.app)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run(&["user", "token", "--domain", "acme", "--username", "alice"]);
    let token = out.split_whitespace().last().unwrap().to_string();
    let own = f.own["id"].as_str().unwrap();
    let with_token = |token: &str| {
        let api = common::Api {
            app: &f.app,
            authorization: Some(format!("Bearer {token}")),
        };
        api
    };
    assert_eq!(
        with_token(&token)
            .get(&format!("/api/JobDispatchLog/{own}"))
            .await
            .status,
        200
    );
    let other = f.other["id"].as_str().unwrap();
    assert_eq!(
        with_token(&token)
            .get(&format!("/api/JobDispatchLog/{other}"))
            .await
            .status,
        404
    );
    run(&[
        "user",
        "token",
        "--domain",
        "acme",
        "--username",
        "alice",
        "--revoke",
    ]);
    // A revocation takes effect within the login recheck interval (2 s by default).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let revoked = loop {
        let res = with_token(&token)
            .get(&format!("/api/JobDispatchLog/{own}"))
            .await;
        if res.status != 200 || std::time::Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(revoked.status, 401);
    assert!(revoked
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(
        with_token("dlt_made_up")
            .get("/api/JobDispatchLog/Changes")
            .await
            .status,
        401
    );
    f.app.stop().await;
}

#[tokio::test]
async fn repeated_failed_logins_from_one_address_get_429_with_retry_after() {
    let app = spawn_app_adjusted(|s| s.login_failures_per_minute = 3).await;
    let bad = app.as_user("admin:wrong@acme");
    for _ in 0..3 {
        assert_eq!(bad.get("/api/JobDispatchLog/Changes").await.status, 401);
    }
    let limited = bad.get("/api/JobDispatchLog/Changes").await;
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    // Even the right password waits until the window has passed.
    assert_eq!(
        app.admin().get("/api/JobDispatchLog/Changes").await.status,
        429
    );
    app.stop().await;
}
