//! The symphony dialect's routes (in progress).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;

use super::App;

/// This dialect's own server state.
#[derive(Debug, Default)]
pub struct State {}

/// This dialect's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
}

/// An error response in this dialect's shape.
pub fn error(status: StatusCode, message: &str) -> Response {
    super::http::own_error(status, message)
}
