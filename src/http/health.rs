//! `GET /health`: 200 when the database answers, 503 otherwise. No credentials.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;

pub async fn health(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => ApiError::Unavailable(e.into()).into_response(),
    }
}
