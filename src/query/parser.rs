//! The `$filter` parser: recursive descent over the lexer's tokens, building the typed tree of
//! `filter.rs`. Nesting is bounded ([`super::MAX_FILTER_DEPTH`]); every error names the
//! position and says what was expected.

use super::filter::{CompareOp, Filter, TextFunction, MAX_FILTER_DEPTH};
use super::lexer::{Tok, Token};
use super::literals::{
    checked_op, is_literal_keyword, literal_phrase, null_error, type_phrase, typed, unknown_word,
    Literal,
};
use super::QueryError;
use crate::domain::{Field, FieldType};

/// One side of a comparison, before the two sides are matched up.
enum Operand {
    Field(Field),
    Literal(Literal),
}

pub(super) struct Parser<'a> {
    chars: &'a [char],
    tokens: Vec<Token>,
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(chars: &'a [char], tokens: Vec<Token>) -> Self {
        Parser {
            chars,
            tokens,
            i: 0,
            depth: 0,
        }
    }

    pub(super) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.i)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.i + ahead)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.i).cloned();
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    /// Where the text ends: the position reported for "expected … after …" at the end.
    fn end(&self) -> usize {
        self.chars.len()
    }

    fn source(&self, t: &Token) -> String {
        self.chars[t.pos..t.end].iter().collect()
    }

    /// How a token is named in an error: its text, shortened when long.
    pub(super) fn describe(&self, t: &Token) -> String {
        match t.tok {
            Tok::Open => "'('".into(),
            Tok::Close => "')'".into(),
            Tok::Comma => "','".into(),
            _ => {
                let text = self.source(t);
                if text.chars().count() > 40 {
                    let short: String = text.chars().take(37).collect();
                    format!("'{short}...'")
                } else {
                    format!("'{text}'")
                }
            }
        }
    }

    /// The text of the token just consumed, for "expected … after 'x'".
    fn previous(&self) -> String {
        match self.i.checked_sub(1).and_then(|k| self.tokens.get(k)) {
            Some(t) => self.describe(t),
            None => "the start".into(),
        }
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(w), .. }) if w.eq_ignore_ascii_case(keyword))
    }

    pub(super) fn or_expr(&mut self) -> Result<Filter, QueryError> {
        let mut items = vec![self.and_expr()?];
        while self.at_keyword("or") {
            self.next();
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Filter::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Filter, QueryError> {
        let mut items = vec![self.unary()?];
        while self.at_keyword("and") {
            self.next();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Filter::And(items)
        })
    }

    fn enter(&mut self, pos: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(QueryError::filter(
                pos,
                format!(
                    "parentheses and 'not' are nested more than {MAX_FILTER_DEPTH} levels deep"
                ),
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Filter, QueryError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.expected_condition_at_end());
        };
        match &t.tok {
            Tok::Ident(w) if w.eq_ignore_ascii_case("not") => {
                self.next();
                self.enter(t.pos)?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(match inner {
                    Filter::Not(inner) => *inner,
                    inner => Filter::Not(Box::new(inner)),
                })
            }
            Tok::Open => {
                self.next();
                self.enter(t.pos)?;
                let inner = self.or_expr()?;
                self.depth -= 1;
                match self.next() {
                    Some(Token {
                        tok: Tok::Close, ..
                    }) => Ok(inner),
                    Some(other) => Err(QueryError::filter(
                        other.pos,
                        format!(
                            "expected ')' to close the '(' at position {}, found {}",
                            t.pos,
                            self.describe(&other)
                        ),
                    )),
                    None => Err(QueryError::filter(
                        self.end(),
                        format!("missing ')' to close the '(' at position {}", t.pos),
                    )),
                }
            }
            Tok::Ident(w)
                if Field::by_name(w).is_none()
                    && matches!(self.peek_at(1), Some(Token { tok: Tok::Open, .. })) =>
            {
                self.function_call()
            }
            _ => self.comparison(),
        }
    }

    fn expected_condition_at_end(&self) -> QueryError {
        if self.i == 0 {
            QueryError::filter(self.end(), "expected a condition")
        } else {
            QueryError::filter(
                self.end(),
                format!("expected a condition after {}", self.previous()),
            )
        }
    }

    fn comparison(&mut self) -> Result<Filter, QueryError> {
        let (left, left_pos) = self.operand()?;
        let op_token = self.peek().cloned();
        let op = match &op_token {
            Some(Token {
                tok: Tok::Ident(w), ..
            }) => {
                if let Some(op) = CompareOp::from_keyword(w) {
                    Some(op)
                } else if w.eq_ignore_ascii_case("in") {
                    self.next();
                    return self.in_list(left, left_pos);
                } else {
                    None
                }
            }
            _ => None,
        };
        let Some(op) = op else {
            return self.lone_operand(left, op_token.as_ref());
        };
        self.next();
        let (right, right_pos) = match left {
            // Name the value as what is missing: a field on both sides is refused anyway.
            Operand::Field(_) => {
                let (lit, pos) = self.literal()?;
                (Operand::Literal(lit), pos)
            }
            Operand::Literal(_) => self.operand()?,
        };
        match (left, right) {
            (Operand::Field(field), Operand::Literal(lit)) => Ok(Filter::Compare {
                field,
                op: checked_op(field, op, left_pos)?,
                value: typed(field, lit, right_pos)?,
            }),
            (Operand::Literal(lit), Operand::Field(field)) => Ok(Filter::Compare {
                field,
                op: checked_op(field, op.mirrored(), right_pos)?,
                value: typed(field, lit, left_pos)?,
            }),
            (Operand::Field(a), Operand::Field(b)) => Err(QueryError::filter(
                right_pos,
                format!(
                    "comparing two fields ({} and {}) is not supported; compare a field with a value",
                    a.name(),
                    b.name()
                ),
            )),
            (Operand::Literal(_), Operand::Literal(_)) => Err(QueryError::filter(
                left_pos,
                format!("one side of '{}' must be a field", op.keyword()),
            )),
        }
    }

    /// An operand not followed by an operator: fine for a boolean field or `true`/`false`.
    fn lone_operand(&self, operand: Operand, next: Option<&Token>) -> Result<Filter, QueryError> {
        match operand {
            Operand::Field(f) if f.meta().ty == FieldType::Bool => Ok(Filter::IsTrue(f)),
            Operand::Literal(Literal::Bool(b)) => Ok(Filter::Const(b)),
            _ => {
                let subject = self.describe(&self.tokens[self.i - 1]);
                let (at, found) = match next {
                    None => (self.end(), "nothing".to_string()),
                    Some(t) => (t.pos, self.describe(t)),
                };
                let hint = match next {
                    Some(Token {
                        tok: Tok::Ident(w), ..
                    }) if !w.eq_ignore_ascii_case("and") && !w.eq_ignore_ascii_case("or") => {
                        format!(" ({found} is not a supported operator)")
                    }
                    _ => String::new(),
                };
                Err(QueryError::filter(
                    at,
                    format!(
                        "expected an operator (eq, ne, gt, ge, lt, le or in) after {subject}, found {found}{hint}"
                    ),
                ))
            }
        }
    }

    fn in_list(&mut self, left: Operand, left_pos: usize) -> Result<Filter, QueryError> {
        let field = match left {
            Operand::Field(f) => f,
            Operand::Literal(_) => {
                return Err(QueryError::filter(
                    left_pos,
                    "the left side of 'in' must be a field",
                ))
            }
        };
        match self.next() {
            Some(Token { tok: Tok::Open, .. }) => {}
            Some(t) => {
                return Err(QueryError::filter(
                    t.pos,
                    format!(
                        "expected '(' after 'in', found {}; write e.g. sequence in (1, 2)",
                        self.describe(&t)
                    ),
                ))
            }
            None => {
                return Err(QueryError::filter(
                    self.end(),
                    "expected a list in parentheses after 'in', e.g. sequence in (1, 2)",
                ))
            }
        }
        if let Some(t) = self.peek() {
            if t.tok == Tok::Close {
                return Err(QueryError::filter(
                    t.pos,
                    "the list after 'in' is empty; give at least one value",
                ));
            }
        }
        let mut values = Vec::new();
        loop {
            let (lit, pos) = self.literal()?;
            values.push(typed(field, lit, pos)?);
            match self.next() {
                Some(Token {
                    tok: Tok::Comma, ..
                }) => continue,
                Some(Token {
                    tok: Tok::Close, ..
                }) => break,
                Some(t) => {
                    return Err(QueryError::filter(
                        t.pos,
                        format!(
                            "expected ',' or ')' in the list after 'in', found {}",
                            self.describe(&t)
                        ),
                    ))
                }
                None => {
                    return Err(QueryError::filter(
                        self.end(),
                        "missing ')' at the end of the list after 'in'",
                    ))
                }
            }
        }
        Ok(Filter::In { field, values })
    }

    fn function_call(&mut self) -> Result<Filter, QueryError> {
        let Some(name_token) = self.next() else {
            return Err(self.expected_condition_at_end());
        };
        let Tok::Ident(name) = &name_token.tok else {
            return Err(QueryError::filter(
                name_token.pos,
                "expected a function name",
            ));
        };
        let Some(function) = TextFunction::from_name(name) else {
            return Err(QueryError::filter(
                name_token.pos,
                format!(
                    "unknown function '{name}'; the supported functions are contains, startswith and endswith"
                ),
            ));
        };
        let fname = function.name();
        self.next(); // the '(' seen by the caller
        let (first, first_pos) = self.operand()?;
        let field = match first {
            Operand::Field(f) if f.meta().ty == FieldType::String => f,
            Operand::Field(f) => {
                return Err(QueryError::filter(
                    first_pos,
                    format!(
                        "{fname} works on text fields only (rejected_reason); {} is {}",
                        f.name(),
                        type_phrase(f.meta().ty)
                    ),
                ))
            }
            Operand::Literal(_) => {
                return Err(QueryError::filter(
                    first_pos,
                    format!("the first argument of {fname} must be a field, e.g. {fname}(rejected_reason, 'text')"),
                ))
            }
        };
        self.expect_comma_in(fname)?;
        let (second, second_pos) = self.literal()?;
        let text = match second {
            Literal::Str(s) => s,
            Literal::Null => return Err(null_error(second_pos)),
            other => {
                return Err(QueryError::filter(
                    second_pos,
                    format!(
                        "the second argument of {fname} must be a quoted text, found {}",
                        literal_phrase(&other)
                    ),
                ))
            }
        };
        match self.next() {
            Some(Token {
                tok: Tok::Close, ..
            }) => {}
            Some(t) => {
                return Err(QueryError::filter(
                    t.pos,
                    format!(
                        "expected ')' after the two arguments of {fname}, found {}",
                        self.describe(&t)
                    ),
                ))
            }
            None => {
                return Err(QueryError::filter(
                    self.end(),
                    format!("missing ')' at the end of {fname}(…)"),
                ))
            }
        }
        let call = Filter::Text {
            function,
            field,
            text,
        };
        self.compared_with_bool(call)
    }

    /// `contains(…) eq true` and `… eq false` (or `ne`), which some clients write out.
    fn compared_with_bool(&mut self, call: Filter) -> Result<Filter, QueryError> {
        let op = match self.peek() {
            Some(Token {
                tok: Tok::Ident(w), ..
            }) => CompareOp::from_keyword(w),
            _ => None,
        };
        let Some(op) = op else {
            return Ok(call);
        };
        let op_pos = self.peek().map(|t| t.pos).unwrap_or(0);
        self.next();
        let (lit, pos) = self.literal()?;
        let wanted = match (op, lit) {
            (CompareOp::Eq, Literal::Bool(b)) => b,
            (CompareOp::Ne, Literal::Bool(b)) => !b,
            (CompareOp::Eq | CompareOp::Ne, _) => {
                return Err(QueryError::filter(
                    pos,
                    "a function result can only be compared with true or false",
                ))
            }
            _ => {
                return Err(QueryError::filter(
                    op_pos,
                    format!(
                        "'{}' does not apply to a true/false result; use eq or ne",
                        op.keyword()
                    ),
                ))
            }
        };
        Ok(if wanted {
            call
        } else {
            Filter::Not(Box::new(call))
        })
    }

    fn expect_comma_in(&mut self, fname: &str) -> Result<(), QueryError> {
        match self.next() {
            Some(Token {
                tok: Tok::Comma, ..
            }) => Ok(()),
            Some(t) => Err(QueryError::filter(
                t.pos,
                format!(
                    "expected ',' between the arguments of {fname}, found {}",
                    self.describe(&t)
                ),
            )),
            None => Err(QueryError::filter(
                self.end(),
                format!("{fname} takes two arguments, e.g. {fname}(rejected_reason, 'text')"),
            )),
        }
    }

    /// A field name or a literal.
    fn operand(&mut self) -> Result<(Operand, usize), QueryError> {
        let Some(t) = self.peek().cloned() else {
            return Err(QueryError::filter(
                self.end(),
                format!("expected a field or a value after {}", self.previous()),
            ));
        };
        if let Tok::Ident(word) = &t.tok {
            if let Some(field) = Field::by_name(word) {
                self.next();
                if field.meta().computed {
                    return Err(QueryError::filter(
                        t.pos,
                        format!(
                            "{} is computed for output and cannot be used in $filter",
                            field.name()
                        ),
                    ));
                }
                return Ok((Operand::Field(field), t.pos));
            }
            if !is_literal_keyword(word) {
                return Err(unknown_word(word, &t, self.peek_at(1)));
            }
        }
        let (lit, pos) = self.literal()?;
        Ok((Operand::Literal(lit), pos))
    }

    fn literal(&mut self) -> Result<(Literal, usize), QueryError> {
        let Some(t) = self.next() else {
            return Err(QueryError::filter(
                self.end(),
                format!("expected a value after {}", self.previous()),
            ));
        };
        let lit = match t.tok {
            Tok::Str(s) => Literal::Str(s),
            Tok::Int(n) => Literal::Int(n),
            Tok::Guid(g) => Literal::Guid(g),
            Tok::DateTime(d) => Literal::DateTime(d),
            Tok::Ident(ref w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Ident(ref w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Ident(ref w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            Tok::Ident(ref w) if Field::by_name(w).is_some() => {
                return Err(QueryError::filter(
                    t.pos,
                    format!(
                        "expected a value, found the field '{w}'; comparing two fields is not supported"
                    ),
                ))
            }
            Tok::Ident(ref w) if matches!(self.peek(), Some(Token { tok: Tok::Open, .. })) => {
                return Err(unknown_word(w, &t, self.peek()))
            }
            Tok::Ident(ref w) => {
                return Err(QueryError::filter(
                    t.pos,
                    format!("expected a value, found '{w}'; write text in single quotes ('{w}')"),
                ))
            }
            Tok::Open | Tok::Close | Tok::Comma => {
                let before = match self.i.checked_sub(2).and_then(|k| self.tokens.get(k)) {
                    Some(prev) => format!(" after {}", self.describe(prev)),
                    None => String::new(),
                };
                return Err(QueryError::filter(
                    t.pos,
                    format!("expected a value{before}, found {}", self.describe(&t)),
                ));
            }
        };
        Ok((lit, t.pos))
    }
}
