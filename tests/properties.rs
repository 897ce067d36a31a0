//! Property tests: the decoders of everything a client sends — JSON and XML bodies, date-times,
//! `/Changes` cursors, `Authorization` headers — under random input. Whatever arrives, they
//! answer with a value or a typed error that the API turns into a 4xx; they never panic.
//!
//! Date-times: the ISO 8601 / RFC 3339 forms. The Microsoft `/Date(ms±hhmm)/` form of SPEC §4.2
//! is not read by this version of the parser, so it is only checked to be refused cleanly.
//!
//! Case counts stay modest (the suite runs on a 2-core machine): 256 per pure property, 48 per
//! property that goes through the running server.

mod common;

use base64::Engine as _;
use dispatchlog::auth::{basic_login, bearer_token};
use dispatchlog::domain::job_dispatch_log::DispatchDraft;
use dispatchlog::domain::timestamp::{DateError, Timestamp};
use dispatchlog::error::ApiError;
use dispatchlog::http::changes::decode_cursor;
use dispatchlog::http::decode_failed;
use dispatchlog::wire::cursor::encode_cursor;
use dispatchlog::wire::{self, Format};
use proptest::prelude::*;

const FIELDS: &[&str] = &[
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
    "modified_dateutc",
    "sequence",
    "assigned_user_ids",
];

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking a failure is worth its time; the default of 1024 rejects is not needed.
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

/// Decoding, then the domain's rules: whatever fails must be a 400.
fn decode_and_check(format: Format, body: &[u8]) {
    match wire::decode_one(format, body) {
        Ok(raw) => {
            let _ = DispatchDraft::try_from(&raw);
        }
        Err(e) => assert_client_error(decode_failed(e)),
    }
    if let Err(e) = wire::decode_list(format, body, 1000) {
        assert_client_error(decode_failed(e));
    }
}

fn assert_client_error(e: ApiError) {
    let status = e.status().as_u16();
    assert!((400..500).contains(&status), "{status}: {e:?}");
}

/// A JSON value of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::from),
        date_like().prop_map(serde_json::Value::from),
        Just(serde_json::json!("00000000-0000-0000-0000-000000000000")),
        Just(serde_json::json!("ab53b170-9ede-42f6-85e5-eac282e3ac0a")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS).prop_map(str::to_string),
        1 => "[a-zA-Z_]{1,8}",
    ]
}

/// Text shaped like a date-time: the characters of the forms the parser reads, in any order,
/// and real date-times with a part changed.
fn date_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9T:.,Zz+ -]{0,36}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{0,9})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?",
        "\\\\?/Date\\([0-9-]{0,16}([+-][0-9]{4})?\\)\\\\?/",
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn json_bodies_of_any_bytes_decode_or_fail_with_a_400(body in prop::collection::vec(any::<u8>(), 0..200)) {
        decode_and_check(Format::Json, &body);
    }

    #[test]
    fn json_objects_of_any_shape_decode_or_fail_with_a_400(
        fields in prop::collection::btree_map(field_name(), json_value(), 0..14),
        list in any::<bool>(),
    ) {
        let object = serde_json::Value::Object(fields.into_iter().collect());
        let doc = if list { serde_json::json!([object, object]) } else { object };
        decode_and_check(Format::Json, doc.to_string().as_bytes());
    }

    #[test]
    fn xml_bodies_of_any_bytes_decode_or_fail_with_a_400(body in prop::collection::vec(any::<u8>(), 0..200)) {
        decode_and_check(Format::Xml, &body);
    }

    #[test]
    fn xml_documents_of_any_shape_decode_or_fail_with_a_400(
        root in prop::sample::select(&["job_dispatch_log", "ArrayOfjob_dispatch_log", "x"][..]),
        prolog in prop::sample::select(&[
            "",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
            "<!DOCTYPE x [<!ENTITY e \"boom\">]>",
            "<!-- c -->",
            "\u{feff}",
        ][..]),
        children in prop::collection::vec(xml_child(), 0..10),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let inner: String = children.concat();
        let inner = if root == "ArrayOfjob_dispatch_log" {
            format!("<job_dispatch_log>{inner}</job_dispatch_log>")
        } else {
            inner
        };
        let mut doc = format!(
            "{prolog}<{root} xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">{inner}</{root}>"
        );
        if truncate {
            let mut at = cut.index(doc.len() + 1);
            while !doc.is_char_boundary(at) {
                at -= 1;
            }
            doc.truncate(at);
        }
        decode_and_check(Format::Xml, doc.as_bytes());
    }

    #[test]
    fn date_times_parse_or_fail_with_a_typed_error(text in prop_oneof![
        date_like(),
        ".{0,40}",
        // The Microsoft JSON form .NET clients send (SPEC §4.2), well-formed or nearly.
        "/Date\\(-?[0-9]{0,16}([+-][0-9]{0,5})?\\)/?",
    ]) {
        match Timestamp::parse(&text) {
            Ok(ts) => {
                // Whatever parsed is in range and reads back identical from its JSON form.
                prop_assert!(ts >= Timestamp::MIN && ts <= Timestamp::MAX);
                prop_assert_eq!(Timestamp::parse(&ts.to_json_string()), Ok(ts));
            }
            Err(DateError::Syntax | DateError::MicrosoftSyntax | DateError::OutOfRange) => {}
        }
    }

    #[test]
    fn every_instant_in_range_reads_back_from_its_json_and_xml_forms(
        ticks in Timestamp::MIN.ticks()..=Timestamp::MAX.ticks(),
    ) {
        let ts = Timestamp::from_ticks(ticks);
        prop_assert_eq!(Timestamp::parse(&ts.to_json_string()), Ok(ts));
        // XML carries milliseconds: the instant truncated to them.
        let ms = Timestamp::from_ticks(ticks - ticks.rem_euclid(10_000));
        prop_assert_eq!(Timestamp::parse(&ts.to_xml_string()), Ok(ms));
    }

    #[test]
    fn cursors_decode_or_fail_with_a_400(text in prop_oneof![".{0,24}", "[A-Za-z0-9_-]{0,24}"]) {
        if let Err(e) = decode_cursor(&text) {
            assert_client_error(e);
        }
    }

    #[test]
    fn every_cursor_reads_back(ticks in any::<i64>()) {
        let stamp = (ticks != i64::MIN).then(|| Timestamp::from_ticks(ticks));
        prop_assert_eq!(decode_cursor(&encode_cursor(stamp)).ok(), Some(stamp));
    }

    #[test]
    fn authorization_headers_of_any_text_parse_or_are_refused(
        header in prop_oneof![
            ".{0,60}",
            "(Basic|basic|BASIC|Bearer|bearer) ?[A-Za-z0-9+/=_ -]{0,40}",
            any::<Vec<u8>>().prop_map(|b| format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )),
        ],
    ) {
        let _ = basic_login(&header);
        if let Some(token) = bearer_token(&header) {
            prop_assert!(!token.is_empty());
        }
    }

    #[test]
    fn basic_credentials_read_back_as_sent(
        username in "[^:\u{0}]{1,12}",
        password in "[^\u{0}]{1,12}",
        domain in "[^@\u{0}]{1,12}",
    ) {
        let value = base64::engine::general_purpose::STANDARD
            .encode(format!("{username}:{password}@{domain}"));
        let login = basic_login(&format!("Basic {value}")).expect("well-formed credentials");
        prop_assert_eq!(login.username, username);
        prop_assert_eq!(login.password, password);
        prop_assert_eq!(login.domain, domain);
    }
}

/// One child element of a record: a field (or an unknown name) with text, entities, CDATA,
/// `i:nil`, nested elements or nothing.
fn xml_child() -> impl Strategy<Value = String> {
    let name = field_name();
    let text = prop_oneof![
        "[^<&]{0,12}",
        date_like(),
        Just("&amp;&lt;&#x26;&#38;".to_string()),
        Just("&xxe;".to_string()),
        Just("&#0;".to_string()),
        Just("&#xFFFFFFFF;".to_string()),
        Just("<![CDATA[<x>&]]>".to_string()),
        Just("<inner>1</inner>".to_string()),
        Just("ab53b170-9ede-42f6-85e5-eac282e3ac0a".to_string()),
        Just("true".to_string()),
        Just("-1".to_string()),
    ];
    (name, text, 0..4u8).prop_map(|(name, text, form)| match form {
        0 => format!("<{name} i:nil=\"true\"/>"),
        1 => format!("<{name}/>"),
        2 => format!("<i:{name}>{text}</i:{name}>"),
        _ => format!("<{name}>{text}</{name}>"),
    })
}

mod through_the_server {
    //! The same decoders behind the real server: a random body or `Authorization` header is
    //! answered with a 2xx or a 4xx problem, never a 5xx.

    use super::*;
    use common::{spawn_app_adjusted, SAVE};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn random_bodies_and_headers_never_get_a_5xx() {
        let rt = runtime();
        let app = rt.block_on(spawn_app_adjusted(|s| {
            s.login_failures_per_minute = 1_000_000
        }));
        let mut runner = proptest::test_runner::TestRunner::new(config(48));
        let strategy = (
            prop_oneof![
                json_value().prop_map(|v| (v.to_string(), "application/json")),
                prop::collection::vec(xml_child(), 0..6).prop_map(|c| (
                    format!("<job_dispatch_log>{}</job_dispatch_log>", c.concat()),
                    "application/xml"
                )),
                ".{0,80}".prop_map(|s| (s, "application/json")),
            ],
            prop_oneof![Just(None), "(Basic|Bearer) [ -~]{0,40}".prop_map(Some),],
        );
        runner
            .run(&strategy, |((body, content_type), authorization)| {
                let admin = app.admin();
                let status = rt.block_on(async {
                    let req = admin
                        .request(reqwest::Method::POST, SAVE)
                        .header("content-type", content_type)
                        .body(body.clone());
                    let res = admin.send(req).await;
                    assert!(
                        res.status < 500,
                        "Save: {} {}\n{body}",
                        res.status,
                        res.text
                    );
                    let api = common::Api {
                        app: &app,
                        authorization: authorization.clone(),
                    };
                    api.get("/api/JobDispatchLog/Changes").await.status
                });
                prop_assert!(
                    status == 200 || status == 401,
                    "Authorization {authorization:?}: {status}"
                );
                Ok(())
            })
            .unwrap();
        rt.block_on(app.stop());
    }
}
