//! Literals of `$filter` and how they meet their field: a literal as written, its conversion to
//! the field's type, and the wording of the errors when they do not fit.

use uuid::Uuid;

use super::filter::{CompareOp, Value};
use super::lexer::{Tok, Token};
use super::QueryError;
use crate::domain::timestamp::DateError;
use crate::domain::{Field, FieldType, Timestamp};

/// A literal as written, before it meets its field.
#[derive(Debug)]
pub(super) enum Literal {
    Str(String),
    Int(i64),
    Guid(Uuid),
    DateTime(Timestamp),
    Bool(bool),
    Null,
}

pub(super) fn is_literal_keyword(word: &str) -> bool {
    ["true", "false", "null"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

/// Words of the language that cannot start a condition.
pub(super) const OPERATOR_WORDS: [&str; 9] =
    ["and", "or", "eq", "ne", "gt", "ge", "lt", "le", "in"];

/// A word that is neither a field nor a keyword where a field or value was expected.
pub(super) fn unknown_word(word: &str, t: &Token, next: Option<&Token>) -> QueryError {
    if OPERATOR_WORDS.iter().any(|k| word.eq_ignore_ascii_case(k)) {
        return QueryError::filter(t.pos, format!("expected a condition before '{word}'"));
    }
    if matches!(next, Some(Token { tok: Tok::Open, .. })) {
        return QueryError::filter(
            t.pos,
            format!(
                "unknown function '{word}'; the supported functions are contains, startswith and endswith"
            ),
        );
    }
    if let Some(field) = Field::all().find(|f| f.name().eq_ignore_ascii_case(word)) {
        return QueryError::filter(
            t.pos,
            format!(
                "unknown field '{word}'; field names are case-sensitive, did you mean {}?",
                field.name()
            ),
        );
    }
    let known: Vec<&str> = Field::all()
        .filter(|f| !f.meta().computed)
        .map(|f| f.name())
        .collect();
    QueryError::filter(
        t.pos,
        format!(
            "unknown field '{word}'; the fields are {} (text values must be quoted)",
            known.join(", ")
        ),
    )
}

pub(super) fn checked_op(field: Field, op: CompareOp, pos: usize) -> Result<CompareOp, QueryError> {
    if op.is_ordering() && field.meta().ty == FieldType::Bool {
        return Err(QueryError::filter(
            pos,
            format!(
                "{} is true or false; '{}' does not apply, use eq or ne",
                field.name(),
                op.keyword()
            ),
        ));
    }
    Ok(op)
}

pub(super) fn null_error(pos: usize) -> QueryError {
    QueryError::filter(
        pos,
        "null is not supported: no field of job_dispatch_log is ever null; \
         compare with the field's default instead (e.g. rejected_reason eq '')",
    )
}

pub(super) fn type_phrase(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Guid => "a GUID (e.g. 5f1e9a72-a0e8-4276-9cd5-3b00416d5f59)",
        FieldType::DateTime => "a date-time (e.g. 2026-01-11T21:02:31Z)",
        FieldType::Bool => "true or false",
        FieldType::String => "a quoted text (e.g. 'no access')",
        FieldType::Int32 => "an integer",
    }
}

pub(super) fn literal_phrase(lit: &Literal) -> String {
    match lit {
        Literal::Str(s) if s.chars().count() > 40 => {
            let short: String = s.chars().take(37).collect();
            format!("the text '{short}...'")
        }
        Literal::Str(s) => format!("the text '{s}'"),
        Literal::Int(n) => format!("the number {n}"),
        Literal::Guid(g) => format!("the GUID {g}"),
        Literal::DateTime(d) => format!("the date-time {}", d.to_json_string()),
        Literal::Bool(b) => b.to_string(),
        Literal::Null => "null".into(),
    }
}

/// Gives a literal the type of `field`, or says why it does not fit.
pub(super) fn typed(field: Field, lit: Literal, pos: usize) -> Result<Value, QueryError> {
    let ty = field.meta().ty;
    let value = match (ty, lit) {
        (_, Literal::Null) => return Err(null_error(pos)),
        (FieldType::Guid, Literal::Guid(g)) => Value::Guid(g),
        // Quoted GUIDs and dates are common in hand-written URLs; the field says what they mean.
        (FieldType::Guid, Literal::Str(s)) => match Uuid::try_parse(&s) {
            Ok(g) => Value::Guid(g),
            Err(_) => return Err(mismatch(field, &Literal::Str(s), pos)),
        },
        (FieldType::DateTime, Literal::DateTime(t)) => Value::DateTime(t),
        (FieldType::DateTime, Literal::Str(s)) => match Timestamp::parse(&s) {
            Ok(t) => Value::DateTime(t),
            Err(DateError::OutOfRange) => {
                return Err(QueryError::filter(
                    pos,
                    format!("the date-time '{s}' {}", DateError::OutOfRange),
                ))
            }
            Err(DateError::Syntax | DateError::MicrosoftSyntax) => {
                return Err(mismatch(field, &Literal::Str(s), pos))
            }
        },
        (FieldType::Bool, Literal::Bool(b)) => Value::Bool(b),
        (FieldType::String, Literal::Str(s)) => Value::Text(s),
        (FieldType::Int32, Literal::Int(n)) => match i32::try_from(n) {
            Ok(n) => Value::Int(n),
            Err(_) => {
                return Err(QueryError::filter(
                    pos,
                    format!(
                        "{n} is out of range for {}, a 32-bit integer ({} to {})",
                        field.name(),
                        i32::MIN,
                        i32::MAX
                    ),
                ))
            }
        },
        (_, lit) => return Err(mismatch(field, &lit, pos)),
    };
    Ok(value)
}

pub(super) fn mismatch(field: Field, lit: &Literal, pos: usize) -> QueryError {
    QueryError::filter(
        pos,
        format!(
            "{} is {}; {} does not fit",
            field.name(),
            type_phrase(field.meta().ty),
            literal_phrase(lit)
        ),
    )
}
