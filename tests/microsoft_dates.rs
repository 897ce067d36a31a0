//! Microsoft JSON dates (SPEC §4.2): `"\/Date(ms)\/"` and `"\/Date(ms+hhmm)\/"`, as
//! `DataContractJsonSerializer` and `JavaScriptSerializer` write them, are read as milliseconds
//! since 1970 UTC; the offset does not move the instant; output stays ISO.

mod common;

use common::{guid, parse_xml, row_path, spawn_app, Resp, SAVE};
use serde_json::json;

/// Posts JSON text exactly as given, so `\/` reaches the server as the escape a .NET client sends.
async fn post_raw_json(app: &common::TestApp, path: &str, text: &str) -> Resp {
    let api = app.admin();
    api.send(
        api.request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(text.to_string()),
    )
    .await
}

fn row_with(field: &str, date: &str) -> String {
    format!(
        r#"{{"jobs_id":"{}","user_id":"{}","is_accepted":true,"{field}":"{date}"}}"#,
        guid(),
        guid()
    )
}

#[tokio::test]
async fn microsoft_json_dates_are_read_as_milliseconds_since_1970_utc() {
    let app = spawn_app().await;
    for field in ["date_create", "date_proceeded"] {
        for (given, stored) in [
            (
                r"\/Date(1735787045123)\/",
                "2025-01-02T03:04:05.1230000+00:00",
            ),
            // Unescaped slashes are the same JSON string.
            ("/Date(1735787045123)/", "2025-01-02T03:04:05.1230000+00:00"),
            // Before 1970: .NET writes negative milliseconds.
            (r"\/Date(-86400001)\/", "1969-12-30T23:59:59.9990000+00:00"),
            ("/Date(0)/", "1970-01-01T00:00:00.0000000+00:00"),
        ] {
            let res = post_raw_json(&app, SAVE, &row_with(field, given)).await;
            assert_eq!(res.status, 201, "{field}={given}: {}", res.text);
            assert_eq!(res.json()[field], json!(stored), "{field}={given}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_offset_of_a_microsoft_date_does_not_move_the_instant() {
    let app = spawn_app().await;
    for given in [
        r"\/Date(1735787045123+0200)\/",
        r"\/Date(1735787045123-0500)\/",
        r"\/Date(1735787045123+0000)\/",
        r"\/Date(1735787045123+1400)\/",
    ] {
        let res = post_raw_json(&app, SAVE, &row_with("date_proceeded", given)).await;
        assert_eq!(res.status, 201, "{given}: {}", res.text);
        let saved = res.json();
        assert_eq!(
            saved["date_proceeded"],
            json!("2025-01-02T03:04:05.1230000+00:00"),
            "{given}"
        );
        // Stored as that instant: XML reads it back in its own ISO form.
        let xml = app
            .admin()
            .get_xml(&row_path(saved["id"].as_str().unwrap()))
            .await;
        assert_eq!(
            parse_xml(&xml.text).text_of("date_proceeded"),
            "2025-01-02T03:04:05.123Z"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_dotnet_default_date_in_microsoft_form_means_not_given() {
    let app = spawn_app().await;
    // As DataContractJsonSerializer writes an unset DateTime: UTC, east of Greenwich (clamped to
    // year 1), and west of it (the instant whose local time is midnight of year 1 in New York).
    for (create, proceeded) in [
        (
            r"\/Date(-62135596800000)\/",
            r"\/Date(-62135596800000+0100)\/",
        ),
        (
            r"\/Date(-62135578980000-0457)\/",
            r"\/Date(-62135578800000-0500)\/",
        ),
    ] {
        let text = format!(
            r#"{{"jobs_id":"{}","user_id":"{}","date_create":"{create}","date_proceeded":"{proceeded}"}}"#,
            guid(),
            guid()
        );
        let res = post_raw_json(&app, SAVE, &text).await;
        assert_eq!(res.status, 201, "{create}: {}", res.text);
        let saved = res.json();
        assert_eq!(
            saved["date_proceeded"],
            json!("1980-01-01T00:00:00.0000000+00:00")
        );
        // The server's now, not year 1.
        assert!(
            saved["date_create"].as_str().unwrap().starts_with("20"),
            "{saved}"
        );
    }
    // Year 1 at another local time is a real (out of range) date.
    let res = post_raw_json(
        &app,
        SAVE,
        &row_with("date_create", r"\/Date(-62135578980000)\/"),
    )
    .await;
    assert_eq!(res.status, 400, "{}", res.text);
    app.stop().await;
}

#[tokio::test]
async fn microsoft_dates_outside_the_years_1753_to_9999_are_a_400_naming_the_field() {
    let app = spawn_app().await;
    for given in [
        // 1752-12-31T23:59:59.999Z
        r"\/Date(-6847804800001)\/",
        // 10000-01-01T00:00:00Z
        r"\/Date(253402300800000)\/",
        r"\/Date(253402300800000+0200)\/",
        // 0001-01-02, a real early date rather than .NET's default
        r"\/Date(-62135510400000)\/",
        r"\/Date(999999999999999999)\/",
    ] {
        for field in ["date_create", "date_proceeded"] {
            let res = post_raw_json(&app, SAVE, &row_with(field, given)).await;
            assert_eq!(res.status, 400, "{field}={given}: {}", res.text);
            let messages = res.field_errors(field);
            assert!(
                messages.iter().any(|m| m.contains("1753 to 9999")),
                "{field}={given}: {}",
                res.text
            );
        }
    }
    // The edges themselves are accepted.
    for (given, stored) in [
        (
            r"\/Date(-6847804800000)\/",
            "1753-01-01T00:00:00.0000000+00:00",
        ),
        (
            r"\/Date(253402300799999)\/",
            "9999-12-31T23:59:59.9990000+00:00",
        ),
    ] {
        let res = post_raw_json(&app, SAVE, &row_with("date_create", given)).await;
        assert_eq!(res.status, 201, "{given}: {}", res.text);
        assert_eq!(res.json()["date_create"], json!(stored));
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_microsoft_dates_are_a_400_naming_the_field() {
    let app = spawn_app().await;
    for given in [
        r"\/Date()\/",
        r"\/Date(abc)\/",
        r"\/Date(1735787045123)",
        r"\/Date(1735787045123+2)\/",
        r"\/Date(1735787045123+2500)\/",
        r"\/Date(1.5)\/",
        r"\/Date(1735787045123)\/x",
        r"\/Date(123456789012345678901234567890)\/",
    ] {
        let res = post_raw_json(&app, SAVE, &row_with("date_proceeded", given)).await;
        assert_eq!(res.status, 400, "{given}: {}", res.text);
        assert!(
            !res.field_errors("date_proceeded").is_empty(),
            "{given}: {}",
            res.text
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn microsoft_dates_work_wherever_json_dates_are_read() {
    let app = spawn_app().await;
    let row = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    let id = row["id"].as_str().unwrap();
    // An offline technician's decision time on Accept.
    let res = post_raw_json(
        &app,
        &format!("/api/JobDispatchLog/{id}/Accept"),
        r#"{"date_proceeded":"\/Date(1735787045123+0100)\/"}"#,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.json()["date_proceeded"],
        json!("2025-01-02T03:04:05.1230000+00:00")
    );
    // Each item of a SaveMultiple.
    let items = format!(
        r#"[{},{}]"#,
        row_with("date_create", r"\/Date(1735787045123)\/"),
        row_with("date_create", r"\/Date(1735787045123-0500)\/")
    );
    let res = post_raw_json(&app, "/api/JobDispatchLog/SaveMultiple", &items).await;
    assert_eq!(res.status, 200, "{}", res.text);
    for item in res.json().as_array().unwrap() {
        assert_eq!(
            item["date_create"],
            json!("2025-01-02T03:04:05.1230000+00:00")
        );
    }
    let res = post_raw_json(
        &app,
        "/api/JobDispatchLog/SaveMultiple",
        &format!("[{}]", row_with("date_create", r"\/Date(x)\/")),
    )
    .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(
        !res.field_errors("[0].date_create").is_empty(),
        "{}",
        res.text
    );
    app.stop().await;
}

#[tokio::test]
async fn xml_bodies_keep_iso_dates_only() {
    let app = spawn_app().await;
    let body = format!(
        "<job_dispatch_log><jobs_id>{}</jobs_id><user_id>{}</user_id>\
         <date_create>/Date(1735787045123)/</date_create></job_dispatch_log>",
        guid(),
        guid()
    );
    let res = app.admin().post_xml(SAVE, &body).await;
    assert_eq!(res.status, 400, "{}", res.text);
    app.stop().await;
}
