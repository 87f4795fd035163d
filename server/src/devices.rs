//! The server's own endpoints for devices and gateways: a session reports activity with a
//! heartbeat and ends with a disconnect, and a WebSocket streams every change as it happens.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | `POST` | `/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat` | body `{"activity": "ACTIVE" \| "IDLE"}` (empty: `ACTIVE`) |
//! | `DELETE` | `/devices/v1/users/{userId}/sessions/{sessionId}` | ends the session |
//! | `GET` | `/devices/v1/stream?users=1,2&capacity=N` | WebSocket of changes |
//!
//! Every call needs `Authorization: Bearer <token>` with any token the server issued. `userId`
//! is the Symphony id of a directory user. Both writes answer the user's presence:
//! `{"userId", "category", "requested", "activity", "updatedAt", "version"}`.
//!
//! The stream sends `{"type":"hello","cursor":..}` first, then one
//! `{"type":"change","userId":..,..}` per change. A client that reads too slowly gets
//! `{"type":"lagged","resume":..}` followed by the changes it missed (every user changed since
//! `resume`), then live changes again; a change may arrive twice, so a client keeps the highest
//! `version` per user.
//!
//! Each stream holds one subscription and one thread of tokio's blocking pool (512 by default)
//! that waits on it; a stream stops within [`POLL`] of its socket closing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use presence_store::{Activity, Category, Error, Event, Presence, Since, SubscribeOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::http::{json, own_error};
use super::App;

/// The heartbeat route.
pub const HEARTBEAT: &str = "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat";
/// The disconnect route.
pub const SESSION: &str = "/devices/v1/users/{userId}/sessions/{sessionId}";
/// The WebSocket route.
pub const STREAM: &str = "/devices/v1/stream";

/// The most events a stream's subscription holds before the client lags.
pub const MAX_CAPACITY: usize = 65_536;
/// How long the stream's bridge waits for an event before it checks the socket is still open.
const POLL: Duration = Duration::from_millis(200);
/// Messages queued between the bridge and the socket; when full, the subscription fills and lags.
const QUEUE: usize = 64;

/// What a handler answers: a response, or a [`Refusal`].
type Answer = Result<Response, Refusal>;

/// A refused request: its status and message, answered in the server's own error shape (a 401
/// with `WWW-Authenticate: Bearer`). Small, where a `Response` would make every `Result` large.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = own_error(self.status, &self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The store's errors: a full shard is 503, an unknown user 404, anything else bad input.
impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        let status = match e {
            Error::CapacityExceeded => StatusCode::SERVICE_UNAVAILABLE,
            Error::UnknownUser { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal::new(status, e.to_string())
    }
}

/// The routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(HEARTBEAT, post(heartbeat))
        .route(SESSION, delete(disconnect))
        .route(STREAM, get(stream))
}

/// A user's presence as these endpoints answer it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PresenceView {
    user_id: u64,
    category: Category,
    requested: Category,
    activity: Activity,
    updated_at: u64,
    version: u64,
}

impl PresenceView {
    fn new(user_id: u64, p: &Presence) -> Self {
        PresenceView {
            user_id,
            category: p.category,
            requested: p.requested,
            activity: p.activity,
            updated_at: p.updated_at,
            version: p.version,
        }
    }

    /// A directory user the store has never seen: offline, nothing requested, never changed.
    fn unseen(user_id: u64) -> Self {
        PresenceView {
            user_id,
            category: Category::Offline,
            requested: Category::Undefined,
            activity: Activity::Offline,
            updated_at: 0,
            version: 0,
        }
    }
}

/// One message of the stream.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum StreamEvent {
    Hello { cursor: String },
    Change(PresenceView),
    Lagged { resume: String },
}

impl StreamEvent {
    fn text(&self) -> String {
        // Plain structs of numbers and strings always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `POST .../heartbeat`: the session is alive, active or idle.
async fn heartbeat(
    State(app): State<Arc<App>>,
    Path((user, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    authorize(&app, &headers)?;
    let (user, session) = session_ids(&app, &user, &session)?;
    let activity = parse_activity(&headers, &body)?;
    let presence = app.store.heartbeat(&user, session, activity)?;
    Ok(json(StatusCode::OK, &PresenceView::new(user, &presence)))
}

/// `DELETE .../sessions/{sessionId}`: the session ended. Ending a session twice is no error.
async fn disconnect(
    State(app): State<Arc<App>>,
    Path((user, session)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    authorize(&app, &headers)?;
    let (user, session) = session_ids(&app, &user, &session)?;
    let view = match app.store.disconnect(&user, session) {
        Ok(presence) => PresenceView::new(user, &presence),
        Err(Error::UnknownUser { .. }) => PresenceView::unseen(user),
        Err(e) => return Err(e.into()),
    };
    Ok(json(StatusCode::OK, &view))
}

/// Any token the server issued, as `Authorization: Bearer <token>`; else 401.
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let message = match token {
        None => "missing Authorization: Bearer token",
        Some(token) if app.tokens.principal(token).is_some() => return Ok(()),
        Some(_) => "invalid or expired token",
    };
    Err(Refusal::new(StatusCode::UNAUTHORIZED, message))
}

/// The user and session ids of a path: numbers (else 400), the user in the directory (else 404).
fn session_ids(app: &App, user: &str, session: &str) -> Result<(u64, u64), Refusal> {
    let user = directory_user(app, user)?;
    let session = session.trim().parse().map_err(|_| {
        Refusal::bad_request(format!(
            "sessionId {:?} is not an unsigned 64-bit number",
            echo(session)
        ))
    })?;
    Ok((user, session))
}

/// A Symphony user id that names a directory user.
fn directory_user(app: &App, user: &str) -> Result<u64, Refusal> {
    known_user(app, parse_user(user)?)
}

/// A Symphony user id: an unsigned 64-bit number, else 400.
fn parse_user(user: &str) -> Result<u64, Refusal> {
    user.trim().parse().map_err(|_| {
        Refusal::bad_request(format!(
            "userId {:?} is not an unsigned 64-bit number",
            echo(user)
        ))
    })
}

/// `id` if it is a directory user, else 404.
fn known_user(app: &App, id: u64) -> Result<u64, Refusal> {
    match app.directory.get(id) {
        Some(_) => Ok(id),
        None => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no user with id {id}"),
        )),
    }
}

/// The heartbeat body: empty for `ACTIVE`, else JSON `{"activity": "ACTIVE" | "IDLE"}`.
fn parse_activity(headers: &HeaderMap, body: &[u8]) -> Result<Activity, Refusal> {
    #[derive(Deserialize)]
    struct Body {
        activity: Option<String>,
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Activity::Active);
    }
    if !is_json(headers) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    let parsed: Body = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad_request(format!("body is not a heartbeat object: {e}")))?;
    match parsed.activity.as_deref() {
        None => Ok(Activity::Active),
        Some(a) if a.eq_ignore_ascii_case("ACTIVE") => Ok(Activity::Active),
        Some(a) if a.eq_ignore_ascii_case("IDLE") => Ok(Activity::Idle),
        Some(a) => Err(Refusal::bad_request(format!(
            "activity {:?} is neither ACTIVE nor IDLE (end a session with DELETE)",
            echo(a)
        ))),
    }
}

/// Whether the request says its body is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Wire input cut short for an error message.
fn echo(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The stream's query: `users=1,2,3` (only these users) and `capacity` (events held before
/// the client lags, default 1024).
#[derive(Debug, Deserialize)]
struct StreamQuery {
    users: Option<String>,
    capacity: Option<usize>,
}

/// `GET /devices/v1/stream`: a WebSocket of changes. Auth is checked before the upgrade and the
/// query, so a caller without a token always learns that first.
async fn stream(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Answer {
    authorize(&app, &headers)?;
    let query = Query::<StreamQuery>::try_from_uri(&uri)
        .map_err(|rejection| Refusal::bad_request(rejection.body_text()))?;
    let options = subscribe_options(&app, &query)?;
    let upgrade =
        upgrade.map_err(|rejection| Refusal::new(rejection.status(), rejection.body_text()))?;
    Ok(upgrade.on_upgrade(move |socket| serve_stream(app, options, socket)))
}

/// The subscription a stream's query asks for.
fn subscribe_options(app: &App, query: &StreamQuery) -> Result<SubscribeOptions<u64>, Refusal> {
    let capacity = query
        .capacity
        .unwrap_or(SubscribeOptions::<u64>::default().capacity);
    if capacity == 0 || capacity > MAX_CAPACITY {
        return Err(Refusal::bad_request(format!(
            "capacity {capacity} is not between 1 and {MAX_CAPACITY}"
        )));
    }
    let users = match &query.users {
        None => None,
        Some(list) => {
            let ids = list
                .split(',')
                .map(parse_user)
                .collect::<Result<Vec<_>, _>>()?;
            let known = ids.into_iter().map(|id| known_user(app, id));
            Some(known.collect::<Result<Vec<_>, _>>()?)
        }
    };
    Ok(SubscribeOptions { capacity, users })
}

/// Subscribes, says hello, and pumps the subscription's events into the socket until it closes.
async fn serve_stream(app: Arc<App>, options: SubscribeOptions<u64>, mut socket: WebSocket) {
    let _open = app.metrics.stream_opened();
    let filter: Option<HashSet<u64>> = options.users.as_ref().map(|u| u.iter().copied().collect());
    let subscription = app.store.subscribe(options);
    let hello = StreamEvent::Hello {
        cursor: subscription.cursor().to_string(),
    };
    if socket
        .send(Message::Text(hello.text().into()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let bridged = app.clone();
    tokio::task::spawn_blocking(move || bridge(&bridged, &subscription, filter.as_ref(), &tx));
    loop {
        tokio::select! {
            () = app.lifecycle.closed() => {
                let _ = socket.send(Message::Close(Some(CloseFrame {
                    code: close_code::AWAY,
                    reason: "server shutting down".into(),
                }))).await;
                break;
            }
            next = rx.recv() => {
                let Some(text) = next else { break };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                if matches!(incoming, None | Some(Err(_)) | Some(Ok(Message::Close(_)))) {
                    break;
                }
            }
        }
    }
    // Dropping `rx` here stops the bridge within `POLL`, which drops the subscription.
}

/// Forwards a subscription's events (blocking) into the socket's queue until the queue closes.
fn bridge(
    app: &App,
    subscription: &presence_store::Subscription<u64>,
    filter: Option<&HashSet<u64>>,
    tx: &mpsc::Sender<String>,
) {
    while !tx.is_closed() {
        let Some(event) = subscription.recv_timeout(POLL) else {
            continue;
        };
        let messages = match event {
            Event::Change { user, presence } => {
                vec![StreamEvent::Change(PresenceView::new(user, &presence))]
            }
            Event::Lagged { resume } => {
                app.metrics.lagged.inc();
                resync(app, resume, filter)
            }
        };
        for message in messages {
            if tx.blocking_send(message.text()).is_err() {
                return;
            }
        }
    }
}

/// After a lag: the `lagged` event, then every followed user changed since `resume`.
fn resync(
    app: &App,
    resume: presence_store::Cursor,
    filter: Option<&HashSet<u64>>,
) -> Vec<StreamEvent> {
    let lagged = StreamEvent::Lagged {
        resume: resume.to_string(),
    };
    let delta = app.store.changes_since(&Since::Cursor(resume));
    let changes = delta
        .users
        .into_iter()
        .filter(|(user, _)| filter.is_none_or(|f| f.contains(user)))
        .map(|(user, presence)| StreamEvent::Change(PresenceView::new(user, &presence)));
    std::iter::once(lagged).chain(changes).collect()
}
