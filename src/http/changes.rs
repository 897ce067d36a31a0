//! `GET /api/JobDispatchLog/Changes?since=CURSOR&limit=N`: the sync feed (SPEC §7.2).
//!
//! The cursor (`wire::cursor`) wraps the commit stamp of the last change a client has seen.
//! Stamps are handed out in commit order, so "everything after the cursor" never skips a change
//! that committed later.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::{Caller, Wire};
use super::{respond, AppState};
use crate::domain::Timestamp;
use crate::error::ApiError;
use crate::wire::cursor::{self, encode_cursor};
use crate::wire::documents::encode_changes;
use crate::wire::{query_value, BadEscape};

pub const DEFAULT_LIMIT: usize = 500;
pub const MAX_LIMIT: usize = 5000;

/// Unwraps a `since` cursor; a text that is not one is a 400.
pub fn decode_cursor(cursor: &str) -> Result<Option<Timestamp>, ApiError> {
    cursor::decode_cursor(cursor).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A query value that does not decode: 400 naming the parameter.
pub fn bad_escape(e: BadEscape) -> ApiError {
    ApiError::BadRequest(format!("{e}; escape each byte as %XX (UTF-8)"))
}

/// `limit`: 1 to 5000, default 500.
pub fn parse_limit(text: Option<String>) -> Result<usize, ApiError> {
    match text {
        None => Ok(DEFAULT_LIMIT),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}, not '{t}'"
            ))),
        },
    }
}

pub async fn list_job_dispatch_log_changes(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let since = match query_value(uri.query(), "since").map_err(bad_escape)? {
        Some(c) if !c.trim().is_empty() => decode_cursor(&c)?,
        _ => None,
    };
    let limit = parse_limit(query_value(uri.query(), "limit").map_err(bad_escape)?)?;
    let page = state.store.changes(&caller, since, limit).await?;
    let cursor = encode_cursor(page.last.or(since));
    Ok(respond::body(
        neg,
        StatusCode::OK,
        encode_changes(
            neg.format,
            &page.rows,
            &page.removed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            &cursor,
            page.has_more,
        ),
    ))
}
