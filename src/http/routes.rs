//! The route table: each path template and its handlers. The endpoint catalogue
//! (`docs::ENDPOINTS`) documents every one; the tests below build the router and hold the two
//! together in both directions, and tie the limits the catalogue states to the constants.

use axum::routing::{get, post, MethodRouter};

use super::{
    changes, decide, delete, dispatch, get, health, help, history, list, put, save, save_multiple,
    service, stream, AppState,
};

/// Every route of the service. `/api/{key}` is the original's OData key syntax
/// (`/api/JobDispatchLog(…)`), documented as an alias of `/api/JobDispatchLog/{id}`.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let rows = || {
        get(get::get_job_dispatch_log)
            .put(put::put_job_dispatch_log)
            .delete(delete::delete_job_dispatch_log)
    };
    vec![
        ("/health", get(health::health)),
        ("/api/JobDispatchLog", get(list::list_job_dispatch_logs)),
        ("/metrics", get(service::metrics_for_admin)),
        ("/openapi.json", get(service::openapi_json)),
        ("/Help", get(help::help_index)),
        ("/Help/Api/{page}", get(help::help_page)),
        (
            "/api/JobDispatchLog/Save",
            post(save::save_job_dispatch_log),
        ),
        (
            "/api/JobDispatchLog/SaveMultiple",
            post(save_multiple::save_job_dispatch_logs),
        ),
        ("/api/JobDispatchLog/Dispatch", post(dispatch::dispatch_job)),
        (
            "/api/JobDispatchLog/Changes",
            get(changes::list_job_dispatch_log_changes),
        ),
        (
            "/api/JobDispatchLog/Changes/Stream",
            get(stream::stream_job_dispatch_log_changes),
        ),
        (
            "/api/JobDispatchLog/{id}/Accept",
            post(decide::accept_job_dispatch_log),
        ),
        (
            "/api/JobDispatchLog/{id}/Reject",
            post(decide::reject_job_dispatch_log),
        ),
        (
            "/api/JobDispatchLog/{id}/History",
            get(history::get_job_dispatch_log_history),
        ),
        ("/api/JobDispatchLog/{id}", rows()),
        ("/api/{key}", rows()),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::{Method, StatusCode};
    use axum::Router;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::routes;
    use crate::auth::{Authenticator, FailureLimiter};
    use crate::docs::{error_meaning, Endpoint, ENDPOINTS};
    use crate::http::{router, AppState, SEGMENTS};
    use crate::store::{self, DatabaseUrl};

    const ID: &str = "567c1c0c-91e3-4ca3-ac31-eb151e427f59";
    const METHODS: [Method; 4] = [Method::GET, Method::PUT, Method::POST, Method::DELETE];

    /// The path the catalogue documents for a route of the router.
    fn documented(route: &str) -> &str {
        match route {
            "/api/{key}" => "/api/JobDispatchLog({id})",
            path => path,
        }
    }

    /// A path a client would send for a documented template.
    fn concrete(path: &str) -> String {
        path.replace("{id}", ID)
            .replace("{page}", "POST-api-JobDispatchLog-Save")
    }

    fn documents(e: &Endpoint, method: &Method, path: &str) -> bool {
        e.method == method.as_str() && e.paths().any(|p| p == path)
    }

    async fn app() -> Router {
        let store = store::open(&DatabaseUrl::SqliteMemory).await.unwrap();
        let auth = Arc::new(Authenticator::new(
            store.clone(),
            FailureLimiter::new(100, Duration::from_secs(60)),
            Duration::from_secs(2),
        ));
        router(AppState {
            store,
            auth,
            trusted_proxies: Default::default(),
            metrics: Arc::new(crate::http::service::MetricsSettings {
                tenant_names: false,
                tenant_figures: crate::metrics::TenantFiguresCache::new(Duration::ZERO),
            }),
            streams: Arc::new(crate::http::stream::Streams::new(
                10,
                Duration::from_secs(2),
            )),
        })
    }

    /// The status and body the router answers, without credentials or body.
    async fn ask(app: &Router, method: &Method, path: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        // The stream never ends: its status says enough.
        if path.ends_with("/Stream") {
            return (status, String::new());
        }
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_router_serves_exactly_the_endpoints_of_the_catalogue() {
        let app = app().await;
        // Every documented method and path reaches a handler: no 405, no fallback 404.
        for e in ENDPOINTS {
            let method = Method::from_bytes(e.method.as_bytes()).unwrap();
            for path in e.paths() {
                let (status, body) = ask(&app, &method, &concrete(path)).await;
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    !body.contains("No resource at"),
                    "{method} {path} is documented but not routed"
                );
            }
        }
        // Every route is documented, and answers 405 to the methods it is not documented for.
        for (route, _) in routes() {
            let path = documented(route);
            assert!(
                ENDPOINTS.iter().any(|e| e.paths().any(|p| p == path)),
                "{route} is routed but not documented"
            );
            for method in &METHODS {
                if !ENDPOINTS.iter().any(|e| documents(e, method, path)) {
                    let (status, _) = ask(&app, method, &concrete(path)).await;
                    assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {path} is routed but not documented"
                    );
                }
            }
        }
    }

    #[test]
    fn every_fixed_segment_of_the_api_is_put_in_canonical_case() {
        for e in ENDPOINTS {
            for path in e.paths().filter(|p| p.starts_with("/api/")) {
                for segment in path
                    .split('/')
                    .filter(|s| !s.is_empty() && !s.contains('{'))
                {
                    assert!(SEGMENTS.contains(&segment), "{segment} of {path}");
                }
            }
        }
        assert!(SEGMENTS.contains(&"Help"));
    }

    fn endpoint(operation_id: &str) -> &'static Endpoint {
        ENDPOINTS
            .iter()
            .find(|e| e.operation_id == operation_id)
            .unwrap()
    }

    fn rules_of(e: &Endpoint, param: &str) -> &'static str {
        e.params.iter().find(|p| p.name == param).unwrap().rules
    }

    /// The limits the help pages and the OpenAPI document state (both are generated from the
    /// catalogue) are the ones the service enforces.
    #[test]
    fn the_documented_limits_are_the_enforced_ones() {
        use crate::docs::{help, DISPATCH};
        use crate::domain::workflow::MAX_DISPATCH_USERS;
        use crate::http::changes::{DEFAULT_LIMIT, MAX_LIMIT};
        use crate::http::extract::{BATCH_LIMIT, SINGLE_LIMIT};
        use crate::http::save_multiple::MAX_ITEMS;
        use crate::query::{DEFAULT_TOP, MAX_TOP};

        let too_large = error_meaning(413);
        assert!(
            too_large.contains(&format!("({} MiB,", SINGLE_LIMIT >> 20)),
            "{too_large}"
        );
        assert!(
            too_large.contains(&format!("or {} MiB for SaveMultiple", BATCH_LIMIT >> 20)),
            "{too_large}"
        );
        let list = endpoint("list_job_dispatch_logs");
        assert_eq!(
            rules_of(list, "$top"),
            format!("Default {DEFAULT_TOP}, at most {MAX_TOP}.")
        );
        let changes = endpoint("list_job_dispatch_log_changes");
        assert_eq!(
            rules_of(changes, "limit"),
            format!("1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}.")
        );
        let save_multiple = endpoint("save_job_dispatch_logs");
        assert!(save_multiple
            .description
            .contains(&format!("up to {MAX_ITEMS} rows")));
        assert!(help::endpoint_page(save_multiple).contains(&format!("(at most {MAX_ITEMS})")));
        let user_ids = DISPATCH
            .members
            .iter()
            .find(|m| m.name == "user_ids")
            .unwrap();
        assert!(user_ids
            .rules
            .contains(&format!("1 to {MAX_DISPATCH_USERS} GUIDs")));
    }
}
