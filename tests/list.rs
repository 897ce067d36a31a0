//! The OData list (SPEC §6), black box over HTTP: `$filter` on every type and operator,
//! ordering and stable paging, the page options, the body shapes, the 400s for malformed
//! queries, tenancy and roles, and sync by `modified_dateutc` (SPEC §7.1).
//!
//! Results are checked against a model of the stored rows evaluated in Rust, on data chosen so
//! that a wrong operator, a lost fraction digit, a `LIKE` wildcard, a case-insensitive match or a
//! missing tenant or user condition would change the answer.

mod common;

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use common::{guid, spawn_app, Api, TestApp};
use dispatchlog::domain::Role;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

const LIST: &str = "/api/JobDispatchLog";
const GLOBEX: &str = "boss:pw@globex";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Percent-encodes everything but the unreserved characters, as a careful client does.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `GET /api/JobDispatchLog?{query}`, asserting a 200 JSON body.
async fn list(api: &Api<'_>, query: &str) -> Value {
    let res = api.get(&format!("{LIST}?{query}")).await;
    assert_eq!(res.status, 200, "{query}: {}", res.text);
    assert!(
        res.content_type().starts_with("application/json"),
        "{query}: {}",
        res.content_type()
    );
    res.json()
}

fn rows_of(body: &Value) -> Vec<Value> {
    body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no value array: {body}"))
        .clone()
}

fn ids_of(body: &Value) -> Vec<String> {
    rows_of(body).iter().map(|r| common::s(r, "id")).collect()
}

/// Every row matching `filter`, as ids in `id` order, in one page.
async fn filtered_ids(api: &Api<'_>, filter: &str) -> Vec<String> {
    ids_of(
        &list(
            api,
            &format!("$filter={}&$orderby=id&$top=1000", enc(filter)),
        )
        .await,
    )
}

/// The path of a `@odata.nextLink` (or `Link` target) on this server.
fn path_of(app: &TestApp, link: &str) -> String {
    let base = app.url("");
    link.strip_prefix(&base)
        .unwrap_or_else(|| panic!("{link} does not start with {base}"))
        .to_string()
}

/// A field's value in a comparable form. GUIDs are lower-case text, whose order is the byte
/// order the store compares; date-times are written alike by the server (UTC, 7 fraction
/// digits), so their text order is their time order.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum V {
    S(String),
    I(i64),
    B(bool),
}

fn v(row: &Value, field: &str) -> V {
    match &row[field] {
        Value::String(s) => V::S(s.clone()),
        Value::Number(n) => V::I(n.as_i64().unwrap()),
        Value::Bool(b) => V::B(*b),
        other => panic!("{field} is {other} in {row}"),
    }
}

fn holds(op: &str, ord: Ordering) -> bool {
    match op {
        "eq" => ord == Ordering::Equal,
        "ne" => ord != Ordering::Equal,
        "gt" => ord == Ordering::Greater,
        "ge" => ord != Ordering::Less,
        "lt" => ord == Ordering::Less,
        "le" => ord != Ordering::Greater,
        _ => unreachable!("{op}"),
    }
}

/// The operator meaning the same with its sides swapped.
fn mirrored(op: &str) -> &'static str {
    match op {
        "eq" => "eq",
        "ne" => "ne",
        "gt" => "lt",
        "ge" => "le",
        "lt" => "gt",
        "le" => "ge",
        _ => unreachable!("{op}"),
    }
}

const OPS: [&str; 6] = ["eq", "ne", "gt", "ge", "lt", "le"];

/// A server date-time (`…+00:00`) written in another offset, 7 fraction digits kept.
fn in_offset(s: &str, hours: i8, minutes: i8) -> String {
    let t = OffsetDateTime::parse(s, &Rfc3339).unwrap();
    let t = t.to_offset(UtcOffset::from_hms(hours, minutes, 0).unwrap());
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7][offset_hour sign:mandatory]:[offset_minute]"
    ))
    .unwrap()
}

/// A 400 problem document whose detail names `option` and contains `why`.
async fn assert_bad_query(api: &Api<'_>, query: &str, option: &str, why: &str) {
    let res = api.get(&format!("{LIST}?{query}")).await;
    assert_eq!(res.status, 400, "{query}: {}", res.text);
    assert!(
        res.content_type().starts_with("application/json"),
        "{query}: {}",
        res.content_type()
    );
    let body = res.json();
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(option),
        "{query}: the detail does not name {option}: {detail}"
    );
    assert!(
        detail.contains(why),
        "{query}: the detail does not say '{why}': {detail}"
    );
    assert_eq!(body["status"], json!(400), "{query}");
    assert_eq!(body["Message"], body["detail"], "{query}");
}

// ---------------------------------------------------------------------------------------------
// The filter fixture: eight rows in tenant acme, and in tenant globex copies of them under the
// same ids plus rows of its own that match every filter below.

struct Fixture {
    app: TestApp,
    /// The acme rows as stored.
    rows: Vec<Value>,
    /// Ids of globex rows that do not exist in acme.
    globex_only: Vec<String>,
}

impl Fixture {
    /// The ids (in id order) of the acme rows for which `pred` holds.
    fn expected(&self, pred: impl Fn(&Value) -> bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .rows
            .iter()
            .filter(|r| pred(r))
            .map(|r| common::s(r, "id"))
            .collect();
        ids.sort();
        ids
    }

    /// Which fixture row (1-based, as in the table of `fixture`) each id is, for messages.
    fn names(&self, ids: &[String]) -> Vec<String> {
        ids.iter()
            .map(|id| {
                match self
                    .rows
                    .iter()
                    .position(|r| r["id"].as_str() == Some(id.as_str()))
                {
                    Some(k) => format!("r{}", k + 1),
                    None => format!("foreign {id}"),
                }
            })
            .collect()
    }

    async fn check(&self, filter: &str, pred: impl Fn(&Value) -> bool) -> Vec<String> {
        let want = self.expected(pred);
        let got = filtered_ids(&self.app.admin(), filter).await;
        assert_eq!(
            self.names(&got),
            self.names(&want),
            "$filter={filter} returned the wrong rows"
        );
        got
    }
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    app.add_user(GLOBEX, Role::Admin, Uuid::nil()).await;
    let jobs: Vec<String> = (0..4).map(|_| guid()).collect();
    let users: Vec<String> = (0..3).map(|_| guid()).collect();
    let row = |k: usize,
               job: usize,
               user: usize,
               proceeded: bool,
               (accepted, rejected, reason): (bool, bool, &str),
               (deleted, workshop): (bool, bool),
               sequence: i32| {
        let mut body = json!({
            "id": guid(),
            "jobs_id": jobs[job],
            "user_id": users[user],
            // Only the seventh fraction digit differs: a store keeping milliseconds or
            // microseconds would make these all equal.
            "date_create": format!("2021-03-04T05:06:07.123456{k}Z"),
            "is_accepted": accepted,
            "is_rejected": rejected,
            "rejected_reason": reason,
            "sys_logical_delete": deleted,
            "is_workshop": workshop,
            "sequence": sequence,
        });
        if proceeded {
            body["date_proceeded"] = json!(format!("2022-05-06T07:08:09.000000{k}Z"));
        }
        body
    };
    let none = (false, false, "");
    let bodies = vec![
        row(1, 0, 0, false, none, (true, false), 1),
        row(2, 0, 1, true, (true, false, ""), (false, false), 2),
        row(
            3,
            1,
            0,
            true,
            (false, true, "50% off_site"),
            (false, false),
            1,
        ),
        row(
            4,
            1,
            1,
            true,
            (false, true, "it's broken"),
            (false, false),
            2,
        ),
        row(
            5,
            2,
            2,
            true,
            (false, true, "Broken pump"),
            (false, false),
            5,
        ),
        row(6, 2, 0, false, none, (false, true), 7),
        row(
            7,
            3,
            2,
            true,
            (false, true, "500 off-site"),
            (false, false),
            3,
        ),
        row(
            8,
            3,
            1,
            true,
            (false, true, "x' or 1=1 --"),
            (false, false),
            4,
        ),
    ];
    let admin = app.admin();
    let mut rows = Vec::new();
    for body in &bodies {
        let stored = admin.save(body).await;
        assert_eq!(
            stored["date_create"],
            json!(body["date_create"].as_str().unwrap().replace('Z', "+00:00"))
        );
        rows.push(stored);
    }
    let globex = app.as_user(GLOBEX);
    for body in &bodies {
        globex.save(body).await;
    }
    let mut globex_only = Vec::new();
    for (k, reason) in [(1, "50% off_site it's broken Broken pump"), (9, "")] {
        let mut body = row(
            k,
            1,
            0,
            true,
            (false, !reason.is_empty(), reason),
            (false, false),
            2,
        );
        body["id"] = json!(guid());
        globex_only.push(common::s(&globex.save(&body).await, "id"));
    }
    Fixture {
        app,
        rows,
        globex_only,
    }
}

/// The literals that name `value` of `field`, in every form the grammar offers.
fn literals(field: &str, value: &V) -> Vec<String> {
    let V::S(s) = value else {
        let V::I(n) = value else {
            unreachable!("{field}")
        };
        return vec![n.to_string()];
    };
    match field {
        "id" | "jobs_id" | "user_id" => vec![
            s.clone(),
            format!("guid'{s}'"),
            format!("GUID'{}'", s.to_uppercase()),
            s.to_uppercase(),
            format!("'{s}'"),
        ],
        "date_create" | "date_proceeded" | "modified_dateutc" => vec![
            s.clone(),
            s.replace("+00:00", "Z"),
            format!("datetime'{s}'"),
            in_offset(s, 2, 0),
            format!("datetimeoffset'{}'", in_offset(s, -5, -30)),
            format!("datetime'{}'", in_offset(s, 13, 45)),
        ],
        "rejected_reason" => vec![format!("'{}'", s.replace('\'', "''"))],
        _ => unreachable!("{field}"),
    }
}

#[tokio::test]
async fn every_comparison_on_every_type_returns_exactly_the_matching_rows() {
    let f = fixture().await;
    for field in [
        "id",
        "jobs_id",
        "user_id",
        "date_create",
        "date_proceeded",
        "modified_dateutc",
        "sequence",
        "rejected_reason",
    ] {
        // The median value: some rows lie below it, some above.
        let mut values: Vec<V> = f.rows.iter().map(|r| v(r, field)).collect();
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let pivot = values[values.len() / 2].clone();
        let cmp = |r: &Value| v(r, field).partial_cmp(&pivot).unwrap();
        assert!(
            !f.expected(|r| cmp(r) == Ordering::Less).is_empty(),
            "{field}"
        );
        assert!(
            !f.expected(|r| cmp(r) == Ordering::Greater).is_empty(),
            "{field}"
        );
        for (k, lit) in literals(field, &pivot).iter().enumerate() {
            for op in OPS {
                f.check(&format!("{field} {op} {lit}"), |r| holds(op, cmp(r)))
                    .await;
                if k == 0 {
                    // The value first: `5 gt sequence` means `sequence lt 5`.
                    f.check(&format!("{lit} {} {field}", mirrored(op)), |r| {
                        holds(op, cmp(r))
                    })
                    .await;
                }
            }
        }
    }
    f.app.stop().await;
}

#[tokio::test]
async fn date_times_keep_all_seven_fraction_digits_and_honour_offsets() {
    let f = fixture().await;
    let r = |k: usize| common::s(&f.rows[k - 1], "id");
    // The rows' date_create differ only in the seventh fraction digit: r1 …1, r2 …2, and so on.
    let cases: Vec<(&str, Vec<usize>)> = vec![
        (
            "date_create gt 2021-03-04T05:06:07.1234563Z and date_create lt datetime'2021-03-04T05:06:07.1234566Z'",
            vec![4, 5],
        ),
        ("date_create eq 2021-03-04T07:06:07.1234563+02:00", vec![3]),
        ("date_create eq datetimeoffset'2021-03-03T23:36:07.1234567-05:30'", vec![7]),
        ("date_create eq datetime'2021-03-04T05:06:07.1234568'", vec![8]),
        ("date_create le 2021-03-04T05:06:07.1234561", vec![1]),
        ("date_create ge 2021-03-04T05:06:07.123456Z", (1..=8).collect()),
        ("date_create eq 2021-03-04T05:06:07.123Z", vec![]),
        ("date_create lt 2021-03-04T05:06:07.123Z", vec![]),
        ("date_create gt 2021-03-04", (1..=8).collect()),
        ("date_create lt 2021-03-04T05:06:07Z", vec![]),
        ("date_proceeded eq 1980-01-01T00:00:00Z", vec![1, 6]),
        ("date_proceeded gt 2022-05-06T09:08:09.0000004+02:00", vec![5, 7, 8]),
    ];
    for (filter, rows) in cases {
        let mut want: Vec<String> = rows.into_iter().map(r).collect();
        want.sort();
        let got = filtered_ids(&f.app.admin(), filter).await;
        assert_eq!(f.names(&got), f.names(&want), "$filter={filter}");
    }
    f.app.stop().await;
}

#[tokio::test]
async fn boolean_fields_compare_with_eq_and_ne_and_stand_alone_as_conditions() {
    let f = fixture().await;
    for field in [
        "is_accepted",
        "is_rejected",
        "sys_logical_delete",
        "is_workshop",
    ] {
        assert!(
            !f.expected(|r| r[field] == json!(true)).is_empty(),
            "{field}"
        );
        assert!(
            !f.expected(|r| r[field] == json!(false)).is_empty(),
            "{field}"
        );
        for b in [true, false] {
            f.check(&format!("{field} eq {b}"), |r| r[field] == json!(b))
                .await;
            f.check(&format!("{field} ne {b}"), |r| r[field] != json!(b))
                .await;
            f.check(&format!("{b} eq {field}"), |r| r[field] == json!(b))
                .await;
        }
        f.check(field, |r| r[field] == json!(true)).await;
        f.check(&format!("not {field}"), |r| r[field] == json!(false))
            .await;
        f.check(&format!("not not {field}"), |r| r[field] == json!(true))
            .await;
    }
    f.check("true", |_| true).await;
    f.check("false", |_| false).await;
    f.check("true and is_workshop", |r| r["is_workshop"] == json!(true))
        .await;
    f.check("false or is_workshop", |r| r["is_workshop"] == json!(true))
        .await;
    f.app.stop().await;
}

fn seq(r: &Value) -> i64 {
    r["sequence"].as_i64().unwrap()
}

fn flag(r: &Value, field: &str) -> bool {
    r[field].as_bool().unwrap()
}

#[tokio::test]
async fn and_or_not_parentheses_and_precedence_combine_conditions() {
    let f = fixture().await;
    f.check("is_rejected and sequence gt 1", |r| {
        flag(r, "is_rejected") && seq(r) > 1
    })
    .await;
    f.check("sequence eq 1 or sequence eq 7", |r| {
        seq(r) == 1 || seq(r) == 7
    })
    .await;
    // `and` binds tighter than `or`; parentheses change that.
    let loose = f
        .check("is_accepted or is_rejected and sequence eq 1", |r| {
            flag(r, "is_accepted") || (flag(r, "is_rejected") && seq(r) == 1)
        })
        .await;
    let grouped = f
        .check("(is_accepted or is_rejected) and sequence eq 1", |r| {
            (flag(r, "is_accepted") || flag(r, "is_rejected")) && seq(r) == 1
        })
        .await;
    assert_ne!(loose, grouped, "the data must tell the two readings apart");
    let right = f
        .check("sequence eq 1 and is_rejected or is_accepted", |r| {
            (seq(r) == 1 && flag(r, "is_rejected")) || flag(r, "is_accepted")
        })
        .await;
    assert_eq!(right, loose);
    // `not` binds tighter than `and`.
    let narrow = f
        .check("not is_rejected and sequence eq 1", |r| {
            !flag(r, "is_rejected") && seq(r) == 1
        })
        .await;
    let wide = f
        .check("not (is_rejected and sequence eq 1)", |r| {
            !(flag(r, "is_rejected") && seq(r) == 1)
        })
        .await;
    assert_ne!(narrow, wide);
    f.check(
        "((sequence ge 2) and ((not is_rejected) or (sequence eq 5)))",
        |r| seq(r) >= 2 && (!flag(r, "is_rejected") || seq(r) == 5),
    )
    .await;
    f.check("not (sequence lt 3 or sequence gt 5)", |r| {
        !(seq(r) < 3 || seq(r) > 5)
    })
    .await;
    // Keywords are case-insensitive.
    f.check("sequence EQ 1 AND NOT is_rejected Or sequence Gt 6", |r| {
        (seq(r) == 1 && !flag(r, "is_rejected")) || seq(r) > 6
    })
    .await;
    // A long `or` chain (longer than one flat SQL list).
    let chain: Vec<String> = (1..=20).map(|n| format!("sequence eq {n}")).collect();
    f.check(&chain.join(" or "), |r| (1..=20).contains(&seq(r)))
        .await;
    f.app.stop().await;
}

#[tokio::test]
async fn in_lists_match_any_of_their_values_on_every_type() {
    let f = fixture().await;
    f.check("sequence in (1, 5, 99)", |r| [1, 5, 99].contains(&seq(r)))
        .await;
    f.check("not (sequence in (1,2))", |r| ![1, 2].contains(&seq(r)))
        .await;
    f.check("sequence in (-3)", |_| false).await;
    let u1 = common::s(&f.rows[0], "user_id");
    let u3 = common::s(&f.rows[4], "user_id");
    f.check(&format!("user_id in ({u1}, guid'{u3}')"), |r| {
        r["user_id"] == json!(u1) || r["user_id"] == json!(u3)
    })
    .await;
    let id2 = common::s(&f.rows[1], "id");
    f.check(&format!("id in ('{id2}')"), |r| r["id"] == json!(id2))
        .await;
    f.check(
        "rejected_reason in ('Broken pump', 'it''s broken', 'none')",
        |r| {
            r["rejected_reason"] == json!("Broken pump")
                || r["rejected_reason"] == json!("it's broken")
        },
    )
    .await;
    let d3 = common::s(&f.rows[2], "date_create");
    let d5 = common::s(&f.rows[4], "date_create");
    f.check(
        &format!("date_create in (datetime'{d3}', {})", in_offset(&d5, 2, 0)),
        |r| r["date_create"] == json!(d3) || r["date_create"] == json!(d5),
    )
    .await;
    f.check("is_workshop in (true)", |r| flag(r, "is_workshop"))
        .await;
    f.app.stop().await;
}

#[tokio::test]
async fn text_functions_are_case_sensitive_and_take_wildcards_and_quotes_literally() {
    let f = fixture().await;
    let reason = |r: &Value| common::s(r, "rejected_reason");
    let r = |k: usize| common::s(&f.rows[k - 1], "id");
    // (filter, the rows a correct server returns; LIKE or a case-insensitive match would add others)
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("contains(rejected_reason, 'broken')", vec![r(4)]),
        ("contains(rejected_reason, 'Broken')", vec![r(5)]),
        ("startswith(rejected_reason, 'Broken')", vec![r(5)]),
        ("startswith(rejected_reason, 'broken')", vec![]),
        ("endswith(rejected_reason, 'broken')", vec![r(4)]),
        ("endswith(rejected_reason, 'BROKEN')", vec![]),
        ("endswith(rejected_reason, 'pump')", vec![r(5)]),
        ("contains(rejected_reason, '50%')", vec![r(3)]),
        ("contains(rejected_reason, '%')", vec![r(3)]),
        ("contains(rejected_reason, 'off_site')", vec![r(3)]),
        ("contains(rejected_reason, '_')", vec![r(3)]),
        ("startswith(rejected_reason, '50%')", vec![r(3)]),
        ("startswith(rejected_reason, '5_')", vec![]),
        ("endswith(rejected_reason, '_site')", vec![r(3)]),
        ("contains(rejected_reason, 'it''s')", vec![r(4)]),
        ("startswith(rejected_reason, 'x''')", vec![r(8)]),
        ("endswith(rejected_reason, 'x'' or 1=1 --')", vec![r(8)]),
        ("endswith(rejected_reason, 'xx Broken pump')", vec![]),
        ("contains(rejected_reason, 'broken') eq false", {
            let mut all: Vec<String> = (1..=8).filter(|&k| k != 4).map(r).collect();
            all.sort();
            all
        }),
    ];
    for (filter, mut want) in cases {
        want.sort();
        let got = filtered_ids(&f.app.admin(), filter).await;
        assert_eq!(f.names(&got), f.names(&want), "$filter={filter}");
    }
    // The same against the Rust string functions, for texts found in and around the data.
    for text in [
        "",
        "5",
        "50",
        "o",
        " ",
        "site",
        "Broken pump",
        "it's broken",
        "e",
    ] {
        let quoted = text.replace('\'', "''");
        f.check(&format!("contains(rejected_reason,'{quoted}')"), |row| {
            reason(row).contains(text)
        })
        .await;
        f.check(&format!("startswith(rejected_reason,'{quoted}')"), |row| {
            reason(row).starts_with(text)
        })
        .await;
        f.check(&format!("endswith(rejected_reason,'{quoted}')"), |row| {
            reason(row).ends_with(text)
        })
        .await;
    }
    f.app.stop().await;
}

#[tokio::test]
async fn sql_injection_attempts_match_nothing_and_leave_the_table_intact() {
    let f = fixture().await;
    let api = f.app.admin();
    for filter in [
        "rejected_reason eq 'y'' or 1=1 --'",
        "rejected_reason ne 'x' and rejected_reason eq 'x'' or ''a''=''a'",
        "rejected_reason eq ''' or ''1''=''1'",
        "rejected_reason eq 'Broken pump'' --'",
        "rejected_reason eq 'a''); DROP TABLE job_dispatch_log; --'",
        "contains(rejected_reason, '''); DELETE FROM job_dispatch_log; --')",
        "rejected_reason eq '\" or \"\"=\"'",
        "rejected_reason eq '\\'' or 1=1 --'",
    ] {
        let got = filtered_ids(&api, filter).await;
        assert_eq!(got, Vec::<String>::new(), "$filter={filter}");
    }
    // The stored text that looks like an injection is found by exactly that text.
    f.check("rejected_reason eq 'x'' or 1=1 --'", |r| {
        r["rejected_reason"] == json!("x' or 1=1 --")
    })
    .await;
    // Injection through the other options is refused before it reaches SQL.
    for query in [
        "$orderby=id;DROP TABLE job_dispatch_log",
        "$orderby=id desc, (SELECT 1)",
        "$select=id,1;DROP TABLE job_dispatch_log",
        "$top=1;DROP TABLE job_dispatch_log",
        "$filter=sequence eq 1; DROP TABLE job_dispatch_log",
    ] {
        let res = api.get(&format!("{LIST}?{}", enc_query(query))).await;
        assert_eq!(res.status, 400, "{query}: {}", res.text);
    }
    let all = list(&api, "$count=true&$top=1000").await;
    assert_eq!(all["@odata.count"], json!(8));
    assert_eq!(rows_of(&all).len(), 8);
    f.app.stop().await;
}

/// Encodes the values of a `k=v&k=v` query, leaving the structure.
fn enc_query(query: &str) -> String {
    query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, v)) => format!("{k}={}", enc(v)),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

// ---------------------------------------------------------------------------------------------
// Tenancy and roles

#[tokio::test]
async fn rows_of_another_tenant_never_appear_whatever_the_filter() {
    let f = fixture().await;
    let api = f.app.admin();
    let everything = list(&api, "$top=1000&$count=true").await;
    assert_eq!(everything["@odata.count"], json!(8));
    let mut got = ids_of(&everything);
    got.sort();
    assert_eq!(got, f.expected(|_| true));
    for id in &f.globex_only {
        assert_eq!(
            filtered_ids(&api, &format!("id eq {id}")).await,
            Vec::<String>::new()
        );
        assert_eq!(
            filtered_ids(&api, &format!("id eq {id} or true"))
                .await
                .len(),
            8
        );
        assert_eq!(
            filtered_ids(&api, &format!("not (id ne guid'{id}')")).await,
            Vec::<String>::new()
        );
    }
    let counted = list(
        &api,
        &format!(
            "$count=true&$filter={}",
            enc("startswith(rejected_reason,'50%')")
        ),
    )
    .await;
    assert_eq!(counted["@odata.count"], json!(1));
    // And the other way round: globex sees its ten rows only.
    let globex = f.app.as_user(GLOBEX);
    let theirs = list(&globex, "$top=1000&$count=true").await;
    assert_eq!(theirs["@odata.count"], json!(10));
    let ids: HashSet<String> = ids_of(&theirs).into_iter().collect();
    assert_eq!(ids.len(), 10);
    for id in &f.globex_only {
        assert!(ids.contains(id));
    }
    f.app.stop().await;
}

#[tokio::test]
async fn a_technician_lists_only_their_own_rows_and_no_filter_widens_that() {
    let app = spawn_app().await;
    let tom = Uuid::new_v4();
    let other = Uuid::new_v4();
    app.add_user("tom:pw@acme", Role::Technician, tom).await;
    app.add_user("dora:pw@acme", Role::Dispatcher, Uuid::nil())
        .await;
    // A technician with the same user_id in another tenant: their rows must not reach tom.
    app.add_user("tom:pw@globex", Role::Admin, Uuid::nil())
        .await;
    let admin = app.admin();
    let mut own = Vec::new();
    let mut others = Vec::new();
    for k in 0..4 {
        own.push(common::s(
            &admin
                .save(&json!({"jobs_id": guid(), "user_id": tom, "sequence": k + 1}))
                .await,
            "id",
        ));
        others.push(common::s(
            &admin
                .save(&json!({"jobs_id": guid(), "user_id": other, "sequence": k + 1}))
                .await,
            "id",
        ));
    }
    let foreign = common::s(
        &app.as_user("tom:pw@globex")
            .save(&json!({"jobs_id": guid(), "user_id": tom}))
            .await,
        "id",
    );
    own.sort();
    let tech = app.as_user("tom:pw@acme");
    let body = list(&tech, "$top=1000&$count=true").await;
    let mut got = ids_of(&body);
    got.sort();
    assert_eq!(got, own);
    assert_eq!(body["@odata.count"], json!(4), "the count is scoped too");
    for filter in [
        format!("user_id eq {other}"),
        format!("user_id ne {tom}"),
        format!("not (user_id eq {tom})"),
        format!("id eq {}", others[0]),
        format!("id eq {foreign}"),
        format!("id in ({}, {})", others[1], others[2]),
        "not true".to_string(),
        format!("not (user_id eq {tom} or false)"),
    ] {
        assert_eq!(
            filtered_ids(&tech, &filter).await,
            Vec::<String>::new(),
            "{filter}"
        );
    }
    for filter in [
        format!("true or user_id ne {tom}"),
        format!("user_id ne {tom} or user_id eq {tom}"),
        format!("(user_id eq {other}) or (sequence gt 0)"),
        "sequence ge 0 or true".to_string(),
    ] {
        assert_eq!(filtered_ids(&tech, &filter).await, own, "{filter}");
    }
    let counted = list(
        &tech,
        &format!(
            "$count=true&$top=1&$filter={}",
            enc(&format!("true or user_id eq {other}"))
        ),
    )
    .await;
    assert_eq!(counted["@odata.count"], json!(4));
    // A dispatcher sees every row of the tenant, and only those.
    let dora = app.as_user("dora:pw@acme");
    let mut all = ids_of(&list(&dora, "$top=1000").await);
    all.sort();
    let mut want: Vec<String> = own.iter().chain(others.iter()).cloned().collect();
    want.sort();
    assert_eq!(all, want);
    assert_eq!(
        filtered_ids(&dora, &format!("user_id eq {other}"))
            .await
            .len(),
        4
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Ordering, paging and the page options

/// 25 rows with many ties in the sorted fields.
async fn paging_rows(app: &TestApp) -> Vec<Value> {
    let admin = app.admin();
    let users: Vec<String> = (0..3).map(|_| guid()).collect();
    let reasons = ["no parts", "Customer away", "", "no parts"];
    let mut rows = Vec::new();
    for k in 0..25usize {
        let rejected = k % 5 == 0;
        let accepted = !rejected && k % 3 == 0;
        let mut body = json!({
            "jobs_id": guid(),
            "user_id": users[k % 3],
            "date_create": format!("2020-0{}-01T00:00:00Z", 1 + k % 4),
            "is_accepted": accepted,
            "is_rejected": rejected,
            "rejected_reason": if rejected { reasons[k % 4] } else { "" },
            "is_workshop": !rejected && k % 7 == 0,
            "sequence": 1 + (k * 7) % 4,
        });
        if accepted {
            body["date_proceeded"] = json!("2024-02-02T10:00:00Z");
        }
        rows.push(admin.save(&body).await);
    }
    rows
}

/// The rows in the order `$orderby` (completed with `id asc`) asks for.
fn sorted(rows: &[Value], orderby: &str) -> Vec<String> {
    let mut keys: Vec<(&str, bool)> = orderby
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let mut w = p.split_whitespace();
            let field = w.next().unwrap();
            let desc = w.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
            (field, desc)
        })
        .collect();
    if keys.is_empty() {
        keys.push(("modified_dateutc", false));
    }
    if !keys.iter().any(|(f, _)| *f == "id") {
        keys.push(("id", false));
    }
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| {
        for (field, desc) in &keys {
            let ord = v(a, field).partial_cmp(&v(b, field)).unwrap();
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    rows.iter().map(|r| common::s(r, "id")).collect()
}

/// Follows `@odata.nextLink` from `first` to the end; checks that `Link` agrees on each page.
async fn all_pages(app: &TestApp, first: &str) -> (Vec<String>, usize) {
    let api = app.admin();
    let mut path = first.to_string();
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let res = api.get(&path).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text);
        let body = res.json();
        ids.extend(ids_of(&body));
        pages += 1;
        assert!(pages < 100, "paging does not end");
        let next = body["@odata.nextLink"].as_str().map(str::to_string);
        assert_eq!(
            res.header("link"),
            next.as_ref().map(|n| format!("<{n}>; rel=\"next\"")),
            "{path}"
        );
        match next {
            Some(next) => path = path_of(app, &next),
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn orderby_sorts_on_several_fields_completed_with_id_and_pages_are_stable() {
    let app = spawn_app().await;
    let rows = paging_rows(&app).await;
    let user = common::s(&rows[0], "user_id");
    // Filters that let the engine read through an index in another order than id: ties must
    // still come out by id.
    let filters: Vec<(String, Vec<Value>)> = vec![
        (String::new(), rows.clone()),
        (
            "modified_dateutc gt 1753-01-01T00:00:00Z".to_string(),
            rows.clone(),
        ),
        (
            format!("user_id eq {user}"),
            rows.iter()
                .filter(|r| r["user_id"] == json!(user))
                .cloned()
                .collect(),
        ),
    ];
    for orderby in [
        "",
        "sequence desc",
        "sequence",
        "is_accepted, sequence desc",
        "rejected_reason desc, user_id",
        "user_id desc, date_create asc",
        "user_id",
        "date_proceeded desc",
        "date_create, is_workshop desc, sequence",
        "modified_dateutc desc",
        "id desc",
        "jobs_id",
        "sys_logical_delete, is_rejected desc",
    ] {
        for (filter, matching) in &filters {
            let want = sorted(matching, orderby);
            let mut option = String::new();
            if !orderby.is_empty() {
                let _ = write!(option, "$orderby={}&", enc(orderby));
            }
            if !filter.is_empty() {
                let _ = write!(option, "$filter={}&", enc(filter));
            }
            let one = ids_of(&list(&app.admin(), &format!("{option}$top=1000")).await);
            assert_eq!(one, want, "{option} in one page");
            let (paged, pages) = all_pages(&app, &format!("{LIST}?{option}$top=4")).await;
            assert_eq!(pages, want.len().div_ceil(4), "{option}");
            assert_eq!(paged, want, "{option} paged by 4");
        }
    }
    // Uppercase direction keywords and an explicit id in the middle.
    let want = sorted(&rows, "sequence desc, id desc");
    let got = ids_of(
        &list(
            &app.admin(),
            &format!("$orderby={}&$top=1000", enc("sequence DESC, id DESC")),
        )
        .await,
    );
    assert_eq!(got, want);
    app.stop().await;
}

#[tokio::test]
async fn the_default_order_is_by_modification_then_id() {
    let app = spawn_app().await;
    let rows = paging_rows(&app).await;
    // Touch an early row: it moves to the end of the default order.
    let admin = app.admin();
    let first = common::s(&rows[0], "id");
    assert_eq!(admin.delete(&common::row_path(&first)).await.status, 204);
    let body = list(&admin, "$top=1000").await;
    let got = ids_of(&body);
    assert_eq!(got.len(), 25);
    assert_eq!(got.last(), Some(&first));
    let expected = sorted(&rows_of(&body), "modified_dateutc asc");
    assert_eq!(got, expected);
    let stamps: Vec<String> = rows_of(&body)
        .iter()
        .map(|r| common::s(r, "modified_dateutc"))
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    app.stop().await;
}

#[tokio::test]
async fn top_defaults_to_20_allows_1000_and_refuses_more_and_skip_counts_from_the_start() {
    let app = spawn_app().await;
    let rows = paging_rows(&app).await;
    let api = app.admin();
    let all = sorted(&rows, "");
    let first = list(&api, "").await;
    assert_eq!(ids_of(&first), all[..20].to_vec());
    let next = first["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with(&app.url("/api/JobDispatchLog?")), "{next}");
    assert!(next.contains("$skip=20"), "{next}");
    let second = list(&api, path_of(&app, next).split_once('?').unwrap().1).await;
    assert_eq!(ids_of(&second), all[20..].to_vec());
    assert!(second.get("@odata.nextLink").is_none(), "{second}");

    let max = list(&api, "$top=1000").await;
    assert_eq!(ids_of(&max), all);
    assert!(max.get("@odata.nextLink").is_none());
    let res = api.get(&format!("{LIST}?$top=1001")).await;
    assert_eq!(res.status, 400, "{}", res.text);

    assert_eq!(ids_of(&list(&api, "$top=3").await), all[..3].to_vec());
    assert_eq!(
        ids_of(&list(&api, "$TOP=3&$Skip=2").await),
        all[2..5].to_vec()
    );
    assert_eq!(ids_of(&list(&api, "$skip=23").await), all[23..].to_vec());
    assert_eq!(ids_of(&list(&api, "$skip=25").await), Vec::<String>::new());
    assert_eq!(
        ids_of(&list(&api, "$skip=18446744073709551615").await),
        Vec::<String>::new()
    );
    // The last full page has nothing after it.
    let last = list(&api, "$skip=20&$top=5").await;
    assert_eq!(ids_of(&last).len(), 5);
    assert!(last.get("@odata.nextLink").is_none(), "{last}");
    let before_last = list(&api, "$skip=19&$top=5").await;
    assert!(before_last["@odata.nextLink"]
        .as_str()
        .unwrap()
        .contains("$skip=24"));
    app.stop().await;
}

#[tokio::test]
async fn top_zero_returns_no_rows_and_no_next_link_to_itself() {
    let app = spawn_app().await;
    paging_rows(&app).await;
    let api = app.admin();
    let res = api.get(&format!("{LIST}?$top=0&$count=true")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body["value"], json!([]));
    assert_eq!(body["@odata.count"], json!(25));
    // A link to the same empty page would loop a client that follows links forever.
    assert!(body.get("@odata.nextLink").is_none(), "{body}");
    assert_eq!(res.header("link"), None);
    let res = api.get(&format!("{LIST}?$top=0&$skip=3&$format=xml")).await;
    assert_eq!(common::parse_xml(&res.text).children.len(), 0);
    assert_eq!(res.header("link"), None);
    app.stop().await;
}

#[tokio::test]
async fn count_is_the_number_of_filtered_rows_not_the_page_size() {
    let app = spawn_app().await;
    let rows = paging_rows(&app).await;
    let api = app.admin();
    let rejected = rows.iter().filter(|r| flag(r, "is_rejected")).count();
    assert!(rejected > 2);
    let body = list(
        &api,
        &format!("$count=true&$top=2&$filter={}", enc("is_rejected eq true")),
    )
    .await;
    assert_eq!(body["@odata.count"], json!(rejected));
    assert_eq!(rows_of(&body).len(), 2);
    let body = list(&api, "$count=true&$skip=24").await;
    assert_eq!(body["@odata.count"], json!(25));
    assert_eq!(rows_of(&body).len(), 1);
    let body = list(
        &api,
        &format!("$count=TRUE&$filter={}", enc("sequence gt 100")),
    )
    .await;
    assert_eq!(body["@odata.count"], json!(0));
    assert_eq!(body["value"], json!([]));
    // Without $count (or with false) there is no count.
    assert!(list(&api, "$top=1").await.get("@odata.count").is_none());
    assert!(list(&api, "$count=false")
        .await
        .get("@odata.count")
        .is_none());
    // The next link keeps the filter and the count.
    let body = list(
        &api,
        &format!("$count=true&$top=2&$filter={}", enc("is_rejected eq true")),
    )
    .await;
    let next = path_of(&app, body["@odata.nextLink"].as_str().unwrap());
    let page2 = list(&api, next.split_once('?').unwrap().1).await;
    assert_eq!(page2["@odata.count"], json!(rejected));
    assert!(rows_of(&page2).iter().all(|r| flag(r, "is_rejected")));
    app.stop().await;
}

#[tokio::test]
async fn select_returns_only_the_chosen_fields_in_json_and_xml() {
    let app = spawn_app().await;
    paging_rows(&app).await;
    let api = app.admin();
    let body = list(&api, &format!("$top=3&$select={}", enc("sequence, id"))).await;
    for row in rows_of(&body) {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "sequence"], "{row}");
    }
    let body = list(
        &api,
        "$top=1000&$select=assigned_user_ids,is_rejected,user_id",
    )
    .await;
    for row in rows_of(&body) {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["user_id", "is_rejected", "assigned_user_ids"],
            "{row}"
        );
        // A rejected dispatch is no assignment; every job here has one row.
        let assignee = if row["is_rejected"] == json!(false) {
            row["user_id"].clone()
        } else {
            json!("")
        };
        assert_eq!(row["assigned_user_ids"], assignee, "{row}");
    }
    let body = list(&api, "$top=1&$select=*").await;
    let keys: Vec<&String> = body["value"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, common::JSON_FIELD_ORDER);
    for res in [
        api.get(&format!("{LIST}?$top=3&$select=sequence,id&$format=xml"))
            .await,
        api.get_xml(&format!("{LIST}?$top=3&$select=sequence,id"))
            .await,
    ] {
        assert_eq!(res.status, 200, "{}", res.text);
        let root = common::parse_xml(&res.text);
        assert_eq!(root.name, "ArrayOfjob_dispatch_log");
        assert_eq!(root.children.len(), 3);
        for child in &root.children {
            assert_eq!(child.child_names(), ["id", "sequence"], "{}", res.text);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_json_list_body_has_context_value_and_a_next_link_only_when_more_remain() {
    let app = spawn_app().await;
    paging_rows(&app).await;
    let api = app.admin();
    let res = api.get(&format!("{LIST}?$top=10&$count=true")).await;
    assert_eq!(res.status, 200);
    let body = res.json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["@odata.context", "value", "@odata.count", "@odata.nextLink"]
    );
    let context = body["@odata.context"].as_str().unwrap();
    assert!(context.starts_with("http://"), "{context}");
    assert!(
        context.ends_with("/api/$metadata#JobDispatchLog"),
        "{context}"
    );
    assert_eq!(rows_of(&body).len(), 10);
    let keys: Vec<&String> = body["value"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, common::JSON_FIELD_ORDER);
    let next = body["@odata.nextLink"].as_str().unwrap();
    assert_eq!(res.header("link"), Some(format!("<{next}>; rel=\"next\"")));

    let res = api.get(&format!("{LIST}?$top=25")).await;
    let body = res.json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["@odata.context", "value"]);
    assert!(res.header("link").is_none());

    // An empty result is a body too.
    let body = list(&api, &format!("$filter={}", enc("sequence lt 0"))).await;
    assert_eq!(body["value"], json!([]));
    assert!(body.get("@odata.nextLink").is_none());
    app.stop().await;
}

#[tokio::test]
async fn xml_lists_are_arrays_of_job_dispatch_log_with_the_same_paging() {
    let app = spawn_app().await;
    let rows = paging_rows(&app).await;
    let api = app.admin();
    let all = sorted(&rows, "sequence desc");
    let query = format!("$orderby={}&$top=10", enc("sequence desc"));
    for res in [
        api.get(&format!("{LIST}?{query}&$format=xml")).await,
        api.get_xml(&format!("{LIST}?{query}")).await,
        api.get_accept(&format!("{LIST}?{query}"), "text/xml").await,
    ] {
        assert_eq!(res.status, 200, "{}", res.text);
        assert!(res.content_type().contains("xml"), "{}", res.content_type());
        let root = common::parse_xml(&res.text);
        assert_eq!(root.name, "ArrayOfjob_dispatch_log");
        assert_eq!(
            root.attr("xmlns:i").as_deref(),
            Some("http://www.w3.org/2001/XMLSchema-instance")
        );
        let ids: Vec<String> = root.children.iter().map(|c| c.text_of("id")).collect();
        assert_eq!(ids, all[..10].to_vec());
        assert!(root.children.iter().all(|c| c.name == "job_dispatch_log"));
        let link = res
            .header("link")
            .expect("a Link header when more rows remain");
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        assert!(link.contains("$skip=10"), "{link}");
    }
    // `$format=json` beats an XML Accept.
    let res = api.get_xml(&format!("{LIST}?{query}&$format=json")).await;
    assert!(res.content_type().starts_with("application/json"));
    assert_eq!(ids_of(&res.json()), all[..10].to_vec());
    // The last XML page has no Link.
    let res = api
        .get(&format!("{LIST}?{query}&$skip=20&$format=xml"))
        .await;
    assert_eq!(common::parse_xml(&res.text).children.len(), 5);
    assert!(res.header("link").is_none());
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Malformed queries

#[tokio::test]
async fn every_malformed_query_is_a_400_naming_the_option_and_the_reason() {
    let app = spawn_app().await;
    app.admin().save(&common::new_row()).await;
    let api = app.admin();
    let deep = format!("{}sequence eq 1{}", "(".repeat(150), ")".repeat(150));
    let long = format!("rejected_reason eq '{}'", "a".repeat(8000));
    let cases: Vec<(String, &str, &str)> = vec![
        // $filter: fields, functions, literal types
        (f("foo eq 1"), "$filter", "unknown field 'foo'"),
        (f("Sequence eq 1"), "$filter", "did you mean sequence"),
        (
            f("tolower(rejected_reason) eq 'x'"),
            "$filter",
            "unknown function 'tolower'",
        ),
        (
            f("substringof('x', rejected_reason)"),
            "$filter",
            "unknown function",
        ),
        (f("sequence eq 'x'"), "$filter", "does not fit"),
        (f("sequence eq 1.5"), "$filter", "not a value"),
        (f("sequence eq 99999999999"), "$filter", "out of range"),
        (f("id eq 12"), "$filter", "does not fit"),
        (f("id eq 'not-a-guid'"), "$filter", "does not fit"),
        (f("id eq guid'nope'"), "$filter", "not a GUID"),
        (f("jobs_id eq true"), "$filter", "does not fit"),
        (f("is_accepted eq 1"), "$filter", "does not fit"),
        (f("is_accepted eq 'true'"), "$filter", "does not fit"),
        (f("is_accepted gt false"), "$filter", "use eq or ne"),
        (f("date_create eq true"), "$filter", "does not fit"),
        (f("date_create eq 'yesterday'"), "$filter", "does not fit"),
        (f("date_create gt 2026-02-30"), "$filter", "not a value"),
        (f("date_create gt 1600-01-01"), "$filter", "1753"),
        (
            f("date_create gt datetime'2026-13-01'"),
            "$filter",
            "datetime'2026-13-01'",
        ),
        (
            f("date_create gt x'00'"),
            "$filter",
            "unknown literal prefix",
        ),
        (f("rejected_reason eq 5"), "$filter", "does not fit"),
        (
            f("rejected_reason eq abc"),
            "$filter",
            "write text in single quotes",
        ),
        (f("rejected_reason eq \"abc\""), "$filter", "single quotes"),
        (f("rejected_reason eq 'open"), "$filter", "never closed"),
        (
            f("rejected_reason eq null"),
            "$filter",
            "null is not supported",
        ),
        (
            f("null eq rejected_reason"),
            "$filter",
            "null is not supported",
        ),
        (
            f("contains(rejected_reason, null)"),
            "$filter",
            "null is not supported",
        ),
        (f("contains(sequence, '1')"), "$filter", "text fields only"),
        (
            f("contains(rejected_reason, 1)"),
            "$filter",
            "must be a quoted text",
        ),
        (f("contains(rejected_reason)"), "$filter", "expected ','"),
        (
            f("contains(rejected_reason, 'a') gt true"),
            "$filter",
            "use eq or ne",
        ),
        (f("assigned_user_ids eq 'x'"), "$filter", "computed"),
        (f("contains(assigned_user_ids, 'x')"), "$filter", "computed"),
        (f("sequence eq sequence"), "$filter", "comparing two fields"),
        (f("1 eq 1"), "$filter", "must be a field"),
        (f("sequence in ()"), "$filter", "empty"),
        (f("sequence in 1, 2"), "$filter", "expected '('"),
        (f("sequence in (1, 'a')"), "$filter", "does not fit"),
        (f("sequence like 1"), "$filter", "not a supported operator"),
        // structure
        (f("(sequence eq 1"), "$filter", "missing ')'"),
        (
            f("((sequence eq 1) or (is_accepted)"),
            "$filter",
            "missing ')'",
        ),
        (f("sequence eq 1)"), "$filter", "no matching '('"),
        (f("(sequence eq 1))"), "$filter", "no matching '('"),
        (f("()"), "$filter", "expected"),
        (
            f("sequence eq 1 sequence eq 2"),
            "$filter",
            "join conditions",
        ),
        (f("sequence eq 1 and"), "$filter", "expected a condition"),
        (f("and sequence eq 1"), "$filter", "expected a condition"),
        (f("sequence eq"), "$filter", "expected a value"),
        (f("not"), "$filter", "expected a condition"),
        (f("sequence eq 1;"), "$filter", "unexpected character ';'"),
        (f(""), "$filter", "empty"),
        (f("   "), "$filter", "empty"),
        (f(&deep), "$filter", "nested more than 100"),
        (f(&long), "$filter", "at most 8000"),
        (
            format!(
                "$filter={}",
                enc("date_create gt 2026-01-11T21:02:31+02:00").replace("%2B", "+")
            ),
            "$filter",
            "%2B",
        ),
        ("$filter=%FF".into(), "$filter", "percent-encoded"),
        ("$filter=%2".into(), "$filter", "percent-encoded"),
        // options
        ("$bogus=1".into(), "$bogus", "not a supported query option"),
        (
            "$expand=x".into(),
            "$expand",
            "not a supported query option",
        ),
        (
            "$inlinecount=allpages".into(),
            "$inlinecount",
            "$count=true",
        ),
        ("$top=1&$top=2".into(), "$top", "more than once"),
        ("$top=1&$TOP=1".into(), "$top", "more than once"),
        (
            format!("{}&{}", f("sequence eq 1"), f("sequence eq 2")),
            "$filter",
            "more than once",
        ),
        ("$skip=1&%24skip=2".into(), "$skip", "more than once"),
        ("$top=-1".into(), "$top", "must not be negative"),
        ("$top=abc".into(), "$top", "non-negative integer"),
        ("$top=1e3".into(), "$top", "non-negative integer"),
        ("$top=".into(), "$top", "empty"),
        ("$top".into(), "$top", "empty"),
        ("$top=1001".into(), "$top", "at most 1000"),
        (
            "$top=99999999999999999999999".into(),
            "$top",
            "at most 1000",
        ),
        ("$top=%2B5".into(), "$top", "non-negative integer"),
        ("$top=%205".into(), "$top", "non-negative integer"),
        ("$skip=-5".into(), "$skip", "must not be negative"),
        ("$skip=1.5".into(), "$skip", "non-negative integer"),
        ("$skip=".into(), "$skip", "empty"),
        ("$skip=99999999999999999999999".into(), "$skip", "too large"),
        ("$count=yes".into(), "$count", "true or false"),
        ("$count=1".into(), "$count", "true or false"),
        ("$count=".into(), "$count", "true or false"),
        ("$select=foo".into(), "$select", "unknown field 'foo'"),
        ("$select=ID".into(), "$select", "did you mean id"),
        ("$select=id,,sequence".into(), "$select", "extra comma"),
        ("$select=id,".into(), "$select", "extra comma"),
        ("$select=".into(), "$select", "empty"),
        (
            "$select=id%20sequence".into(),
            "$select",
            "unknown field 'id sequence'",
        ),
        ("$orderby=foo".into(), "$orderby", "unknown field 'foo'"),
        (
            "$orderby=Sequence".into(),
            "$orderby",
            "did you mean sequence",
        ),
        (
            "$orderby=sequence%20sideways".into(),
            "$orderby",
            "expected asc or desc",
        ),
        (
            "$orderby=sequence%20asc%20id".into(),
            "$orderby",
            "separate the fields",
        ),
        (
            "$orderby=sequence,sequence%20desc".into(),
            "$orderby",
            "more than once",
        ),
        ("$orderby=assigned_user_ids".into(), "$orderby", "computed"),
        ("$orderby=".into(), "$orderby", "empty"),
        ("$orderby=,id".into(), "$orderby", "extra comma"),
        ("$format=csv".into(), "$format", "json or xml"),
    ];
    for (query, option, why) in &cases {
        assert_bad_query(&api, query, option, why).await;
    }
    // The position is part of the detail where one place is at fault.
    let res = api
        .get(&format!("{LIST}?{}", f("sequence eq 1 and foo eq 2")))
        .await;
    let detail = res.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.starts_with("$filter at position 18:"), "{detail}");
    // In XML too.
    let res = api.get_xml(&format!("{LIST}?$top=-1")).await;
    assert_eq!(res.status, 400);
    assert!(
        res.content_type().starts_with("application/xml"),
        "{}",
        res.content_type()
    );
    let problem = common::parse_xml(&res.text);
    assert_eq!(problem.name, "Error");
    assert!(problem.text_of("detail").contains("$top"), "{}", res.text);
    // Parameters without `$` are not OData options and are ignored.
    assert_eq!(rows_of(&list(&api, "foo=bar&top=x").await).len(), 1);
    app.stop().await;
}

/// `$filter=<encoded>`.
fn f(filter: &str) -> String {
    format!("$filter={}", enc(filter))
}

/// Random edits of valid queries and random token soup: every answer is a 200 list or a 400
/// problem, never a 5xx, and the server keeps answering.
#[tokio::test]
async fn random_and_mutated_queries_are_answered_with_200_or_400_never_5xx() {
    let app = spawn_app().await;
    let admin = app.admin();
    let mut ids = Vec::new();
    for k in 0..5 {
        let mut body = common::new_row();
        body["sequence"] = json!(k + 1);
        if k % 2 == 0 {
            body["is_rejected"] = json!(true);
            body["rejected_reason"] = json!(format!("reason {k} 50%_'"));
        }
        ids.push(common::s(&admin.save(&body).await, "id"));
    }
    // The classic injection, on a table where no reason is that text: nothing.
    assert_eq!(
        filtered_ids(&admin, "rejected_reason eq 'x'' or 1=1 --'").await,
        Vec::<String>::new()
    );
    let seeds: Vec<String> = vec![
        f("sequence eq 1 and is_rejected"),
        f(&format!("id eq {} or id eq guid'{}'", ids[0], ids[1])),
        f("date_create gt 2021-03-04T05:06:07.1234567+02:00 and not is_workshop"),
        f("(sequence in (1, 2, 3) or contains(rejected_reason, '50%')) and user_id ne 00000000-0000-0000-0000-000000000001"),
        f("startswith(rejected_reason, 'it''s') eq false"),
        f("modified_dateutc ge datetime'2020-01-01T00:00:00Z'"),
        format!("$orderby={}&$top=3&$skip=1&$count=true", enc("sequence desc, user_id")),
        "$select=id,sequence,assigned_user_ids&$format=xml".into(),
        "$top=1000&$count=false".into(),
    ];
    let atoms = [
        "(",
        ")",
        "'",
        "''",
        ",",
        " ",
        "%",
        "%2",
        "%FF",
        "%27",
        "%28",
        "%29",
        "%20",
        "&",
        "=",
        "$",
        "+",
        "-",
        ":",
        ".",
        "eq",
        " ne ",
        " gt ",
        " and ",
        " or ",
        "not ",
        " in ",
        "null",
        "true",
        "false",
        "contains(",
        "guid'",
        "datetime'",
        "id",
        "sequence",
        "rejected_reason",
        "assigned_user_ids",
        "date_create",
        "is_accepted",
        "$filter=",
        "$top=",
        "$skip=",
        "$orderby=",
        "$select=",
        "$count=",
        "$format=",
        "$bogus=",
        "2026-01-11T21:02:31Z",
        "9999-12-31T23:59:59.9999999Z",
        "1753-01-01T00:00:00Z",
        "00000000-0000-0000-0000-000000000000",
        "99999999999999999999",
        "-2147483649",
        "2147483647",
        "\u{e9}",
        "\u{1F600}",
        "\\",
        "\"",
        ";",
        "--",
        "/*",
        "*",
    ];
    let mut rng = StdRng::seed_from_u64(0x5EED_0D47);
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for round in 0..400 {
        let mut q: Vec<char> = if round % 4 == 3 {
            // Token soup.
            let n = rng.random_range(1..12);
            (0..n)
                .map(|_| atoms[rng.random_range(0..atoms.len())])
                .collect::<String>()
                .chars()
                .collect()
        } else {
            seeds[rng.random_range(0..seeds.len())].chars().collect()
        };
        for _ in 0..rng.random_range(1..5) {
            let at = rng.random_range(0..=q.len());
            match rng.random_range(0..4) {
                0 if at < q.len() => {
                    q.remove(at);
                }
                1 if at < q.len() => {
                    let atom = atoms[rng.random_range(0..atoms.len())];
                    q.splice(at..at + 1, atom.chars());
                }
                2 => {
                    let atom = atoms[rng.random_range(0..atoms.len())];
                    q.splice(at..at, atom.chars());
                }
                _ => {
                    // Duplicate a slice (repeats options, nests parentheses, lengthens lists).
                    let end = rng.random_range(at..=q.len());
                    let copy: Vec<char> = q[at..end].to_vec();
                    q.splice(at..at, copy);
                }
            }
        }
        let raw: String = q.into_iter().collect();
        // A raw '#' would end the URL's query; everything else goes as written.
        let query = raw.replace('#', "%23");
        let res = admin.get(&format!("{LIST}?{query}")).await;
        *statuses.entry(res.status).or_default() += 1;
        match res.status {
            200 => {
                if !res.content_type().contains("xml") {
                    assert!(res.json()["value"].is_array(), "{query}: {}", res.text);
                }
            }
            400 => {
                if res.content_type().starts_with("application/json") {
                    let detail = res.json()["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    assert!(!detail.is_empty(), "{query}: {}", res.text);
                } else {
                    assert!(res.text.contains("<detail>"), "{query}: {}", res.text);
                }
            }
            other => panic!("{query}: {other} {}", res.text),
        }
    }
    // The mutations must exercise both outcomes, or the test proves little.
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 20,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&400).copied().unwrap_or(0) > 100,
        "{statuses:?}"
    );
    assert_eq!(rows_of(&list(&admin, "$top=1000").await).len(), 5);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Sync the original's way (SPEC §7.1)

#[tokio::test]
async fn sync_by_modified_dateutc_collects_every_change_once_while_rows_are_written_between_pages()
{
    let app = spawn_app().await;
    let admin = app.admin();
    let mut written: Vec<String> = Vec::new();
    for _ in 0..5 {
        written.push(common::s(&admin.save(&common::new_row()).await, "id"));
    }
    let mut since = "1753-01-01T00:00:00Z".to_string();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut local: HashMap<String, Value> = HashMap::new();
    let mut last_stamp = String::new();
    let mut rounds_of_writes = 8;
    let mut pages = 0;
    loop {
        let filter = format!("modified_dateutc gt {since}");
        let body = list(
            &admin,
            &format!("$filter={}&$orderby=modified_dateutc&$top=3", enc(&filter)),
        )
        .await;
        pages += 1;
        assert!(pages < 200, "sync does not end");
        let rows = rows_of(&body);
        assert!(rows.len() <= 3);
        for row in &rows {
            let id = common::s(row, "id");
            let stamp = common::s(row, "modified_dateutc");
            assert!(stamp > last_stamp, "{stamp} after {last_stamp}");
            last_stamp = stamp.clone();
            assert!(seen.insert((id.clone(), stamp)), "{row} seen twice");
            local.insert(id, row.clone());
        }
        if let Some(last) = rows.last() {
            since = common::s(last, "modified_dateutc");
        }
        if rounds_of_writes > 0 {
            rounds_of_writes -= 1;
            // New rows, an update of a row already pulled and a logical delete.
            for _ in 0..2 {
                written.push(common::s(&admin.save(&common::new_row()).await, "id"));
            }
            let id = &written[rounds_of_writes % written.len()];
            let path = common::row_path(id);
            let mut row = admin.get(&path).await.json();
            row["is_workshop"] = json!(!flag(&row, "is_workshop"));
            admin.save(&row).await;
            if rounds_of_writes % 3 == 0 {
                let id = &written[(rounds_of_writes * 5) % written.len()];
                assert_eq!(admin.delete(&common::row_path(id)).await.status, 204);
            }
        } else if rows.is_empty() {
            break;
        }
    }
    // The client's copy is the server's table, row for row.
    let server = list(&admin, "$top=1000").await;
    let server: HashMap<String, Value> = rows_of(&server)
        .into_iter()
        .map(|r| (common::s(&r, "id"), r))
        .collect();
    assert_eq!(server.len(), written.len());
    assert_eq!(local.len(), server.len());
    for (id, row) in &server {
        assert_eq!(local.get(id), Some(row), "{id}");
    }
    assert!(local.values().any(|r| flag(r, "sys_logical_delete")));
    app.stop().await;
}
