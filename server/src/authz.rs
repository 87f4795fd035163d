//! Who may do what: one table of account kinds against actions ([`TABLE`]), one table of every
//! route and the action it takes ([`ROUTES`]), and the guard ([`admit`]) that every request
//! passes through, which reads both.
//!
//! The guard finds the request's route in [`ROUTES`] (a route missing there, and not one of the
//! [`OPEN`] probes, is refused, so a new route cannot be served unguarded), authenticates the
//! caller in the route's dialect (Symphony's `sessionToken`, Rocket.Chat's `X-Auth-Token` and
//! `X-User-Id`, a bearer token for Genesys and the server's own routes; a token of another dialect
//! is no token there), checks [`allows`] for the caller's [`Kind`] and the route's [`Action`], and
//! hands the handler the [`Caller`]. Refusals are the dialect's 401 or 403 body; a client address
//! that keeps sending tokens that do not exist is throttled (429) like a login.
//!
//! What the table cannot say alone is checked beside it, from it: device routes act on the
//! caller's own user unless the kind may [`Action::DevicesAnyUser`] ([`may_act_on`]), feeds
//! belong to the account that created them (`crate::feeds`), and the stream carries only the
//! fields the caller's dialect shows ([`stream_view`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use presence_store::wire::rocketchat::{Status, StatusError};
use presence_store::{Category, Presence};
use serde::Serialize;

use super::http::{json, Dialect};
use super::secret::Digest;
use super::tokens::Principal;
use super::{metrics, App};

/// The kinds of account, as the table tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A Symphony service account without User Provisioning.
    Bot,
    /// A Symphony service account with User Provisioning.
    Provisioner,
    /// A Rocket.Chat user.
    RocketChatUser,
    /// A Rocket.Chat user with the `admin` role.
    RocketChatAdmin,
    /// A Genesys OAuth client.
    GenesysClient,
    /// A device gateway.
    Gateway,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Kind::Bot,
        Kind::Provisioner,
        Kind::RocketChatUser,
        Kind::RocketChatAdmin,
        Kind::GenesysClient,
        Kind::Gateway,
    ];
}

/// What a route does, as far as permission goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Log in: anyone, throttled ([`crate::throttle`]).
    Login,
    /// Log out, revoking the token the request came with.
    Logout,
    /// Read the caller's own presence or account.
    ReadOwn,
    /// Set the caller's own presence or status.
    WriteOwn,
    /// Read one named user's presence (or up to 50 named users').
    ReadUser,
    /// List everyone's presence, or follow everyone's changes (pages, `users.presence`, the
    /// stream).
    ListEveryone,
    /// Set any user's presence.
    WriteAnyone,
    /// Create, read and delete presence feeds (which carry everyone's changes).
    Feeds,
    /// Read the organization's presence definitions, sources and settings.
    ReadOrg,
    /// Change them.
    WriteOrg,
    /// Read Rocket.Chat's settings.
    ReadSettings,
    /// Change Rocket.Chat's settings.
    WriteSettings,
    /// Heartbeat or end a device session of the caller's own user.
    Devices,
    /// The same for any user (a gateway).
    DevicesAnyUser,
    /// Open the WebSocket stream of changes.
    Stream,
}

use Kind::{
    Bot, Gateway, GenesysClient as Client, Provisioner as Prov, RocketChatAdmin as RcAdmin,
    RocketChatUser as RcUser,
};

/// Who may do what: each action with the kinds that may. [`Action::Login`] needs no account.
pub const TABLE: &[(Action, &[Kind])] = &[
    (Action::Login, &Kind::ALL),
    (Action::Logout, &[Bot, Prov, RcUser, RcAdmin, Client]),
    (Action::ReadOwn, &[Bot, Prov, RcUser, RcAdmin]),
    (Action::WriteOwn, &[Bot, Prov, RcUser, RcAdmin]),
    (Action::ReadUser, &[Bot, Prov, RcUser, RcAdmin, Client]),
    (Action::ListEveryone, &[Prov, RcUser, RcAdmin, Gateway]),
    (Action::WriteAnyone, &[Prov, Client]),
    (Action::Feeds, &[Prov]),
    (Action::ReadOrg, &[Client]),
    (Action::WriteOrg, &[Client]),
    (Action::ReadSettings, &[RcUser, RcAdmin]),
    (Action::WriteSettings, &[RcAdmin]),
    (Action::Devices, &[Bot, Prov, RcUser, RcAdmin, Gateway]),
    (Action::DevicesAnyUser, &[Gateway]),
    (Action::Stream, &[Prov, RcUser, RcAdmin, Gateway]),
];

/// Whether `kind` may take `action`.
pub fn allows(kind: Kind, action: Action) -> bool {
    TABLE
        .iter()
        .any(|(a, kinds)| *a == action && kinds.contains(&kind))
}

/// One route: its method, its path as the router writes it, its dialect and its action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// The path, placeholders in braces.
    pub path: &'static str,
    /// Whose tokens it takes.
    pub dialect: Dialect,
    /// What it needs.
    pub action: Action,
}

const fn r(method: &'static str, path: &'static str, dialect: Dialect, action: Action) -> Route {
    Route {
        method,
        path,
        dialect,
        action,
    }
}

use Action as A;
use Dialect::{Genesys as G, Own as O, RocketChat as R, Symphony as S};

/// Every route the server serves, with the action it takes. The guard refuses a route not
/// listed here, and the authorization-matrix test walks this list.
pub const ROUTES: &[Route] = &[
    r("POST", "/login/pubkey/authenticate", S, A::Login),
    r("POST", "/relay/pubkey/authenticate", S, A::Login),
    r("POST", "/sessionauth/v1/logout", S, A::Logout),
    r("GET", "/pod/v2/sessioninfo", S, A::ReadOwn),
    r("GET", "/pod/v2/users/presence", S, A::ListEveryone),
    r("GET", "/pod/v2/user/presence", S, A::ReadOwn),
    r("POST", "/pod/v2/user/presence", S, A::WriteOwn),
    r("GET", "/pod/v3/user/{uid}/presence", S, A::ReadUser),
    r("POST", "/pod/v3/user/presence", S, A::WriteAnyone),
    r("POST", "/pod/v1/presence/feed/create", S, A::Feeds),
    r("GET", "/pod/v1/presence/feed/{id}/read", S, A::Feeds),
    r("POST", "/pod/v1/presence/feed/{id}/delete", S, A::Feeds),
    r("POST", "/api/v1/login", R, A::Login),
    r("POST", "/api/v1/logout", R, A::Logout),
    r("GET", "/api/v1/users.presence", R, A::ListEveryone),
    r("GET", "/api/v1/users.getPresence", R, A::ReadUser),
    r("POST", "/api/v1/users.setStatus", R, A::WriteOwn),
    r("GET", "/api/v1/settings/{id}", R, A::ReadSettings),
    r("POST", "/api/v1/settings/{id}", R, A::WriteSettings),
    r("POST", "/oauth/token", G, A::Login),
    r("DELETE", "/api/v2/tokens/me", G, A::Logout),
    r("GET", "/api/v2/systempresences", G, A::ReadOrg),
    r("GET", "/api/v2/presence/definitions", G, A::ReadOrg),
    r("POST", "/api/v2/presence/definitions", G, A::WriteOrg),
    r("GET", "/api/v2/presence/definitions/{id}", G, A::ReadOrg),
    r("PUT", "/api/v2/presence/definitions/{id}", G, A::WriteOrg),
    r(
        "DELETE",
        "/api/v2/presence/definitions/{id}",
        G,
        A::WriteOrg,
    ),
    r("GET", "/api/v2/presencedefinitions", G, A::ReadOrg),
    r("POST", "/api/v2/presencedefinitions", G, A::WriteOrg),
    r("GET", "/api/v2/presencedefinitions/{id}", G, A::ReadOrg),
    r("PUT", "/api/v2/presencedefinitions/{id}", G, A::WriteOrg),
    r("DELETE", "/api/v2/presencedefinitions/{id}", G, A::WriteOrg),
    r("GET", "/api/v2/presence/sources", G, A::ReadOrg),
    r("POST", "/api/v2/presence/sources", G, A::WriteOrg),
    r("GET", "/api/v2/presence/sources/{id}", G, A::ReadOrg),
    r("PUT", "/api/v2/presence/sources/{id}", G, A::WriteOrg),
    r("DELETE", "/api/v2/presence/sources/{id}", G, A::WriteOrg),
    r(
        "GET",
        "/api/v2/presence/users/{user}/primarysource",
        G,
        A::ReadUser,
    ),
    r(
        "PUT",
        "/api/v2/presence/users/{user}/primarysource",
        G,
        A::WriteAnyone,
    ),
    r("GET", "/api/v2/presence/settings", G, A::ReadOrg),
    r("PUT", "/api/v2/presence/settings", G, A::WriteOrg),
    r(
        "GET",
        "/api/v2/users/{user}/presences/{source}",
        G,
        A::ReadUser,
    ),
    r(
        "PATCH",
        "/api/v2/users/{user}/presences/{source}",
        G,
        A::WriteAnyone,
    ),
    r(
        "GET",
        "/api/v2/users/presences/{source}/bulk",
        G,
        A::ReadUser,
    ),
    r("GET", "/api/v2/users/presences/bulk", G, A::ReadUser),
    r("PUT", "/api/v2/users/presences/bulk", G, A::WriteAnyone),
    r(
        "POST",
        "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
        O,
        A::Devices,
    ),
    r(
        "DELETE",
        "/devices/v1/users/{userId}/sessions/{sessionId}",
        O,
        A::Devices,
    ),
    r("GET", "/devices/v1/stream", O, A::Stream),
    r("GET", "/openapi.json", O, A::Login),
];

/// [`ROUTES`] by path, built once: the guard looks a route up on every request.
static BY_PATH: LazyLock<HashMap<&'static str, Vec<&'static Route>>> = LazyLock::new(|| {
    let mut by_path: HashMap<&'static str, Vec<&'static Route>> = HashMap::new();
    for route in ROUTES {
        by_path.entry(route.path).or_default().push(route);
    }
    by_path
});

/// `path` as the table spells it, if it lists the path: a string that lives as long as the
/// server, for labels.
pub fn listed_path(path: &str) -> Option<&'static str> {
    BY_PATH.get_key_value(path).map(|(listed, _)| *listed)
}

/// The route `method path` (the router's path), if listed. `HEAD` is its `GET`.
pub fn route(method: &Method, path: &str) -> Option<&'static Route> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    BY_PATH
        .get(path)?
        .iter()
        .copied()
        .find(|r| r.method == method)
}

/// The authenticated caller of a route, which the guard hands to its handler. Cheap to clone:
/// handlers' extractors each take a copy.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Whom the token stands for.
    pub principal: Arc<Principal>,
    /// The token's digest, so a logout can revoke it.
    pub token: Digest,
}

impl Caller {
    /// The caller's kind.
    pub fn kind(&self) -> Kind {
        self.principal.kind()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    /// The caller the guard found; a route without one is a server bug, answered 500.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            let dialect = Dialect::of(parts.uri.path());
            dialect.error(StatusCode::INTERNAL_SERVER_ERROR, "route without a guard")
        })
    }
}

/// The client address of a request, when the server was started with
/// `into_make_service_with_connect_info` (always, outside in-process tests).
pub fn client_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The client address as an extractor, for the login handlers.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(&parts.extensions)))
    }
}

/// Routes open to anyone, outside the table: probes and scrapers carry no token.
pub const OPEN: [&str; 3] = [metrics::HEALTHZ, metrics::READYZ, metrics::METRICS];

/// A request the guard refused: the dialect's answer, and whom the token stood for when it
/// stood for someone (a 403), for the log line.
#[derive(Debug)]
pub struct Refused {
    /// The answer.
    pub response: Response,
    /// The caller, when authenticated.
    pub principal: Option<Arc<Principal>>,
}

impl From<Response> for Refused {
    fn from(response: Response) -> Self {
        Refused {
            response,
            principal: None,
        }
    }
}

/// The guard every request passes before its handler ([`crate::requests::pipeline`] calls it):
/// route lookup, authentication in the route's dialect, the table's check. `Ok(Some(caller))`
/// also hands the handler its [`Caller`]; `Ok(None)` lets through what needs no token: a login,
/// an [`OPEN`] route, or no route at all (the router's 404). A refusal is boxed: it is the rare
/// path, and a small `Result` keeps the common one cheap.
pub fn admit(app: &App, request: &mut Request) -> Result<Option<Arc<Principal>>, Box<Refused>> {
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    else {
        return Ok(None);
    };
    if OPEN.contains(&path) {
        return Ok(None);
    }
    let Some(route) = route(request.method(), path) else {
        // A method the path does not serve: 405, with the methods the table lists. A path
        // the table does not list is refused the same way, with none.
        let allowed: Vec<&str> = BY_PATH
            .get(path)
            .into_iter()
            .flatten()
            .flat_map(|r| {
                if r.method == "GET" {
                    vec!["GET", "HEAD"]
                } else {
                    vec![r.method]
                }
            })
            .collect();
        let dialect = Dialect::of(request.uri().path());
        let mut response = dialect.error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        if let Ok(allow) = HeaderValue::from_str(&allowed.join(",")) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return Err(Box::new(response.into()));
    };
    if route.action == Action::Login {
        return Ok(None);
    }
    let dialect = route.dialect;
    let Some(token) = presented_token(dialect, request.headers()).map(Digest::of) else {
        return Err(Box::new(unauthorized(dialect, true).into()));
    };
    let principal = app
        .tokens
        .principal(&token, app.clock.now_ms())
        .filter(|p| dialect == Dialect::Own || p.dialect().speaks(dialect))
        .filter(|p| dialect != Dialect::RocketChat || rocketchat_id_matches(app, p, request));
    let Some(principal) = principal else {
        let address = client_address(request.extensions());
        if let Err(retry) = app.throttle.refused_token(address) {
            return Err(Box::new(super::throttle::too_many(dialect, retry).into()));
        }
        return Err(Box::new(unauthorized(dialect, false).into()));
    };
    if !allows(principal.kind(), route.action) {
        return Err(Box::new(Refused {
            response: forbidden(dialect, principal.kind(), route.action),
            principal: Some(principal),
        }));
    }
    request.extensions_mut().insert(Caller {
        principal: principal.clone(),
        token,
    });
    Ok(Some(principal))
}

/// The token a request presents in `dialect`'s way.
fn presented_token(dialect: Dialect, headers: &HeaderMap) -> Option<&str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match dialect {
        Dialect::Symphony => header("sessiontoken"),
        Dialect::RocketChat => header("x-auth-token").filter(|_| header("x-user-id").is_some()),
        Dialect::Genesys | Dialect::Own => header(header::AUTHORIZATION.as_str())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim()),
    }
}

/// Whether Rocket.Chat's `X-User-Id` names the token's user.
fn rocketchat_id_matches(app: &App, principal: &Principal, request: &Request) -> bool {
    let sent = request
        .headers()
        .get("x-user-id")
        .and_then(|v| v.to_str().ok());
    let own = principal
        .own_user()
        .and_then(|id| app.directory.get(id))
        .map(|u| u.rc_id.as_str());
    sent.is_some() && sent == own
}

/// The dialect's 401: `missing` when no token came at all.
pub fn unauthorized(dialect: Dialect, missing: bool) -> Response {
    match dialect {
        Dialect::Symphony => {
            let message = if missing {
                "missing sessionToken header"
            } else {
                "invalid session token"
            };
            dialect.error(StatusCode::UNAUTHORIZED, message)
        }
        Dialect::RocketChat => json(
            StatusCode::UNAUTHORIZED,
            &StatusError::new(StatusError::NOT_LOGGED_IN),
        ),
        Dialect::Genesys if missing => super::genesys::error_with_code(
            StatusCode::UNAUTHORIZED,
            "authentication.required",
            "No authentication bearer token specified in authorization header.",
        ),
        Dialect::Genesys => dialect.error(StatusCode::UNAUTHORIZED, "Invalid login credentials."),
        Dialect::Own => {
            let message = if missing {
                "missing Authorization: Bearer token"
            } else {
                "invalid or expired token"
            };
            let mut response = dialect.error(StatusCode::UNAUTHORIZED, message);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The dialect's 403 for `kind` taking `action`.
fn forbidden(dialect: Dialect, kind: Kind, action: Action) -> Response {
    let message = match (kind, action) {
        (Kind::Bot, _) => "the caller lacks the User Provisioning entitlement".to_owned(),
        (Kind::RocketChatUser, Action::WriteSettings) => {
            "Editing settings is not allowed [error-action-not-allowed]: it needs the admin role"
                .to_owned()
        }
        _ => format!("a {kind:?} account may not do {action:?}"),
    };
    dialect.error(StatusCode::FORBIDDEN, &message)
}

/// Whether `caller` may act on `user`'s device sessions: its own user, or any user for a kind
/// the table lets take [`Action::DevicesAnyUser`].
pub fn may_act_on(caller: &Caller, user: u64) -> bool {
    allows(caller.kind(), Action::DevicesAnyUser) || caller.principal.own_user() == Some(user)
}

/// The fields a stream carries, by the caller's dialect: what that dialect's own reads show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamView {
    /// Symphony's presence: `category` and its time (no activity, nothing requested).
    Symphony,
    /// Rocket.Chat's: the `status` (`online`, `away`, `busy`, `offline`) and its time.
    RocketChat,
    /// A gateway's: everything, `requested` and `activity` included.
    Full,
}

/// The view of the stream `caller` may open (the guard has checked [`Action::Stream`]); a
/// Rocket.Chat user gets 403 while `Presence_broadcast_disabled` is set, as `users.presence`
/// answers no one then.
pub fn stream_view(app: &App, caller: &Caller) -> Result<StreamView, (StatusCode, &'static str)> {
    match *caller.principal {
        Principal::Symphony { .. } => Ok(StreamView::Symphony),
        Principal::RocketChat { .. } if app.rocketchat.broadcast_disabled(&app.store) => Err((
            StatusCode::FORBIDDEN,
            "Presence_broadcast_disabled is set: presence is not broadcast",
        )),
        Principal::RocketChat { .. } => Ok(StreamView::RocketChat),
        Principal::Gateway { .. } => Ok(StreamView::Full),
        Principal::Genesys { .. } => Err((
            StatusCode::FORBIDDEN,
            "a Genesys client may not follow everyone's changes",
        )),
    }
}

/// One change as a stream message of `view`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamChange {
    #[serde(rename = "type")]
    kind: &'static str,
    user_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<Category>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested: Option<Category>,
    #[serde(skip_serializing_if = "Option::is_none")]
    activity: Option<presence_store::Activity>,
    updated_at: u64,
    version: u64,
}

impl StreamView {
    /// The `change` message for `user` at `presence`, with only this view's fields.
    pub fn change(self, user: u64, presence: &Presence) -> StreamChange {
        let full = self == StreamView::Full;
        StreamChange {
            kind: "change",
            user_id: user,
            category: (self != StreamView::RocketChat).then_some(presence.category),
            status: (self == StreamView::RocketChat).then(|| Status::of(presence.category)),
            requested: full.then_some(presence.requested),
            activity: full.then_some(presence.activity),
            updated_at: presence.updated_at,
            version: presence.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_row_and_every_route_a_known_action() {
        for (i, (action, _)) in TABLE.iter().enumerate() {
            assert!(
                TABLE[..i].iter().all(|(a, _)| a != action),
                "{action:?} twice"
            );
        }
        for route in ROUTES {
            assert!(TABLE.iter().any(|(a, _)| *a == route.action), "{route:?}");
        }
    }

    #[test]
    fn what_only_some_may_do() {
        assert!(!allows(Kind::Bot, Action::ListEveryone));
        assert!(allows(Kind::Provisioner, Action::ListEveryone));
        assert!(!allows(Kind::RocketChatUser, Action::WriteSettings));
        assert!(allows(Kind::RocketChatAdmin, Action::WriteSettings));
        assert!(!allows(Kind::GenesysClient, Action::Devices));
        assert!(allows(Kind::Gateway, Action::DevicesAnyUser));
        assert!(!allows(Kind::Bot, Action::Stream));
    }
}
