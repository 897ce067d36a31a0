//! Slow, stalled and excess clients cannot starve the others: header, idle and body timeouts,
//! a maximum of connections with a clear refusal, and a bounded set of database connections.

mod common;

use std::time::{Duration, Instant};

use common::{guid, spawn_app_adjusted, TestApp};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads what the server sends until it closes the connection; None when it has not closed it
/// within `wait`.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut received = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).into()),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

async fn app_with_short_timeouts(max_connections: usize) -> TestApp {
    spawn_app_adjusted(|s| {
        s.limits.max_connections = max_connections;
        s.limits.header_timeout = Duration::from_secs(1);
        s.limits.body_timeout = Duration::from_secs(1);
    })
    .await
}

#[tokio::test]
async fn stalled_connections_are_closed_and_the_excess_is_refused_with_a_503() {
    let app = app_with_short_timeouts(20).await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        stalled.push(s);
    }
    // Give the server a moment to accept them all, then one more is over the limit.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(app.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let refusal = read_until_closed(&mut extra, Duration::from_secs(5))
        .await
        .expect("the refused connection is closed");
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal}");
    assert!(refusal.contains("Retry-After: 1"), "{refusal}");
    // Each stalled client is cut off by the header timeout.
    for s in &mut stalled {
        assert!(
            read_until_closed(s, Duration::from_secs(10))
                .await
                .is_some(),
            "a client that never finished its headers is still connected"
        );
    }
    // And the others are served again.
    let res = app.anonymous().get("/health").await;
    assert_eq!(res.status, 200);
    let metrics = app.admin().get("/metrics").await.text;
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dispatchlog_http_connections_refused_total "))
        .expect("the refusals are counted");
    assert!(refused.parse::<u64>().unwrap() >= 1, "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let app = app_with_short_timeouts(100).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The connection stays open for keep-alive, then idles past the timeout.
    assert!(
        read_until_closed(&mut s, Duration::from_secs(10))
            .await
            .is_some(),
        "an idle connection is kept open without end"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_a_408_and_nothing_is_stored() {
    let app = app_with_short_timeouts(100).await;
    let id = guid();
    let body = json!({"id": id, "jobs_id": guid(), "user_id": guid()}).to_string();
    let auth = base64_login(common::ADMIN);
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/JobDispatchLog/Save HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .expect("the server ends the stalled request");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(
        app.admin()
            .get(&format!("/api/JobDispatchLog/{id}"))
            .await
            .status,
        404
    );
    app.stop().await;
}

fn base64_login(login: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(login)
}

#[tokio::test]
async fn reads_never_hold_more_database_connections_than_the_maximum() {
    let app = spawn_app_adjusted(|s| {
        s.store.max_read_connections = 2;
        s.store.acquire_timeout = Duration::from_millis(20);
    })
    .await;
    let admin = app.admin();
    for _ in 0..5 {
        admin
            .save(&json!({"jobs_id": guid(), "user_id": guid()}))
            .await;
    }
    let burst = (0..200).map(|i| {
        let admin = &admin;
        async move {
            let path = if i % 2 == 0 {
                "/api/JobDispatchLog?$top=5&$count=true"
            } else {
                "/api/JobDispatchLog/Changes?limit=5"
            };
            admin.get(path).await
        }
    });
    let answers = futures_util::future::join_all(burst).await;
    for res in &answers {
        match res.status {
            200 => {}
            503 => assert_eq!(res.header("retry-after").as_deref(), Some("1"), "{res:?}"),
            other => panic!("{other}: {}", res.text),
        }
    }
    let busy = answers.iter().filter(|r| r.status == 503).count();
    println!("{busy} of 200 reads were answered 503 at a maximum of 2 read connections");
    let metrics = admin.get("/metrics").await.text;
    let open: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dispatchlog_pool_open_readers "))
        .expect("open readers are reported")
        .parse()
        .unwrap();
    assert!(open <= 2, "{open} read connections open");
    if let (Some(server), dispatchlog::store::DatabaseUrl::Postgres(url)) =
        (common::postgres_server(), &app.database)
    {
        let name = url.rsplit('/').next().unwrap().to_string();
        let count = tokio::task::spawn_blocking(move || {
            let mut client = postgres::Client::connect(&server, postgres::NoTls).unwrap();
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&name],
                )
                .unwrap();
            row.get::<_, i64>(0)
        })
        .await
        .unwrap();
        // Two readers, the writer, and the session listening for other instances' commits.
        assert!(count <= 4, "{count} connections to PostgreSQL");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_sqlite_wal_stays_under_its_limit_under_a_sustained_save_load() {
    let limit: u64 = 4 << 20;
    let app = spawn_app_adjusted(|s| s.store.wal_limit = limit).await;
    let dispatchlog::store::DatabaseUrl::SqliteFile(path) = app.database.clone() else {
        println!("SKIPPED on PostgreSQL: the WAL bound is SQLite's");
        return;
    };
    let mut wal = path.into_os_string();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (wal, done) = (wal.clone(), done.clone());
        tokio::spawn(async move {
            let mut largest = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            largest
        })
    };
    // 16 clients saving realistic rows, 4,000 saves in all (about 100 MB of WAL unbounded).
    let admin = app.admin();
    let clients = (0..16).map(|_| {
        let admin = &admin;
        async move {
            for i in 0..250 {
                let res = admin
                    .post_json(
                        "/api/JobDispatchLog/Save",
                        &json!({
                            "id": guid(), "jobs_id": guid(), "user_id": guid(),
                            "date_create": "2026-11-27T06:30:00.1234567+00:00",
                            "date_proceeded": "2026-11-27T07:30:00.1234567+00:00",
                            "is_accepted": i % 3 == 0, "is_rejected": i % 3 == 1,
                            "rejected_reason": if i % 3 == 1 { "van broke down on the way" } else { "" },
                            "sys_logical_delete": false, "is_workshop": false, "sequence": 1 + i % 3,
                        }),
                    )
                    .await;
                assert_eq!(res.status, 201, "{}", res.text);
            }
        }
    });
    futures_util::future::join_all(clients).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let largest = sampler.await.unwrap();
    println!("largest WAL seen: {largest} bytes (limit {limit})");
    assert!(largest <= limit, "the WAL reached {largest} bytes");
    let list = admin
        .get("/api/JobDispatchLog?$count=true&$top=1")
        .await
        .json();
    assert_eq!(list["@odata.count"], json!(4000));
    app.stop().await;
}
