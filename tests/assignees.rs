//! `assigned_user_ids` (SPEC §2): the user_ids of a job's rows that are neither logically deleted
//! nor rejected, by sequence then user_id, each once. The server keeps each job's text in a
//! table of its own, written whenever a change can alter it; these tests check that the text
//! every read path answers stays exactly the rule's, through every kind of change, and that a
//! database of the previous schema gets the same texts when the new version opens it.

mod common;

use common::{fresh_database, guid, s, spawn_app, spawn_app_on, Api, SAVE_MULTIPLE};
use dispatchlog::domain::Role;
use dispatchlog::store::DatabaseUrl;
use serde_json::{json, Value};
use uuid::Uuid;

const DISPATCH: &str = "/api/JobDispatchLog/Dispatch";

/// `%XX` for everything but unreserved characters, for query values.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The rule of SPEC §2, written here independently of the server: from a job's rows (as the
/// API returns them), the ids of those neither deleted nor rejected, by sequence then user_id
/// (GUIDs compare as their 16 bytes), each once.
fn rule(rows: &[Value]) -> String {
    let mut current: Vec<(i64, Uuid)> = rows
        .iter()
        .filter(|r| r["sys_logical_delete"] == json!(false) && r["is_rejected"] == json!(false))
        .map(|r| {
            (
                r["sequence"].as_i64().unwrap(),
                Uuid::parse_str(&s(r, "user_id")).unwrap(),
            )
        })
        .collect();
    current.sort();
    let mut seen: Vec<Uuid> = Vec::new();
    for (_, user) in current {
        if !seen.contains(&user) {
            seen.push(user);
        }
    }
    seen.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Every row of the job, by the list endpoint.
async fn job_rows(api: &Api<'_>, job: &str) -> Vec<Value> {
    let filter = enc(&format!("jobs_id eq {job}"));
    let res = api
        .get(&format!("/api/JobDispatchLog?$filter={filter}&$top=1000"))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()["value"].as_array().unwrap().clone()
}

/// The whole feed from the beginning: the latest version of every row the caller may see.
async fn feed(api: &Api<'_>) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut path = "/api/JobDispatchLog/Changes?limit=5000".to_string();
    loop {
        let res = api.get(&path).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let page = res.json();
        rows.extend(page["value"].as_array().unwrap().iter().cloned());
        if page["has_more"] != json!(true) {
            return rows;
        }
        path = format!(
            "/api/JobDispatchLog/Changes?limit=5000&since={}",
            s(&page, "cursor")
        );
    }
}

/// The job's `assigned_user_ids`, after checking that the list, every row's GET and the changes
/// feed all answer it on every row of the job, and that it is the rule applied to the job's rows.
async fn assignees_of(api: &Api<'_>, job: &str) -> String {
    let rows = job_rows(api, job).await;
    let text = rule(&rows);
    for row in &rows {
        assert_eq!(s(row, "assigned_user_ids"), text, "list, row {row}");
        let id = s(row, "id");
        let one = api.get(&format!("/api/JobDispatchLog/{id}")).await;
        assert_eq!(one.status, 200, "{}", one.text);
        assert_eq!(s(&one.json(), "assigned_user_ids"), text, "GET {id}");
    }
    let in_feed: Vec<Value> = feed(api)
        .await
        .into_iter()
        .filter(|r| s(r, "jobs_id") == job)
        .collect();
    assert_eq!(
        in_feed.len(),
        rows.len(),
        "the feed holds every row of the job"
    );
    for row in &in_feed {
        assert_eq!(s(row, "assigned_user_ids"), text, "feed, row {row}");
    }
    text
}

fn ids(users: &[Uuid]) -> String {
    users
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn the_text_follows_dispatch_reject_delete_restore_and_dispatch_again() {
    let app = spawn_app().await;
    let api = app.admin();
    let job = guid();
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    let res = api
        .post_json(DISPATCH, &json!({"jobs_id": job, "user_ids": [a, b, c]}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let rows = res.json();
    for row in rows.as_array().unwrap() {
        assert_eq!(
            s(row, "assigned_user_ids"),
            ids(&[a, b, c]),
            "Dispatch answer"
        );
    }
    assert_eq!(assignees_of(&api, &job).await, ids(&[a, b, c]));
    let row_of = |user: Uuid| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| s(r, "user_id") == user.to_string())
            .map(|r| s(r, "id"))
            .unwrap()
    };

    let rejected = api
        .post_json(
            &format!("/api/JobDispatchLog/{}/Reject", row_of(b)),
            &json!({"rejected_reason": "no van"}),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    assert_eq!(s(&rejected.json(), "assigned_user_ids"), ids(&[a, c]));
    assert_eq!(assignees_of(&api, &job).await, ids(&[a, c]));

    // Accepting changes no assignment: the text stays.
    let accepted = api
        .post_json(
            &format!("/api/JobDispatchLog/{}/Accept", row_of(c)),
            &json!({}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(s(&accepted.json(), "assigned_user_ids"), ids(&[a, c]));

    let deleted = api
        .delete(&format!("/api/JobDispatchLog/{}", row_of(a)))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(assignees_of(&api, &job).await, ids(&[c]));

    let mut restore = api
        .get(&format!("/api/JobDispatchLog/{}", row_of(a)))
        .await
        .json();
    restore["sys_logical_delete"] = json!(false);
    assert_eq!(
        s(&api.save(&restore).await, "assigned_user_ids"),
        ids(&[a, c])
    );
    assert_eq!(assignees_of(&api, &job).await, ids(&[a, c]));

    // b rejected, so b is dispatched again: a new row with sequence 4, last in the text.
    let again = api
        .post_json(DISPATCH, &json!({"jobs_id": job, "user_ids": [a, b]}))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json().as_array().unwrap().len(), 4);
    assert_eq!(assignees_of(&api, &job).await, ids(&[a, c, b]));

    // Deleting every current assignee leaves the job with none.
    for row in job_rows(&api, &job).await {
        if row["sys_logical_delete"] == json!(false) {
            let res = api
                .delete(&format!("/api/JobDispatchLog/{}", s(&row, "id")))
                .await;
            assert_eq!(res.status, 204, "{}", res.text);
        }
    }
    assert_eq!(assignees_of(&api, &job).await, "");
    app.stop().await;
}

#[tokio::test]
async fn a_row_moved_to_another_job_leaves_the_first_job_and_joins_the_second() {
    let app = spawn_app().await;
    let api = app.admin();
    let (first, second) = (guid(), guid());
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let ra = api.save(&json!({"jobs_id": first, "user_id": a})).await;
    let rb = api.save(&json!({"jobs_id": first, "user_id": b})).await;
    api.save(&json!({"jobs_id": second, "user_id": c})).await;
    assert_eq!(assignees_of(&api, &first).await, ids(&[a, b]));
    assert_eq!(assignees_of(&api, &second).await, ids(&[c]));

    // b's row (sequence 2) moves to the second job, where c has sequence 1.
    let mut moved = rb.clone();
    moved["jobs_id"] = json!(second);
    assert_eq!(
        s(&api.save(&moved).await, "assigned_user_ids"),
        ids(&[c, b])
    );
    assert_eq!(assignees_of(&api, &first).await, ids(&[a]));
    assert_eq!(assignees_of(&api, &second).await, ids(&[c, b]));

    // A new sequence reorders the job's text: b's row takes c's sequence, 1, and the tie is
    // broken by user_id.
    let mut earlier = api
        .get(&format!("/api/JobDispatchLog/{}", s(&rb, "id")))
        .await
        .json();
    earlier["sequence"] = json!(1);
    let tied = api.save(&earlier).await;
    let mut by_id = [b, c];
    by_id.sort();
    assert_eq!(s(&tied, "assigned_user_ids"), ids(&by_id));
    assert_eq!(assignees_of(&api, &second).await, ids(&by_id));

    // The last row of the first job (a, sequence 1) moves too: that job has no row left.
    let mut last = ra.clone();
    last["jobs_id"] = json!(second);
    api.save(&last).await;
    assert!(job_rows(&api, &first).await.is_empty());
    let mut all = [a, b, c];
    all.sort();
    assert_eq!(assignees_of(&api, &second).await, ids(&all));

    // And back, rejected on the way: it joins no job's text.
    let mut back = api
        .get(&format!("/api/JobDispatchLog/{}", s(&ra, "id")))
        .await
        .json();
    back["jobs_id"] = json!(first);
    back["is_rejected"] = json!(true);
    back["rejected_reason"] = json!("wrong job");
    assert_eq!(s(&api.save(&back).await, "assigned_user_ids"), "");
    assert_eq!(assignees_of(&api, &first).await, "");
    assert_eq!(assignees_of(&api, &second).await, ids(&by_id));
    app.stop().await;
}

#[tokio::test]
async fn save_multiple_within_one_job_answers_and_stores_the_final_text_on_every_row() {
    let app = spawn_app().await;
    let api = app.admin();
    let job = guid();
    let (a, b, c, d) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let items = json!([
        {"jobs_id": job, "user_id": a, "sequence": 3},
        {"jobs_id": job, "user_id": b, "sequence": 1},
        {"jobs_id": job, "user_id": c, "sequence": 2, "is_rejected": true,
         "rejected_reason": "sick"},
        {"jobs_id": job, "user_id": d, "sequence": 2, "sys_logical_delete": true},
        // a again, earlier: a is listed once, at its first sequence.
        {"jobs_id": job, "user_id": a, "sequence": 2},
    ]);
    let res = api.post_json(SAVE_MULTIPLE, &items).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let answer = res.json();
    let answered = answer.as_array().unwrap();
    assert_eq!(answered.len(), 5);
    for row in answered {
        assert_eq!(
            s(row, "assigned_user_ids"),
            ids(&[b, a]),
            "answer row {row}"
        );
    }
    assert_eq!(assignees_of(&api, &job).await, ids(&[b, a]));

    // One list that restores c, rejects b and deletes d's row again (no change): every row of
    // the answer carries the text after the whole list.
    let mut c_row = answered[2].clone();
    c_row["is_rejected"] = json!(false);
    c_row["rejected_reason"] = json!("");
    let mut b_row = answered[1].clone();
    b_row["is_rejected"] = json!(true);
    b_row["rejected_reason"] = json!("van broke down");
    let d_row = answered[3].clone();
    let res = api
        .post_json(SAVE_MULTIPLE, &json!([c_row, b_row, d_row]))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    // a's first sequence and c's are both 2: by user_id.
    let mut a_and_c = [a, c];
    a_and_c.sort();
    for row in res.json().as_array().unwrap() {
        assert_eq!(
            s(row, "assigned_user_ids"),
            ids(&a_and_c),
            "answer row {row}"
        );
    }
    assert_eq!(assignees_of(&api, &job).await, ids(&a_and_c));

    // A list that fails stores nothing, the text included.
    let mut a_row = answered[0].clone();
    a_row["is_rejected"] = json!(true);
    a_row["rejected_reason"] = json!("x");
    let res = api
        .post_json(
            SAVE_MULTIPLE,
            &json!([a_row, {"jobs_id": job, "user_id": Uuid::nil()}]),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert_eq!(assignees_of(&api, &job).await, ids(&a_and_c));
    app.stop().await;
}

#[tokio::test]
async fn a_technicians_feed_carries_the_whole_jobs_text() {
    let app = spawn_app().await;
    let (job, alice, bob) = (guid(), Uuid::new_v4(), Uuid::new_v4());
    app.add_user("alice:pw@acme", Role::Technician, alice).await;
    let res = app
        .admin()
        .post_json(DISPATCH, &json!({"jobs_id": job, "user_ids": [alice, bob]}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let alice_api = app.as_user("alice:pw@acme");
    let rows = feed(&alice_api).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(s(&rows[0], "assigned_user_ids"), ids(&[alice, bob]));
    app.stop().await;
}

/// One row of the old-schema database, written by SQL as the previous version stored it.
struct OldRow {
    tenant: i64,
    id: Uuid,
    jobs_id: Uuid,
    user_id: Uuid,
    rejected: bool,
    deleted: bool,
    sequence: i32,
    stamp: i64,
}

/// Rows covering the rule's cases: ties on sequence, a user twice, rejected and deleted rows, a
/// job without current assignees, and the same job id in another tenant.
fn old_rows(acme: i64, other: i64) -> (Vec<OldRow>, [Uuid; 3]) {
    let jobs = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    let users: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let mut stamp = 630_000_000_000_000_000_i64;
    let mut row = |tenant, jobs_id, user_id, sequence, rejected, deleted| {
        stamp += 10;
        OldRow {
            tenant,
            id: Uuid::new_v4(),
            jobs_id,
            user_id,
            rejected,
            deleted,
            sequence,
            stamp,
        }
    };
    let rows = vec![
        row(acme, jobs[0], users[0], 4, false, false),
        row(acme, jobs[0], users[1], 2, false, false),
        row(acme, jobs[0], users[2], 2, false, false),
        row(acme, jobs[0], users[3], 1, true, false),
        row(acme, jobs[0], users[4], 1, false, true),
        row(acme, jobs[0], users[0], 3, false, false),
        row(acme, jobs[0], users[1], 5, false, false),
        row(acme, jobs[1], users[3], 1, true, false),
        row(acme, jobs[1], users[4], 2, false, true),
        row(acme, jobs[2], users[4], 7, false, false),
        row(other, jobs[0], users[3], 1, false, false),
    ];
    (rows, jobs)
}

/// Creates the database at the schema before `job_assignees` (SQLite 3; PostgreSQL 1, before
/// the write-path migration, as PostgreSQL keeps no such table) through
/// the engines' own migration code, with two tenants and the rows of [`old_rows`].
fn create_old_database(database: &DatabaseUrl) -> [Uuid; 3] {
    match database {
        DatabaseUrl::SqliteFile(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            dispatchlog::store::sqlite::migrate_through(&conn, 3).unwrap();
            conn.execute_batch(
                "INSERT INTO tenant (domain, created_at) VALUES ('acme', 0);
                 INSERT INTO tenant (domain, created_at) VALUES ('other', 0);",
            )
            .unwrap();
            let tenant = |d: &str| -> i64 {
                conn.query_row("SELECT id FROM tenant WHERE domain = ?1", [d], |r| r.get(0))
                    .unwrap()
            };
            let (rows, jobs) = old_rows(tenant("acme"), tenant("other"));
            for r in &rows {
                conn.execute(
                    "INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create,
                         date_proceeded, is_accepted, is_rejected, rejected_reason,
                         sys_logical_delete, is_workshop, modified_dateutc, sequence)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6, ?7, ?8, 0, ?5, ?9)",
                    rusqlite::params![
                        r.tenant,
                        r.id,
                        r.jobs_id,
                        r.user_id,
                        r.stamp,
                        r.rejected,
                        if r.rejected { "no" } else { "" },
                        r.deleted,
                        r.sequence
                    ],
                )
                .unwrap();
            }
            conn.execute_batch(
                "UPDATE tenant SET last_stamp = (SELECT MAX(modified_dateutc)
                     FROM job_dispatch_log WHERE tenant_id = tenant.id)",
            )
            .unwrap();
            jobs
        }
        DatabaseUrl::Postgres(url) => {
            dispatchlog::store::postgres::migrate_through(url, 3).unwrap();
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            let mut tenant = |d: &str| -> i64 {
                client
                    .query_one(
                        "INSERT INTO tenant (domain, created_at) VALUES ($1, 0) RETURNING id",
                        &[&d],
                    )
                    .unwrap()
                    .get(0)
            };
            let (acme, other) = (tenant("acme"), tenant("other"));
            let (rows, jobs) = old_rows(acme, other);
            for r in &rows {
                client
                    .execute(
                        "INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id,
                             date_create, date_proceeded, is_accepted, is_rejected,
                             rejected_reason, sys_logical_delete, is_workshop, modified_dateutc,
                             sequence)
                         VALUES ($1, $2, $3, $4, $5, 0, false, $6, $7, $8, false, $5, $9)",
                        &[
                            &r.tenant,
                            &r.id,
                            &r.jobs_id,
                            &r.user_id,
                            &r.stamp,
                            &r.rejected,
                            &(if r.rejected { "no" } else { "" }),
                            &r.deleted,
                            &r.sequence,
                        ],
                    )
                    .unwrap();
            }
            client
                .batch_execute(
                    "UPDATE tenant SET last_stamp = (SELECT MAX(modified_dateutc)
                         FROM job_dispatch_log WHERE tenant_id = tenant.id)",
                )
                .unwrap();
            jobs
        }
        DatabaseUrl::SqliteMemory => unreachable!("a test database is a file or PostgreSQL"),
    }
}

#[tokio::test]
async fn a_database_of_the_previous_schema_gets_every_jobs_text_when_the_new_version_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    let old = database.clone();
    let jobs = tokio::task::spawn_blocking(move || create_old_database(&old))
        .await
        .unwrap();

    let mut app = spawn_app_on(database, dir).await;
    app.owns_database = true;
    let api = app.admin();
    let texts = [
        assignees_of(&api, &jobs[0].to_string()).await,
        assignees_of(&api, &jobs[1].to_string()).await,
        assignees_of(&api, &jobs[2].to_string()).await,
    ];
    assert_eq!(job_rows(&api, &jobs[0].to_string()).await.len(), 7);
    assert!(texts[0].split(',').count() == 3, "{}", texts[0]);
    assert_eq!(texts[1], "", "a job whose rows are all rejected or deleted");
    assert!(!texts[2].is_empty());

    // After the upgrade the writer keeps the migrated texts: a new dispatch extends them.
    let newcomer = Uuid::new_v4();
    let res = api
        .post_json(
            DISPATCH,
            &json!({"jobs_id": jobs[1], "user_ids": [newcomer]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        assignees_of(&api, &jobs[1].to_string()).await,
        newcomer.to_string()
    );
    let res = api
        .post_json(
            DISPATCH,
            &json!({"jobs_id": jobs[0], "user_ids": [newcomer]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        assignees_of(&api, &jobs[0].to_string()).await,
        format!("{},{newcomer}", texts[0])
    );
    app.stop().await;
}

#[tokio::test]
async fn rows_that_are_no_assignment_still_carry_their_jobs_text() {
    let app = spawn_app().await;
    let api = app.admin();
    let (job, other_job) = (guid(), guid());
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let res = api
        .post_json(DISPATCH, &json!({"jobs_id": job, "user_ids": [a]}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    // A row created already rejected, and one created already deleted, join the job's rows
    // without being assignees: each must still answer the job's text.
    let rejected = api
        .save(&json!({"id": guid(), "jobs_id": job, "user_id": b,
                      "is_rejected": true, "rejected_reason": "no van"}))
        .await;
    assert_eq!(s(&rejected, "assigned_user_ids"), ids(&[a]));
    let deleted_id = guid();
    let deleted = api
        .save(&json!({"id": deleted_id, "jobs_id": job, "user_id": c,
                      "sys_logical_delete": true}))
        .await;
    assert_eq!(s(&deleted, "assigned_user_ids"), ids(&[a]));
    assert_eq!(assignees_of(&api, &job).await, ids(&[a]));

    // The deleted row moves to another job: it takes that job's text, and leaves the first.
    let res = api
        .post_json(DISPATCH, &json!({"jobs_id": other_job, "user_ids": [b]}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let mut moved = api
        .get(&format!("/api/JobDispatchLog/{deleted_id}"))
        .await
        .json();
    moved["jobs_id"] = json!(other_job);
    assert_eq!(s(&api.save(&moved).await, "assigned_user_ids"), ids(&[b]));
    assert_eq!(assignees_of(&api, &other_job).await, ids(&[b]));
    assert_eq!(assignees_of(&api, &job).await, ids(&[a]));
}
