//! The writer's copy of a group against a real server: writes sent early inside a job, a job
//! undone after that, and a group whose writes fail. Runs when `DISPATCHLOG_TEST_POSTGRES`
//! names a server (as the PostgreSQL half of the suite does), each test in a fresh database.

use uuid::Uuid;

use super::pipeline::WRITER_SESSION;
use super::{PgConn, PgTarget, MIGRATIONS};
use crate::domain::{JobDispatchLog, Role, Timestamp};
use crate::store::shared::conn::{AccountConn, GroupConn, NewHistory, Prefetch, RowConn};
use crate::store::{NewUser, TenantId};

fn connect(url: &str) -> Result<PgConn, crate::store::StoreError> {
    super::connect(&PgTarget::parse(url).expect("a valid test URL"))
}

/// Drops the test database when the test ends.
struct Dropper {
    server: String,
    name: String,
}

impl Drop for Dropper {
    fn drop(&mut self) {
        if let Ok(mut admin) = connect(&self.server) {
            let _ = admin.execute_batch(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A fresh, migrated database and its first tenant; None without a test server.
fn fresh() -> Option<(PgConn, TenantId, Dropper)> {
    let server = std::env::var("DISPATCHLOG_TEST_POSTGRES").ok()?;
    let name = format!("dltest_unit_{}", Uuid::new_v4().simple());
    let mut admin = connect(&server).expect("the test server");
    admin
        .execute_batch(&format!("CREATE DATABASE {name}"))
        .expect("a test database");
    let dropper = Dropper {
        server: server.clone(),
        name: name.clone(),
    };
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    let mut conn = connect(&format!("{base}/{name}")).expect("the test database");
    conn.migrate(MIGRATIONS).expect("migrations");
    conn.add_user(&NewUser {
        domain: "unit".into(),
        username: "admin".into(),
        password_hash: "x".into(),
        role: Role::Admin,
        user_id: Uuid::new_v4(),
    })
    .expect("a user");
    let tenant = conn
        .find_login("unit", "admin")
        .expect("the login")
        .expect("the user")
        .tenant_id;
    Some((conn, tenant, dropper))
}

fn row(jobs_id: Uuid, stamp: i64) -> JobDispatchLog {
    JobDispatchLog {
        id: Uuid::new_v4(),
        jobs_id,
        user_id: Uuid::new_v4(),
        date_create: Timestamp::from_ticks(stamp),
        date_proceeded: Timestamp::UNSET_PROCEEDED,
        is_accepted: false,
        is_rejected: false,
        rejected_reason: String::new(),
        sys_logical_delete: false,
        is_workshop: false,
        modified_dateutc: Timestamp::from_ticks(stamp),
        sequence: 1,
        assigned_user_ids: String::new(),
    }
}

fn history(tenant: TenantId, row: &JobDispatchLog) -> NewHistory<'static> {
    NewHistory {
        tenant,
        id: row.id,
        at: row.modified_dateutc,
        client_at: None,
        actor: "admin@unit",
        action: "create",
        changes: "{}",
    }
}

fn stored(conn: &mut PgConn, tenant: TenantId, id: Uuid) -> Option<JobDispatchLog> {
    conn.begin_read().unwrap();
    let found = conn.select_row(tenant, id).unwrap();
    conn.execute_batch("COMMIT").unwrap();
    found
}

#[test]
fn a_job_undone_after_its_writes_went_early_leaves_the_others() {
    let Some((mut conn, tenant, _dropper)) = fresh() else {
        return;
    };
    let (job_a, job_b) = (Uuid::new_v4(), Uuid::new_v4());
    let a = row(job_a, 1_000);
    let b = row(job_b, 2_000);
    conn.begin_group(&[(tenant, Prefetch::default())]).unwrap();

    // Job 1 writes a row the group did not load: its writes stay pending.
    conn.job_begin().unwrap();
    conn.upsert(tenant, &a).unwrap();
    conn.insert_history(&history(tenant, &a)).unwrap();
    conn.job_end(true).unwrap();

    // Job 2 writes, then asks about a job the group did not load: every pending write must
    // reach the server first (job 1's outside job 2's savepoint), and the answer counts b.
    conn.job_begin().unwrap();
    conn.upsert(tenant, &b).unwrap();
    assert_eq!(conn.max_sequence(tenant, job_b).unwrap(), 1);
    assert_eq!(conn.assignees(tenant, job_b).unwrap(), vec![b.user_id]);
    conn.job_end(false).unwrap();

    // Job 2 is undone on the server and in the group's copy; job 1 is not.
    conn.job_begin().unwrap();
    assert_eq!(conn.select_row(tenant, b.id).unwrap(), None);
    assert_eq!(conn.select_row(tenant, a.id).unwrap(), Some(a.clone()));
    assert_eq!(conn.max_sequence(tenant, job_b).unwrap(), 0);
    conn.job_end(true).unwrap();
    conn.commit_group(&[(tenant, Timestamp::from_ticks(2_000))])
        .unwrap();

    assert_eq!(stored(&mut conn, tenant, a.id), Some(a.clone()));
    assert_eq!(stored(&mut conn, tenant, b.id), None);
    conn.begin_read().unwrap();
    let entries = conn.history(tenant, a.id).unwrap();
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(entries.len(), 1);
}

#[test]
fn a_group_whose_writes_fail_commits_nothing_and_says_so() {
    let Some((mut conn, tenant, _dropper)) = fresh() else {
        return;
    };
    // Two rows with one stamp break the unique stamp index when the writes are sent.
    let job = Uuid::new_v4();
    let first = row(job, 5_000);
    let second = row(job, 5_000);
    conn.begin_group(&[(
        tenant,
        Prefetch {
            ids: vec![first.id, second.id],
            jobs: vec![job],
        },
    )])
    .unwrap();
    for r in [&first, &second] {
        conn.job_begin().unwrap();
        conn.upsert(tenant, r).unwrap();
        conn.job_end(true).unwrap();
    }
    let committed = conn.commit_group(&[(tenant, Timestamp::from_ticks(5_000))]);
    assert!(committed.is_err(), "a failed write must fail the commit");
    conn.rollback_group();
    assert_eq!(stored(&mut conn, tenant, first.id), None);
    assert_eq!(stored(&mut conn, tenant, second.id), None);

    // The connection serves the next group normally.
    conn.begin_group(&[(tenant, Prefetch::default())]).unwrap();
    conn.job_begin().unwrap();
    conn.upsert(tenant, &first).unwrap();
    conn.job_end(true).unwrap();
    conn.commit_group(&[(tenant, Timestamp::from_ticks(5_000))])
        .unwrap();
    assert_eq!(stored(&mut conn, tenant, first.id), Some(first));
}

#[test]
fn the_writers_prefetch_is_planned_once_as_lookups_by_key_even_on_a_small_table() {
    let Some((mut conn, tenant, _dropper)) = fresh() else {
        return;
    };
    conn.execute_batch(WRITER_SESSION).unwrap();
    // A few rows and fresh statistics: the planner knows the table is tiny, where a scan of the
    // whole table (or of the tenant's rows through another index) looks cheapest; and all the
    // rows are of one job, so the job's key looks no more selective than the tenant's. The plan
    // the writer keeps must still look rows up by key, or it would read every row of the
    // tenant at every group once the table has grown.
    let job = Uuid::new_v4();
    conn.begin_group(&[(tenant, Prefetch::default())]).unwrap();
    for stamp in 1..=3 {
        let r = row(job, stamp * 1_000);
        conn.job_begin().unwrap();
        conn.upsert(tenant, &r).unwrap();
        conn.insert_history(&history(tenant, &r)).unwrap();
        conn.job_end(true).unwrap();
    }
    conn.commit_group(&[(tenant, Timestamp::from_ticks(3_000))])
        .unwrap();
    conn.execute_batch("ANALYZE job_dispatch_log").unwrap();

    let plan = conn.prefetch_plan(tenant).unwrap();
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(plan.contains("using job_dispatch_log_pkey"), "{plan}");
    assert!(plan.contains("using job_dispatch_log_job"), "{plan}");
}

/// Commits the group with the next one begun in the same exchange; answers what the early
/// answer callback was told (each call) and the outcomes.
fn commit_then_begin_told(
    conn: &mut PgConn,
    stamps: &[(TenantId, Timestamp)],
    next: &[(TenantId, Prefetch)],
) -> (Vec<Result<(), String>>, bool, bool) {
    let mut told = Vec::new();
    let (committed, opened) = conn.commit_then_begin(stamps, next, &mut |outcome| {
        told.push(outcome);
    });
    (told, committed.is_ok(), opened.is_ok())
}

#[test]
fn a_group_committed_with_the_next_begun_is_answered_once_with_its_own_outcome() {
    let Some((mut conn, tenant, _dropper)) = fresh() else {
        return;
    };
    let job = Uuid::new_v4();
    let first = row(job, 5_000);
    let second = row(job, 6_000);
    conn.begin_group(&[(tenant, Prefetch::default())]).unwrap();
    conn.job_begin().unwrap();
    conn.upsert(tenant, &first).unwrap();
    conn.job_end(true).unwrap();
    let (told, committed, opened) = commit_then_begin_told(
        &mut conn,
        &[(tenant, Timestamp::from_ticks(5_000))],
        &[(tenant, Prefetch::default())],
    );
    assert_eq!(told, vec![Ok(())]);
    assert!(committed && opened);

    // A group whose writes fail (two rows with one stamp) is told so, once; nothing of it is
    // stored, and the next group is begun all the same.
    let clash = row(job, 5_000);
    conn.job_begin().unwrap();
    conn.upsert(tenant, &second).unwrap();
    conn.upsert(tenant, &clash).unwrap();
    conn.job_end(true).unwrap();
    let (told, committed, opened) = commit_then_begin_told(
        &mut conn,
        &[(tenant, Timestamp::from_ticks(6_000))],
        &[(tenant, Prefetch::default())],
    );
    assert_eq!(told.len(), 1);
    assert!(told[0].is_err(), "{told:?}");
    assert!(!committed && opened);
    conn.rollback_group();
    assert_eq!(stored(&mut conn, tenant, first.id), Some(first));
    assert_eq!(stored(&mut conn, tenant, second.id), None);
    assert_eq!(stored(&mut conn, tenant, clash.id), None);
}

/// Every row's stored `assigned_user_ids`, by id, as a list page reads them.
fn stored_texts(conn: &mut PgConn, tenant: TenantId, job: Uuid) -> Vec<(Uuid, String)> {
    let rows = conn
        .query(
            "SELECT id, assigned_user_ids FROM job_dispatch_log
             WHERE tenant_id = $1 AND jobs_id = $2 ORDER BY id",
            &[&tenant, &job],
        )
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// One write job as the writer runs it for a new row: the upsert, then the job's assignees
/// recomputed and their text stored; answers the assignees.
fn write_with_text(conn: &mut PgConn, tenant: TenantId, r: &JobDispatchLog) -> Vec<Uuid> {
    conn.job_begin().unwrap();
    conn.upsert(tenant, r).unwrap();
    let assignees = conn.assignees(tenant, r.jobs_id).unwrap();
    conn.store_job_assignees(tenant, r.jobs_id, &text_of(&assignees))
        .unwrap();
    conn.job_end(true).unwrap();
    assignees
}

fn text_of(ids: &[Uuid]) -> String {
    crate::domain::job_dispatch_log::assigned_user_ids(ids.to_vec())
}

#[test]
fn a_jobs_text_reaches_every_row_even_when_the_rows_went_to_the_server_before_it() {
    let Some((mut conn, tenant, _dropper)) = fresh() else {
        return;
    };
    let job = Uuid::new_v4();
    let first = row(job, 1_000);
    let mut second = row(job, 2_000);
    second.sequence = 2;
    // The group loaded nothing: asking for the job's assignees sends the pending upsert first,
    // before the job's text exists, so the row goes in with none and the text follows.
    conn.begin_group(&[(tenant, Prefetch::default())]).unwrap();
    assert_eq!(
        write_with_text(&mut conn, tenant, &first),
        vec![first.user_id]
    );
    assert_eq!(
        write_with_text(&mut conn, tenant, &second),
        vec![first.user_id, second.user_id]
    );
    conn.commit_group(&[(tenant, Timestamp::from_ticks(2_000))])
        .unwrap();
    let both = text_of(&[first.user_id, second.user_id]);
    let mut expected = vec![(first.id, both.clone()), (second.id, both.clone())];
    expected.sort();
    assert_eq!(stored_texts(&mut conn, tenant, job), expected);

    // A group that loaded the job: a third row takes the new text in its own upsert, the
    // others by the job's update; a rejection of the first row takes it out of every row.
    let mut third = row(job, 3_000);
    third.sequence = 3;
    conn.begin_group(&[(
        tenant,
        Prefetch {
            ids: vec![first.id, third.id],
            jobs: vec![job],
        },
    )])
    .unwrap();
    assert_eq!(
        write_with_text(&mut conn, tenant, &third),
        vec![first.user_id, second.user_id, third.user_id]
    );
    let mut rejected = first.clone();
    rejected.is_rejected = true;
    rejected.modified_dateutc = Timestamp::from_ticks(4_000);
    let left = write_with_text(&mut conn, tenant, &rejected);
    assert_eq!(left, vec![second.user_id, third.user_id]);
    conn.commit_group(&[(tenant, Timestamp::from_ticks(4_000))])
        .unwrap();
    let left = text_of(&left);
    let mut expected = vec![
        (first.id, left.clone()),
        (second.id, left.clone()),
        (third.id, left),
    ];
    expected.sort();
    assert_eq!(stored_texts(&mut conn, tenant, job), expected);
}

/// A purge goes a step at a time, the oldest deleted rows first, each step a whole purge: the
/// rows and their history go, the tenant's horizon follows, and rows not deleted stay.
#[test]
fn a_purge_goes_a_step_at_a_time_oldest_first() {
    let Some((mut conn, tenant, _dropper)) = fresh() else {
        return;
    };
    conn.execute_batch(WRITER_SESSION).unwrap();
    let kept = row(Uuid::new_v4(), 5_500);
    conn.begin_group(&[(tenant, Prefetch::default())]).unwrap();
    conn.job_begin().unwrap();
    for stamp in 1..=10 {
        let mut r = row(Uuid::new_v4(), stamp * 1_000);
        r.sys_logical_delete = true;
        conn.upsert(tenant, &r).unwrap();
        conn.insert_history(&history(tenant, &r)).unwrap();
    }
    conn.upsert(tenant, &kept).unwrap();
    conn.insert_history(&history(tenant, &kept)).unwrap();
    conn.job_end(true).unwrap();
    conn.commit_group(&[(tenant, Timestamp::from_ticks(10_000))])
        .unwrap();

    let count = |conn: &mut PgConn, sql: &str| -> i64 { conn.query_one(sql, &[]).unwrap().get(0) };
    let mut steps = Vec::new();
    loop {
        conn.execute_batch("BEGIN").unwrap();
        let step = conn.purge(Timestamp::from_ticks(100_000), 3).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        steps.push(step.rows);
        let horizon = count(&mut conn, "SELECT purged_through FROM tenant");
        assert_eq!(
            horizon,
            steps.iter().sum::<u64>() as i64 * 1_000,
            "{steps:?}"
        );
        if step.done {
            break;
        }
    }
    assert_eq!(steps, vec![3, 3, 3, 1]);
    assert_eq!(count(&mut conn, "SELECT COUNT(*) FROM job_dispatch_log"), 1);
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM job_dispatch_log_history"),
        1,
        "only the kept row's history stays"
    );
    assert!(stored(&mut conn, tenant, kept.id).is_some());
}
