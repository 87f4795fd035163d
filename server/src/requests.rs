//! What every request passes through on its way in and out, as middleware so no handler carries
//! it: its log line and metrics ([`track`]), and the durable write of an organization change
//! before its 2xx leaves ([`persist_org`]).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::http::Dialect;
use super::metrics::RequestLabels;
use super::App;

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Logs one line per request (method, matched route, status, latency, account; never a token)
/// and counts it in the metrics.
pub async fn track(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |p| p.as_str())
        .to_owned();
    let account = account_of(&app, request.headers());
    let response = next.run(request).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    tracing::info!(
        method = %method,
        route = %route,
        status,
        latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3,
        account = account.as_deref().unwrap_or("-"),
        "request"
    );
    let labels = RequestLabels {
        route,
        method: method_label(&method),
        status,
    };
    app.metrics.observe(labels, latency);
    response
}

/// A method as a metric label: the standard ones by name, any other as `OTHER`, so a client
/// inventing methods cannot grow the metrics without bound.
fn method_label(method: &Method) -> String {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if KNOWN.contains(method) {
        method.as_str().to_owned()
    } else {
        "OTHER".to_owned()
    }
}

/// Who a request's token stands for, as the log names them ([`Principal::label`]:
/// `symphony:<username>`, `rocketchat:<username>`, `genesys:<client id>`,
/// `gateway:<name>`); `None` without a valid token.
///
/// [`Principal::label`]: crate::tokens::Principal::label
fn account_of(app: &App, headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header(header::AUTHORIZATION.as_str())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let token = header("sessiontoken")
        .or_else(|| header("x-auth-token"))
        .or(bearer)?;
    let principal = app.tokens.principal(token, app.clock.now_ms())?;
    Some(principal.label())
}

/// Whether a request changes the organization state (definitions, sources, settings, feeds,
/// revoked tokens) rather than a user's presence.
fn changes_org(method: &Method, route: &str) -> bool {
    if *method == Method::GET || *method == Method::HEAD {
        return false;
    }
    const ORG_ROUTES: [&str; 13] = [
        "/api/v2/presence/definitions",
        "/api/v2/presence/definitions/{id}",
        "/api/v2/presencedefinitions",
        "/api/v2/presencedefinitions/{id}",
        "/api/v2/presence/sources",
        "/api/v2/presence/sources/{id}",
        "/api/v2/presence/settings",
        "/api/v1/settings/{id}",
        "/pod/v1/presence/feed/create",
        "/pod/v1/presence/feed/{id}/delete",
        // A logout revokes a token; one issued in advance stays revoked across restarts.
        "/sessionauth/v1/logout",
        "/api/v1/logout",
        "/api/v2/tokens/me",
    ];
    ORG_ROUTES.contains(&route)
}

/// After a successful organization change, writes the organization state durably before the
/// response leaves; if it cannot, the client gets a 500 in its dialect (the change is applied in
/// memory but not acknowledged), and the error is logged.
pub async fn persist_org(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if app.data.is_none() {
        return next.run(request).await;
    }
    let org = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| changes_org(request.method(), p.as_str()));
    let dialect = Dialect::of(request.uri().path());
    let response = next.run(request).await;
    if !org || !response.status().is_success() {
        return response;
    }
    match app.clone().save_org().await {
        Ok(()) => response,
        Err(e) => {
            tracing::error!("organization state not saved: {e}");
            dialect.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the change could not be saved",
            )
        }
    }
}
