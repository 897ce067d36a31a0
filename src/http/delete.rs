//! `DELETE /api/JobDispatchLog(<id>)` and `DELETE /api/JobDispatchLog/<id>`: logical delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::extract::{Caller, IfMatch, RowId};
use super::AppState;
use crate::error::ApiError;
use crate::store::DeleteOutcome;

pub async fn delete_job_dispatch_log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RowId(id): RowId,
    IfMatch(if_match): IfMatch,
) -> Result<Response, ApiError> {
    match state.store.delete(&caller, id, if_match).await? {
        DeleteOutcome::NotFound => Err(ApiError::not_found_row(id)),
        DeleteOutcome::Deleted | DeleteOutcome::AlreadyDeleted => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}
