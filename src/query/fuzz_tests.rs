//! Random and mutated query strings: the parser must answer every one with a query or an error,
//! never a panic, and every filter it accepts must compile to SQL that SQLite accepts, with one
//! parameter per placeholder number.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;

use super::tests::to_sqlite;
use super::*;
use crate::domain::FieldType;

/// Pieces that make random strings look enough like filters to reach deep into the parser.
const PIECES: &[&str] = &[
    " ",
    " ",
    " ",
    "(",
    ")",
    ",",
    "'",
    "''",
    "-",
    "+",
    ":",
    ".",
    "%",
    "%2B",
    "%27",
    "%28",
    "%",
    "$",
    ";",
    "\"",
    "\u{e9}",
    "\u{1F600}",
    "\0",
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "EQ",
    "and",
    "or",
    "not",
    "Or",
    "in",
    "has",
    "true",
    "false",
    "null",
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
    "Sequence",
    "contains",
    "startswith",
    "endswith",
    "length",
    "guid",
    "datetime",
    "datetimeoffset",
    "'x'",
    "'it''s'",
    "'%_'",
    "0",
    "1",
    "-1",
    "42",
    "2147483647",
    "2147483648",
    "-2147483649",
    "99999999999999999999",
    "2026",
    "2026-01-11",
    "2026-01-11T21:02:31Z",
    "2026-01-11T21:02:31.7932294+02:00",
    "1600-01-01",
    "9999-12-31",
    "2026-02-30",
    "5f1e9a72-a0e8-4276-9cd5-3b00416d5f59",
    "5f1e9a72-a0e8-4276-9cd5",
    "guid'5f1e9a72-a0e8-4276-9cd5-3b00416d5f59'",
    "datetime'2026-01-11'",
    "x'00'",
];

/// Well-formed queries that mutation starts from.
const SEEDS: &[&str] = &[
    "$filter=is_accepted eq true and not (is_rejected or sequence in (1, 2, 3))",
    "$filter=contains(rejected_reason,'50%25') or startswith(rejected_reason,'it''s')&$top=5",
    "$filter=jobs_id eq 5f1e9a72-a0e8-4276-9cd5-3b00416d5f59&$orderby=sequence desc,id",
    "$filter=date_create gt 2026-01-11T21:02:31.7932294Z and date_create le datetime'2026-02-01'",
    "$filter=modified_dateutc gt 2026-01-11T21:02:31%2B02:00&$orderby=modified_dateutc&$count=true",
    "$filter=endswith(rejected_reason,'x') eq false or 3 lt sequence&$skip=10&$select=id,sequence",
    "$select=*&$top=1000&$skip=0&$count=false&$format=json",
    "$filter=(((is_workshop)))&$orderby=rejected_reason asc, date_create desc",
    "$filter=user_id in (guid'5f1e9a72-a0e8-4276-9cd5-3b00416d5f59', 5f1e9a72-a0e8-4276-9cd5-3b00416d5f59)",
];

fn random_filter(rng: &mut StdRng) -> String {
    let n = rng.random_range(0..24);
    let mut s = String::new();
    for _ in 0..n {
        if rng.random_bool(0.1) {
            s.push(char::from(rng.random_range(0x20u8..0x7f)));
        } else {
            s.push_str(PIECES.choose(rng).unwrap());
        }
        if rng.random_bool(0.5) {
            s.push(' ');
        }
    }
    s
}

/// A random filter that is valid by construction, in varied spelling.
fn valid_filter(rng: &mut StdRng, depth: u32) -> String {
    let keyword = |rng: &mut StdRng, k: &str| match rng.random_range(0..3) {
        0 => k.to_uppercase(),
        _ => k.to_string(),
    };
    if depth == 0 || rng.random_bool(0.35) {
        return valid_condition(rng);
    }
    match rng.random_range(0..4) {
        0 => format!(
            "{} {} {}",
            valid_filter(rng, depth - 1),
            keyword(rng, "and"),
            valid_filter(rng, depth - 1)
        ),
        1 => format!(
            "{} {} {}",
            valid_filter(rng, depth - 1),
            keyword(rng, "or"),
            valid_filter(rng, depth - 1)
        ),
        2 => format!("{} ({})", keyword(rng, "not"), valid_filter(rng, depth - 1)),
        _ => format!("({})", valid_filter(rng, depth - 1)),
    }
}

/// A literal of the given type, percent-encoded where a URL needs it.
fn valid_literal(rng: &mut StdRng, ty: FieldType) -> String {
    match ty {
        FieldType::Guid => {
            let g = uuid::Uuid::from_bytes(rng.random());
            match rng.random_range(0..3) {
                0 => g.to_string(),
                1 => format!("guid'{g}'"),
                _ => format!("'{}'", g.to_string().to_uppercase()),
            }
        }
        FieldType::DateTime => {
            let date = format!(
                "{:04}-{:02}-{:02}",
                rng.random_range(1753..10000),
                rng.random_range(1..13),
                rng.random_range(1..29)
            );
            match rng.random_range(0..4) {
                0 => date,
                1 => format!("{date}T{:02}:59:59.1234567Z", rng.random_range(0..24)),
                2 => format!("datetime'{date}T12:00:00'"),
                _ => format!("{date}T12:00:00%2B0{}:00", rng.random_range(0..10)),
            }
        }
        FieldType::Bool => ["true", "false", "TRUE"].choose(rng).unwrap().to_string(),
        FieldType::String => {
            let text: String = (0..rng.random_range(0..6))
                .map(|_| {
                    *[
                        "a", "Z", "%25", "_", " ", "+", "\\", "%C3%A9", "?", "$", "1", "''",
                    ]
                    .choose(rng)
                    .unwrap()
                })
                .collect();
            format!("'{text}'")
        }
        FieldType::Int32 => rng.random_range(i32::MIN..=i32::MAX).to_string(),
    }
}

fn valid_condition(rng: &mut StdRng) -> String {
    let stored: Vec<Field> = Field::all().filter(|f| !f.meta().computed).collect();
    let field = *stored.choose(rng).unwrap();
    let ty = field.meta().ty;
    let name = field.name();
    match rng.random_range(0..10) {
        0 => ["true", "false"].choose(rng).unwrap().to_string(),
        1 if ty == FieldType::Bool => name.to_string(),
        2 => {
            let values: Vec<String> = (0..rng.random_range(1..5))
                .map(|_| valid_literal(rng, ty))
                .collect();
            format!("{name} in ({})", values.join(","))
        }
        3 => {
            let function = ["contains", "startswith", "endswith"].choose(rng).unwrap();
            let text = valid_literal(rng, FieldType::String);
            let tail = ["", " eq true", " eq false", " ne true"]
                .choose(rng)
                .unwrap();
            format!("{function}(rejected_reason, {text}){tail}")
        }
        _ => {
            let ops: &[&str] = if ty == FieldType::Bool {
                &["eq", "ne"]
            } else {
                &["eq", "ne", "gt", "ge", "lt", "le"]
            };
            let op = ops.choose(rng).unwrap();
            let literal = valid_literal(rng, ty);
            if rng.random_bool(0.2) {
                format!("{literal} {op} {name}")
            } else {
                format!("{name} {op} {literal}")
            }
        }
    }
}

fn mutate(rng: &mut StdRng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=chars.len());
        match rng.random_range(0..4) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => {
                let end = rng.random_range(at..=chars.len().min(at + 12));
                chars.drain(at..end);
            }
            2 => {
                let piece = PIECES.choose(rng).unwrap();
                for (k, c) in piece.chars().enumerate() {
                    chars.insert(at + k, c);
                }
            }
            _ if at < chars.len() => {
                chars[at] = char::from(rng.random_range(0x20u8..0x7f));
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Every placeholder number in `sql`, for the given dialect.
fn placeholders(sql: &str, dialect: Dialect) -> Vec<usize> {
    let marker = match dialect {
        Dialect::Sqlite => '?',
        Dialect::Postgres => '$',
    };
    let mut found = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == marker {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            found.push(n.parse().expect("a placeholder has a number"));
        }
    }
    found
}

/// The guarantees a compiled filter gives the store.
fn check_fragment(filter: &Filter, dialect: Dialect, first: usize, source: &str) -> SqlFragment {
    let fragment = filter_sql(filter, dialect, first);
    assert!(
        !fragment.sql.contains('\''),
        "no literal may reach the SQL text: {source} -> {}",
        fragment.sql
    );
    let numbers = placeholders(&fragment.sql, dialect);
    let range = first..first + fragment.params.len();
    for n in &numbers {
        assert!(
            range.contains(n),
            "{source}: ?{n} has no parameter in {range:?}"
        );
    }
    for n in range {
        assert!(
            numbers.contains(&n),
            "{source}: parameter {n} is never used"
        );
    }
    fragment
}

fn check(raw: &str, conn: &Connection, rng: &mut StdRng, accepted: &mut usize) {
    let Ok(q) = ListQuery::parse(Some(raw)) else {
        return;
    };
    *accepted += 1;
    assert!(q.top <= MAX_TOP);
    let ordering = q.ordering();
    let (last, _) = ordering.last().expect("an ordering is never empty");
    assert!(last.is_unique_in_tenant());
    assert_eq!(
        ordering
            .iter()
            .filter(|(f, _)| f.is_unique_in_tenant())
            .count(),
        1
    );
    let Some(filter) = &q.filter else {
        return;
    };
    let first = rng.random_range(1..5);
    check_fragment(filter, Dialect::Postgres, first, raw);
    let fragment = check_fragment(filter, Dialect::Sqlite, first, raw);
    // The SQL must be valid SQLite over the real schema, and run.
    let mut params: Vec<rusqlite::types::Value> = (1..first)
        .map(|_| rusqlite::types::Value::Integer(1))
        .collect();
    params.extend(fragment.params.iter().map(to_sqlite));
    let mut where_clause = String::new();
    for n in 1..first {
        where_clause.push_str(&format!("?{n} = ?{n} AND "));
    }
    let sql = format!(
        "SELECT count(*) FROM job_dispatch_log WHERE {where_clause}{} ORDER BY {}",
        fragment.sql,
        order_sql(&ordering)
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .unwrap_or_else(|e| panic!("{raw}: {sql}: {e}"));
    let _: i64 = stmt
        .query_row(rusqlite::params_from_iter(params), |r| r.get(0))
        .unwrap_or_else(|e| panic!("{raw}: {sql}: {e}"));
}

#[test]
fn random_and_mutated_queries_never_panic_and_compile_to_valid_sql() {
    let conn = Connection::open_in_memory().unwrap();
    crate::store::sqlite::migrate(&conn).unwrap();
    let mut rng = StdRng::seed_from_u64(0x6a6f_625f_6469_7370);
    let mut accepted = 0;
    for round in 0..30_000 {
        let raw = match round % 5 {
            0 => format!("$filter={}", random_filter(&mut rng)),
            1 => {
                let raw = format!("$filter={}", valid_filter(&mut rng, 4));
                if let Err(e) = ListQuery::parse(Some(&raw)) {
                    panic!("a valid filter was refused: {raw}: {e}");
                }
                raw
            }
            2 => {
                let valid = format!("$filter={}", valid_filter(&mut rng, 3));
                mutate(&mut rng, &valid)
            }
            3 => {
                let seed = SEEDS.choose(&mut rng).unwrap();
                mutate(&mut rng, seed)
            }
            _ => {
                // Mutations of mutations wander further from well-formed input.
                let seed = SEEDS.choose(&mut rng).unwrap();
                let once = mutate(&mut rng, seed);
                mutate(&mut rng, &once)
            }
        };
        check(&raw, &conn, &mut rng, &mut accepted);
        // The same text as a bare filter value, without percent-decoding in the way.
        if let Ok(filter) = Filter::parse(&raw) {
            check_fragment(&filter, Dialect::Sqlite, 1, &raw);
        }
    }
    // The generators must actually reach the SQL side, not only error paths.
    assert!(accepted > 6_500, "only {accepted} queries were accepted");
}

#[test]
fn every_seed_is_accepted() {
    for seed in SEEDS {
        ListQuery::parse(Some(seed)).unwrap_or_else(|e| panic!("{seed}: {e}"));
    }
}

#[test]
fn adversarial_shapes_are_answered_quickly() {
    let shapes = [
        "(".repeat(100_000),
        ")".repeat(100_000),
        "not ".repeat(50_000),
        "'".repeat(100_001),
        format!("sequence in ({}", "1,".repeat(50_000)),
        "is_accepted and ".repeat(10_000),
        "%28".repeat(30_000),
        "\u{1F600}".repeat(9_000),
    ];
    for shape in shapes {
        let started = std::time::Instant::now();
        let _ = Filter::parse(&shape);
        let _ = ListQuery::parse(Some(&format!("$filter={shape}")));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{}…",
            &shape.chars().take(20).collect::<String>()
        );
    }
}
