//! `GET /openapi.json` and `GET /metrics`, and the middleware that feeds the metrics.
//! No credentials: both are read by tools (API clients, Prometheus) before any login.

use std::time::Instant;

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn openapi_json() -> Response {
    let body = crate::docs::openapi::document().to_string();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = crate::metrics::global().render();
    match state.store.stats().await {
        Ok(stats) => crate::metrics::render_store(&mut text, &stats),
        // The request counters are still worth a scrape while the database is away.
        Err(e) => tracing::warn!(error = %e, "store figures are missing from /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Counts each request under its route template (`/api/JobDispatchLog/{id}`), so row ids do not
/// multiply the series; requests no route matched share one series.
pub async fn observe_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    crate::metrics::global().record_request(
        &route,
        &method,
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}
