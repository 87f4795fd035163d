//! Who gets in where: the authorization matrix generated from `authz::ROUTES` and
//! `authz::TABLE` over real HTTP, token lifetimes and revocation with the injected clock, login
//! throttling, feed ownership and caps, and bodies of other JSON shapes on every write route.
//! After every refused call the store is as it was.

mod server;

use std::time::Duration;

use presence_server::accounts::AccountDialect;
use presence_server::authz::{allows, Action, Kind, ROUTES};
use presence_server::http::Dialect;
use presence_server::policy::Policy;
use presence_server::secret::Digest;
use presence_server::tokens::Principal;
use presence_store::{Cursor, Since};
use proptest::prelude::*;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use server::{TestServer, DEMO_GENESYS_TOKEN, START_MS};

/// What a refused call must leave alone: no change after the cursor, the same users,
/// definitions, sources, feeds and Rocket.Chat setting.
#[derive(Debug, PartialEq)]
struct Snapshot {
    changed: usize,
    len: usize,
    definitions: String,
    sources: String,
    feeds: usize,
    broadcast_disabled: bool,
}

fn snapshot(s: &TestServer, since: &Cursor) -> Snapshot {
    let store = &s.app.store;
    Snapshot {
        changed: store
            .changes_since(&Since::Cursor(since.clone()))
            .users
            .len(),
        len: store.len(),
        definitions: format!("{:?}", store.definitions()),
        sources: format!("{:?}", store.sources()),
        feeds: s.app.feeds.len(),
        broadcast_disabled: s.app.rocketchat.broadcast_disabled(&s.app.store),
    }
}

/// The principal of each kind (Rocket.Chat: the admin is the first directory user, the plain
/// user the second; the bot without User Provisioning is `plain-bot`).
fn principal(s: &TestServer, kind: Kind) -> Principal {
    let accounts = &s.app.accounts;
    let of = |dialect, account: &str| Principal::of(accounts, dialect, account).unwrap();
    match kind {
        Kind::Bot => of(AccountDialect::Symphony, "plain-bot"),
        Kind::Provisioner => of(AccountDialect::Symphony, "presence-bot"),
        Kind::RocketChatAdmin => of(AccountDialect::RocketChat, &accounts.rocketchat[0].username),
        Kind::RocketChatUser => of(AccountDialect::RocketChat, &accounts.rocketchat[1].username),
        Kind::GenesysClient => of(AccountDialect::Genesys, "demo-client"),
        Kind::Gateway => of(AccountDialect::Gateway, "demo-gateway"),
    }
}

/// A fresh token for `principal`, living an hour from now.
fn issue(s: &TestServer, principal: Principal) -> String {
    let now = START_MS.max(presence_store::Clock::now_ms(&*s.clock));
    s.app
        .tokens
        .issue(principal, Duration::from_secs(3600), now, 1000)
        .unwrap()
        .token
}

/// Who calls.
#[derive(Clone, Debug)]
enum Who {
    Nobody,
    Garbage,
    Expired(Kind),
    Revoked(Kind),
    Account(Kind),
}

/// The headers `token` of `principal` goes in on `dialect`'s routes.
fn credentials(
    s: &TestServer,
    dialect: Dialect,
    token: &str,
    principal: Option<&Principal>,
) -> Vec<(&'static str, String)> {
    match dialect {
        Dialect::Symphony => vec![("sessiontoken", token.to_owned())],
        Dialect::RocketChat => {
            let rc_id = principal
                .and_then(Principal::own_user)
                .and_then(|id| s.app.directory.get(id))
                .map_or_else(
                    || s.app.directory.users()[0].rc_id.clone(),
                    |u| u.rc_id.clone(),
                );
            vec![("x-auth-token", token.to_owned()), ("x-user-id", rc_id)]
        }
        Dialect::Genesys | Dialect::Own => vec![("authorization", format!("Bearer {token}"))],
    }
}

/// The headers of `who` on `dialect`'s routes.
fn headers(s: &TestServer, who: &Who, dialect: Dialect) -> Vec<(&'static str, String)> {
    match who {
        Who::Nobody => vec![],
        Who::Garbage => credentials(s, dialect, "AAAAAAAAAAAAAAAAAAAAAA", None),
        Who::Expired(kind) => {
            let p = principal(s, *kind);
            let now = presence_store::Clock::now_ms(&*s.clock);
            let t = s
                .app
                .tokens
                .issue(p.clone(), Duration::from_secs(1), now - 2_000, 1000)
                .unwrap()
                .token;
            credentials(s, dialect, &t, Some(&p))
        }
        Who::Revoked(kind) => {
            let p = principal(s, *kind);
            let t = issue(s, p.clone());
            assert!(s.app.tokens.revoke(&Digest::of(&t)));
            credentials(s, dialect, &t, Some(&p))
        }
        Who::Account(kind) => {
            let p = principal(s, *kind);
            let t = issue(s, p.clone());
            credentials(s, dialect, &t, Some(&p))
        }
    }
}

/// `path` with its placeholders filled with values that exist, and a user nobody is.
fn fill(s: &TestServer, path: &str) -> String {
    let target = &s.app.directory.users()[5];
    path.replace("{uid}", &target.id.to_string())
        .replace("{userId}", &target.id.to_string())
        .replace("{sessionId}", "1")
        .replace("{user}", &target.genesys_id)
        .replace("{source}", "PURECLOUD")
        .replace(
            "{id}",
            if path.contains("settings") {
                "Presence_broadcast_disabled"
            } else if path.contains("feed") {
                "AAAAAAAAAAAAAAAAAAAAAA"
            } else {
                "AVAILABLE"
            },
        )
}

/// What `who` must get on a route of `dialect` taking `action`: `Some(status)` for a refusal,
/// `None` where the guard lets it through.
fn expected(who: &Who, dialect: Dialect, action: Action) -> Option<u16> {
    let kind = match who {
        Who::Account(kind) => *kind,
        _ => return Some(401),
    };
    let dialect_of = |k: Kind| match k {
        Kind::Bot | Kind::Provisioner => AccountDialect::Symphony,
        Kind::RocketChatUser | Kind::RocketChatAdmin => AccountDialect::RocketChat,
        Kind::GenesysClient => AccountDialect::Genesys,
        Kind::Gateway => AccountDialect::Gateway,
    };
    if !dialect_of(kind).speaks(dialect) {
        return Some(401);
    }
    // Device routes here act on a user who is no account's own: only a gateway may.
    let action = if action == Action::Devices {
        Action::DevicesAnyUser
    } else {
        action
    };
    (!allows(kind, action)).then_some(403)
}

/// Checks `body` is `dialect`'s error body for `status`.
fn assert_error_body(dialect: Dialect, status: u16, body: &Value, what: &str) {
    let ok = match dialect {
        Dialect::Symphony => body["code"] == status && body["message"].is_string(),
        Dialect::RocketChat if status == 401 => body["status"] == "error",
        Dialect::RocketChat => body["success"] == false && body["error"].is_string(),
        Dialect::Genesys => body["status"] == status && body["code"].is_string(),
        Dialect::Own => body["status"] == status && body["message"].is_string(),
    };
    assert!(ok, "{what}: {status} {body}");
}

async fn send(request: RequestBuilder) -> (u16, Value) {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_authorization_matrix_holds_on_every_route_for_every_caller() {
    let s = server::start(8).await;
    s.clock.advance(Duration::from_secs(10));
    let mut callers = vec![Who::Nobody, Who::Garbage];
    for kind in Kind::ALL {
        callers.extend([Who::Expired(kind), Who::Revoked(kind), Who::Account(kind)]);
    }
    let mut checked = 0;
    for route in ROUTES.iter().filter(|r| r.action != Action::Login) {
        for who in &callers {
            let method = Method::from_bytes(route.method.as_bytes()).unwrap();
            let mut request = s.client.request(method, s.url(&fill(&s, route.path)));
            for (name, value) in headers(&s, who, route.dialect) {
                request = request.header(name, value);
            }
            if matches!(route.method, "POST" | "PUT" | "PATCH") {
                request = request.json(&json!({}));
            }
            let before = s.app.store.cursor();
            let snapshot_before = snapshot(&s, &before);
            let what = format!("{} {} as {who:?}", route.method, route.path);
            let (status, body) = send(request).await;
            match expected(who, route.dialect, route.action) {
                Some(refused) => {
                    assert_eq!(status, refused, "{what}: {body}");
                    assert_error_body(route.dialect, status, &body, &what);
                    assert_eq!(snapshot(&s, &before), snapshot_before, "{what}");
                }
                None => assert!(status != 401 && status != 403, "{what}: {status} {body}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 800, "{checked}");
}

#[tokio::test]
async fn tokens_live_their_lifetime_and_logouts_revoke_them() {
    let s = server::start(4).await;
    // Genesys: expires_in is what the token lives.
    let r = s
        .client
        .post(s.url("/oauth/token"))
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[("grant_type", "client_credentials")]);
    let (status, body) = send(r).await;
    assert_eq!(status, 200);
    let token = body["access_token"].as_str().unwrap().to_owned();
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert_eq!(expires_in, Policy::default().genesys_token_secs);
    assert_eq!(token.len(), 22);
    let systempresences = |t: &str| {
        s.client
            .get(s.url("/api/v2/systempresences"))
            .bearer_auth(t.to_owned())
    };
    s.clock.advance(Duration::from_secs(expires_in - 1));
    assert_eq!(send(systempresences(&token)).await.0, 200);
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(send(systempresences(&token)).await.0, 401);
    assert_eq!(
        s.app.tokens.sweep(presence_store::Clock::now_ms(&*s.clock)),
        1
    );

    // Genesys' DELETE /api/v2/tokens/me revokes the caller's token.
    let t = issue(&s, principal(&s, Kind::GenesysClient));
    let r = s.client.delete(s.url("/api/v2/tokens/me")).bearer_auth(&t);
    assert_eq!(send(r).await.0, 204);
    assert_eq!(send(systempresences(&t)).await.0, 401);

    // Symphony's logout.
    let t = issue(&s, principal(&s, Kind::Provisioner));
    let r = s
        .client
        .post(s.url("/sessionauth/v1/logout"))
        .header("sessionToken", &t);
    assert_eq!(send(r).await.0, 200);
    let r = s
        .client
        .get(s.url("/pod/v2/sessioninfo"))
        .header("sessionToken", &t);
    assert_eq!(send(r).await.0, 401);

    // A token issued in advance, revoked, stays revoked in the export.
    let r = s
        .client
        .delete(s.url("/api/v2/tokens/me"))
        .bearer_auth(DEMO_GENESYS_TOKEN);
    assert_eq!(send(r).await.0, 204);
    assert_eq!(send(systempresences(DEMO_GENESYS_TOKEN)).await.0, 401);
    assert_eq!(s.app.tokens.revocations().revoked.len(), 1);
}

#[tokio::test]
async fn the_token_table_is_bounded_whatever_callers_do() {
    let s = server::start(4).await;
    let before = s.app.tokens.len();
    for _ in 0..100 {
        let r = s
            .client
            .post(s.url("/oauth/token"))
            .basic_auth("demo-client", Some("demo-secret"))
            .form(&[("grant_type", "client_credentials")]);
        assert_eq!(send(r).await.0, 200);
    }
    assert_eq!(
        s.app.tokens.len(),
        before + Policy::default().max_tokens_per_account
    );
}

/// A server with the default policy (throttling as in production).
async fn start_throttled() -> TestServer {
    server::start_with(presence_server::Options {
        demo_users: 4,
        simulate: false,
        ..presence_server::Options::default()
    })
    .await
}

#[tokio::test]
async fn logins_are_throttled_even_for_the_right_secret_until_the_window_passes() {
    let s = start_throttled().await;
    let token = |secret: &str| {
        s.client
            .post(s.url("/oauth/token"))
            .basic_auth("demo-client", Some(secret.to_owned()))
            .form(&[("grant_type", "client_credentials")])
    };
    let burst = Policy::default().login_burst_per_account;
    for _ in 0..burst {
        assert_eq!(send(token("wrong")).await.0, 401);
    }
    let r = token("demo-secret").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests", "{body}");
    assert!(retry >= 1);
    s.clock.advance(Duration::from_secs(retry));
    assert_eq!(send(token("demo-secret")).await.0, 200);

    // Rocket.Chat: the same, in its body.
    let login = |password: &str| {
        s.client
            .post(s.url("/api/v1/login"))
            .json(&json!({"user": s.app.accounts.rocketchat[0].username, "password": password}))
    };
    for _ in 0..burst {
        assert_eq!(send(login("wrong")).await.0, 401);
    }
    let (status, body) = send(login("demo-password")).await;
    assert_eq!(status, 429);
    assert_error_body(Dialect::RocketChat, 429, &body, "RC login");
    s.clock.advance(Duration::from_secs(
        Policy::default().login_refill_secs_per_account,
    ));
    assert_eq!(send(login("demo-password")).await.0, 200);
}

#[tokio::test]
async fn guessing_tokens_is_throttled_per_address() {
    let s = start_throttled().await;
    let guess = || {
        s.client
            .get(s.url("/api/v2/systempresences"))
            .bearer_auth("AAAAAAAAAAAAAAAAAAAAAA")
    };
    for _ in 0..Policy::default().refused_tokens_burst_per_address {
        assert_eq!(send(guess()).await.0, 401);
    }
    let (status, body) = send(guess()).await;
    assert_eq!(status, 429);
    assert_error_body(Dialect::Genesys, 429, &body, "guess");
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(send(guess()).await.0, 401);
}

#[tokio::test]
async fn a_feed_belongs_to_its_creator_and_feeds_are_capped_per_account() {
    let s = server::start(4).await;
    let mine = issue(&s, principal(&s, Kind::Provisioner));
    let other = issue(
        &s,
        Principal::Symphony {
            username: "other-bot".into(),
            user_id: 1,
            entitlements: vec!["User Provisioning".into()],
        },
    );
    let post = |token: &str, path: &str| {
        s.client
            .post(s.url(path))
            .header("sessionToken", token.to_owned())
    };
    let (status, body) = send(post(&mine, "/pod/v1/presence/feed/create")).await;
    assert_eq!(status, 200);
    let id = body["id"].as_str().unwrap().to_owned();
    let before = s.app.store.cursor();
    let snap = snapshot(&s, &before);
    let read = format!("/pod/v1/presence/feed/{id}/read");
    let r = s.client.get(s.url(&read)).header("sessionToken", &other);
    assert_eq!(send(r).await.0, 404);
    let delete = format!("/pod/v1/presence/feed/{id}/delete");
    assert_eq!(send(post(&other, &delete)).await.0, 404);
    assert_eq!(snapshot(&s, &before), snap);
    let r = s.client.get(s.url(&read)).header("sessionToken", &mine);
    assert_eq!(send(r).await.0, 200);

    let cap = Policy::default().max_feeds_per_account;
    for _ in 1..cap {
        assert_eq!(
            send(post(&mine, "/pod/v1/presence/feed/create")).await.0,
            200
        );
    }
    let (status, body) = send(post(&mine, "/pod/v1/presence/feed/create")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(s.app.feeds.len(), cap);
    assert_eq!(
        send(post(&other, "/pod/v1/presence/feed/create")).await.0,
        200
    );
}

#[tokio::test]
async fn the_stream_carries_only_what_the_callers_dialect_shows() {
    use presence_server::authz::{stream_view, Caller, StreamView};
    use presence_store::{Activity, Category, SetMode};
    let s = server::start(4).await;
    let user = s.app.directory.users()[0].id;
    s.app.store.heartbeat(&user, 1, Activity::Idle).unwrap();
    let p = s
        .app
        .store
        .set(&user, Category::Busy, SetMode::Soft)
        .unwrap();
    let caller = |kind| Caller {
        principal: principal(&s, kind).into(),
        token: Digest::of(""),
    };
    let view = |kind| stream_view(&s.app, &caller(kind));
    assert_eq!(view(Kind::Provisioner).unwrap(), StreamView::Symphony);
    assert_eq!(view(Kind::RocketChatUser).unwrap(), StreamView::RocketChat);
    assert_eq!(view(Kind::Gateway).unwrap(), StreamView::Full);
    assert_eq!(view(Kind::GenesysClient).unwrap_err().0, 403);
    let fields = |v: StreamView| serde_json::to_value(v.change(user, &p)).unwrap();
    let rc = fields(StreamView::RocketChat);
    assert_eq!(rc["status"], "busy");
    assert!(
        rc.get("activity").is_none()
            && rc.get("requested").is_none()
            && rc.get("category").is_none()
    );
    let sym = fields(StreamView::Symphony);
    assert_eq!(sym["category"], "BUSY");
    assert!(sym.get("activity").is_none() && sym.get("requested").is_none());
    let full = fields(StreamView::Full);
    assert_eq!(full["activity"], "IDLE");
    s.app.rocketchat.set_broadcast_disabled(&s.app.store, true);
    assert_eq!(view(Kind::RocketChatUser).unwrap_err().0, 403);
}

#[tokio::test]
async fn ids_out_of_symphonys_range_and_builtins_are_refused() {
    let s = server::start(4).await;
    let before = s.app.store.cursor();
    let snap = snapshot(&s, &before);
    let get = |path: &str| {
        s.client
            .get(s.url(path))
            .header("sessionToken", server::DEMO_SYMPHONY_TOKEN)
    };
    let big = u64::MAX;
    assert_eq!(
        send(get(&format!("/pod/v2/users/presence?lastUserId={big}")))
            .await
            .0,
        400
    );
    assert_eq!(
        send(get(&format!("/pod/v3/user/{big}/presence"))).await.0,
        400
    );
    let r = s
        .client
        .put(s.url("/api/v2/presence/sources/PURECLOUD"))
        .bearer_auth(DEMO_GENESYS_TOKEN)
        .json(&json!({"name": "Mine now"}));
    assert_eq!(send(r).await.0, 400);
    let r = s
        .client
        .post(s.url("/pod/v3/user/presence"))
        .header("sessionToken", server::DEMO_SYMPHONY_TOKEN)
        .json(&json!([s.app.directory.users()[0].id, "BUSY"]));
    assert_eq!(send(r).await.0, 400);
    assert_eq!(snapshot(&s, &before), snap);
}

/// Every write route with a body, its dialect and the shape it documents.
fn write_routes(s: &TestServer) -> Vec<(Method, String, Dialect, bool)> {
    let u = &s.app.directory.users()[0];
    let g = &u.genesys_id;
    let def = s.app.store.definitions()[0].id.to_string();
    let object = |m: Method, p: String, d| (m, p, d, false);
    vec![
        object(
            Method::POST,
            "/login/pubkey/authenticate".into(),
            Dialect::Symphony,
        ),
        object(
            Method::POST,
            "/pod/v2/user/presence".into(),
            Dialect::Symphony,
        ),
        object(
            Method::POST,
            "/pod/v3/user/presence".into(),
            Dialect::Symphony,
        ),
        object(Method::POST, "/api/v1/login".into(), Dialect::RocketChat),
        object(
            Method::POST,
            "/api/v1/users.setStatus".into(),
            Dialect::RocketChat,
        ),
        object(
            Method::POST,
            "/api/v1/settings/Presence_broadcast_disabled".into(),
            Dialect::RocketChat,
        ),
        object(
            Method::POST,
            "/api/v2/presence/definitions".into(),
            Dialect::Genesys,
        ),
        object(
            Method::POST,
            "/api/v2/presencedefinitions".into(),
            Dialect::Genesys,
        ),
        object(
            Method::PUT,
            format!("/api/v2/presence/definitions/{def}"),
            Dialect::Genesys,
        ),
        object(
            Method::PUT,
            format!("/api/v2/presencedefinitions/{def}"),
            Dialect::Genesys,
        ),
        object(
            Method::POST,
            "/api/v2/presence/sources".into(),
            Dialect::Genesys,
        ),
        object(
            Method::PUT,
            "/api/v2/presence/sources/PURECLOUD".into(),
            Dialect::Genesys,
        ),
        object(
            Method::PUT,
            format!("/api/v2/presence/users/{g}/primarysource"),
            Dialect::Genesys,
        ),
        object(
            Method::PUT,
            "/api/v2/presence/settings".into(),
            Dialect::Genesys,
        ),
        object(
            Method::PATCH,
            format!("/api/v2/users/{g}/presences/PURECLOUD"),
            Dialect::Genesys,
        ),
        (
            Method::PUT,
            "/api/v2/users/presences/bulk".into(),
            Dialect::Genesys,
            true,
        ),
        object(
            Method::POST,
            format!("/devices/v1/users/{}/sessions/1/heartbeat", u.id),
            Dialect::Own,
        ),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[a-zA-Z_ ]{0,12}".prop_map(Value::from),
    ]
}

/// JSON that is not an object.
fn not_object() -> impl Strategy<Value = Value> {
    prop_oneof![
        leaf(),
        prop::collection::vec(leaf(), 0..4).prop_map(Value::from),
        prop::collection::vec(
            prop::collection::vec(leaf(), 0..3).prop_map(Value::from),
            0..3
        )
        .prop_map(Value::from),
    ]
}

/// JSON that is not an array.
fn not_array() -> impl Strategy<Value = Value> {
    prop_oneof![
        leaf(),
        prop::collection::btree_map("[a-z]{1,6}", leaf(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn bodies_of_another_shape_are_400_on_every_write_route(
        object in not_object(),
        array in not_array(),
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let s = server::start(4).await;
            for (method, path, dialect, wants_array) in write_routes(&s) {
                let body = if wants_array { &array } else { &object };
                let mut request = s.client.request(method.clone(), s.url(&path)).json(body);
                let principal = match dialect {
                    Dialect::Symphony => principal(&s, Kind::Provisioner),
                    Dialect::RocketChat => principal(&s, Kind::RocketChatAdmin),
                    Dialect::Genesys => principal(&s, Kind::GenesysClient),
                    Dialect::Own => principal(&s, Kind::Gateway),
                };
                let token = issue(&s, principal.clone());
                for (name, value) in credentials(&s, dialect, &token, Some(&principal)) {
                    request = request.header(name, value);
                }
                let before = s.app.store.cursor();
                let snap = snapshot(&s, &before);
                let (status, reply) = send(request).await;
                let what = format!("{method} {path} with {body}");
                assert_eq!(status, 400, "{what}: {reply}");
                assert_error_body(dialect, 400, &reply, &what);
                assert_eq!(snapshot(&s, &before), snap, "{what}");
            }
        });
    }
}
