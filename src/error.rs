//! The one error type of the HTTP API.
//!
//! Each variant has one documented status (SPEC §4.4). Handlers and extractors return it; its
//! response carries a [`Problem`] that the format middleware renders in the negotiated format.
//! Internal causes are logged here, with the request's span, and never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::domain::workflow::Refusal;
use crate::domain::{JobDispatchLog, ValidationErrors};
use crate::store::StoreError;
use crate::wire::problem::Problem;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a malformed body, query or path value.
    #[error("{0}")]
    BadRequest(String),
    /// 400: fields that break the rules, by field name.
    #[error("validation failed")]
    Validation(ValidationErrors),
    /// 401: no credentials, or credentials that do not match a user.
    #[error("authentication required")]
    Unauthorized,
    /// 403: authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such row (in the caller's view) or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the row's state forbids the change; carries the row as it stands, when the caller
    /// may see it.
    #[error("{detail}")]
    Conflict {
        detail: String,
        current: Option<Box<JobDispatchLog>>,
    },
    /// 410: the client's sync position is older than what the server still keeps.
    #[error("{0}")]
    Gone(String),
    /// 412: `If-Match` did not match; carries the row as it stands (if it exists).
    #[error("precondition failed")]
    PreconditionFailed {
        current: Option<Box<JobDispatchLog>>,
    },
    /// 413: the body is larger than allowed.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: a body in a media type the service does not read.
    #[error("unsupported media type {0}")]
    UnsupportedMediaType(String),
    /// 429: too many failed logins from this address.
    #[error("too many failed logins")]
    TooManyRequests { retry_after_secs: u64 },
    /// 408: the request's body did not arrive within the body timeout.
    #[error("the request body did not arrive in time")]
    RequestTimeout(std::time::Duration),
    /// 507: the database's disk is full; writes are refused, reads go on.
    #[error("the database's disk is full")]
    InsufficientStorage,
    /// 503 with `Retry-After`: the instance is at a documented limit (database connections);
    /// the text says which.
    #[error("{0}")]
    Busy(String),
    /// 503: the database does not answer.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500: anything unexpected.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn not_found_row(id: uuid::Uuid) -> Self {
        ApiError::NotFound(format!("No job_dispatch_log with id {id}."))
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = ValidationErrors::default();
        errors.add(field, message);
        ApiError::Validation(errors)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status().as_u16();
        let simple = |kind, title, detail: String| Problem {
            status,
            kind,
            title,
            detail,
            errors: None,
            current: None,
        };
        match self {
            ApiError::BadRequest(detail) => simple("bad-request", "Bad request", detail.clone()),
            ApiError::Validation(errors) => Problem {
                errors: Some(errors.fields().clone()),
                ..simple("validation", "Validation failed", errors.summary())
            },
            ApiError::Unauthorized => simple(
                "unauthorized",
                "Authentication required",
                "Send valid credentials: Authorization: Basic base64(username:password@domain), or a Bearer token.".into(),
            ),
            ApiError::Forbidden(detail) => simple("forbidden", "Forbidden", detail.clone()),
            ApiError::NotFound(detail) => simple("not-found", "Not found", detail.clone()),
            ApiError::MethodNotAllowed => simple(
                "method-not-allowed",
                "Method not allowed",
                "This resource does not support the request's method; see the Allow header.".into(),
            ),
            ApiError::Conflict { detail, current } => Problem {
                current: current.clone(),
                ..simple("conflict", "Conflict", detail.clone())
            },
            ApiError::Gone(detail) => simple("gone", "Gone", detail.clone()),
            ApiError::PreconditionFailed { current } => Problem {
                current: current.clone(),
                ..simple(
                    "precondition-failed",
                    "Precondition failed",
                    "The row changed since the version named in If-Match; the current row is in `current`.".into(),
                )
            },
            ApiError::PayloadTooLarge(limit) => simple(
                "payload-too-large",
                "Payload too large",
                format!("The request body is larger than the limit of {limit} bytes."),
            ),
            ApiError::UnsupportedMediaType(media) => simple(
                "unsupported-media-type",
                "Unsupported media type",
                format!(
                    "Content-Type '{media}' is not supported; send application/json, text/json, application/xml or text/xml."
                ),
            ),
            ApiError::TooManyRequests { retry_after_secs } => simple(
                "too-many-requests",
                "Too many requests",
                format!("Too many failed logins from this address; retry in {retry_after_secs} seconds."),
            ),
            ApiError::RequestTimeout(limit) => simple(
                "request-timeout",
                "Request timeout",
                format!(
                    "The request body did not arrive within {} seconds; send it without pauses.",
                    limit.as_secs_f64()
                ),
            ),
            ApiError::Busy(detail) => simple("busy", "Service busy", detail.clone()),
            ApiError::InsufficientStorage => simple(
                "disk-full",
                "Insufficient storage",
                "The database's disk is full: nothing was stored. Writes resume by themselves once space is freed; reads keep working.".into(),
            ),
            ApiError::Unavailable(_) => simple(
                "unavailable",
                "Service unavailable",
                "The database is not available right now; retry later.".into(),
            ),
            ApiError::Internal(_) => simple(
                "internal",
                "Internal server error",
                "An unexpected error occurred; it has been logged.".into(),
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(e) => ApiError::Unavailable(e),
            StoreError::Internal(e) => ApiError::Internal(e),
            StoreError::DiskFull => ApiError::InsufficientStorage,
            StoreError::Saturated => ApiError::Busy(
                "Every database connection of this instance is in use; retry in a second.".into(),
            ),
            StoreError::CursorPurged => ApiError::Gone(
                "The sync cursor is older than the retention of deleted rows; some deletions are no longer known. Resync from scratch: drop the local copy and call /api/JobDispatchLog/Changes without since.".into(),
            ),
            StoreError::Refused { index, refusal } => {
                let at = index.map(|i| format!("[{i}]: ")).unwrap_or_default();
                match refusal {
                    Refusal::NotFound => {
                        ApiError::NotFound(format!("{at}No such job_dispatch_log."))
                    }
                    Refusal::Forbidden(why) => ApiError::Forbidden(format!("{at}Forbidden: {why}.")),
                    Refusal::Conflict { detail, current } => ApiError::Conflict {
                        detail: format!("{at}{detail}"),
                        current,
                    },
                    Refusal::PreconditionFailed { current } => {
                        ApiError::PreconditionFailed { current }
                    }
                }
            }
        }
    }
}

/// The problem a response carries, for the format middleware to render.
#[derive(Debug, Clone)]
pub struct PendingProblem(pub Problem);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable")
            }
            ApiError::InsufficientStorage => {
                tracing::warn!("a write was refused: the database's disk is full")
            }
            _ => {}
        }
        let mut response = self.status().into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"dispatchlog\", charset=\"UTF-8\""),
            );
        }
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Busy(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, secs);
        }
        if matches!(self, ApiError::RequestTimeout(_)) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
            .extensions_mut()
            .insert(PendingProblem(self.to_problem()));
        response
    }
}
