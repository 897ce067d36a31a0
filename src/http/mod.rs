//! The HTTP API: the router, shared state, and the middleware that renders every error as a
//! problem document in the negotiated format. One file per action.

pub mod changes;
pub mod client_addr;
mod decide;
mod delete;
mod dispatch;
pub mod extract;
mod get;
mod health;
pub mod help;
mod history;
mod list;
mod put;
pub mod respond;
mod routes;
mod save;
mod save_multiple;
pub mod service;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::auth::Authenticator;
use crate::error::{ApiError, PendingProblem};
use crate::store::Store;
use crate::wire::{self, DecodeError};
use client_addr::{ClientAddr, TrustedProxies};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
    /// Whose `X-Forwarded-For` / `Forwarded` headers name the client.
    pub trusted_proxies: Arc<TrustedProxies>,
    pub metrics: Arc<service::MetricsSettings>,
    /// The open change streams.
    pub streams: Arc<stream::Streams>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The service: every route of [`routes::routes`], behind the middleware.
pub fn router(state: AppState) -> Router {
    let trusted_proxies = state.trusted_proxies.clone();
    routes::routes()
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn(render_problems))
        .layer(middleware::from_fn(service::observe_requests))
        // Answers are gzipped for clients that accept it (phones on mobile data pulling the
        // feed). The fastest level: JSON and XML rows repeat their field names, so it already
        // takes most of the bytes away, at a third of the default level's CPU. Event streams
        // are never compressed (their events must leave at once), nor answers under 32 bytes.
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .quality(CompressionLevel::Fastest),
        )
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    // Layers run per route, so the matched template is known here.
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(MatchedPath::as_str)
                        .unwrap_or("unmatched");
                    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        route,
                        request_id,
                        client = client.map(tracing::field::display),
                        tenant = tracing::field::Empty,
                        "job_dispatch_log.id" = tracing::field::Empty,
                    )
                })
                // One line per request at INFO; method, route, request id and tenant come
                // from the span. Headers are never logged (Authorization carries passwords).
                .on_response(|res: &Response, latency: Duration, _span: &Span| {
                    tracing::info!(
                        status = res.status().as_u16(),
                        latency_ms = latency.as_secs_f64() * 1000.0,
                        "request finished"
                    )
                }),
        )
        // Outside the trace layer, so that the request's span names the client.
        .layer(middleware::from_fn_with_state(
            trusted_proxies,
            client_addr::resolve_client_addr,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The separate metrics address (`--metrics-listen`): `/metrics` only, without credentials.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(service::metrics_for_operator),
        )
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn(render_problems))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("No resource at {}.", req.uri().path()))
}

/// Maps a body that could not be decoded to its 400.
pub fn decode_failed(e: DecodeError) -> ApiError {
    match e {
        DecodeError::Malformed(message) => ApiError::BadRequest(message),
        DecodeError::Invalid(errors) => ApiError::Validation(errors),
        DecodeError::TooMany(max) => ApiError::BadRequest(format!(
            "the list holds more than {max} items; send at most {max} per request"
        )),
    }
}

/// Renders the problem an error response carries (and axum's bare 405s) in the form the request
/// negotiated (see [`wire::ProblemForm`]).
async fn render_problems(req: Request, next: Next) -> Response {
    let form = wire::negotiate_problem(req.headers(), req.uri().query());
    let mut res = next.run(req).await;
    let problem = match res.extensions_mut().remove::<PendingProblem>() {
        Some(PendingProblem(p)) => p,
        None if res.status() == StatusCode::METHOD_NOT_ALLOWED
            && !res.headers().contains_key(header::CONTENT_TYPE) =>
        {
            ApiError::MethodNotAllowed.to_problem()
        }
        None => return res,
    };
    let (mut parts, _) = res.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(form.content_type()),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(problem.encode(form)))
}

/// The fixed path segments of the API's routes, in their canonical case (a test checks that
/// every segment of the catalogue's paths is here).
const SEGMENTS: [&str; 11] = [
    "api",
    "JobDispatchLog",
    "Save",
    "SaveMultiple",
    "Changes",
    "Stream",
    "Accept",
    "Reject",
    "Dispatch",
    "History",
    "Help",
];

/// The original's routes are case-insensitive (ASP.NET); clients send
/// `/api/jobdispatchlog/save` as often as `/api/JobDispatchLog/Save`. Known segments are put
/// in their canonical case before routing.
pub fn canonical_path(path: &str) -> Option<String> {
    // Help pages live under `/Help/Api/` (capital A, as on the original), not the API's `/api/`.
    const HELP_PAGES: &str = "/Help/Api/";
    if path.len() > HELP_PAGES.len()
        && path.is_char_boundary(HELP_PAGES.len())
        && path[..HELP_PAGES.len()].eq_ignore_ascii_case(HELP_PAGES)
    {
        let canonical = format!("{HELP_PAGES}{}", &path[HELP_PAGES.len()..]);
        return (canonical != path).then_some(canonical);
    }
    // A segment in another case than its canonical one: the name to write instead.
    let recased = |segment: &str| {
        SEGMENTS.into_iter().find(|known| {
            segment.len() >= known.len()
                && segment.is_char_boundary(known.len())
                && segment[..known.len()].eq_ignore_ascii_case(known)
                && segment[..known.len()] != **known
                && (segment.len() == known.len() || segment[known.len()..].starts_with('('))
        })
    };
    // Almost every request is already canonical: answer that without allocating.
    if !path.split('/').any(|segment| recased(segment).is_some()) {
        return None;
    }
    let canonical: Vec<String> = path
        .split('/')
        .map(|segment| match recased(segment) {
            Some(known) => format!("{known}{}", &segment[known.len()..]),
            None => segment.to_string(),
        })
        .collect();
    Some(canonical.join("/"))
}

/// Rewrites the request path to its canonical case (see [`canonical_path`]).
pub fn canonicalize_request(mut req: Request<Body>) -> Request<Body> {
    if let Some(path) = canonical_path(req.uri().path()) {
        let mut parts = req.uri().clone().into_parts();
        let path_and_query = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(pq) = path_and_query.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 500 and 503 cannot be provoked from outside on demand; the middleware that writes every
    /// error is exercised here with handlers that fail that way.
    #[tokio::test]
    async fn unexpected_and_unavailable_errors_take_the_form_accept_asks_for() {
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        let app = Router::new()
            .fallback(|req: Request| async move {
                match req.uri().path() {
                    "/internal" => ApiError::Internal(anyhow::anyhow!("SELECT secret")),
                    _ => ApiError::Unavailable(anyhow::anyhow!("connection refused")),
                }
            })
            .layer(middleware::from_fn(render_problems));
        for (path, status) in [("/internal", 500), ("/unavailable", 503)] {
            for (accept, content_type, start) in [
                (None, "application/json", "{\"type\""),
                (
                    Some("application/problem+json"),
                    "application/problem+json",
                    "{\"type\"",
                ),
                (
                    Some("application/xml"),
                    "application/xml",
                    "<Error><Message>",
                ),
                (
                    Some("application/problem+xml"),
                    "application/problem+xml",
                    "<problem xmlns=\"urn:ietf:rfc:7807\"><type>",
                ),
            ] {
                let mut req = Request::builder().uri(path);
                if let Some(a) = accept {
                    req = req.header(header::ACCEPT, a);
                }
                let res = app
                    .clone()
                    .oneshot(req.body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(res.status().as_u16(), status);
                let ct = res.headers()[header::CONTENT_TYPE].to_str().unwrap();
                assert!(ct.starts_with(content_type), "{path} {accept:?}: {ct}");
                let body = res.into_body().collect().await.unwrap().to_bytes();
                let text = String::from_utf8(body.to_vec()).unwrap();
                assert!(text.starts_with(start), "{path} {accept:?}: {text}");
                assert!(text.contains(&status.to_string()), "{text}");
                // Internal causes are logged, never sent.
                assert!(
                    !text.contains("secret") && !text.contains("refused"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn routes_match_without_regard_to_case() {
        assert_eq!(
            canonical_path("/API/jobdispatchlog/save").as_deref(),
            Some("/api/JobDispatchLog/Save")
        );
        assert_eq!(
            canonical_path("/api/jobDispatchLog(abc)").as_deref(),
            Some("/api/JobDispatchLog(abc)")
        );
        assert_eq!(canonical_path("/api/JobDispatchLog/Save"), None);
        assert_eq!(canonical_path("/api/Savers"), None);
        assert_eq!(
            canonical_path("/help/api/POST-api-JobDispatchLog-Save").as_deref(),
            Some("/Help/Api/POST-api-JobDispatchLog-Save")
        );
        assert_eq!(canonical_path("/Help/Api/GET-api-JobDispatchLog-id"), None);
    }
}
