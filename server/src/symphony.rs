//! Symphony's dialect (Pod API 20.17.1): RSA login, and the presence endpoints of the pod.
//!
//! | route | what | needs |
//! | --- | --- | --- |
//! | `POST /login/pubkey/authenticate` | RS512 JWT -> `{"name":"sessionToken","token"}` | |
//! | `POST /relay/pubkey/authenticate` | RS512 JWT -> `{"name":"keyManagerToken","token"}` | |
//! | `POST /sessionauth/v1/logout` | revokes the caller's session token | session |
//! | `GET /pod/v2/sessioninfo` | the bot itself (`UserV2`) | session |
//! | `GET /pod/v2/users/presence?lastUserId=&limit=` | a page of everyone, by id | User Provisioning |
//! | `GET /pod/v2/user/presence` | the caller's own presence | session |
//! | `POST /pod/v2/user/presence?soft=` | set the caller's own presence | session |
//! | `GET /pod/v3/user/{uid}/presence` | one user's presence | session |
//! | `POST /pod/v3/user/presence?soft=` | set another user's presence | User Provisioning |
//! | `POST /pod/v1/presence/feed/create` | a presence feed, `{"id"}` | User Provisioning |
//! | `GET /pod/v1/presence/feed/{id}/read` | the feed's changes since its last read | its owner |
//! | `POST /pod/v1/presence/feed/{id}/delete` | delete the feed, `{"id"}` | its owner |
//!
//! The "needs" column is [`crate::authz::TABLE`]'s, which the guard checks before any handler.
//!
//! Choices where Symphony's documents are silent, so a client knows what it gets:
//!
//! - **Login.** The JWT must be RS512, signed by the key of the account whose `username` is its
//!   `sub`, with an `exp` after the server's clock and at most five minutes (plus a minute of
//!   clock skew) ahead, as Symphony's backend wants. Anything else is 401.
//! - **Users.** A pod user is a directory user or a service account. A pod user the store has
//!   never heard of reads as `OFFLINE` with timestamp 0 (nothing was ever set: the epoch says
//!   "never" where "now" would invent a change); any other id is 404.
//! - **Paging.** `lastUserId` is inclusive (the page starts at it), offline users the store knows
//!   are listed too, users it never heard of are omitted (Symphony: "any omitted user IS
//!   inactive").
//! - **Login** is throttled per account (the JWT's `sub`) and per client address; past the
//!   limit it is 429 with `Retry-After`. A session token lives `symphony_token_secs` (see
//!   [`crate::policy`]) and dies at `/sessionauth/v1/logout`.
//! - **Ids** are Symphony's int64: a user id over `i64::MAX` (path, body or `lastUserId`) is 400.
//! - **Feeds** need User Provisioning, as they carry every user's changes. A feed id is 128
//!   random bits, and a feed belongs to the account that created it: any other account, like an
//!   unknown id, gets 404. An account owns at most `max_feeds_per_account` feeds. A read
//!   returns at most 500 records (as Symphony does); read again for the rest. A feed that fell
//!   behind what the store's log still holds cannot list the changes it missed: its reads answer
//!   every user who is not offline, sorted by id, at most 500 a read, and say so in the header
//!   `X-Presence-Feed-Full` (`LogPruned`, ...); as with a page, a user they omit is offline.
//!   Once the whole list is read, reads are changes again, from where the list began, so none
//!   made meanwhile is lost.
//! - **Bodies** are JSON objects only (415 without a JSON content type), at most 64 KiB (413);
//!   JSON that does not parse, is not an object, or lacks `category` is 400, as is an unknown
//!   category. Every error is `{"code", "message"}`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State as Shared};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use presence_store::wire::symphony::{
    AllPresenceQuery, AuthenticateRequest, ErrorBody, SetPresenceQuery, StringId, Token, UserV2,
    V2Presence, V2PresenceStatus, V2UserPresence,
};
use presence_store::{Category, Error, Page, SetMode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::accounts::{AccountDialect, SymphonyAccount};
use super::authz::{Caller, ClientAddr};
use super::feeds::{CreateError, Owner};
use super::http::{compressed, json, json_body, Shape};
use super::listing::{self, CHUNK_ROWS};
use super::throttle::too_many;
use super::tokens::Principal;
use super::App;

/// Symphony's own policy; its sessions are in [`App::tokens`] and its feeds in the store.
#[derive(Debug)]
pub struct State {
    /// The furthest ahead of the server's clock a login JWT's `exp` may be.
    pub max_jwt_ahead: Duration,
}

impl Default for State {
    /// Symphony accepts JWTs that expire within five minutes; a minute more allows for a
    /// client whose clock runs ahead of the server's.
    fn default() -> Self {
        State {
            max_jwt_ahead: Duration::from_secs(6 * 60),
        }
    }
}

/// The most records one feed read returns, as Symphony's read does.
const FEED_READ_MAX: usize = 500;

/// The header that marks a feed read as the full list (the feed fell behind), with the reason.
const FEED_FULL_HEADER: &str = "x-presence-feed-full";

/// What a handler answers: its response, or a [`Failure`].
type Reply = Result<Response, Failure>;

/// A request that failed: its status and message, answered in Symphony's shape by [`error`].
/// (Small, where a `Response` would make every `Result` large.)
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        error(self.status, &self.message)
    }
}

/// The store's errors as Symphony says them: an unknown user is 404, a full shard 500, and
/// every other (bad limit, category, feed id) 400.
impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let status = match e {
            Error::UnknownUser { .. } => StatusCode::NOT_FOUND,
            Error::CapacityExceeded => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Failure::new(status, e.to_string())
    }
}

/// This dialect's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/login/pubkey/authenticate", post(session_login))
        .route("/relay/pubkey/authenticate", post(key_manager_login))
        .route("/sessionauth/v1/logout", post(logout))
        .route("/pod/v2/sessioninfo", get(session_info))
        .route("/pod/v2/users/presence", compressed(get(all_presence)))
        .route(
            "/pod/v2/user/presence",
            get(own_presence).post(set_own_presence),
        )
        .route("/pod/v3/user/{uid}/presence", get(user_presence))
        .route("/pod/v3/user/presence", post(set_user_presence))
        .route("/pod/v1/presence/feed/create", post(create_feed))
        .route(
            "/pod/v1/presence/feed/{id}/read",
            compressed(get(read_feed)),
        )
        .route("/pod/v1/presence/feed/{id}/delete", post(delete_feed))
}

/// An error response in Symphony's shape: `{"code": 404, "message": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = ErrorBody {
        code: status.as_u16(),
        message: message.to_string(),
    };
    json(status, &body)
}

/// A JSON object body ([`json_body`]): 415 without a JSON content type, 413 over the limit,
/// 400 for anything that is not the documented object.
pub struct Body<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        json_body(request, state, Shape::Object)
            .await
            .map(Body)
            .map_err(|(status, message)| Failure::new(status, message))
    }
}

/// `id` if it is in Symphony's int64 range, else 400.
fn in_range(id: u64, name: &str) -> Result<u64, Failure> {
    if id > i64::MAX as u64 {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            format!("{name} {id} is over Symphony's int64 range"),
        ));
    }
    Ok(id)
}

/// A query string, or 400.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Failure> {
    query
        .map(|Query(t)| t)
        .map_err(|r| Failure::new(r.status(), r.body_text()))
}

/// A path parameter, or 400.
fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Failure> {
    path.map(|Path(t)| t)
        .map_err(|r| Failure::new(StatusCode::BAD_REQUEST, r.body_text()))
}

/// The service account a request's `sessionToken` header stands for; 401 without one.
#[derive(Clone, Debug)]
pub struct Bot {
    /// Its user id.
    pub user_id: u64,
    /// The account: always a [`Principal::Symphony`], shared with the token table.
    principal: Arc<Principal>,
}

impl<S: Send + Sync> FromRequestParts<S> for Bot {
    type Rejection = Response;

    /// The service account the guard authenticated.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let principal = Caller::from_request_parts(parts, state).await?.principal;
        match *principal {
            Principal::Symphony { user_id, .. } => Ok(Bot { user_id, principal }),
            _ => Err(error(StatusCode::UNAUTHORIZED, "invalid session token")),
        }
    }
}

impl Bot {
    /// Its username.
    fn username(&self) -> &str {
        self.principal.account()
    }

    /// Its entitlements.
    fn entitlements(&self) -> &[String] {
        match &*self.principal {
            Principal::Symphony { entitlements, .. } => entitlements,
            _ => &[],
        }
    }

    /// The account, as feeds are owned.
    fn owner(&self) -> Owner {
        (AccountDialect::Symphony, self.username().to_owned())
    }
}

/// The claims a login JWT must carry.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

/// The JWT's claims, its signature checked against `key` if there is one. Expiry is checked by
/// the caller, against the server's clock rather than the system's.
fn claims(jwt: &str, key: Option<&DecodingKey>) -> Result<Claims, jsonwebtoken::errors::Error> {
    let mut validation = Validation::new(Algorithm::RS512);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let unchecked = DecodingKey::from_secret(&[]);
    let key = match key {
        Some(key) => key,
        None => {
            validation.insecure_disable_signature_validation();
            &unchecked
        }
    };
    jsonwebtoken::decode::<Claims>(jwt, key, &validation).map(|data| data.claims)
}

/// The account a login JWT proves to be, or 401 (500 if the account's key is unusable).
fn authenticate<'a>(app: &'a App, jwt: &str) -> Result<&'a SymphonyAccount, Failure> {
    let denied = |why: &str| {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            format!("invalid credentials: {why}"),
        )
    };
    // The subject names the key to check the signature with; nothing else is trusted before.
    let subject = claims(jwt, None)
        .map_err(|_| denied("not a JWT with sub and exp"))?
        .sub;
    let account = app
        .accounts
        .symphony
        .iter()
        .find(|a| a.username == subject)
        .ok_or_else(|| denied("unknown user or bad signature"))?;
    let key = DecodingKey::from_rsa_pem(account.public_key.as_bytes()).map_err(|_| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the account's public key is not an RSA PEM",
        )
    })?;
    let exp = claims(jwt, Some(&key))
        .map_err(|_| denied("unknown user or bad signature"))?
        .exp;
    let now = app.clock.now_ms() / 1000;
    if exp <= now {
        return Err(denied("the JWT has expired"));
    }
    let max_ahead = app.symphony.max_jwt_ahead.as_secs();
    if exp > now.saturating_add(max_ahead) {
        return Err(denied(&format!(
            "the JWT's exp is more than {max_ahead} s ahead"
        )));
    }
    Ok(account)
}

/// A login: counts the attempt against the throttle (the JWT's unverified `sub` names the
/// account), checks the JWT and issues a token, which `make` names.
fn login(
    app: &App,
    address: Option<std::net::IpAddr>,
    request: Result<Body<AuthenticateRequest>, Failure>,
    make: fn(String) -> Token,
) -> Reply {
    let jwt = request?.0.token;
    let subject = claims(&jwt, None).map(|c| c.sub).unwrap_or_default();
    if let Err(wait) = app
        .throttle
        .login(AccountDialect::Symphony, &subject, address)
    {
        return Ok(too_many(super::http::Dialect::Symphony, wait));
    }
    let account = authenticate(app, &jwt)?;
    let principal = Principal::Symphony {
        username: account.username.clone(),
        user_id: account.user_id,
        entitlements: account.entitlements.clone(),
    };
    let issued = app
        .tokens
        .issue(
            principal,
            app.policy.lifetime(AccountDialect::Symphony),
            app.clock.now_ms(),
            app.policy.max_tokens_per_account,
        )
        .map_err(|e| Failure::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(json(StatusCode::OK, &make(issued.token)))
}

/// `POST /login/pubkey/authenticate`: a session token.
async fn session_login(
    Shared(app): Shared<Arc<App>>,
    ClientAddr(address): ClientAddr,
    request: Result<Body<AuthenticateRequest>, Failure>,
) -> Reply {
    login(&app, address, request, Token::session)
}

/// `POST /relay/pubkey/authenticate`: a key manager token (it also opens the pod).
async fn key_manager_login(
    Shared(app): Shared<Arc<App>>,
    ClientAddr(address): ClientAddr,
    request: Result<Body<AuthenticateRequest>, Failure>,
) -> Reply {
    login(&app, address, request, Token::key_manager)
}

/// `POST /sessionauth/v1/logout`: revokes the session token the request came with.
async fn logout(Shared(app): Shared<Arc<App>>, caller: Caller) -> Response {
    app.tokens.revoke(&caller.token);
    json(
        StatusCode::OK,
        &serde_json::json!({"format": "TEXT", "message": "Logout successful"}),
    )
}

/// `GET /pod/v2/sessioninfo`: who the session is.
async fn session_info(bot: Bot) -> Response {
    let info = UserV2::service_account(bot.user_id, bot.username(), bot.entitlements());
    json(StatusCode::OK, &info)
}

/// `GET /pod/v2/users/presence`: one page of everyone the store knows, by id. A page over
/// [`CHUNK_ROWS`] is read and written a chunk at a time, so a 5,000-row page never sits whole
/// in memory; a smaller one is read at once and sent with its length.
async fn all_presence(
    Shared(app): Shared<Arc<App>>,
    _bot: Bot,
    params: Result<Query<AllPresenceQuery>, QueryRejection>,
) -> Reply {
    let params = query(params)?;
    if let Some(id) = params.last_user_id {
        in_range(id, "lastUserId")?;
    }
    let query = params.page_query();
    let config = app.store.config();
    let limit = query.limit.unwrap_or(config.default_page);
    if limit <= CHUNK_ROWS {
        let page = app.store.page(&query)?;
        return Ok(json(StatusCode::OK, &V2Presence::list(&page.items)));
    }
    if limit > config.max_page {
        let max = config.max_page;
        return Err(Error::InvalidLimit { limit, max }.into());
    }
    let rows = |_: &App, page: &Page<u64>| V2Presence::list(&page.items);
    let pages = listing::pages(app, query.start, limit, query.include_offline, rows);
    Ok(listing::streamed("[", pages, "]"))
}

/// Ok for a pod user (a directory user or a service account), else 404.
fn pod_user(app: &App, uid: u64) -> Result<(), Failure> {
    let bot = || app.accounts.symphony.iter().any(|a| a.user_id == uid);
    if app.directory.get(uid).is_some() || bot() {
        Ok(())
    } else {
        Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!("user id {uid} cannot be located"),
        ))
    }
}

/// A pod user's presence, `OFFLINE` at timestamp 0 if the store never heard of them.
fn presence_of(app: &App, uid: u64) -> Response {
    let presence = app.store.get(&uid).map_or_else(
        || V2Presence::never_seen(uid),
        |p| V2Presence::from((uid, &p)),
    );
    json(StatusCode::OK, &presence)
}

/// Sets a pod user's presence and answers it.
fn set(app: &App, uid: u64, category: Category, mode: SetMode) -> Reply {
    let presence = app.store.set(&uid, category, mode)?;
    Ok(json(StatusCode::OK, &V2Presence::from((uid, &presence))))
}

/// `GET /pod/v2/user/presence`: the caller's own presence.
async fn own_presence(Shared(app): Shared<Arc<App>>, bot: Bot) -> Response {
    presence_of(&app, bot.user_id)
}

/// `POST /pod/v2/user/presence?soft=`: sets the caller's own presence.
async fn set_own_presence(
    Shared(app): Shared<Arc<App>>,
    bot: Bot,
    params: Result<Query<SetPresenceQuery>, QueryRejection>,
    request: Result<Body<V2PresenceStatus>, Failure>,
) -> Reply {
    let mode = query(params)?.mode();
    let category = request?.0.category()?;
    set(&app, bot.user_id, category, mode)
}

/// `GET /pod/v3/user/{uid}/presence`: one user's presence (`?local=` is accepted and moot:
/// every user is local).
async fn user_presence(
    Shared(app): Shared<Arc<App>>,
    _bot: Bot,
    uid: Result<Path<u64>, PathRejection>,
) -> Reply {
    let uid = in_range(path(uid)?, "user id")?;
    pod_user(&app, uid)?;
    Ok(presence_of(&app, uid))
}

/// `POST /pod/v3/user/presence?soft=`: sets another user's presence.
async fn set_user_presence(
    Shared(app): Shared<Arc<App>>,
    _bot: Bot,
    params: Result<Query<SetPresenceQuery>, QueryRejection>,
    request: Result<Body<V2UserPresence>, Failure>,
) -> Reply {
    let mode = query(params)?.mode();
    let request = request?.0;
    let uid = request
        .user_id
        .ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "userId is required"))?;
    let uid = in_range(uid, "userId")?;
    let category = request.category()?;
    pod_user(&app, uid)?;
    set(&app, uid, category, mode)
}

/// 404 for a feed id the caller does not own (or that does not exist: the two look the same).
fn no_feed(id: &str) -> Failure {
    let id: String = id.chars().take(64).collect();
    Failure::new(
        StatusCode::NOT_FOUND,
        format!("presence feed {id:?} not found"),
    )
}

/// `POST /pod/v1/presence/feed/create`: a feed starting now, owned by the caller.
async fn create_feed(Shared(app): Shared<Arc<App>>, bot: Bot) -> Reply {
    let config = app.store.config();
    let expiry = config.feed_expiry.max(config.delta_window).as_millis() as u64;
    let created = app.feeds.create(
        &app.store,
        bot.owner(),
        app.clock.now_ms(),
        app.policy.max_feeds_per_account,
        expiry,
    );
    let id = created.map_err(|e| match e {
        CreateError::AccountFull { max } => Failure::new(
            StatusCode::BAD_REQUEST,
            format!("this account already has the most presence feeds ({max}); delete one"),
        ),
        CreateError::NoEntropy(e) => Failure::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        CreateError::Store(e) => Failure::from(e),
    })?;
    Ok(json(StatusCode::OK, &StringId { id }))
}

/// `GET /pod/v1/presence/feed/{id}/read`: the changes since the feed's last read; see the
/// module doc for a feed that fell behind.
async fn read_feed(
    Shared(app): Shared<Arc<App>>,
    bot: Bot,
    id: Result<Path<String>, PathRejection>,
) -> Reply {
    let public = path(id)?;
    let owner = bot.owner();
    let feed = app
        .feeds
        .read(&owner, &public, app.clock.now_ms())
        .ok_or_else(|| no_feed(&public))?;
    let max = FEED_READ_MAX.min(app.store.config().max_page);
    let read = match app.store.read_feed(&feed, max) {
        Ok(read) => read,
        Err(Error::UnknownFeed { .. }) => {
            // The store's sweep dropped it (unread too long): forget it here too.
            app.feeds.remove(&owner, &public);
            return Err(no_feed(&public));
        }
        Err(e) => return Err(e.into()),
    };
    let mut response = json(StatusCode::OK, &V2Presence::list(&read.users));
    if let Some(reason) = read.reason {
        if let Ok(reason) = HeaderValue::from_str(&format!("{reason:?}")) {
            response.headers_mut().insert(FEED_FULL_HEADER, reason);
        }
    }
    Ok(response)
}

/// `POST /pod/v1/presence/feed/{id}/delete`.
async fn delete_feed(
    Shared(app): Shared<Arc<App>>,
    bot: Bot,
    id: Result<Path<String>, PathRejection>,
) -> Reply {
    let public = path(id)?;
    let feed = app
        .feeds
        .remove(&bot.owner(), &public)
        .ok_or_else(|| no_feed(&public))?;
    // Gone from the store already (expired) or now: either way the caller's feed is deleted.
    let _ = app.store.delete_feed(&feed);
    Ok(json(StatusCode::OK, &StringId { id: public }))
}
