//! The `$filter` expression: its syntax tree (the parser that builds it is in `parser.rs`).
//!
//! The tree is typed: every value in it already has the type of the field it is compared with
//! (a GUID for `jobs_id`, ticks for `date_create`, …), so translating it to SQL cannot fail and
//! needs no knowledge of the text the client wrote.
//!
//! `and` and `or` chains are kept as flat lists rather than nested pairs: a long chain of
//! conditions then costs no recursion depth, and the only nesting left is what the client wrote
//! with parentheses and `not`, which the parser bounds.

use uuid::Uuid;

use super::lexer::{tokenize, Tok};
use super::parser::Parser;
use super::QueryError;
use crate::domain::{Field, Timestamp};

/// Longest accepted `$filter`, in characters (after percent-decoding).
pub const MAX_FILTER_CHARS: usize = 8000;
/// Deepest accepted nesting of parentheses and `not`.
pub const MAX_FILTER_DEPTH: usize = 100;

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All of these hold (two or more).
    And(Vec<Filter>),
    /// Any of these holds (two or more).
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `field op value`; a `value op field` is turned around when parsed.
    Compare {
        field: Field,
        op: CompareOp,
        value: Value,
    },
    /// `field in (v1, v2, …)`, at least one value.
    In {
        field: Field,
        values: Vec<Value>,
    },
    /// `contains(field, 'text')` and its kin; case-sensitive, the text taken literally.
    Text {
        function: TextFunction,
        field: Field,
        text: String,
    },
    /// A boolean field on its own: `is_accepted` means `is_accepted eq true`.
    IsTrue(Field),
    /// The literal `true` or `false` as a whole condition.
    Const(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub(super) fn from_keyword(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    /// The operator that keeps the meaning when its two sides swap places.
    pub(super) fn mirrored(self) -> CompareOp {
        match self {
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            op => op,
        }
    }

    pub fn keyword(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    pub(super) fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFunction {
    Contains,
    StartsWith,
    EndsWith,
}

impl TextFunction {
    pub(super) fn from_name(word: &str) -> Option<TextFunction> {
        Some(match word.to_ascii_lowercase().as_str() {
            "contains" => TextFunction::Contains,
            "startswith" => TextFunction::StartsWith,
            "endswith" => TextFunction::EndsWith,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TextFunction::Contains => "contains",
            TextFunction::StartsWith => "startswith",
            TextFunction::EndsWith => "endswith",
        }
    }
}

/// A literal, already converted to the type of the field it is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Guid(Uuid),
    DateTime(Timestamp),
    Bool(bool),
    Text(String),
    Int(i32),
}

impl Filter {
    /// Parses the (percent-decoded) value of `$filter`.
    pub fn parse(text: &str) -> Result<Filter, QueryError> {
        let chars: Vec<char> = text.chars().collect();
        if chars.len() > MAX_FILTER_CHARS {
            return Err(QueryError::new(
                "$filter",
                None,
                format!(
                    "is {} characters long; at most {MAX_FILTER_CHARS} are accepted",
                    chars.len()
                ),
            ));
        }
        if chars.iter().all(|c| c.is_whitespace()) {
            return Err(QueryError::new(
                "$filter",
                None,
                "is empty; leave it out to list every row, or give a condition such as is_accepted eq true",
            ));
        }
        let tokens = tokenize(&chars)?;
        let mut parser = Parser::new(&chars, tokens);
        let filter = parser.or_expr()?;
        if let Some(t) = parser.peek() {
            let message = if t.tok == Tok::Close {
                "this ')' has no matching '('".to_string()
            } else {
                format!(
                    "unexpected {} after a complete condition; join conditions with 'and' or 'or'",
                    parser.describe(t)
                )
            };
            return Err(QueryError::filter(t.pos, message));
        }
        Ok(filter)
    }
}
