use rusqlite::types::Value as SqliteValue;
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::*;
use crate::domain::Timestamp;

fn filter(text: &str) -> Filter {
    Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn filter_err(text: &str) -> QueryError {
    match Filter::parse(text) {
        Ok(f) => panic!("{text} was accepted as {f:?}"),
        Err(e) => e,
    }
}

fn query(raw: &str) -> ListQuery {
    ListQuery::parse(Some(raw)).unwrap_or_else(|e| panic!("{raw}: {e}"))
}

fn query_err(raw: &str) -> QueryError {
    match ListQuery::parse(Some(raw)) {
        Ok(q) => panic!("{raw} was accepted as {q:?}"),
        Err(e) => e,
    }
}

fn sqlite(text: &str) -> SqlFragment {
    filter_sql(&filter(text), Dialect::Sqlite, 1)
}

fn postgres(text: &str) -> SqlFragment {
    filter_sql(&filter(text), Dialect::Postgres, 1)
}

const G: &str = "5f1e9a72-a0e8-4276-9cd5-3b00416d5f59";

fn g() -> Uuid {
    Uuid::parse_str(G).unwrap()
}

fn cmp(field: Field, op: CompareOp, value: Value) -> Filter {
    Filter::Compare { field, op, value }
}

// ---- the query string as a whole ----

#[test]
fn no_query_gives_the_defaults() {
    for raw in [None, Some(""), Some("&&"), Some("page=3&foo")] {
        let q = ListQuery::parse(raw).unwrap();
        assert_eq!(q, ListQuery::default(), "{raw:?}");
        assert_eq!(q.top, 20);
        assert_eq!(q.skip, 0);
        assert!(!q.count);
        assert_eq!(q.ordering(), vec![(Field::ModifiedDateutc, Direction::Asc)]);
    }
}

#[test]
fn every_option_is_read() {
    let q = query(
        "$filter=is_accepted&$orderby=date_create desc,sequence&$top=5&$skip=10\
         &$count=true&$select=sequence,id,id,assigned_user_ids&other=1",
    );
    assert_eq!(q.filter, Some(Filter::IsTrue(Field::IsAccepted)));
    assert_eq!(
        q.order_by,
        vec![
            (Field::DateCreate, Direction::Desc),
            (Field::Sequence, Direction::Asc)
        ]
    );
    assert_eq!(q.top, 5);
    assert_eq!(q.skip, 10);
    assert!(q.count);
    assert_eq!(
        q.select,
        Some(vec![Field::Id, Field::Sequence, Field::AssignedUserIds])
    );
    assert_eq!(
        q.ordering(),
        vec![
            (Field::DateCreate, Direction::Desc),
            (Field::Sequence, Direction::Asc),
            (Field::Id, Direction::Asc)
        ]
    );
}

#[test]
fn values_are_percent_decoded_and_plus_is_a_space() {
    let q = query("%24filter=rejected_reason+eq+%27a%2Bb%20c%26d%27");
    assert_eq!(
        q.filter,
        Some(cmp(
            Field::RejectedReason,
            CompareOp::Eq,
            Value::Text("a+b c&d".into())
        ))
    );
    let q = query("$filter=date_create%20gt%202026-01-11T23:02:31%2B02:00");
    assert_eq!(
        q.filter,
        Some(cmp(
            Field::DateCreate,
            CompareOp::Gt,
            Value::DateTime(Timestamp::parse("2026-01-11T21:02:31Z").unwrap())
        ))
    );
}

#[test]
fn an_ordering_ends_at_its_first_unique_field() {
    let q = query("$orderby=id desc,sequence");
    assert_eq!(q.ordering(), vec![(Field::Id, Direction::Desc)]);
    assert_eq!(order_sql(&q.ordering()), "id DESC");
    let q = query("$orderby=sequence desc,modified_dateutc desc,id");
    assert_eq!(
        q.ordering(),
        vec![
            (Field::Sequence, Direction::Desc),
            (Field::ModifiedDateutc, Direction::Desc)
        ]
    );
    let q = query("$orderby=sequence,date_create desc");
    assert_eq!(
        order_sql(&q.ordering()),
        "sequence ASC, date_create DESC, id ASC"
    );
    assert_eq!(
        order_sql(&ListQuery::default().ordering()),
        "modified_dateutc ASC"
    );
}

#[test]
fn postgres_orders_text_byte_wise_like_sqlite() {
    let q = query("$orderby=rejected_reason DESC");
    assert_eq!(
        order_sql_for(&q.ordering(), Dialect::Postgres),
        "rejected_reason COLLATE \"C\" DESC, id ASC"
    );
    assert_eq!(order_sql(&q.ordering()), "rejected_reason DESC, id ASC");
}

#[test]
fn option_names_ignore_case_and_format_is_left_to_negotiation() {
    let q = query("$TOP=3&$Count=TRUE&$format=xml&$format=json");
    assert_eq!(q.top, 3);
    assert!(q.count);
}

#[test]
fn unknown_and_repeated_options_are_refused() {
    let e = query_err("$expand=x");
    assert_eq!(e.option, "$expand");
    assert!(e.message.contains("not a supported query option"), "{e}");
    let e = query_err("$inlinecount=allpages");
    assert!(e.message.contains("$count=true"), "{e}");
    let e = query_err("$top=1&$top=2");
    assert_eq!(e.option, "$top");
    assert!(e.message.contains("more than once"), "{e}");
    let e = query_err("$top=1&$Top=2");
    assert!(e.message.contains("more than once"), "{e}");
    let e = query_err("$=1");
    assert_eq!(e.option, "$");
}

#[test]
fn broken_percent_encoding_is_refused_for_options_only() {
    assert_eq!(query("x=%zz"), ListQuery::default());
    let e = query_err("$filter=%zz");
    assert_eq!(e.option, "$filter");
    assert!(e.message.contains("percent-encoded"), "{e}");
    let e = query_err("$filter=%FF");
    assert!(e.message.contains("UTF-8"), "{e}");
}

#[test]
fn top_and_skip_must_be_small_non_negative_integers() {
    assert_eq!(query("$top=0").top, 0);
    assert_eq!(query("$top=1000").top, 1000);
    assert_eq!(query("$skip=18446744073709551615").skip, u64::MAX);
    for (raw, expected) in [
        ("$top=1001", "at most 1000"),
        ("$top=99999999999999999999999", "at most 1000"),
        ("$top=-1", "must not be negative"),
        ("$top=abc", "non-negative integer"),
        ("$top=1.5", "non-negative integer"),
        ("$top=+5", "non-negative integer"),
        ("$top=", "is empty"),
        ("$top", "is empty"),
        ("$skip=-5", "must not be negative"),
        ("$skip=ten", "non-negative integer"),
        ("$skip=18446744073709551616", "too large"),
        ("$skip=", "is empty"),
        ("$count=yes", "true or false"),
        ("$count=", "true or false"),
    ] {
        let e = query_err(raw);
        assert!(e.message.contains(expected), "{raw}: {e}");
    }
    assert_eq!(
        query_err("$top=12x").to_string(),
        "$top at position 2: must be a non-negative integer, found '12x'"
    );
}

#[test]
fn select_lists_fields_once_in_wire_order() {
    assert_eq!(query("$select=*").select, None);
    assert_eq!(query("$select=id,*").select, None);
    assert_eq!(
        query("$select= sequence , jobs_id ,sequence").select,
        Some(vec![Field::JobsId, Field::Sequence])
    );
    let e = query_err("$select=id,,jobs_id");
    assert_eq!((e.option.as_str(), e.position), ("$select", Some(3)));
    let e = query_err("$select=id,nope");
    assert_eq!(e.position, Some(3));
    assert!(e.message.contains("unknown field 'nope'"), "{e}");
    let e = query_err("$select=ID");
    assert!(e.message.contains("did you mean id"), "{e}");
    assert!(query_err("$select=").message.contains("is empty"));
    assert!(query_err("$select=id,").message.contains("extra comma"));
}

#[test]
fn orderby_mistakes_are_pointed_at() {
    for (raw, pos, expected) in [
        ("$orderby=", None, "is empty"),
        ("$orderby=nope", Some(0), "unknown field 'nope'"),
        ("$orderby=id,nope desc", Some(3), "unknown field 'nope'"),
        ("$orderby=assigned_user_ids", Some(0), "cannot be sorted on"),
        ("$orderby=sequence,sequence desc", Some(9), "more than once"),
        ("$orderby=sequence up", Some(9), "expected asc or desc"),
        ("$orderby=sequence asc id", Some(13), "separate the fields"),
        ("$orderby=sequence,", Some(9), "extra comma"),
    ] {
        let e = query_err(raw);
        assert_eq!(e.option, "$orderby", "{raw}");
        assert_eq!(e.position, pos, "{raw}: {e}");
        assert!(e.message.contains(expected), "{raw}: {e}");
    }
    // Only what can be sorted on is offered.
    assert!(!query_err("$orderby=nope")
        .message
        .contains("assigned_user_ids"));
    assert!(query_err("$select=nope")
        .message
        .contains("assigned_user_ids"));
    assert_eq!(
        query("$orderby=sequence DESC, is_workshop Asc").order_by,
        vec![
            (Field::Sequence, Direction::Desc),
            (Field::IsWorkshop, Direction::Asc)
        ]
    );
}

#[test]
fn errors_read_as_sentences_with_their_position() {
    let e = query_err("$filter=rejected_reason eq ");
    assert_eq!(
        e.to_string(),
        "$filter at position 19: expected a value after 'eq'"
    );
    let e = query_err("$filter=");
    assert_eq!(e.position, None);
    assert!(e.to_string().starts_with("$filter: is empty"), "{e}");
}

// ---- $filter: what is understood ----

#[test]
fn comparisons_of_every_type() {
    let t = Timestamp::parse("2026-01-11T21:02:31.7932294Z").unwrap();
    for (text, expected) in [
        (
            format!("id eq {G}"),
            cmp(Field::Id, CompareOp::Eq, Value::Guid(g())),
        ),
        (
            format!("jobs_id ne guid'{G}'"),
            cmp(Field::JobsId, CompareOp::Ne, Value::Guid(g())),
        ),
        (
            format!("user_id eq '{G}'"),
            cmp(Field::UserId, CompareOp::Eq, Value::Guid(g())),
        ),
        (
            "date_create gt 2026-01-11T21:02:31.7932294Z".into(),
            cmp(Field::DateCreate, CompareOp::Gt, Value::DateTime(t)),
        ),
        (
            "date_proceeded ge datetime'2026-01-11T21:02:31.7932294'".into(),
            cmp(Field::DateProceeded, CompareOp::Ge, Value::DateTime(t)),
        ),
        (
            "modified_dateutc lt datetimeoffset'2026-01-11T21:02:31.7932294+00:00'".into(),
            cmp(Field::ModifiedDateutc, CompareOp::Lt, Value::DateTime(t)),
        ),
        (
            "modified_dateutc le '2026-01-11T21:02:31.7932294Z'".into(),
            cmp(Field::ModifiedDateutc, CompareOp::Le, Value::DateTime(t)),
        ),
        (
            "date_create eq 2026-01-11".into(),
            cmp(
                Field::DateCreate,
                CompareOp::Eq,
                Value::DateTime(Timestamp::parse("2026-01-11T00:00:00Z").unwrap()),
            ),
        ),
        (
            "is_accepted eq true".into(),
            cmp(Field::IsAccepted, CompareOp::Eq, Value::Bool(true)),
        ),
        (
            "is_rejected ne FALSE".into(),
            cmp(Field::IsRejected, CompareOp::Ne, Value::Bool(false)),
        ),
        (
            "rejected_reason eq 'it''s late'".into(),
            cmp(
                Field::RejectedReason,
                CompareOp::Eq,
                Value::Text("it's late".into()),
            ),
        ),
        (
            "rejected_reason eq ''".into(),
            cmp(Field::RejectedReason, CompareOp::Eq, Value::Text("".into())),
        ),
        (
            "sequence ge -2147483648".into(),
            cmp(Field::Sequence, CompareOp::Ge, Value::Int(i32::MIN)),
        ),
        (
            "sequence le 2147483647".into(),
            cmp(Field::Sequence, CompareOp::Le, Value::Int(i32::MAX)),
        ),
    ] {
        assert_eq!(filter(&text), expected, "{text}");
    }
}

#[test]
fn a_value_may_come_first() {
    assert_eq!(
        filter("3 lt sequence"),
        cmp(Field::Sequence, CompareOp::Gt, Value::Int(3))
    );
    assert_eq!(
        filter("2026-01-01 ge date_create"),
        cmp(
            Field::DateCreate,
            CompareOp::Le,
            Value::DateTime(Timestamp::parse("2026-01-01").unwrap())
        )
    );
    assert_eq!(
        filter("true eq is_workshop"),
        cmp(Field::IsWorkshop, CompareOp::Eq, Value::Bool(true))
    );
}

#[test]
fn not_binds_tighter_than_and_tighter_than_or() {
    let a = || Filter::IsTrue(Field::IsAccepted);
    let r = || Filter::IsTrue(Field::IsRejected);
    let w = || Filter::IsTrue(Field::IsWorkshop);
    assert_eq!(
        filter("is_accepted or is_rejected and is_workshop"),
        Filter::Or(vec![a(), Filter::And(vec![r(), w()])])
    );
    assert_eq!(
        filter("(is_accepted or is_rejected) and is_workshop"),
        Filter::And(vec![Filter::Or(vec![a(), r()]), w()])
    );
    assert_eq!(
        filter("not is_accepted and is_rejected"),
        Filter::And(vec![Filter::Not(Box::new(a())), r()])
    );
    assert_eq!(
        filter("not sequence eq 1"),
        Filter::Not(Box::new(cmp(Field::Sequence, CompareOp::Eq, Value::Int(1))))
    );
    assert_eq!(filter("not not is_accepted"), a());
    assert_eq!(
        filter("is_accepted and is_rejected and is_workshop or is_accepted"),
        Filter::Or(vec![Filter::And(vec![a(), r(), w()]), a()])
    );
}

#[test]
fn keywords_ignore_case_and_spacing_is_free() {
    assert_eq!(
        filter("  ( sequence EQ 1 )AND(NOT is_accepted)Or is_workshop  "),
        filter("(sequence eq 1) and (not is_accepted) or is_workshop")
    );
    assert_eq!(
        filter("is_accepted eq true and is_rejected eq false"),
        Filter::And(vec![
            cmp(Field::IsAccepted, CompareOp::Eq, Value::Bool(true)),
            cmp(Field::IsRejected, CompareOp::Eq, Value::Bool(false)),
        ])
    );
}

#[test]
fn in_lists_and_constants() {
    assert_eq!(
        filter("sequence in (1, 2,3)"),
        Filter::In {
            field: Field::Sequence,
            values: vec![Value::Int(1), Value::Int(2), Value::Int(3)]
        }
    );
    assert_eq!(
        filter(&format!("user_id IN ({G})")),
        Filter::In {
            field: Field::UserId,
            values: vec![Value::Guid(g())]
        }
    );
    assert_eq!(filter("true"), Filter::Const(true));
    assert_eq!(
        filter("false or is_accepted"),
        Filter::Or(vec![
            Filter::Const(false),
            Filter::IsTrue(Field::IsAccepted)
        ])
    );
}

#[test]
fn text_functions_on_rejected_reason() {
    let text = |function, text: &str| Filter::Text {
        function,
        field: Field::RejectedReason,
        text: text.into(),
    };
    assert_eq!(
        filter("contains(rejected_reason,'50%')"),
        text(TextFunction::Contains, "50%")
    );
    assert_eq!(
        filter("StartsWith( rejected_reason , 'no' )"),
        text(TextFunction::StartsWith, "no")
    );
    assert_eq!(
        filter("endswith(rejected_reason,'x') eq true"),
        text(TextFunction::EndsWith, "x")
    );
    assert_eq!(
        filter("endswith(rejected_reason,'x') eq false"),
        Filter::Not(Box::new(text(TextFunction::EndsWith, "x")))
    );
    assert_eq!(
        filter("not contains(rejected_reason,'x') and is_rejected"),
        Filter::And(vec![
            Filter::Not(Box::new(text(TextFunction::Contains, "x"))),
            Filter::IsTrue(Field::IsRejected)
        ])
    );
}

// ---- $filter: what is refused, and how it is explained ----

#[test]
fn malformed_filters_are_explained_at_the_right_place() {
    for (text, pos, expected) in [
        ("   ", None, "is empty"),
        (
            "(is_accepted",
            Some(12),
            "missing ')' to close the '(' at position 0",
        ),
        ("((is_accepted)", Some(14), "missing ')'"),
        ("is_accepted)", Some(11), "no matching '('"),
        ("(is_accepted is_rejected)", Some(13), "expected ')'"),
        ("()", Some(1), "expected a value"),
        (
            "is_accepted and",
            Some(15),
            "expected a condition after 'and'",
        ),
        (
            "or is_accepted",
            Some(0),
            "expected a condition before 'or'",
        ),
        (
            "is_accepted and and is_rejected",
            Some(16),
            "expected a condition before 'and'",
        ),
        (
            "rejected_reason eq abc",
            Some(19),
            "write text in single quotes ('abc')",
        ),
        (
            "sequence in (1, two)",
            Some(16),
            "expected a value, found 'two'",
        ),
        (
            "rejected_reason eq trim(rejected_reason)",
            Some(19),
            "unknown function 'trim'",
        ),
        ("not", Some(3), "expected a condition after 'not'"),
        (
            "is_accepted is_rejected",
            Some(12),
            "after a complete condition",
        ),
        ("nope eq 1", Some(0), "unknown field 'nope'"),
        ("Sequence eq 1", Some(0), "did you mean sequence"),
        ("sequence eq", Some(11), "expected a value after 'eq'"),
        ("sequence", Some(8), "expected an operator"),
        (
            "sequence add 1",
            Some(9),
            "'add' is not a supported operator",
        ),
        ("sequence eq sequence", Some(12), "comparing two fields"),
        ("1 eq 1", Some(0), "must be a field"),
        (
            "length(rejected_reason) eq 1",
            Some(0),
            "unknown function 'length'",
        ),
        ("foo(x)", Some(0), "unknown function 'foo'"),
        ("assigned_user_ids eq 'x'", Some(0), "computed"),
        ("sequence in ()", Some(13), "is empty"),
        ("sequence in 1", Some(12), "expected '('"),
        ("sequence in (1 2)", Some(15), "expected ',' or ')'"),
        ("sequence in (1,", Some(15), "expected a value after ','"),
        ("1 in (sequence)", Some(0), "left side of 'in'"),
        ("contains(sequence,'1')", Some(9), "text fields only"),
        ("contains('x',rejected_reason)", Some(9), "must be a field"),
        ("contains(rejected_reason)", Some(24), "expected ','"),
        ("contains(rejected_reason,", Some(25), "expected a value"),
        (
            "contains(rejected_reason,1)",
            Some(25),
            "must be a quoted text",
        ),
        (
            "contains(rejected_reason,'a','b')",
            Some(28),
            "expected ')'",
        ),
        (
            "contains(rejected_reason,'a') gt true",
            Some(30),
            "use eq or ne",
        ),
        (
            "contains(rejected_reason,'a') eq 1",
            Some(33),
            "true or false",
        ),
        ("is_accepted gt false", Some(0), "use eq or ne"),
        ("rejected_reason eq 'open", Some(19), "never closed"),
        ("rejected_reason eq \"x\"", Some(19), "single quotes"),
    ] {
        let e = filter_err(text);
        assert_eq!(e.option, "$filter", "{text}");
        assert_eq!(e.position, pos, "{text}: {e}");
        assert!(e.message.contains(expected), "{text}: {e}");
    }
}

#[test]
fn literals_must_fit_the_field() {
    for (text, expected) in [
        ("jobs_id eq 'abc'", "jobs_id is a GUID"),
        ("jobs_id eq 12", "jobs_id is a GUID"),
        ("id eq true", "id is a GUID"),
        ("date_create gt 'yesterday'", "date_create is a date-time"),
        ("date_create gt 2026", "the number 2026 does not fit"),
        ("date_create gt 1700-01-01", "1753 to 9999"),
        ("date_create gt '1700-01-01'", "1753 to 9999"),
        ("date_create gt datetime'1700-01-01'", "1753 to 9999"),
        ("date_create gt datetime'soon'", "not an ISO 8601"),
        ("is_accepted eq 1", "is_accepted is true or false"),
        ("is_accepted eq 'true'", "is_accepted is true or false"),
        ("rejected_reason eq 5", "rejected_reason is a quoted text"),
        (
            "rejected_reason eq 5f1e9a72-a0e8-4276-9cd5-3b00416d5f59",
            "rejected_reason is a quoted text",
        ),
        ("sequence eq '1'", "sequence is an integer"),
        ("sequence eq 2147483648", "out of range for sequence"),
        ("sequence eq -2147483649", "out of range for sequence"),
        ("sequence eq null", "null is not supported"),
        ("rejected_reason eq NULL", "null is not supported"),
        ("sequence in (1, 'x')", "sequence is an integer"),
        ("jobs_id eq guid'5f1e9a72'", "not a GUID"),
    ] {
        let e = filter_err(text);
        assert!(e.message.contains(expected), "{text}: {e}");
        assert!(e.position.is_some(), "{text}");
    }
}

#[test]
fn huge_and_deep_inputs_are_refused_without_recursing() {
    let deep_parens = format!("{}is_accepted{}", "(".repeat(101), ")".repeat(101));
    let e = filter_err(&deep_parens);
    assert_eq!(e.position, Some(100));
    assert!(e.message.contains("100 levels"), "{e}");
    let ok_parens = format!("{}is_accepted{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(filter(&ok_parens), Filter::IsTrue(Field::IsAccepted));

    let deep_nots = format!("{}is_accepted", "not ".repeat(101));
    assert!(filter_err(&deep_nots).message.contains("100 levels"));

    let mixed = "not (".repeat(60) + "is_accepted" + &")".repeat(60);
    assert!(filter_err(&mixed).message.contains("100 levels"));

    let long = format!("rejected_reason eq '{}'", "x".repeat(8000));
    let e = filter_err(&long);
    assert_eq!(e.position, None);
    assert!(e.message.contains("at most 8000"), "{e}");

    // Unclosed parentheses up to the length limit: refused at the depth limit, quickly.
    let e = filter_err(&"(".repeat(8000));
    assert!(e.message.contains("100 levels"), "{e}");

    // A long flat chain is fine: and/or lists do not nest.
    let chain = vec!["is_accepted"; 500].join(" or ");
    assert!(chain.len() <= MAX_FILTER_CHARS);
    match filter(&chain) {
        Filter::Or(items) => assert_eq!(items.len(), 500),
        other => panic!("{other:?}"),
    }
}

#[test]
fn injection_looking_text_is_one_bound_value() {
    let sql = sqlite("rejected_reason eq 'x'' or 1=1 --'");
    assert_eq!(sql.sql, "rejected_reason = ?1");
    assert_eq!(sql.params, vec![SqlValue::Text("x' or 1=1 --".into())]);

    let sql =
        sqlite("contains(rejected_reason,'%'' OR ''1''=''1''); DROP TABLE job_dispatch_log; --')");
    assert_eq!(sql.sql, "instr(rejected_reason, ?1) > 0");
    assert_eq!(
        sql.params,
        vec![SqlValue::Text(
            "%' OR '1'='1'); DROP TABLE job_dispatch_log; --".into()
        )]
    );
    // Outside quotes, SQL punctuation is simply not part of the language.
    assert!(filter_err("sequence eq 1; DROP TABLE job_dispatch_log")
        .message
        .contains("';'"));
    assert!(filter_err("sequence eq 1 -- comment")
        .message
        .contains("'-'"));
}

// ---- SQL ----

#[test]
fn sql_text_for_each_construct() {
    let t = Timestamp::parse("2026-01-11T21:02:31.7932294Z").unwrap();
    let s = sqlite(&format!(
        "id eq {G} and date_create gt 2026-01-11T21:02:31.7932294Z and is_workshop ne true"
    ));
    assert_eq!(
        s.sql,
        "(id = ?1 AND date_create > ?2 AND is_workshop <> ?3)"
    );
    assert_eq!(
        s.params,
        vec![
            SqlValue::Uuid(g()),
            SqlValue::Int(t.ticks()),
            SqlValue::Bool(true)
        ]
    );
    let s = sqlite("is_accepted or not (is_rejected) or sequence in (1, 2)");
    assert_eq!(
        s.sql,
        "(is_accepted = ?1 OR NOT (is_rejected = ?2) OR sequence IN (?3, ?4))"
    );
    assert_eq!(
        s.params,
        vec![
            SqlValue::Bool(true),
            SqlValue::Bool(true),
            SqlValue::Int(1),
            SqlValue::Int(2)
        ]
    );
    assert_eq!(sqlite("true").sql, "1 = 1");
    assert_eq!(sqlite("false").sql, "1 = 0");
    assert_eq!(
        sqlite("startswith(rejected_reason,'a')").sql,
        "substr(rejected_reason, 1, length(?1)) = ?1"
    );
    assert_eq!(
        sqlite("endswith(rejected_reason,'a')").sql,
        "(length(rejected_reason) >= length(?1) AND \
         substr(rejected_reason, length(rejected_reason) - length(?1) + 1) = ?1)"
    );
}

#[test]
fn postgres_placeholders_are_dollar_numbered_and_typed() {
    let s = postgres(&format!(
        "jobs_id eq {G} and sequence lt 3 or rejected_reason gt 'm' or is_accepted"
    ));
    assert_eq!(
        s.sql,
        "((jobs_id = $1::uuid AND sequence < $2::bigint) OR rejected_reason COLLATE \"C\" > $3::text \
         OR is_accepted = $4::boolean)"
    );
    assert_eq!(
        postgres("contains(rejected_reason,'a')").sql,
        "strpos(rejected_reason, $1::text) > 0"
    );
    assert_eq!(
        postgres("startswith(rejected_reason,'a')").sql,
        "left(rejected_reason, length($1::text)) = $1::text"
    );
    assert_eq!(
        postgres("endswith(rejected_reason,'a')").sql,
        "right(rejected_reason, length($1::text)) = $1::text"
    );
    let f = filter("sequence in (1, 2) and is_accepted");
    let s = filter_sql(&f, Dialect::Postgres, 3);
    assert_eq!(
        s.sql,
        "(sequence IN ($3::bigint, $4::bigint) AND is_accepted = $5::boolean)"
    );
    let s = filter_sql(&f, Dialect::Sqlite, 7);
    assert_eq!(s.sql, "(sequence IN (?7, ?8) AND is_accepted = ?9)");
    assert_eq!(s.params.len(), 3);
}

#[test]
fn long_chains_become_shallow_groups() {
    let chain = vec!["is_accepted"; 20].join(" or ");
    let s = sqlite(&chain);
    assert_eq!(s.params.len(), 20);
    let depth = s
        .sql
        .chars()
        .scan(0i32, |d, c| {
            match c {
                '(' => *d += 1,
                ')' => *d -= 1,
                _ => {}
            }
            Some(*d)
        })
        .max()
        .unwrap();
    assert!(depth <= 3, "{}", s.sql);
}

// ---- the SQL against the real SQLite schema ----

struct Row {
    name: &'static str,
    jobs_id: Uuid,
    user_id: Uuid,
    date_create: &'static str,
    is_accepted: bool,
    is_rejected: bool,
    reason: &'static str,
    deleted: bool,
    workshop: bool,
    sequence: i32,
}

fn uuid_n(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

fn rows() -> Vec<Row> {
    let row = |name, jobs, user, date_create, sequence| Row {
        name,
        jobs_id: uuid_n(jobs),
        user_id: uuid_n(user),
        date_create,
        is_accepted: false,
        is_rejected: false,
        reason: "",
        deleted: false,
        workshop: false,
        sequence,
    };
    vec![
        Row {
            is_accepted: true,
            ..row("a", 1, 10, "2026-01-01T08:00:00Z", 1)
        },
        Row {
            is_rejected: true,
            reason: "50% off_site",
            ..row("b", 1, 11, "2026-01-02T08:00:00Z", 2)
        },
        Row {
            is_rejected: true,
            reason: "it's raining",
            ..row("c", 2, 10, "2026-01-03T08:00:00.0000001Z", 1)
        },
        Row {
            workshop: true,
            deleted: true,
            ..row("d", 2, 12, "2026-01-04T08:00:00Z", 2)
        },
        Row {
            is_rejected: true,
            reason: "Sick",
            ..row("e", 3, 11, "2026-01-05T08:00:00Z", 7)
        },
    ]
}

/// The rows as stored by the SQLite store: GUIDs as 16-byte blobs, times as ticks, bools as 0/1.
fn database() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    crate::store::sqlite::migrate(&conn).unwrap();
    conn.execute(
        "INSERT INTO tenant (id, domain, created_at) VALUES (1, 'acme', 0)",
        [],
    )
    .unwrap();
    for (k, r) in rows().iter().enumerate() {
        conn.execute(
            "INSERT INTO job_dispatch_log (tenant_id, id, jobs_id, user_id, date_create, \
             date_proceeded, is_accepted, is_rejected, rejected_reason, sys_logical_delete, \
             is_workshop, modified_dateutc, sequence) \
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                uuid_n(100 + k as u8),
                r.jobs_id,
                r.user_id,
                Timestamp::parse(r.date_create).unwrap().ticks(),
                Timestamp::UNSET_PROCEEDED.ticks(),
                r.is_accepted,
                r.is_rejected,
                r.reason,
                r.deleted,
                r.workshop,
                1000 + k as i64,
                r.sequence,
            ],
        )
        .unwrap();
    }
    conn
}

pub(super) fn to_sqlite(value: &SqlValue) -> SqliteValue {
    match value {
        SqlValue::Int(n) => SqliteValue::Integer(*n),
        SqlValue::Text(s) => SqliteValue::Text(s.clone()),
        SqlValue::Uuid(u) => SqliteValue::Blob(u.as_bytes().to_vec()),
        SqlValue::Bool(b) => SqliteValue::Integer(i64::from(*b)),
    }
}

/// Names of the rows a filter selects, in the order of `$orderby` (default order otherwise),
/// behind a tenant condition the way the store will write it.
fn select_names(conn: &Connection, raw_query: &str) -> Vec<&'static str> {
    let q = query(raw_query);
    let mut params = vec![SqliteValue::Integer(1)];
    let mut sql = "SELECT id FROM job_dispatch_log WHERE tenant_id = ?1".to_string();
    if let Some(f) = &q.filter {
        let fragment = filter_sql(f, Dialect::Sqlite, 2);
        sql.push_str(" AND ");
        sql.push_str(&fragment.sql);
        params.extend(fragment.params.iter().map(to_sqlite));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(&order_sql(&q.ordering()));
    let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let names = rows();
    stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, Uuid>(0))
        .unwrap()
        .map(|id| {
            let k = id.unwrap().as_bytes()[0] - 100;
            names[k as usize].name
        })
        .collect()
}

#[test]
fn filters_select_the_right_rows_in_sqlite() {
    let conn = database();
    let j1 = uuid_n(1);
    let u10 = uuid_n(10);
    for (filter_text, expected) in [
        ("true".to_string(), vec!["a", "b", "c", "d", "e"]),
        ("false".to_string(), vec![]),
        (format!("jobs_id eq {j1}"), vec!["a", "b"]),
        (format!("jobs_id ne guid'{j1}'"), vec!["c", "d", "e"]),
        (
            format!("user_id in ({u10}, {})", uuid_n(12)),
            vec!["a", "c", "d"],
        ),
        (format!("{u10} eq user_id and is_rejected"), vec!["c"]),
        ("is_accepted".into(), vec!["a"]),
        ("not is_rejected".into(), vec!["a", "d"]),
        (
            "is_workshop eq true and sys_logical_delete".into(),
            vec!["d"],
        ),
        (
            "is_rejected eq false or sequence gt 5".into(),
            vec!["a", "d", "e"],
        ),
        (
            "not (is_rejected eq false or sequence gt 5)".into(),
            vec!["b", "c"],
        ),
        ("sequence in (2, 7)".into(), vec!["b", "d", "e"]),
        ("sequence le 1".into(), vec!["a", "c"]),
        (
            "date_create ge 2026-01-03T08:00:00.0000001Z".into(),
            vec!["c", "d", "e"],
        ),
        (
            "date_create gt 2026-01-03T08:00:00.0000001Z".into(),
            vec!["d", "e"],
        ),
        (
            "date_create lt 2026-01-03T10:00:00+02:00".into(),
            vec!["a", "b"],
        ),
        (
            "date_create eq datetime'2026-01-02T08:00:00'".into(),
            vec!["b"],
        ),
        (
            "date_proceeded eq 1980-01-01".into(),
            vec!["a", "b", "c", "d", "e"],
        ),
        ("rejected_reason eq ''".into(), vec!["a", "d"]),
        ("rejected_reason eq 'it''s raining'".into(), vec!["c"]),
        // Code-point order: digits < upper case < lower case.
        ("rejected_reason gt 'Z'".into(), vec!["c"]),
        (
            "rejected_reason lt 'Z' and is_rejected".into(),
            vec!["b", "e"],
        ),
        ("rejected_reason eq 'x'' or 1=1 --'".into(), vec![]),
        // Case-sensitive, and % _ ' are plain characters.
        ("contains(rejected_reason,'%')".into(), vec!["b"]),
        ("contains(rejected_reason,'_')".into(), vec!["b"]),
        ("contains(rejected_reason,'''')".into(), vec!["c"]),
        ("contains(rejected_reason,'sick')".into(), vec![]),
        ("contains(rejected_reason,'Sick')".into(), vec!["e"]),
        (
            "contains(rejected_reason,'')".into(),
            vec!["a", "b", "c", "d", "e"],
        ),
        ("startswith(rejected_reason,'50%')".into(), vec!["b"]),
        ("startswith(rejected_reason,'%')".into(), vec![]),
        (
            "startswith(rejected_reason,'')".into(),
            vec!["a", "b", "c", "d", "e"],
        ),
        ("endswith(rejected_reason,'ing')".into(), vec!["c"]),
        ("endswith(rejected_reason,'_site')".into(), vec!["b"]),
        ("endswith(rejected_reason,'x_site')".into(), vec![]),
        (
            "endswith(rejected_reason,'a very long suffix indeed')".into(),
            vec![],
        ),
        (
            "endswith(rejected_reason,'')".into(),
            vec!["a", "b", "c", "d", "e"],
        ),
        (
            "endswith(rejected_reason,'k') eq false and is_rejected".into(),
            vec!["b", "c"],
        ),
    ] {
        let encoded = filter_text
            .replace('%', "%25")
            .replace('+', "%2B")
            .replace('&', "%26");
        let raw = format!("$filter={encoded}");
        assert_eq!(select_names(&conn, &raw), expected, "{filter_text}");
    }
}

#[test]
fn orderings_run_in_sqlite() {
    let conn = database();
    assert_eq!(
        select_names(&conn, "$orderby=sequence desc"),
        vec!["e", "b", "d", "a", "c"]
    );
    assert_eq!(
        select_names(&conn, "$orderby=jobs_id desc,date_create desc"),
        vec!["e", "d", "c", "b", "a"]
    );
    assert_eq!(
        select_names(&conn, "$orderby=rejected_reason&$filter=is_rejected"),
        vec!["b", "e", "c"]
    );
    assert_eq!(
        select_names(&conn, "$orderby=id desc"),
        vec!["e", "d", "c", "b", "a"]
    );
}

#[test]
fn the_longest_filters_still_run_in_sqlite() {
    let conn = database();
    // As many conditions as fit in the length limit.
    let chain = vec!["(is_accepted)"; 530].join("or");
    assert!(chain.len() <= MAX_FILTER_CHARS);
    assert_eq!(select_names(&conn, &format!("$filter={chain}")), vec!["a"]);
    let values = (0..1500)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let raw = format!("$filter=sequence in ({values})");
    assert!(raw.len() - 8 <= MAX_FILTER_CHARS);
    assert_eq!(select_names(&conn, &raw), vec!["a", "b", "c", "d", "e"]);
    // The deepest nesting allowed.
    let deep = format!(
        "$filter={}is_accepted{}",
        "not (not (".repeat(25),
        "))".repeat(25)
    );
    assert_eq!(select_names(&conn, &deep), vec!["a"]);
}
