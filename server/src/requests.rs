//! What every request passes through on its way in and out, in one middleware ([`pipeline`]) so
//! no handler carries it, in this order:
//!
//! 1. the size limits: 414, 431 ([`http::over_limits`]);
//! 2. the guard: route lookup, authentication, the authorization table ([`authz::admit`]);
//! 3. the handler;
//! 4. the dialect's error body for what axum answered in plain text ([`http::in_dialect`]);
//! 5. the durable write of an organization change before its 2xx leaves;
//! 6. the log line and the metrics.
//!
//! One middleware rather than a layer per step: each axum middleware layer costs every request
//! a boxed clone of the route below it and a boxed future (see BENCHMARKS.md, "The request
//! path"), and one function states the order the steps run in.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::http::{self, Dialect};
use super::metrics::{self, RequestLabels};
use super::{authz, App};

/// Runs a request through the steps above. The log line names the account the guard
/// authenticated (method, matched route, status, latency, account; never a token); nothing here
/// allocates but a label for a route outside the table.
pub async fn pipeline(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let dialect = Dialect::of(request.uri().path());
    let admitted = match http::over_limits(&request) {
        Some(refusal) => Err(Box::new(authz::Refused::from(refusal))),
        None => authz::admit(&app, &mut request),
    };
    let (response, principal) = match admitted {
        Err(refused) => (refused.response, refused.principal),
        Ok(principal) => {
            let org = matched
                .as_ref()
                .is_some_and(|p| changes_org(&method, p.as_str()));
            let response = http::in_dialect(dialect, next.run(request).await).await;
            (persist_org(&app, org, dialect, response).await, principal)
        }
    };
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let account: &dyn Display = match &principal {
        Some(principal) => principal,
        None => &"-",
    };
    let route = metrics::route_label(matched.as_ref());
    tracing::info!(
        method = %method,
        route = %route,
        status,
        latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3,
        account = %account,
        "request"
    );
    let labels = RequestLabels {
        route,
        method: metrics::method_label(&method),
        status,
    };
    app.metrics.observe(labels, latency);
    response
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

/// After a successful organization change (`org`), writes the organization state durably
/// before the response leaves; if it cannot, the client gets a 500 in its dialect (the change is
/// applied in memory but not acknowledged), and the error is logged.
async fn persist_org(app: &Arc<App>, org: bool, dialect: Dialect, response: Response) -> Response {
    if !org || app.data.is_none() || !response.status().is_success() {
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
