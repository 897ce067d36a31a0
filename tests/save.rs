//! Saving and reading rows: the seed's samples, and every default and rule of SPEC §2.

mod common;

use common::{
    guid, new_row, now_json, row_path, s, seed_json, spawn_app, JSON_FIELD_ORDER, SAVE, SEED_JSON,
};
use serde_json::{json, Value};

const SEED_DATE: &str = "2026-01-11T21:02:31.7932294+00:00";
const UNSET_PROCEEDED: &str = "1980-01-01T00:00:00.0000000+00:00";

#[tokio::test]
async fn a_saved_row_is_created_then_read_back_identically() {
    let app = spawn_app().await;
    let id = guid();
    let mut body = new_row();
    body["id"] = json!(id);
    body["date_create"] = json!("2026-01-11T21:02:31.7932294+00:00");
    let res = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &body)
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let saved = res.json();
    assert_eq!(saved["id"], json!(id));
    assert_eq!(
        saved["date_create"],
        json!("2026-01-11T21:02:31.7932294+00:00")
    );
    assert_eq!(saved["sequence"], json!(1));

    let read = app.admin().get(&format!("/api/JobDispatchLog({id})")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), saved);
    let read = app.admin().get(&format!("/api/JobDispatchLog/{id}")).await;
    assert_eq!(read.json(), saved);
    app.stop().await;
}

#[tokio::test]
async fn saving_the_same_body_twice_is_an_update_that_changes_nothing() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    let first = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &body)
        .await;
    assert_eq!(first.status, 201);
    let second = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &body)
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(first.json(), second.json());
    assert_eq!(first.header("etag"), second.header("etag"));
    app.stop().await;
}

#[tokio::test]
async fn accepted_and_rejected_together_is_a_400_naming_is_rejected() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["is_accepted"] = json!(true);
    body["is_rejected"] = json!(true);
    let res = app
        .admin()
        .post_json("/api/JobDispatchLog/Save", &body)
        .await;
    assert_eq!(res.status, 400);
    assert!(res.content_type().starts_with("application/json"));
    assert!(!res.field_errors("is_rejected").is_empty(), "{}", res.text);
    app.stop().await;
}

// --- The seed's JSON sample -------------------------------------------------------------------

#[tokio::test]
async fn the_seed_json_sample_as_published_is_refused_because_it_is_accepted_and_rejected() {
    let app = spawn_app().await;
    let res = app
        .admin()
        .post_raw(SAVE, Some("application/json"), None, SEED_JSON)
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(!res.field_errors("is_rejected").is_empty(), "{}", res.text);
    let read = app
        .admin()
        .get(&row_path("567c1c0c-91e3-4ca3-ac31-eb151e427f59"))
        .await;
    assert_eq!(read.status, 404, "nothing is stored: {}", read.text);
    app.stop().await;
}

#[tokio::test]
async fn the_seed_json_sample_rejected_on_a_workshop_job_is_refused() {
    let app = spawn_app().await;
    let mut body = seed_json();
    body["is_accepted"] = json!(false);
    let res = app.admin().post_json(SAVE, &body).await;
    assert_eq!(res.status, 400, "{}", res.text);
    let messages = res.field_errors("is_rejected");
    assert!(
        messages.iter().any(|m| m.contains("workshop")),
        "{}",
        res.text
    );
    assert_eq!(
        app.admin().get(&row_path(&s(&body, "id"))).await.status,
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn a_valid_variant_of_the_seed_json_sample_is_saved_and_read_back() {
    let app = spawn_app().await;
    let mut body = seed_json();
    body["is_accepted"] = json!(false);
    body["is_workshop"] = json!(false);
    let before = now_json();
    let res = app.admin().post_json(SAVE, &body).await;
    let after = now_json();
    assert_eq!(res.status, 201, "{}", res.text);
    let saved = res.json();
    for field in [
        "id",
        "jobs_id",
        "user_id",
        "date_create",
        "date_proceeded",
        "is_accepted",
        "is_rejected",
        "rejected_reason",
        "sys_logical_delete",
        "is_workshop",
        "sequence",
    ] {
        assert_eq!(saved[field], body[field], "{field}");
    }
    assert_eq!(saved["date_create"], json!(SEED_DATE));
    assert_eq!(saved["sequence"], json!(12));
    // Read-only and computed fields come from the server, not from the body.
    let modified = s(&saved, "modified_dateutc");
    assert_ne!(modified, SEED_DATE);
    assert!(before <= modified && modified <= after, "{modified}");
    // The job's only row is deleted and rejected: nobody is assigned.
    assert_eq!(saved["assigned_user_ids"], json!(""));

    let read = app.admin().get(&row_path(&s(&body, "id"))).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), saved);
    app.stop().await;
}

// --- id ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_missing_id_is_generated_by_the_server_and_the_row_is_found_at_its_location() {
    let app = spawn_app().await;
    let res = app.admin().post_json(SAVE, &new_row()).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = s(&res.json(), "id");
    let parsed = uuid::Uuid::parse_str(&id).unwrap();
    assert!(!parsed.is_nil());
    let location = res.header("location").expect("a Location header");
    assert_eq!(location, row_path(&id));
    let read = app.admin().get(&location).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), res.json());
    app.stop().await;
}

#[tokio::test]
async fn an_empty_or_all_zero_id_gets_a_new_server_generated_id_each_time() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for id in [
        "",
        "00000000-0000-0000-0000-000000000000",
        "",
        "00000000000000000000000000000000",
    ] {
        let mut body = new_row();
        body["id"] = json!(id);
        let res = app.admin().post_json(SAVE, &body).await;
        assert_eq!(res.status, 201, "{id:?}: {}", res.text);
        let got = uuid::Uuid::parse_str(&s(&res.json(), "id")).unwrap();
        assert!(!got.is_nil());
        ids.push(got);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "every save made its own row");
    app.stop().await;
}

// --- date_create ------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_date_create_is_kept_on_insert_and_never_changed_by_an_update() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    body["date_create"] = json!("2025-03-04T05:06:07.1234567Z");
    let first = app.admin().save(&body).await;
    assert_eq!(
        first["date_create"],
        json!("2025-03-04T05:06:07.1234567+00:00")
    );

    body["date_create"] = json!("2020-01-01T00:00:00Z");
    body["is_workshop"] = json!(true);
    let second = app.admin().post_json(SAVE, &body).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["is_workshop"], json!(true));
    assert_eq!(
        second.json()["date_create"],
        json!("2025-03-04T05:06:07.1234567+00:00")
    );

    body.as_object_mut().unwrap().remove("date_create");
    let third = app.admin().save(&body).await;
    assert_eq!(
        third["date_create"],
        json!("2025-03-04T05:06:07.1234567+00:00")
    );
    app.stop().await;
}

#[tokio::test]
async fn without_date_create_the_insert_is_stamped_with_the_servers_time() {
    let app = spawn_app().await;
    for date_create in [None, Some(json!(null)), Some(json!("0001-01-01T00:00:00"))] {
        let mut body = new_row();
        if let Some(v) = &date_create {
            body["date_create"] = v.clone();
        }
        let before = now_json();
        let saved = app.admin().save(&body).await;
        let after = now_json();
        let created = s(&saved, "date_create");
        assert!(
            before <= created && created <= after,
            "{date_create:?}: {created}"
        );
        assert_eq!(
            saved["date_create"], saved["modified_dateutc"],
            "{date_create:?}"
        );
    }
    app.stop().await;
}

// --- date_proceeded ---------------------------------------------------------------------------

#[tokio::test]
async fn date_proceeded_defaults_to_1980() {
    let app = spawn_app().await;
    let saved = app.admin().save(&new_row()).await;
    assert_eq!(saved["date_proceeded"], json!(UNSET_PROCEEDED));
    let mut body = new_row();
    body["date_proceeded"] = json!(null);
    let saved = app.admin().save(&body).await;
    assert_eq!(saved["date_proceeded"], json!(UNSET_PROCEEDED));
    app.stop().await;
}

#[tokio::test]
async fn accepting_without_a_decision_time_stamps_date_proceeded_with_the_servers_time() {
    let app = spawn_app().await;
    for given in [
        None,
        Some(json!(null)),
        Some(json!("1980-01-01T00:00:00Z")),
        Some(json!(UNSET_PROCEEDED)),
    ] {
        let mut body = new_row();
        body["is_accepted"] = json!(true);
        if let Some(v) = &given {
            body["date_proceeded"] = v.clone();
        }
        let saved = app.admin().save(&body).await;
        assert_ne!(saved["date_proceeded"], json!(UNSET_PROCEEDED), "{given:?}");
        assert_eq!(
            saved["date_proceeded"], saved["modified_dateutc"],
            "{given:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn rejecting_an_existing_dispatch_stamps_date_proceeded_with_the_time_of_that_update() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    let created = app.admin().save(&body).await;
    assert_eq!(created["date_proceeded"], json!(UNSET_PROCEEDED));

    body["is_rejected"] = json!(true);
    body["rejected_reason"] = json!("van broke down");
    let rejected = app.admin().save(&body).await;
    assert_eq!(rejected["date_proceeded"], rejected["modified_dateutc"]);
    assert!(s(&rejected, "date_proceeded") > s(&created, "modified_dateutc"));
    app.stop().await;
}

#[tokio::test]
async fn the_decision_time_of_an_offline_technician_is_kept() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["is_accepted"] = json!(true);
    body["date_proceeded"] = json!("2026-02-03T04:05:06.7000000+00:00");
    let saved = app.admin().save(&body).await;
    assert_eq!(
        saved["date_proceeded"],
        json!("2026-02-03T04:05:06.7000000+00:00")
    );

    let mut body = new_row();
    body["is_rejected"] = json!(true);
    body["rejected_reason"] = json!("customer absent");
    body["date_proceeded"] = json!("2026-02-03T06:05:06+02:00");
    let saved = app.admin().save(&body).await;
    assert_eq!(
        saved["date_proceeded"],
        json!("2026-02-03T04:05:06.0000000+00:00")
    );
    app.stop().await;
}

#[tokio::test]
async fn saving_an_accepted_dispatch_again_keeps_its_first_decision_time() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    body["is_accepted"] = json!(true);
    let first = app.admin().save(&body).await;
    let again = app.admin().post_json(SAVE, &body).await;
    assert_eq!(again.status, 200);
    let again = again.json();
    assert_eq!(again["date_proceeded"], first["date_proceeded"]);
    assert_eq!(again["modified_dateutc"], first["modified_dateutc"]);
    app.stop().await;
}

// --- modified_dateutc -------------------------------------------------------------------------

#[tokio::test]
async fn a_client_modified_dateutc_is_ignored_on_insert_and_update() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    body["modified_dateutc"] = json!("2099-01-01T00:00:00Z");
    let inserted = app.admin().save(&body).await;
    assert_ne!(
        inserted["modified_dateutc"],
        json!("2099-01-01T00:00:00.0000000+00:00")
    );
    assert!(s(&inserted, "modified_dateutc") <= now_json());

    // A client value alone is no change at all.
    body["modified_dateutc"] = json!("2000-01-01T00:00:00Z");
    let unchanged = app.admin().post_json(SAVE, &body).await;
    assert_eq!(unchanged.status, 200);
    assert_eq!(unchanged.json(), inserted);
    app.stop().await;
}

#[tokio::test]
async fn every_change_bumps_modified_dateutc_and_the_etag() {
    let app = spawn_app().await;
    let id = guid();
    let mut body = new_row();
    body["id"] = json!(id);
    let mut stamps = Vec::new();
    let mut etags = Vec::new();
    for change in [
        json!({}),
        json!({"is_workshop": true}),
        json!({"is_workshop": false, "is_accepted": true}),
        json!({"sequence": 5}),
    ] {
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = app.admin().post_json(SAVE, &body).await;
        assert!(res.status == 200 || res.status == 201, "{}", res.text);
        stamps.push(s(&res.json(), "modified_dateutc"));
        etags.push(res.header("etag").expect("an ETag"));
    }
    for pair in stamps.windows(2) {
        assert!(pair[0] < pair[1], "{stamps:?}");
    }
    for pair in etags.windows(2) {
        assert_ne!(pair[0], pair[1], "{etags:?}");
    }
    let read = app.admin().get(&row_path(&id)).await;
    assert_eq!(read.header("etag").as_ref(), etags.last());
    assert_eq!(s(&read.json(), "modified_dateutc"), *stamps.last().unwrap());
    app.stop().await;
}

// --- sequence ---------------------------------------------------------------------------------

#[tokio::test]
async fn inserts_are_numbered_one_more_than_the_highest_sequence_of_their_job() {
    let app = spawn_app().await;
    let job = guid();
    let row = |extra: Value| {
        let mut body = json!({"jobs_id": job, "user_id": guid()});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let mut got = Vec::new();
    for extra in [
        json!({}),
        json!({"sequence": 0}),
        json!({"sequence": null}),
        json!({"sequence": 10}),
        json!({}),
    ] {
        got.push(app.admin().save(&row(extra)).await["sequence"].clone());
    }
    assert_eq!(
        got,
        vec![json!(1), json!(2), json!(3), json!(10), json!(11)]
    );
    // Another job starts again at 1.
    assert_eq!(app.admin().save(&new_row()).await["sequence"], json!(1));
    app.stop().await;
}

#[tokio::test]
async fn a_zero_or_missing_sequence_on_update_keeps_the_stored_one() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    body["sequence"] = json!(7);
    assert_eq!(app.admin().save(&body).await["sequence"], json!(7));
    body["sequence"] = json!(0);
    assert_eq!(app.admin().save(&body).await["sequence"], json!(7));
    body.as_object_mut().unwrap().remove("sequence");
    body["is_workshop"] = json!(true);
    assert_eq!(app.admin().save(&body).await["sequence"], json!(7));
    body["sequence"] = json!(9);
    assert_eq!(app.admin().save(&body).await["sequence"], json!(9));
    app.stop().await;
}

#[tokio::test]
async fn thirty_two_parallel_inserts_into_one_job_get_exactly_sequences_1_to_32() {
    let app = spawn_app().await;
    let job = guid();
    let api = app.admin();
    let saves = (0..32).map(|_| {
        let body = json!({"jobs_id": job, "user_id": guid()});
        let api = &api;
        async move { api.post_json(SAVE, &body).await }
    });
    let results = futures_util::future::join_all(saves).await;
    let mut sequences: Vec<i64> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text);
            r.json()["sequence"].as_i64().unwrap()
        })
        .collect();
    sequences.sort();
    assert_eq!(sequences, (1..=32).collect::<Vec<i64>>());
    app.stop().await;
}

// --- assigned_user_ids ------------------------------------------------------------------------

#[tokio::test]
async fn assigned_user_ids_lists_the_jobs_current_assignees_by_sequence_then_user_once_each() {
    let app = spawn_app().await;
    let job = guid();
    let (first, second, rejected, deleted) = (guid(), guid(), guid(), guid());
    let mut tied = [guid(), guid()];
    let save = |user: &str, sequence: i32, extra: Value| {
        let mut body = json!({"id": guid(), "jobs_id": job, "user_id": user, "sequence": sequence});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    // Saved out of order, to show the list is ordered by sequence, not by insertion.
    let rows = [
        save(&second, 2, json!({})),
        save(&first, 1, json!({"is_accepted": true})),
        save(
            &rejected,
            3,
            json!({"is_rejected": true, "rejected_reason": "ill"}),
        ),
        save(&deleted, 4, json!({"sys_logical_delete": true})),
        save(&tied[1], 5, json!({})),
        save(&tied[0], 5, json!({})),
        save(&first, 6, json!({})),
    ];
    for row in &rows {
        app.admin().save(row).await;
    }
    app.admin().save(&new_row()).await; // another job: not listed
    tied.sort();
    let expected = format!("{first},{second},{},{}", tied[0], tied[1]);
    for row in &rows {
        let read = app.admin().get(&row_path(&s(row, "id"))).await;
        assert_eq!(read.json()["assigned_user_ids"], json!(expected));
    }
    // Deleting an assignee takes it off the list of every row of the job.
    let res = app.admin().delete(&row_path(&s(&rows[0], "id"))).await;
    assert_eq!(res.status, 204);
    let read = app.admin().get(&row_path(&s(&rows[1], "id"))).await;
    assert_eq!(
        read.json()["assigned_user_ids"],
        json!(format!("{first},{},{}", tied[0], tied[1]))
    );
    app.stop().await;
}

#[tokio::test]
async fn assigned_user_ids_sent_by_a_client_is_ignored() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    body["assigned_user_ids"] = json!("not,a,real,list");
    let saved = app.admin().save(&body).await;
    assert_eq!(saved["assigned_user_ids"], body["user_id"]);
    // Not even a wrong type is looked at.
    body["assigned_user_ids"] = json!(42);
    let res = app.admin().post_json(SAVE, &body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json(), saved);
    app.stop().await;
}

// --- Responses of Save ------------------------------------------------------------------------

#[tokio::test]
async fn an_insert_is_a_201_with_location_and_etag_and_an_update_a_200_without_location() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    let inserted = app.admin().post_json(SAVE, &body).await;
    assert_eq!(inserted.status, 201);
    assert_eq!(inserted.header("location"), Some(row_path(&s(&body, "id"))));
    assert!(inserted.header("etag").is_some());
    body["is_workshop"] = json!(true);
    let updated = app.admin().post_json(SAVE, &body).await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.header("location"), None);
    assert!(updated.header("etag").is_some());
    let row = updated.json();
    let keys: Vec<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, JSON_FIELD_ORDER);
    app.stop().await;
}

#[tokio::test]
async fn prefer_return_minimal_answers_with_the_id_only_and_still_stores_the_whole_row() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["is_accepted"] = json!(true);
    let res = app
        .admin()
        .send(
            app.admin()
                .request(reqwest::Method::POST, SAVE)
                .header("content-type", "application/json")
                .header("prefer", "return=minimal")
                .body(body.to_string()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let minimal = res.json();
    assert_eq!(minimal.as_object().unwrap().len(), 1, "{minimal}");
    let id = s(&minimal, "id");
    assert_eq!(res.header("location"), Some(row_path(&id)));
    let read = app.admin().get(&row_path(&id)).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["jobs_id"], body["jobs_id"]);
    assert_eq!(read.json()["is_accepted"], json!(true));
    assert_eq!(read.header("etag"), res.header("etag"));
    app.stop().await;
}
