//! `PUT /api/JobDispatchLog(<id>)` and `PUT /api/JobDispatchLog/<id>`: upsert at that id.

use axum::extract::State;
use axum::response::Response;

use super::extract::{Caller, IfMatch, Prefer, RowId, Wire, WireBody, SINGLE_LIMIT};
use super::{decode_failed, respond, AppState};
use crate::domain::{DispatchDraft, Field};
use crate::error::ApiError;
use crate::store::SaveItem;
use crate::wire;

pub async fn put_job_dispatch_log(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    RowId(id): RowId,
    prefer: Prefer,
    IfMatch(if_match): IfMatch,
    body: WireBody<SINGLE_LIMIT>,
) -> Result<Response, ApiError> {
    let raw = wire::decode_one(body.format, &body.bytes).map_err(decode_failed)?;
    let mut draft = DispatchDraft::try_from(&raw).map_err(ApiError::Validation)?;
    if draft.id_from_client && draft.id != id {
        return Err(ApiError::field(
            Field::Id.name(),
            format!("{} does not match the id {id} in the URL", draft.id),
        ));
    }
    draft.id = id;
    draft.id_from_client = true;
    let saved = state
        .store
        .save(&caller, vec![SaveItem { draft, if_match }])
        .await?;
    let saved = saved
        .first()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a save returned no row")))?;
    Ok(respond::saved(neg, saved, prefer.minimal))
}
