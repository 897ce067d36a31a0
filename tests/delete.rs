//! `DELETE /api/JobDispatchLog(<id>)` and `/api/JobDispatchLog/<id>`: logical delete.

mod common;

use common::{guid, new_row, row_path, row_path_slash, s, spawn_app};
use serde_json::json;

#[tokio::test]
async fn delete_marks_the_row_logically_deleted_bumps_modified_dateutc_and_answers_204() {
    let app = spawn_app().await;
    for path_of in [row_path, row_path_slash] {
        let saved = app.admin().save(&new_row()).await;
        let id = s(&saved, "id");
        let res = app.admin().delete(&path_of(&id)).await;
        assert_eq!(res.status, 204, "{}", res.text);
        assert_eq!(res.text, "");

        // A deleted row can still be read (sync must learn of the deletion).
        let read = app.admin().get(&path_of(&id)).await;
        assert_eq!(read.status, 200);
        let deleted = read.json();
        assert_eq!(deleted["sys_logical_delete"], json!(true));
        assert!(s(&deleted, "modified_dateutc") > s(&saved, "modified_dateutc"));
        assert_ne!(read.header("etag"), None);
        for field in [
            "id",
            "jobs_id",
            "user_id",
            "date_create",
            "date_proceeded",
            "is_accepted",
            "is_rejected",
            "rejected_reason",
            "is_workshop",
            "sequence",
        ] {
            assert_eq!(deleted[field], saved[field], "{field}");
        }
        // It no longer counts as an assignee of its job.
        assert_eq!(deleted["assigned_user_ids"], json!(""));
    }
    app.stop().await;
}

#[tokio::test]
async fn deleting_twice_is_a_204_that_changes_nothing() {
    let app = spawn_app().await;
    let id = s(&app.admin().save(&new_row()).await, "id");
    assert_eq!(app.admin().delete(&row_path(&id)).await.status, 204);
    let first = app.admin().get(&row_path(&id)).await;
    let again = app.admin().delete(&row_path_slash(&id)).await;
    assert_eq!(again.status, 204);
    let second = app.admin().get(&row_path(&id)).await;
    assert_eq!(second.json(), first.json());
    assert_eq!(second.header("etag"), first.header("etag"));
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_unknown_id_is_a_404_problem() {
    let app = spawn_app().await;
    for path in [row_path(&guid()), row_path_slash(&guid())] {
        let res = app.admin().delete(&path).await;
        assert_eq!(res.status, 404, "{}", res.text);
        assert!(res.content_type().starts_with("application/json"));
        assert_eq!(res.json()["status"], json!(404));
    }
    app.stop().await;
}

#[tokio::test]
async fn deleting_with_a_malformed_id_is_a_400() {
    let app = spawn_app().await;
    let res = app.admin().delete("/api/JobDispatchLog(not-a-guid)").await;
    assert_eq!(res.status, 400, "{}", res.text);
    let res = app.admin().delete("/api/JobDispatchLog/not-a-guid").await;
    assert_eq!(res.status, 400, "{}", res.text);
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_row_can_be_restored_by_saving_it_with_sys_logical_delete_false() {
    let app = spawn_app().await;
    let saved = app.admin().save(&new_row()).await;
    let id = s(&saved, "id");
    assert_eq!(app.admin().delete(&row_path(&id)).await.status, 204);
    let deleted = app.admin().get(&row_path(&id)).await.json();
    let mut body = deleted.clone();
    body["sys_logical_delete"] = json!(false);
    let restored = app.admin().save(&body).await;
    assert_eq!(restored["sys_logical_delete"], json!(false));
    assert!(s(&restored, "modified_dateutc") > s(&deleted, "modified_dateutc"));
    assert_eq!(restored["assigned_user_ids"], saved["user_id"]);
    app.stop().await;
}
