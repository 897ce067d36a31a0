//! The changes feed (SPEC §7.2) and purge (SPEC §7).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{db_url, guid, spawn_app, spawn_app_adjusted, Api};
use dispatchlog::domain::Role;
use serde_json::{json, Value};
use uuid::Uuid;

async fn pull(api: &Api<'_>, since: Option<&str>, limit: usize) -> Value {
    let path = match since {
        Some(c) => format!("/api/JobDispatchLog/Changes?since={c}&limit={limit}"),
        None => format!("/api/JobDispatchLog/Changes?limit={limit}"),
    };
    let res = api.get(&path).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

#[tokio::test]
async fn the_feed_returns_every_change_once_in_commit_order_with_tombstones() {
    let app = spawn_app().await;
    let api = app.admin();
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(
            api.save(&json!({"jobs_id": guid(), "user_id": guid()}))
                .await["id"]
                .clone(),
        );
    }
    let first = pull(&api, None, 5).await;
    assert_eq!(first["value"].as_array().unwrap().len(), 5);
    assert_eq!(first["has_more"], json!(true));
    let cursor = first["cursor"].as_str().unwrap().to_string();

    // A change to an early row comes after everything else: commit order, not id order.
    let deleted = ids[0].as_str().unwrap();
    assert_eq!(
        api.delete(&format!("/api/JobDispatchLog/{deleted}"))
            .await
            .status,
        204
    );

    let second = pull(&api, Some(&cursor), 5).await;
    let got: Vec<Value> = second["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(got, vec![ids[5].clone(), ids[6].clone(), ids[0].clone()]);
    assert_eq!(second["value"][2]["sys_logical_delete"], json!(true));
    assert_eq!(second["has_more"], json!(false));

    let cursor = second["cursor"].as_str().unwrap().to_string();
    let empty = pull(&api, Some(&cursor), 5).await;
    assert_eq!(empty["value"], json!([]));
    assert_eq!(empty["cursor"], json!(cursor));

    let xml = api.get_xml("/api/JobDispatchLog/Changes?limit=2").await;
    assert!(xml.text.starts_with("<Changes "), "{}", xml.text);
    assert!(xml.text.contains("<has_more>true</has_more>"));
    app.stop().await;
}

#[tokio::test]
async fn a_bad_cursor_or_limit_is_a_400() {
    let app = spawn_app().await;
    let api = app.admin();
    for query in ["since=nonsense", "limit=0", "limit=5001", "limit=x"] {
        let res = api
            .get(&format!("/api/JobDispatchLog/Changes?{query}"))
            .await;
        assert_eq!(res.status, 400, "{query}: {}", res.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_technicians_feed_holds_their_rows_and_a_removal_when_one_is_reassigned() {
    let app = spawn_app().await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    app.add_user("alice:pw@acme", Role::Technician, alice).await;
    let admin = app.admin();
    let mut mine = admin
        .save(&json!({"jobs_id": guid(), "user_id": alice}))
        .await;
    admin
        .save(&json!({"jobs_id": guid(), "user_id": bob}))
        .await;

    let tech = app.as_user("alice:pw@acme");
    let first = pull(&tech, None, 100).await;
    assert_eq!(first["value"].as_array().unwrap().len(), 1);
    assert_eq!(first["value"][0]["id"], mine["id"]);
    let cursor = first["cursor"].as_str().unwrap().to_string();

    mine["user_id"] = json!(bob);
    mine["sequence"] = json!(0);
    admin.save(&mine).await;
    let next = pull(&tech, Some(&cursor), 100).await;
    assert_eq!(next["value"], json!([]));
    assert_eq!(next["removed"], json!([mine["id"]]));
    app.stop().await;
}

#[tokio::test]
async fn purged_rows_are_gone_and_an_older_cursor_gets_410() {
    let app = spawn_app().await;
    let api = app.admin();
    let kept = api
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let start = pull(&api, None, 100).await["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let gone = api
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let gone_id = gone["id"].as_str().unwrap();
    api.delete(&format!("/api/JobDispatchLog/{gone_id}")).await;
    let latest = pull(&api, Some(&start), 100).await["cursor"]
        .as_str()
        .unwrap()
        .to_string();

    let out = Command::new(env!("CARGO_BIN_EXE_dispatchlog"))
        .args(["purge", "--older-than", "0s", "--database", &db_url(&app)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Purged 1 row"));

    assert_eq!(
        api.get(&format!("/api/JobDispatchLog/{gone_id}"))
            .await
            .status,
        404
    );
    let kept_id = kept["id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/api/JobDispatchLog/{kept_id}"))
            .await
            .status,
        200
    );

    let stale = api
        .get(&format!("/api/JobDispatchLog/Changes?since={start}"))
        .await;
    assert_eq!(stale.status, 410, "{}", stale.text);
    assert!(stale.json()["detail"].as_str().unwrap().contains("Resync"));
    assert_eq!(pull(&api, Some(&latest), 100).await["value"], json!([]));
    let fresh = pull(&api, None, 100).await;
    assert_eq!(fresh["value"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_background_purge_removes_rows_deleted_longer_than_the_retention() {
    let app = spawn_app_adjusted(|s| {
        s.retention = Duration::from_secs(1);
        s.purge_interval = Duration::from_secs(1);
    })
    .await;
    let api = app.admin();
    let row = api
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let id = row["id"].as_str().unwrap();
    api.delete(&format!("/api/JobDispatchLog/{id}")).await;
    assert_eq!(
        api.get(&format!("/api/JobDispatchLog/{id}")).await.status,
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if api.get(&format!("/api/JobDispatchLog/{id}")).await.status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the row was never purged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}
