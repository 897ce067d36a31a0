//! Splits a `$filter` text into tokens, each with its character position.
//!
//! Literals are recognised here, in full, so that the parser only ever sees well-formed values:
//! a date that does not exist or a GUID with a typo is reported at the position where the
//! client wrote it, not later as a confusing type error.

use uuid::Uuid;

use super::QueryError;
use crate::domain::timestamp::DateError;
use crate::domain::Timestamp;

/// One token of a filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word: a field name, an operator, a keyword or a function name.
    Ident(String),
    /// `'text'`, quotes undoubled.
    Str(String),
    Int(i64),
    Guid(Uuid),
    DateTime(Timestamp),
    Open,
    Close,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Character offset of the first character.
    pub pos: usize,
    /// Character offset just past the last character.
    pub end: usize,
}

/// Typed literal prefixes of OData (`guid'…'`, `datetime'…'`); older clients send these.
const TYPED_PREFIXES: [&str; 3] = ["guid", "datetime", "datetimeoffset"];

pub(crate) fn tokenize(chars: &[char]) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if let Some(guid) = guid_at(chars, i) {
            i += 36;
            tokens.push(Token {
                tok: Tok::Guid(guid),
                pos: start,
                end: i,
            });
            continue;
        }
        let tok = match c {
            _ if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                Tok::Open
            }
            ')' => {
                i += 1;
                Tok::Close
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '\'' => {
                let (text, next) = quoted(chars, i)?;
                i = next;
                Tok::Str(text)
            }
            _ if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i += 1;
                while i < chars.len() && is_bare_literal_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let tok = bare_literal(&word, start)?;
                if matches!(tok, Tok::DateTime(_)) {
                    check_offset_not_lost(chars, start, i)?;
                }
                tok
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&'\'') {
                    let (text, next) = quoted(chars, i)?;
                    i = next;
                    typed_literal(&word, &text, start)?
                } else {
                    Tok::Ident(word)
                }
            }
            _ => {
                return Err(QueryError::filter(
                    start,
                    format!(
                        "unexpected character '{c}'; text values must be written in single quotes"
                    ),
                ))
            }
        };
        tokens.push(Token {
            tok,
            pos: start,
            end: i,
        });
    }
    Ok(tokens)
}

/// Reads `'…'` starting at the opening quote; a doubled quote stands for one quote.
fn quoted(chars: &[char], open: usize) -> Result<(String, usize), QueryError> {
    let mut text = String::new();
    let mut i = open + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(QueryError::filter(
                    open,
                    "this quoted text is never closed; end it with ' (write '' for a quote inside)",
                ))
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                text.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((text, i + 1)),
            // No stored text holds U+0000 (SPEC §8), and PostgreSQL cannot compare with one.
            Some('\0') => {
                return Err(QueryError::filter(
                    i,
                    "quoted text may not hold a NUL character (U+0000)",
                ))
            }
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// A hyphenated GUID of exactly 36 characters at `i`, not running on into a longer word.
fn guid_at(chars: &[char], i: usize) -> Option<Uuid> {
    if !chars.get(i)?.is_ascii_hexdigit() {
        return None;
    }
    let candidate = chars.get(i..i + 36)?;
    let shape_ok = candidate.iter().enumerate().all(|(k, c)| match k {
        8 | 13 | 18 | 23 => *c == '-',
        _ => c.is_ascii_hexdigit(),
    });
    let ends_there = chars
        .get(i + 36)
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'));
    if !(shape_ok && ends_there) {
        return None;
    }
    let text: String = candidate.iter().collect();
    Uuid::parse_str(&text).ok()
}

/// Characters of an unquoted number or date-time (`+` arrives decoded from `%2B`).
fn is_bare_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '+')
}

fn bare_literal(word: &str, pos: usize) -> Result<Tok, QueryError> {
    let digits = word.strip_prefix('-').unwrap_or(word);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return word
            .parse::<i64>()
            .map(Tok::Int)
            .map_err(|_| QueryError::filter(pos, format!("the number {word} is too large")));
    }
    match Timestamp::parse(word) {
        Ok(t) => Ok(Tok::DateTime(t)),
        Err(DateError::OutOfRange) => Err(QueryError::filter(
            pos,
            format!("the date-time {word} {}", DateError::OutOfRange),
        )),
        Err(DateError::Syntax | DateError::MicrosoftSyntax) => Err(QueryError::filter(
            pos,
            format!(
                "'{word}' is not a value: expected an integer, a GUID \
                 (e.g. 5f1e9a72-a0e8-4276-9cd5-3b00416d5f59) or a date-time \
                 (e.g. 2026-01-11T21:02:31Z); quote text values"
            ),
        )),
    }
}

/// In a URL query a raw `+` means a space, so `…T21:02:31+02:00` arrives as `…T21:02:31 02:00`:
/// the date-time reads as UTC and the offset dangles. Say so instead of a puzzling syntax error.
fn check_offset_not_lost(chars: &[char], start: usize, end: usize) -> Result<(), QueryError> {
    let rest = chars.get(end..).unwrap_or(&[]);
    let looks_like_offset = rest.len() >= 3
        && rest[0] == ' '
        && rest[1].is_ascii_digit()
        && rest[2].is_ascii_digit()
        && rest
            .get(3)
            .is_none_or(|c| *c == ':' || c.is_ascii_digit() || c.is_whitespace() || *c == ')');
    if looks_like_offset && chars[start..end].contains(&'T') {
        return Err(QueryError::filter(
            end,
            "a '+' in a URL query stands for a space; write the '+' of a time zone offset as %2B",
        ));
    }
    Ok(())
}

fn typed_literal(prefix: &str, text: &str, pos: usize) -> Result<Tok, QueryError> {
    let lower = prefix.to_ascii_lowercase();
    if lower == "guid" {
        return Uuid::parse_str(text.trim()).map(Tok::Guid).map_err(|_| {
            QueryError::filter(
                pos,
                format!(
                    "guid'{text}' is not a GUID (expected e.g. 5f1e9a72-a0e8-4276-9cd5-3b00416d5f59)"
                ),
            )
        });
    }
    if TYPED_PREFIXES.contains(&lower.as_str()) {
        return Timestamp::parse(text)
            .map(Tok::DateTime)
            .map_err(|e| QueryError::filter(pos, format!("{prefix}'{text}' {e}")));
    }
    Err(QueryError::filter(
        pos,
        format!(
            "unknown literal prefix '{prefix}'; use guid'…', datetime'…' or datetimeoffset'…', \
             or a plain 'text'"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let chars: Vec<char> = s.chars().collect();
        tokenize(&chars)
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    fn err(s: &str) -> QueryError {
        let chars: Vec<char> = s.chars().collect();
        tokenize(&chars).unwrap_err()
    }

    #[test]
    fn words_punctuation_and_literals_are_told_apart() {
        let g = Uuid::parse_str("5f1e9a72-a0e8-4276-9cd5-3b00416d5f59").unwrap();
        assert_eq!(
            toks("(id eq 5f1e9a72-a0e8-4276-9cd5-3b00416d5f59,-12 'it''s')"),
            vec![
                Tok::Open,
                Tok::Ident("id".into()),
                Tok::Ident("eq".into()),
                Tok::Guid(g),
                Tok::Comma,
                Tok::Int(-12),
                Tok::Str("it's".into()),
                Tok::Close,
            ]
        );
        assert_eq!(
            toks("guid'5F1E9A72-A0E8-4276-9CD5-3B00416D5F59'"),
            vec![Tok::Guid(g)]
        );
    }

    #[test]
    fn a_guid_starting_with_letters_is_not_a_word() {
        let g = Uuid::parse_str("abcdef12-a0e8-4276-9cd5-3b00416d5f59").unwrap();
        assert_eq!(
            toks("abcdef12-a0e8-4276-9cd5-3b00416d5f59"),
            vec![Tok::Guid(g)]
        );
        // One character too many is not a GUID.
        assert!(err("5f1e9a72-a0e8-4276-9cd5-3b00416d5f590")
            .message
            .contains("not a value"));
    }

    #[test]
    fn date_times_bare_and_prefixed_read_the_same() {
        let t = Timestamp::parse("2026-01-11T21:02:31.7932294Z").unwrap();
        assert_eq!(toks("2026-01-11T21:02:31.7932294Z"), vec![Tok::DateTime(t)]);
        assert_eq!(
            toks("datetime'2026-01-11T21:02:31.7932294Z'"),
            vec![Tok::DateTime(t)]
        );
        assert_eq!(
            toks("DateTimeOffset'2026-01-11T23:02:31.7932294+02:00'"),
            vec![Tok::DateTime(t)]
        );
        assert_eq!(
            toks("2026-01-11T23:02:31.7932294+02:00"),
            vec![Tok::DateTime(t)]
        );
    }

    #[test]
    fn an_offset_whose_plus_became_a_space_is_explained() {
        let e = err("date_create gt 2026-01-11T21:02:31 02:00");
        assert_eq!(e.position, Some(34));
        assert!(e.message.contains("%2B"), "{e}");
    }

    #[test]
    fn malformed_literals_are_reported_where_they_start() {
        let e = err("x eq 'open");
        assert_eq!(e.position, Some(5));
        assert!(e.message.contains("never closed"));
        let e = err("x eq 2026-02-30");
        assert_eq!(e.position, Some(5));
        let e = err("x eq 1600-01-01");
        assert!(e.message.contains("1753"), "{e}");
        let e = err("x eq guid'nope'");
        assert!(e.message.contains("not a GUID"), "{e}");
        let e = err("x eq X'00'");
        assert!(e.message.contains("unknown literal prefix"), "{e}");
        let e = err("x eq 99999999999999999999");
        assert!(e.message.contains("too large"), "{e}");
        let e = err("x eq 1.5");
        assert!(e.message.contains("not a value"), "{e}");
        let e = err("x eq \"a\"");
        assert_eq!(e.position, Some(5));
        assert!(e.message.contains("single quotes"), "{e}");
        let e = err("x eq ;");
        assert!(e.message.contains("';'"), "{e}");
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let chars: Vec<char> = "'héllo' eq".chars().collect();
        let t = tokenize(&chars).unwrap();
        assert_eq!((t[1].pos, t[1].end), (8, 10));
    }
}
