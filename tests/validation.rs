//! Every rule of SPEC §2 and every kind of bad input: a 400 naming the field, nothing stored.

mod common;

use common::{guid, new_row, row_path, s, spawn_app, SAVE};
use serde_json::{json, Value};

/// Saves `body` with a client id and expects a 400 naming `field`, with nothing stored.
async fn assert_refused(app: &common::TestApp, mut body: Value, field: &str) {
    let id = guid();
    body["id"] = json!(id);
    let res = app.admin().post_json(SAVE, &body).await;
    assert_eq!(res.status, 400, "{body}: {}", res.text);
    assert!(res.content_type().starts_with("application/json"));
    assert!(
        !res.field_errors(field).is_empty(),
        "{field} not named for {body}: {}",
        res.text
    );
    assert_eq!(res.json()["status"], json!(400));
    let read = app.admin().get(&row_path(&id)).await;
    assert_eq!(read.status, 404, "nothing is stored for {body}");
}

fn with(extra: Value) -> Value {
    let mut body = new_row();
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn jobs_id_and_user_id_are_required_real_guids() {
    let app = spawn_app().await;
    for field in ["jobs_id", "user_id"] {
        for bad in [
            None,
            Some(json!(null)),
            Some(json!("")),
            Some(json!("   ")),
            Some(json!("00000000-0000-0000-0000-000000000000")),
            Some(json!("not-a-guid")),
            Some(json!("567c1c0c-91e3-4ca3-ac31-eb151e427f5")),
            Some(json!(12)),
            Some(json!(true)),
            Some(json!(["567c1c0c-91e3-4ca3-ac31-eb151e427f59"])),
        ] {
            let mut body = new_row();
            match bad {
                None => {
                    body.as_object_mut().unwrap().remove(field);
                }
                Some(v) => body[field] = v,
            }
            assert_refused(&app, body, field).await;
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_id_is_refused_rather_than_replaced() {
    let app = spawn_app().await;
    for bad in [json!("nope"), json!(5), json!({"id": 1})] {
        let res = app.admin().post_json(SAVE, &with(json!({"id": bad}))).await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
        assert!(!res.field_errors("id").is_empty(), "{}", res.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_dispatch_cannot_be_both_accepted_and_rejected() {
    let app = spawn_app().await;
    let body = with(json!({"is_accepted": true, "is_rejected": true, "rejected_reason": "x"}));
    assert_refused(&app, body, "is_rejected").await;
    app.stop().await;
}

#[tokio::test]
async fn a_workshop_dispatch_cannot_be_rejected() {
    let app = spawn_app().await;
    assert_refused(
        &app,
        with(json!({"is_rejected": true, "is_workshop": true})),
        "is_rejected",
    )
    .await;
    // Either rule alone is fine.
    let ok = app.admin().save(&with(json!({"is_rejected": true}))).await;
    assert_eq!(ok["is_rejected"], json!(true));
    let ok = app
        .admin()
        .save(&with(json!({"is_accepted": true, "is_workshop": true})))
        .await;
    assert_eq!(ok["is_workshop"], json!(true));
    app.stop().await;
}

#[tokio::test]
async fn an_existing_row_cannot_be_updated_into_a_broken_state() {
    let app = spawn_app().await;
    let mut body = with(json!({"is_workshop": true}));
    body["id"] = json!(guid());
    let stored = app.admin().save(&body).await;
    body["is_rejected"] = json!(true);
    let res = app.admin().post_json(SAVE, &body).await;
    assert_eq!(res.status, 400, "{}", res.text);
    let read = app.admin().get(&row_path(&s(&body, "id"))).await;
    assert_eq!(read.json(), stored, "the stored row is untouched");
    app.stop().await;
}

#[tokio::test]
async fn a_rejected_reason_is_only_allowed_on_a_rejected_dispatch() {
    let app = spawn_app().await;
    assert_refused(
        &app,
        with(json!({"rejected_reason": "why not"})),
        "rejected_reason",
    )
    .await;
    assert_refused(
        &app,
        with(json!({"is_accepted": true, "rejected_reason": "why not"})),
        "rejected_reason",
    )
    .await;
    let saved = app
        .admin()
        .save(&with(
            json!({"is_rejected": true, "rejected_reason": "why not"}),
        ))
        .await;
    assert_eq!(saved["rejected_reason"], json!("why not"));
    app.stop().await;
}

#[tokio::test]
async fn a_rejected_reason_holds_at_most_4000_characters() {
    let app = spawn_app().await;
    // Characters, not bytes: 4000 two-byte characters are allowed.
    for reason in ["r".repeat(4000), "é".repeat(4000)] {
        let saved = app
            .admin()
            .save(&with(
                json!({"is_rejected": true, "rejected_reason": reason}),
            ))
            .await;
        assert_eq!(saved["rejected_reason"], json!(reason));
    }
    for reason in ["r".repeat(4001), "é".repeat(4001)] {
        assert_refused(
            &app,
            with(json!({"is_rejected": true, "rejected_reason": reason})),
            "rejected_reason",
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_negative_or_non_int32_sequence_is_refused() {
    let app = spawn_app().await;
    for bad in [
        json!(-1),
        json!(-2147483648_i64),
        json!(2147483648_i64),
        json!(1.5),
        json!("3"),
        json!(true),
    ] {
        assert_refused(&app, with(json!({"sequence": bad})), "sequence").await;
    }
    let saved = app
        .admin()
        .save(&with(json!({"sequence": 2147483647})))
        .await;
    assert_eq!(saved["sequence"], json!(2147483647));
    app.stop().await;
}

#[tokio::test]
async fn a_field_of_the_wrong_json_type_is_a_400_naming_that_field() {
    let app = spawn_app().await;
    for (field, bad) in [
        ("is_accepted", json!("yes")),
        ("is_accepted", json!(1)),
        ("is_rejected", json!("true")),
        ("sys_logical_delete", json!([])),
        ("is_workshop", json!({})),
        ("rejected_reason", json!(5)),
        ("rejected_reason", json!(false)),
        ("date_create", json!(1736629351)),
        ("date_proceeded", json!(true)),
        ("date_create", json!("11/01/2026 21:02")),
        ("date_create", json!("2026-01-11T21:02:31.12345678Z")),
        ("date_proceeded", json!("2026-02-30T00:00:00Z")),
    ] {
        assert_refused(&app, with(json!({ field: bad })), field).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn every_broken_field_is_named_in_one_answer() {
    let app = spawn_app().await;
    let body = json!({
        "jobs_id": "00000000-0000-0000-0000-000000000000",
        "is_workshop": "maybe",
        "sequence": -4,
        "rejected_reason": "no reason",
        "date_create": "yesterday",
    });
    let res = app.admin().post_json(SAVE, &body).await;
    assert_eq!(res.status, 400);
    for field in [
        "jobs_id",
        "user_id",
        "is_workshop",
        "sequence",
        "rejected_reason",
        "date_create",
    ] {
        assert!(!res.field_errors(field).is_empty(), "{field}: {}", res.text);
    }
    let detail = s(&res.json(), "detail");
    assert!(
        detail.contains("jobs_id") && detail.contains("sequence"),
        "{detail}"
    );
    app.stop().await;
}

#[tokio::test]
async fn control_characters_that_xml_cannot_carry_are_refused_in_rejected_reason() {
    let app = spawn_app().await;
    assert_refused(
        &app,
        with(json!({"is_rejected": true, "rejected_reason": "bell\u{7}"})),
        "rejected_reason",
    )
    .await;
    let saved = app
        .admin()
        .save(&with(
            json!({"is_rejected": true, "rejected_reason": "line 1\r\nline 2\ttab"}),
        ))
        .await;
    assert_eq!(saved["rejected_reason"], json!("line 1\r\nline 2\ttab"));
    let xml = app.admin().get_xml(&row_path(&s(&saved, "id"))).await;
    assert_eq!(
        common::parse_xml(&xml.text).text_of("rejected_reason"),
        "line 1\r\nline 2\ttab"
    );
    app.stop().await;
}
