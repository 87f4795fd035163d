//! The Rocket.Chat dialect over real HTTP: login and logout, the header auth and its seed 401,
//! `users.presence` (full list, `from` deltas and the 10-minute window, the four `ids`
//! spellings, broadcast disabled), `users.getPresence`, `users.setStatus`, the setting, and
//! every error path, each leaving the store as it was.

mod server;

use std::time::Duration;

use presence_store::wire::time::format_iso8601;
use presence_store::{Category, Clock, Cursor, SetMode};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use server::app::directory::User;
use server::{TestServer, DEMO_ROCKETCHAT_TOKEN, DEMO_SYMPHONY_TOKEN, START_MS};

const NOT_LOGGED_IN: &str = r#"{"status":"error","message":"You must be logged in to do this."}"#;
const WINDOW: Duration = Duration::from_secs(600);

/// The `n`th directory user (0 is the demo Rocket.Chat account, `ada.lovelace`).
fn user(s: &TestServer, n: usize) -> User {
    s.app.directory.users()[n].clone()
}

/// A request to `/api/v1/{path}` with the demo user's headers.
fn call(s: &TestServer, method: Method, path: &str) -> RequestBuilder {
    s.client
        .request(method, s.url(&format!("/api/v1/{path}")))
        .header("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN)
        .header("X-User-Id", user(s, 0).rc_id)
}

/// The status and the JSON body.
async fn send(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap();
    (status, body)
}

/// Sends `request`, asserts it fails with `status` and `{success: false, error}`, and gives
/// the body.
async fn fails(request: RequestBuilder, status: u16) -> Value {
    let (got, body) = send(request).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert!(body["error"].is_string(), "{body}");
    body
}

/// What an error must not change: every change the store has logged, and the setting.
fn state(s: &TestServer) -> (Cursor, usize, bool) {
    (
        s.app.store.cursor(),
        s.app.store.len(),
        s.app.rocketchat.broadcast_disabled(&s.app.store),
    )
}

fn set(s: &TestServer, n: usize, category: Category) {
    s.app
        .store
        .set(&user(s, n).id, category, SetMode::Hard)
        .unwrap();
}

/// `users.presence?{query}`: the users' `_id` -> status, and `full`.
async fn presence(s: &TestServer, query: &str) -> (Vec<(String, String)>, bool) {
    let (status, body) = send(call(s, Method::GET, &format!("users.presence?{query}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let users = body["users"].as_array().unwrap().iter();
    let users = users
        .map(|u| (text(&u["_id"]), text(&u["status"])))
        .collect();
    (users, body["full"].as_bool().unwrap())
}

fn text(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

/// `(rc_id, status)` of user `n`.
fn entry(s: &TestServer, n: usize, status: &str) -> (String, String) {
    (user(s, n).rc_id, status.to_string())
}

fn encode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn login_by_json_or_form_gives_a_token_the_other_routes_take() {
    let s = server::start(20).await;
    let ada = user(&s, 0);
    let before = state(&s);
    let request = json!({"user": ada.username, "password": "demo-password"});
    let (status, body) = send(s.client.post(s.url("/api/v1/login")).json(&request)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["userId"], ada.rc_id.as_str());
    assert_eq!(body["data"]["me"]["_id"], ada.rc_id.as_str());
    assert_eq!(body["data"]["me"]["username"], ada.username.as_str());
    assert_eq!(body["data"]["me"]["name"], ada.name.as_str());
    assert_eq!(body["data"]["me"]["status"], "offline");
    let token = text(&body["data"]["authToken"]);
    let form = [
        ("username", ada.username.as_str()),
        ("password", "demo-password"),
    ];
    let (status, body) = send(s.client.post(s.url("/api/v1/login")).form(&form)).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(text(&body["data"]["authToken"]), token);
    let (status, _) = send(
        s.client
            .get(s.url("/api/v1/users.presence"))
            .header("X-Auth-Token", &token)
            .header("X-User-Id", &ada.rc_id),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn a_failed_login_is_the_vendor_401_and_bad_bodies_are_400_or_415() {
    let s = server::start(20).await;
    let before = state(&s);
    let name = user(&s, 0).username;
    let login = |body: Value| s.client.post(s.url("/api/v1/login")).json(&body);
    let unauthorized =
        json!({"status": "error", "error": "Unauthorized", "message": "Unauthorized"});
    for body in [
        json!({"user": name, "password": "wrong"}),
        json!({"username": "nobody", "password": "demo-password"}),
        json!({"user": user(&s, 2).username, "password": "demo-password"}),
    ] {
        assert_eq!(send(login(body)).await, (401, unauthorized.clone()));
    }
    for body in [
        json!({"user": name}),
        json!({"password": "demo-password"}),
        json!({}),
    ] {
        fails(login(body), 400).await;
    }
    fails(login(json!({"user": 5, "password": "x"})), 400).await;
    let text_body = s
        .client
        .post(s.url("/api/v1/login"))
        .header("Content-Type", "text/plain")
        .body("user=ada");
    fails(text_body, 415).await;
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn logout_revokes_the_token() {
    let s = server::start(20).await;
    let ada = user(&s, 0);
    let request = json!({"username": ada.username, "password": "demo-password"});
    let (_, body) = send(s.client.post(s.url("/api/v1/login")).json(&request)).await;
    let token = text(&body["data"]["authToken"]);
    let logout = || {
        s.client
            .post(s.url("/api/v1/logout"))
            .header("X-Auth-Token", &token)
            .header("X-User-Id", &ada.rc_id)
    };
    let (status, body) = send(logout()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"message": "You've been logged out!"}})
    );
    let response = logout().send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.text().await.unwrap(), NOT_LOGGED_IN);
    // The token issued in advance still works.
    assert!(presence(&s, "").await.1);
}

#[tokio::test]
async fn every_route_wants_both_headers_matching_and_answers_the_seed_401() {
    let s = server::start(20).await;
    set(&s, 0, Category::Available);
    let before = state(&s);
    let (ada, other) = (user(&s, 0).rc_id, user(&s, 1).rc_id);
    let routes = [
        (Method::GET, "users.presence"),
        (Method::GET, "users.presence?from=2019-05-22T12:11:45.392Z"),
        (Method::GET, "users.getPresence"),
        (Method::POST, "users.setStatus"),
        (Method::POST, "logout"),
        (Method::GET, "settings/Presence_broadcast_disabled"),
        (Method::POST, "settings/Presence_broadcast_disabled"),
    ];
    let headers: [&[(&str, &str)]; 7] = [
        &[],
        &[("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN)],
        &[("X-User-Id", &ada)],
        &[("X-Auth-Token", "not-a-token"), ("X-User-Id", &ada)],
        &[
            ("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN),
            ("X-User-Id", &other),
        ],
        &[("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN), ("X-User-Id", "")],
        &[("X-Auth-Token", DEMO_SYMPHONY_TOKEN), ("X-User-Id", &ada)],
    ];
    for (method, path) in &routes {
        for headers in headers {
            let mut request = s
                .client
                .request(method.clone(), s.url(&format!("/api/v1/{path}")))
                .json(&json!({"status": "busy", "value": true}));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} {headers:?}");
            let content_type = response.headers()["content-type"].to_str().unwrap();
            assert!(content_type.starts_with("application/json"));
            assert_eq!(response.text().await.unwrap(), NOT_LOGGED_IN);
        }
    }
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn without_from_the_full_list_is_everyone_not_offline() {
    let s = server::start(20).await;
    set(&s, 3, Category::Available);
    set(&s, 1, Category::DoNotDisturb);
    set(&s, 2, Category::Offline);
    set(&s, 4, Category::OutOfOffice);
    let (users, full) = presence(&s, "").await;
    assert!(full);
    let expected = [
        entry(&s, 1, "busy"),
        entry(&s, 3, "online"),
        entry(&s, 4, "away"),
    ];
    assert_eq!(users, expected);
    let (_, body) = send(call(&s, Method::GET, "users.presence")).await;
    let one = user(&s, 1);
    assert_eq!(
        body["users"][0],
        json!({"_id": one.rc_id, "name": one.name, "username": one.username,
               "status": "busy", "utcOffset": one.utc_offset, "avatarETag": one.avatar_etag})
    );
    // A `from` 10 minutes or more in the past is the same full list.
    s.clock.advance(WINDOW);
    let from = encode(&format_iso8601(START_MS));
    assert_eq!(presence(&s, &format!("from={from}")).await, (users, true));
    assert!(presence(&s, "from=").await.1);
}

#[tokio::test]
async fn from_inside_the_window_gives_the_changes_offline_included_caller_excluded() {
    let s = server::start(20).await;
    set(&s, 1, Category::Available);
    set(&s, 2, Category::Busy);
    s.clock.advance(Duration::from_secs(60));
    let from = s.clock.now_ms();
    set(&s, 2, Category::Offline);
    set(&s, 3, Category::Away);
    set(&s, 0, Category::Busy);
    let query = format!("from={}", format_iso8601(from));
    let (users, full) = presence(&s, &query).await;
    assert!(!full);
    let mut users = users;
    users.sort();
    let mut expected = vec![entry(&s, 2, "offline"), entry(&s, 3, "away")];
    expected.sort();
    assert_eq!(users, expected);
    // The same instant written in another zone, and a `from` in the future.
    let local = format_iso8601(from + 2 * 3_600_000).replace('Z', "+02:00");
    // Encoded, or with the `+` left as is (as Python's `isoformat()` is often sent).
    for from in [encode(&local), local] {
        let (mut same, _) = presence(&s, &format!("from={from}")).await;
        same.sort();
        assert_eq!(same, expected, "{from}");
    }
    let future = format_iso8601(from + 3_600_000);
    assert_eq!(
        presence(&s, &format!("from={future}")).await,
        (vec![], false)
    );
}

#[tokio::test]
async fn the_window_is_ten_minutes_exactly() {
    let s = server::start(20).await;
    set(&s, 1, Category::Busy);
    s.clock.advance(WINDOW);
    set(&s, 2, Category::Away);
    let now = s.clock.now_ms();
    let window = WINDOW.as_millis() as u64;
    let inside = format!("from={}", format_iso8601(now - window + 1));
    assert_eq!(
        presence(&s, &inside).await,
        (vec![entry(&s, 2, "away")], false)
    );
    let outside = format!("from={}", format_iso8601(now - window));
    assert_eq!(
        presence(&s, &outside).await,
        (vec![entry(&s, 1, "busy"), entry(&s, 2, "away")], true)
    );
}

#[tokio::test]
async fn a_malformed_from_is_400_and_changes_nothing() {
    let s = server::start(20).await;
    set(&s, 1, Category::Busy);
    let before = state(&s);
    for from in [
        "yesterday",
        "1558527105392",
        "2019-05-22",
        "2019-13-01T00:00Z",
        "2019-02-29T00:00Z",
        "2019-05-22T25:00Z",
        "1969-12-31T23:59:59Z",
        "2019-05-22T12:11:45.392Z%20junk",
        "2019-05-22T12:11%2B2",
        "%ff",
        "2019-05-22T12:11Z&from=2019-05-22T12:11Z",
    ] {
        let (status, body) = send(call(
            &s,
            Method::GET,
            &format!("users.presence?from={from}"),
        ))
        .await;
        assert_eq!(status, 400, "{from}");
        assert_eq!(body["success"], false);
        assert_eq!(body["errorType"], "error-invalid-param");
        assert!(text(&body["error"]).contains("invalid timestamp"), "{body}");
    }
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn ids_filter_in_all_four_spellings() {
    let s = server::start(20).await;
    for n in 1..=4 {
        set(&s, n, Category::Available);
    }
    set(&s, 5, Category::Offline);
    let (a, b) = (user(&s, 1).rc_id, user(&s, 3).rc_id);
    let both = vec![entry(&s, 1, "online"), entry(&s, 3, "online")];
    assert_eq!(
        presence(&s, &format!("ids={a}")).await,
        (vec![entry(&s, 1, "online")], false)
    );
    for query in [
        format!("ids={b},{a}"),
        format!("ids={a}%2C{b}"),
        format!("ids={a}&ids={b}"),
        format!("ids[]={a}&ids[]={b}"),
        format!("ids%5B%5D={b}&ids%5B%5D={a}&ids%5B%5D={a}"),
        format!("ids={a},unknown-id,{b}&ids={}", user(&s, 5).rc_id),
        format!("ids={a},{b},{}", user(&s, 15).rc_id),
    ] {
        assert_eq!(presence(&s, &query).await, (both.clone(), false), "{query}");
    }
    assert_eq!(presence(&s, "ids=nobody").await, (vec![], false));
    // With a `from` inside the window, the changes among the ids.
    s.clock.advance(Duration::from_secs(1));
    let from = format_iso8601(s.clock.now_ms());
    set(&s, 1, Category::Busy);
    set(&s, 2, Category::Busy);
    assert_eq!(
        presence(&s, &format!("from={from}&ids={a},{b}")).await,
        (vec![entry(&s, 1, "busy")], false)
    );
}

#[tokio::test]
async fn broadcast_disabled_lists_no_one() {
    let s = server::start(20).await;
    set(&s, 1, Category::Available);
    let setting = "settings/Presence_broadcast_disabled";
    let (status, body) = send(call(&s, Method::GET, setting)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"_id": "Presence_broadcast_disabled", "value": false, "success": true})
    );
    let flip = |value: bool| call(&s, Method::POST, setting).json(&json!({ "value": value }));
    assert_eq!(send(flip(true)).await, (200, json!({"success": true})));
    assert!(s.app.rocketchat.broadcast_disabled(&s.app.store));
    assert_eq!(send(call(&s, Method::GET, setting)).await.1["value"], true);
    for query in ["", "from=2019-05-22T12:11Z", "ids=x"] {
        let path = format!("users.presence?{query}");
        let body = send(call(&s, Method::GET, &path)).await.1;
        assert_eq!(body, json!({"users": [], "full": true, "success": true}));
    }
    assert_eq!(send(flip(false)).await.0, 200);
    assert_eq!(presence(&s, "").await, (vec![entry(&s, 1, "online")], true));
}

#[tokio::test]
async fn setting_errors_are_404_or_400_and_change_nothing() {
    let s = server::start(20).await;
    let before = state(&s);
    fails(call(&s, Method::GET, "settings/Site_Url"), 404).await;
    let request = call(&s, Method::POST, "settings/Site_Url").json(&json!({"value": true}));
    fails(request, 404).await;
    let path = "settings/Presence_broadcast_disabled";
    for body in [json!({"value": "yes"}), json!({"value": 1}), json!({})] {
        fails(call(&s, Method::POST, path).json(&body), 400).await;
    }
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn get_presence_of_self_and_of_others() {
    let s = server::start(20).await;
    let ada = user(&s, 0);
    let (_, body) = send(call(&s, Method::GET, "users.getPresence")).await;
    assert_eq!(
        body,
        json!({"presence": "offline", "connectionStatus": "offline", "success": true})
    );
    s.app
        .store
        .heartbeat(&ada.id, 1, presence_store::Activity::Idle)
        .unwrap();
    let login = json!({"user": ada.username, "password": "demo-password"});
    send(s.client.post(s.url("/api/v1/login")).json(&login)).await;
    let (_, body) = send(call(
        &s,
        Method::GET,
        &format!("users.getPresence?userId={}", ada.rc_id),
    ))
    .await;
    assert_eq!(
        body,
        json!({"presence": "away", "connectionStatus": "away",
               "lastLogin": format_iso8601(START_MS), "success": true})
    );
    set(&s, 2, Category::InAMeeting);
    let two = user(&s, 2);
    for query in [
        format!("userId={}", two.rc_id),
        format!("username={}", two.username),
    ] {
        let (status, body) =
            send(call(&s, Method::GET, &format!("users.getPresence?{query}"))).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"presence": "busy", "success": true}));
    }
    let path = format!("users.getPresence?username={}", user(&s, 3).username);
    assert_eq!(
        send(call(&s, Method::GET, &path)).await.1["presence"],
        "offline"
    );
}

#[tokio::test]
async fn get_presence_of_an_unknown_user_is_400() {
    let s = server::start(20).await;
    let before = state(&s);
    for query in ["userId=nobody", "username=nobody", "userId=&username=x"] {
        let (status, body) =
            send(call(&s, Method::GET, &format!("users.getPresence?{query}"))).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["success"], false);
        assert_eq!(body["errorType"], "error-invalid-user");
    }
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn set_status_sets_the_callers_status_and_message() {
    let s = server::start(20).await;
    let ada = user(&s, 0);
    let set_status = |body: Value| call(&s, Method::POST, "users.setStatus").json(&body);
    // A message alone, for a user the store does not know yet: added, still offline.
    let (status, body) = send(set_status(json!({"message": "lunch"}))).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let p = s.app.store.get(&ada.id).unwrap();
    assert_eq!(
        (p.category, p.details.message()),
        (Category::Offline, Some("lunch"))
    );
    assert_eq!(
        send(set_status(
            json!({"status": "busy", "message": "in a call"})
        ))
        .await,
        (200, json!({"success": true}))
    );
    let p = s.app.store.get(&ada.id).unwrap();
    assert_eq!(
        (p.category, p.details.message()),
        (Category::Busy, Some("in a call"))
    );
    let (_, body) = send(call(&s, Method::GET, "users.getPresence")).await;
    assert_eq!(body["presence"], "busy");
    let (_, body) = send(call(&s, Method::GET, "users.presence")).await;
    assert_eq!(body["users"][0]["statusText"], "in a call");
    let form = [("status", "away"), ("userId", ada.rc_id.as_str())];
    let (status, _) = send(call(&s, Method::POST, "users.setStatus").form(&form)).await;
    assert_eq!(status, 200);
    let p = s.app.store.get(&ada.id).unwrap();
    assert_eq!(
        (p.category, p.details.message()),
        (Category::Away, Some("in a call"))
    );
    for (status, category) in [
        ("online", Category::Available),
        ("offline", Category::Offline),
    ] {
        send(set_status(json!({ "status": status, "message": "" }))).await;
        let p = s.app.store.get(&ada.id).unwrap();
        assert_eq!((p.category, p.details.message()), (category, None));
    }
}

#[tokio::test]
async fn set_status_errors_change_nothing() {
    let s = server::start(20).await;
    set(&s, 0, Category::Available);
    let before = state(&s);
    let set_status = |body: Value| call(&s, Method::POST, "users.setStatus").json(&body);
    for status in ["Online", "invisible", "dnd", ""] {
        let body = json!({"status": status, "message": "changed"});
        assert_eq!(
            send(set_status(body)).await,
            (
                400,
                json!({"success": false,
                       "error": "Valid status types include online, away, offline, and busy. \
                                 [error-invalid-status]",
                       "errorType": "error-invalid-status"})
            ),
            "{status:?}"
        );
    }
    let long = "x".repeat(s.app.store.config().max_message_len + 1);
    fails(set_status(json!({"status": "busy", "message": long})), 400).await;
    fails(set_status(json!({"status": 3})), 400).await;
    let other = user(&s, 1).rc_id;
    fails(set_status(json!({"status": "busy", "userId": other})), 403).await;
    let truncated = call(&s, Method::POST, "users.setStatus")
        .header("Content-Type", "application/json")
        .body("{\"status\": ");
    fails(truncated, 400).await;
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let s = server::start(20).await;
    let before = state(&s);
    for (method, path, allow) in [
        (Method::GET, "login", "POST"),
        (Method::GET, "logout", "POST"),
        (Method::POST, "users.presence", "GET,HEAD"),
        (Method::PUT, "users.getPresence", "GET,HEAD"),
        (Method::GET, "users.setStatus", "POST"),
        (
            Method::DELETE,
            "settings/Presence_broadcast_disabled",
            "GET,HEAD,POST",
        ),
    ] {
        let response = call(&s, method.clone(), path).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let allowed = response.headers()["allow"]
            .to_str()
            .unwrap()
            .replace(' ', "");
        let mut allowed: Vec<&str> = allowed.split(',').collect();
        allowed.sort();
        assert_eq!(allowed.join(","), allow, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], false);
    }
    fails(call(&s, Method::GET, "users.nothing"), 404).await;
    assert_eq!(state(&s), before);
}

#[tokio::test]
async fn oversized_and_mistyped_bodies_are_413_and_415() {
    let s = server::start(20).await;
    let before = state(&s);
    let big = json!({"status": "busy", "message": "x".repeat(65 * 1024)});
    for path in [
        "users.setStatus",
        "settings/Presence_broadcast_disabled",
        "login",
    ] {
        let request = call(&s, Method::POST, path).json(&big);
        fails(request, 413).await;
        for content_type in [Some("text/plain"), Some("application/xml"), None] {
            let mut request = call(&s, Method::POST, path).body(r#"{"status":"busy"}"#);
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", content_type);
            }
            fails(request, 415).await;
        }
    }
    assert_eq!(state(&s), before);
}
