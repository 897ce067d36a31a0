//! `POST /api/JobDispatchLog/SaveMultiple`: lists, all or nothing, in JSON and XML.

mod common;

use common::{guid, new_row, parse_xml, row_path, s, spawn_app, SAVE_MULTIPLE};
use serde_json::{json, Value};

fn rows_with_ids(n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| {
            let mut row = new_row();
            row["id"] = json!(guid());
            row
        })
        .collect()
}

#[tokio::test]
async fn a_list_is_saved_and_answered_with_the_stored_rows_in_input_order() {
    let app = spawn_app().await;
    let existing = app.admin().save(&new_row()).await;
    let mut update = existing.clone();
    update["is_workshop"] = json!(true);
    let mut items = rows_with_ids(3);
    items.insert(1, update);
    items.push(new_row()); // without id: generated
    let res = app.admin().post_json(SAVE_MULTIPLE, &json!(items)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let saved = res.json();
    let saved = saved.as_array().unwrap();
    assert_eq!(saved.len(), items.len());
    for (sent, got) in items.iter().zip(saved) {
        if let Some(id) = sent.get("id") {
            assert_eq!(&got["id"], id);
        }
        assert_eq!(got["jobs_id"], sent["jobs_id"]);
        let read = app.admin().get(&row_path(&s(got, "id"))).await;
        assert_eq!(read.status, 200);
        assert_eq!(&read.json(), got);
    }
    assert_eq!(saved[1]["is_workshop"], json!(true));
    assert_eq!(saved[1]["date_create"], existing["date_create"]);
    assert!(s(&saved[1], "modified_dateutc") > s(&existing, "modified_dateutc"));
    app.stop().await;
}

#[tokio::test]
async fn new_rows_of_one_job_in_a_list_get_consecutive_sequences_in_input_order() {
    let app = spawn_app().await;
    let job = guid();
    app.admin()
        .save(&json!({"jobs_id": job, "user_id": guid()}))
        .await;
    let items: Vec<Value> = (0..5)
        .map(|_| json!({"jobs_id": job, "user_id": guid()}))
        .collect();
    let res = app.admin().post_json(SAVE_MULTIPLE, &json!(items)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let sequences: Vec<Value> = res
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sequence"].clone())
        .collect();
    assert_eq!(
        sequences,
        vec![json!(2), json!(3), json!(4), json!(5), json!(6)]
    );
    // Each row sees the whole job's assignees, the batch included.
    let all = res.json();
    let last = all.as_array().unwrap().last().unwrap();
    assert_eq!(s(last, "assigned_user_ids").split(',').count(), 6);
    app.stop().await;
}

#[tokio::test]
async fn one_invalid_item_refuses_the_whole_list_naming_its_index_and_stores_nothing() {
    let app = spawn_app().await;
    let existing = app.admin().save(&new_row()).await;
    let mut update = existing.clone();
    update["is_workshop"] = json!(true);
    let mut items = rows_with_ids(5);
    items[1] = update;
    items[3]["is_accepted"] = json!(true);
    items[3]["is_rejected"] = json!(true);
    let res = app.admin().post_json(SAVE_MULTIPLE, &json!(items)).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.content_type().starts_with("application/json"));
    assert!(
        !res.field_errors("[3].is_rejected").is_empty(),
        "{}",
        res.text
    );
    assert_eq!(
        res.json()["errors"].as_object().unwrap().len(),
        1,
        "{}",
        res.text
    );
    for (i, item) in items.iter().enumerate() {
        let read = app.admin().get(&row_path(&s(item, "id"))).await;
        if i == 1 {
            assert_eq!(
                read.json(),
                existing,
                "the update in the list is not applied"
            );
        } else {
            assert_eq!(read.status, 404, "item {i} is not stored");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn every_invalid_item_is_named_by_index_and_field() {
    let app = spawn_app().await;
    let mut items = rows_with_ids(4);
    items[0]["user_id"] = json!("00000000-0000-0000-0000-000000000000");
    items[2]["sequence"] = json!(-1);
    items[2]["is_workshop"] = json!("no");
    let res = app.admin().post_json(SAVE_MULTIPLE, &json!(items)).await;
    assert_eq!(res.status, 400, "{}", res.text);
    for key in ["[0].user_id", "[2].sequence", "[2].is_workshop"] {
        assert!(!res.field_errors(key).is_empty(), "{key}: {}", res.text);
    }
    assert_eq!(
        res.json()["errors"].as_object().unwrap().len(),
        3,
        "{}",
        res.text
    );
    for item in &items {
        assert_eq!(app.admin().get(&row_path(&s(item, "id"))).await.status, 404);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_item_that_is_not_an_object_is_named_by_its_index() {
    let app = spawn_app().await;
    let mut items = rows_with_ids(3);
    items[2] = json!("not an object");
    let res = app.admin().post_json(SAVE_MULTIPLE, &json!(items)).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(!res.field_errors("[2]").is_empty(), "{}", res.text);
    for item in &items[..2] {
        assert_eq!(app.admin().get(&row_path(&s(item, "id"))).await.status, 404);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_a_list_is_a_400() {
    let app = spawn_app().await;
    for body in [new_row().to_string(), "[".into(), "".into(), "42".into()] {
        let res = app
            .admin()
            .post_raw(SAVE_MULTIPLE, Some("application/json"), None, body.clone())
            .await;
        assert_eq!(res.status, 400, "{body}: {}", res.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_empty_list_saves_nothing_and_answers_an_empty_list() {
    let app = spawn_app().await;
    let res = app.admin().post_json(SAVE_MULTIPLE, &json!([])).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json(), json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_list_of_1000_is_saved_and_a_list_of_1001_is_refused_whole() {
    let app = spawn_app().await;
    let items = rows_with_ids(1000);
    let res = app.admin().post_json(SAVE_MULTIPLE, &json!(items)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json().as_array().unwrap().len(), 1000);

    let items = rows_with_ids(1001);
    let res = app.admin().post_json(SAVE_MULTIPLE, &json!(items)).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(s(&res.json(), "detail").contains("1000"), "{}", res.text);
    for i in [0, 500, 1000] {
        let read = app.admin().get(&row_path(&s(&items[i], "id"))).await;
        assert_eq!(read.status, 404);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_xml_list_is_read_and_answered_as_array_of_job_dispatch_log() {
    let app = spawn_app().await;
    let ids = [guid(), guid(), guid()];
    let items: String = ids
        .iter()
        .map(|id| {
            format!(
                "<job_dispatch_log><id>{id}</id><user_id>{}</user_id><jobs_id>{}</jobs_id></job_dispatch_log>",
                guid(),
                guid()
            )
        })
        .collect();
    let body = format!(
        "<ArrayOfjob_dispatch_log xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">{items}</ArrayOfjob_dispatch_log>"
    );
    let res = app.admin().post_xml(SAVE_MULTIPLE, &body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.content_type().starts_with("application/xml"));
    assert!(res.text.starts_with(
        "<ArrayOfjob_dispatch_log xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">"
    ));
    let list = parse_xml(&res.text);
    assert_eq!(list.name, "ArrayOfjob_dispatch_log");
    let got: Vec<String> = list.children.iter().map(|r| r.text_of("id")).collect();
    assert_eq!(got, ids);
    for row in &list.children {
        assert_eq!(row.name, "job_dispatch_log");
        let mut names = row.child_names();
        let sorted = {
            names.sort();
            names.clone()
        };
        assert_eq!(row.child_names(), sorted);
        assert_eq!(row.children.len(), 13);
    }
    for id in &ids {
        assert_eq!(app.admin().get(&row_path(id)).await.status, 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_item_of_an_xml_list_is_named_in_an_xml_problem() {
    let app = spawn_app().await;
    let id = guid();
    let body = format!(
        "<ArrayOfjob_dispatch_log>\
         <job_dispatch_log><id>{id}</id><user_id>{}</user_id><jobs_id>{}</jobs_id></job_dispatch_log>\
         <job_dispatch_log><user_id>{}</user_id></job_dispatch_log>\
         </ArrayOfjob_dispatch_log>",
        guid(),
        guid(),
        guid()
    );
    let res = app.admin().post_xml(SAVE_MULTIPLE, &body).await;
    assert_eq!(res.status, 400, "{}", res.text);
    let problem = parse_xml(&res.text);
    assert_eq!(problem.name, "Error");
    let fields: Vec<String> = problem
        .child("errors")
        .unwrap()
        .children
        .iter()
        .filter_map(|e| e.attr("field"))
        .collect();
    assert_eq!(fields, vec!["[1].jobs_id".to_string()]);
    assert_eq!(app.admin().get(&row_path(&id)).await.status, 404);

    let res = app
        .admin()
        .post_xml(
            SAVE_MULTIPLE,
            "<ArrayOfjob_dispatch_log><other/></ArrayOfjob_dispatch_log>",
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    app.stop().await;
}
