//! The server's openapi routes (in progress).

use std::sync::Arc;

use axum::Router;

use super::App;

/// The routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
}
