//! `GET /metrics` (SPEC §5) and the request id every response carries.

mod common;

use common::{guid, new_row, spawn_app};

fn value_of(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status() {
    let app = spawn_app().await;
    app.admin().save(&new_row()).await;
    let unknown = guid();
    let res = app
        .admin()
        .get(&format!("/api/JobDispatchLog/{unknown}"))
        .await;
    assert_eq!(res.status, 404);

    let res = app.anonymous().get("/metrics").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.content_type().starts_with("text/plain; version=0.0.4"));
    let m = res.text;
    assert!(m.contains("# TYPE dispatchlog_http_requests_total counter"));
    let saved = value_of(
        &m,
        "dispatchlog_http_requests_total{route=\"/api/JobDispatchLog/Save\",method=\"POST\",status=\"201\"}",
    );
    assert!(saved.is_some_and(|n| n >= 1.0), "{m}");
    let missing = value_of(
        &m,
        "dispatchlog_http_requests_total{route=\"/api/JobDispatchLog/{id}\",method=\"GET\",status=\"404\"}",
    );
    assert!(missing.is_some_and(|n| n >= 1.0), "{m}");
    assert!(
        !m.contains(&unknown),
        "row ids must not become labels (one series per id would never end)"
    );
    app.stop().await;
}

#[tokio::test]
async fn latencies_are_histograms_per_route() {
    let app = spawn_app().await;
    app.admin().save(&new_row()).await;
    let m = app.anonymous().get("/metrics").await.text;
    assert!(m.contains("# TYPE dispatchlog_http_request_duration_seconds histogram"));
    let prefix = "dispatchlog_http_request_duration_seconds_bucket{route=\"/api/JobDispatchLog/Save\",method=\"POST\",le=\"+Inf\"}";
    assert!(value_of(&m, prefix).is_some_and(|n| n >= 1.0), "{m}");
    assert!(m.contains(
        "dispatchlog_http_request_duration_seconds_count{route=\"/api/JobDispatchLog/Save\",method=\"POST\"}"
    ));
    app.stop().await;
}

#[tokio::test]
async fn group_commits_of_the_sqlite_writer_are_measured() {
    let app = spawn_app().await;
    let saves = (0..8).map(|_| async {
        app.admin().save(&new_row()).await;
    });
    futures_util::future::join_all(saves).await;
    let m = app.anonymous().get("/metrics").await.text;
    assert!(m.contains("# TYPE dispatchlog_sqlite_group_commit_size histogram"));
    let commits = value_of(&m, "dispatchlog_sqlite_group_commit_size_count").unwrap();
    let jobs = value_of(&m, "dispatchlog_sqlite_group_commit_size_sum").unwrap();
    assert!(commits >= 1.0 && jobs >= 8.0, "{m}");
    assert!(value_of(&m, "dispatchlog_sqlite_writer_queue_depth").is_some());
    assert!(value_of(&m, "dispatchlog_purge_runs_total{outcome=\"ok\"}").is_some());
    app.stop().await;
}

#[tokio::test]
async fn a_request_id_is_returned_as_sent_or_generated() {
    let app = spawn_app().await;
    let res = app
        .admin()
        .send(
            app.admin()
                .request(reqwest::Method::GET, "/health")
                .header("x-request-id", "sync-run-42"),
        )
        .await;
    assert_eq!(res.header("x-request-id").as_deref(), Some("sync-run-42"));
    let res = app.anonymous().get("/api/JobDispatchLog/Changes").await;
    assert_eq!(res.status, 401);
    let generated = res.header("x-request-id").expect("a generated request id");
    assert!(uuid::Uuid::try_parse(&generated).is_ok(), "{generated}");
    app.stop().await;
}

#[tokio::test]
async fn rows_and_tombstones_are_counted_per_tenant() {
    let app = spawn_app().await;
    app.add_user(
        "bob:pw@other",
        dispatchlog::domain::Role::Admin,
        uuid::Uuid::nil(),
    )
    .await;
    let api = app.admin();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let row = api.save(&common::new_row()).await;
        ids.push(row["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        api.delete(&format!("/api/JobDispatchLog/{}", ids[0]))
            .await
            .status,
        204
    );
    app.as_user("bob:pw@other").save(&common::new_row()).await;

    let text = app.anonymous().get("/metrics").await.text;
    for line in [
        "dispatchlog_rows{tenant=\"acme\"} 3",
        "dispatchlog_tombstones{tenant=\"acme\"} 1",
        "dispatchlog_rows{tenant=\"other\"} 1",
        "dispatchlog_tombstones{tenant=\"other\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    assert!(text.contains("dispatchlog_pool_idle_readers "));
    assert!(text.contains("dispatchlog_writer_queue "));
    app.stop().await;
}
