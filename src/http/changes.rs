//! `GET /api/JobDispatchLog/Changes?since=CURSOR&limit=N`: the sync feed (SPEC §7.2).
//!
//! The cursor is the commit stamp of the last change a client has seen, wrapped so clients
//! treat it as opaque. Stamps are handed out in commit order, so "everything after the
//! cursor" never skips a change that committed later.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;

use super::extract::{Caller, Wire};
use super::{respond, AppState};
use crate::domain::Timestamp;
use crate::error::ApiError;
use crate::wire::documents::encode_changes;
use crate::wire::{query_value, BadEscape};

pub const DEFAULT_LIMIT: usize = 500;
pub const MAX_LIMIT: usize = 5000;

const CURSOR_TAG: &[u8] = b"dl1";

/// Wraps a stamp into a cursor (None: the beginning).
pub fn encode_cursor(stamp: Option<Timestamp>) -> String {
    let ticks = stamp.map(Timestamp::ticks).unwrap_or(i64::MIN);
    let mut bytes = CURSOR_TAG.to_vec();
    bytes.extend_from_slice(&ticks.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Unwraps a cursor; None for the beginning.
pub fn decode_cursor(cursor: &str) -> Result<Option<Timestamp>, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "since: '{cursor}' is not a cursor of this service; use the cursor of the previous page, or omit since to start from the beginning"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad())?;
    let ticks = bytes
        .strip_prefix(CURSOR_TAG)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
        .ok_or_else(bad)?;
    Ok((ticks != i64::MIN).then(|| Timestamp::from_ticks(ticks)))
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
