//! The live changes stream (SPEC §7.2): Server-Sent Events as soon as changes commit,
//! resumable with Last-Event-ID.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine as _;
use common::{guid, spawn_app, spawn_app_adjusted, spawn_app_on, TestApp, SAVE_MULTIPLE};
use dispatchlog::domain::Role;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use uuid::Uuid;

/// One received event.
#[derive(Debug)]
struct Sse {
    event: String,
    id: String,
    data: Value,
}

/// Takes the complete events at the start of `buffer` off it (heartbeats are skipped).
fn take_events(buffer: &mut String, events: &mut Vec<Sse>) {
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
}

/// Reads events from an open stream until `count` have come (bounded in time).
async fn read_events(res: &mut reqwest::Response, buffer: &mut String, count: usize) -> Vec<Sse> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while events.len() < count {
        take_events(buffer, &mut events);
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

/// The technician tom@acme, with a bearer token: the token.
async fn technician_with_token(app: &TestApp) -> String {
    let tom = Uuid::new_v4();
    app.add_user("tom:pw@acme", Role::Technician, tom).await;
    let token = dispatchlog::auth::new_token();
    assert!(app
        .store
        .add_token("acme", "tom", &dispatchlog::auth::token_hash(&token))
        .await
        .unwrap());
    token
}

#[tokio::test]
async fn revoking_a_token_closes_its_open_stream() {
    let app = spawn_app_adjusted(|s| s.login_recheck = Duration::from_millis(300)).await;
    let token = technician_with_token(&app).await;
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

/// The body of a chunked HTTP/1.1 answer, as far as its complete chunks go.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .expect("a chunk size");
        let start = line_end + 2;
        if size == 0 || body.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
    out
}

/// The streams open now, as `/metrics` counts them.
async fn streams_open(app: &TestApp) -> u64 {
    let metrics = app.admin().get("/metrics").await.text;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("dispatchlog_streams_open "))
        .and_then(|v| v.trim().parse().ok())
        .expect("/metrics counts open streams")
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_resumes_without_missing_a_change() {
    let write_timeout = Duration::from_secs(1);
    let app = spawn_app_adjusted(|s| s.limits.write_timeout = write_timeout).await;

    // A phone that opens its stream, takes the answer's head, and then reads nothing more: a
    // small receive buffer, so that the server's writes soon find its socket full.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut phone = socket.connect(app.addr).await.unwrap();
    let authorization = base64::engine::general_purpose::STANDARD.encode(common::ADMIN);
    let request = format!(
        "GET /api/JobDispatchLog/Changes/Stream HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Basic {authorization}\r\nAccept: text/event-stream\r\n\r\n",
        app.addr
    );
    phone.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), phone.read(&mut chunk))
            .await
            .expect("the stream's head comes in time")
            .unwrap();
        assert!(n > 0, "the stream opens");
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(received.starts_with(b"HTTP/1.1 200"), "{received:?}");
    assert_eq!(streams_open(&app).await, 1);

    // 2,000 rejected dispatches with long reasons: about 8 MB of events, far more than the
    // sockets and the server's buffers hold.
    let reason = "The customer was not on site and did not answer the phone; the gate was \
                  locked, so the compressor could not be reached. "
        .repeat(30);
    let mut saved = HashSet::new();
    for _ in 0..4 {
        let rows: Vec<Value> = (0..500)
            .map(|_| {
                json!({"id": guid(), "jobs_id": guid(), "user_id": guid(),
                       "is_rejected": true, "rejected_reason": reason})
            })
            .collect();
        let res = app.admin().post_json(SAVE_MULTIPLE, &json!(rows)).await;
        assert_eq!(res.status, 200, "{}", res.text);
        saved.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_string()));
    }
    let saved_at = tokio::time::Instant::now();

    // The server gives up on the phone within the write timeout (plus a margin for a busy
    // machine), and its stream slot with it.
    let margin = Duration::from_secs(4);
    loop {
        if streams_open(&app).await == 0 {
            break;
        }
        assert!(
            saved_at.elapsed() < write_timeout + margin,
            "a stream whose client reads nothing is still open after {:?}",
            saved_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the stream of a client that stopped reading was closed {:?} after the last save",
        saved_at.elapsed()
    );
    let metrics = app.admin().get("/metrics").await.text;
    assert!(
        !metrics.contains("dispatchlog_http_write_timeouts_total 0\n"),
        "{metrics}"
    );

    // The connection is closed: what the sockets still held arrives, then the end.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match phone.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the connection of the stalled stream stays open"
    );
    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut text = String::from_utf8(dechunk(&received[head_end..])).unwrap();
    let mut seen = Vec::new();
    take_events(&mut text, &mut seen);
    assert!(
        seen.len() < saved.len(),
        "the phone could not have had every change"
    );

    // Resuming after the last whole event the phone got (or from the start) gives every change
    // it had not seen, and nothing twice.
    let last = seen.last().map(|e| e.id.clone());
    let mut resumed = open(&app, common::ADMIN, last.as_deref()).await;
    let mut buffer = String::new();
    let rest = read_events(&mut resumed, &mut buffer, saved.len() - seen.len()).await;
    let mut ids: Vec<String> = seen
        .iter()
        .chain(&rest)
        .map(|e| e.data["id"].as_str().unwrap().to_string())
        .collect();
    println!(
        "the phone had {} of {} changes; the resumed stream sent {}",
        seen.len(),
        saved.len(),
        rest.len()
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), seen.len() + rest.len(), "no change twice");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), saved);
    drop(resumed);
    app.stop().await;
}

#[tokio::test]
async fn revoking_a_token_closes_every_stream_of_it_and_no_other() {
    let app = spawn_app_adjusted(|s| s.login_recheck = Duration::from_millis(300)).await;
    let token = technician_with_token(&app).await;
    let open_with_token = || {
        app.anonymous()
            .request(reqwest::Method::GET, "/api/JobDispatchLog/Changes/Stream")
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    let (first, second) = (
        open_with_token().await.unwrap(),
        open_with_token().await.unwrap(),
    );
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let admins = open(&app, common::ADMIN, None).await;
    assert_eq!(streams_open(&app).await, 3);
    app.store.revoke_tokens("acme", "tom").await.unwrap();
    // Both of the token's streams end by themselves (within the recheck time; bounded here at
    // 10 s); the admin's stays.
    for mut res in [first, second] {
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(_)) = res.chunk().await {}
        })
        .await;
        assert!(ended.is_ok(), "a stream of a revoked token stays open");
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        streams_open(&app).await,
        1,
        "the admin's stream is still open"
    );
    drop(admins);
    app.stop().await;
}
