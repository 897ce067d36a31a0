//! `GET /api/JobDispatchLog(<id>)` and `GET /api/JobDispatchLog/<id>`: one row.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::{Caller, RowId, Wire};
use super::{respond, AppState};
use crate::error::ApiError;

pub async fn get_job_dispatch_log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    RowId(id): RowId,
) -> Result<Response, ApiError> {
    let row = state
        .store
        .get(&caller, id)
        .await?
        .ok_or_else(|| ApiError::not_found_row(id))?;
    Ok(respond::row(neg, StatusCode::OK, &row, false))
}
