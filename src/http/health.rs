//! `GET /health`: 200 when the database answers, 503 otherwise (also while writes fail for a
//! full disk, though reads go on). No credentials.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;
use crate::store::StoreError;

pub async fn health(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(StoreError::DiskFull) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "degraded: {}; writes are refused, reads go on",
                StoreError::DISK_FULL
            ),
        )
            .into_response(),
        Err(e) => ApiError::Unavailable(e.into()).into_response(),
    }
}
