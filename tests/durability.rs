//! Durability (SPEC §5, §10): a 2xx means the row survives `kill -9` of the server.
//!
//! Starts the real binary, saves from many concurrent clients, kills the process with SIGKILL
//! while saves are in flight, restarts it on the same database and reads every acknowledged row.
//! Runs on a SQLite file, or on a fresh PostgreSQL database when `DISPATCHLOG_TEST_POSTGRES`
//! names a server (as the whole suite does).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::bin::Server;
use common::OwnedDatabase;
use serde_json::{json, Value};

const ADMIN: &str = "admin:secret@acme";
const WRITERS: usize = 16;

fn basic() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(ADMIN)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_save_survives_a_kill_9_of_the_server() {
    let db = OwnedDatabase::new().await;
    eprintln!("kill -9 test on {}", db.arg());
    let mut server = Server::start_on(&db.arg(), Some(ADMIN));
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let failed = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, base, acknowledged, failed) = (
            client.clone(),
            base.clone(),
            acknowledged.clone(),
            failed.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0u32;
            // Until the server is gone: the first failed request ends this writer.
            loop {
                n += 1;
                let accepted = n.is_multiple_of(2);
                let rejected = !accepted && n.is_multiple_of(3);
                let body = json!({
                    "id": uuid::Uuid::new_v4(),
                    "jobs_id": uuid::Uuid::new_v4(),
                    "user_id": uuid::Uuid::new_v4(),
                    "date_create": format!("2026-01-11T21:02:31.{:07}+00:00", w as u32 * 100_000 + n),
                    "is_accepted": accepted,
                    "is_rejected": rejected,
                    "rejected_reason": if rejected { "no parts" } else { "" },
                    "sequence": n,
                });
                let sent = client
                    .post(format!("{base}/api/JobDispatchLog/Save"))
                    .header("authorization", basic())
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                let Ok(res) = sent else { break };
                let status = res.status();
                let Ok(text) = res.text().await else { break };
                if status.is_success() {
                    let row: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(row["id"], body["id"]);
                    acknowledged.lock().unwrap().push(row);
                } else {
                    failed.store(true, Ordering::SeqCst);
                    panic!("a save failed with {status}: {text}");
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked_before_kill = acknowledged.lock().unwrap().len();
    server.kill(); // SIGKILL, saves in flight
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(!failed.load(Ordering::SeqCst));
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acked_before_kill > 0,
        "no save was acknowledged before the kill"
    );
    assert!(acknowledged.len() >= acked_before_kill);

    let server = Server::start_on(&db.arg(), Some(ADMIN));
    let base = format!("http://{}", server.addr);
    let mut highest = String::new();
    for row in &acknowledged {
        let id = row["id"].as_str().unwrap();
        let res = client
            .get(format!("{base}/api/JobDispatchLog({id})"))
            .header("authorization", basic())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "acknowledged row {id} is lost");
        let stored: Value = res.json().await.unwrap();
        assert_eq!(&stored, row, "acknowledged row {id} changed");
        highest = highest.max(row["modified_dateutc"].as_str().unwrap().to_string());
    }

    // The restarted server goes on stamping after everything it stored before.
    let res = client
        .post(format!("{base}/api/JobDispatchLog/Save"))
        .header("authorization", basic())
        .json(&json!({"jobs_id": uuid::Uuid::new_v4(), "user_id": uuid::Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let after: Value = res.json().await.unwrap();
    assert!(after["modified_dateutc"].as_str().unwrap() > highest.as_str());
    drop(server);
}
