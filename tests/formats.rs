//! Wire formats (SPEC §4): JSON and XML bodies, dates, content negotiation and problem details.

mod common;

use common::{guid, new_row, parse_xml, row_path, s, spawn_app, JSON_FIELD_ORDER, SAVE, SEED_XML};
use serde_json::json;

const INSTANCE_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The fields of SPEC §2 sorted by name: the XML child order.
fn alphabetical_fields() -> Vec<String> {
    let mut names: Vec<String> = JSON_FIELD_ORDER.iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}

// --- JSON -------------------------------------------------------------------------------------

#[tokio::test]
async fn json_output_lists_every_field_in_the_order_of_the_spec() {
    let app = spawn_app().await;
    let saved = app.admin().post_json(SAVE, &new_row()).await;
    let read = app.admin().get(&saved.header("location").unwrap()).await;
    for res in [&saved, &read] {
        assert!(
            res.content_type().starts_with("application/json"),
            "{}",
            res.content_type()
        );
        // Positions in the raw text, so the check does not depend on a map's ordering.
        let positions: Vec<usize> = JSON_FIELD_ORDER
            .iter()
            .map(|f| {
                res.text
                    .find(&format!("\"{f}\":"))
                    .unwrap_or_else(|| panic!("{f} missing in {}", res.text))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", res.text);
        assert_eq!(
            res.json().as_object().unwrap().len(),
            JSON_FIELD_ORDER.len()
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn dates_are_written_as_utc_with_seven_fraction_digits_and_seven_digits_round_trip() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    body["date_create"] = json!("2026-01-11T21:02:31.7932294+00:00");
    body["is_accepted"] = json!(true);
    body["date_proceeded"] = json!("2026-01-11T21:02:31.0000001Z");
    let saved = app.admin().save(&body).await;
    assert_eq!(
        saved["date_create"],
        json!("2026-01-11T21:02:31.7932294+00:00")
    );
    assert_eq!(
        saved["date_proceeded"],
        json!("2026-01-11T21:02:31.0000001+00:00")
    );
    let modified = s(&saved, "modified_dateutc");
    assert_eq!(
        modified.len(),
        "2026-01-11T21:02:31.7932294+00:00".len(),
        "{modified}"
    );
    assert!(
        modified.ends_with("+00:00") && modified.as_bytes()[19] == b'.',
        "{modified}"
    );
    // What is read back can be saved again unchanged.
    let read = app.admin().get(&row_path(&s(&body, "id"))).await.json();
    let again = app.admin().post_json(SAVE, &read).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), read);
    app.stop().await;
}

#[tokio::test]
async fn offsets_and_zone_less_dates_are_converted_to_utc() {
    let app = spawn_app().await;
    for (given, stored) in [
        (
            "2026-01-11T23:02:31.7932294+02:00",
            "2026-01-11T21:02:31.7932294+00:00",
        ),
        (
            "2026-01-11T16:02:31.7932294-05:00",
            "2026-01-11T21:02:31.7932294+00:00",
        ),
        (
            "2026-01-12T02:32:31.7932294+05:30",
            "2026-01-11T21:02:31.7932294+00:00",
        ),
        (
            "2026-01-11T21:02:31.7932294",
            "2026-01-11T21:02:31.7932294+00:00",
        ),
        ("2026-01-11T21:02:31", "2026-01-11T21:02:31.0000000+00:00"),
        (
            "2026-01-11T21:02:31.79Z",
            "2026-01-11T21:02:31.7900000+00:00",
        ),
        (
            "2026-01-12T00:30:00+03:00",
            "2026-01-11T21:30:00.0000000+00:00",
        ),
        ("2026-01-11", "2026-01-11T00:00:00.0000000+00:00"),
        ("1753-01-01T00:00:00Z", "1753-01-01T00:00:00.0000000+00:00"),
        (
            "9999-12-31T23:59:59.9999999Z",
            "9999-12-31T23:59:59.9999999+00:00",
        ),
    ] {
        let mut body = new_row();
        body["date_create"] = json!(given);
        let res = app.admin().post_json(SAVE, &body).await;
        assert_eq!(res.status, 201, "{given}: {}", res.text);
        assert_eq!(res.json()["date_create"], json!(stored), "{given}");
    }
    app.stop().await;
}

#[tokio::test]
async fn dates_outside_the_years_1753_to_9999_are_refused() {
    let app = spawn_app().await;
    for given in [
        "1752-12-31T23:59:59.9999999Z",
        "1753-01-01T00:30:00+01:00",
        "9999-12-31T23:00:00-05:00",
        "10000-01-01T00:00:00Z",
        "0001-01-02T00:00:00Z",
    ] {
        for field in ["date_create", "date_proceeded"] {
            let mut body = new_row();
            body["is_accepted"] = json!(true);
            body[field] = json!(given);
            let res = app.admin().post_json(SAVE, &body).await;
            assert_eq!(res.status, 400, "{field}={given}: {}", res.text);
            assert!(
                !res.field_errors(field).is_empty(),
                "{field}={given}: {}",
                res.text
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_json_fields_are_ignored() {
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    body["technician_name"] = json!("Jo");
    body["nested"] = json!({"a": [1, 2, {"b": null}]});
    body["$type"] = json!("Original.Models.job_dispatch_log, Original");
    let res = app.admin().post_json(SAVE, &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert!(res.json().get("technician_name").is_none());
    app.stop().await;
}

#[tokio::test]
async fn json_field_names_match_without_regard_to_case_like_the_original() {
    let app = spawn_app().await;
    let (job, user) = (guid(), guid());
    let body = json!({"Jobs_Id": job, "USER_ID": user, "Is_Workshop": true});
    let saved = app.admin().save(&body).await;
    assert_eq!(saved["jobs_id"], json!(job));
    assert_eq!(saved["user_id"], json!(user));
    assert_eq!(saved["is_workshop"], json!(true));
    app.stop().await;
}

#[tokio::test]
async fn json_null_means_the_fields_default() {
    let app = spawn_app().await;
    let mut body = new_row();
    for field in [
        "id",
        "date_create",
        "date_proceeded",
        "is_accepted",
        "is_rejected",
        "rejected_reason",
        "sys_logical_delete",
        "is_workshop",
        "modified_dateutc",
        "sequence",
        "assigned_user_ids",
    ] {
        body[field] = json!(null);
    }
    let res = app.admin().post_json(SAVE, &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let saved = res.json();
    assert_eq!(saved["is_accepted"], json!(false));
    assert_eq!(saved["rejected_reason"], json!(""));
    assert_eq!(saved["sequence"], json!(1));
    assert_eq!(
        saved["date_proceeded"],
        json!("1980-01-01T00:00:00.0000000+00:00")
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_or_misshapen_json_is_a_400_problem() {
    let app = spawn_app().await;
    for body in [
        "{",
        "{\"jobs_id\": }",
        "not json",
        "",
        "   ",
        "[]",
        "[{\"jobs_id\": \"5f1e9a72-a0e8-4276-9cd5-3b00416d5f59\"}]",
        "\"a string\"",
        "null",
        "42",
    ] {
        let res = app
            .admin()
            .post_raw(SAVE, Some("application/json"), None, body)
            .await;
        assert_eq!(res.status, 400, "{body:?}: {}", res.text);
        assert!(
            res.content_type().starts_with("application/json"),
            "{body:?}"
        );
        let problem = res.json();
        assert_eq!(problem["status"], json!(400));
        assert!(!s(&problem, "detail").is_empty());
    }
    app.stop().await;
}

// --- XML --------------------------------------------------------------------------------------

#[tokio::test]
async fn xml_output_has_the_datacontract_root_children_in_alphabetical_order_and_millisecond_dates()
{
    let app = spawn_app().await;
    let mut body = new_row();
    body["id"] = json!(guid());
    body["date_create"] = json!("2026-01-11T21:02:31.7932294+00:00");
    body["rejected_reason"] = json!("");
    app.admin().save(&body).await;
    for res in [
        app.admin().get_xml(&row_path(&s(&body, "id"))).await,
        app.admin()
            .get(&format!("{}?$format=xml", row_path(&s(&body, "id"))))
            .await,
    ] {
        assert_eq!(res.status, 200);
        assert!(
            res.content_type().starts_with("application/xml"),
            "{}",
            res.content_type()
        );
        assert!(
            res.text
                .starts_with(&format!("<job_dispatch_log xmlns:i=\"{INSTANCE_NS}\">")),
            "{}",
            res.text
        );
        let root = parse_xml(&res.text);
        assert_eq!(root.name, "job_dispatch_log");
        assert_eq!(root.child_names(), alphabetical_fields());
        assert_eq!(root.text_of("date_create"), "2026-01-11T21:02:31.793Z");
        assert_eq!(root.text_of("date_proceeded"), "1980-01-01T00:00:00.000Z");
        assert_eq!(root.text_of("id"), s(&body, "id"));
        assert_eq!(root.text_of("is_accepted"), "false");
        assert_eq!(root.text_of("sequence"), "1");
        assert_eq!(root.text_of("assigned_user_ids"), s(&body, "user_id"));
        let modified = root.text_of("modified_dateutc");
        assert_eq!(
            modified.len(),
            "2026-01-11T21:02:31.793Z".len(),
            "{modified}"
        );
        assert!(modified.ends_with('Z'));
    }
    app.stop().await;
}

#[tokio::test]
async fn the_seed_xml_sample_as_published_is_refused_with_an_xml_problem() {
    let app = spawn_app().await;
    let res = app.admin().post_xml(SAVE, SEED_XML).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(
        res.content_type().starts_with("application/xml"),
        "{}",
        res.content_type()
    );
    let problem = parse_xml(&res.text);
    assert_eq!(problem.name, "Error");
    assert_eq!(problem.text_of("status"), "400");
    assert_eq!(problem.text_of("detail"), problem.text_of("Message"));
    assert!(!problem.text_of("type").is_empty());
    assert!(!problem.text_of("title").is_empty());
    let errors = problem.child("errors").expect("<errors>");
    assert!(
        errors
            .children
            .iter()
            .any(|e| e.attr("field").as_deref() == Some("is_rejected")),
        "{}",
        res.text
    );
    let read = app
        .admin()
        .get(&row_path("567c1c0c-91e3-4ca3-ac31-eb151e427f59"))
        .await;
    assert_eq!(read.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_seed_xml_sample_rejected_on_a_workshop_job_is_refused() {
    let app = spawn_app().await;
    let body = SEED_XML.replace(
        "<is_accepted>true</is_accepted>",
        "<is_accepted>false</is_accepted>",
    );
    let res = app.admin().post_xml(SAVE, &body).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.text.contains("field=\"is_rejected\""), "{}", res.text);
    app.stop().await;
}

#[tokio::test]
async fn a_valid_variant_of_the_seed_xml_sample_is_saved_and_read_back_in_xml_and_json() {
    let app = spawn_app().await;
    let body = SEED_XML
        .replace(
            "<is_accepted>true</is_accepted>",
            "<is_accepted>false</is_accepted>",
        )
        .replace(
            "<is_workshop>true</is_workshop>",
            "<is_workshop>false</is_workshop>",
        );
    let res = app.admin().post_xml(SAVE, &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert!(res.content_type().starts_with("application/xml"));
    let saved = parse_xml(&res.text);
    assert_eq!(saved.attr("xmlns:i").as_deref(), Some(INSTANCE_NS));
    assert_eq!(saved.child_names(), alphabetical_fields());
    let sent = parse_xml(&body);
    for field in [
        "date_create",
        "date_proceeded",
        "id",
        "is_accepted",
        "is_rejected",
        "is_workshop",
        "jobs_id",
        "rejected_reason",
        "sequence",
        "sys_logical_delete",
        "user_id",
    ] {
        assert_eq!(saved.text_of(field), sent.text_of(field), "{field}");
    }
    assert_ne!(
        saved.text_of("modified_dateutc"),
        "2026-01-11T21:02:31.793Z"
    );
    assert_eq!(saved.text_of("assigned_user_ids"), "");

    let read = app
        .admin()
        .get_xml(&row_path("567c1c0c-91e3-4ca3-ac31-eb151e427f59"))
        .await;
    assert_eq!(read.text, res.text);
    let json = app
        .admin()
        .get(&row_path("567c1c0c-91e3-4ca3-ac31-eb151e427f59"))
        .await
        .json();
    assert_eq!(
        json["date_create"],
        json!("2026-01-11T21:02:31.7930000+00:00")
    );
    assert_eq!(json["sequence"], json!(12));
    assert_eq!(json["rejected_reason"], json!("sample string 8"));
    app.stop().await;
}

#[tokio::test]
async fn xml_input_keeps_seven_fraction_digits_though_xml_output_shows_milliseconds() {
    let app = spawn_app().await;
    let (id, job, user) = (guid(), guid(), guid());
    let body = format!(
        "<job_dispatch_log><id>{id}</id><jobs_id>{job}</jobs_id><user_id>{user}</user_id>\
         <date_create>2026-01-11T23:02:31.7932294+02:00</date_create></job_dispatch_log>"
    );
    let res = app.admin().post_xml(SAVE, &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(
        parse_xml(&res.text).text_of("date_create"),
        "2026-01-11T21:02:31.793Z"
    );
    let json = app.admin().get(&row_path(&id)).await.json();
    assert_eq!(
        json["date_create"],
        json!("2026-01-11T21:02:31.7932294+00:00")
    );
    app.stop().await;
}

#[tokio::test]
async fn xml_input_is_read_in_any_order_with_namespaces_unknown_elements_and_nil_values() {
    let app = spawn_app().await;
    let (id, job, user) = (guid(), guid(), guid());
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<!-- sent by a DataContractSerializer client -->
<job_dispatch_log xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.datacontract.org/2004/07/Original.Models">
  <user_id>{user}</user_id>
  <technician><name>Jo</name><van>12</van></technician>
  <is_accepted>true</is_accepted>
  <date_proceeded i:nil="true" />
  <sequence i:nil="true"></sequence>
  <is_workshop i:nil="true"/>
  <modified_dateutc>2001-01-01T00:00:00Z</modified_dateutc>
  <unknown_flag/>
  <jobs_id>{job}</jobs_id>
  <date_create i:nil="true"/>
  <id>{id}</id>
</job_dispatch_log>"#
    );
    let res = app.admin().post_xml(SAVE, &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let json = app.admin().get(&row_path(&id)).await.json();
    assert_eq!(json["jobs_id"], json!(job));
    assert_eq!(json["user_id"], json!(user));
    assert_eq!(json["is_accepted"], json!(true));
    assert_eq!(json["is_workshop"], json!(false));
    assert_eq!(json["sequence"], json!(1));
    // Nil date_proceeded on an accepted row: stamped like an absent one.
    assert_eq!(json["date_proceeded"], json["modified_dateutc"]);
    assert_eq!(json["date_create"], json["modified_dateutc"]);
    app.stop().await;
}

#[tokio::test]
async fn xml_text_with_markup_characters_round_trips() {
    let app = spawn_app().await;
    let id = guid();
    let body = format!(
        "<job_dispatch_log><id>{id}</id><jobs_id>{}</jobs_id><user_id>{}</user_id>\
         <is_rejected>true</is_rejected>\
         <rejected_reason>a &lt;b&gt; &amp; \"c\" 'd' é<![CDATA[ <e/>]]></rejected_reason></job_dispatch_log>",
        guid(),
        guid()
    );
    let res = app.admin().post_xml(SAVE, &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(
        parse_xml(&res.text).text_of("rejected_reason"),
        "a <b> & \"c\" 'd' é <e/>"
    );
    let json = app.admin().get(&row_path(&id)).await.json();
    assert_eq!(json["rejected_reason"], json!("a <b> & \"c\" 'd' é <e/>"));
    app.stop().await;
}

#[tokio::test]
async fn an_xml_document_with_a_doctype_is_refused() {
    let app = spawn_app().await;
    let (job, user) = (guid(), guid());
    let harmless = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE job_dispatch_log><job_dispatch_log>\
         <jobs_id>{job}</jobs_id><user_id>{user}</user_id></job_dispatch_log>"
    );
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE job_dispatch_log [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
         <job_dispatch_log><jobs_id>{job}</jobs_id><user_id>{user}</user_id>\
         <is_rejected>true</is_rejected><rejected_reason>&xxe;</rejected_reason></job_dispatch_log>"
    );
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
         <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\
         <job_dispatch_log><jobs_id>{job}</jobs_id><user_id>{user}</user_id>\
         <is_rejected>true</is_rejected><rejected_reason>&lol2;</rejected_reason></job_dispatch_log>"
    );
    for body in [harmless, xxe, laughs] {
        let res = app.admin().post_xml(SAVE, &body).await;
        assert_eq!(res.status, 400, "{body}: {}", res.text);
        assert!(res.content_type().starts_with("application/xml"));
        assert!(!res.text.contains("root:"), "{}", res.text);
        assert!(res.text.contains("DOCTYPE"), "{}", res.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_or_misshapen_xml_is_a_400_problem() {
    let app = spawn_app().await;
    let (job, user) = (guid(), guid());
    for body in [
        "<job_dispatch_log>".to_string(),
        "<job_dispatch_log><jobs_id>x</user_id></job_dispatch_log>".to_string(),
        "not xml at all".to_string(),
        String::new(),
        format!("<other><jobs_id>{job}</jobs_id><user_id>{user}</user_id></other>"),
        format!("<job_dispatch_log><jobs_id>{job}</jobs_id><user_id>{user}</user_id></job_dispatch_log><job_dispatch_log/>"),
        format!("<job_dispatch_log><jobs_id>{job}</jobs_id><jobs_id>{job}</jobs_id><user_id>{user}</user_id></job_dispatch_log>"),
        format!("<job_dispatch_log><jobs_id>{job}</jobs_id><user_id>{user}</user_id><rejected_reason>&nope;</rejected_reason></job_dispatch_log>"),
        format!("<job_dispatch_log><jobs_id><b>{job}</b></jobs_id><user_id>{user}</user_id></job_dispatch_log>"),
    ] {
        let res = app.admin().post_xml(SAVE, &body).await;
        assert_eq!(res.status, 400, "{body:?}: {}", res.text);
        let problem = parse_xml(&res.text);
        assert_eq!(problem.name, "Error", "{body:?}");
        assert_eq!(problem.text_of("status"), "400");
    }
    app.stop().await;
}

#[tokio::test]
async fn xml_values_of_the_wrong_type_are_a_400_naming_the_field() {
    let app = spawn_app().await;
    for (field, value) in [
        ("jobs_id", "not-a-guid"),
        ("is_accepted", "yes"),
        ("sequence", "twelve"),
        ("sequence", "-1"),
        ("date_create", "yesterday"),
    ] {
        let mut elements = vec![
            format!("<jobs_id>{}</jobs_id>", guid()),
            format!("<user_id>{}</user_id>", guid()),
        ];
        elements.retain(|e| !e.starts_with(&format!("<{field}>")));
        elements.push(format!("<{field}>{value}</{field}>"));
        let body = format!("<job_dispatch_log>{}</job_dispatch_log>", elements.concat());
        let res = app.admin().post_xml(SAVE, &body).await;
        assert_eq!(res.status, 400, "{field}={value}: {}", res.text);
        assert!(
            res.text.contains(&format!("<error field=\"{field}\">")),
            "{field}: {}",
            res.text
        );
    }
    app.stop().await;
}

// --- Negotiation ------------------------------------------------------------------------------

#[tokio::test]
async fn request_bodies_are_read_as_json_or_xml_by_content_type_with_parameters() {
    let app = spawn_app().await;
    let json_body = || new_row().to_string();
    let xml_body = || {
        format!(
            "<job_dispatch_log><jobs_id>{}</jobs_id><user_id>{}</user_id></job_dispatch_log>",
            guid(),
            guid()
        )
    };
    for (content_type, body) in [
        (Some("application/json"), json_body()),
        (Some("application/json; charset=utf-8"), json_body()),
        (Some("text/json"), json_body()),
        (Some("Application/JSON;charset=UTF-8"), json_body()),
        (Some("application/xml"), xml_body()),
        (Some("text/xml; charset=utf-8"), xml_body()),
        (Some("application/xml;charset=\"utf-8\""), xml_body()),
        (None, json_body()),
    ] {
        let res = app.admin().post_raw(SAVE, content_type, None, body).await;
        assert_eq!(res.status, 201, "{content_type:?}: {}", res.text);
        // The answer is JSON whatever the request body was.
        assert!(
            res.content_type().starts_with("application/json"),
            "{content_type:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn other_content_types_are_a_415_problem() {
    let app = spawn_app().await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/problem+json",
        "application/jsonx",
    ] {
        let res = app
            .admin()
            .post_raw(SAVE, Some(content_type), None, new_row().to_string())
            .await;
        assert_eq!(res.status, 415, "{content_type}: {}", res.text);
        assert!(res.content_type().starts_with("application/json"));
        assert_eq!(res.json()["status"], json!(415));
    }
    // In the format the client asked for.
    let res = app
        .admin()
        .post_raw(SAVE, Some("text/plain"), Some("text/xml"), "x")
        .await;
    assert_eq!(res.status, 415);
    assert_eq!(parse_xml(&res.text).text_of("status"), "415");
    app.stop().await;
}

#[tokio::test]
async fn accept_chooses_the_response_format_honouring_q_values_and_defaulting_to_json() {
    let app = spawn_app().await;
    let saved = app.admin().save(&new_row()).await;
    let path = row_path(&s(&saved, "id"));
    for (accept, expected) in [
        ("application/xml", "application/xml"),
        ("text/xml", "text/xml"),
        ("text/json", "text/json"),
        ("application/json", "application/json"),
        (
            "application/json;q=0.5, application/xml;q=0.9",
            "application/xml",
        ),
        (
            "application/xml;q=0.1, application/json",
            "application/json",
        ),
        (
            "text/html, application/xml;q=0.9, */*;q=0.8",
            "application/xml",
        ),
        ("application/xml;q=0, */*", "application/json"),
        ("*/*", "application/json"),
        ("image/png", "application/json"),
        ("text/html,application/xhtml+xml", "application/json"),
    ] {
        let res = app.admin().get_accept(&path, accept).await;
        assert_eq!(res.status, 200, "{accept}");
        assert!(
            res.content_type().starts_with(expected),
            "{accept}: {}",
            res.content_type()
        );
        if expected.ends_with("xml") {
            assert_eq!(parse_xml(&res.text).name, "job_dispatch_log");
        } else {
            assert_eq!(res.json()["id"], saved["id"]);
        }
    }
    let res = app.admin().get(&path).await;
    assert!(res.content_type().starts_with("application/json"));
    app.stop().await;
}

#[tokio::test]
async fn the_format_option_overrides_accept_and_a_bad_one_is_a_400() {
    let app = spawn_app().await;
    let saved = app.admin().save(&new_row()).await;
    let path = row_path(&s(&saved, "id"));
    let res = app
        .admin()
        .get_accept(&format!("{path}?$format=xml"), "application/json")
        .await;
    assert!(
        res.content_type().starts_with("application/xml"),
        "{}",
        res.content_type()
    );
    let res = app
        .admin()
        .get_accept(&format!("{path}?%24format=json"), "application/xml")
        .await;
    assert!(
        res.content_type().starts_with("application/json"),
        "{}",
        res.content_type()
    );
    assert_eq!(res.json(), saved);
    // On writes too.
    let res = app
        .admin()
        .post_raw(
            &format!("{SAVE}?$format=xml"),
            Some("application/json"),
            Some("application/json"),
            new_row().to_string(),
        )
        .await;
    assert_eq!(res.status, 201);
    assert_eq!(parse_xml(&res.text).name, "job_dispatch_log");

    for bad in ["csv", "", "atom"] {
        let res = app.admin().get(&format!("{path}?$format={bad}")).await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
        assert!(res.content_type().starts_with("application/json"));
    }
    app.stop().await;
}

#[tokio::test]
async fn problems_carry_type_title_status_detail_and_message_in_the_negotiated_format() {
    let app = spawn_app().await;
    let missing = row_path(&guid());
    let res = app.admin().get(&missing).await;
    assert_eq!(res.status, 404);
    assert!(res.content_type().starts_with("application/json"));
    let problem = res.json();
    for member in ["type", "title", "detail", "Message"] {
        assert!(!s(&problem, member).is_empty(), "{member}: {problem}");
    }
    assert_eq!(problem["status"], json!(404));
    assert_eq!(problem["detail"], problem["Message"]);

    for accept in ["application/xml", "text/xml"] {
        let res = app.admin().get_accept(&missing, accept).await;
        assert_eq!(res.status, 404);
        assert!(
            res.content_type().starts_with("application/xml"),
            "{accept}"
        );
        let problem = parse_xml(&res.text);
        assert_eq!(problem.name, "Error");
        assert_eq!(problem.text_of("status"), "404");
        assert_eq!(problem.text_of("detail"), problem.text_of("Message"));
        assert!(!problem.text_of("type").is_empty());
        assert!(!problem.text_of("title").is_empty());
    }

    // A validation problem lists its fields under `errors`.
    let res = app
        .admin()
        .post_raw(SAVE, Some("application/json"), None, "{}")
        .await;
    assert_eq!(res.status, 400);
    let problem = res.json();
    assert!(problem["errors"]["jobs_id"].is_array(), "{problem}");
    assert!(problem["errors"]["user_id"].is_array(), "{problem}");
    assert_eq!(problem["detail"], problem["Message"]);
    app.stop().await;
}

#[tokio::test]
async fn a_utf8_byte_order_mark_before_a_json_or_xml_body_is_accepted() {
    // .NET clients writing with Encoding.UTF8 (StreamWriter, DataContractSerializer) send one.
    let app = spawn_app().await;
    let json_body = format!("\u{feff}{}", new_row());
    let res = app
        .admin()
        .post_raw(
            SAVE,
            Some("application/json; charset=utf-8"),
            None,
            json_body,
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let xml_body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><job_dispatch_log><jobs_id>{}</jobs_id><user_id>{}</user_id></job_dispatch_log>",
        guid(),
        guid()
    );
    let res = app.admin().post_xml(SAVE, &xml_body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let list = format!("\u{feff}[{}]", new_row());
    let res = app
        .admin()
        .post_raw(common::SAVE_MULTIPLE, Some("application/json"), None, list)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    app.stop().await;
}
