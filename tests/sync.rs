//! Sync never misses a change (SPEC §7): while writers insert, update and delete as fast as they
//! can, readers pull through `/Changes` and through `modified_dateutc gt X` paging; once the
//! writers stop and the readers drain, every replica equals the server's state exactly.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{spawn_app_on, Api, TestApp};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

type Replica = HashMap<String, Value>;

/// The stored fields of a row (`assigned_user_ids` is computed from other rows and changes
/// without the row changing, so no replica can be expected to track it).
fn stored(row: &Value) -> Value {
    let mut row = row.clone();
    row.as_object_mut().unwrap().remove("assigned_user_ids");
    row
}

async fn writer(api: Api<'_>, seed: u64, ops: usize, jobs: Arc<Vec<Uuid>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mine: Vec<Value> = Vec::new();
    for _ in 0..ops {
        let choice = rng.random_range(0..10);
        if mine.is_empty() || choice < 4 {
            let job = jobs[rng.random_range(0..jobs.len())];
            let row = api
                .save(&json!({"jobs_id": job, "user_id": Uuid::new_v4()}))
                .await;
            mine.push(row);
        } else if choice < 8 {
            let i = rng.random_range(0..mine.len());
            let mut row = mine[i].clone();
            match rng.random_range(0..3) {
                0 => {
                    row["is_accepted"] = json!(true);
                    row["is_rejected"] = json!(false);
                    row["rejected_reason"] = json!("");
                }
                1 => {
                    row["is_accepted"] = json!(false);
                    row["is_rejected"] = json!(true);
                    row["is_workshop"] = json!(false);
                    row["rejected_reason"] = json!(format!("reason {}", rng.random::<u32>()));
                }
                _ => row["user_id"] = json!(Uuid::new_v4()),
            }
            mine[i] = api.save(&row).await;
        } else {
            let i = rng.random_range(0..mine.len());
            let id = mine[i]["id"].as_str().unwrap().to_string();
            let res = api.delete(&format!("/api/JobDispatchLog/{id}")).await;
            assert_eq!(res.status, 204, "{}", res.text);
            mine.swap_remove(i);
        }
    }
}

/// Pulls `/Changes` until the writers are done and a pull comes back empty.
async fn pull_changes(api: Api<'_>, done: Arc<AtomicBool>) -> Replica {
    let mut replica = Replica::new();
    let mut cursor = String::new();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let path = if cursor.is_empty() {
            "/api/JobDispatchLog/Changes?limit=37".to_string()
        } else {
            format!("/api/JobDispatchLog/Changes?limit=37&since={cursor}")
        };
        let res = api.get(&path).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let page = res.json();
        for row in page["value"].as_array().unwrap() {
            replica.insert(row["id"].as_str().unwrap().to_string(), stored(row));
        }
        cursor = page["cursor"].as_str().unwrap().to_string();
        if finished && page["value"].as_array().unwrap().is_empty() {
            return replica;
        }
    }
}

/// Pages with `$filter=modified_dateutc gt X`, the original's way, until drained.
async fn pull_by_stamp(api: Api<'_>, done: Arc<AtomicBool>) -> Replica {
    let mut replica = Replica::new();
    let mut since = String::from("1753-01-01T00:00:00.0000000Z");
    loop {
        let finished = done.load(Ordering::SeqCst);
        let path = format!(
            "/api/JobDispatchLog?$filter=modified_dateutc%20gt%20{}&$orderby=modified_dateutc&$top=23",
            since.replace('+', "%2B")
        );
        let res = api.get(&path).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let rows = res.json()["value"].as_array().unwrap().clone();
        for row in &rows {
            replica.insert(row["id"].as_str().unwrap().to_string(), stored(row));
        }
        if let Some(last) = rows.last() {
            since = last["modified_dateutc"].as_str().unwrap().to_string();
        }
        if finished && rows.is_empty() {
            return replica;
        }
    }
}

/// The server's whole state, read once nothing moves any more.
async fn full_state(api: &Api<'_>) -> Replica {
    let mut state = Replica::new();
    let mut skip = 0;
    loop {
        let res = api
            .get(&format!(
                "/api/JobDispatchLog?$orderby=id&$top=1000&$skip={skip}"
            ))
            .await;
        let rows = res.json()["value"].as_array().unwrap().clone();
        for row in &rows {
            state.insert(row["id"].as_str().unwrap().to_string(), stored(row));
        }
        if rows.len() < 1000 {
            return state;
        }
        skip += 1000;
    }
}

/// Writers spread over `apps`, one reader of each kind on each app.
async fn race(apps: &[Arc<TestApp>], seed: u64, writers: usize, ops: usize) {
    let jobs: Arc<Vec<Uuid>> = Arc::new((0..8).map(|_| Uuid::new_v4()).collect());
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for app in apps {
        readers.push(tokio::spawn({
            let (app, done) = (app.clone(), done.clone());
            async move { pull_changes(app.admin(), done).await }
        }));
        readers.push(tokio::spawn({
            let (app, done) = (app.clone(), done.clone());
            async move { pull_by_stamp(app.admin(), done).await }
        }));
    }
    let mut tasks = Vec::new();
    for w in 0..writers {
        let app = apps[w % apps.len()].clone();
        let jobs = jobs.clone();
        tasks.push(tokio::spawn(async move {
            writer(app.admin(), seed * 1000 + w as u64, ops, jobs).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let truth = full_state(&apps[0].admin()).await;
    assert!(truth.len() > ops, "the writers wrote rows");
    assert!(
        truth
            .values()
            .any(|r| r["sys_logical_delete"] == json!(true)),
        "tombstones are part of the state"
    );
    for (i, reader) in readers.into_iter().enumerate() {
        let replica = reader.await.unwrap();
        let missing: Vec<_> = truth.keys().filter(|k| !replica.contains_key(*k)).collect();
        assert!(missing.is_empty(), "reader {i} missed rows: {missing:?}");
        for (id, row) in &truth {
            assert_eq!(&replica[id], row, "reader {i} has a stale copy of {id}");
        }
        assert_eq!(
            replica.len(),
            truth.len(),
            "reader {i} has rows the server lacks"
        );
    }
}

async fn stop_all(apps: Vec<Arc<TestApp>>) {
    for app in apps.into_iter().rev() {
        let app = Arc::try_unwrap(app).unwrap_or_else(|_| panic!("a task still holds the app"));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_miss_a_change_while_writers_race() {
    for round in 0..3 {
        let apps = vec![Arc::new(common::spawn_app().await)];
        race(&apps, round, 6, 250).await;
        stop_all(apps).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_database_keep_every_reader_exact() {
    let dir = tempfile::tempdir().unwrap();
    let database = common::fresh_database(&dir).await;
    let mut first = spawn_app_on(database.clone(), dir).await;
    first.owns_database = true;
    let second = spawn_app_on(database, tempfile::tempdir().unwrap()).await;
    let apps = vec![Arc::new(first), Arc::new(second)];
    race(&apps, 7, 6, 200).await;
    stop_all(apps).await;
}
