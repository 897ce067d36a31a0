//! The OData query options of the list endpoint (SPEC §6) and their translation to SQL.
//!
//! A raw URL query string goes in; a [`ListQuery`] comes out whose every part is already valid
//! and typed: fields are [`Field`]s, `$filter` literals carry the type of the field they meet
//! (GUID, ticks, bool, text, int32), `$top` is in range. The list handler and the stores can
//! therefore not meet a malformed value, and [`filter_sql`] cannot fail.
//!
//! Why the pieces look the way they do:
//!
//! - Errors are values, never panics, and name the option, the character position inside its
//!   (percent-decoded) value and the reason, because the client developer reading a 400 has
//!   nothing else to go on. Inputs are bounded (length, nesting) before anything recursive runs,
//!   so no query can exhaust the stack.
//! - SQL is produced for both engines from the same tree. Literals are always bound parameters;
//!   the text only ever holds column names from the field table, operators and placeholders.
//! - Nothing here talks to a database or knows about HTTP; the stores splice the fragments into
//!   their own statements (tenant and role conditions first, then this filter).

mod filter;
mod lexer;
mod literals;
mod parser;
mod sql;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;

use std::fmt;

pub use filter::{CompareOp, Filter, TextFunction, Value, MAX_FILTER_CHARS, MAX_FILTER_DEPTH};
pub use sql::{filter_sql, order_sql, order_sql_for, Dialect, SqlFragment, SqlValue};

use crate::domain::Field;
use crate::wire::percent_decode;

/// Rows per page when `$top` is not given.
pub const DEFAULT_TOP: u32 = 20;
/// Largest accepted `$top`.
pub const MAX_TOP: u32 = 1000;

/// The query options of one list request, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// The parsed `$filter`; none lists every row the caller may see.
    pub filter: Option<Filter>,
    /// From `$orderby`, as given; empty means the default order. See [`ListQuery::ordering`].
    pub order_by: Vec<(Field, Direction)>,
    /// `$top`: at most [`MAX_TOP`], [`DEFAULT_TOP`] when not given.
    pub top: u32,
    /// `$skip`, 0 when not given.
    pub skip: u64,
    /// `$count=true`.
    pub count: bool,
    /// `$select`: the fields to return, without duplicates, in wire order (SPEC §2); none (also
    /// for `*`) means every field.
    pub select: Option<Vec<Field>>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: None,
            order_by: Vec::new(),
            top: DEFAULT_TOP,
            skip: 0,
            count: false,
            select: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

/// A query option that cannot be honoured: which option, where in its value, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The option as the client should look for it, e.g. `$filter`.
    pub option: String,
    /// Character offset inside the option's percent-decoded value, when one place is at fault.
    pub position: Option<usize>,
    /// Why, in a sentence for the client developer.
    pub message: String,
}

impl QueryError {
    pub fn new(option: &str, position: Option<usize>, message: impl Into<String>) -> Self {
        QueryError {
            option: option.to_string(),
            position,
            message: message.into(),
        }
    }

    pub(crate) fn filter(position: usize, message: impl Into<String>) -> Self {
        QueryError::new("$filter", Some(position), message)
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{} at position {p}: {}", self.option, self.message),
            None => write!(f, "{}: {}", self.option, self.message),
        }
    }
}

impl std::error::Error for QueryError {}

/// The options this module reads, plus `$format`, which content negotiation handles.
const KNOWN_OPTIONS: [&str; 7] = [
    "$filter", "$orderby", "$top", "$skip", "$count", "$select", "$format",
];

impl ListQuery {
    /// Parses the whole raw query string (percent-encoded, `+` = space). Unknown `$` options →
    /// error; parameters not starting with `$` are ignored; `$format` is ignored here (handled
    /// elsewhere); a repeated option is an error.
    ///
    /// Option names are matched without regard to case (`$Filter`), as OData 4.01 allows.
    pub fn parse(raw_query: Option<&str>) -> Result<ListQuery, QueryError> {
        let mut query = ListQuery::default();
        let mut seen: Vec<&'static str> = Vec::new();
        for pair in raw_query.unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let Some(key) = percent_decode(raw_key) else {
                if raw_key.starts_with('$') {
                    return Err(QueryError::new(
                        raw_key,
                        None,
                        "the option name is not valid percent-encoded UTF-8",
                    ));
                }
                continue;
            };
            if !key.starts_with('$') {
                continue;
            }
            let Some(option) = KNOWN_OPTIONS
                .iter()
                .copied()
                .find(|o| o.eq_ignore_ascii_case(&key))
            else {
                return Err(unknown_option(&key));
            };
            if option == "$format" {
                continue;
            }
            if seen.contains(&option) {
                return Err(QueryError::new(
                    option,
                    None,
                    "is given more than once; give each query option at most once",
                ));
            }
            seen.push(option);
            let value = percent_decode(raw_value).ok_or_else(|| {
                QueryError::new(option, None, "the value is not valid percent-encoded UTF-8")
            })?;
            match option {
                "$filter" => query.filter = Some(Filter::parse(&value)?),
                "$orderby" => query.order_by = parse_orderby(&value)?,
                "$top" => query.top = parse_top(&value)?,
                "$skip" => query.skip = parse_skip(&value)?,
                "$count" => query.count = parse_count(&value)?,
                _ => query.select = parse_select(&value)?,
            }
        }
        Ok(query)
    }

    /// The full ordering to use: the given fields up to the first that is unique within a
    /// tenant (`id`, or `modified_dateutc`, which the tenant's stamps keep unique), completed
    /// with `id asc` when none of them is; default when empty: modified_dateutc asc.
    ///
    /// With a unique field last no two rows tie, so `$skip` pages neither repeat nor miss a
    /// row; fields after it could never decide an order, and leaving them out lets the
    /// database read a page straight from the index of that field.
    pub fn ordering(&self) -> Vec<(Field, Direction)> {
        let mut ordering = if self.order_by.is_empty() {
            vec![(Field::ModifiedDateutc, Direction::Asc)]
        } else {
            self.order_by.clone()
        };
        match ordering.iter().position(|(f, _)| f.is_unique_in_tenant()) {
            Some(unique) => ordering.truncate(unique + 1),
            None => ordering.push((Field::Id, Direction::Asc)),
        }
        ordering
    }
}

fn unknown_option(key: &str) -> QueryError {
    // OData 3 clients, as the original's were, ask for the total this way.
    let hint = if key.eq_ignore_ascii_case("$inlinecount") {
        " Use $count=true to get the number of matching rows."
    } else {
        ""
    };
    QueryError::new(
        key,
        None,
        format!(
            "is not a supported query option; the supported options are $filter, $orderby, \
             $top, $skip, $count, $select and $format.{hint}"
        ),
    )
}

/// Items of a comma-separated option, each with the character position where it starts and its
/// text trimmed. An empty item is reported at its position.
fn comma_items<'a>(option: &str, value: &'a str) -> Result<Vec<(usize, &'a str)>, QueryError> {
    if value.trim().is_empty() {
        return Err(QueryError::new(
            option,
            None,
            "is empty; give at least one field name, or leave the option out",
        ));
    }
    let mut items = Vec::new();
    let mut start = 0;
    for part in value.split(',') {
        let leading = part.chars().take_while(|c| c.is_whitespace()).count();
        let item = part.trim();
        if item.is_empty() {
            return Err(QueryError::new(
                option,
                Some(start),
                "expected a field name; remove the extra comma",
            ));
        }
        items.push((start + leading, item));
        start += part.chars().count() + 1;
    }
    Ok(items)
}

/// A field named in `$orderby` or `$select`.
fn field_named(option: &str, name: &str, pos: usize) -> Result<Field, QueryError> {
    Field::by_name(name).ok_or_else(|| {
        let message = match Field::all().find(|f| f.name().eq_ignore_ascii_case(name)) {
            Some(f) => format!(
                "unknown field '{name}'; field names are case-sensitive, did you mean {}?",
                f.name()
            ),
            None => {
                // Computed fields can be selected but not sorted on; list only what works.
                let names: Vec<&str> = Field::all()
                    .filter(|f| option == "$select" || !f.meta().computed)
                    .map(|f| f.name())
                    .collect();
                format!(
                    "unknown field '{name}'; the fields are {}",
                    names.join(", ")
                )
            }
        };
        QueryError::new(option, Some(pos), message)
    })
}

fn parse_orderby(value: &str) -> Result<Vec<(Field, Direction)>, QueryError> {
    let mut order_by: Vec<(Field, Direction)> = Vec::new();
    for (pos, item) in comma_items("$orderby", value)? {
        let mut words = item.split_whitespace();
        let name = words.next().unwrap_or_default();
        let field = field_named("$orderby", name, pos)?;
        if field.meta().computed {
            return Err(QueryError::new(
                "$orderby",
                Some(pos),
                format!(
                    "{} is computed for output and cannot be sorted on",
                    field.name()
                ),
            ));
        }
        let direction = match words.next() {
            None => Direction::Asc,
            Some(w) if w.eq_ignore_ascii_case("asc") => Direction::Asc,
            Some(w) if w.eq_ignore_ascii_case("desc") => Direction::Desc,
            Some(w) => {
                return Err(QueryError::new(
                    "$orderby",
                    Some(pos + item_offset(item, w)),
                    format!("expected asc or desc after {}, found '{w}'", field.name()),
                ));
            }
        };
        if let Some(extra) = words.next() {
            return Err(QueryError::new(
                "$orderby",
                Some(pos + item_offset(item, extra)),
                format!("unexpected '{extra}'; separate the fields of $orderby with commas"),
            ));
        }
        if order_by.iter().any(|(f, _)| *f == field) {
            return Err(QueryError::new(
                "$orderby",
                Some(pos),
                format!("{} is listed more than once", field.name()),
            ));
        }
        order_by.push((field, direction));
    }
    Ok(order_by)
}

/// Character offset of `word` (a slice of `item`) inside `item`.
fn item_offset(item: &str, word: &str) -> usize {
    let byte = word.as_ptr() as usize - item.as_ptr() as usize;
    item[..byte].chars().count()
}

fn parse_select(value: &str) -> Result<Option<Vec<Field>>, QueryError> {
    let mut fields = Vec::new();
    let mut everything = false;
    for (pos, item) in comma_items("$select", value)? {
        if item == "*" {
            everything = true;
            continue;
        }
        fields.push(field_named("$select", item, pos)?);
    }
    if everything {
        return Ok(None);
    }
    // Output always follows the wire order of SPEC §2, whatever order the client listed.
    fields.sort();
    fields.dedup();
    Ok(Some(fields))
}

/// A non-negative decimal integer, strictly digits.
fn parse_unsigned(option: &str, value: &str) -> Result<u64, QueryError> {
    if value.is_empty() {
        return Err(QueryError::new(
            option,
            None,
            "is empty; give a non-negative integer",
        ));
    }
    if let Some(bad) = value.chars().position(|c| !c.is_ascii_digit()) {
        let message = if value.starts_with('-') {
            format!("must not be negative, found '{value}'")
        } else {
            format!("must be a non-negative integer, found '{value}'")
        };
        return Err(QueryError::new(option, Some(bad), message));
    }
    value
        .parse::<u64>()
        .map_err(|_| QueryError::new(option, None, format!("the number {value} is too large")))
}

fn parse_top(value: &str) -> Result<u32, QueryError> {
    let too_large = || {
        QueryError::new(
            "$top",
            None,
            format!("must be at most {MAX_TOP}, found {value}; page with $skip for more rows"),
        )
    };
    let n = match parse_unsigned("$top", value) {
        Ok(n) => n,
        Err(e) if e.position.is_none() && !value.is_empty() => return Err(too_large()),
        Err(e) => return Err(e),
    };
    if n > u64::from(MAX_TOP) {
        return Err(too_large());
    }
    Ok(n as u32)
}

fn parse_skip(value: &str) -> Result<u64, QueryError> {
    parse_unsigned("$skip", value)
}

fn parse_count(value: &str) -> Result<bool, QueryError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(QueryError::new(
            "$count",
            None,
            format!("must be true or false, found '{value}'"),
        ))
    }
}
