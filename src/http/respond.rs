//! Responses in the negotiated format.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::domain::{Field, JobDispatchLog};
use crate::wire::{self, json, xml, Format, Negotiated};

/// A body of the negotiated media type.
pub fn body(neg: Negotiated, status: StatusCode, text: String) -> Response {
    let mut res = Response::new(Body::from(text));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(neg.content_type()),
    );
    res
}

/// One row, with its `ETag`; `minimal` sends only its id (`Prefer: return=minimal`).
pub fn row(neg: Negotiated, status: StatusCode, row: &JobDispatchLog, minimal: bool) -> Response {
    let text = if minimal {
        let mut out = String::new();
        match neg.format {
            Format::Json => json::write_row(&mut out, row, Some(&[Field::Id])),
            Format::Xml => xml::write_row(&mut out, row, Some(&[Field::Id]), true),
        }
        out
    } else {
        wire::encode_row(neg.format, row)
    };
    let mut res = body(neg, status, text);
    if let Ok(v) = HeaderValue::from_str(&row.etag()) {
        res.headers_mut().insert(header::ETAG, v);
    }
    if minimal {
        res.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_static("return=minimal"),
        );
    }
    res
}

/// A row just saved: 201 with `Location` when inserted, 200 when updated.
pub fn saved(neg: Negotiated, saved: &crate::store::SaveOutcome, minimal: bool) -> Response {
    let status = if saved.inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut res = row(neg, status, &saved.row, minimal);
    if saved.inserted {
        if let Ok(v) = HeaderValue::from_str(&format!("/api/JobDispatchLog({})", saved.row.id)) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    res
}

/// A plain list of rows (`[…]` or `ArrayOfjob_dispatch_log`).
pub fn rows(neg: Negotiated, status: StatusCode, rows: &[JobDispatchLog]) -> Response {
    body(neg, status, wire::encode_rows(neg.format, rows))
}
