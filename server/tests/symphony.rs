//! The Symphony dialect over real HTTP: RSA login, every presence route, and every error path
//! with Symphony's `{"code", "message"}` body and the store left unchanged.

mod server;

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use presence_store::{Activity, Cursor, Since};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

use server::app::directory::FIRST_ID;
use server::{
    TestServer, DEMO_GENESYS_TOKEN, DEMO_ROCKETCHAT_TOKEN, DEMO_SYMPHONY_TOKEN, START_MS,
};

const PRIVATE_KEY: &str = include_str!("../demo/bot-private.pem");

/// `presence-bot`'s user id in the demo accounts.
const BOT_ID: u64 = FIRST_ID - 1;

/// An RS512 JWT for `sub`, expiring `exp` seconds after the test clock's start.
fn jwt(sub: &str, exp: i64) -> String {
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap();
    let claims = json!({ "sub": sub, "exp": (START_MS / 1000) as i64 + exp });
    jsonwebtoken::encode(&Header::new(Algorithm::RS512), &claims, &key).unwrap()
}

/// A request with `token` in the `sessionToken` header.
fn call(s: &TestServer, method: Method, path: &str, token: &str) -> RequestBuilder {
    s.client
        .request(method, s.url(path))
        .header("sessionToken", token)
}

async fn get(s: &TestServer, path: &str) -> Response {
    call(s, Method::GET, path, DEMO_SYMPHONY_TOKEN)
        .send()
        .await
        .unwrap()
}

async fn post(s: &TestServer, path: &str, body: Value) -> Response {
    call(s, Method::POST, path, DEMO_SYMPHONY_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The JSON body of a 200.
async fn ok(r: Response) -> Value {
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    r.json().await.unwrap()
}

/// Asserts a Symphony error body with `status`; its message.
async fn fails(r: Response, status: u16) -> String {
    assert_eq!(r.status(), status);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("application/json"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], status, "{body}");
    let message = body["message"].as_str().unwrap().to_string();
    assert!(!message.is_empty());
    message
}

/// Asserts that nothing changed in the store since `before`.
fn unchanged(s: &TestServer, before: &Cursor) {
    let delta = s.app.store.changes_since(&Since::Cursor(before.clone()));
    assert!(delta.users.is_empty(), "store changed: {:?}", delta.users);
}

/// Logs `sub` in with a JWT valid for 290 s; its session token.
async fn login(s: &TestServer, sub: &str) -> String {
    let r = s
        .client
        .post(s.url("/login/pubkey/authenticate"))
        .json(&json!({ "token": jwt(sub, 290) }))
        .send()
        .await
        .unwrap();
    let body = ok(r).await;
    assert_eq!(body["name"], "sessionToken");
    body["token"].as_str().unwrap().to_string()
}

/// Sets `uid`'s presence through `POST /pod/v3/user/presence{query}`; the answer.
async fn set_user(s: &TestServer, query: &str, uid: u64, category: &str) -> Value {
    let body = json!({ "userId": uid, "category": category });
    ok(post(s, &format!("/pod/v3/user/presence{query}"), body).await).await
}

/// Creates a presence feed (a POST without a body, as the BDK sends it); its id.
async fn create_feed(s: &TestServer) -> String {
    let r = call(
        s,
        Method::POST,
        "/pod/v1/presence/feed/create",
        DEMO_SYMPHONY_TOKEN,
    );
    let id = ok(r.send().await.unwrap()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 22, "128 random bits, URL-safe");
    id
}

/// The `n`th demo user's id.
fn user(n: u64) -> u64 {
    FIRST_ID + n
}

#[tokio::test]
async fn login_with_the_demo_key_opens_a_session() {
    let s = server::start(10).await;
    let token = login(&s, "presence-bot").await;
    let info = ok(call(&s, Method::GET, "/pod/v2/sessioninfo", &token)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(info["id"], BOT_ID);
    assert_eq!(info["username"], "presence-bot");
    assert_eq!(info["roles"], json!(["USER_PROVISIONING"]));

    let r = s
        .client
        .post(s.url("/relay/pubkey/authenticate"))
        .json(&json!({ "token": jwt("plain-bot", 290) }))
        .send()
        .await
        .unwrap();
    let body = ok(r).await;
    assert_eq!(body["name"], "keyManagerToken");
    assert!(!body["token"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn bad_logins_are_401_and_bad_bodies_400_or_415() {
    let s = server::start(10).await;
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &json!({ "sub": "presence-bot", "exp": START_MS / 1000 + 60 }),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    let mut tampered = jwt("presence-bot", 290);
    tampered.push('x');
    for path in ["/login/pubkey/authenticate", "/relay/pubkey/authenticate"] {
        for token in [
            jwt("presence-bot", -1),
            jwt("presence-bot", 3600),
            jwt("nobody", 290),
            hs512.clone(),
            tampered.clone(),
            "not.a.jwt".to_string(),
        ] {
            let r = s.client.post(s.url(path)).json(&json!({ "token": token }));
            fails(r.send().await.unwrap(), 401).await;
        }
        let r = s.client.post(s.url(path)).json(&json!({ "jwt": "x" }));
        fails(r.send().await.unwrap(), 400).await;
        let r = s.client.post(s.url(path)).body("{}").send().await.unwrap();
        fails(r, 415).await;
    }
    // A JWT valid now expires with the server's clock.
    let token = jwt("presence-bot", 120);
    s.clock.advance(Duration::from_secs(121));
    let r = s
        .client
        .post(s.url("/login/pubkey/authenticate"))
        .json(&json!({ "token": token }));
    assert!(fails(r.send().await.unwrap(), 401)
        .await
        .contains("expired"));
}

/// Every pod route, with a body where it takes one.
fn pod_routes() -> Vec<(Method, String, Option<Value>)> {
    let busy = json!({ "category": "BUSY", "userId": user(0) });
    vec![
        (Method::GET, "/pod/v2/sessioninfo".into(), None),
        (Method::GET, "/pod/v2/users/presence".into(), None),
        (Method::GET, "/pod/v2/user/presence".into(), None),
        (
            Method::POST,
            "/pod/v2/user/presence".into(),
            Some(busy.clone()),
        ),
        (
            Method::GET,
            format!("/pod/v3/user/{}/presence", user(0)),
            None,
        ),
        (Method::POST, "/pod/v3/user/presence".into(), Some(busy)),
        (Method::POST, "/pod/v1/presence/feed/create".into(), None),
        (
            Method::GET,
            "/pod/v1/presence/feed/0000000000000001/read".into(),
            None,
        ),
        (
            Method::POST,
            "/pod/v1/presence/feed/0000000000000001/delete".into(),
            None,
        ),
    ]
}

#[tokio::test]
async fn pod_routes_need_a_symphony_session() {
    let s = server::start(10).await;
    let before = s.app.store.cursor();
    for (method, path, body) in pod_routes() {
        for token in [
            None,
            Some("wrong"),
            Some(DEMO_ROCKETCHAT_TOKEN),
            Some(DEMO_GENESYS_TOKEN),
        ] {
            let mut r = s.client.request(method.clone(), s.url(&path));
            if let Some(token) = token {
                r = r.header("sessionToken", token);
            }
            if let Some(body) = &body {
                r = r.json(body);
            }
            fails(r.send().await.unwrap(), 401).await;
        }
    }
    unchanged(&s, &before);
}

#[tokio::test]
async fn plain_bot_lacks_user_provisioning() {
    let s = server::start(10).await;
    let token = login(&s, "plain-bot").await;
    let before = s.app.store.cursor();
    let r = call(&s, Method::GET, "/pod/v2/users/presence", &token);
    fails(r.send().await.unwrap(), 403).await;
    let r = call(&s, Method::POST, "/pod/v3/user/presence", &token)
        .json(&json!({ "userId": user(1), "category": "BUSY" }));
    fails(r.send().await.unwrap(), 403).await;
    unchanged(&s, &before);

    // Feeds carry everyone's changes, so they need the entitlement too.
    let r = call(&s, Method::POST, "/pod/v1/presence/feed/create", &token);
    fails(r.send().await.unwrap(), 403).await;
    assert_eq!(s.app.feeds.len(), 0);

    // Its own presence needs no entitlement.
    let r = call(&s, Method::POST, "/pod/v2/user/presence", &token)
        .json(&json!({ "category": "BUSY" }));
    assert_eq!(ok(r.send().await.unwrap()).await["userId"], FIRST_ID - 2);
}

#[tokio::test]
async fn paging_walks_every_user_with_an_inclusive_last_user_id() {
    let s = server::start(40).await;
    for n in (0..40).step_by(2) {
        s.app
            .store
            .heartbeat(&user(n), 1, Activity::Active)
            .unwrap();
    }
    let all = ok(get(&s, "/pod/v2/users/presence").await).await;
    let all: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["userId"].as_u64().unwrap())
        .collect();
    assert_eq!(all, (0..40).step_by(2).map(user).collect::<Vec<_>>());

    let mut seen = Vec::new();
    let mut last = None::<u64>;
    loop {
        let path = match last {
            Some(id) => format!("/pod/v2/users/presence?limit=7&lastUserId={id}"),
            None => "/pod/v2/users/presence?limit=7".into(),
        };
        let page = ok(get(&s, &path).await).await;
        let page = page.as_array().unwrap().clone();
        assert!(page.len() <= 7);
        for p in &page {
            assert_eq!(p["category"], "AVAILABLE");
            assert_eq!(p["timestamp"], START_MS);
        }
        let ids: Vec<u64> = page.iter().map(|p| p["userId"].as_u64().unwrap()).collect();
        if let Some(last) = last {
            assert_eq!(ids.first(), Some(&last), "lastUserId is inclusive");
        }
        seen.extend(ids.iter().copied().filter(|id| Some(*id) != last));
        if page.len() < 7 || ids.last() == last.as_ref() {
            break;
        }
        last = ids.last().copied();
    }
    assert_eq!(seen, all);

    // A lastUserId between two users starts at the next one.
    let page = ok(get(
        &s,
        &format!("/pod/v2/users/presence?lastUserId={}&limit=1", user(1)),
    )
    .await)
    .await;
    assert_eq!(page[0]["userId"], user(2));
    let page = ok(get(&s, "/pod/v2/users/presence?limit=5000").await).await;
    assert_eq!(page.as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn bad_paging_parameters_are_400() {
    let s = server::start(10).await;
    s.app
        .store
        .heartbeat(&user(0), 1, Activity::Active)
        .unwrap();
    let before = s.app.store.cursor();
    for query in [
        "limit=0",
        "limit=5001",
        "limit=abc",
        "limit=",
        "lastUserId=x",
        "lastUserId=-1",
    ] {
        let message = fails(
            get(&s, &format!("/pod/v2/users/presence?{query}")).await,
            400,
        )
        .await;
        assert!(!message.is_empty(), "{query}");
    }
    let message = fails(get(&s, "/pod/v2/users/presence?limit=5001").await, 400).await;
    assert!(message.contains("5000"), "{message}");
    unchanged(&s, &before);
}

#[tokio::test]
async fn one_users_presence_and_unknown_users() {
    let s = server::start(10).await;
    let never = ok(get(&s, &format!("/pod/v3/user/{}/presence", user(3))).await).await;
    assert_eq!(
        never,
        json!({ "category": "OFFLINE", "userId": user(3), "timestamp": 0 })
    );

    s.clock.advance(Duration::from_secs(5));
    s.app.store.heartbeat(&user(3), 1, Activity::Idle).unwrap();
    let idle = ok(get(&s, &format!("/pod/v3/user/{}/presence?local=true", user(3))).await).await;
    assert_eq!(
        idle,
        json!({ "category": "AWAY", "userId": user(3), "timestamp": START_MS + 5000 })
    );

    // The bot is a pod user too.
    ok(get(&s, &format!("/pod/v3/user/{BOT_ID}/presence")).await).await;
    let before = s.app.store.cursor();
    fails(
        get(&s, &format!("/pod/v3/user/{}/presence", user(10))).await,
        404,
    )
    .await;
    fails(get(&s, "/pod/v3/user/12/presence").await, 404).await;
    fails(get(&s, "/pod/v3/user/abc/presence").await, 400).await;
    unchanged(&s, &before);
}

#[tokio::test]
async fn own_presence_reads_and_sets_the_bots_record() {
    let s = server::start(10).await;
    let mine = ok(get(&s, "/pod/v2/user/presence").await).await;
    assert_eq!(
        mine,
        json!({ "category": "OFFLINE", "userId": BOT_ID, "timestamp": 0 })
    );
    let set = ok(post(&s, "/pod/v2/user/presence", json!({ "category": "BUSY" })).await).await;
    assert_eq!(
        set,
        json!({ "category": "BUSY", "userId": BOT_ID, "timestamp": START_MS })
    );
    assert_eq!(ok(get(&s, "/pod/v2/user/presence").await).await, set);

    let before = s.app.store.cursor();
    for body in [
        json!({ "category": "LUNCH" }),
        json!({}),
        json!({ "category": 3 }),
    ] {
        fails(post(&s, "/pod/v2/user/presence", body).await, 400).await;
    }
    fails(
        post(
            &s,
            "/pod/v2/user/presence?soft=maybe",
            json!({ "category": "AWAY" }),
        )
        .await,
        400,
    )
    .await;
    unchanged(&s, &before);
}

#[tokio::test]
async fn soft_and_hard_sets_as_seen_on_the_wire() {
    let s = server::start(10).await;
    let (a, b) = (user(1), user(2));

    // Soft on an offline user: stays OFFLINE until they come online, then shows the request.
    assert_eq!(
        set_user(&s, "?soft=true", a, "BUSY").await["category"],
        "OFFLINE"
    );
    s.app.store.heartbeat(&a, 1, Activity::Active).unwrap();
    let now = ok(get(&s, &format!("/pod/v3/user/{a}/presence")).await).await;
    assert_eq!(now["category"], "BUSY");

    // Soft AVAILABLE on an idle user shows AWAY; hard AVAILABLE shows AVAILABLE.
    s.app.store.heartbeat(&a, 1, Activity::Idle).unwrap();
    let soft = set_user(&s, "?soft=true", a, "available").await;
    assert_eq!(soft["category"], "AWAY");
    let hard = set_user(&s, "?soft=false", a, "AVAILABLE").await;
    assert_eq!(hard["category"], "AVAILABLE");

    // Hard (the default) on an offline user shows at once.
    let r = set_user(&s, "", b, "IN_A_MEETING").await;
    assert_eq!(
        r,
        json!({ "category": "IN_A_MEETING", "userId": b, "timestamp": START_MS })
    );
}

#[tokio::test]
async fn bad_sets_of_another_user_change_nothing() {
    let s = server::start(10).await;
    let before = s.app.store.cursor();
    let set = "/pod/v3/user/presence";
    fails(
        post(&s, set, json!({ "userId": user(1), "category": "LUNCH" })).await,
        400,
    )
    .await;
    fails(post(&s, set, json!({ "category": "BUSY" })).await, 400).await;
    fails(post(&s, set, json!({ "userId": user(1) })).await, 400).await;
    fails(
        post(&s, set, json!({ "userId": "x", "category": "BUSY" })).await,
        400,
    )
    .await;
    fails(
        post(&s, set, json!({ "userId": user(10), "category": "BUSY" })).await,
        404,
    )
    .await;
    let raw = |body: &'static str, content_type: &'static str| {
        call(&s, Method::POST, set, DEMO_SYMPHONY_TOKEN)
            .header("content-type", content_type)
            .body(body)
    };
    fails(
        raw("{\"userId\": 1,", "application/json")
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    let r = raw(
        "{\"userId\": 68719476738, \"category\": \"BUSY\"}",
        "text/plain",
    );
    fails(r.send().await.unwrap(), 415).await;
    let big = json!({ "userId": user(1), "category": "BUSY", "pad": "x".repeat(70 * 1024) });
    fails(post(&s, set, big.clone()).await, 413).await;
    fails(post(&s, "/pod/v2/user/presence", big).await, 413).await;
    unchanged(&s, &before);
}

#[tokio::test]
async fn feeds_read_changes_since_their_last_read() {
    let s = server::start(10).await;
    let id = create_feed(&s).await;
    let read = format!("/pod/v1/presence/feed/{id}/read");
    assert_eq!(ok(get(&s, &read).await).await, json!([]));

    s.app
        .store
        .heartbeat(&user(1), 1, Activity::Active)
        .unwrap();
    set_user(&s, "", user(2), "BUSY").await;
    set_user(&s, "", user(2), "AWAY").await;
    // Users on different shards changed at the same instant come in no set order.
    let mut changes = ok(get(&s, &read).await).await.as_array().unwrap().clone();
    changes.sort_by_key(|p| p["userId"].as_u64());
    assert_eq!(
        Value::Array(changes),
        json!([
            { "category": "AVAILABLE", "userId": user(1), "timestamp": START_MS },
            { "category": "AWAY", "userId": user(2), "timestamp": START_MS },
        ])
    );
    assert_eq!(ok(get(&s, &read).await).await, json!([]));

    let deleted =
        ok(post(&s, &format!("/pod/v1/presence/feed/{id}/delete"), json!({})).await).await;
    assert_eq!(deleted, json!({ "id": id }));
    // A deleted feed, like one never issued, is 404 (another account's is too: see
    // tests/security.rs).
    let before = s.app.store.cursor();
    fails(get(&s, &read).await, 404).await;
    fails(
        post(&s, &format!("/pod/v1/presence/feed/{id}/delete"), json!({})).await,
        404,
    )
    .await;
    for bad in ["nope", "zzzzzzzzzzzzzzzz", "00000000000000000"] {
        fails(
            get(&s, &format!("/pod/v1/presence/feed/{bad}/read")).await,
            404,
        )
        .await;
        let r = post(
            &s,
            &format!("/pod/v1/presence/feed/{bad}/delete"),
            json!({}),
        )
        .await;
        fails(r, 404).await;
    }
    unchanged(&s, &before);
}

#[tokio::test]
async fn a_feed_that_fell_behind_reads_everyone_online_and_says_so() {
    let s = server::start(10).await;
    let id = create_feed(&s).await;
    s.app
        .store
        .heartbeat(&user(1), 1, Activity::Active)
        .unwrap();
    s.clock.advance(Duration::from_secs(11 * 60));
    s.app
        .store
        .heartbeat(&user(2), 7, Activity::Active)
        .unwrap();
    s.app.store.sweep();

    let r = get(&s, &format!("/pod/v1/presence/feed/{id}/read")).await;
    assert_eq!(r.headers()["x-presence-feed-full"], "LogPruned");
    let users: Vec<u64> = ok(r)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["userId"].as_u64().unwrap())
        .collect();
    // user(1)'s session expired in the sweep (offline, so left out); user(2) is online.
    assert_eq!(users, [user(2)]);
    let r = get(&s, &format!("/pod/v1/presence/feed/{id}/read")).await;
    assert!(r.headers().get("x-presence-feed-full").is_none());
    assert_eq!(ok(r).await, json!([]));
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_and_unknown_paths_404() {
    let s = server::start(10).await;
    let before = s.app.store.cursor();
    for (method, path, allowed) in [
        (Method::DELETE, "/pod/v2/users/presence", "GET"),
        (Method::PUT, "/pod/v2/user/presence", "POST"),
        (Method::GET, "/pod/v3/user/presence", "POST"),
        (Method::GET, "/pod/v1/presence/feed/create", "POST"),
        (
            Method::POST,
            "/pod/v1/presence/feed/0000000000000001/read",
            "GET",
        ),
        (Method::GET, "/login/pubkey/authenticate", "POST"),
    ] {
        let r = call(&s, method, path, DEMO_SYMPHONY_TOKEN)
            .send()
            .await
            .unwrap();
        let allow = r.headers()["allow"].to_str().unwrap().to_string();
        assert!(allow.contains(allowed), "{path}: {allow}");
        fails(r, 405).await;
    }
    fails(get(&s, "/pod/v9/nothing").await, 404).await;
    unchanged(&s, &before);
}
