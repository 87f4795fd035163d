//! Genesys Cloud's presence API (its SDKs' `PresenceApi`) under `/api/v2`, and its OAuth
//! client-credentials login under `/oauth`, over the shared store.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /oauth/token` | `grant_type=client_credentials`, client by HTTP Basic or form -> bearer token |
//! | `DELETE /api/v2/tokens/me` | revokes the caller's bearer token |
//! | `GET /api/v2/systempresences` | the ten system presences |
//! | `GET, POST /api/v2/presence/definitions` | definitions (`deactivated`, `localeCode`); create |
//! | `GET, PUT, DELETE /api/v2/presence/definitions/{id}` | one definition |
//! | `GET, POST /api/v2/presencedefinitions` | the older, paged API (`pageNumber`, `pageSize`, `deleted`) |
//! | `GET, PUT, DELETE /api/v2/presencedefinitions/{id}` | one definition, older shape |
//! | `GET, POST /api/v2/presence/sources` | sources (`deactivated`); create |
//! | `GET, PUT, DELETE /api/v2/presence/sources/{id}` | one source |
//! | `GET, PUT /api/v2/presence/users/{userId}/primarysource` | a user's primary source |
//! | `GET, PUT /api/v2/presence/settings` | the org's presence settings |
//! | `GET, PATCH /api/v2/users/{userId}/presences/{sourceId}` | a user's presence from a source (`purecloud` too) |
//! | `GET /api/v2/users/presences/{sourceId}/bulk?id=` | up to 50 users' presences from a source |
//! | `GET /api/v2/users/presences/bulk?id=`, `PUT` | the same from `PURECLOUD`; set up to 50 |
//!
//! Every `/api/v2` route needs `Authorization: Bearer` with a Genesys token (issued by
//! `/oauth/token` or in advance); without one, or with one past its `expires_in` or revoked,
//! it answers 401. `/oauth/token` is throttled per client id and per client address (429 with
//! `Retry-After`), and compares the secret in constant time. Bodies must be JSON objects (the
//! bulk PUT an array); any other shape is 400. A deleted definition is only retired (Genesys'
//! older API calls a retired one deleted): `deleted=TRUE` or `ALL` lists it, and users set to
//! it keep their presence. The built-in source `PURECLOUD` cannot be renamed or deleted. Errors carry Genesys' body
//! `{message, code, status, messageParams, contextId, details, errors}`: an unknown user,
//! definition or source is 404, bad input (a deactivated definition, a built-in definition or
//! source to change, a message too long, over 50 ids, malformed JSON) 400, and none changes
//! the store. User ids are Genesys UUIDs from the directory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, Request, State as AppState};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::RwLock;
use presence_store::wire::genesys::{
    code_for_status, error_status, DefinitionModel, EntityListing, ErrorBody, MutableUserPresence,
    OAuthError, OrganizationPresence, OrganizationPresenceDefinition, PagedListing,
    PresenceSettings, SourceEntity, SystemPresenceEntity, TokenResponse, UcUserPresence,
    UserPresence, UserPrimarySource,
};
use presence_store::{
    Category, Definition, DefinitionId, DefinitionUpdate, Error, SetMode, Source, SourceId,
    SourceUpdate, SystemPresence,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::accounts::AccountDialect;
use super::authz::{self, ClientAddr};
use super::directory::User;
use super::http::{compressed, json, json_body, Dialect, Shape};
use super::secret;
use super::throttle::too_many;
use super::tokens::Principal;
use super::{App, Store};

/// The most users one bulk request may name.
pub const MAX_BULK: usize = 50;
/// The largest `pageSize` of the older definitions API.
const MAX_PAGE_SIZE: u64 = 100;
/// Its default `pageSize`.
const DEFAULT_PAGE_SIZE: u64 = 25;
/// The locales `localeCode` may name (and `ALL`), as the SDK lists them.
const LOCALES: [&str; 25] = [
    "ALL", "he", "fr", "en_US", "da", "de", "it", "cs", "es", "fi", "ar", "ja", "ko", "nl", "no",
    "pl", "pt_BR", "pt_PT", "ru", "sv", "th", "tr", "uk", "zh_CN", "zh_TW",
];

/// This dialect's own server state: the org's presence settings.
#[derive(Debug, Default)]
pub struct State {
    /// What `GET /api/v2/presence/settings` answers.
    settings: RwLock<PresenceSettings>,
}

/// The key of the presence settings among the replicated settings ([`Store::setting`]).
const SETTINGS: &str = "genesys.presence_settings";

impl State {
    /// The org's presence settings, as `GET /api/v2/presence/settings` answers them: in a
    /// cluster, as the latest node to change them left them; else as changed here.
    pub fn settings(&self, store: &Store) -> PresenceSettings {
        replicated_settings(store).unwrap_or_else(|| self.settings.read().clone())
    }

    /// Replaces this instance's own presence settings (restored from its data directory),
    /// which settings changed in the cluster override.
    pub fn set_settings(&self, settings: PresenceSettings) {
        *self.settings.write() = settings;
    }
}

/// The presence settings as the cluster last set them, if it did.
fn replicated_settings(store: &Store) -> Option<PresenceSettings> {
    serde_json::from_str(&store.setting(SETTINGS)?).ok()
}

/// This dialect's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v2/tokens/me", axum::routing::delete(revoke_token))
        .route("/api/v2/systempresences", get(system_presences))
        .route(
            "/api/v2/presence/definitions",
            compressed(get(list_definitions))
                .post(create_definition::<OrganizationPresenceDefinition>),
        )
        .route(
            "/api/v2/presence/definitions/{id}",
            get(get_definition::<OrganizationPresenceDefinition>)
                .put(update_definition::<OrganizationPresenceDefinition>)
                .delete(delete_definition),
        )
        .route(
            "/api/v2/presencedefinitions",
            compressed(get(page_definitions)).post(create_definition::<OrganizationPresence>),
        )
        .route(
            "/api/v2/presencedefinitions/{id}",
            get(get_definition::<OrganizationPresence>)
                .put(update_definition::<OrganizationPresence>)
                .delete(delete_definition),
        )
        .route(
            "/api/v2/presence/sources",
            get(list_sources).post(create_source),
        )
        .route(
            "/api/v2/presence/sources/{id}",
            get(get_source).put(update_source).delete(delete_source),
        )
        .route(
            "/api/v2/presence/users/{user}/primarysource",
            get(get_primary_source).put(put_primary_source),
        )
        .route(
            "/api/v2/presence/settings",
            get(get_settings).put(put_settings),
        )
        .route(
            "/api/v2/users/{user}/presences/{source}",
            get(get_presence).patch(patch_presence),
        )
        .route(
            "/api/v2/users/presences/{source}/bulk",
            compressed(get(bulk_get)),
        )
        .route(
            "/api/v2/users/presences/bulk",
            compressed(get(bulk_get_purecloud).put(bulk_put)),
        )
}

/// An error response in this dialect's shape, with the usual code for `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    Failure::of(status, message).into_response()
}

/// An error response in this dialect's shape with an explicit Genesys `code`.
pub fn error_with_code(status: StatusCode, code: &str, message: &str) -> Response {
    Failure::new(status, code, message).into_response()
}

/// An error on its way to Genesys' error body; small, so results that carry it stay small.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    /// Genesys' code, e.g. `not.found`.
    code: String,
    message: String,
}

impl Failure {
    /// A failure with the usual code for `status`.
    fn of(status: StatusCode, message: &str) -> Self {
        Failure::new(status, code_for_status(status.as_u16()), message)
    }

    /// A failure with an explicit Genesys `code`.
    fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Failure {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl From<Error> for Failure {
    /// A store error, with its Genesys status and code.
    fn from(e: Error) -> Self {
        let (status, code) = error_status(&e);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        Failure::new(status, code, &e.to_string())
    }
}

impl IntoResponse for Failure {
    /// Genesys' error body; its `contextId` is also sent as the `inin-correlation-id` header,
    /// as Genesys does.
    fn into_response(self) -> Response {
        let context = context_id();
        let body = ErrorBody::new(self.status.as_u16(), &self.code, &self.message, &context);
        let mut response = json(self.status, &body);
        if let Ok(value) = HeaderValue::from_str(&context) {
            response.headers_mut().insert("inin-correlation-id", value);
        }
        response
    }
}

/// A 400 `bad.request`.
fn bad_request(message: &str) -> Failure {
    Failure::new(StatusCode::BAD_REQUEST, "bad.request", message)
}

/// A fresh correlation id, UUID-shaped.
fn context_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id()) << 32;
    let (hi, lo) = (mix(n), mix(n ^ 0x9e37_79b9_7f4a_7c15));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xfff,
        (lo >> 48 & 0x3fff) | 0x8000,
        lo & 0xffff_ffff_ffff
    )
}

/// splitmix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What handlers return: a response either way.
type Reply = Result<Response, Failure>;

/// A 200 JSON body.
fn ok(body: &impl serde::Serialize) -> Reply {
    Ok(json(StatusCode::OK, body))
}

/// The caller of a `/api/v2` route: a Genesys OAuth client with a valid bearer token.
struct Client;

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Response;

    /// The client the guard authenticated.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match *authz::Caller::from_request_parts(parts, state)
            .await?
            .principal
        {
            Principal::Genesys { .. } => Ok(Client),
            _ => Err(error(
                StatusCode::UNAUTHORIZED,
                "Invalid login credentials.",
            )),
        }
    }
}

/// A JSON body of the documented shape ([`json_body`]): an object, or with `ARRAY` an array (the
/// bulk PUT). Not JSON is 415, too large 413, anything of another shape (an array for an
/// object, a number, a wrong field) 400, in Genesys' body.
struct Body<T, const ARRAY: bool = false>(T);

impl<T: DeserializeOwned, const ARRAY: bool> FromRequest<Arc<App>> for Body<T, ARRAY> {
    type Rejection = Failure;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, Failure> {
        let shape = if ARRAY { Shape::Array } else { Shape::Object };
        json_body(request, app, shape)
            .await
            .map(Body)
            .map_err(|(status, message)| Failure::of(status, &message))
    }
}

/// A query string as name-value pairs, so repeated names (`id=a&id=b`) all count.
type Params = Query<Vec<(String, String)>>;

/// The last value of `name` in `params`.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A `TRUE`/`FALSE` parameter (any case), `false` when absent.
fn flag(params: &[(String, String)], name: &str) -> Result<bool, Failure> {
    match param(params, name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(bad_request(&format!(
            "{name} must be TRUE or FALSE, not {v:?}"
        ))),
    }
}

/// The `localeCode` parameter, checked against Genesys' locales.
fn locale(params: &[(String, String)]) -> Result<Option<&str>, Failure> {
    match param(params, "localeCode") {
        Some(l) if !LOCALES.contains(&l) => Err(bad_request(&format!(
            "localeCode {l:?} is none of {}",
            LOCALES.join(", ")
        ))),
        l => Ok(l),
    }
}

/// A positive integer parameter, `default` when absent.
fn number(params: &[(String, String)], name: &str, default: u64) -> Result<u64, Failure> {
    param(params, name).map_or(Ok(default), |v| {
        v.parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad_request(&format!("{name} must be a positive integer, not {v:?}")))
    })
}

/// The directory user with Genesys id `id`, else 404.
fn user<'a>(app: &'a App, id: &str) -> Result<&'a User, Failure> {
    app.directory
        .by_genesys_id(id)
        .ok_or_else(|| Failure::of(StatusCode::NOT_FOUND, &format!("user {id:?} not found")))
}

/// The registered source `id` names (any case of `purecloud` is the default), else 404.
fn source(app: &App, id: &str) -> Result<Source, Failure> {
    let id = SourceId::new(id).map_err(|_| Error::UnknownSource { id: id.to_owned() })?;
    Ok(app.store.source(&id)?)
}

/// The definition `id` names, else 404.
fn definition(app: &App, id: &str) -> Result<Definition, Failure> {
    let id = DefinitionId::new(id).map_err(|_| Error::UnknownDefinition { id: id.to_owned() })?;
    Ok(app.store.definition(&id)?)
}

/// Makes sure the store knows a directory user, so edits of a known user's extras (message,
/// primary source) apply to one it has not seen yet; a new user starts offline.
fn ensure_known(app: &App, user: u64) -> Result<(), Error> {
    if app.store.get(&user).is_none() {
        app.store.set(&user, Category::Undefined, SetMode::Soft)?;
    }
    Ok(())
}

// ---- OAuth ---------------------------------------------------------------------------------

/// The form of `POST /oauth/token`.
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// An OAuth error response.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    json(status, &OAuthError::new(code, description))
}

/// `POST /oauth/token`: the client-credentials grant, the client by HTTP Basic auth or in the
/// form; throttled per client id and address, the secret compared in constant time.
async fn token(
    AppState(app): AppState<Arc<App>>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return oauth_error(e.status(), "invalid_request", &e.body_text()),
    };
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant type {other:?} is not supported: use client_credentials"),
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
    }
    let credentials =
        basic_credentials(&headers).or_else(|| form.client_id.zip(form.client_secret));
    let (client_id, sent_secret) = credentials.unwrap_or_default();
    if let Err(wait) = app
        .throttle
        .login(AccountDialect::Genesys, &client_id, address)
    {
        let mut response = too_many(Dialect::Genesys, wait);
        let retry = response.headers_mut().remove(header::RETRY_AFTER);
        let message = format!(
            "too many attempts: retry in {} s",
            retry.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("1")
        );
        response = oauth_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", &message);
        if let Some(retry) = retry {
            response.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        return response;
    }
    let client = app
        .accounts
        .genesys
        .iter()
        .find(|c| c.client_id == client_id);
    let configured = client.map_or("", |c| c.client_secret.as_str());
    let right = secret::matches(&sent_secret, configured) && client.is_some();
    match client.filter(|_| right) {
        Some(client) => {
            let lifetime = app.policy.lifetime(AccountDialect::Genesys);
            let principal = Principal::Genesys {
                client_id: client.client_id.clone(),
            };
            let issued = app.tokens.issue(
                principal,
                lifetime,
                app.clock.now_ms(),
                app.policy.max_tokens_per_account,
            );
            match issued {
                Ok(issued) => json(
                    StatusCode::OK,
                    &TokenResponse {
                        expires_in: lifetime.as_secs(),
                        ..TokenResponse::bearer(issued.token)
                    },
                ),
                Err(e) => oauth_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    &e.to_string(),
                ),
            }
        }
        None => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed: unknown client or wrong secret",
        ),
    }
}

/// `DELETE /api/v2/tokens/me`: revokes the bearer token the request came with.
async fn revoke_token(AppState(app): AppState<Arc<App>>, caller: authz::Caller) -> Response {
    app.tokens.revoke(&caller.token);
    StatusCode::NO_CONTENT.into_response()
}

/// The client id and secret of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Standard base64 (padding optional); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---- Definitions ---------------------------------------------------------------------------

/// `GET /api/v2/systempresences`.
async fn system_presences(_: Client) -> Reply {
    let all: Vec<SystemPresenceEntity> = SystemPresence::ALL.into_iter().map(Into::into).collect();
    ok(&all)
}

/// `GET /api/v2/presence/definitions?deactivated=&localeCode=`: the active definitions, or with
/// `deactivated=TRUE` the deactivated ones.
async fn list_definitions(_: Client, AppState(app): AppState<Arc<App>>, Query(q): Params) -> Reply {
    let deactivated = flag(&q, "deactivated")?;
    let locale = locale(&q)?;
    let entities: Vec<OrganizationPresenceDefinition> = app
        .store
        .definitions()
        .iter()
        .filter(|d| d.deactivated == deactivated)
        .map(|d| OrganizationPresenceDefinition::from_definition(d, locale))
        .collect();
    ok(&EntityListing::new(
        entities,
        "/api/v2/presence/definitions",
    ))
}

/// `GET /api/v2/presencedefinitions?pageNumber=&pageSize=&deleted=&localeCode=`: `deleted` is
/// `FALSE` (the active ones, by default), `TRUE` (the deactivated) or `ALL`.
async fn page_definitions(_: Client, AppState(app): AppState<Arc<App>>, Query(q): Params) -> Reply {
    let page_number = number(&q, "pageNumber", 1)?;
    let page_size = number(&q, "pageSize", DEFAULT_PAGE_SIZE)?;
    if page_size > MAX_PAGE_SIZE {
        return Err(bad_request(&format!(
            "pageSize {page_size} is over the maximum of {MAX_PAGE_SIZE}"
        )));
    }
    let keep = match param(&q, "deleted").map(str::to_ascii_uppercase).as_deref() {
        None | Some("FALSE") => Some(false),
        Some("TRUE") => Some(true),
        Some("ALL") => None,
        Some(other) => {
            return Err(bad_request(&format!(
                "deleted must be TRUE, FALSE or ALL, not {other:?}"
            )))
        }
    };
    let locale = param(&q, "localeCode");
    let all: Vec<OrganizationPresence> = app
        .store
        .definitions()
        .iter()
        .filter(|d| keep.is_none_or(|k| d.deactivated == k))
        .map(|d| OrganizationPresence::from_definition(d, locale))
        .collect();
    ok(&PagedListing::page(
        &all,
        page_number,
        page_size,
        "/api/v2/presencedefinitions",
    ))
}

/// `POST` a definition, in either API's shape.
async fn create_definition<M>(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Body(body): Body<M>,
) -> Reply
where
    M: DefinitionModel + DeserializeOwned + serde::Serialize,
{
    let input = body.input()?;
    let mut def = app
        .store
        .create_definition(input.system_presence, input.labels)?;
    if input.deactivated == Some(true) {
        def = app.store.update_definition(
            &def.id,
            DefinitionUpdate {
                deactivated: Some(true),
                ..Default::default()
            },
        )?;
    }
    ok(&M::from_definition(&def, None))
}

/// `GET` one definition (`localeCode` picks one label), in either API's shape.
async fn get_definition<M>(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Reply
where
    M: DefinitionModel + serde::Serialize,
{
    let locale = param(&q, "localeCode");
    ok(&M::from_definition(&definition(&app, &id)?, locale))
}

/// `PUT` one definition: its system presence, labels and, if given, whether it is deactivated.
async fn update_definition<M>(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path(id): Path<String>,
    Body(body): Body<M>,
) -> Reply
where
    M: DefinitionModel + DeserializeOwned + serde::Serialize,
{
    let id = definition(&app, &id)?.id;
    let input = body.input()?;
    let update = DefinitionUpdate {
        system_presence: Some(input.system_presence),
        labels: Some(input.labels),
        deactivated: input.deactivated,
    };
    let def = app.store.update_definition(&id, update)?;
    ok(&M::from_definition(&def, None))
}

/// `DELETE` one definition: a soft delete, as Genesys' older API documents (`deleted`): it is
/// retired, so `deleted=TRUE` (or `ALL`) still lists it, no one can be set to it any more, and
/// users set to it keep their presence. The ten system ones cannot go.
async fn delete_definition(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path(id): Path<String>,
) -> Reply {
    let def = definition(&app, &id)?;
    if def.system {
        return Err(Failure::from(Error::SystemDefinition {
            id: def.id.to_string(),
        }));
    }
    let retire = DefinitionUpdate {
        deactivated: Some(true),
        ..Default::default()
    };
    app.store.update_definition(&def.id, retire)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Sources -------------------------------------------------------------------------------

/// `GET /api/v2/presence/sources?deactivated=`.
async fn list_sources(_: Client, AppState(app): AppState<Arc<App>>, Query(q): Params) -> Reply {
    let deactivated = flag(&q, "deactivated")?;
    let entities: Vec<SourceEntity> = app
        .store
        .sources()
        .iter()
        .filter(|s| s.deactivated == deactivated)
        .map(Into::into)
        .collect();
    ok(&EntityListing::new(entities, "/api/v2/presence/sources"))
}

/// `POST /api/v2/presence/sources`: `{name, deactivated?}`.
async fn create_source(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Body(body): Body<SourceEntity>,
) -> Reply {
    let name = body
        .name
        .as_deref()
        .ok_or_else(|| bad_request("name is required"))?;
    let mut created = app.store.create_source(name)?;
    if body.deactivated == Some(true) {
        let retire = SourceUpdate {
            deactivated: Some(true),
            ..Default::default()
        };
        created = app.store.update_source(&created.id, retire)?;
    }
    ok(&SourceEntity::from(&created))
}

/// `GET /api/v2/presence/sources/{id}`.
async fn get_source(_: Client, AppState(app): AppState<Arc<App>>, Path(id): Path<String>) -> Reply {
    ok(&SourceEntity::from(&source(&app, &id)?))
}

/// `PUT /api/v2/presence/sources/{id}`: a new name and, if given, whether it is deactivated.
async fn update_source(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path(id): Path<String>,
    Body(body): Body<SourceEntity>,
) -> Reply {
    let current = source(&app, &id)?;
    if current.id.is_default() && body.name.as_deref().is_some_and(|n| n != current.name) {
        return Err(bad_request(&format!(
            "{} is the built-in source: it cannot be renamed",
            current.id
        )));
    }
    let update = SourceUpdate {
        name: body.name,
        deactivated: body.deactivated,
    };
    let updated = app.store.update_source(&current.id, update)?;
    ok(&SourceEntity::from(&updated))
}

/// `DELETE /api/v2/presence/sources/{id}`; `PURECLOUD` cannot go.
async fn delete_source(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path(id): Path<String>,
) -> Reply {
    let id = source(&app, &id)?.id;
    app.store.delete_source(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v2/presence/users/{userId}/primarysource`.
async fn get_primary_source(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path(user_id): Path<String>,
) -> Reply {
    let user = user(&app, &user_id)?;
    let primary = primary_source(&app, user.id);
    ok(&UserPrimarySource::new(
        &user.genesys_id,
        &source(&app, primary.as_str())?,
    ))
}

/// The id of a user's primary source (the default for a user the store has not seen).
fn primary_source(app: &App, user: u64) -> SourceId {
    app.store.primary_source(&user).unwrap_or(SourceId::DEFAULT)
}

/// `PUT /api/v2/presence/users/{userId}/primarysource`: `{sourceId}`.
async fn put_primary_source(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path(user_id): Path<String>,
    Body(body): Body<UserPrimarySource>,
) -> Reply {
    let user = user(&app, &user_id)?;
    let id = body
        .source_id
        .as_deref()
        .ok_or_else(|| bad_request("sourceId is required"))?;
    let chosen = source(&app, id)?;
    ensure_known(&app, user.id)?;
    app.store.set_primary_source(&user.id, &chosen.id)?;
    ok(&UserPrimarySource::new(&user.genesys_id, &chosen))
}

// ---- Settings ------------------------------------------------------------------------------

/// `GET /api/v2/presence/settings`.
async fn get_settings(_: Client, AppState(app): AppState<Arc<App>>) -> Reply {
    ok(&app.genesys.settings(&app.store))
}

/// `PUT /api/v2/presence/settings`: the fields given change; the default primary source must
/// be a registered one.
async fn put_settings(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Body(body): Body<PresenceSettings>,
) -> Reply {
    if let Some(id) = &body.default_primary_presence_registered_source_id {
        source(&app, id)?;
    }
    // The lock orders the changes made here; in a cluster, the whole result is one register
    // (the latest change anywhere wins whole).
    let mut own = app.genesys.settings.write();
    let current = replicated_settings(&app.store).unwrap_or_else(|| own.clone());
    let merged = current.merged(body);
    *own = merged.clone();
    if let Ok(json) = serde_json::to_string(&merged) {
        app.store.set_setting(SETTINGS, &json);
    }
    ok(&merged)
}

// ---- User presence -------------------------------------------------------------------------

/// A user's presence from `source`, as Genesys writes it.
fn presence_of(app: &App, user: &User, source: &SourceId) -> UserPresence {
    let primary = primary_source(app, user.id) == *source;
    match app.store.source_presence(&user.id, source) {
        Some(p) => {
            let def = p
                .details
                .definition()
                .and_then(|id| app.store.definition(id).ok());
            UserPresence::from_presence(&p, &user.genesys_id, source, primary, def.as_ref())
        }
        None => UserPresence::offline(&user.genesys_id, source, primary),
    }
}

/// `GET /api/v2/users/{userId}/presences/{sourceId}` (`purecloud` for the default source).
async fn get_presence(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path((user_id, source_id)): Path<(String, String)>,
) -> Reply {
    let user = user(&app, &user_id)?;
    let source = source(&app, &source_id)?;
    ok(&presence_of(&app, user, &source.id))
}

/// A checked PATCH of one user's presence from one source, ready to apply.
struct Patch {
    /// The user's Symphony id.
    user: u64,
    /// The registered source.
    source: SourceId,
    /// What to write.
    write: Write,
    /// Whether to make the source the user's primary one.
    primary: bool,
}

/// The presence part of a [`Patch`].
enum Write {
    /// Nothing (only `primary`).
    Nothing,
    /// A presence by definition, with the message to keep or set.
    Presence(DefinitionId, Option<String>),
    /// Only the default source's message.
    Message(String),
}

/// Checks a PATCH body (or a bulk PUT item) for `user` from `source` against the store,
/// without changing it: the definition known and active, the message within the limit, the
/// source active if written to, and something to do.
fn check_patch(
    app: &App,
    user: &User,
    source: &Source,
    body: &UserPresence,
) -> Result<Patch, Failure> {
    let definition = match body
        .presence_definition
        .as_ref()
        .and_then(|d| d.id.as_deref())
    {
        Some(id) => Some(definition(app, id)?),
        None => None,
    };
    if let Some(def) = definition.as_ref().filter(|d| d.deactivated) {
        return Err(Failure::from(Error::DeactivatedDefinition {
            id: def.id.to_string(),
        }));
    }
    let max = app.store.config().max_message_len;
    if let Some(m) = body.message.as_deref().filter(|m| m.len() > max) {
        return Err(Failure::from(Error::MessageTooLong { len: m.len(), max }));
    }
    let current = || app.store.source_presence(&user.id, &source.id);
    let write = match (definition, body.message.clone()) {
        (Some(def), message) => Write::Presence(
            def.id,
            message.or_else(|| current().and_then(|p| p.details.message().map(str::to_owned))),
        ),
        (None, Some(message)) if source.id.is_default() => Write::Message(message),
        (None, Some(message)) => {
            let def = current()
                .and_then(|p| p.details.definition().cloned())
                .ok_or_else(|| {
                    bad_request(
                        "presenceDefinition.id is required for this source's first presence",
                    )
                })?;
            Write::Presence(def, Some(message))
        }
        (None, None) => Write::Nothing,
    };
    let primary = body.primary == Some(true);
    if matches!(write, Write::Nothing) && !primary {
        return Err(bad_request(
            "nothing to change: give presenceDefinition.id, message or primary: true",
        ));
    }
    if source.deactivated && !matches!(write, Write::Nothing) {
        return Err(Failure::from(Error::DeactivatedSource {
            id: source.id.to_string(),
        }));
    }
    Ok(Patch {
        user: user.id,
        source: source.id.clone(),
        write,
        primary,
    })
}

/// Applies a checked patch.
fn apply(app: &App, patch: &Patch) -> Result<(), Error> {
    let (store, user) = (&app.store, &patch.user);
    match &patch.write {
        Write::Nothing => {}
        Write::Presence(def, message) => {
            store.set_source_presence(user, &patch.source, def, message.as_deref())?;
        }
        Write::Message(message) => {
            ensure_known(app, *user)?;
            store.set_message(user, message)?;
        }
    }
    if patch.primary {
        ensure_known(app, *user)?;
        store.set_primary_source(user, &patch.source)?;
    }
    Ok(())
}

/// `PATCH /api/v2/users/{userId}/presences/{sourceId}`: `presenceDefinition.id`, `message`
/// and `primary: true`, any together.
async fn patch_presence(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path((user_id, source_id)): Path<(String, String)>,
    Body(body): Body<UserPresence>,
) -> Reply {
    let user = user(&app, &user_id)?;
    let source = source(&app, &source_id)?;
    let patch = check_patch(&app, user, &source, &body)?;
    apply(&app, &patch)?;
    ok(&presence_of(&app, user, &source.id))
}

/// `GET /api/v2/users/presences/{sourceId}/bulk?id=`.
async fn bulk_get(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Path(source_id): Path<String>,
    Query(q): Params,
) -> Reply {
    bulk(&app, &source_id, &q)
}

/// `GET /api/v2/users/presences/bulk?id=`: the same from `PURECLOUD`.
async fn bulk_get_purecloud(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Query(q): Params,
) -> Reply {
    bulk(&app, SourceId::DEFAULT.as_str(), &q)
}

/// The presences from `source_id` of the users the `id` parameters name (repeated or
/// comma-separated, at most [`MAX_BULK`]); unknown ids are left out.
fn bulk(app: &App, source_id: &str, q: &[(String, String)]) -> Reply {
    let source = source(app, source_id)?;
    let ids: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "id")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.len() > MAX_BULK {
        return Err(Failure::from(Error::TooManyIds {
            count: ids.len(),
            max: MAX_BULK,
        }));
    }
    let presences: Vec<UcUserPresence> = ids
        .iter()
        .filter_map(|id| app.directory.by_genesys_id(id))
        .map(|u| UcUserPresence::new(&u.genesys_id, presence_of(app, u, &source.id)))
        .collect();
    ok(&presences)
}

/// `PUT /api/v2/users/presences/bulk`: up to [`MAX_BULK`] patches, each naming its user in `id`
/// and its source in `sourceId` or `source` (`PURECLOUD` by default). All are checked before
/// any applies.
async fn bulk_put(
    _: Client,
    AppState(app): AppState<Arc<App>>,
    Body(items): Body<Vec<MutableUserPresence>, true>,
) -> Reply {
    if items.len() > MAX_BULK {
        return Err(Failure::from(Error::TooManyIds {
            count: items.len(),
            max: MAX_BULK,
        }));
    }
    let mut checked = Vec::with_capacity(items.len());
    for item in &items {
        let id = item
            .id
            .as_deref()
            .ok_or_else(|| bad_request("each presence needs the user's id"))?;
        let user = user(&app, id)?;
        let source = source(
            &app,
            item.named_source().unwrap_or(SourceId::DEFAULT.as_str()),
        )?;
        checked.push((user, check_patch(&app, user, &source, item)?));
    }
    let mut out = Vec::with_capacity(checked.len());
    for (user, patch) in &checked {
        apply(&app, patch)?;
        out.push(UserPresence {
            id: Some(user.genesys_id.clone()),
            ..presence_of(&app, user, &patch.source)
        });
    }
    ok(&out)
}
