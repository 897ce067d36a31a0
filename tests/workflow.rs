//! The dispatch workflow (SPEC §5, §9): dispatch, accept, reject, If-Match, history.

mod common;

use common::{guid, spawn_app};
use dispatchlog::domain::Role;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_job_dispatched_to_two_technicians_is_accepted_by_one_and_rejected_by_the_other() {
    let app = spawn_app().await;
    let (job, alice, bob) = (guid(), Uuid::new_v4(), Uuid::new_v4());
    app.add_user("alice:pw@acme", Role::Technician, alice).await;
    app.add_user("bob:pw@acme", Role::Technician, bob).await;

    let res = app
        .admin()
        .post_json(
            "/api/JobDispatchLog/Dispatch",
            &json!({"jobs_id": job, "user_ids": [alice, bob], "is_workshop": false}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let rows = res.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["sequence"], json!(1));
    assert_eq!(rows[1]["sequence"], json!(2));
    assert_eq!(
        rows[0]["assigned_user_ids"],
        json!(format!("{alice},{bob}"))
    );
    let alice_row = rows[0]["id"].as_str().unwrap().to_string();
    let bob_row = rows[1]["id"].as_str().unwrap().to_string();

    let offline = "2026-11-27T06:30:00.1234567+00:00";
    let accepted = app
        .as_user("alice:pw@acme")
        .post_json(
            &format!("/api/JobDispatchLog/{alice_row}/Accept"),
            &json!({"date_proceeded": offline}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.json()["is_accepted"], json!(true));
    assert_eq!(accepted.json()["date_proceeded"], json!(offline));

    let rejected = app
        .as_user("bob:pw@acme")
        .post_json(
            &format!("/api/JobDispatchLog/{bob_row}/Reject"),
            &json!({"rejected_reason": "van broke down"}),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    let rejected = rejected.json();
    assert_eq!(rejected["is_rejected"], json!(true));
    assert_eq!(rejected["assigned_user_ids"], json!(alice.to_string()));

    // Bob rejected, so he can be dispatched again: a new row with the next sequence.
    let again = app
        .admin()
        .post_json(
            "/api/JobDispatchLog/Dispatch",
            &json!({"jobs_id": job, "user_ids": [alice, bob]}),
        )
        .await;
    let again = again.json();
    assert_eq!(again.as_array().unwrap().len(), 3);
    assert_eq!(again[2]["sequence"], json!(3));
    assert_eq!(again[2]["user_id"], json!(bob.to_string()));

    let history = app
        .admin()
        .get(&format!("/api/JobDispatchLog/{alice_row}/History"))
        .await;
    assert_eq!(history.status, 200);
    let entries = history.json()["value"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], json!("create"));
    assert_eq!(entries[1]["action"], json!("accept"));
    assert_eq!(entries[1]["actor"], json!("alice@acme"));
    assert_eq!(entries[1]["client_at"], json!(offline));
    assert_eq!(entries[1]["changes"]["is_accepted"]["to"], json!("true"));
    app.stop().await;
}

#[tokio::test]
async fn refused_transitions_are_409_with_the_current_row() {
    let app = spawn_app().await;
    let api = app.admin();
    let workshop = api
        .save(&json!({"jobs_id": guid(), "user_id": guid(), "is_workshop": true}))
        .await;
    let id = workshop["id"].as_str().unwrap();
    let res = api
        .post_json(
            &format!("/api/JobDispatchLog/{id}/Reject"),
            &json!({"rejected_reason": "no"}),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert_eq!(res.json()["current"]["id"], json!(id));

    let accepted = api
        .post_json(&format!("/api/JobDispatchLog/{id}/Accept"), &json!({}))
        .await;
    assert_eq!(accepted.status, 200);
    let reject_accepted = api
        .post_json(
            &format!("/api/JobDispatchLog/{id}/Reject"),
            &json!({"rejected_reason": "no"}),
        )
        .await;
    assert_eq!(reject_accepted.status, 409);

    let plain = api
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let pid = plain["id"].as_str().unwrap();
    let no_reason = api
        .post_json(&format!("/api/JobDispatchLog/{pid}/Reject"), &json!({}))
        .await;
    assert_eq!(no_reason.status, 400);
    assert!(!no_reason.field_errors("rejected_reason").is_empty());
    api.post_json(
        &format!("/api/JobDispatchLog/{pid}/Reject"),
        &json!({"rejected_reason": "sick"}),
    )
    .await;
    let accept_rejected = api
        .post_json(&format!("/api/JobDispatchLog/{pid}/Accept"), &json!({}))
        .await;
    assert_eq!(accept_rejected.status, 409);
    assert_eq!(
        accept_rejected.json()["current"]["is_rejected"],
        json!(true)
    );

    let deleted = api
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let did = deleted["id"].as_str().unwrap();
    assert_eq!(
        api.delete(&format!("/api/JobDispatchLog/{did}"))
            .await
            .status,
        204
    );
    let accept_deleted = api
        .post_json(&format!("/api/JobDispatchLog/{did}/Accept"), &json!({}))
        .await;
    assert_eq!(accept_deleted.status, 409);
    app.stop().await;
}

#[tokio::test]
async fn of_two_clients_with_the_same_etag_one_wins_and_the_other_gets_412_with_the_winner() {
    let app = spawn_app().await;
    let api = app.admin();
    let row = api
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let id = row["id"].as_str().unwrap().to_string();
    let got = api.get(&format!("/api/JobDispatchLog/{id}")).await;
    let etag = got.header("etag").unwrap();

    let mut first = row.clone();
    first["is_workshop"] = json!(true);
    let win = api
        .send(
            api.request(reqwest::Method::PUT, &format!("/api/JobDispatchLog/{id}"))
                .header("content-type", "application/json")
                .header("if-match", &etag)
                .body(first.to_string()),
        )
        .await;
    assert_eq!(win.status, 200, "{}", win.text);

    let mut second = row.clone();
    second["is_accepted"] = json!(true);
    let lose = api
        .send(
            api.request(reqwest::Method::POST, "/api/JobDispatchLog/Save")
                .header("content-type", "application/json")
                .header("if-match", &etag)
                .body(second.to_string()),
        )
        .await;
    assert_eq!(lose.status, 412, "{}", lose.text);
    assert_eq!(lose.json()["current"]["is_workshop"], json!(true));
    assert_eq!(lose.json()["current"]["is_accepted"], json!(false));

    let stale_delete = api
        .send(
            api.request(
                reqwest::Method::DELETE,
                &format!("/api/JobDispatchLog/{id}"),
            )
            .header("if-match", &etag),
        )
        .await;
    assert_eq!(stale_delete.status, 412);
    app.stop().await;
}

#[tokio::test]
async fn an_offline_accept_after_reassignment_is_a_409_and_never_resurrects() {
    let app = spawn_app().await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    app.add_user("alice:pw@acme", Role::Technician, alice).await;
    let mut row = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": alice}))
        .await;
    let id = row["id"].as_str().unwrap().to_string();
    // The dispatcher re-plans while Alice is offline.
    row["user_id"] = json!(bob);
    row["sequence"] = json!(0);
    app.admin().save(&row).await;

    let late = app
        .as_user("alice:pw@acme")
        .post_json(&format!("/api/JobDispatchLog/{id}/Accept"), &json!({}))
        .await;
    assert_eq!(late.status, 409, "{}", late.text);
    let now = app
        .admin()
        .get(&format!("/api/JobDispatchLog/{id}"))
        .await
        .json();
    assert_eq!(now["is_accepted"], json!(false));
    assert_eq!(now["user_id"], json!(bob.to_string()));

    let history = app
        .admin()
        .get(&format!("/api/JobDispatchLog/{id}/History"))
        .await
        .json();
    assert_eq!(history["value"][1]["action"], json!("reassign"));
    app.stop().await;
}
