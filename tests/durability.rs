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

/// Saves from many clients until the server is killed with SIGKILL after `load`, with saves
/// in flight; answers the rows acknowledged.
async fn save_until_killed(server: &mut Server, cycle: u32, load: Duration) -> Vec<Value> {
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
                    "date_create": format!("2026-01-11T21:02:31.{:07}+00:00", cycle * 1_000_000 + w as u32 * 50_000 + n),
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
    tokio::time::sleep(load).await;
    let acked_before_kill = acknowledged.lock().unwrap().len();
    server.kill(); // SIGKILL, saves in flight
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(!failed.load(Ordering::SeqCst));
    assert!(
        acked_before_kill > 0,
        "no save was acknowledged before the kill"
    );
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= acked_before_kill);
    acknowledged
}

/// Every row the server holds, by id, read through the changes feed.
async fn stored_rows(server: &Server) -> std::collections::HashMap<String, Value> {
    let client = reqwest::Client::new();
    let mut rows = std::collections::HashMap::new();
    let mut cursor = String::new();
    loop {
        let page: Value = client
            .get(format!(
                "http://{}/api/JobDispatchLog/Changes?limit=5000&since={cursor}",
                server.addr
            ))
            .header("authorization", basic())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for row in page["value"].as_array().unwrap() {
            rows.insert(row["id"].as_str().unwrap().to_string(), row.clone());
        }
        cursor = page["cursor"].as_str().unwrap().to_string();
        if page["has_more"] != json!(true) {
            return rows;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_save_survives_five_kill_9_cycles_under_load() {
    let db = OwnedDatabase::new().await;
    eprintln!("kill -9 cycles on {}", db.arg());
    let mut acknowledged: Vec<Value> = Vec::new();
    for cycle in 0..5 {
        let mut server = Server::start_on(&db.arg(), Some(ADMIN));
        // What the previous cycles acknowledged is all there, exactly as acknowledged.
        let stored = stored_rows(&server).await;
        for row in &acknowledged {
            let id = row["id"].as_str().unwrap();
            let found = stored.get(id);
            assert_eq!(
                found,
                Some(row),
                "cycle {cycle}: acknowledged row {id} is lost or changed"
            );
        }
        acknowledged
            .extend(save_until_killed(&mut server, cycle, Duration::from_millis(1500)).await);
    }
    eprintln!(
        "{} rows acknowledged over 5 kill -9 cycles",
        acknowledged.len()
    );

    let server = Server::start_on(&db.arg(), Some(ADMIN));
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let stored = stored_rows(&server).await;
    let mut highest = String::new();
    for row in &acknowledged {
        let id = row["id"].as_str().unwrap();
        assert_eq!(
            stored.get(id),
            Some(row),
            "acknowledged row {id} is lost or changed"
        );
        highest = highest.max(row["modified_dateutc"].as_str().unwrap().to_string());
    }
    // One by one through GET as well, for the last cycle's rows.
    for row in acknowledged.iter().rev().take(200) {
        let id = row["id"].as_str().unwrap();
        let res = client
            .get(format!("{base}/api/JobDispatchLog({id})"))
            .header("authorization", basic())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "acknowledged row {id} is lost");
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
