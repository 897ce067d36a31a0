//! Tenants (SPEC §8): nothing of tenant A is visible or writable from tenant B.

mod common;

use common::{guid, new_row, row_path, row_path_slash, s, spawn_app, SAVE, SAVE_MULTIPLE};
use dispatchlog::domain::Role;
use serde_json::json;
use uuid::Uuid;

const BOB: &str = "bob:pw@other";

#[tokio::test]
async fn the_same_id_saved_in_two_tenants_is_two_separate_rows() {
    let app = spawn_app().await;
    app.add_user(BOB, Role::Admin, Uuid::nil()).await;
    let id = guid();
    let mut mine = new_row();
    mine["id"] = json!(id);
    let mut theirs = new_row();
    theirs["id"] = json!(id);
    theirs["is_workshop"] = json!(true);

    let a = app.admin().post_json(SAVE, &mine).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let b = app.as_user(BOB).post_json(SAVE, &theirs).await;
    assert_eq!(b.status, 201, "a new row in the other tenant: {}", b.text);

    let read_a = app.admin().get(&row_path(&id)).await.json();
    let read_b = app.as_user(BOB).get(&row_path(&id)).await.json();
    assert_eq!(read_a, a.json());
    assert_eq!(read_b, b.json());
    assert_eq!(read_a["jobs_id"], mine["jobs_id"]);
    assert_eq!(read_b["jobs_id"], theirs["jobs_id"]);
    assert_eq!(read_a["is_workshop"], json!(false));
    app.stop().await;
}

#[tokio::test]
async fn another_tenant_can_neither_read_update_nor_delete_a_row() {
    let app = spawn_app().await;
    app.add_user(BOB, Role::Admin, Uuid::nil()).await;
    let saved = app.admin().save(&new_row()).await;
    let id = s(&saved, "id");
    let bob = app.as_user(BOB);

    for path in [row_path(&id), row_path_slash(&id)] {
        let res = bob.get(&path).await;
        assert_eq!(res.status, 404, "{path}: {}", res.text);
        let res = bob.delete(&path).await;
        assert_eq!(res.status, 404, "{path}: {}", res.text);
    }

    // A save or PUT with that id creates Bob's own row; Alice's is untouched.
    let mut body = saved.clone();
    body["is_accepted"] = json!(true);
    let res = bob.post_json(SAVE, &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = bob.put_json(&row_path(&id), &body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = bob.post_json(SAVE_MULTIPLE, &json!([body])).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // Bob's row has its own sequence and assignees, from Bob's tenant only.
    assert_eq!(res.json()[0]["assigned_user_ids"], saved["user_id"]);

    let alice = app.admin().get(&row_path(&id)).await;
    assert_eq!(alice.json(), saved);
    app.stop().await;
}

#[tokio::test]
async fn sequences_and_assignees_are_counted_within_a_tenant() {
    let app = spawn_app().await;
    app.add_user(BOB, Role::Admin, Uuid::nil()).await;
    let job = guid();
    let a_user = guid();
    for _ in 0..3 {
        app.admin()
            .save(&json!({"jobs_id": job, "user_id": a_user}))
            .await;
    }
    let b_user = guid();
    let bobs = app
        .as_user(BOB)
        .save(&json!({"jobs_id": job, "user_id": b_user}))
        .await;
    assert_eq!(bobs["sequence"], json!(1));
    assert_eq!(bobs["assigned_user_ids"], json!(b_user));
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_deleting_its_row_leaves_the_other_tenants_row_alone() {
    let app = spawn_app().await;
    app.add_user(BOB, Role::Admin, Uuid::nil()).await;
    let id = guid();
    let mut body = new_row();
    body["id"] = json!(id);
    let alices = app.admin().save(&body).await;
    app.as_user(BOB).save(&body).await;
    assert_eq!(app.as_user(BOB).delete(&row_path(&id)).await.status, 204);
    assert_eq!(
        app.as_user(BOB).get(&row_path(&id)).await.json()["sys_logical_delete"],
        json!(true)
    );
    assert_eq!(app.admin().get(&row_path(&id)).await.json(), alices);
    app.stop().await;
}
