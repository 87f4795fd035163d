//! The server's own endpoints for devices and gateways: a session reports activity with a
//! heartbeat and ends with a disconnect, and a WebSocket streams every change as it happens.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | `POST` | `/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat` | body `{"activity": "ACTIVE" \| "IDLE"}` (empty: `ACTIVE`) |
//! | `DELETE` | `/devices/v1/users/{userId}/sessions/{sessionId}` | ends the session |
//! | `GET` | `/devices/v1/stream?users=1,2&capacity=N` | WebSocket of changes |
//!
//! Every call needs `Authorization: Bearer <token>` with a token the server issued, and what
//! [`crate::authz::TABLE`] allows its account: a session route acts only on the caller's own
//! user (403 for another) unless the account is a device gateway, and a Genesys client has no
//! user to act on. `userId` is the Symphony id of a directory user. Both writes answer the
//! user's presence: `{"userId", "category", "requested", "activity", "updatedAt", "version"}`.
//!
//! The stream needs the right to list everyone (User Provisioning, a Rocket.Chat user, a
//! gateway). It sends `{"type":"hello","cursor":..}` first, then one
//! `{"type":"change","userId":..,..}` per change, with only the fields the caller's dialect
//! shows ([`crate::authz::StreamView`]): Symphony's `category`, Rocket.Chat's `status`, and
//! `requested` and `activity` for gateways only. A client that reads too slowly gets
//! `{"type":"lagged","resume":..}` followed by the changes it missed (every user changed since
//! `resume`), then live changes again; a change may arrive twice, so a client keeps the highest
//! `version` per user.
//!
//! Each stream is one task awaiting its subscription (no thread waits for it): a change wakes
//! it, it writes what is queued as one batch and flushes once. A change's text is serialized
//! once and shared by every stream that sends it. Streams are capped per account
//! and in total ([`StreamLimits`](super::streams::StreamLimits)): past a cap the upgrade is
//! refused with 429 (the account's) or 503 (the server's) and a message that says which. A
//! client that reads slowly fills its subscription up to `capacity` events, then lags.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use futures_util::SinkExt;
use presence_store::{
    Activity, Category, Cursor, Error, Event, Presence, Since, SubscribeOptions, Subscription,
};
use serde::{Deserialize, Serialize};

use super::authz::{self, Caller, StreamView};
use super::http::{is_json, json, own_error};
use super::streams::{StreamPermit, StreamRefusal};
use super::App;

/// The heartbeat route.
pub const HEARTBEAT: &str = "/devices/v1/users/{userId}/sessions/{sessionId}/heartbeat";
/// The disconnect route.
pub const SESSION: &str = "/devices/v1/users/{userId}/sessions/{sessionId}";
/// The WebSocket route.
pub const STREAM: &str = "/devices/v1/stream";

/// The most events a stream's subscription holds before the client lags.
pub const MAX_CAPACITY: usize = 65_536;
/// The most changes a stream writes before it flushes the socket and looks for a close.
const BATCH: usize = 256;
/// How long a resync may wait on a client that does not read before the stream is closed: a
/// resync holds one of the few resync places ([`crate::streams::Streams::resync_place`]).
const RESYNC_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// The socket's read buffer: a stream's client sends only pings and a close, so the default
/// 128 KiB, allocated per socket, would be most of an idle stream's memory.
const READ_BUFFER: usize = 4 * 1024;
/// The largest message a stream's client may send.
const MAX_INCOMING: usize = 4 * 1024;

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

/// A stream over a cap: the account's is 429, the server's 503.
impl From<StreamRefusal> for Refusal {
    fn from(e: StreamRefusal) -> Refusal {
        let status = match e {
            StreamRefusal::AccountFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            StreamRefusal::ServerFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        Refusal::new(status, e.to_string())
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
#[serde(untagged)]
enum StreamEvent {
    Hello(Hello),
    Change(authz::StreamChange),
    Lagged(Lagged),
}

/// The stream's first message.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "hello")]
struct Hello {
    cursor: String,
}

/// A stream message after the client fell behind.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "lagged")]
struct Lagged {
    resume: String,
}

impl StreamEvent {
    fn text(&self) -> String {
        // Plain structs of numbers and strings always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn message(&self) -> Message {
        Message::Text(self.text().into())
    }
}

/// `POST .../heartbeat`: the session is alive, active or idle.
async fn heartbeat(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((user, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let (user, session) = session_ids(&app, &caller, &user, &session)?;
    let activity = parse_activity(&headers, &body)?;
    let presence = app.store.heartbeat(&user, session, activity)?;
    Ok(json(StatusCode::OK, &PresenceView::new(user, &presence)))
}

/// `DELETE .../sessions/{sessionId}`: the session ended. Ending a session twice is no error.
async fn disconnect(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((user, session)): Path<(String, String)>,
) -> Answer {
    let (user, session) = session_ids(&app, &caller, &user, &session)?;
    let view = match app.store.disconnect(&user, session) {
        Ok(presence) => PresenceView::new(user, &presence),
        Err(Error::UnknownUser { .. }) => PresenceView::unseen(user),
        Err(e) => return Err(e.into()),
    };
    Ok(json(StatusCode::OK, &view))
}

/// The user and session ids of a path: numbers (else 400), the user in the directory (else
/// 404) and one the caller may act on (else 403).
fn session_ids(
    app: &App,
    caller: &Caller,
    user: &str,
    session: &str,
) -> Result<(u64, u64), Refusal> {
    let user = directory_user(app, user)?;
    if !authz::may_act_on(caller, user) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "this account may act only on its own user's sessions",
        ));
    }
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

/// A Symphony user id: a number in Symphony's int64 range, else 400.
fn parse_user(user: &str) -> Result<u64, Refusal> {
    user.trim()
        .parse()
        .ok()
        .filter(|id| *id <= i64::MAX as u64)
        .ok_or_else(|| {
            Refusal::bad_request(format!(
                "userId {:?} is not a number from 0 to 2^63 - 1",
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
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad_request(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(Refusal::bad_request("body must be a JSON object"));
    }
    let parsed: Body = serde_json::from_value(value)
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
    caller: Caller,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Answer {
    let view = authz::stream_view(&app, &caller)
        .map_err(|(status, message)| Refusal::new(status, message))?;
    let query = Query::<StreamQuery>::try_from_uri(&uri)
        .map_err(|rejection| Refusal::bad_request(rejection.body_text()))?;
    let options = subscribe_options(&app, &query)?;
    let upgrade =
        upgrade.map_err(|rejection| Refusal::new(rejection.status(), rejection.body_text()))?;
    let permit = app.streams.admit(&caller.principal)?;
    let upgrade = upgrade
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING);
    Ok(upgrade.on_upgrade(move |socket| serve_stream(app, view, options, socket, permit)))
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

/// Subscribes, says hello, and writes the subscription's events to the socket until it closes.
/// The task awaits the subscription and the socket together: it holds no thread while idle.
async fn serve_stream(
    app: Arc<App>,
    view: StreamView,
    options: SubscribeOptions<u64>,
    mut socket: WebSocket,
    _permit: StreamPermit,
) {
    let filter: Option<HashSet<u64>> = options.users.as_ref().map(|u| u.iter().copied().collect());
    let mut subscription = app.store.subscribe(options);
    let hello = StreamEvent::Hello(Hello {
        cursor: subscription.cursor().to_string(),
    });
    if socket.send(hello.message()).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = app.lifecycle.closed() => {
                let _ = socket.send(Message::Close(Some(CloseFrame {
                    code: close_code::AWAY,
                    reason: "server shutting down".into(),
                }))).await;
                break;
            }
            event = subscription.recv_async() => {
                let Some(event) = event else { break };
                let sent = send_batch(&app, view, &mut socket, &mut subscription, event, filter.as_ref());
                if sent.await.is_err() {
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
    // Dropping the subscription unsubscribes; dropping the permit frees the stream's place.
}

/// Writes `first` and the events already queued behind it (up to [`BATCH`]), then flushes
/// once. While the socket is slow to take them, the subscription fills and, at its capacity,
/// lags: the client then gets the `lagged` event and the changes it missed.
async fn send_batch(
    app: &App,
    view: StreamView,
    socket: &mut WebSocket,
    subscription: &mut Subscription<u64>,
    first: Event<u64>,
    filter: Option<&HashSet<u64>>,
) -> Result<(), axum::Error> {
    let mut next = Some(first);
    let mut sent = 0;
    while let Some(event) = next {
        match event {
            Event::Change { user, presence } => {
                let text = app.streams.change_text(view, user, presence.version, || {
                    StreamEvent::Change(view.change(user, &presence)).text()
                });
                socket.feed(Message::Text(text)).await?;
            }
            Event::Lagged { resume } => {
                app.metrics.lagged.inc();
                // A burst past every stream's capacity (a mass expiry) lags them all at once,
                // and each resync holds its whole delta until written: a few at a time, each
                // written a page per flush so the socket's backpressure applies, keep that
                // memory bounded however many streams lag.
                let _place = app.streams.resync_place().await;
                let messages = resync(app, view, resume, filter);
                let write = async {
                    for page in messages.chunks(BATCH) {
                        for message in page {
                            socket.feed(message.message()).await?;
                        }
                        socket.flush().await?;
                    }
                    Ok::<(), axum::Error>(())
                };
                tokio::time::timeout(RESYNC_PATIENCE, write)
                    .await
                    .map_err(axum::Error::new)??;
            }
        }
        sent += 1;
        next = if sent < BATCH {
            subscription.try_recv()
        } else {
            None
        };
    }
    socket.flush().await
}

/// After a lag: the `lagged` event, then every followed user changed since `resume`.
fn resync(
    app: &App,
    view: StreamView,
    resume: Cursor,
    filter: Option<&HashSet<u64>>,
) -> Vec<StreamEvent> {
    let lagged = StreamEvent::Lagged(Lagged {
        resume: resume.to_string(),
    });
    let delta = app.store.changes_since(&Since::Cursor(resume));
    let changes = delta
        .users
        .into_iter()
        .filter(|(user, _)| filter.is_none_or(|f| f.contains(user)))
        .map(|(user, presence)| StreamEvent::Change(view.change(user, &presence)));
    std::iter::once(lagged).chain(changes).collect()
}
