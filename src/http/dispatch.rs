//! `POST /api/JobDispatchLog/Dispatch`: send a job to several technicians at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::{Caller, Wire, WireBody, SINGLE_LIMIT};
use super::{decode_failed, respond, AppState};
use crate::error::ApiError;
use crate::wire::documents::decode_dispatch;
use crate::wire::DecodeError;

pub async fn dispatch_job(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    body: WireBody<SINGLE_LIMIT>,
) -> Result<Response, ApiError> {
    if caller.is_technician() {
        return Err(ApiError::Forbidden(
            "Forbidden: a technician cannot dispatch jobs.".into(),
        ));
    }
    if body.bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(decode_failed(DecodeError::Malformed(
            "the request body is empty".into(),
        )));
    }
    let request = decode_dispatch(body.format, &body.bytes).map_err(decode_failed)?;
    let rows = state
        .store
        .dispatch(
            &caller,
            request.jobs_id,
            request.user_ids,
            request.is_workshop,
        )
        .await?;
    Ok(respond::rows(neg, StatusCode::OK, &rows))
}
