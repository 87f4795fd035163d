//! Three servers on three ports, one cluster over a real `redis-server` the test starts: the
//! same presence in every dialect on every server, whichever server it was changed through,
//! and deltas on each include the changes made through the others.

mod server;
#[path = "../../cluster/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};
use server::{TestServer, DEMO_GATEWAY_TOKEN, DEMO_ROCKETCHAT_TOKEN, DEMO_SYMPHONY_TOKEN};
use support::Redis;

/// A bound on a hang, not a speed check.
const PATIENCE: Duration = Duration::from_secs(30);

async fn node(redis: &Redis, name: &str) -> TestServer {
    let options = server::app::Options {
        demo_users: 10,
        simulate: false,
        redis: Some(redis.url()),
        node: Some(name.to_owned()),
        ..server::app::Options::default()
    };
    let s = server::start_with(options).await;
    s.app.join_cluster(&redis.url()).await.unwrap();
    s
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
        let m = s.app.cluster.get().unwrap().metrics();
        assert!(m.published + m.applied >= 2, "{m:?}");
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
