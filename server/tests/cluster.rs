//! Three servers on three ports, one cluster over a real `redis-server` the test starts: the
//! same presence in every dialect on every server, whichever server it was changed through,
//! and deltas on each include the changes made through the others; organization state
//! (definitions, sources, settings) made through one is on all, and in each one's data
//! directory.

mod server;
#[path = "../../cluster/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};
use server::{
    TestServer, DEMO_GATEWAY_TOKEN, DEMO_GENESYS_TOKEN, DEMO_ROCKETCHAT_TOKEN, DEMO_SYMPHONY_TOKEN,
};
use support::Redis;

/// A bound on a hang, not a speed check.
const PATIENCE: Duration = Duration::from_secs(30);

async fn node(redis: &Redis, name: &str) -> TestServer {
    node_in(redis, name, None).await
}

/// A node keeping its state in `data_dir`, with the background tasks that save it.
async fn node_in(redis: &Redis, name: &str, data_dir: Option<&std::path::Path>) -> TestServer {
    let options = server::app::Options {
        demo_users: 10,
        simulate: false,
        redis: Some(redis.url()),
        node: Some(name.to_owned()),
        data_dir: data_dir.map(ToOwned::to_owned),
        ..server::app::Options::default()
    };
    let s = server::start_with(options).await;
    s.app.join_cluster(&redis.url()).await.unwrap();
    if data_dir.is_some() {
        s.app.spawn_background(false, Duration::from_secs(3600));
    }
    s
}

/// Sends a Genesys request with the demo token; the status and the JSON body.
async fn genesys(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = s
        .client
        .request(method, s.url(path))
        .bearer_auth(DEMO_GENESYS_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn json(request: reqwest::RequestBuilder) -> Value {
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn symphony_category(s: &TestServer, uid: u64) -> String {
    let body = json(
        s.client
            .get(s.url(&format!("/pod/v3/user/{uid}/presence")))
            .header("sessionToken", DEMO_SYMPHONY_TOKEN),
    )
    .await;
    body["category"].as_str().unwrap_or_default().to_owned()
}

async fn rocketchat_status(s: &TestServer, n: usize) -> String {
    let user = &s.app.directory.users()[n];
    let body = json(
        s.client
            .request(
                Method::GET,
                s.url(&format!("/api/v1/users.getPresence?userId={}", user.rc_id)),
            )
            .header("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN)
            .header("X-User-Id", &s.app.directory.users()[0].rc_id),
    )
    .await;
    body["presence"].as_str().unwrap_or_default().to_owned()
}

/// Polls `probe` on every server until all answer `want`.
async fn everywhere<F>(servers: &[&TestServer], want: &str, probe: F)
where
    F: for<'a> Fn(&'a TestServer) -> BoxFuture<'a, String>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    for s in servers {
        loop {
            let got = probe(s).await;
            if got == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} answers {got}, not {want}",
                s.base
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_show_the_same_presence_in_every_dialect() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let c = node(&redis, "c").await;
    let all = [&a, &b, &c];
    let user = a.app.directory.users()[3].clone();
    let cursor_b = b.app.store.cursor();

    // A device connects through a.
    let url = a.url(&format!(
        "/devices/v1/users/{}/sessions/7/heartbeat",
        user.id
    ));
    json(
        a.client
            .post(url)
            .bearer_auth(DEMO_GATEWAY_TOKEN)
            .json(&json!({"activity": "active"})),
    )
    .await;
    everywhere(&all, "AVAILABLE", |s| {
        Box::pin(symphony_category(s, user.id))
    })
    .await;
    everywhere(&all, "online", |s| Box::pin(rocketchat_status(s, 3))).await;

    // A status set through c's Rocket.Chat API shows in Symphony on a.
    let body = json(
        c.client
            .post(c.url("/api/v1/users.setStatus"))
            .header("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN)
            .header("X-User-Id", &c.app.directory.users()[0].rc_id)
            .json(&json!({"status": "busy", "message": "in a call"})),
    )
    .await;
    assert_eq!(body["success"], true, "{body}");
    let ada = c.app.directory.users()[0].id;
    everywhere(&all, "BUSY", |s| Box::pin(symphony_category(s, ada))).await;

    // b's delta since before holds both changes, made through a and c.
    let delta = b
        .app
        .store
        .changes_since(&presence_store::Since::Cursor(cursor_b));
    let changed: Vec<u64> = delta.users.iter().map(|(u, _)| *u).collect();
    assert!(
        changed.contains(&user.id) && changed.contains(&ada),
        "{changed:?}"
    );
    for s in all {
        // The counters move just after the events apply: wait for them.
        let metrics = || s.app.cluster.get().unwrap().metrics();
        support::eventually("events published or applied counted", PATIENCE, || {
            let m = metrics();
            m.published + m.applied >= 2
        })
        .await;
        let text = s
            .client
            .get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for name in [
            "presence_replication_lag_milliseconds",
            "presence_replication_events_published_total",
            "presence_replication_events_applied_total",
            "presence_replication_peers",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing from {text}"
            );
        }
    }
}

#[test]
fn redis_and_node_go_together() {
    let parse = |args: &[&str]| {
        let args = std::iter::once(&"presence-server").chain(args);
        server::app::Options::from_args(args.copied())
    };
    assert!(parse(&["--redis", "redis://127.0.0.1:6379"]).is_err());
    assert!(parse(&["--node", "a"]).is_err());
    let options = parse(&["--redis", "redis://x", "--node", "a"]).unwrap();
    assert_eq!(
        (options.redis.as_deref(), options.node.as_deref()),
        (Some("redis://x"), Some("a"))
    );
}

/// The status of `GET path` on `s`, and its body's `field`.
fn probe<'a>(s: &'a TestServer, path: &str, field: &'static str) -> BoxFuture<'a, String> {
    let path = path.to_owned();
    Box::pin(async move {
        let (status, body) = genesys(s, Method::GET, &path, None).await;
        format!("{status} {}", body[field])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_state_made_through_one_server_is_on_every_server() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let a = node(&redis, "a").await;
    let b = node_in(&redis, "b", Some(dir.path())).await;
    let c = node(&redis, "c").await;
    let all = [&a, &b, &c];

    // A definition and a source created through a: the same ids on b and c.
    let body = json!({"languageLabels": {"en_US": "Lunch"}, "systemPresence": "Meal"});
    let (status, def) = genesys(&a, Method::POST, "/api/v2/presence/definitions", Some(body)).await;
    assert_eq!(status, 200, "{def}");
    let def_path = format!(
        "/api/v2/presence/definitions/{}",
        def["id"].as_str().unwrap()
    );
    let body = json!({"name": "PBX"});
    let (status, src) = genesys(&a, Method::POST, "/api/v2/presence/sources", Some(body)).await;
    assert_eq!(status, 200, "{src}");
    let src_path = format!("/api/v2/presence/sources/{}", src["id"].as_str().unwrap());
    let want = format!("200 {}", def["id"]);
    everywhere(&all, &want, |s| probe(s, &def_path, "id")).await;
    let want = format!("200 {}", src["id"]);
    everywhere(&all, &want, |s| probe(s, &src_path, "id")).await;
    for s in all {
        assert_eq!(genesys(s, Method::GET, &def_path, None).await.1, def);
    }

    // b saved what a made in its data directory, though no request of b's changed it.
    let org_file = dir.path().join("organization.json");
    let src_id = src["id"].as_str().unwrap().to_owned();
    support::eventually("b's data directory holds a's source", PATIENCE, || {
        std::fs::read_to_string(&org_file).is_ok_and(|text| text.contains(&src_id))
    })
    .await;

    // An update through b reaches every server whole; a deletion through c retires the
    // definition (Genesys' soft delete) and removes the source everywhere.
    let body = json!({"languageLabels": {"en_US": "Long lunch"}, "systemPresence": "Meal"});
    let (status, _) = genesys(&b, Method::PUT, &def_path, Some(body)).await;
    assert_eq!(status, 200);
    let want = r#"200 {"en_US":"Long lunch"}"#;
    everywhere(&all, want, |s| probe(s, &def_path, "languageLabels")).await;
    for path in [&def_path, &src_path] {
        let (status, body) = genesys(&c, Method::DELETE, path, None).await;
        assert!((200..300).contains(&status), "{status} {body}");
    }
    everywhere(&all, "200 true", |s| probe(s, &def_path, "deactivated")).await;
    everywhere(&all, "404 null", |s| probe(s, &src_path, "id")).await;
    support::eventually(
        "b's data directory lost the deleted source",
        PATIENCE,
        || std::fs::read_to_string(&org_file).is_ok_and(|text| !text.contains(&src_id)),
    )
    .await;

    // Presence_broadcast_disabled set through b is seen through a, then Genesys settings.
    let r = b
        .client
        .post(b.url("/api/v1/settings/Presence_broadcast_disabled"))
        .header("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN)
        .header("X-User-Id", &b.app.directory.users()[0].rc_id)
        .json(&json!({"value": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    everywhere(&[&a, &c], "true", |s| {
        Box::pin(async move {
            let path = "/api/v1/settings/Presence_broadcast_disabled";
            let body = json(
                s.client
                    .get(s.url(path))
                    .header("X-Auth-Token", DEMO_ROCKETCHAT_TOKEN)
                    .header("X-User-Id", &s.app.directory.users()[0].rc_id),
            )
            .await;
            body["value"].to_string()
        })
    })
    .await;
    let path = "/api/v2/presence/settings";
    let body = json!({"requestingOffQueueEnabled": true});
    let (status, body) = genesys(&c, Method::PUT, path, Some(body)).await;
    assert_eq!(status, 200, "{body}");
    everywhere(&all, "200 true", |s| {
        probe(s, path, "requestingOffQueueEnabled")
    })
    .await;
}
