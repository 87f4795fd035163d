//! What every route shares: the limits, compression of the answers that can be big, and the
//! error body of the dialect each request came in.
//!
//! Handlers answer their own errors in their dialect. What axum answers for them (an unknown
//! path, a wrong method with its `Allow` header, a body over [`MAX_BODY`], a wrong content type,
//! JSON or a query string that does not parse) comes back as plain text; [`in_dialect`]
//! rewrites it into the error body of the dialect the path belongs to, keeping the status and
//! headers, so no client ever sees an error shape its library does not know.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::MethodRouter;
use serde::de::DeserializeOwned;
use tower_http::compression::predicate::{And, DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// The largest request body accepted (64 KiB); a larger one is 413.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest request target (path and query) accepted (8 KiB); a longer one is 414.
pub const MAX_URI: usize = 8 * 1024;
/// The most header bytes (names and values) accepted (16 KiB); more is 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Bodies shorter than this go uncompressed: a single presence gains nothing from gzip.
pub const MIN_COMPRESSED: u16 = 1024;

/// `route` with its answers compressed ([`compression`]). Only the routes whose answers can be
/// big (lists, pages, feeds, bulk reads, the OpenAPI document) are: a one-user answer stays
/// under [`MIN_COMPRESSED`], and the layer would cost it a boxed service and body per request.
pub fn compressed<S: Clone + Send + Sync + 'static>(route: MethodRouter<S>) -> MethodRouter<S> {
    route.layer(compression())
}

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
    /// `/pod`, `/login`, `/relay`, `/sessionauth`.
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
        if under("/pod") || under("/login") || under("/relay") || under("/sessionauth") {
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
    // Room for a one-user answer up front, so the common small body is written without
    // growing the buffer several times over.
    let mut bytes = Vec::with_capacity(512);
    if serde_json::to_writer(&mut bytes, body).is_err() {
        bytes.clear();
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The refusal, in the path's dialect, of a request target over [`MAX_URI`] (414) or headers
/// over [`MAX_HEADER_BYTES`] (431), before any handler reads them; `None` within the limits.
/// (What is past hyper's own parser limits, or not HTTP at all, hyper answers itself with an
/// empty body: see SECURITY.md.)
pub fn over_limits(request: &Request) -> Option<Response> {
    let dialect = Dialect::of(request.uri().path());
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI {
        let message = format!("the request target is {target} bytes, over {MAX_URI}");
        return Some(dialect.error(StatusCode::URI_TOO_LONG, &message));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        let message = format!("the headers are {header_bytes} bytes, over {MAX_HEADER_BYTES}");
        return Some(dialect.error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &message));
    }
    None
}

/// The JSON shape a route's body must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A JSON object (every route but Genesys' bulk PUT).
    Object,
    /// A JSON array (Genesys' bulk PUT).
    Array,
}

/// A JSON request body of the documented `shape`, read as `T`. Without a JSON content type it
/// is 415, over [`MAX_BODY`] 413, and JSON that does not parse, of another shape (an array
/// where an object is documented: serde would read a struct from it), or that does not fit
/// `T` is 400. The status and a message come back for the dialect to word.
pub async fn json_body<T: DeserializeOwned, S: Send + Sync>(
    request: Request,
    state: &S,
    shape: Shape,
) -> Result<T, (StatusCode, String)> {
    if !is_json(request.headers()) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected request with `Content-Type: application/json`".to_owned(),
        ));
    }
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|r| (r.status(), r.body_text()))?;
    parse_json(&bytes, shape)
}

/// [`json_body`]'s parsing, for a body already read.
pub fn parse_json<T: DeserializeOwned>(
    bytes: &[u8],
    shape: Shape,
) -> Result<T, (StatusCode, String)> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, message);
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let fits = match shape {
        Shape::Object => value.is_object(),
        Shape::Array => value.is_array(),
    };
    if !fits {
        let wanted = match shape {
            Shape::Object => "a JSON object",
            Shape::Array => "a JSON array",
        };
        return Err(bad(format!("the body must be {wanted}")));
    }
    serde_json::from_value(value).map_err(|e| bad(format!("the body does not fit: {e}")))
}

/// Whether the request says its body is JSON (`application/json`, or `application/*+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(mime) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
    else {
        return false;
    };
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Rewrites an error response that is not JSON into the error body of the path's dialect.
pub async fn in_dialect(dialect: Dialect, response: Response) -> Response {
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
        assert_eq!(Dialect::of("/sessionauth/v1/logout"), Dialect::Symphony);
    }

    #[test]
    fn bodies_of_another_shape_are_400() {
        #[derive(Debug, serde::Deserialize)]
        struct Pair {
            #[allow(dead_code)]
            a: u64,
            #[allow(dead_code)]
            b: String,
        }
        let status =
            |body: &str, shape| parse_json::<Pair>(body.as_bytes(), shape).map_err(|e| e.0);
        assert!(status(r#"{"a":1,"b":"x"}"#, Shape::Object).is_ok());
        assert_eq!(
            status(r#"[1,"x"]"#, Shape::Object).unwrap_err(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("1", Shape::Object).unwrap_err(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status("{", Shape::Object).unwrap_err(),
            StatusCode::BAD_REQUEST
        );
        assert!(parse_json::<Vec<u8>>(b"[1]", Shape::Array).is_ok());
        assert!(parse_json::<Vec<u8>>(b"{}", Shape::Array).is_err());
    }
}
