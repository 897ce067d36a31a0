//! PostgreSQL outages (SPEC §4.4, §5, §10): while the database is away the service answers 503
//! (never 500, never a hang), it recovers by itself when the database returns, and no write it
//! acknowledged is lost.
//!
//! The cluster is shared with other tests, so an outage is simulated for the test's own database
//! only: new connections are refused (`ALLOW_CONNECTIONS false`) and the open ones terminated,
//! which is what clients see when the database restarts or fails over.
//!
//! Runs only when `DISPATCHLOG_TEST_POSTGRES` names a server.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{db_url, postgres_server, TestApp, ADMIN, SAVE};
use serde_json::{json, Value};

/// No request may take longer than this, whatever state the database is in.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the service may take to notice that the database is back.
const RECOVERY: Duration = Duration::from_secs(20);

fn skip(test: &str) -> bool {
    if postgres_server().is_none() {
        eprintln!("skipping {test}: set DISPATCHLOG_TEST_POSTGRES to run it against PostgreSQL");
        return true;
    }
    false
}

/// The test database's name, from its URL.
fn database_name(app: &TestApp) -> String {
    let url = db_url(app);
    let tail = url.rsplit('/').next().unwrap();
    tail.split('?').next().unwrap().to_string()
}

/// Runs statements on the server's `postgres` database, as an operator would, on a blocking
/// thread (the synchronous client must not run on the test's async threads).
async fn admin_sql(sql: String) {
    let server = postgres_server().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&server, postgres::NoTls)
            .expect("the admin connection opens");
        client
            .batch_execute(&sql)
            .expect("the admin statement runs");
    })
    .await
    .unwrap();
}

/// Terminates every connection to the database; when `refuse` is set, new ones are refused
/// first, so the database stays away until [`restore`].
async fn cut(db: &str, refuse: bool) {
    let mut sql = String::new();
    if refuse {
        sql.push_str(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false;"));
    }
    sql.push_str(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = '{db}' AND pid <> pg_backend_pid();"
    ));
    admin_sql(sql).await;
}

async fn restore(db: &str) {
    admin_sql(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true")).await;
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

fn basic() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(ADMIN)
    )
}

/// Status, content type and body of a request; panics when it is not answered in time.
async fn call(req: reqwest::RequestBuilder, what: &str) -> (u16, String, String) {
    let started = Instant::now();
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what} not answered after {:?}: {e}", started.elapsed()));
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    (status, content_type, text)
}

async fn save(client: &reqwest::Client, app: &TestApp, body: &Value) -> (u16, String, String) {
    call(
        client
            .post(app.url(SAVE))
            .header("authorization", basic())
            .header("content-type", "application/json")
            .body(body.to_string()),
        "a save",
    )
    .await
}

async fn get_row(client: &reqwest::Client, app: &TestApp, id: &str) -> (u16, String, String) {
    call(
        client
            .get(app.url(&format!("/api/JobDispatchLog({id})")))
            .header("authorization", basic()),
        "a get",
    )
    .await
}

async fn health(client: &reqwest::Client, app: &TestApp) -> u16 {
    call(client.get(app.url("/health")), "/health").await.0
}

/// A row of its own job, so nothing else changes what reads back for it.
fn body(n: u32) -> Value {
    json!({
        "id": uuid::Uuid::new_v4(),
        "jobs_id": uuid::Uuid::new_v4(),
        "user_id": uuid::Uuid::new_v4(),
        "date_create": format!("2026-01-11T21:02:31.{n:07}+00:00"),
        "is_accepted": n.is_multiple_of(2),
        "sequence": n + 1,
    })
}

/// Asserts a 503 problem document (SPEC §4.4).
fn assert_unavailable(what: &str, (status, content_type, text): &(u16, String, String)) {
    assert_eq!(*status, 503, "{what} during the outage: {status} {text}");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: a problem document, not {content_type}"
    );
    let problem: Value = serde_json::from_str(text).unwrap();
    assert_eq!(problem["status"], 503, "{what}: {problem}");
    assert!(
        !text.contains("SQLSTATE") && !text.contains("postgres"),
        "{text}"
    );
}

/// Saves from one client until `stop`, keeping every acknowledged row; any answer but 2xx or
/// 503, or no answer in time, fails the test.
fn spawn_writer(
    app: &TestApp,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<Value>>>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    let url = app.url(SAVE);
    tokio::spawn(async move {
        let client = client();
        let (mut ok, mut unavailable) = (0, 0);
        let mut n = 1_000_000;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let body = body(n);
            let (status, _, text) = call(
                client
                    .post(&url)
                    .header("authorization", basic())
                    .header("content-type", "application/json")
                    .body(body.to_string()),
                "a concurrent save",
            )
            .await;
            match status {
                200 | 201 => {
                    let row: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(row["id"], body["id"]);
                    acknowledged.lock().unwrap().push(row);
                    ok += 1;
                }
                503 => {
                    unavailable += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => panic!("a concurrent save answered {status}: {text}"),
            }
        }
        (ok, unavailable)
    })
}

/// Every acknowledged row reads back exactly as its save answered.
async fn assert_all_readable(client: &reqwest::Client, app: &TestApp, rows: &[Value]) {
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let (status, _, text) = get_row(client, app, id).await;
        assert_eq!(status, 200, "acknowledged row {id} is lost: {text}");
        let stored: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(&stored, row, "acknowledged row {id} changed");
    }
}

/// Polls until `/health` answers 200; panics after [`RECOVERY`].
async fn await_health(client: &reqwest::Client, app: &TestApp) -> Duration {
    let started = Instant::now();
    loop {
        let status = health(client, app).await;
        if status == 200 {
            return started.elapsed();
        }
        assert_eq!(status, 503, "/health while recovering");
        assert!(
            started.elapsed() < RECOVERY,
            "/health still {status} {:?} after the database came back",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_away_answers_503_then_recovers_without_losing_acknowledged_saves() {
    if skip("database_away_answers_503_then_recovers_without_losing_acknowledged_saves") {
        return;
    }
    let app = common::spawn_app().await;
    let db = database_name(&app);
    let client = client();

    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    for n in 0..10 {
        let (status, _, text) = save(&client, &app, &body(n)).await;
        assert_eq!(status, 201, "{text}");
        acknowledged
            .lock()
            .unwrap()
            .push(serde_json::from_str(&text).unwrap());
    }
    let first_id = acknowledged.lock().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Open read connections, so the outage also finds idle pooled ones.
    assert_eq!(get_row(&client, &app, &first_id).await.0, 200);
    assert_eq!(health(&client, &app).await, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(&app, stop.clone(), acknowledged.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    cut(&db, true).await;
    let cut_at = Instant::now();
    assert_unavailable("Save", &save(&client, &app, &body(100)).await);
    assert_unavailable("GET", &get_row(&client, &app, &first_id).await);
    let (status, _, text) = call(client.get(app.url("/health")), "/health").await;
    assert_eq!(status, 503, "/health during the outage: {text}");
    // Later requests find no connection at all and must not wait for one either.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_unavailable("Save", &save(&client, &app, &body(101)).await);
    assert_unavailable("GET", &get_row(&client, &app, &first_id).await);
    assert_eq!(health(&client, &app).await, 503);
    assert!(
        cut_at.elapsed() < Duration::from_secs(12),
        "requests during the outage were slow: {:?}",
        cut_at.elapsed()
    );

    restore(&db).await;
    let recovered_in = await_health(&client, &app).await;
    let (status, _, text) = save(&client, &app, &body(200)).await;
    assert_eq!(status, 201, "a save once the database is back: {text}");
    acknowledged
        .lock()
        .unwrap()
        .push(serde_json::from_str(&text).unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;

    stop.store(true, Ordering::SeqCst);
    let (ok, unavailable) = writer.await.unwrap();
    assert!(
        unavailable > 0,
        "the concurrent writer never saw the outage"
    );
    assert!(ok > 0, "the concurrent writer never saved");
    let rows = acknowledged.lock().unwrap().clone();
    assert_all_readable(&client, &app, &rows).await;
    eprintln!(
        "{} rows acknowledged ({ok} by the concurrent writer, which saw {unavailable} 503s); \
         healthy again {recovered_in:?} after the database returned",
        rows.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_cut_with_the_database_back_at_once_cost_at_most_503s() {
    if skip("connections_cut_with_the_database_back_at_once_cost_at_most_503s") {
        return;
    }
    let app = common::spawn_app().await;
    let db = database_name(&app);
    let client = client();

    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    for n in 0..5 {
        let (status, _, text) = save(&client, &app, &body(n)).await;
        assert_eq!(status, 201, "{text}");
        acknowledged
            .lock()
            .unwrap()
            .push(serde_json::from_str(&text).unwrap());
    }
    let first_id = acknowledged.lock().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get_row(&client, &app, &first_id).await.0, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(&app, stop.clone(), acknowledged.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    cut(&db, false).await;

    // Each kind of request may meet a dead connection once or twice, never a 500, and then
    // works again without any restart.
    let started = Instant::now();
    let mut n = 300;
    for kind in ["health", "get", "save", "health", "get", "save"] {
        loop {
            n += 1;
            let (status, text) = match kind {
                "health" => (health(&client, &app).await, String::new()),
                "get" => {
                    let (status, _, text) = get_row(&client, &app, &first_id).await;
                    (status, text)
                }
                _ => {
                    let (status, _, text) = save(&client, &app, &body(n)).await;
                    if status == 201 {
                        acknowledged
                            .lock()
                            .unwrap()
                            .push(serde_json::from_str(&text).unwrap());
                    }
                    (status, text)
                }
            };
            if (200..300).contains(&status) {
                break;
            }
            assert_eq!(status, 503, "{kind} after the connections were cut: {text}");
            assert!(
                started.elapsed() < RECOVERY,
                "{kind} still fails {:?} after the connections were cut",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    stop.store(true, Ordering::SeqCst);
    let (ok, _) = writer.await.unwrap();
    assert!(ok > 0, "the concurrent writer never saved");
    let rows = acknowledged.lock().unwrap().clone();
    assert_all_readable(&client, &app, &rows).await;
}
