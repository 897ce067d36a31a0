//! `POST /api/JobDispatchLog/SaveMultiple`: add or update a list, all or nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::{Caller, Wire, WireBody, BATCH_LIMIT};
use super::{decode_failed, respond, AppState};
use crate::domain::{DispatchDraft, JobDispatchLog, ValidationErrors};
use crate::error::ApiError;
use crate::store::SaveItem;
use crate::wire;

/// Most rows in one SaveMultiple.
pub const MAX_ITEMS: usize = 1000;

pub async fn save_job_dispatch_logs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    body: WireBody<BATCH_LIMIT>,
) -> Result<Response, ApiError> {
    // Refused at the first item past the limit, before the others are read (SPEC §8).
    let raws = wire::decode_list(body.format, &body.bytes, MAX_ITEMS).map_err(decode_failed)?;
    let mut errors = ValidationErrors::default();
    let mut drafts = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        match DispatchDraft::try_from(raw) {
            Ok(draft) => drafts.push(SaveItem {
                draft,
                if_match: None,
            }),
            Err(e) => errors.absorb_prefixed(&format!("[{i}]."), e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let saved = if drafts.is_empty() {
        Vec::new()
    } else {
        state.store.save(&caller, drafts).await?
    };
    let rows: Vec<JobDispatchLog> = saved.into_iter().map(|s| s.row).collect();
    Ok(respond::rows(neg, StatusCode::OK, &rows))
}
