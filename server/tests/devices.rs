//! The server's own device endpoints over real HTTP and a real WebSocket: heartbeats and
//! disconnects change the store, every bad request is refused in the server's error shape and
//! changes nothing, and the stream says hello, streams changes, and after a lag resyncs to
//! exactly what the store holds.

mod server;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::SinkExt;
use presence_store::{Activity, Category, Cursor, SetMode, Since};
use reqwest::Method;
use serde_json::{json, Value};
use server::{
    TestServer, DEMO_GATEWAY_TOKEN, DEMO_GENESYS_TOKEN, DEMO_ROCKETCHAT_TOKEN, DEMO_SYMPHONY_TOKEN,
};
use tokio_tungstenite::tungstenite::Message;

use server::{Socket, PATIENCE};

/// Any issued token will do; the devices endpoints use the Genesys demo token.
/// The devices endpoints act for any user with the gateway's token.
const TOKEN: &str = DEMO_GATEWAY_TOKEN;

fn user(s: &TestServer, n: usize) -> u64 {
    s.app.directory.users()[n].id
}

fn heartbeat_url(s: &TestServer, user: impl std::fmt::Display, session: &str) -> String {
    s.url(&format!(
        "/devices/v1/users/{user}/sessions/{session}/heartbeat"
    ))
}

fn session_url(s: &TestServer, user: impl std::fmt::Display, session: &str) -> String {
    s.url(&format!("/devices/v1/users/{user}/sessions/{session}"))
}

/// Sends `request` with the token, expects 200, and returns the JSON body.
async fn ok_json(request: reqwest::RequestBuilder) -> Value {
    let r = request.bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn heartbeat(s: &TestServer, user: u64, session: u64, body: Value) -> Value {
    let url = heartbeat_url(s, user, &session.to_string());
    ok_json(s.client.post(url).json(&body)).await
}

async fn disconnect(s: &TestServer, user: u64, session: u64) -> Value {
    ok_json(s.client.delete(session_url(s, user, &session.to_string()))).await
}

/// The presence fields the endpoints answer, checked against the store.
fn assert_answers_store(s: &TestServer, user: u64, body: &Value) {
    let p = s.app.store.get(&user).unwrap();
    assert_eq!(body["userId"], user);
    assert_eq!(body["category"], p.category.as_str());
    assert_eq!(body["requested"], p.requested.as_str());
    assert_eq!(body["activity"], serde_json::to_value(p.activity).unwrap());
    assert_eq!(body["updatedAt"], p.updated_at);
    assert_eq!(body["version"], p.version);
}

#[tokio::test]
async fn heartbeats_and_disconnects_change_the_store() {
    let s = server::start(10).await;
    let u = user(&s, 3);

    let body = heartbeat(&s, u, 7, json!({"activity": "active"})).await;
    assert_eq!(body["category"], "AVAILABLE");
    assert_eq!(body["activity"], "ACTIVE");
    assert_answers_store(&s, u, &body);

    let body = heartbeat(&s, u, 7, json!({"activity": "IDLE"})).await;
    assert_eq!(body["category"], "AWAY");
    assert_eq!(body["activity"], "IDLE");
    assert_answers_store(&s, u, &body);

    // A second device, active: the user is active again.
    let body = heartbeat(&s, u, 8, json!({})).await;
    assert_eq!(body["activity"], "ACTIVE");
    assert_answers_store(&s, u, &body);

    let body = disconnect(&s, u, 8).await;
    assert_eq!(body["activity"], "IDLE");
    assert_answers_store(&s, u, &body);

    let body = disconnect(&s, u, 7).await;
    assert_eq!(body["category"], "OFFLINE");
    assert_eq!(body["activity"], "OFFLINE");
    assert_answers_store(&s, u, &body);

    // A disconnect that arrives twice changes nothing.
    assert_eq!(disconnect(&s, u, 7).await, body);
}

#[tokio::test]
async fn an_empty_heartbeat_is_active_and_an_unseen_user_disconnects_to_offline() {
    let s = server::start(10).await;
    let u = user(&s, 0);
    let body = ok_json(s.client.post(heartbeat_url(&s, u, "1"))).await;
    assert_eq!(body["activity"], "ACTIVE");
    assert_answers_store(&s, u, &body);

    let never = user(&s, 9);
    let body = disconnect(&s, never, 1).await;
    assert_eq!(body["category"], "OFFLINE");
    assert_eq!(body["version"], 0);
    assert!(s.app.store.get(&never).is_none());
}

#[tokio::test]
async fn each_account_acts_on_its_own_user_and_a_gateway_on_anyone() {
    let s = server::start(10).await;
    let issued = s
        .app
        .tokens
        .issue(
            server::app::tokens::Principal::Gateway {
                name: "demo-gateway".into(),
            },
            std::time::Duration::from_secs(60),
            server::START_MS,
            4,
        )
        .unwrap()
        .token;
    let ada = user(&s, 0);
    let other = user(&s, 1);
    let cases = [
        (DEMO_ROCKETCHAT_TOKEN, ada, 200),
        (DEMO_ROCKETCHAT_TOKEN, other, 403),
        (DEMO_SYMPHONY_TOKEN, other, 403),
        (DEMO_GENESYS_TOKEN, ada, 403),
        (DEMO_GATEWAY_TOKEN, other, 200),
        (issued.as_str(), other, 200),
    ];
    for (token, target, status) in cases {
        let before = s.app.store.get(&target);
        let r = s
            .client
            .post(heartbeat_url(&s, target, "1"))
            .header("Authorization", format!("bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{token} on {target}");
        if status != 200 {
            assert_eq!(s.app.store.get(&target), before);
        }
    }
}

/// A request that must be refused.
struct Refused {
    what: &'static str,
    method: Method,
    url: String,
    token: Option<&'static str>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
}

impl Refused {
    fn new(what: &'static str, method: Method, url: String, status: u16) -> Refused {
        Refused {
            what,
            method,
            url,
            token: Some(TOKEN),
            content_type: Some("application/json"),
            body: Vec::new(),
            status,
        }
    }

    fn token(mut self, token: Option<&'static str>) -> Refused {
        self.token = token;
        self
    }

    fn body(mut self, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Refused {
        self.content_type = content_type;
        self.body = body.into();
        self
    }
}

#[tokio::test]
async fn every_error_has_the_servers_body_and_changes_nothing() {
    let s = server::start(10).await;
    let u = user(&s, 2);
    // Some state, so "unchanged" means something.
    heartbeat(&s, u, 1, json!({"activity": "IDLE"})).await;
    let before = (s.app.store.cursor(), s.app.store.get(&u), s.app.store.len());

    let post = |what, user: &str, session: &str, status| {
        Refused::new(what, Method::POST, heartbeat_url(&s, user, session), status)
    };
    let u = u.to_string();
    let cases = [
        post("no token", &u, "1", 401).token(None),
        post("unknown token", &u, "1", 401).token(Some("nope")),
        post("basic auth", &u, "1", 401).token(Some("Basic ZGVtbzpkZW1v")),
        post("user not in the directory", "1", "1", 404),
        post("user id not a number", "ada", "1", 400),
        post("negative user id", "-5", "1", 400),
        post("user id over u64", "18446744073709551616", "1", 400),
        post("session id not a number", &u, "phone", 400),
        post("activity offline", &u, "1", 400)
            .body(Some("application/json"), r#"{"activity":"OFFLINE"}"#),
        post("activity a category", &u, "1", 400)
            .body(Some("application/json"), r#"{"activity":"BUSY"}"#),
        post("activity a number", &u, "1", 400).body(Some("application/json"), r#"{"activity":1}"#),
        post("body not json", &u, "1", 400).body(Some("application/json"), "active"),
        post("body an array", &u, "1", 400).body(Some("application/json"), "[]"),
        post("body over 64 KiB", &u, "1", 413).body(
            Some("application/json"),
            format!(r#"{{"activity":"ACTIVE","pad":"{}"}}"#, "x".repeat(70_000)),
        ),
        post("text body", &u, "1", 415).body(Some("text/plain"), r#"{"activity":"ACTIVE"}"#),
        post("no content type", &u, "1", 415).body(None, r#"{"activity":"ACTIVE"}"#),
        Refused::new(
            "GET a heartbeat",
            Method::GET,
            heartbeat_url(&s, &u, "1"),
            405,
        ),
        Refused::new("PUT a session", Method::PUT, session_url(&s, &u, "1"), 405),
        Refused::new(
            "DELETE no token",
            Method::DELETE,
            session_url(&s, &u, "1"),
            401,
        )
        .token(None),
        Refused::new(
            "DELETE unknown user",
            Method::DELETE,
            session_url(&s, 1, "1"),
            404,
        ),
        Refused::new(
            "DELETE bad session",
            Method::DELETE,
            session_url(&s, &u, "-1"),
            400,
        ),
        Refused::new(
            "POST the stream",
            Method::POST,
            s.url("/devices/v1/stream"),
            405,
        ),
        Refused::new(
            "stream no token",
            Method::GET,
            s.url("/devices/v1/stream"),
            401,
        )
        .token(None),
        Refused::new(
            "stream bad users",
            Method::GET,
            s.url("/devices/v1/stream?users=1,x"),
            400,
        ),
        Refused::new(
            "stream unknown user",
            Method::GET,
            s.url(&format!("/devices/v1/stream?users={u},1")),
            404,
        ),
        Refused::new(
            "stream empty users",
            Method::GET,
            s.url("/devices/v1/stream?users="),
            400,
        ),
        Refused::new(
            "stream capacity 0",
            Method::GET,
            s.url("/devices/v1/stream?capacity=0"),
            400,
        ),
        Refused::new(
            "stream capacity not a number",
            Method::GET,
            s.url("/devices/v1/stream?capacity=lots"),
            400,
        ),
        Refused::new(
            "stream without upgrade",
            Method::GET,
            s.url("/devices/v1/stream"),
            400,
        ),
    ];
    for case in cases {
        let mut request = s.client.request(case.method.clone(), &case.url);
        match case.token {
            Some(t) if t.contains(' ') => request = request.header("Authorization", t),
            Some(t) => request = request.bearer_auth(t),
            None => {}
        }
        if let Some(ct) = case.content_type {
            request = request.header("Content-Type", ct);
        }
        let r = request.body(case.body.clone()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), case.status, "{}", case.what);
        if case.status == 405 {
            assert!(r.headers().contains_key("allow"), "{}", case.what);
        }
        if case.status == 401 {
            assert_eq!(r.headers()["www-authenticate"], "Bearer", "{}", case.what);
        }
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], case.status, "{}", case.what);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        let after = (
            s.app.store.cursor(),
            s.app.store.get(&u.parse().unwrap()),
            s.app.store.len(),
        );
        assert_eq!(after, before, "{}", case.what);
    }
}

async fn connect(s: &TestServer, query: &str) -> Socket {
    server::connect_stream(s, TOKEN, query).await
}

async fn next(socket: &mut Socket) -> Value {
    server::next_message(socket).await
}

async fn hello(socket: &mut Socket) -> Cursor {
    let hello = next(socket).await;
    assert_eq!(hello["type"], "hello");
    hello["cursor"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_stream_says_hello_then_streams_changes_made_over_http() {
    let s = server::start(10).await;
    let mut socket = connect(&s, "").await;
    let cursor = hello(&mut socket).await;
    assert!(s
        .app
        .store
        .changes_since(&Since::Cursor(cursor))
        .users
        .is_empty());

    let u = user(&s, 4);
    heartbeat(&s, u, 1, json!({"activity": "ACTIVE"})).await;
    let change = next(&mut socket).await;
    assert_eq!(change["type"], "change");
    assert_answers_store(&s, u, &change);
    assert_eq!(change["activity"], "ACTIVE");

    s.app.store.set(&u, Category::Busy, SetMode::Hard).unwrap();
    let change = next(&mut socket).await;
    assert_eq!(change["category"], "BUSY");
    assert_answers_store(&s, u, &change);
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn the_stream_follows_only_the_users_asked_for() {
    let s = server::start(10).await;
    let (a, b) = (user(&s, 1), user(&s, 2));
    let mut socket = connect(&s, &format!("?users={b}")).await;
    hello(&mut socket).await;
    s.app.store.set(&a, Category::Busy, SetMode::Hard).unwrap();
    s.app
        .store
        .set(&b, Category::OnThePhone, SetMode::Hard)
        .unwrap();
    let change = next(&mut socket).await;
    assert_eq!(change["userId"], b);
    assert_eq!(change["category"], "ON_THE_PHONE");
    socket.send(Message::Close(None)).await.unwrap();
}

/// What a client has seen per user: the change with the highest version.
fn apply(view: &mut HashMap<u64, Value>, change: Value) {
    let user = change["userId"].as_u64().unwrap();
    let newer = view
        .get(&user)
        .is_none_or(|seen| seen["version"].as_u64() <= change["version"].as_u64());
    if newer {
        view.insert(user, change);
    }
}

fn view_matches_store(s: &TestServer, view: &HashMap<u64, Value>, users: &[u64]) -> bool {
    users.iter().all(|u| {
        let p = s.app.store.get(u).unwrap();
        view.get(u).is_some_and(|seen| {
            seen["category"] == p.category.as_str()
                && seen["version"] == p.version
                && seen["updatedAt"] == p.updated_at
        })
    })
}

#[tokio::test]
async fn a_lagging_stream_says_so_and_resyncs_to_the_store() {
    let s = server::start(30).await;
    let mut socket = connect(&s, "?capacity=1").await;
    hello(&mut socket).await;

    // A burst without yielding: this test's runtime has one thread, so the server cannot write
    // to the socket meanwhile and the stream's queue and one-event subscription overflow.
    let users: Vec<u64> = (0..20).map(|n| user(&s, n)).collect();
    let categories = [
        Category::Busy,
        Category::Away,
        Category::InAMeeting,
        Category::OnThePhone,
        Category::DoNotDisturb,
    ];
    for i in 0..400 {
        let category = categories[(i / users.len()) % categories.len()];
        s.app
            .store
            .set(&users[i % users.len()], category, SetMode::Hard)
            .unwrap();
    }

    let mut view = HashMap::new();
    let mut lagged = false;
    while !(lagged && view_matches_store(&s, &view, &users)) {
        let event = next(&mut socket).await;
        match event["type"].as_str() {
            Some("change") => apply(&mut view, event),
            Some("lagged") => {
                lagged = true;
                event["resume"].as_str().unwrap().parse::<Cursor>().unwrap();
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    socket.close(None).await.unwrap();
}

/// A burst that lags every stream at once (a mass session expiry does): more streams than
/// resync places (`RESYNCS`), so some wait for one; every one still ends equal to the store.
#[tokio::test]
async fn many_streams_lagging_at_once_each_resync_to_the_store() {
    let s = server::start(30).await;
    let streams = 3 * server::app::streams::RESYNCS;
    let mut sockets = Vec::new();
    for _ in 0..streams {
        let mut socket = connect(&s, "?capacity=1").await;
        hello(&mut socket).await;
        sockets.push(socket);
    }
    // Without yielding, on this test's one runtime thread: every stream overflows.
    let users: Vec<u64> = (0..20).map(|n| user(&s, n)).collect();
    let categories = [Category::Busy, Category::Away, Category::InAMeeting];
    for i in 0..200 {
        let category = categories[(i / users.len()) % categories.len()];
        s.app
            .store
            .set(&users[i % users.len()], category, SetMode::Hard)
            .unwrap();
    }
    for socket in &mut sockets {
        let mut view = HashMap::new();
        let mut lagged = false;
        while !(lagged && view_matches_store(&s, &view, &users)) {
            let event = next(socket).await;
            match event["type"].as_str() {
                Some("change") => apply(&mut view, event),
                Some("lagged") => lagged = true,
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    for mut socket in sockets {
        socket.close(None).await.unwrap();
    }
}

#[tokio::test]
async fn the_demo_seed_brings_a_share_of_the_directory_online() {
    let s = server::start(500).await;
    server::app::demo::seed(&s.app);
    let users = s.app.directory.users();
    let presences: Vec<_> = users
        .iter()
        .filter_map(|u| s.app.store.get(&u.id))
        .collect();
    let count =
        |f: &dyn Fn(&presence_store::Presence) -> bool| presences.iter().filter(|p| f(p)).count();
    let online = count(&|p| p.activity != Activity::Offline);
    assert!((150..=350).contains(&online), "{online} of 500 online");
    assert!(count(&|p| p.activity == Activity::Idle) > 0);
    assert!(count(&|p| p.details.message().is_some()) > 0);
    assert!(count(&|p| p.requested == Category::Busy || p.requested == Category::InAMeeting) > 0);
    // Soft on an offline user: requested, not shown.
    assert!(
        count(&|p| p.requested == Category::OutOfOffice && p.category == Category::Offline) > 0
    );
    assert_eq!(s.app.store.len(), presences.len(), "only directory users");
}

/// A server with `users` demo users and no accounts (the demo accounts need a first user).
async fn start_without_accounts(users: usize) -> TestServer {
    static EMPTY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let path = EMPTY.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "presence-store-no-accounts-{}.json",
            std::process::id()
        ));
        std::fs::write(&path, "{}").unwrap();
        path
    });
    server::start_with(server::app::Options {
        demo_users: users,
        simulate: false,
        accounts: Some(path.clone()),
        ..server::app::Options::default()
    })
    .await
}

#[tokio::test]
async fn the_demo_seed_handles_tiny_directories() {
    for n in [0, 1, 2] {
        let s = start_without_accounts(n).await;
        server::app::demo::seed(&s.app);
        assert!(s.app.store.len() <= n);
    }
}

#[tokio::test]
async fn the_simulation_keeps_presence_moving() {
    let s = server::start(50).await;
    let simulation = server::app::demo::spawn_simulation(s.app.clone());
    let cursor = s.app.store.cursor();
    let moved = async {
        while s
            .app
            .store
            .changes_since(&Since::Cursor(cursor.clone()))
            .users
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, moved)
        .await
        .expect("a change");
    assert!(!simulation.is_finished(), "the simulation stopped");
    simulation.abort();
}

#[tokio::test]
async fn the_simulation_survives_an_empty_directory() {
    let s = start_without_accounts(0).await;
    let simulation = server::app::demo::spawn_simulation(s.app.clone());
    // A few ticks; a panic would end the task.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!simulation.is_finished(), "the simulation stopped");
    assert_eq!(s.app.store.len(), 0);
    simulation.abort();
}

#[tokio::test]
async fn one_user_cannot_open_sessions_past_the_cap() {
    let s = server::start(10).await;
    let u = user(&s, 3);
    let max = s.app.store.config().max_sessions_per_user as u64;
    for session in 0..max {
        heartbeat(&s, u, session, json!({"activity": "IDLE"})).await;
    }
    let before = (s.app.store.cursor(), s.app.store.get(&u));
    let r = s
        .client
        .post(heartbeat_url(&s, u, &max.to_string()))
        .bearer_auth(TOKEN)
        .json(&json!({"activity": "ACTIVE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body.to_string().contains("sessions"), "{body}");
    assert_eq!((s.app.store.cursor(), s.app.store.get(&u)), before);
    // A known session still beats, and ending one makes room.
    heartbeat(&s, u, 0, json!({"activity": "ACTIVE"})).await;
    disconnect(&s, u, 1).await;
    heartbeat(&s, u, max, json!({"activity": "ACTIVE"})).await;
}
