//! What every route shares: the body limit, and the middleware that gives each error the body
//! of the dialect it came in.
//!
//! Handlers answer their own errors in their dialect. What axum answers for them (an unknown
//! path, a wrong method with its `Allow` header, a body over [`MAX_BODY`], a wrong content type,
//! JSON or a query string that does not parse) comes back as plain text; [`dialect_errors`]
//! rewrites it into the error body of the dialect the path belongs to, keeping the status and
//! headers, so no client ever sees an error shape its library does not know.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::compression::predicate::{And, DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// The largest request body accepted (64 KiB); a larger one is 413.
pub const MAX_BODY: usize = 64 * 1024;

/// Bodies shorter than this go uncompressed: a single presence gains nothing from gzip.
pub const MIN_COMPRESSED: u16 = 1024;

/// gzip or brotli, whichever the client's `Accept-Encoding` prefers, for bodies of
/// [`MIN_COMPRESSED`] bytes or more (a streamed body, of unknown length, included). At the
/// fastest level: a 7 MB list of users still shrinks about tenfold, at a fraction of the CPU of
/// the default levels.
pub fn compression() -> CompressionLayer<And<DefaultPredicate, SizeAbove>> {
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(DefaultPredicate::new().and(SizeAbove::new(MIN_COMPRESSED)))
}

/// The API a path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `/pod`, `/login`, `/relay`.
    Symphony,
    /// `/api/v1`.
    RocketChat,
    /// `/api/v2`, `/oauth`.
    Genesys,
    /// The server's own paths (`/devices`, `/openapi.json`, anything else).
    Own,
}

impl Dialect {
    /// The dialect of a request path.
    pub fn of(path: &str) -> Dialect {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/pod") || under("/login") || under("/relay") {
            Dialect::Symphony
        } else if under("/api/v1") {
            Dialect::RocketChat
        } else if under("/api/v2") || under("/oauth") {
            Dialect::Genesys
        } else {
            Dialect::Own
        }
    }

    /// An error response in this dialect's shape.
    pub fn error(self, status: StatusCode, message: &str) -> Response {
        match self {
            Dialect::Symphony => super::symphony::error(status, message),
            Dialect::RocketChat => super::rocketchat::error(status, message),
            Dialect::Genesys => super::genesys::error(status, message),
            Dialect::Own => own_error(status, message),
        }
    }
}

/// The server's own error body: `{"status": 400, "message": "..."}`.
pub fn own_error(status: StatusCode, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({ "status": status.as_u16(), "message": message }),
    )
}

/// A JSON response.
pub fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Rewrites an error response that is not JSON into the error body of the path's dialect.
pub async fn dialect_errors(request: Request, next: Next) -> Response {
    let dialect = Dialect::of(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's own rejections are short text; a longer body is cut, not buffered.
    let text = to_bytes(body, 4096).await.unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_string();
    if message.is_empty() {
        message = status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string();
    }
    let mut rewritten = dialect.error(status, &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_dialects_on_segment_boundaries() {
        assert_eq!(Dialect::of("/pod/v2/users/presence"), Dialect::Symphony);
        assert_eq!(Dialect::of("/login/pubkey/authenticate"), Dialect::Symphony);
        assert_eq!(Dialect::of("/api/v1/users.presence"), Dialect::RocketChat);
        assert_eq!(Dialect::of("/api/v2/systempresences"), Dialect::Genesys);
        assert_eq!(Dialect::of("/oauth/token"), Dialect::Genesys);
        assert_eq!(Dialect::of("/podcast"), Dialect::Own);
        assert_eq!(Dialect::of("/devices/v1/stream"), Dialect::Own);
    }
}
