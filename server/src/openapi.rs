//! `GET /openapi.json`: the OpenAPI 3.1 document of everything the server serves (the three
//! vendors' paths, the device endpoints, their parameters, bodies, responses, error bodies and
//! security schemes).
//!
//! The document is the committed file `server/openapi.json`, compiled in, so it is
//! reviewed as a file and served byte for byte; `tests/server_openapi.rs` checks that every path
//! and method it lists is served and that the served paths answer no method it leaves out.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::http::compressed;
use super::App;

/// The document's path.
pub const PATH: &str = "/openapi.json";

/// The document, as committed.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// The routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route(PATH, compressed(get(document)))
}

async fn document() -> Response {
    let mut response = Response::new(DOCUMENT.into());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
