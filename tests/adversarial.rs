//! What a hostile technician (or someone with no account) tries: other technicians' rows
//! through stale ETags, conflicts and history; bodies and logins that would make the server
//! burn memory and CPU; odd bytes in credentials, filters and cursors. SPEC §8 and §9.

mod common;

use std::time::Instant;

use common::{guid, spawn_app, spawn_app_adjusted, Api, Resp, TestApp};
use dispatchlog::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const TOM: &str = "tom:tom-pw@acme";
const ANN: &str = "ann:ann-pw@acme";
/// Ann's reason, which no one but Ann and the dispatchers may read.
const ANNS_REASON: &str = "ann-private-reason: van broke down";
/// Tom's reason, from before the row was Ann's.
const TOMS_REASON: &str = "tom-private-reason: not my area";

/// Two technicians of one tenant and a row that was Tom's, rejected by him, then reassigned
/// to Ann (who rejected it too); `tom_etag` is the ETag Tom's phone kept from before.
struct Reassigned {
    app: TestApp,
    tom: Uuid,
    ann: Uuid,
    row: String,
    tom_etag: String,
    /// A row that was only ever Ann's.
    anns_own: String,
}

async fn reassigned() -> Reassigned {
    let app = spawn_app().await;
    let (tom, ann) = (Uuid::new_v4(), Uuid::new_v4());
    app.add_user(TOM, Role::Technician, tom).await;
    app.add_user(ANN, Role::Technician, ann).await;
    let job = guid();
    let row = app
        .admin()
        .save(&json!({"jobs_id": job, "user_id": tom}))
        .await;
    let row = row["id"].as_str().unwrap().to_string();
    let tom_etag = app
        .as_user(TOM)
        .get(&format!("/api/JobDispatchLog/{row}"))
        .await
        .header("etag")
        .unwrap();
    let rejected = app
        .as_user(TOM)
        .post_json(
            &format!("/api/JobDispatchLog/{row}/Reject"),
            &json!({ "rejected_reason": TOMS_REASON }),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    // The dispatcher hands the row to Ann, who rejects it with her own reason.
    app.admin()
        .save(&json!({"id": row, "jobs_id": job, "user_id": ann}))
        .await;
    let rejected = app
        .as_user(ANN)
        .post_json(
            &format!("/api/JobDispatchLog/{row}/Reject"),
            &json!({ "rejected_reason": ANNS_REASON }),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    let anns_own = app
        .admin()
        .save(&json!({"jobs_id": guid(), "user_id": ann, "is_rejected": true, "rejected_reason": ANNS_REASON}))
        .await;
    Reassigned {
        app,
        tom,
        ann,
        row,
        tom_etag,
        anns_own: anns_own["id"].as_str().unwrap().to_string(),
    }
}

/// Fails when a response to Tom carries anything of Ann's.
fn assert_nothing_of_ann(f: &Reassigned, res: &Resp, what: &str) {
    for secret in [f.ann.to_string(), ANNS_REASON.to_string(), "ann@".into()] {
        assert!(
            !res.text.contains(&secret),
            "{what}: the answer to Tom carries Ann's {secret}: {} {}",
            res.status,
            res.text
        );
    }
}

async fn send_with(api: &Api<'_>, method: Method, path: &str, etag: &str, body: Body) -> Resp {
    let mut req = api.request(method, path).header("if-match", etag);
    req = match body {
        Body::Json(v) => req
            .header("content-type", "application/json")
            .body(v.to_string()),
        Body::Xml(x) => req
            .header("content-type", "application/xml")
            .header("accept", "application/xml")
            .body(x),
        Body::None => req,
    };
    api.send(req).await
}

enum Body {
    Json(Value),
    Xml(String),
    None,
}

fn xml_row(id: &str, jobs_id: &str, user_id: Uuid) -> String {
    format!(
        "<job_dispatch_log><id>{id}</id><jobs_id>{jobs_id}</jobs_id><user_id>{user_id}</user_id><is_accepted>true</is_accepted></job_dispatch_log>"
    )
}

#[tokio::test]
async fn a_stale_if_match_on_another_technicians_row_is_answered_as_for_an_unknown_row() {
    let f = reassigned().await;
    let tom = f.app.as_user(TOM);
    let target = &f.anns_own;
    let unknown = guid();
    let stale = "\"stale-etag\"";
    let job = guid();
    for (label, method, path_of, body_of) in [
        (
            "PUT json",
            Method::PUT,
            (|id: &str| format!("/api/JobDispatchLog/{id}")) as fn(&str) -> String,
            (|id: &str, job: &str, tom: Uuid| {
                Body::Json(json!({"id": id, "jobs_id": job, "user_id": tom}))
            }) as fn(&str, &str, Uuid) -> Body,
        ),
        (
            "PUT xml",
            Method::PUT,
            |id| format!("/api/JobDispatchLog({id})"),
            |id, job, tom| Body::Xml(xml_row(id, job, tom)),
        ),
        (
            "Save json",
            Method::POST,
            |_| "/api/JobDispatchLog/Save".into(),
            |id, job, tom| Body::Json(json!({"id": id, "jobs_id": job, "user_id": tom})),
        ),
        (
            "Save xml",
            Method::POST,
            |_| "/api/JobDispatchLog/Save".into(),
            |id, job, tom| Body::Xml(xml_row(id, job, tom)),
        ),
        (
            "Accept",
            Method::POST,
            |id| format!("/api/JobDispatchLog/{id}/Accept"),
            |_, _, _| Body::Json(json!({})),
        ),
        (
            "Reject",
            Method::POST,
            |id| format!("/api/JobDispatchLog/{id}/Reject"),
            |_, _, _| Body::Json(json!({"rejected_reason": "x"})),
        ),
        (
            "DELETE",
            Method::DELETE,
            |id| format!("/api/JobDispatchLog/{id}"),
            |_, _, _| Body::None,
        ),
    ] {
        let on_hidden = send_with(
            &tom,
            method.clone(),
            &path_of(target),
            stale,
            body_of(target, &job, f.tom),
        )
        .await;
        assert_nothing_of_ann(&f, &on_hidden, label);
        assert_ne!(on_hidden.status, 412, "{label}: {}", on_hidden.text);
        let on_unknown = send_with(
            &tom,
            method,
            &path_of(&unknown),
            stale,
            body_of(&unknown, &job, f.tom),
        )
        .await;
        assert_eq!(on_hidden.status, on_unknown.status, "{label}");
        let detail = |r: &Resp| r.text.replace(target, "ID").replace(&unknown, "ID");
        assert_eq!(
            detail(&on_hidden),
            detail(&on_unknown),
            "{label}: a hidden row must look unknown"
        );
    }
    // Nothing was stored by any of it.
    let row = f
        .app
        .admin()
        .get(&format!("/api/JobDispatchLog/{target}"))
        .await
        .json();
    assert_eq!(row["user_id"], json!(f.ann.to_string()));
    assert_eq!(row["rejected_reason"], json!(ANNS_REASON));
    f.app.stop().await;
}

#[tokio::test]
async fn a_former_assignees_stale_writes_get_a_409_without_the_new_assignees_row() {
    let f = reassigned().await;
    let tom = f.app.as_user(TOM);
    let row = f.row.clone();
    let tom_row = |extra: Value| {
        let mut body = json!({"id": row, "jobs_id": "", "user_id": f.tom});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let job = f
        .app
        .admin()
        .get(&format!("/api/JobDispatchLog/{row}"))
        .await
        .json()["jobs_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/JobDispatchLog/{row}");
    for etag in [f.tom_etag.as_str(), "*"] {
        for (label, method, path, body) in [
            (
                "Accept json",
                Method::POST,
                format!("{path}/Accept"),
                Body::Json(json!({"date_proceeded": "2026-11-27T06:30:00Z"})),
            ),
            (
                "Accept xml",
                Method::POST,
                format!("{path}/Accept"),
                Body::Xml("<job_dispatch_log><date_proceeded>2026-11-27T06:30:00Z</date_proceeded></job_dispatch_log>".into()),
            ),
            (
                "Reject",
                Method::POST,
                format!("{path}/Reject"),
                Body::Json(json!({"rejected_reason": "offline reject"})),
            ),
            (
                "Save json",
                Method::POST,
                "/api/JobDispatchLog/Save".into(),
                Body::Json(tom_row(json!({"jobs_id": job, "is_accepted": true}))),
            ),
            (
                "PUT xml",
                Method::PUT,
                path.clone(),
                Body::Xml(xml_row(&row, &job, f.tom)),
            ),
        ] {
            let res = send_with(&tom, method, &path, etag, body).await;
            assert_eq!(res.status, 409, "{label} with If-Match {etag}: {}", res.text);
            assert_nothing_of_ann(&f, &res, label);
            assert!(res.text.contains("reassigned"), "{label}: {}", res.text);
            assert!(!res.text.contains("current"), "{label}: {}", res.text);
        }
    }
    // Tom may not delete it either, and learns nothing of Ann doing so.
    let res = send_with(&tom, Method::DELETE, &path, &f.tom_etag, Body::None).await;
    assert!(res.status == 403 || res.status == 404, "{}", res.text);
    assert_nothing_of_ann(&f, &res, "DELETE");
    let row = f.app.admin().get(&path).await.json();
    assert_eq!(row["rejected_reason"], json!(ANNS_REASON));
    assert_eq!(row["is_accepted"], json!(false));
    f.app.stop().await;
}

#[tokio::test]
async fn the_history_of_a_row_reassigned_away_is_a_404_for_the_former_assignee() {
    let f = reassigned().await;
    let path = format!("/api/JobDispatchLog/{}/History", f.row);
    let tom = f.app.as_user(TOM);
    for res in [tom.get(&path).await, tom.get_xml(&path).await] {
        assert_eq!(res.status, 404, "{}", res.text);
        assert_nothing_of_ann(&f, &res, "History");
    }
    // The dispatcher reads it all.
    let all = f.app.admin().get(&path).await;
    assert_eq!(all.status, 200);
    assert!(all.text.contains(TOMS_REASON) && all.text.contains(ANNS_REASON));
    f.app.stop().await;
}

#[tokio::test]
async fn the_new_assignee_reads_the_history_from_the_hand_over_without_the_former_assignees_data() {
    let f = reassigned().await;
    let path = format!("/api/JobDispatchLog/{}/History", f.row);
    let ann = f.app.as_user(ANN);
    for res in [ann.get(&path).await, ann.get_xml(&path).await] {
        assert_eq!(res.status, 200, "{}", res.text);
        for secret in [f.tom.to_string(), TOMS_REASON.to_string(), "tom@".into()] {
            assert!(
                !res.text.contains(&secret),
                "Ann's view carries Tom's {secret}: {}",
                res.text
            );
        }
        assert!(res.text.contains(ANNS_REASON), "{}", res.text);
    }
    let entries = ann.get(&path).await.json()["value"].clone();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["reassign", "reject"]);
    assert_eq!(
        entries[0]["changes"]["user_id"],
        json!({"from": "", "to": f.ann.to_string()})
    );
    f.app.stop().await;
}

#[tokio::test]
async fn rows_in_412_and_409_bodies_carry_assigned_user_ids_as_a_get_does() {
    let app = spawn_app().await;
    let (tom, ann) = (Uuid::new_v4(), Uuid::new_v4());
    app.add_user(TOM, Role::Technician, tom).await;
    let job = guid();
    let res = app
        .admin()
        .post_json(
            "/api/JobDispatchLog/Dispatch",
            &json!({"jobs_id": job, "user_ids": [tom, ann]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let toms_row = res.json()[0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/JobDispatchLog/{toms_row}");
    let got = app.admin().get(&path).await.json();
    let expected = format!("{tom},{ann}");
    assert_eq!(got["assigned_user_ids"], json!(expected));

    // 412, JSON and XML.
    let stale = "\"0000\"";
    let res = send_with(
        &app.admin(),
        Method::PUT,
        &path,
        stale,
        Body::Json(json!({"id": toms_row, "jobs_id": job, "user_id": tom})),
    )
    .await;
    assert_eq!(res.status, 412, "{}", res.text);
    assert_eq!(res.json()["current"]["assigned_user_ids"], json!(expected));
    let res = send_with(
        &app.admin(),
        Method::PUT,
        &path,
        stale,
        Body::Xml(xml_row(&toms_row, &job, tom)),
    )
    .await;
    assert_eq!(res.status, 412, "{}", res.text);
    assert!(
        res.text.contains(&format!(
            "<assigned_user_ids>{expected}</assigned_user_ids>"
        )),
        "{}",
        res.text
    );
    // 409: Tom accepts, then tries to reject.
    let tom_api = app.as_user(TOM);
    assert_eq!(
        tom_api
            .post_json(&format!("{path}/Accept"), &json!({}))
            .await
            .status,
        200
    );
    let res = tom_api
        .post_json(&format!("{path}/Reject"), &json!({"rejected_reason": "x"}))
        .await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert_eq!(res.json()["current"]["assigned_user_ids"], json!(expected));
    app.stop().await;
}

/// A SaveMultiple body of `n` tiny items.
fn tiny_items_json(n: usize) -> String {
    let mut body = String::with_capacity(2 * n + 2);
    body.push('[');
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push('1');
    }
    body.push(']');
    body
}

#[tokio::test]
async fn a_save_multiple_of_300000_items_is_refused_at_once_with_a_small_answer() {
    let app = spawn_app().await;
    let admin = app.admin();
    let xml = format!(
        "<ArrayOfjob_dispatch_log>{}</ArrayOfjob_dispatch_log>",
        "<job_dispatch_log/>".repeat(300_000)
    );
    for (label, content_type, body) in [
        ("json", "application/json", tiny_items_json(300_000)),
        ("xml", "application/xml", xml),
    ] {
        for accept in ["application/json", "application/xml"] {
            let started = Instant::now();
            let res = admin
                .post_raw(
                    "/api/JobDispatchLog/SaveMultiple",
                    Some(content_type),
                    Some(accept),
                    body.clone(),
                )
                .await;
            println!(
                "SaveMultiple of 300,000 {label} items, answered in {:?} with {} bytes",
                started.elapsed(),
                res.text.len()
            );
            assert_eq!(res.status, 400, "{label}: {}", res.text);
            assert!(res.text.contains("more than 1000 items"), "{}", res.text);
            assert!(res.text.len() < 2048, "{label}: {} bytes", res.text.len());
        }
    }
    let list = admin.get("/api/JobDispatchLog?$count=true").await.json();
    assert_eq!(list["@odata.count"], json!(0));
    app.stop().await;
}

#[tokio::test]
async fn an_error_lists_at_most_100_fields_and_counts_the_rest() {
    let app = spawn_app().await;
    let res = app
        .admin()
        .post_raw(
            "/api/JobDispatchLog/SaveMultiple",
            Some("application/json"),
            None,
            tiny_items_json(1000),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    let problem = res.json();
    assert_eq!(problem["errors"].as_object().unwrap().len(), 100);
    assert!(problem["errors"]["[0]"].is_array(), "{}", res.text);
    assert!(
        problem["detail"].as_str().unwrap().contains("900 more"),
        "{}",
        res.text
    );
    // The same with rows that break rules rather than types.
    let rows: Vec<Value> = (0..1000)
        .map(|_| json!({"jobs_id": guid(), "user_id": guid(), "is_accepted": true, "is_rejected": true}))
        .collect();
    let res = app
        .admin()
        .post_json("/api/JobDispatchLog/SaveMultiple", &json!(rows))
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["errors"].as_object().unwrap().len(), 100);
    let list = app
        .admin()
        .get("/api/JobDispatchLog?$count=true")
        .await
        .json();
    assert_eq!(list["@odata.count"], json!(0));
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_sent_all_at_once_get_exactly_the_limit_of_401s() {
    let app = spawn_app_adjusted(|s| s.login_failures_per_minute = 20).await;
    app.add_user(TOM, Role::Technician, Uuid::new_v4()).await;
    let attempts = (0..100).map(|i| {
        let app = &app;
        async move {
            app.as_user(&format!("tom:wrong-{i}@acme"))
                .get("/api/JobDispatchLog")
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    assert_eq!((count(401), count(429)), (20, 80), "statuses: {statuses:?}");
    // The address is now blocked, even with the right password.
    let res = app.as_user(TOM).get("/api/JobDispatchLog").await;
    assert_eq!(res.status, 429);
    assert!(res.header("retry-after").is_some());
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_right_logins_from_one_address_is_never_limited() {
    let app = spawn_app_adjusted(|s| s.login_failures_per_minute = 5).await;
    app.add_user(TOM, Role::Technician, Uuid::new_v4()).await;
    let attempts = (0..40).map(|_| {
        let app = &app;
        async move { app.as_user(TOM).get("/api/JobDispatchLog").await.status }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_nul_in_credentials_is_a_plain_401_and_in_a_filter_literal_a_400() {
    let app = spawn_app().await;
    for login in [
        "adm\0in:secret@acme",
        "admin:secret@ac\0me",
        "admin:sec\0ret@acme",
        "\0:\0@\0",
    ] {
        let res = app.as_user(login).get("/api/JobDispatchLog").await;
        assert_eq!(res.status, 401, "{login:?}: {}", res.text);
        assert!(res.header("www-authenticate").is_some());
    }
    for filter in [
        "rejected_reason%20eq%20%27a%00b%27",
        "contains(rejected_reason,%27%00%27)",
        "rejected_reason%20in%20(%27x%27,%27%00%27)",
    ] {
        let res = app
            .admin()
            .get(&format!("/api/JobDispatchLog?$filter={filter}"))
            .await;
        assert_eq!(res.status, 400, "{filter}: {}", res.text);
        assert!(res.text.contains("NUL"), "{}", res.text);
    }
    // And in a body: a 400 naming the field, nothing stored.
    let res = app
        .admin()
        .post_json(
            "/api/JobDispatchLog/Save",
            &json!({"jobs_id": guid(), "user_id": guid(), "is_rejected": true, "rejected_reason": "a\u{0}b"}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(!res.field_errors("rejected_reason").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_query_value_with_a_broken_escape_is_a_400_not_the_whole_feed() {
    let app = spawn_app().await;
    app.admin()
        .save(&json!({"jobs_id": guid(), "user_id": guid()}))
        .await;
    for path in [
        "/api/JobDispatchLog/Changes?since=%ff%ff",
        "/api/JobDispatchLog/Changes?since=%zz",
        "/api/JobDispatchLog/Changes?since=%",
        "/api/JobDispatchLog/Changes?limit=%ff",
        "/api/JobDispatchLog/Changes/Stream?since=%ff%ff",
        "/api/JobDispatchLog?$filter=%ff",
        "/api/JobDispatchLog?$top=%e2%82",
        "/api/JobDispatchLog/Changes?$format=%ff",
    ] {
        let res = app.admin().get(path).await;
        assert_eq!(res.status, 400, "{path}: {}", res.text);
        assert!(!res.text.contains("jobs_id"), "{path}: {}", res.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_job_at_the_highest_sequence_refuses_another_numbered_dispatch() {
    let app = spawn_app().await;
    let admin = app.admin();
    let job = guid();
    let top = admin
        .save(&json!({"jobs_id": job, "user_id": guid(), "sequence": i32::MAX}))
        .await;
    assert_eq!(top["sequence"], json!(i32::MAX));
    let id = guid();
    let res = admin
        .post_json(
            "/api/JobDispatchLog/Save",
            &json!({"id": id, "jobs_id": job, "user_id": guid()}),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert!(res.text.contains("2147483647"), "{}", res.text);
    assert_eq!(
        admin.get(&format!("/api/JobDispatchLog/{id}")).await.status,
        404
    );
    let res = admin
        .post_json(
            "/api/JobDispatchLog/Dispatch",
            &json!({"jobs_id": job, "user_ids": [guid()]}),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text);
    // A SaveMultiple with such a row stores none of its rows.
    let other = guid();
    let res = admin
        .post_json(
            "/api/JobDispatchLog/SaveMultiple",
            &json!([{"id": other, "jobs_id": guid(), "user_id": guid()}, {"jobs_id": job, "user_id": guid()}]),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.text);
    assert!(res.text.contains("[1]"), "{}", res.text);
    assert_eq!(
        admin
            .get(&format!("/api/JobDispatchLog/{other}"))
            .await
            .status,
        404
    );
    // An explicit sequence still works, and sequences stay unique.
    admin
        .save(&json!({"jobs_id": job, "user_id": guid(), "sequence": 5}))
        .await;
    let list = admin
        .get(&format!(
            "/api/JobDispatchLog?$filter=jobs_id%20eq%20{job}&$count=true"
        ))
        .await
        .json();
    assert_eq!(list["@odata.count"], json!(2));
    app.stop().await;
}

#[tokio::test]
async fn a_technicians_feed_stream_and_list_never_carry_another_technicians_row() {
    let f = reassigned().await;
    let tom = f.app.as_user(TOM);
    for path in [
        "/api/JobDispatchLog/Changes".to_string(),
        "/api/JobDispatchLog".to_string(),
        format!(
            "/api/JobDispatchLog?$filter=rejected_reason%20eq%20%27{}%27",
            ANNS_REASON.replace(' ', "%20")
        ),
        format!("/api/JobDispatchLog?$filter=user_id%20eq%20{}", f.ann),
    ] {
        for res in [tom.get(&path).await, tom.get_xml(&path).await] {
            assert_eq!(res.status, 200, "{path}: {}", res.text);
            assert_nothing_of_ann(&f, &res, &path);
        }
    }
    // The stream's first page: read the first chunk of events.
    let res = tom
        .request(Method::GET, "/api/JobDispatchLog/Changes/Stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut res = res;
    let mut text = String::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    while Instant::now() < deadline {
        match tokio::time::timeout(std::time::Duration::from_millis(300), res.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    drop(res);
    assert!(text.contains("removed"), "{text}");
    for secret in [f.ann.to_string(), ANNS_REASON.to_string()] {
        assert!(!text.contains(&secret), "{text}");
    }
    f.app.stop().await;
}
