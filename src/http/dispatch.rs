//! `POST /api/JobDispatchLog/Dispatch`: send a job to several technicians at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::extract::{Caller, Wire, WireBody, SINGLE_LIMIT};
use super::{decode_failed, respond, AppState};
use crate::domain::workflow::DispatchRequest;
use crate::domain::ValidationErrors;
use crate::error::ApiError;
use crate::wire::xml::{self, XmlValue};
use crate::wire::{DecodeError, Format};

fn parse(format: Format, body: &[u8]) -> Result<DispatchRequest, ApiError> {
    let mut errors = ValidationErrors::default();
    let (jobs_id, user_ids, is_workshop) = match format {
        Format::Json => {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
            let Value::Object(map) = value else {
                return Err(ApiError::BadRequest(
                    "the body must be a JSON object {\"jobs_id\", \"user_ids\", \"is_workshop\"}"
                        .into(),
                ));
            };
            let get = |name: &str| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let jobs_id = match get("jobs_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    errors.add("jobs_id", "must be a GUID string");
                    None
                }
            };
            let user_ids = match get("user_ids") {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect(),
                ),
                Some(_) => {
                    errors.add("user_ids", "must be an array of GUID strings");
                    None
                }
            };
            let is_workshop = match get("is_workshop") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    errors.add("is_workshop", "must be a boolean (true or false)");
                    false
                }
            };
            (jobs_id, user_ids, is_workshop)
        }
        Format::Xml => {
            let fields = xml::decode_fields(body).map_err(decode_failed)?;
            let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            let jobs_id = match get("jobs_id") {
                Some(XmlValue::Text(t)) if !t.trim().is_empty() => Some(t.clone()),
                _ => None,
            };
            let user_ids = match get("user_ids") {
                Some(XmlValue::List(items)) => Some(items.iter().cloned().map(Some).collect()),
                Some(XmlValue::Text(t)) if !t.trim().is_empty() => {
                    Some(t.split(',').map(|s| Some(s.trim().to_string())).collect())
                }
                _ => None,
            };
            let is_workshop = match get("is_workshop") {
                Some(XmlValue::Text(t)) => match t.trim() {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    _ => {
                        errors.add("is_workshop", "must be a boolean (true or false)");
                        false
                    }
                },
                _ => false,
            };
            (jobs_id, user_ids, is_workshop)
        }
    };
    match DispatchRequest::parse(jobs_id.as_deref(), user_ids, is_workshop) {
        Ok(request) if errors.is_empty() => Ok(request),
        Ok(_) => Err(ApiError::Validation(errors)),
        Err(more) => {
            errors.absorb_prefixed("", more);
            Err(ApiError::Validation(errors))
        }
    }
}

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
    let request = parse(body.format, &body.bytes)?;
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
