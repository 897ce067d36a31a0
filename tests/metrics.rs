//! `GET /metrics` (SPEC §5) and the request id every response carries. On the API's address
//! `/metrics` needs an admin login and shows that admin's tenant only; `--metrics-listen`
//! serves every tenant without credentials on an address of its own.

mod common;

use common::{guid, new_row, spawn_app};
use dispatchlog::domain::Role;

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

    let res = app.admin().get("/metrics").await;
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
    let m = app.admin().get("/metrics").await.text;
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
    let m = app.admin().get("/metrics").await.text;
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

/// Three rows (one deleted) in acme, one in `other`; returns other's tenant id.
async fn rows_in_two_tenants(app: &common::TestApp) -> i64 {
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
    app.store
        .find_login("other", "bob")
        .await
        .unwrap()
        .unwrap()
        .tenant_id
}

async fn scrape(app: &common::TestApp) -> String {
    let addr = app.metrics_addr.expect("a metrics address");
    let res = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn the_apis_metrics_need_an_admin_and_show_only_the_admins_tenant() {
    let app = spawn_app().await;
    let other = rows_in_two_tenants(&app).await;
    let acme = app
        .store
        .find_login("acme", "admin")
        .await
        .unwrap()
        .unwrap()
        .tenant_id;
    app.add_user("dora:pw@acme", Role::Dispatcher, uuid::Uuid::nil())
        .await;

    let res = app.anonymous().get("/metrics").await;
    assert_eq!(res.status, 401);
    assert!(res.header("www-authenticate").is_some());
    assert_eq!(
        app.as_user("dora:pw@acme").get("/metrics").await.status,
        403
    );

    let text = app.admin().get("/metrics").await.text;
    for line in [
        format!("dispatchlog_rows{{tenant_id=\"{acme}\"}} 3"),
        format!("dispatchlog_tombstones{{tenant_id=\"{acme}\"}} 1"),
    ] {
        assert!(has_line(&text, &line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains(&format!("tenant_id=\"{other}\"")), "{text}");
    assert!(!text.contains("acme") && !text.contains("other"), "{text}");
    assert!(text.contains("dispatchlog_pool_idle_readers "));
    assert!(text.contains("dispatchlog_writer_queue "));

    let text = app.as_user("bob:pw@other").get("/metrics").await.text;
    assert!(
        has_line(
            &text,
            &format!("dispatchlog_rows{{tenant_id=\"{other}\"}} 1")
        ),
        "{text}"
    );
    assert!(!text.contains(&format!("tenant_id=\"{acme}\"")), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn the_metrics_address_serves_every_tenant_without_credentials() {
    let app = common::spawn_app_adjusted(|s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    assert_ne!(app.metrics_addr, Some(app.addr));
    let other = rows_in_two_tenants(&app).await;
    let text = scrape(&app).await;
    assert!(
        has_line(
            &text,
            &format!("dispatchlog_rows{{tenant_id=\"{other}\"}} 1")
        ),
        "{text}"
    );
    assert!(
        has_line(
            &text,
            &format!("dispatchlog_tombstones{{tenant_id=\"{other}\"}} 0")
        ),
        "{text}"
    );
    assert!(
        !text.contains("acme") && !text.contains("\"other\""),
        "no domain names: {text}"
    );
    for series in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_start_time_seconds ",
        "process_open_fds ",
        "process_max_fds ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(series)),
            "{series}: {text}"
        );
    }
    let rss = value_of(&text, "process_resident_memory_bytes").unwrap();
    assert!(rss > 1e6, "{rss}");

    // Only /metrics lives there: the API is not reachable through the monitoring address.
    let addr = app.metrics_addr.unwrap();
    let res = reqwest::get(format!("http://{addr}/api/JobDispatchLog"))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn tenant_names_are_labels_only_when_asked_for() {
    let app = common::spawn_app_adjusted(|s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        s.metrics_tenant_names = true;
    })
    .await;
    let other = rows_in_two_tenants(&app).await;
    let text = scrape(&app).await;
    let line = format!("dispatchlog_rows{{tenant_id=\"{other}\",tenant=\"other\"}} 1");
    assert!(has_line(&text, &line), "{line} missing from:\n{text}");
    app.stop().await;
}

#[tokio::test]
async fn rows_are_counted_at_most_once_per_refresh_interval() {
    let app = common::spawn_app_adjusted(|s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        s.metrics_refresh = std::time::Duration::from_secs(3600);
    })
    .await;
    let other = rows_in_two_tenants(&app).await;
    let line = format!("dispatchlog_rows{{tenant_id=\"{other}\"}} 1");
    let text = scrape(&app).await;
    assert!(has_line(&text, &line), "{text}");
    // New rows are not counted again before the interval has passed: the figure and its
    // age say when it was taken.
    app.as_user("bob:pw@other").save(&common::new_row()).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let text = scrape(&app).await;
    assert!(has_line(&text, &line), "{text}");
    let age = value_of(&text, "dispatchlog_tenant_figures_age_seconds").unwrap();
    assert!(age >= 0.05, "{age}");
    app.stop().await;
}
