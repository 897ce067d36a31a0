//! The routes of SPEC §5: GET and PUT in both path forms, 404/405/413, case-insensitive paths,
//! and `/health`.

mod common;

use common::{guid, new_row, row_path, row_path_slash, s, spawn_app, SAVE, SAVE_MULTIPLE};
use serde_json::json;

#[tokio::test]
async fn a_row_is_read_at_both_path_forms_and_an_unknown_id_is_a_404() {
    let app = spawn_app().await;
    let saved = app.admin().save(&new_row()).await;
    let id = s(&saved, "id");
    for path in [
        row_path(&id),
        row_path_slash(&id),
        format!("/api/JobDispatchLog(guid'{id}')"),
        row_path(&id.to_uppercase()),
    ] {
        let res = app.admin().get(&path).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text);
        assert_eq!(res.json(), saved, "{path}");
        assert!(res.header("etag").is_some());
    }
    for path in [row_path(&guid()), row_path_slash(&guid())] {
        let res = app.admin().get(&path).await;
        assert_eq!(res.status, 404, "{path}");
        assert!(res.content_type().starts_with("application/json"));
    }
    let res = app.admin().get("/api/JobDispatchLog(12345)").await;
    assert_eq!(res.status, 400, "{}", res.text);
    app.stop().await;
}

#[tokio::test]
async fn put_upserts_at_the_id_of_the_path_in_both_forms() {
    let app = spawn_app().await;
    for path_of in [row_path, row_path_slash] {
        let id = guid();
        // No id in the body: the path's id.
        let body = new_row();
        let res = app.admin().put_json(&path_of(&id), &body).await;
        assert_eq!(res.status, 201, "{}", res.text);
        assert_eq!(res.json()["id"], json!(id));
        assert_eq!(res.header("location"), Some(row_path(&id)));
        assert!(res.header("etag").is_some());
        // The same id in the body: an update.
        let mut body = res.json();
        body["is_workshop"] = json!(true);
        let res = app.admin().put_json(&path_of(&id), &body).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.json()["is_workshop"], json!(true));
        // An empty or all-zero id in the body also means the path's id.
        for empty in ["", "00000000-0000-0000-0000-000000000000"] {
            body["id"] = json!(empty);
            let res = app.admin().put_json(&path_of(&id), &body).await;
            assert_eq!(res.status, 200, "{empty:?}: {}", res.text);
            assert_eq!(res.json()["id"], json!(id));
        }
        let read = app.admin().get(&path_of(&id)).await;
        assert_eq!(read.json()["is_workshop"], json!(true));
    }
    app.stop().await;
}

#[tokio::test]
async fn put_with_a_different_id_in_the_body_is_a_400_and_stores_nothing() {
    let app = spawn_app().await;
    let (path_id, body_id) = (guid(), guid());
    let mut body = new_row();
    body["id"] = json!(body_id);
    let res = app.admin().put_json(&row_path(&path_id), &body).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(!res.field_errors("id").is_empty(), "{}", res.text);
    assert_eq!(app.admin().get(&row_path(&path_id)).await.status, 404);
    assert_eq!(app.admin().get(&row_path(&body_id)).await.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn put_checks_the_same_rules_as_save() {
    let app = spawn_app().await;
    let id = guid();
    let mut body = new_row();
    body["is_rejected"] = json!(true);
    body["is_workshop"] = json!(true);
    let res = app.admin().put_json(&row_path_slash(&id), &body).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(!res.field_errors("is_rejected").is_empty());
    assert_eq!(app.admin().get(&row_path(&id)).await.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    for path in [
        "/nothing",
        "/api",
        "/api/Nothing",
        "/api/OtherResource(567c1c0c-91e3-4ca3-ac31-eb151e427f59)",
        "/api/JobDispatchLog/Save/extra",
    ] {
        let res = app.admin().get(path).await;
        assert_eq!(res.status, 404, "{path}: {}", res.text);
        assert!(res.content_type().starts_with("application/json"), "{path}");
        assert_eq!(res.json()["status"], json!(404));
    }
    let res = app.admin().get_accept("/nothing", "application/xml").await;
    assert_eq!(res.status, 404);
    assert_eq!(common::parse_xml(&res.text).name, "Error");
    app.stop().await;
}

#[tokio::test]
async fn a_known_route_with_the_wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let id = guid();
    for (method, path) in [
        (reqwest::Method::GET, SAVE.to_string()),
        (reqwest::Method::PUT, SAVE.to_string()),
        (reqwest::Method::DELETE, SAVE_MULTIPLE.to_string()),
        (reqwest::Method::POST, row_path(&id)),
        (reqwest::Method::PATCH, row_path_slash(&id)),
    ] {
        let res = app
            .admin()
            .send(app.admin().request(method.clone(), &path))
            .await;
        assert_eq!(res.status, 405, "{method} {path}: {}", res.text);
        assert!(
            res.content_type().starts_with("application/json"),
            "{method} {path}"
        );
        assert_eq!(res.json()["status"], json!(405));
    }
    app.stop().await;
}

/// A valid JSON row padded with white space to exactly `size` bytes.
fn padded_row(size: usize) -> String {
    let mut body = new_row().to_string();
    body.insert_str(1, &" ".repeat(size - body.len()));
    assert_eq!(body.len(), size);
    body
}

#[tokio::test]
async fn a_save_body_over_1_mib_is_a_413_and_one_of_exactly_1_mib_is_read() {
    let app = spawn_app().await;
    let res = app
        .admin()
        .post_raw(SAVE, Some("application/json"), None, padded_row(1 << 20))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = app
        .admin()
        .post_raw(
            SAVE,
            Some("application/json"),
            None,
            padded_row((1 << 20) + 1),
        )
        .await;
    assert_eq!(res.status, 413, "{}", res.text);
    assert!(res.content_type().starts_with("application/json"));
    assert_eq!(res.json()["status"], json!(413));
    // PUT has the same limit.
    let res = app
        .admin()
        .send(
            app.admin()
                .request(reqwest::Method::PUT, &row_path(&guid()))
                .body(padded_row((1 << 20) + 1)),
        )
        .await;
    assert_eq!(res.status, 413, "{}", res.text);
    app.stop().await;
}

#[tokio::test]
async fn a_save_multiple_body_may_exceed_1_mib_but_not_16_mib() {
    let app = spawn_app().await;
    let list = |size: usize| {
        let mut body = format!("[{}]", new_row());
        body.insert_str(1, &" ".repeat(size - body.len()));
        body
    };
    let res = app
        .admin()
        .post_raw(SAVE_MULTIPLE, Some("application/json"), None, list(2 << 20))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app
        .admin()
        .post_raw(
            SAVE_MULTIPLE,
            Some("application/json"),
            None,
            list(16 << 20),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app
        .admin()
        .post_raw(
            SAVE_MULTIPLE,
            Some("application/json"),
            None,
            list((16 << 20) + 1),
        )
        .await;
    assert_eq!(res.status, 413, "{}", res.text);
    app.stop().await;
}

#[tokio::test]
async fn routes_match_without_regard_to_case_like_the_original() {
    let app = spawn_app().await;
    let res = app
        .admin()
        .post_json("/api/jobdispatchlog/save", &new_row())
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = s(&res.json(), "id");
    let res = app
        .admin()
        .post_json("/API/JOBDISPATCHLOG/SAVE", &new_row())
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = app
        .admin()
        .post_json("/api/jobDispatchLog/saveMultiple", &json!([new_row()]))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for path in [
        format!("/api/jobdispatchlog({id})"),
        format!("/Api/JOBDISPATCHLOG/{id}"),
    ] {
        let res = app.admin().get(&path).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text);
        assert_eq!(res.json()["id"], json!(id));
    }
    let res = app
        .admin()
        .get(&format!("/api/jobdispatchlog({id})?$format=xml"))
        .await;
    assert!(res.content_type().starts_with("application/xml"));
    let res = app
        .admin()
        .delete(&format!("/api/JobDispatchlog/{id}"))
        .await;
    assert_eq!(res.status, 204);
    app.stop().await;
}

#[tokio::test]
async fn health_answers_200_without_credentials() {
    let app = spawn_app().await;
    let res = app.anonymous().get("/health").await;
    assert_eq!(res.status, 200, "{}", res.text);
    app.stop().await;
}

/// Sends a chunked POST (no Content-Length) of `size` bytes over a raw connection and returns
/// the status line.
async fn chunked_post(app: &common::TestApp, path: &str, size: usize) -> String {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(common::ADMIN);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    let (mut read, mut write) = stream.split();
    let writer = async {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        while sent < size {
            let n = chunk.len().min(size - sent);
            write.write_all(format!("{n:x}\r\n").as_bytes()).await?;
            write.write_all(&chunk[..n]).await?;
            write.write_all(b"\r\n").await?;
            sent += n;
        }
        write.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(())
    };
    let reader = async {
        let mut response = Vec::new();
        let _ = read.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    };
    // The server may answer (and close) before the whole body is sent.
    let (_, response) = tokio::join!(writer, reader);
    response.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_chunked_body_without_content_length_is_limited_too() {
    let app = spawn_app().await;
    let status = chunked_post(&app, SAVE, (1 << 20) + 1).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // A small chunked body is read normally (all white space: not JSON).
    let status = chunked_post(&app, SAVE, 10).await;
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    app.stop().await;
}
