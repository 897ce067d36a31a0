//! `POST /api/JobDispatchLog/Save`: add or update one row (upsert on `id`).

use axum::extract::State;
use axum::response::Response;

use super::extract::{Caller, IfMatch, Prefer, Wire, WireBody, SINGLE_LIMIT};
use super::{decode_failed, respond, AppState};
use crate::domain::DispatchDraft;
use crate::error::ApiError;
use crate::store::SaveItem;
use crate::wire;

pub async fn save_job_dispatch_log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    prefer: Prefer,
    IfMatch(if_match): IfMatch,
    body: WireBody<SINGLE_LIMIT>,
) -> Result<Response, ApiError> {
    let raw = wire::decode_one(body.format, &body.bytes).map_err(decode_failed)?;
    let draft = DispatchDraft::try_from(&raw).map_err(ApiError::Validation)?;
    tracing::Span::current().record("job_dispatch_log.id", tracing::field::display(draft.id));
    let saved = state
        .store
        .save(&caller, vec![SaveItem { draft, if_match }])
        .await?;
    let saved = saved
        .first()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a save returned no row")))?;
    Ok(respond::saved(neg, saved, prefer.minimal))
}
