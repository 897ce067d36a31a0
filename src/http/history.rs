//! `GET /api/JobDispatchLog/{id}/History`: every accept, reject, reassignment and delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::{Caller, RowId, Wire};
use super::{respond, AppState};
use crate::error::ApiError;
use crate::wire::documents::encode_history;

pub async fn get_job_dispatch_log_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    RowId(id): RowId,
) -> Result<Response, ApiError> {
    let entries = state
        .store
        .history(&caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found_row(id))?;
    Ok(respond::body(
        neg,
        StatusCode::OK,
        encode_history(neg.format, id, &entries),
    ))
}
