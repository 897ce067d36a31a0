//! `GET /Help` and `GET /Help/Api/{page}`: the API's help pages (written by `docs::help`). No
//! credentials: integrators read them before they have an account.

use axum::extract::Path;
use axum::response::Html;

use crate::docs::{endpoint_by_page, help};
use crate::error::ApiError;

pub async fn help_index() -> Html<String> {
    Html(help::index_page())
}

pub async fn help_page(Path(page): Path<String>) -> Result<Html<String>, ApiError> {
    endpoint_by_page(&page)
        .map(|e| Html(help::endpoint_page(e)))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "No help page named '{page}'; the list of pages is at /Help."
            ))
        })
}
