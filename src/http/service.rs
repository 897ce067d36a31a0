//! `GET /openapi.json` (no credentials: tools read it before any login), `GET /metrics` (an
//! admin's login on the API's address; none on the separate `--metrics-listen` address), and
//! the middleware that feeds the metrics.

use std::time::Instant;

use super::extract::Caller;
use super::AppState;
use crate::domain::Role;
use crate::error::ApiError;
use crate::metrics::TenantView;
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

/// How `/metrics` is served (`--metrics-listen`, `--metrics-tenant-names`,
/// `--metrics-refresh`).
pub struct MetricsSettings {
    pub tenant_names: bool,
    pub tenant_figures: crate::metrics::TenantFiguresCache,
}

/// `GET /metrics` on the API's own address: for an admin, about the process and the admin's
/// own tenant. The API's address is reachable by every client, and a tenant's admin is a
/// customer: the other tenants' figures are not theirs to see.
pub async fn metrics_for_admin(
    Caller(caller): Caller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    if caller.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "Only an admin may read the metrics.".into(),
        ));
    }
    let view = TenantView {
        only: Some(caller.tenant_id),
        names: state.metrics.tenant_names,
    };
    Ok(render_metrics(&state, view).await)
}

/// `GET /metrics` on `--metrics-listen`: every tenant, no credentials. That address is meant
/// for the operator's monitoring network only.
pub async fn metrics_for_operator(State(state): State<AppState>) -> Response {
    let view = TenantView {
        only: None,
        names: state.metrics.tenant_names,
    };
    render_metrics(&state, view).await
}

async fn render_metrics(state: &AppState, view: TenantView) -> Response {
    let mut text = crate::metrics::global().render();
    crate::metrics::render_store(&mut text, &state.store.stats());
    crate::metrics::render_streams(
        &mut text,
        state.streams.open(),
        state.streams.events_sent(),
        state.streams.sync_lag(),
    );
    match state.metrics.tenant_figures.get(&*state.store).await {
        Ok((figures, age)) => crate::metrics::render_tenants(&mut text, &figures, age, view),
        // The request counters are still worth a scrape while the database is away.
        Err(e) => tracing::warn!(error = %e, "per-tenant figures are missing from /metrics"),
    }
    crate::metrics::render_process(&mut text);
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
