//! `router`: requests in every dialect through the server's router, as any client could
//! send them.
//!
//! The server is the `presence-server` library. An input is up to four requests,
//! each read with `Arbitrary` ([`Req`]): a route from the table of every route the server
//! serves ([`ROUTES`]), with its method or another; its path as the route has it, with a
//! trailing slash or an extra segment, an unknown path under the dialect's prefix, or any path;
//! the path's placeholders filled with known values of their kind (directory users in each
//! dialect's form, the bots, definitions, sources, feeds), known values of another kind,
//! numbers or any text; credentials for the route's dialect (valid, a variant of them, another
//! dialect's token, none, any text); a query string (any text, or parameters from the names the
//! dialects read, with known, numeric, flag or any values); a content type; and a body (any
//! bytes, JSON built from the field names the dialects read, a form, or one over the 64 KiB
//! limit).
//!
//! Each request goes through `tower::ServiceExt::oneshot` on one [`App`] per process: a small
//! demo directory, no simulation, a `ManualClock` that never moves. Before each input the app is
//! put back in the same state (see [`Harness::reset`]), so an input means the same whatever ran
//! before it; what is left over is only in answers' contents (versions, the log behind
//! Rocket.Chat's time deltas, `lastLogin`), never in which answers are errors.
//!
//! Checks: no panic; every status 2xx or 4xx, never 5xx; a JSON content type comes with a body
//! that parses; every 4xx (but to `HEAD`, which has no body) carries the error body of the
//! path's dialect: Symphony `{code, message}`, Rocket.Chat `{status: "error", message}` for 401
//! and `{success: false, error}` otherwise, Genesys `{message, code, status}` (`POST
//! /oauth/token`: OAuth's `{error, error_description}`), the server's own `{status, message}`,
//! with the status repeated where the shape has it and the message not empty; and a 4xx changes
//! nothing: the store has no change after the cursor taken before the request, the same `len`,
//! definitions and sources, every user (the directory's, the bots, unknown ids) the same
//! presence, primary source and presence from each source (which the log does not show for a
//! source that is not primary), and Rocket.Chat's setting is as it was. (The WebSocket route cannot
//! upgrade through `oneshot`, so it always answers before subscribing; it is checked as any
//! other.)

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arbitrary::{Arbitrary, Unstructured};
use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use axum::Router;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use presence_store::wire::genesys::PresenceSettings;
use presence_store::{
    Activity, Category, Cursor, Definition, DefinitionUpdate, ManualClock, PageQuery, Presence,
    SetMode, Since, Source, SourceId, SourceUpdate, SystemPresence,
};
use serde_json::Value;
use tower::ServiceExt;

use presence_server as app;

use app::accounts::{AccountDialect, Accounts};
use app::directory::{Directory, User};
use app::http::Dialect;
use app::policy::Policy;
use app::tokens::Principal;
use app::{App, Options};

/// The tokens issued in advance here, in place of the demo's random ones.
pub const DEMO_SYMPHONY_TOKEN: &str = "fuzz-symphony-session-token";
/// See [`DEMO_SYMPHONY_TOKEN`].
pub const DEMO_ROCKETCHAT_TOKEN: &str = "fuzz-rocketchat-auth-token";
/// See [`DEMO_SYMPHONY_TOKEN`].
pub const DEMO_GENESYS_TOKEN: &str = "fuzz-genesys-access-token";
/// See [`DEMO_SYMPHONY_TOKEN`].
pub const DEMO_GATEWAY_TOKEN: &str = "fuzz-device-gateway-token";
/// How long the tokens this harness issues live (the clock never moves).
const LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// 2026-11-23T12:00:00Z: the clock, which never moves.
pub const START_MS: u64 = 1_795_435_200_000;
/// Demo users in the directory.
const USERS: usize = 5;
/// Requests per input.
pub const MAX_REQUESTS: usize = 4;
/// The server's body limit.
const MAX_BODY: usize = 64 * 1024;
/// The demo bot's private key, to sign login JWTs.
const PRIVATE_KEY: &str = include_str!("../../server/demo/bot-private.pem");

/// Runs the input's requests against the shared app, reset first.
pub fn run(data: &[u8]) {
    let requests = decode(data);
    let mut harness = harness().lock().unwrap_or_else(PoisonError::into_inner);
    harness.reset();
    for req in &requests {
        harness.send(req);
    }
}

/// Whether `ROUTER_TRACE` is set: then every request and its answer are printed.
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("ROUTER_TRACE").is_some())
}

fn harness() -> &'static Mutex<Harness> {
    static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();
    HARNESS.get_or_init(|| Mutex::new(Harness::new()))
}

// ---- The routes ----------------------------------------------------------------------------

/// One route: method, path (placeholders in braces) and dialect.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub dialect: Dialect,
}

const fn route(method: &'static str, path: &'static str, dialect: Dialect) -> Route {
    Route {
        method,
        path,
        dialect,
    }
}

use Dialect::{Genesys as G, Own as O, RocketChat as R, Symphony as S};

/// Every route the server serves. Placeholders: `{uid}`, `{userId}` (Symphony ids), `{user}`
/// (Genesys ids), `{feed}`, `{setting}`, `{definition}`, `{source}`, `{sessionId}`.
pub const ROUTES: &[Route] = &[
    route("POST", "/login/pubkey/authenticate", S),
    route("POST", "/relay/pubkey/authenticate", S),
    route("GET", "/pod/v2/sessioninfo", S),
    route("GET", "/pod/v2/users/presence", S),
    route("GET", "/pod/v2/user/presence", S),
    route("POST", "/pod/v2/user/presence", S),
    route("GET", "/pod/v3/user/{uid}/presence", S),
    route("POST", "/pod/v3/user/presence", S),
    route("POST", "/pod/v1/presence/feed/create", S),
    route("GET", "/pod/v1/presence/feed/{feed}/read", S),
    route("POST", "/pod/v1/presence/feed/{feed}/delete", S),
    route("POST", "/api/v1/login", R),
    route("POST", "/api/v1/logout", R),
    route("GET", "/api/v1/users.presence", R),
    route("GET", "/api/v1/users.getPresence", R),
    route("POST", "/api/v1/users.setStatus", R),
    route("GET", "/api/v1/settings/{setting}", R),
    route("POST", "/api/v1/settings/{setting}", R),
    route("POST", "/oauth/token", G),
    route("GET", "/api/v2/systempresences", G),
    route("GET", "/api/v2/presence/definitions", G),
    route("POST", "/api/v2/presence/definitions", G),
    route("GET", "/api/v2/presence/definitions/{definition}", G),
    route("PUT", "/api/v2/presence/definitions/{definition}", G),
    route("DELETE", "/api/v2/presence/definitions/{definition}", G),
    route("GET", "/api/v2/presencedefinitions", G),
    route("POST", "/api/v2/presencedefinitions", G),
    route("GET", "/api/v2/presencedefinitions/{definition}", G),
    route("PUT", "/api/v2/presencedefinitions/{definition}", G),
    route("DELETE", "/api/v2/presencedefinitions/{definition}", G),
    route("GET", "/api/v2/presence/sources", G),
    route("POST", "/api/v2/presence/sources", G),
    route("GET", "/api/v2/presence/sources/{source}", G),
    route("PUT", "/api/v2/presence/sources/{source}", G),
    route("DELETE", "/api/v2/presence/sources/{source}", G),
    route("GET", "/api/v2/presence/users/{user}/primarysource", G),
    route("PUT", "/api/v2/presence/users/{user}/primarysource", G),
    route("GET", "/api/v2/presence/settings", G),
    route("PUT", "/api/v2/presence/settings", G),
    route("GET", "/api/v2/users/{user}/presences/{source}", G),
    route("PATCH", "/api/v2/users/{user}/presences/{source}", G),
    route("GET", "/api/v2/users/presences/{source}/bulk", G),
    route("GET", "/api/v2/users/presences/bulk", G),
    route("PUT", "/api/v2/users/presences/bulk", G),
    route(
        "POST",
        "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat",
        O,
    ),
    route(
        "DELETE",
        "/devices/v1/users/{userId}/sessions/{sessionId}",
        O,
    ),
    route("GET", "/devices/v1/stream", O),
    route("GET", "/openapi.json", O),
    // The logouts, last so that the indexes of the routes above stay as the corpus has them.
    route("POST", "/sessionauth/v1/logout", S),
    route("DELETE", "/api/v2/tokens/me", G),
];

/// Methods other than the route's.
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PURGE",
];

/// The query parameters the dialects read.
pub const PARAMS: [&str; 17] = [
    "lastUserId",
    "limit",
    "soft",
    "from",
    "ids",
    "ids[]",
    "id",
    "deactivated",
    "localeCode",
    "pageNumber",
    "pageSize",
    "deleted",
    "users",
    "capacity",
    "userId",
    "username",
    "local",
];

/// The body fields the dialects read.
pub const FIELDS: [&str; 36] = [
    "category",
    "userId",
    "token",
    "user",
    "username",
    "password",
    "status",
    "message",
    "value",
    "name",
    "deactivated",
    "languageLabels",
    "systemPresence",
    "sourceId",
    "source",
    "primary",
    "presenceDefinition",
    "id",
    "activity",
    "grant_type",
    "client_id",
    "client_secret",
    "restorePresenceSettings",
    "enabled",
    "restoreTimeMilliseconds",
    "restoreOnQueueEnabled",
    "requestingOffQueueEnabled",
    "defaultPrimaryPresenceRegisteredSourceId",
    "description",
    "en_US",
    "fr",
    "selfUri",
    "kind",
    "divisionId",
    "modifiedDate",
    "type",
];

/// Values of flag parameters.
const FLAGS: [&str; 9] = ["true", "false", "TRUE", "False", "1", "0", "yes", "", "ALL"];

/// Timestamps around the clock, and malformed ones.
const TIMES: [&str; 12] = [
    "2026-11-23T12:00:00Z",
    "2026-11-23T12:00:00.000Z",
    "2026-11-23T11:59:00Z",
    "2026-11-23T11:49:59Z",
    "2026-11-23T13:00:00Z",
    "2026-11-23T14:00:00+02:00",
    "2026-11-23 12:00:00",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "2026-02-30T00:00:00Z",
    "2026-11-23T12:00:00.1234567890Z",
    "1795435200000",
];

const SECRETS: [&str; 8] = [
    "demo-password",
    "demo-secret",
    "demo-client",
    "client_credentials",
    "authorization_code",
    "presence-bot",
    "plain-bot",
    "wrong",
];

const RC_STATUSES: [&str; 6] = ["online", "away", "busy", "offline", "Online", "invisible"];
const ACTIVITIES: [&str; 5] = ["ACTIVE", "IDLE", "idle", "OFFLINE", "active "];
const LOCALES: [&str; 6] = ["en_US", "fr", "ALL", "all", "xx", ""];
const SETTINGS: [&str; 3] = [
    "Presence_broadcast_disabled",
    "presence_broadcast_disabled",
    "Accounts_AllowDeleteOwnAccount",
];
const SESSIONS: [u64; 5] = [1, 2, 0, u64::MAX, 7];

// ---- The input -----------------------------------------------------------------------------

/// One request.
#[derive(Arbitrary, Clone, Debug)]
pub struct Req {
    /// Index into [`ROUTES`] (modulo).
    pub route: u8,
    pub method: MethodChoice,
    pub path: PathChoice,
    /// The path's placeholders, in order.
    pub slots: [Slot; 2],
    pub creds: Creds,
    pub query: QueryChoice,
    pub content_type: ContentType,
    pub body: BodyChoice,
    /// Whether to send WebSocket upgrade headers.
    pub upgrade: bool,
}

#[derive(Arbitrary, Clone, Debug)]
pub enum MethodChoice {
    /// The route's.
    Route,
    /// One of [`METHODS`] (modulo).
    Other(u8),
}

#[derive(Arbitrary, Clone, Debug)]
pub enum PathChoice {
    /// The route's path, placeholders filled.
    Template,
    /// With a trailing slash.
    TrailingSlash,
    /// With one more segment.
    Suffix(Text),
    /// An unknown path under the dialect's prefix.
    UnderPrefix(Text),
    /// Any path.
    Raw(Text),
}

/// A path placeholder.
#[derive(Arbitrary, Clone, Debug)]
pub enum Slot {
    /// A known value of the placeholder's kind.
    Known(u8),
    /// A known value of any kind.
    Ref(Ref),
    Number(u64),
    /// Text, percent-encoded.
    Text(Text),
    /// Text as is (encoded only if the URI would not parse).
    Raw(Text),
}

/// A known value: the `index`th (modulo) of `kind`.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Ref {
    pub kind: Kind,
    pub index: u8,
}

/// Kinds of known values.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Symphony ids (numbers): directory users, the two bots, unknown ones.
    SymUser,
    /// Rocket.Chat `_id`s.
    RcUser,
    /// Genesys UUIDs.
    GenesysUser,
    Username,
    /// Definition ids: the org's by `en_US` label (after a reset `Lunch`, `Retired`), then
    /// the system ones by label.
    Definition,
    /// Source ids: `PURECLOUD`, the others by name (after a reset `Calendar`, `Teams`), then
    /// `purecloud`.
    Source,
    /// Live feeds, then an unknown and a malformed id.
    Feed,
    Setting,
    /// Session ids (numbers).
    Session,
    Category,
    SystemPresence,
    RcStatus,
    Activity,
    Locale,
    Secret,
    /// Login JWTs, valid and not.
    Jwt,
    /// Issued tokens.
    Token,
    Time,
}

#[derive(Arbitrary, Clone, Debug)]
pub enum Creds {
    None,
    /// Valid for the route's dialect.
    Valid,
    /// A variant: another account, a header missing, another scheme.
    Alt(u8),
    /// Another dialect's token where this one's goes.
    Foreign(u8),
    /// Any text in the header.
    Garbage(Text),
}

#[derive(Arbitrary, Clone, Debug)]
pub enum QueryChoice {
    None,
    /// Any text after the `?`.
    Raw(Text),
    Params(Vec<(Param, QVal)>),
}

#[derive(Arbitrary, Clone, Debug)]
pub enum Param {
    /// One of [`PARAMS`] (modulo).
    Known(u8),
    Other(Text),
}

/// A query or form value.
#[derive(Arbitrary, Clone, Debug)]
pub enum QVal {
    /// The name alone, no `=`.
    Bare,
    Leaf(Leaf),
    Number(u64),
    Signed(i64),
    /// One of [`FLAGS`] (modulo).
    Flag(u8),
    /// Comma-separated.
    List(Vec<Leaf>),
    /// As is (encoded only if the URI would not parse).
    Raw(Text),
}

/// A value: known, any text, or a long string.
#[derive(Arbitrary, Clone, Debug)]
pub enum Leaf {
    /// Numbers for Symphony ids and sessions, else text.
    Ref(Ref),
    /// Always text.
    RefText(Ref),
    Text(Text),
    /// `16 * n` characters, one byte each or two.
    Long(u8, bool),
}

#[derive(Arbitrary, Clone, Debug)]
pub enum ContentType {
    /// JSON for a JSON body, a form's for a form, none otherwise.
    Auto,
    None,
    Json,
    JsonCharset,
    Form,
    Text,
    Garbage(Text),
}

#[derive(Arbitrary, Clone, Debug)]
pub enum BodyChoice {
    Empty,
    Raw(Bytes),
    Json(Json),
    Form(Vec<(Field, QVal)>),
    /// JSON of 64 KiB + `n` bytes.
    Huge(u8),
}

#[derive(Arbitrary, Clone, Debug)]
pub enum Field {
    /// One of [`FIELDS`] (modulo).
    Known(u8),
    Other(Text),
}

/// A JSON value, at most [`JSON_DEPTH`] deep and [`JSON_WIDTH`] wide; objects may repeat keys.
#[derive(Clone, Debug)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Leaf(Leaf),
    Array(Vec<Json>),
    Object(Vec<(Field, Json)>),
}

const JSON_VARIANTS: u64 = 8;
const JSON_DEPTH: usize = 4;
const JSON_WIDTH: usize = 8;

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        json_at(u, 0)
    }
}

/// A variant index as `derive(Arbitrary)` reads it.
fn variant(u: &mut Unstructured<'_>, count: u64) -> arbitrary::Result<u64> {
    Ok((u64::from(u32::arbitrary(u)?) * count) >> 32)
}

fn json_at(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Json> {
    Ok(match variant(u, JSON_VARIANTS)? {
        0 => Json::Null,
        1 => Json::Bool(u.arbitrary()?),
        2 => Json::Int(u.arbitrary()?),
        3 => Json::Uint(u.arbitrary()?),
        4 => Json::Float(u.arbitrary()?),
        5 => Json::Leaf(u.arbitrary()?),
        6 => {
            let mut items = Vec::new();
            while depth < JSON_DEPTH && items.len() < JSON_WIDTH && u.arbitrary::<bool>()? {
                items.push(json_at(u, depth + 1)?);
            }
            Json::Array(items)
        }
        _ => {
            let mut members = Vec::new();
            while depth < JSON_DEPTH && members.len() < JSON_WIDTH && u.arbitrary::<bool>()? {
                members.push((u.arbitrary()?, json_at(u, depth + 1)?));
            }
            Json::Object(members)
        }
    })
}

/// Text: a length byte, then that many bytes (lossy UTF-8).
#[derive(Clone, Debug)]
pub struct Text(pub String);

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = usize::from(u8::arbitrary(u)?).min(u.len());
        Ok(Text(String::from_utf8_lossy(u.bytes(n)?).into_owned()))
    }
}

/// Bytes: a little-endian `u16` length, then that many bytes.
#[derive(Clone, Debug)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = usize::from(u16::arbitrary(u)?).min(u.len());
        Ok(Bytes(u.bytes(n)?.to_vec()))
    }
}

// ---- The app -------------------------------------------------------------------------------

/// The app, its router, the runtime that drives it, and what the inputs refer to.
struct Harness {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    router: Router,
    users: Vec<User>,
    /// Symphony ids: the directory's, the bots', unknown ones.
    sym_ids: Vec<u64>,
    /// A session token of `plain-bot` (no User Provisioning).
    plain_token: String,
    /// The Rocket.Chat user's token (issued again after a logout revoked it).
    rc_token: String,
    jwts: Vec<String>,
    /// Tokens issued by this input's logins, revoked at the next reset.
    issued: Vec<String>,
    /// Live feeds (public ids, owned by `presence-bot`): the one made at reset, then those
    /// this input created.
    feeds: Vec<String>,
    /// The registries as the reset leaves them.
    definitions: Vec<Definition>,
    sources: Vec<Source>,
    /// Whether Genesys' settings may have changed.
    settings_dirty: bool,
    /// The built-in source as the store starts.
    default_source: Source,
}

impl Harness {
    fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let clock = Arc::new(ManualClock::new(START_MS));
        let options = Options {
            demo_users: USERS,
            simulate: false,
            ..Options::default()
        };
        // Throttling would make the answers depend on the inputs before (the clock never
        // moves, so a window never passes): here its quotas are out of reach.
        let options = Options {
            policy: Policy {
                login_burst_per_account: 1_000_000,
                login_burst_per_address: 1_000_000,
                ..Policy::default()
            },
            ..options
        };
        let directory = Directory::demo(options.demo_users);
        let mut accounts = Accounts::demo(&directory).expect("the OS CSPRNG");
        accounts.set_tokens(|dialect| {
            match dialect {
                AccountDialect::Symphony => DEMO_SYMPHONY_TOKEN,
                AccountDialect::RocketChat => DEMO_ROCKETCHAT_TOKEN,
                AccountDialect::Genesys => DEMO_GENESYS_TOKEN,
                AccountDialect::Gateway => DEMO_GATEWAY_TOKEN,
            }
            .to_owned()
        });
        let app = App::with_accounts(&options, directory, accounts, clock).expect("the app");
        let router = app.router();
        let users = app.directory.users().to_vec();
        let bots: Vec<u64> = app.accounts.symphony.iter().map(|a| a.user_id).collect();
        let mut sym_ids: Vec<u64> = users.iter().map(|u| u.id).collect();
        sym_ids.extend(&bots);
        sym_ids.extend([users[0].id + 1_000_000, 0, u64::MAX]);
        let plain = &app.accounts.symphony[1];
        let plain_token = app
            .tokens
            .issue(
                Principal::Symphony {
                    username: plain.username.clone(),
                    user_id: plain.user_id,
                    entitlements: plain.entitlements.clone(),
                },
                LIFETIME,
                START_MS,
                usize::MAX,
            )
            .expect("a token")
            .token;
        let rc_token = DEMO_ROCKETCHAT_TOKEN.to_owned();
        let jwts = jwts(START_MS / 1000);
        let default_source = app.store.sources()[0].clone();
        Harness {
            rt,
            app,
            router,
            users,
            sym_ids,
            plain_token,
            rc_token,
            jwts,
            issued: Vec::new(),
            feeds: Vec::new(),
            definitions: Vec::new(),
            sources: Vec::new(),
            settings_dirty: true,
            default_source,
        }
    }

    /// Puts the app back in the state every input starts from: no tokens but the demo ones
    /// (and `plain-bot`'s, and a Rocket.Chat token for the first user), broadcast on, Genesys'
    /// default settings, the definitions `Lunch` (Meal) and `Retired` (Away, deactivated), the
    /// sources `Teams` and `Calendar` (deactivated) beside the built-in one (named as at
    /// start), one fresh feed, and four users: the first online with a message, the second
    /// hard busy, the third busy from `Teams` (its primary source), and `presence-bot`
    /// available.
    fn reset(&mut self) {
        // A logout with a token issued in advance revokes it for good: start over with a new
        // app then (rare: the input has to log out with the demo token itself).
        let demo = [DEMO_SYMPHONY_TOKEN, DEMO_GENESYS_TOKEN, DEMO_GATEWAY_TOKEN];
        if demo.iter().any(|token| {
            self.app
                .tokens
                .principal(&app::secret::Digest::of(token), START_MS)
                .is_none()
        }) {
            *self = Harness::new();
        }
        let app = self.app.clone();
        for token in self.issued.drain(..) {
            app.tokens.revoke(&app::secret::Digest::of(&token));
        }
        if app
            .tokens
            .principal(&app::secret::Digest::of(&self.rc_token), START_MS)
            .is_none()
        {
            let admin = &app.accounts.rocketchat[0];
            self.rc_token = app
                .tokens
                .issue(
                    Principal::RocketChat {
                        username: admin.username.clone(),
                        user_id: admin.user_id,
                        admin: admin.is_admin(),
                    },
                    LIFETIME,
                    START_MS,
                    usize::MAX,
                )
                .expect("a token")
                .token;
        }
        app.rocketchat.set_broadcast_disabled(&app.store, false);
        if self.settings_dirty {
            let body = serde_json::to_vec(&PresenceSettings::default()).expect("settings");
            let request = Request::builder()
                .method(Method::PUT)
                .uri("/api/v2/presence/settings")
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {DEMO_GENESYS_TOKEN}"),
                )
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("a request");
            let (status, _, _) = self.call(request);
            assert_eq!(status, StatusCode::OK, "resetting Genesys' settings");
            self.settings_dirty = false;
        }
        let store = &app.store;
        let everyone = PageQuery {
            limit: Some(store.config().max_page),
            include_offline: true,
            ..PageQuery::default()
        };
        for (user, _) in store.page(&everyone).expect("a page").items {
            store.remove(&user);
        }
        if store.definitions() != self.definitions || store.sources() != self.sources {
            for d in store.definitions().iter().filter(|d| !d.system) {
                store.delete_definition(&d.id).expect("delete a definition");
            }
            for s in store.sources().iter().filter(|s| !s.id.is_default()) {
                store.delete_source(&s.id).expect("delete a source");
            }
            // The built-in source may have been renamed.
            let default = &self.default_source;
            store
                .update_source(
                    &default.id,
                    SourceUpdate {
                        name: Some(default.name.clone()),
                        ..Default::default()
                    },
                )
                .expect("rename the default source");
            let labels = |en: &str, fr: &str| {
                [
                    ("en_US".to_owned(), en.to_owned()),
                    ("fr".to_owned(), fr.to_owned()),
                ]
                .into()
            };
            store
                .create_definition(SystemPresence::Meal, labels("Lunch", "Déjeuner"))
                .expect("a definition");
            let retired = store
                .create_definition(SystemPresence::Away, labels("Retired", "Retraité"))
                .expect("a definition");
            store
                .update_definition(
                    &retired.id,
                    DefinitionUpdate {
                        deactivated: Some(true),
                        ..Default::default()
                    },
                )
                .expect("deactivate");
            store.create_source("Teams").expect("a source");
            {
                let created = store.create_source("Calendar").unwrap();
                let retire = SourceUpdate {
                    deactivated: Some(true),
                    ..Default::default()
                };
                store.update_source(&created.id, retire).unwrap()
            };
            self.definitions = store.definitions();
            self.sources = store.sources();
        }
        let owner = (AccountDialect::Symphony, "presence-bot".to_owned());
        for feed in self.feeds.drain(..) {
            if let Some(feed) = app.feeds.remove(&owner, &feed) {
                let _ = store.delete_feed(&feed);
            }
        }
        let feed = app
            .feeds
            .create(store, owner, START_MS, usize::MAX, u64::MAX)
            .expect("a feed");
        self.feeds.push(feed);
        let lunch = self
            .definitions
            .iter()
            .find(|d| d.label("en_US") == Some("Lunch"));
        let teams = self.sources.iter().find(|s| s.name == "Teams");
        let (Some(lunch), Some(teams)) = (lunch, teams.map(|s| &s.id)) else {
            unreachable!("the reset made Lunch and Teams")
        };
        let [first, second, third, ..] = &self.users[..] else {
            unreachable!("{USERS} users")
        };
        store
            .heartbeat(&first.id, 1, Activity::Active)
            .expect("a heartbeat");
        store
            .set_message(&first.id, "at my desk")
            .expect("a message");
        store
            .set(&second.id, Category::Busy, SetMode::Hard)
            .expect("a set");
        store
            .set_source_presence(&third.id, teams, &lunch.id, Some("lunch"))
            .expect("a source presence");
        store
            .set_primary_source(&third.id, teams)
            .expect("a primary source");
        store
            .set(&self.sym_ids[USERS], Category::Available, SetMode::Soft)
            .expect("a set");
    }

    fn call(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response: Response<Body> = self
            .rt
            .block_on(self.router.clone().oneshot(request))
            .unwrap_or_else(|e| match e {});
        let (parts, body) = response.into_parts();
        let bytes = self
            .rt
            .block_on(to_bytes(body, usize::MAX))
            .expect("the response body");
        (parts.status, parts.headers, bytes.to_vec())
    }

    /// Sends one request and checks the answer.
    fn send(&mut self, req: &Req) {
        let Some(built) = self.build(req) else {
            return;
        };
        let before = Before::take(&self.app, &self.sym_ids);
        let what = format!(
            "{} {} ({} body bytes: {:?})",
            built.method, built.uri, built.body_len, built.preview
        );
        let (status, headers, body) = self.call(built.request);
        let shown = String::from_utf8_lossy(&body[..body.len().min(600)]).into_owned();
        let what = format!("{what}\n-> {status} {shown}");
        if trace() {
            eprintln!("{what}\n");
        }
        assert!(
            status.is_success() || status.is_client_error(),
            "not 2xx or 4xx: {what}"
        );
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let head = built.method == Method::HEAD;
        let parsed: Option<Value> = if is_json && !head && !body.is_empty() {
            match serde_json::from_slice(&body) {
                Ok(v) => Some(v),
                Err(e) => panic!("a JSON content type, a body that does not parse ({e}): {what}"),
            }
        } else {
            None
        };
        if status.is_client_error() {
            if !head {
                let Some(value) = parsed.as_ref() else {
                    panic!("an error without a JSON body: {what}");
                };
                let shape = Shape::of(&built.method, built.uri.path(), status);
                if let Err(why) = shape.check(status, value) {
                    panic!("not the {shape:?} error body ({why}): {what}");
                }
            }
            if let Err(why) = before.unchanged(&self.app) {
                panic!("a {status} changed the store ({why}): {what}");
            }
        } else {
            self.note_success(&built.method, built.uri.path(), parsed.as_ref());
        }
    }

    /// Keeps what a successful request issued or created, to undo it at the next reset.
    fn note_success(&mut self, method: &Method, path: &str, body: Option<&Value>) {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let body = body.unwrap_or(&Value::Null);
        let token = match path {
            "/login/pubkey/authenticate" | "/relay/pubkey/authenticate" => text(body.get("token")),
            "/api/v1/login" => text(body.pointer("/data/authToken")),
            "/oauth/token" => text(body.get("access_token")),
            _ => None,
        };
        self.issued.extend(token);
        if path == "/pod/v1/presence/feed/create" {
            if let Some(id) = text(body.get("id")) {
                self.feeds.push(id.to_owned());
            }
        }
        if path == "/api/v2/presence/settings" && method != Method::GET {
            self.settings_dirty = true;
        }
    }

    // ---- Building a request ----

    fn build(&self, req: &Req) -> Option<Built> {
        let route = &ROUTES[usize::from(req.route) % ROUTES.len()];
        let method = match req.method {
            MethodChoice::Route => route.method,
            MethodChoice::Other(i) => METHODS[usize::from(i) % METHODS.len()],
        };
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let uri = [false, true]
            .into_iter()
            .find_map(|encode| self.uri(route, req, encode).parse::<Uri>().ok())?;
        let mut builder = Request::builder().method(method.clone()).uri(uri.clone());
        for (name, value) in self.credentials(route, &req.creds) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                builder = builder.header(name, value);
            }
        }
        let (body, auto) = self.body(&req.body);
        let content_type = match &req.content_type {
            ContentType::Auto => auto.map(str::to_owned),
            ContentType::None => None,
            ContentType::Json => Some("application/json".to_owned()),
            ContentType::JsonCharset => Some("application/json; charset=utf-8".to_owned()),
            ContentType::Form => Some("application/x-www-form-urlencoded".to_owned()),
            ContentType::Text => Some("text/plain".to_owned()),
            ContentType::Garbage(t) => Some(t.0.clone()),
        };
        if let Some(value) = content_type.and_then(|v| HeaderValue::from_str(&v).ok()) {
            builder = builder.header(header::CONTENT_TYPE, value);
        }
        if req.upgrade {
            builder = builder
                .header(header::CONNECTION, "upgrade")
                .header(header::UPGRADE, "websocket")
                .header(header::SEC_WEBSOCKET_VERSION, "13")
                .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
        }
        let preview = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        let body_len = body.len();
        let request = builder.body(Body::from(body)).ok()?;
        Some(Built {
            method,
            uri,
            body_len,
            preview,
            request,
        })
    }

    /// The request's path and query; `encode` percent-encodes what is otherwise sent as is.
    fn uri(&self, route: &Route, req: &Req, encode: bool) -> String {
        let mut slots = req.slots.iter();
        let mut filled = String::new();
        for segment in route.path.split('/').skip(1) {
            filled.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let slot = slots.next().expect("two slots at most");
                    filled.push_str(&self.slot(placeholder(name), slot, encode));
                }
                None => filled.push_str(segment),
            }
        }
        let mut uri = match &req.path {
            PathChoice::Template => filled,
            PathChoice::TrailingSlash => filled + "/",
            PathChoice::Suffix(t) => format!("{filled}/{}", escape(&t.0, encode, false)),
            PathChoice::UnderPrefix(t) => {
                let prefix = match route.dialect {
                    Dialect::Symphony => "/pod/",
                    Dialect::RocketChat => "/api/v1/",
                    Dialect::Genesys => "/api/v2/",
                    Dialect::Own => "/devices/v1/",
                };
                format!("{prefix}{}", escape(&t.0, encode, true))
            }
            PathChoice::Raw(t) => format!("/{}", escape(&t.0, encode, true)),
        };
        match &req.query {
            QueryChoice::None => {}
            QueryChoice::Raw(t) => {
                uri.push('?');
                uri.push_str(&escape(&t.0, encode, true));
            }
            QueryChoice::Params(params) => {
                uri.push('?');
                uri.push_str(&self.pairs(params, encode, false));
            }
        }
        uri
    }

    fn slot(&self, kind: Kind, slot: &Slot, encode: bool) -> String {
        match slot {
            Slot::Known(i) => escape(&self.text(Ref { kind, index: *i }), true, false),
            Slot::Ref(r) => escape(&self.text(*r), true, false),
            Slot::Number(n) => n.to_string(),
            Slot::Text(t) => escape(&t.0, true, false),
            Slot::Raw(t) => escape(&t.0, encode, false),
        }
    }

    /// `name=value` pairs joined by `&`; a form's encode spaces as `+`.
    fn pairs(&self, pairs: &[(impl NameOf, QVal)], encode: bool, form: bool) -> String {
        let esc = |s: &str| {
            let e = escape(s, true, false);
            if form {
                e.replace("%20", "+")
            } else {
                e
            }
        };
        let mut out = Vec::new();
        for (name, value) in pairs {
            let name = name.name();
            let name = if encode { esc(&name) } else { name };
            let value = match value {
                QVal::Bare => {
                    out.push(name);
                    continue;
                }
                QVal::Leaf(leaf) => esc(&self.leaf_text(leaf)),
                QVal::Number(n) => n.to_string(),
                QVal::Signed(n) => n.to_string(),
                QVal::Flag(i) => FLAGS[usize::from(*i) % FLAGS.len()].to_owned(),
                QVal::List(leaves) => leaves
                    .iter()
                    .map(|l| esc(&self.leaf_text(l)))
                    .collect::<Vec<_>>()
                    .join(","),
                QVal::Raw(t) => escape(&t.0, encode, true),
            };
            out.push(format!("{name}={value}"));
        }
        out.join("&")
    }

    fn body(&self, body: &BodyChoice) -> (Vec<u8>, Option<&'static str>) {
        const JSON: Option<&str> = Some("application/json");
        match body {
            BodyChoice::Empty => (Vec::new(), None),
            BodyChoice::Raw(b) => (b.0.clone(), None),
            BodyChoice::Json(json) => {
                let mut out = String::new();
                self.write_json(json, &mut out);
                (out.into_bytes(), JSON)
            }
            BodyChoice::Form(pairs) => (
                self.pairs(pairs, true, true).into_bytes(),
                Some("application/x-www-form-urlencoded"),
            ),
            BodyChoice::Huge(n) => {
                let filler = "x".repeat(MAX_BODY + usize::from(*n));
                (format!(r#"{{"message":"{filler}"}}"#).into_bytes(), JSON)
            }
        }
    }

    fn write_json(&self, json: &Json, out: &mut String) {
        let string = |s: &str| serde_json::to_string(s).expect("a JSON string");
        match json {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(&b.to_string()),
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Uint(n) => out.push_str(&n.to_string()),
            Json::Float(f) => out.push_str(&Value::from(*f).to_string()),
            Json::Leaf(leaf) => out.push_str(&self.leaf(leaf).to_string()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_json(item, out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (field, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&string(&field.name()));
                    out.push(':');
                    self.write_json(value, out);
                }
                out.push('}');
            }
        }
    }

    /// A leaf as JSON: Symphony ids and sessions as numbers, everything else as text.
    fn leaf(&self, leaf: &Leaf) -> Value {
        match leaf {
            Leaf::Ref(r) => self.value(*r),
            _ => Value::from(self.leaf_text(leaf)),
        }
    }

    fn leaf_text(&self, leaf: &Leaf) -> String {
        match leaf {
            Leaf::Ref(r) | Leaf::RefText(r) => self.text(*r),
            Leaf::Text(t) => t.0.clone(),
            Leaf::Long(n, wide) => {
                let c = if *wide { "é" } else { "x" };
                c.repeat(16 * usize::from(*n))
            }
        }
    }

    fn text(&self, r: Ref) -> String {
        match self.value(r) {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    /// The known value `r` names, in the state the app is in now.
    fn value(&self, r: Ref) -> Value {
        fn pick<T: Clone>(list: &[T], i: u8) -> T {
            list[usize::from(i) % list.len()].clone()
        }
        let i = r.index;
        let users = &self.users;
        match r.kind {
            Kind::SymUser => Value::from(pick(&self.sym_ids, i)),
            Kind::Session => Value::from(pick(&SESSIONS, i)),
            Kind::RcUser => Value::from(pick(users, i).rc_id),
            Kind::GenesysUser => Value::from(pick(users, i).genesys_id),
            Kind::Username => Value::from(pick(users, i).username),
            Kind::Definition => {
                // Ids differ from run to run: the org's in label order, then the system ones.
                let mut all = self.app.store.definitions();
                all.sort_by(|a, b| (a.system, a.label("en_US")).cmp(&(b.system, b.label("en_US"))));
                let (org, system): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| !d.system);
                let ids: Vec<String> = org
                    .iter()
                    .chain(&system)
                    .map(|d| d.id.to_string())
                    .collect();
                Value::from(pick(&ids, i))
            }
            Kind::Source => {
                // The default, then the others by name.
                let mut all = self.app.store.sources();
                all.sort_by(|a, b| {
                    (!a.id.is_default(), &a.name).cmp(&(!b.id.is_default(), &b.name))
                });
                let mut ids: Vec<String> = all.iter().map(|s| s.id.to_string()).collect();
                ids.push(SourceId::DEFAULT.as_str().to_ascii_lowercase());
                Value::from(pick(&ids, i))
            }
            Kind::Feed => {
                let mut ids = self.feeds.clone();
                ids.extend([
                    "0000000000000000".to_owned(),
                    "not-a-feed".to_owned(),
                    "AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
                ]);
                Value::from(pick(&ids, i))
            }
            Kind::Setting => Value::from(pick(&SETTINGS, i)),
            Kind::Category => {
                let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
                let name = pick(&names, i);
                Value::from(if i & 0x80 != 0 {
                    name.to_ascii_lowercase()
                } else {
                    name.to_owned()
                })
            }
            Kind::SystemPresence => {
                let names: Vec<&str> = SystemPresence::ALL
                    .iter()
                    .map(|p| p.display_name())
                    .collect();
                Value::from(pick(&names, i))
            }
            Kind::RcStatus => Value::from(pick(&RC_STATUSES, i)),
            Kind::Activity => Value::from(pick(&ACTIVITIES, i)),
            Kind::Locale => Value::from(pick(&LOCALES, i)),
            Kind::Secret => Value::from(pick(&SECRETS, i)),
            Kind::Jwt => Value::from(pick(&self.jwts, i)),
            Kind::Token => Value::from(pick(&self.tokens(), i)),
            Kind::Time => Value::from(pick(&TIMES, i)),
        }
    }

    /// Every token there is: the demo ones, `plain-bot`'s, and those this input's logins issued.
    fn tokens(&self) -> Vec<String> {
        let mut tokens = vec![
            DEMO_SYMPHONY_TOKEN.to_owned(),
            self.rc_token.clone(),
            DEMO_GENESYS_TOKEN.to_owned(),
            self.plain_token.clone(),
        ];
        tokens.extend(self.issued.iter().cloned());
        tokens
    }

    /// The headers `creds` stands for on `route`.
    fn credentials(&self, route: &Route, creds: &Creds) -> Vec<(&'static str, String)> {
        let tokens = self.tokens();
        let foreign = |i: u8| tokens[usize::from(i) % tokens.len()].clone();
        let basic = |id_secret: &str| format!("Basic {}", base64(id_secret.as_bytes()));
        let rc_user = |i: usize| self.users[i].rc_id.clone();
        let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
        match (route.dialect, route.path == "/oauth/token", creds) {
            (_, _, Creds::None) => vec![],
            (Dialect::Symphony, _, Creds::Valid) => {
                vec![("sessiontoken", DEMO_SYMPHONY_TOKEN.to_owned())]
            }
            (Dialect::Symphony, _, Creds::Alt(i)) => match i % 3 {
                0 => vec![("sessiontoken", self.plain_token.clone())],
                1 => vec![bearer(DEMO_SYMPHONY_TOKEN)],
                _ => vec![("sessiontoken", format!(" {DEMO_SYMPHONY_TOKEN} "))],
            },
            (Dialect::Symphony, _, Creds::Foreign(i)) => vec![("sessiontoken", foreign(*i))],
            (Dialect::Symphony, _, Creds::Garbage(t)) => vec![("sessiontoken", t.0.clone())],
            (Dialect::RocketChat, _, Creds::Valid) => vec![
                ("x-auth-token", self.rc_token.clone()),
                ("x-user-id", rc_user(0)),
            ],
            (Dialect::RocketChat, _, Creds::Alt(i)) => match i % 3 {
                0 => vec![
                    ("x-auth-token", self.rc_token.clone()),
                    ("x-user-id", rc_user(1)),
                ],
                1 => vec![("x-auth-token", self.rc_token.clone())],
                _ => vec![("x-user-id", rc_user(0))],
            },
            (Dialect::RocketChat, _, Creds::Foreign(i)) => {
                vec![("x-auth-token", foreign(*i)), ("x-user-id", rc_user(0))]
            }
            (Dialect::RocketChat, _, Creds::Garbage(t)) => {
                vec![("x-auth-token", t.0.clone()), ("x-user-id", rc_user(0))]
            }
            (Dialect::Genesys, true, Creds::Valid) => {
                vec![("authorization", basic("demo-client:demo-secret"))]
            }
            (Dialect::Genesys, true, Creds::Alt(i)) => match i % 3 {
                0 => vec![("authorization", basic("demo-client:wrong"))],
                1 => vec![("authorization", "Basic !!!".to_owned())],
                _ => vec![bearer(DEMO_GENESYS_TOKEN)],
            },
            (Dialect::Genesys, false, Creds::Valid) => vec![bearer(DEMO_GENESYS_TOKEN)],
            (Dialect::Genesys, false, Creds::Alt(i)) => match i % 3 {
                0 => vec![("authorization", format!("bearer  {DEMO_GENESYS_TOKEN}"))],
                1 => vec![("authorization", basic("demo-client:demo-secret"))],
                _ => vec![("authorization", "Bearer".to_owned())],
            },
            (Dialect::Genesys | Dialect::Own, _, Creds::Foreign(i)) => vec![bearer(&foreign(*i))],
            (Dialect::Genesys | Dialect::Own, _, Creds::Garbage(t)) => {
                vec![("authorization", t.0.clone())]
            }
            (Dialect::Own, _, Creds::Valid) => vec![bearer(DEMO_SYMPHONY_TOKEN)],
            (Dialect::Own, _, Creds::Alt(i)) => match i % 3 {
                0 => vec![bearer(&self.rc_token)],
                1 => vec![("sessiontoken", DEMO_SYMPHONY_TOKEN.to_owned())],
                _ => vec![("authorization", format!("bearer {DEMO_GENESYS_TOKEN}"))],
            },
        }
    }
}

/// The kind of value a placeholder takes.
fn placeholder(name: &str) -> Kind {
    match name {
        "uid" | "userId" => Kind::SymUser,
        "user" => Kind::GenesysUser,
        "feed" => Kind::Feed,
        "setting" => Kind::Setting,
        "definition" => Kind::Definition,
        "source" => Kind::Source,
        "sessionId" => Kind::Session,
        other => unreachable!("placeholder {other}"),
    }
}

trait NameOf {
    fn name(&self) -> String;
}

impl NameOf for Param {
    fn name(&self) -> String {
        match self {
            Param::Known(i) => PARAMS[usize::from(*i) % PARAMS.len()].to_owned(),
            Param::Other(t) => t.0.clone(),
        }
    }
}

impl NameOf for Field {
    fn name(&self) -> String {
        match self {
            Field::Known(i) => FIELDS[usize::from(*i) % FIELDS.len()].to_owned(),
            Field::Other(t) => t.0.clone(),
        }
    }
}

/// `s` percent-encoded but for unreserved characters when `encode`; else as is but for what
/// would end a path or start a fragment (`?`, `#`; in a path segment also `/` unless `slashes`).
fn escape(s: &str, encode: bool, slashes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = if encode {
            b.is_ascii_alphanumeric() || b"-._~".contains(&b)
        } else {
            !b"?#".contains(&b) && (slashes || b != b'/')
        };
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Login JWTs for a clock at `now` (seconds): valid for `presence-bot` and `plain-bot`, at the
/// limit of how far ahead `exp` may be, expired, too far ahead, an unknown subject, signed
/// with another algorithm, without `exp`, and not a JWT.
fn jwts(now: u64) -> Vec<String> {
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).expect("the demo key");
    let sign = |alg: Algorithm, claims: Value| {
        let key = match alg {
            Algorithm::HS256 => EncodingKey::from_secret(b"secret"),
            _ => key.clone(),
        };
        jsonwebtoken::encode(&Header::new(alg), &claims, &key).expect("a JWT")
    };
    let rs512 = |sub: &str, exp: u64| {
        sign(
            Algorithm::RS512,
            serde_json::json!({ "sub": sub, "exp": exp }),
        )
    };
    vec![
        rs512("presence-bot", now + 240),
        rs512("plain-bot", now + 240),
        rs512("presence-bot", now + 360),
        rs512("presence-bot", now + 361),
        rs512("presence-bot", now),
        rs512("presence-bot", now - 10),
        rs512("nobody", now + 240),
        sign(
            Algorithm::RS256,
            serde_json::json!({ "sub": "presence-bot", "exp": now + 240 }),
        ),
        sign(
            Algorithm::HS256,
            serde_json::json!({ "sub": "presence-bot", "exp": now + 240 }),
        ),
        sign(
            Algorithm::RS512,
            serde_json::json!({ "sub": "presence-bot" }),
        ),
        "not.a.jwt".to_owned(),
    ]
}

/// A request ready to send, and how to describe it.
struct Built {
    method: Method,
    uri: Uri,
    body_len: usize,
    preview: String,
    request: Request<Body>,
}

// ---- The checks ----------------------------------------------------------------------------

/// The error body a path's dialect answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `{code, message}`.
    Symphony,
    /// `{status: "error", message}` (401).
    RocketChatStatus,
    /// `{success: false, error}`.
    RocketChat,
    /// `{message, code, status}`.
    Genesys,
    /// `{error, error_description}` (`POST /oauth/token`).
    OAuth,
    /// `{status, message}`.
    Own,
}

impl Shape {
    /// The shape for `path` as the server's documentation gives the prefixes (written here
    /// again rather than taken from the server).
    fn of(method: &Method, path: &str, status: StatusCode) -> Shape {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/pod") || under("/login") || under("/relay") || under("/sessionauth") {
            Shape::Symphony
        } else if under("/api/v1") {
            if status == StatusCode::UNAUTHORIZED {
                Shape::RocketChatStatus
            } else {
                Shape::RocketChat
            }
        } else if path == "/oauth/token" && method == Method::POST {
            Shape::OAuth
        } else if under("/api/v2") || under("/oauth") {
            Shape::Genesys
        } else {
            Shape::Own
        }
    }

    fn check(self, status: StatusCode, body: &Value) -> Result<(), String> {
        let text = |name: &str| match body.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
            other => Err(format!("{name} is {other:?}, not a message")),
        };
        let code = u64::from(status.as_u16());
        let number = |name: &str| match body.get(name).and_then(Value::as_u64) {
            Some(n) if n == code => Ok(()),
            _ => Err(format!("{name} is not {code}")),
        };
        let equals = |name: &str, want: Value| match body.get(name) {
            Some(v) if *v == want => Ok(()),
            other => Err(format!("{name} is {other:?}, not {want}")),
        };
        if !body.is_object() {
            return Err("not an object".into());
        }
        match self {
            Shape::Symphony => number("code").and(text("message")),
            Shape::RocketChatStatus => equals("status", "error".into()).and(text("message")),
            Shape::RocketChat => equals("success", false.into()).and(text("error")),
            Shape::Genesys => text("message").and(text("code")).and(number("status")),
            Shape::OAuth => text("error").and(text("error_description")),
            Shape::Own => number("status").and(text("message")),
        }
    }
}

/// What a request that fails must leave as it was.
struct Before {
    cursor: Cursor,
    len: usize,
    definitions: Vec<Definition>,
    sources: Vec<Source>,
    broadcast_disabled: bool,
    /// Each user's presence, primary source and presence from every source: what the log does
    /// not show (a presence from a source that is not the user's primary one).
    users: Vec<UserView>,
}

/// What the store holds of one user.
type UserView = (
    u64,
    Option<Presence>,
    Option<SourceId>,
    Vec<Option<Presence>>,
);

impl Before {
    fn take(app: &App, users: &[u64]) -> Before {
        Before {
            cursor: app.store.cursor(),
            len: app.store.len(),
            definitions: app.store.definitions(),
            sources: app.store.sources(),
            broadcast_disabled: app.rocketchat.broadcast_disabled(&app.store),
            users: Before::users(app, users),
        }
    }

    fn users(app: &App, users: &[u64]) -> Vec<UserView> {
        let sources = app.store.sources();
        users
            .iter()
            .map(|&user| {
                let from = sources.iter();
                (
                    user,
                    app.store.get(&user),
                    app.store.primary_source(&user),
                    from.map(|s| app.store.source_presence(&user, &s.id))
                        .collect(),
                )
            })
            .collect()
    }

    fn unchanged(&self, app: &App) -> Result<(), String> {
        let delta = app.store.changes_since(&Since::Cursor(self.cursor.clone()));
        if delta.full || !delta.users.is_empty() {
            return Err(format!("changes after the cursor: {delta:?}"));
        }
        if app.store.len() != self.len {
            return Err(format!("len {} -> {}", self.len, app.store.len()));
        }
        if app.store.definitions() != self.definitions {
            return Err("the definitions changed".into());
        }
        if app.store.sources() != self.sources {
            return Err("the sources changed".into());
        }
        if app.rocketchat.broadcast_disabled(&app.store) != self.broadcast_disabled {
            return Err("Presence_broadcast_disabled changed".into());
        }
        let ids: Vec<u64> = self.users.iter().map(|u| u.0).collect();
        for (before, after) in self.users.iter().zip(Before::users(app, &ids)) {
            if *before != after {
                return Err(format!("user {}: {before:?} -> {after:?}", before.0));
            }
        }
        Ok(())
    }
}

// ---- Writing inputs ------------------------------------------------------------------------

/// Writes a value as the bytes its `Arbitrary` reads back: for the seeds and the regression
/// tests. (`derive(Arbitrary)` reads integers little-endian, a variant as a `u32` scaled to the
/// variant count, a `Vec` as a `true` byte before each element and a `false` after.)
pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

/// Encodes a whole input.
pub fn encode(requests: &[Req]) -> Vec<u8> {
    let mut out = Vec::new();
    for req in requests {
        req.encode(&mut out);
    }
    out
}

fn tag(out: &mut Vec<u8>, index: u64, count: u64) {
    let tag = (index << 32).div_ceil(count);
    out.extend(u32::try_from(tag).expect("a variant").to_le_bytes());
}

impl Encode for u8 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Encode for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
}

impl Encode for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
}

impl Encode for f64 {
    fn encode(&self, out: &mut Vec<u8>) {
        self.to_bits().encode(out);
    }
}

impl Encode for Text {
    fn encode(&self, out: &mut Vec<u8>) {
        let bytes = self.0.as_bytes();
        out.push(u8::try_from(bytes.len()).expect("at most 255 bytes"));
        out.extend(bytes);
    }
}

impl Encode for Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = u16::try_from(self.0.len()).expect("at most 65535 bytes");
        out.extend(n.to_le_bytes());
        out.extend(&self.0);
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        for item in self {
            out.push(1);
            item.encode(out);
        }
        out.push(0);
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

impl<T: Encode, const N: usize> Encode for [T; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        for item in self {
            item.encode(out);
        }
    }
}

impl Encode for Req {
    fn encode(&self, out: &mut Vec<u8>) {
        self.route.encode(out);
        self.method.encode(out);
        self.path.encode(out);
        self.slots.encode(out);
        self.creds.encode(out);
        self.query.encode(out);
        self.content_type.encode(out);
        self.body.encode(out);
        self.upgrade.encode(out);
    }
}

impl Encode for MethodChoice {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MethodChoice::Route => tag(out, 0, 2),
            MethodChoice::Other(i) => {
                tag(out, 1, 2);
                i.encode(out);
            }
        }
    }
}

impl Encode for PathChoice {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            PathChoice::Template => tag(out, 0, 5),
            PathChoice::TrailingSlash => tag(out, 1, 5),
            PathChoice::Suffix(t) => {
                tag(out, 2, 5);
                t.encode(out);
            }
            PathChoice::UnderPrefix(t) => {
                tag(out, 3, 5);
                t.encode(out);
            }
            PathChoice::Raw(t) => {
                tag(out, 4, 5);
                t.encode(out);
            }
        }
    }
}

impl Encode for Slot {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Slot::Known(i) => {
                tag(out, 0, 5);
                i.encode(out);
            }
            Slot::Ref(r) => {
                tag(out, 1, 5);
                r.encode(out);
            }
            Slot::Number(n) => {
                tag(out, 2, 5);
                n.encode(out);
            }
            Slot::Text(t) => {
                tag(out, 3, 5);
                t.encode(out);
            }
            Slot::Raw(t) => {
                tag(out, 4, 5);
                t.encode(out);
            }
        }
    }
}

impl Encode for Ref {
    fn encode(&self, out: &mut Vec<u8>) {
        self.kind.encode(out);
        self.index.encode(out);
    }
}

/// Every kind, in declaration order.
pub const KINDS: [Kind; 18] = [
    Kind::SymUser,
    Kind::RcUser,
    Kind::GenesysUser,
    Kind::Username,
    Kind::Definition,
    Kind::Source,
    Kind::Feed,
    Kind::Setting,
    Kind::Session,
    Kind::Category,
    Kind::SystemPresence,
    Kind::RcStatus,
    Kind::Activity,
    Kind::Locale,
    Kind::Secret,
    Kind::Jwt,
    Kind::Token,
    Kind::Time,
];

impl Encode for Kind {
    fn encode(&self, out: &mut Vec<u8>) {
        let index = KINDS.iter().position(|k| k == self).expect("a kind");
        tag(out, index as u64, KINDS.len() as u64);
    }
}

impl Encode for Creds {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Creds::None => tag(out, 0, 5),
            Creds::Valid => tag(out, 1, 5),
            Creds::Alt(i) => {
                tag(out, 2, 5);
                i.encode(out);
            }
            Creds::Foreign(i) => {
                tag(out, 3, 5);
                i.encode(out);
            }
            Creds::Garbage(t) => {
                tag(out, 4, 5);
                t.encode(out);
            }
        }
    }
}

impl Encode for QueryChoice {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            QueryChoice::None => tag(out, 0, 3),
            QueryChoice::Raw(t) => {
                tag(out, 1, 3);
                t.encode(out);
            }
            QueryChoice::Params(p) => {
                tag(out, 2, 3);
                p.encode(out);
            }
        }
    }
}

impl Encode for Param {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Param::Known(i) => {
                tag(out, 0, 2);
                i.encode(out);
            }
            Param::Other(t) => {
                tag(out, 1, 2);
                t.encode(out);
            }
        }
    }
}

impl Encode for QVal {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            QVal::Bare => tag(out, 0, 7),
            QVal::Leaf(l) => {
                tag(out, 1, 7);
                l.encode(out);
            }
            QVal::Number(n) => {
                tag(out, 2, 7);
                n.encode(out);
            }
            QVal::Signed(n) => {
                tag(out, 3, 7);
                n.encode(out);
            }
            QVal::Flag(i) => {
                tag(out, 4, 7);
                i.encode(out);
            }
            QVal::List(l) => {
                tag(out, 5, 7);
                l.encode(out);
            }
            QVal::Raw(t) => {
                tag(out, 6, 7);
                t.encode(out);
            }
        }
    }
}

impl Encode for Leaf {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Leaf::Ref(r) => {
                tag(out, 0, 4);
                r.encode(out);
            }
            Leaf::RefText(r) => {
                tag(out, 1, 4);
                r.encode(out);
            }
            Leaf::Text(t) => {
                tag(out, 2, 4);
                t.encode(out);
            }
            Leaf::Long(n, wide) => {
                tag(out, 3, 4);
                n.encode(out);
                wide.encode(out);
            }
        }
    }
}

impl Encode for ContentType {
    fn encode(&self, out: &mut Vec<u8>) {
        let index = match self {
            ContentType::Auto => 0,
            ContentType::None => 1,
            ContentType::Json => 2,
            ContentType::JsonCharset => 3,
            ContentType::Form => 4,
            ContentType::Text => 5,
            ContentType::Garbage(_) => 6,
        };
        tag(out, index, 7);
        if let ContentType::Garbage(t) = self {
            t.encode(out);
        }
    }
}

impl Encode for BodyChoice {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            BodyChoice::Empty => tag(out, 0, 5),
            BodyChoice::Raw(b) => {
                tag(out, 1, 5);
                b.encode(out);
            }
            BodyChoice::Json(j) => {
                tag(out, 2, 5);
                j.encode(out);
            }
            BodyChoice::Form(f) => {
                tag(out, 3, 5);
                f.encode(out);
            }
            BodyChoice::Huge(n) => {
                tag(out, 4, 5);
                n.encode(out);
            }
        }
    }
}

impl Encode for Field {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Field::Known(i) => {
                tag(out, 0, 2);
                i.encode(out);
            }
            Field::Other(t) => {
                tag(out, 1, 2);
                t.encode(out);
            }
        }
    }
}

impl Encode for Json {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_json(self, 0, out);
    }
}

fn encode_json(json: &Json, depth: usize, out: &mut Vec<u8>) {
    let fits = |len: usize| {
        assert!(
            len == 0 || depth < JSON_DEPTH,
            "JSON deeper than {JSON_DEPTH}"
        );
        assert!(len <= JSON_WIDTH, "JSON wider than {JSON_WIDTH}");
        // At the width limit the reader stops without reading the `false`.
        depth < JSON_DEPTH && len < JSON_WIDTH
    };
    match json {
        Json::Null => tag(out, 0, JSON_VARIANTS),
        Json::Bool(b) => {
            tag(out, 1, JSON_VARIANTS);
            b.encode(out);
        }
        Json::Int(n) => {
            tag(out, 2, JSON_VARIANTS);
            n.encode(out);
        }
        Json::Uint(n) => {
            tag(out, 3, JSON_VARIANTS);
            n.encode(out);
        }
        Json::Float(f) => {
            tag(out, 4, JSON_VARIANTS);
            f.encode(out);
        }
        Json::Leaf(l) => {
            tag(out, 5, JSON_VARIANTS);
            l.encode(out);
        }
        Json::Array(items) => {
            tag(out, 6, JSON_VARIANTS);
            for item in items {
                out.push(1);
                encode_json(item, depth + 1, out);
            }
            if fits(items.len()) {
                out.push(0);
            }
        }
        Json::Object(members) => {
            tag(out, 7, JSON_VARIANTS);
            for (field, value) in members {
                out.push(1);
                field.encode(out);
                encode_json(value, depth + 1, out);
            }
            if fits(members.len()) {
                out.push(0);
            }
        }
    }
}

/// Reads an input back into its requests, as [`run`] does.
pub fn decode(data: &[u8]) -> Vec<Req> {
    let mut u = Unstructured::new(data);
    let mut requests = Vec::new();
    while !u.is_empty() && requests.len() < MAX_REQUESTS {
        match Req::arbitrary(&mut u) {
            Ok(req) => requests.push(req),
            Err(_) => break,
        }
    }
    requests
}
