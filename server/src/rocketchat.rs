//! Rocket.Chat's REST API under `/api/v1`, over the shared store.
//!
//! | route | what |
//! | --- | --- |
//! | `POST login` | `{user \| username, password}` as JSON or a form -> `authToken`, `userId` |
//! | `POST logout` | revokes the caller's token |
//! | `GET users.presence?from=&ids=` | everyone not offline, or the changes since `from` |
//! | `GET users.getPresence?userId= \| username=` | one user's status (the caller's without either) |
//! | `POST users.setStatus` | `{status?, message?}`: the caller's status and status message |
//! | `GET, POST settings/{id}` | `Presence_broadcast_disabled`, the one setting kept |
//!
//! Every route but `login` needs `X-Auth-Token` and `X-User-Id` (the token's user's `_id`);
//! without both, or when they do not match, or when the token expired (after
//! `rocketchat_token_secs`) or was logged out, it answers 401 with the vendor's
//! `{status: "error", message: "You must be logged in to do this."}`. Other errors are
//! `{success: false, error}` with 400, 403, 404, 405, 413, 415 or 429, and change nothing.
//! `login` is throttled per username and per client address (429 with `Retry-After`); the
//! password is compared in constant time. Bodies are JSON objects or forms; any other JSON
//! (an array, a number) is 400.
//!
//! `users.presence`, as Rocket.Chat answers it:
//! - without `from`, or with `from` 10 minutes or more in the past: the full list, every
//!   directory user the store knows who is not offline, sorted by Symphony id, `full: true`;
//! - with `from` inside the window: the users whose presence changed at or after `from`, those
//!   who went offline included (as `offline`) and the caller left out (Rocket.Chat's
//!   `findNotIdUpdatedFrom`), `full: false` (`full: true` if the store no longer holds the
//!   changes, with the full list);
//! - with `ids`: only those users (unknown ids are absent); without a `from` inside the window,
//!   those of them not offline. Like Rocket.Chat, an answer filtered by `ids` is not `full`;
//! - a malformed `from` is 400; `Presence_broadcast_disabled` answers `{users: [], full: true}`.
//!
//! Any logged-in user may read the setting; changing it needs the `admin` role (403 without),
//! as [`crate::authz::TABLE`] says.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{
    Form, FromRequest, FromRequestParts, Path, Query, RawQuery, Request, State as AppState,
};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;
use presence_store::wire::rocketchat::{
    Failure, GetPresence, GetPresenceQuery, LoginData, LoginRequest, LogoutData, Me, PresenceQuery,
    PresenceUser, SetSetting, SetStatusRequest, Setting, Status, StatusError, StatusSuccess,
    Success, UsersPresence, PRESENCE_BROADCAST_DISABLED,
};
use presence_store::wire::time::format_iso8601;
use presence_store::{Category, Page, Presence, SetMode, Since};
use serde::de::DeserializeOwned;

use super::accounts::AccountDialect;
use super::authz::{self, ClientAddr};
use super::directory::User;
use super::http::{compressed, json, json_body, Dialect, Shape};
use super::listing::{self, SharedAnswer};
use super::secret::{self, Digest};
use super::throttle::too_many;
use super::tokens::Principal;
use super::{App, Store};

/// This dialect's own server state: its one setting, and when each user last logged in.
#[derive(Debug, Default)]
pub struct State {
    /// `Presence_broadcast_disabled`: when set, `users.presence` lists no one.
    presence_broadcast_disabled: AtomicBool,
    /// Symphony id -> ms of the last `login`, for `users.getPresence`'s `lastLogin`.
    last_login: Mutex<HashMap<u64, u64>>,
    /// The full list's shared serialization.
    full_list: SharedAnswer,
}

/// The key of `Presence_broadcast_disabled` among the replicated settings ([`Store::setting`]).
const BROADCAST_SETTING: &str = "rocketchat.Presence_broadcast_disabled";

impl State {
    /// Whether `Presence_broadcast_disabled` is set: in a cluster, as the latest node to set
    /// it set it; else as set here.
    pub fn broadcast_disabled(&self, store: &Store) -> bool {
        store
            .setting(BROADCAST_SETTING)
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_else(|| self.presence_broadcast_disabled.load(Ordering::Relaxed))
    }

    /// Sets `Presence_broadcast_disabled`, on every node in a cluster.
    pub fn set_broadcast_disabled(&self, store: &Store, disabled: bool) {
        self.restore_broadcast_disabled(disabled);
        store.set_setting(BROADCAST_SETTING, &disabled.to_string());
    }

    /// Sets this instance's own `Presence_broadcast_disabled` (restored from its data
    /// directory), which a value set in the cluster overrides.
    pub fn restore_broadcast_disabled(&self, disabled: bool) {
        self.presence_broadcast_disabled
            .store(disabled, Ordering::Relaxed);
    }
}

/// This dialect's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/users.presence", compressed(get(users_presence)))
        .route("/api/v1/users.getPresence", get(get_presence))
        .route("/api/v1/users.setStatus", post(set_status))
        .route("/api/v1/settings/{id}", get(get_setting).post(set_setting))
}

/// An error response in this dialect's shape: 401 is `{status: "error", message}`, every other
/// status `{success: false, error}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    if status == StatusCode::UNAUTHORIZED {
        json(status, &StatusError::new(message))
    } else {
        json(status, &Failure::new(message))
    }
}

/// A 400 with Rocket.Chat's error code.
fn invalid(message: &str, error_type: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &Failure::typed(message, error_type),
    )
}

/// A 200 JSON body.
fn ok(body: &impl serde::Serialize) -> Response {
    json(StatusCode::OK, body)
}

/// The caller of an authenticated route: the user whose token and `_id` came in the headers.
struct Caller {
    /// The user's Symphony id (the store's key).
    id: u64,
    /// The token's digest, for logout.
    token: Digest,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    /// The user the guard authenticated (it checked `X-User-Id` against the token).
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let caller = authz::Caller::from_request_parts(parts, state).await?;
        match *caller.principal {
            Principal::RocketChat { user_id, .. } => Ok(Caller {
                id: user_id,
                token: caller.token,
            }),
            _ => Err(not_logged_in()),
        }
    }
}

/// The seed's 401.
fn not_logged_in() -> Response {
    error(StatusCode::UNAUTHORIZED, StatusError::NOT_LOGGED_IN)
}

/// A request body as Rocket.Chat takes it: a form when the content type says so, else JSON
/// (415 without a JSON content type). Bad input is 400, never axum's 422.
struct Body<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| {
                v.as_bytes()
                    .starts_with(b"application/x-www-form-urlencoded")
            });
        if is_form {
            Form::<T>::from_request(request, state)
                .await
                .map(|Form(body)| Body(body))
                .map_err(|e: FormRejection| rejected(e.status(), &e.body_text()))
        } else {
            json_body(request, state, Shape::Object)
                .await
                .map(Body)
                .map_err(|(status, message)| rejected(status, &message))
        }
    }
}

/// A body rejection in this dialect's shape; what does not deserialize is 400, as Rocket.Chat
/// answers it, not 422.
fn rejected(status: StatusCode, message: &str) -> Response {
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    error(status, message)
}

/// `POST /api/v1/login`: throttled per username and address, the password compared in
/// constant time (an unknown username costs the same digest as a known one).
async fn login(
    AppState(app): AppState<Arc<App>>,
    ClientAddr(address): ClientAddr,
    Body(request): Body<LoginRequest>,
) -> Response {
    let (Some(name), Some(password)) = (request.name(), request.password.as_deref()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "`user` (or `username`) and `password` are required",
        );
    };
    if let Err(wait) = app
        .throttle
        .login(AccountDialect::RocketChat, name, address)
    {
        return too_many(Dialect::RocketChat, wait);
    }
    let account = app.accounts.rocketchat.iter().find(|a| a.username == name);
    let configured = account.map_or("", |a| a.password.as_str());
    let right = secret::matches(password, configured) && account.is_some();
    let Some(account) = account.filter(|_| right) else {
        return json(StatusCode::UNAUTHORIZED, &StatusError::login_failed());
    };
    let Some(user) = app.directory.get(account.user_id) else {
        let message = format!("account {name:?} is not a directory user");
        return error(StatusCode::INTERNAL_SERVER_ERROR, &message);
    };
    let principal = Principal::RocketChat {
        username: account.username.clone(),
        user_id: user.id,
        admin: account.is_admin(),
    };
    let issued = app.tokens.issue(
        principal,
        app.policy.lifetime(AccountDialect::RocketChat),
        app.clock.now_ms(),
        app.policy.max_tokens_per_account,
    );
    let token = match issued {
        Ok(issued) => issued.token,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    app.rocketchat
        .last_login
        .lock()
        .insert(user.id, app.clock.now_ms());
    let presence = app.store.get(&user.id);
    ok(&StatusSuccess::new(LoginData {
        auth_token: token,
        user_id: user.rc_id.clone(),
        me: me(user, presence.as_ref(), &account.roles),
    }))
}

/// `login`'s `me` for `user`.
fn me(user: &User, presence: Option<&Presence>, roles: &[String]) -> Me {
    Me {
        id: user.rc_id.clone(),
        name: user.name.clone(),
        username: user.username.clone(),
        status: status_of(presence),
        status_connection: presence.map_or(Status::Offline, |p| Status::of_activity(p.activity)),
        utc_offset: user.utc_offset,
        active: true,
        roles: if roles.is_empty() {
            vec!["user".into()]
        } else {
            roles.to_vec()
        },
    }
}

/// What others see of a user; `offline` for one the store does not know.
fn status_of(presence: Option<&Presence>) -> Status {
    presence.map_or(Status::Offline, |p| Status::of(p.category))
}

/// `POST /api/v1/logout`.
async fn logout(AppState(app): AppState<Arc<App>>, caller: Caller) -> Response {
    app.tokens.revoke(&caller.token);
    ok(&StatusSuccess::new(LogoutData::default()))
}

/// `GET /api/v1/users.presence`.
async fn users_presence(
    AppState(app): AppState<Arc<App>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = match PresenceQuery::parse(raw.as_deref().unwrap_or_default()) {
        Ok(query) => query,
        Err(e) => return invalid(&e.to_string(), "error-invalid-param"),
    };
    if app.rocketchat.broadcast_disabled(&app.store) {
        return ok(&UsersPresence {
            users: Vec::new(),
            full: true,
            success: true,
        });
    }
    let wanted = query.ids.as_deref().map(|ids| symphony_ids(&app, ids));
    // A `from` older than the window is the full list: asking the store would make its full
    // answer too, only to drop it.
    let window = app.store.config().delta_window.as_millis();
    let inside = |from: u64| u128::from(app.clock.now_ms().saturating_sub(from)) < window;
    let delta = query
        .from
        .filter(|&from| inside(from))
        .map(|ms| app.store.changes_since(&Since::Time(ms)));
    let users: Vec<(u64, Presence)> = match (delta, &wanted) {
        (Some(delta), _) if !delta.full => {
            let changed = delta.users.into_iter().filter(|(id, _)| *id != caller.id);
            let changed = changed.filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.contains(id)));
            changed.collect()
        }
        (_, Some(wanted)) => not_offline_among(&app.store, wanted),
        (_, None) => return full_list(&app).await,
    };
    let full = false;
    ok(&UsersPresence {
        users: users
            .iter()
            .filter_map(|(id, p)| presence_user(&app, *id, p))
            .collect(),
        full,
        success: true,
    })
}

/// The Symphony ids of the directory users with these Rocket.Chat ids, sorted, each once;
/// unknown ids are left out.
fn symphony_ids(app: &App, rc_ids: &[String]) -> Vec<u64> {
    let mut ids: Vec<u64> = rc_ids
        .iter()
        .filter_map(|id| app.directory.by_rc_id(id))
        .map(|u| u.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Every directory user the store knows who is not offline, sorted by key, `full: true`: one
/// serialization shared by every request waiting for it, and by any later one while the store
/// has not changed (see [`listing`](super::listing)).
async fn full_list(app: &Arc<App>) -> Response {
    let rows = |app: &App, page: &Page<u64>| -> Vec<PresenceUser> {
        let users = page.items.iter();
        users
            .filter_map(|(id, p)| presence_user(app, *id, p))
            .collect()
    };
    let source = Arc::clone(app);
    let pages = move || listing::pages(source, Bound::Unbounded, usize::MAX, false, rows);
    app.rocketchat
        .full_list
        .answer(
            &app.store,
            r#"{"users":["#,
            pages,
            r#"],"full":true,"success":true}"#,
        )
        .await
}

/// The users among `ids` the store knows who are not offline, in `ids` order.
fn not_offline_among(store: &Store, ids: &[u64]) -> Vec<(u64, Presence)> {
    let mut users = store.get_many(ids);
    users.retain(|(_, p)| p.category != Category::Offline);
    users
}

/// A directory user as `users.presence` lists them; `None` for a key not in the directory.
fn presence_user(app: &App, id: u64, presence: &Presence) -> Option<PresenceUser> {
    let user = app.directory.get(id)?;
    Some(PresenceUser {
        id: user.rc_id.clone(),
        name: Some(user.name.clone()),
        username: user.username.clone(),
        status: Status::of(presence.category),
        utc_offset: Some(user.utc_offset),
        avatar_etag: Some(user.avatar_etag.clone()),
        status_text: presence.details.message().map(str::to_owned),
    })
}

/// `GET /api/v1/users.getPresence`.
async fn get_presence(
    AppState(app): AppState<Arc<App>>,
    caller: Caller,
    Query(query): Query<GetPresenceQuery>,
) -> Response {
    let user = match (&query.user_id, &query.username) {
        (Some(id), _) => app.directory.by_rc_id(id),
        (None, Some(name)) => app.directory.by_username(name),
        (None, None) => app.directory.get(caller.id),
    };
    let Some(user) = user else {
        return invalid(
            "The required \"userId\" or \"username\" param provided does not match any users",
            "error-invalid-user",
        );
    };
    let presence = app.store.get(&user.id);
    let own = user.id == caller.id;
    let last_login = || app.rocketchat.last_login.lock().get(&user.id).copied();
    ok(&GetPresence {
        presence: status_of(presence.as_ref()),
        connection_status: own.then(|| {
            presence
                .as_ref()
                .map_or(Status::Offline, |p| Status::of_activity(p.activity))
        }),
        last_login: own.then(last_login).flatten().map(format_iso8601),
        success: true,
    })
}

/// `POST /api/v1/users.setStatus`: checks everything, then sets the status (a hard set, shown
/// at once) and the message.
async fn set_status(
    AppState(app): AppState<Arc<App>>,
    caller: Caller,
    Body(request): Body<SetStatusRequest>,
) -> Response {
    let own_id = app.directory.get(caller.id).map(|u| u.rc_id.as_str());
    if request.user_id.is_some() && request.user_id.as_deref() != own_id {
        return error(
            StatusCode::FORBIDDEN,
            "Editing user is not allowed [error-action-not-allowed]",
        );
    }
    let status = match request.status.as_deref().map(Status::from_name) {
        Some(None) => {
            return invalid(
                "Valid status types include online, away, offline, and busy.",
                "error-invalid-status",
            )
        }
        Some(Some(status)) => Some(status),
        None => None,
    };
    let max = app.store.config().max_message_len;
    if let Some(message) = request.message.as_deref().filter(|m| m.len() > max) {
        let message = format!("status message of {} bytes is over {max}", message.len());
        return invalid(&message, "error-invalid-param");
    }
    match apply_status(&app.store, caller.id, status, request.message.as_deref()) {
        Ok(()) => ok(&Success::default()),
        Err(e) => invalid(&e.to_string(), "error-invalid-param"),
    }
}

/// Sets a checked status and message. A message for a user the store does not know yet first
/// adds them as they would start (`UNDEFINED` requested, offline), which shows nothing new.
fn apply_status(
    store: &Store,
    user: u64,
    status: Option<Status>,
    message: Option<&str>,
) -> Result<(), presence_store::Error> {
    if let Some(status) = status {
        store.set(&user, status.category(), SetMode::Hard)?;
    }
    if let Some(message) = message {
        if store.get(&user).is_none() {
            store.set(&user, Category::Undefined, SetMode::Soft)?;
        }
        store.set_message(&user, message)?;
    }
    Ok(())
}

/// `GET /api/v1/settings/{id}`.
async fn get_setting(
    AppState(app): AppState<Arc<App>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if id != PRESENCE_BROADCAST_DISABLED {
        return unknown_setting(&id);
    }
    ok(&Setting {
        id,
        value: app.rocketchat.broadcast_disabled(&app.store),
        success: true,
    })
}

/// `POST /api/v1/settings/{id}` with `{value: true | false}`.
async fn set_setting(
    AppState(app): AppState<Arc<App>>,
    _caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<SetSetting<serde_json::Value>>,
) -> Response {
    if id != PRESENCE_BROADCAST_DISABLED {
        return unknown_setting(&id);
    }
    let Some(value) = request.value.as_bool() else {
        return invalid(
            "Presence_broadcast_disabled takes true or false",
            "error-invalid-setting-value",
        );
    };
    app.rocketchat.set_broadcast_disabled(&app.store, value);
    ok(&Success::default())
}

/// 404 for a setting this server does not keep.
fn unknown_setting(id: &str) -> Response {
    let id: String = id.chars().take(64).collect();
    let message = format!("setting {id:?} not found: only {PRESENCE_BROADCAST_DISABLED} is kept");
    error(StatusCode::NOT_FOUND, &message)
}
