//! Translation of a parsed query to SQL text with bound parameters.
//!
//! No value the client wrote ever becomes SQL text: every literal is a parameter, and the only
//! names in the text are column names taken from the field table. The text functions avoid
//! `LIKE`, whose `%` and `_` wildcards would make a search for `50%` match far more than asked.

use std::fmt::Write as _;

use uuid::Uuid;

use super::filter::{CompareOp, Filter, TextFunction, Value};
use super::Direction;
use crate::domain::Field;

/// The SQL engine a fragment is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A parameter value, in the representation of the `job_dispatch_log` columns: GUIDs as `uuid`
/// (a 16-byte BLOB in SQLite), date-times as 100 ns ticks since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Int(i64),
    Text(String),
    Uuid(Uuid),
    Bool(bool),
}

/// SQL text and the values of its placeholders, in placeholder order: `params[k]` belongs to
/// placeholder number `first_param + k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFragment {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

/// Lists of more conditions than this are written as nested groups, so that a long `or` chain
/// stays far below the expression depth limits of the engines (1000 in SQLite).
const FLAT_LIST_MAX: usize = 8;

/// Compiles a filter into a boolean SQL expression over the table's column names, with
/// placeholders numbered from `first_param` (SQLite `?N`, PostgreSQL `$N`).
///
/// The expression is self-contained (an `or` comes in parentheses), so it can be joined to other
/// conditions with `AND` as it is.
pub fn filter_sql(filter: &Filter, dialect: Dialect, first_param: usize) -> SqlFragment {
    let mut w = Writer {
        dialect,
        first_param,
        sql: String::new(),
        params: Vec::new(),
    };
    w.filter(filter);
    SqlFragment {
        sql: w.sql,
        params: w.params,
    }
}

/// `ORDER BY` list text, e.g. "modified_dateutc ASC, id ASC".
pub fn order_sql(ordering: &[(Field, Direction)]) -> String {
    order_sql_for(ordering, Dialect::Sqlite)
}

/// `ORDER BY` list text for one engine. PostgreSQL sorts text by the database's collation,
/// SQLite by code point; `COLLATE "C"` makes PostgreSQL agree, so both engines page alike.
pub fn order_sql_for(ordering: &[(Field, Direction)], dialect: Dialect) -> String {
    let mut out = String::new();
    for (k, (field, direction)) in ordering.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        out.push_str(&column(*field, dialect, true));
        out.push_str(match direction {
            Direction::Asc => " ASC",
            Direction::Desc => " DESC",
        });
    }
    out
}

/// A field's column. Text compared for order needs the byte-wise collation in PostgreSQL.
fn column(field: Field, dialect: Dialect, for_ordering: bool) -> String {
    let is_text = field.meta().ty == crate::domain::FieldType::String;
    if dialect == Dialect::Postgres && is_text && for_ordering {
        format!("{} COLLATE \"C\"", field.name())
    } else {
        field.name().to_string()
    }
}

struct Writer {
    dialect: Dialect,
    first_param: usize,
    sql: String,
    params: Vec<SqlValue>,
}

impl Writer {
    /// Adds a parameter and returns its placeholder. PostgreSQL placeholders carry an explicit
    /// type, so the parameter types never depend on inference from the surrounding expression
    /// (`length($1)` alone is ambiguous) and an `Int` is always bound as a `bigint`.
    fn bind(&mut self, value: SqlValue) -> String {
        let n = self.first_param + self.params.len();
        let placeholder = match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => {
                let cast = match value {
                    SqlValue::Int(_) => "bigint",
                    SqlValue::Text(_) => "text",
                    SqlValue::Uuid(_) => "uuid",
                    SqlValue::Bool(_) => "boolean",
                };
                format!("${n}::{cast}")
            }
        };
        self.params.push(value);
        placeholder
    }

    fn filter(&mut self, filter: &Filter) {
        match filter {
            Filter::And(items) => self.list(items, " AND "),
            Filter::Or(items) => self.list(items, " OR "),
            Filter::Not(inner) => {
                self.sql.push_str("NOT (");
                self.filter(inner);
                self.sql.push(')');
            }
            Filter::Compare { field, op, value } => {
                let col = column(*field, self.dialect, op_orders(*op));
                let p = self.bind(sql_value(value));
                let _ = write!(self.sql, "{col} {} {p}", op_sql(*op));
            }
            Filter::In { field, values } => {
                let _ = write!(self.sql, "{} IN (", field.name());
                for (k, v) in values.iter().enumerate() {
                    if k > 0 {
                        self.sql.push_str(", ");
                    }
                    let p = self.bind(sql_value(v));
                    self.sql.push_str(&p);
                }
                self.sql.push(')');
            }
            Filter::Text {
                function,
                field,
                text,
            } => self.text_function(*function, field.name(), text),
            Filter::IsTrue(field) => {
                let p = self.bind(SqlValue::Bool(true));
                let _ = write!(self.sql, "{} = {p}", field.name());
            }
            Filter::Const(true) => self.sql.push_str("1 = 1"),
            Filter::Const(false) => self.sql.push_str("1 = 0"),
        }
    }

    /// A parenthesised list joined by `sep`; long lists are split in halves recursively, which
    /// keeps the expression tree logarithmic in depth.
    fn list(&mut self, items: &[Filter], sep: &str) {
        self.sql.push('(');
        if items.len() <= FLAT_LIST_MAX {
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    self.sql.push_str(sep);
                }
                self.filter(item);
            }
        } else {
            let (left, right) = items.split_at(items.len() / 2);
            self.list(left, sep);
            self.sql.push_str(sep);
            self.list(right, sep);
        }
        self.sql.push(')');
    }

    /// Case-sensitive, literal substring tests. Both engines count characters, not bytes, in
    /// `length`, `substr`, `left` and `right`, so the prefix and suffix tests line up.
    fn text_function(&mut self, function: TextFunction, col: &str, text: &str) {
        let p = self.bind(SqlValue::Text(text.to_string()));
        let _ = match (self.dialect, function) {
            (Dialect::Sqlite, TextFunction::Contains) => write!(self.sql, "instr({col}, {p}) > 0"),
            (Dialect::Sqlite, TextFunction::StartsWith) => {
                write!(self.sql, "substr({col}, 1, length({p})) = {p}")
            }
            // A negative start in substr counts from the end but treats 0 as "everything", so
            // the suffix is cut by its absolute start, guarded for suffixes longer than the text.
            (Dialect::Sqlite, TextFunction::EndsWith) => write!(
                self.sql,
                "(length({col}) >= length({p}) AND substr({col}, length({col}) - length({p}) + 1) = {p})"
            ),
            (Dialect::Postgres, TextFunction::Contains) => {
                write!(self.sql, "strpos({col}, {p}) > 0")
            }
            (Dialect::Postgres, TextFunction::StartsWith) => {
                write!(self.sql, "left({col}, length({p})) = {p}")
            }
            (Dialect::Postgres, TextFunction::EndsWith) => {
                write!(self.sql, "right({col}, length({p})) = {p}")
            }
        };
    }
}

fn op_orders(op: CompareOp) -> bool {
    !matches!(op, CompareOp::Eq | CompareOp::Ne)
}

fn op_sql(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
    }
}

fn sql_value(value: &Value) -> SqlValue {
    match value {
        Value::Guid(g) => SqlValue::Uuid(*g),
        Value::DateTime(t) => SqlValue::Int(t.ticks()),
        Value::Bool(b) => SqlValue::Bool(*b),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Int(n) => SqlValue::Int(i64::from(*n)),
    }
}
