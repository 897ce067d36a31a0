//! Extractors: the caller, the response format, the body, the row id and request preferences.
//! Each fails with the [`ApiError`] of SPEC §4.4.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, request::Parts};
use uuid::Uuid;

use super::client_addr::ClientAddr;
use super::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::server::BodyTimeout;
use crate::wire::{self, Format, Negotiated};

/// The authenticated caller.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Set by `client_addr::resolve_client_addr` for every request of the router.
        let client = parts
            .extensions
            .get::<ClientAddr>()
            .map(|c| c.0)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = state.auth.authenticate(authorization, client).await?;
        tracing::Span::current().record("tenant", principal.domain.as_str());
        Ok(Caller(principal))
    }
}

/// The response format chosen by `$format` or `Accept`.
pub struct Wire(pub Negotiated);

impl<S: Send + Sync> FromRequestParts<S> for Wire {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        wire::negotiate(&parts.headers, parts.uri.query())
            .map(Wire)
            .map_err(|e| {
                ApiError::BadRequest(format!("$format must be json or xml, not '{}'", e.0))
            })
    }
}

/// A request body of at most `LIMIT` bytes in one of the accepted media types.
pub struct WireBody<const LIMIT: usize> {
    pub format: Format,
    pub bytes: Bytes,
}

/// Single rows: 1 MiB.
pub const SINGLE_LIMIT: usize = 1 << 20;
/// Lists: 16 MiB.
pub const BATCH_LIMIT: usize = 16 << 20;

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for WireBody<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > LIMIT) {
            return Err(ApiError::PayloadTooLarge(LIMIT));
        }
        let format =
            wire::body_format(req.headers()).map_err(|e| ApiError::UnsupportedMediaType(e.0))?;
        // A client that sends its body slowly, or stops, holds a connection and a task: it has
        // the body timeout to finish.
        let timeout = req
            .extensions()
            .get::<BodyTimeout>()
            .map_or(Duration::from_secs(30), |t| t.0);
        let bytes = tokio::time::timeout(timeout, axum::body::to_bytes(req.into_body(), LIMIT))
            .await
            .map_err(|_| ApiError::RequestTimeout(timeout))?
            .map_err(|e| {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                if too_large {
                    ApiError::PayloadTooLarge(LIMIT)
                } else {
                    ApiError::BadRequest(format!("the request body could not be read: {e}"))
                }
            })?;
        Ok(WireBody { format, bytes })
    }
}

/// The row id of `/api/JobDispatchLog(<id>)` or `/api/JobDispatchLog/<id>`.
pub struct RowId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for RowId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("No such resource.".into()))?;
        let text = if let Some(id) = params.get("id") {
            id.as_str()
        } else {
            let key = params.get("key").map(String::as_str).unwrap_or("");
            match key
                .strip_prefix("JobDispatchLog(")
                .and_then(|k| k.strip_suffix(')'))
            {
                Some(inner) => inner,
                None => return Err(ApiError::NotFound(format!("No resource /api/{key}."))),
            }
        };
        let text = text
            .strip_prefix("guid'")
            .and_then(|t| t.strip_suffix('\''))
            .unwrap_or(text)
            .trim_matches(|c| c == '\'' || c == ' ');
        Uuid::try_parse(text).map(RowId).map_err(|_| {
            ApiError::BadRequest(format!(
                "'{text}' in the URL is not a GUID (expected e.g. 567c1c0c-91e3-4ca3-ac31-eb151e427f59)"
            ))
        })
    }
}

/// `Prefer: return=minimal` (RFC 7240): answer writes with the id only.
pub struct Prefer {
    pub minimal: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Prefer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let minimal = parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"));
        Ok(Prefer { minimal })
    }
}

/// `If-Match`: the entity tags the client's change is based on.
pub struct IfMatch(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            Some(v) => v
                .to_str()
                .map(|v| IfMatch(Some(v.to_string())))
                .map_err(|_| ApiError::BadRequest("If-Match is not valid text".into())),
        }
    }
}
