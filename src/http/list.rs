//! `GET /api/JobDispatchLog`: the OData list (SPEC §6).
//!
//! Pages are stable: the order is always completed with `id`, and a page is read from one
//! snapshot. Paging by `modified_dateutc gt X` is exact because stamps follow commit order.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;

use super::extract::{Caller, Wire};
use super::{respond, AppState};
use crate::error::ApiError;
use crate::query::ListQuery;
use crate::wire::documents::encode_list_page;
use crate::wire::percent_decode;

pub async fn list_job_dispatch_logs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Wire(neg): Wire,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(uri.query()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page = state.store.list(&caller, query.clone()).await?;
    let base = base_url(&headers);
    // With `$top=0` the next page would be this same empty page: a client following links
    // would loop forever, so there is none.
    let next = (page.has_more && query.top > 0)
        .then(|| next_link(&base, uri.query(), query.skip + u64::from(query.top)));
    let body = encode_list_page(
        neg.format,
        &page.rows,
        query.select.as_deref(),
        &base,
        page.count,
        next.as_deref(),
    );
    let mut res = respond::body(neg, StatusCode::OK, body);
    if let Some(count) = page.count {
        if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
            res.headers_mut().insert("odata-count", v);
        }
    }
    if let Some(next) = next {
        if let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            res.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(res)
}

/// `scheme://host` as the client sees the service.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// The same query with `$skip` moved to the next page.
fn next_link(base: &str, query: Option<&str>, skip: u64) -> String {
    let mut parts: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            !percent_decode(name).is_some_and(|n| n.eq_ignore_ascii_case("$skip"))
        })
        .map(str::to_string)
        .collect();
    parts.push(format!("$skip={skip}"));
    format!("{base}/api/JobDispatchLog?{}", parts.join("&"))
}
