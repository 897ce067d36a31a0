//! `POST /api/JobDispatchLog/{id}/Accept` and `…/Reject`: a technician's decision.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::{Caller, IfMatch, RowId, Wire, WireBody, SINGLE_LIMIT};
use super::{decode_failed, respond, AppState};
use crate::domain::workflow::Decision;
use crate::domain::RawRecord;
use crate::error::ApiError;
use crate::wire;

/// The body, when there is one (Accept may come without).
fn optional_record(body: &WireBody<SINGLE_LIMIT>) -> Result<Option<RawRecord>, ApiError> {
    if body.bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    wire::decode_one(body.format, &body.bytes)
        .map(Some)
        .map_err(decode_failed)
}

pub async fn accept_job_dispatch_log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    RowId(id): RowId,
    IfMatch(if_match): IfMatch,
    body: WireBody<SINGLE_LIMIT>,
) -> Result<Response, ApiError> {
    let decision =
        Decision::accept_from(optional_record(&body)?.as_ref()).map_err(ApiError::Validation)?;
    let row = state.store.decide(&caller, id, decision, if_match).await?;
    Ok(respond::row(neg, StatusCode::OK, &row, false))
}

pub async fn reject_job_dispatch_log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    RowId(id): RowId,
    IfMatch(if_match): IfMatch,
    body: WireBody<SINGLE_LIMIT>,
) -> Result<Response, ApiError> {
    let decision =
        Decision::reject_from(optional_record(&body)?.as_ref()).map_err(ApiError::Validation)?;
    let row = state.store.decide(&caller, id, decision, if_match).await?;
    Ok(respond::row(neg, StatusCode::OK, &row, false))
}
