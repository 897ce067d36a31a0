//! The live changes stream (SPEC §7.2): Server-Sent Events as soon as changes commit,
//! resumable with Last-Event-ID.

mod common;

use std::time::Duration;

use common::{guid, spawn_app, spawn_app_adjusted, spawn_app_on, TestApp};
use dispatchlog::domain::Role;
use serde_json::{json, Value};
use uuid::Uuid;

/// One received event.
#[derive(Debug)]
struct Sse {
    event: String,
    id: String,
    data: Value,
}

/// Reads events from an open stream until `count` have come (bounded in time).
async fn read_events(res: &mut reqwest::Response, buffer: &mut String, count: usize) -> Vec<Sse> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while events.len() < count {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !event.is_empty() {
                events.push(Sse {
                    event,
                    id,
                    data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                });
            }
        }
        if events.len() >= count {
            break;
        }
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .expect("the events come in time")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    events
}

async fn open(app: &TestApp, login: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let api = app.as_user(login);
    let mut req = api.request(reqwest::Method::GET, "/api/JobDispatchLog/Changes/Stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    res
}

#[tokio::test]
async fn changes_are_pushed_as_they_commit_and_a_reconnect_resumes_after_the_last_event() {
    let app = spawn_app().await;
    let first = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let mut stream = open(&app, common::ADMIN, None).await;
    let mut buffer = String::new();
    let backlog = read_events(&mut stream, &mut buffer, 1).await;
    assert_eq!(backlog[0].event, "change");
    assert_eq!(backlog[0].data["id"], first["id"]);

    // Written after the stream opened: pushed without asking.
    let second = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let id = second["id"].as_str().unwrap();
    app.admin()
        .delete(&format!("/api/JobDispatchLog/{id}"))
        .await;
    // The row as it stands after each read: its save and its delete as two events, or (when
    // both committed before the stream read) the tombstone alone. Never nothing.
    let mut live = read_events(&mut stream, &mut buffer, 1).await;
    if live[0].data["sys_logical_delete"] != json!(true) {
        live.extend(read_events(&mut stream, &mut buffer, 1).await);
    }
    assert!(
        live.iter().all(|e| e.data["id"] == second["id"]),
        "{live:?}"
    );
    let tombstone = live.last().unwrap();
    assert_eq!(
        tombstone.data["sys_logical_delete"],
        json!(true),
        "a tombstone"
    );
    drop(stream);

    // Resuming after the backlog's event gives the row as it stands (the tombstone), then
    // what came since.
    let third = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let mut resumed = open(&app, common::ADMIN, Some(&backlog[0].id)).await;
    let mut buffer = String::new();
    let again = read_events(&mut resumed, &mut buffer, 2).await;
    assert_eq!(again[0].id, tombstone.id);
    assert_eq!(again[1].data["id"], third["id"]);
    drop(resumed);
    app.stop().await;
}

#[tokio::test]
async fn a_technicians_stream_holds_only_their_rows_and_removals() {
    let app = spawn_app().await;
    let (tom, other) = (Uuid::new_v4(), Uuid::new_v4());
    app.add_user("tom:pw@acme", Role::Technician, tom).await;
    let mut stream = open(&app, "tom:pw@acme", None).await;
    let mut buffer = String::new();
    app.admin()
        .save(&json!({"jobs_id": guid(), "user_id": other}))
        .await;
    let mut mine = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": tom}))
        .await;
    let got = read_events(&mut stream, &mut buffer, 1).await;
    assert_eq!(got[0].data["id"], mine["id"], "only tom's row");
    mine["user_id"] = json!(other);
    mine["sequence"] = json!(0);
    app.admin().save(&mine).await;
    let removed = read_events(&mut stream, &mut buffer, 1).await;
    assert_eq!(removed[0].event, "removed");
    assert_eq!(removed[0].data["id"], mine["id"]);
    drop(stream);
    app.stop().await;
}

#[tokio::test]
async fn a_bad_last_event_id_is_a_400_and_no_credentials_a_401() {
    let app = spawn_app().await;
    let res = app
        .admin()
        .request(reqwest::Method::GET, "/api/JobDispatchLog/Changes/Stream")
        .header("last-event-id", "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .anonymous()
        .get("/api/JobDispatchLog/Changes/Stream")
        .await;
    assert_eq!(res.status, 401);
    app.stop().await;
}

#[tokio::test]
async fn a_commit_of_another_instance_reaches_a_stream_at_once() {
    if common::postgres_server().is_none() {
        println!("SKIPPED on SQLite: several instances share a PostgreSQL database only");
        return;
    }
    let first = spawn_app().await;
    let second = spawn_app_on(first.database.clone(), tempfile::tempdir().unwrap()).await;
    let mut res = open(&first, common::ADMIN, None).await;
    let mut buffer = String::new();
    // Let the listener of the first instance settle, then write through the second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = tokio::time::Instant::now();
    let row = second
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let events = read_events(&mut res, &mut buffer, 1).await;
    let took = started.elapsed();
    assert_eq!(events[0].data["id"], row["id"]);
    println!("a commit of the other instance arrived after {took:?}");
    // Without a notification the stream would only find it by polling, which it no longer does.
    assert!(took < Duration::from_millis(900), "{took:?}");
    drop(res);
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn streams_beyond_the_maximum_are_refused_with_a_503() {
    let app = spawn_app_adjusted(|s| s.limits.max_streams = 2).await;
    let a = open(&app, common::ADMIN, None).await;
    let b = open(&app, common::ADMIN, None).await;
    let refused = app.admin().get("/api/JobDispatchLog/Changes/Stream").await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    let metrics = app.admin().get("/metrics").await.text;
    assert!(metrics.contains("dispatchlog_streams_open 2"), "{metrics}");
    assert!(
        metrics.contains("dispatchlog_sync_lag_seconds 0\n"),
        "two idle streams that are up to date lag by nothing: {metrics}"
    );
    drop((a, b));
    app.stop().await;
}

#[tokio::test]
async fn revoking_a_token_closes_its_open_stream() {
    let app = spawn_app_adjusted(|s| s.login_recheck = Duration::from_millis(300)).await;
    let tom = Uuid::new_v4();
    app.add_user("tom:pw@acme", Role::Technician, tom).await;
    let token = dispatchlog::auth::new_token();
    assert!(app
        .store
        .add_token("acme", "tom", &dispatchlog::auth::token_hash(&token))
        .await
        .unwrap());
    let mut res = app
        .anonymous()
        .request(reqwest::Method::GET, "/api/JobDispatchLog/Changes/Stream")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.store.revoke_tokens("acme", "tom").await.unwrap();
    // The stream ends by itself (within the recheck time; bounded here at 10 s).
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match res.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream of a revoked token stays open");
    app.stop().await;
}

#[tokio::test]
async fn stopping_the_service_ends_open_streams_at_once() {
    let app = spawn_app().await;
    let streams: Vec<_> =
        futures_util::future::join_all((0..5).map(|_| open(&app, common::ADMIN, None))).await;
    let started = tokio::time::Instant::now();
    // `stop` waits for the server to finish: with the streams still held by this test.
    tokio::time::timeout(Duration::from_secs(30), app.stop())
        .await
        .expect("the service stops with streams open");
    println!("stopped with 5 open streams in {:?}", started.elapsed());
    drop(streams);
}
