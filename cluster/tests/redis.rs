//! Replication against a real `redis-server` the test starts (on a free loopback port, with
//! persistence off): nodes share one view, a killed node's sessions go, a joiner catches up
//! (from the snapshot when the stream was trimmed, organization state included), a broker that
//! lost its data is survived.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_cluster::{Cluster, ClusterConfig, RedisStreams};
use presence_store::{Activity, Category, PresenceStore, SetMode, StoreConfig};
use support::{eventually, Redis};

/// Long enough for anything that works to happen; a bound on a hang, not a speed check.
const LIMIT: Duration = Duration::from_secs(30);

async fn node(redis: &Redis, name: &str, config: ClusterConfig) -> Cluster<u64> {
    let transport = RedisStreams::connect(&redis.url(), "test", 10_000)
        .await
        .unwrap();
    let store = Arc::new(PresenceStore::new(StoreConfig::default()));
    let config = ClusterConfig {
        name: name.to_owned(),
        ..config
    };
    Cluster::join(store, transport, config).await.unwrap()
}

/// What a node shows of users `0..n`: category, requested, activity, message.
fn view(c: &Cluster<u64>, n: u64) -> BTreeMap<u64, (Category, Category, Activity, Option<String>)> {
    (0..n)
        .filter_map(|u| {
            let p = c.store().get(&u)?;
            Some((
                u,
                (
                    p.category,
                    p.requested,
                    p.activity,
                    p.details.message().map(str::to_owned),
                ),
            ))
        })
        .filter(|(_, v)| {
            *v != (
                Category::Offline,
                Category::Undefined,
                Activity::Offline,
                None,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_show_one_view() {
    let redis = Redis::start();
    let a = node(&redis, "a", ClusterConfig::default()).await;
    let b = node(&redis, "b", ClusterConfig::default()).await;
    let c = node(&redis, "c", ClusterConfig::default()).await;
    for n in [&a, &b, &c] {
        n.wait_ready().await;
    }
    a.replica().heartbeat(&1, 7, Activity::Active).unwrap();
    b.replica().set(&2, Category::Busy, SetMode::Soft).unwrap();
    c.replica().heartbeat(&2, 1, Activity::Idle).unwrap();
    eventually("every node sees user 1 active", LIMIT, || {
        [&a, &b, &c].iter().all(|n| {
            n.store()
                .get(&1)
                .is_some_and(|p| p.activity == Activity::Active)
        })
    })
    .await;
    eventually("user 1's message reaches a", LIMIT, || {
        // Known everywhere now, so any node can set its message.
        let _ = b.replica().set_message(&1, "on a call");
        a.store()
            .get(&1)
            .and_then(|p| p.details.message().map(str::to_owned))
            .as_deref()
            == Some("on a call")
    })
    .await;
    eventually("the three views are equal", LIMIT, || {
        view(&a, 4) == view(&b, 4) && view(&b, 4) == view(&c, 4)
    })
    .await;
    let busy = a.store().get(&2).unwrap();
    assert_eq!(
        (busy.requested, busy.category, busy.activity),
        (Category::Busy, Category::Busy, Activity::Idle)
    );
    let m = a.metrics();
    assert!(m.published >= 1 && m.applied >= 2, "{m:?}");
    eventually("a counts two peers", LIMIT, || a.metrics().peers == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_its_sessions_and_a_restarted_one_catches_up() {
    let redis = Redis::start();
    let a = node(&redis, "a", ClusterConfig::default()).await;
    let b = node(&redis, "b", ClusterConfig::default()).await;
    for user in 0..20 {
        a.replica().heartbeat(&user, 1, Activity::Active).unwrap();
    }
    a.replica()
        .set(&3, Category::DoNotDisturb, SetMode::Soft)
        .unwrap();
    b.replica().heartbeat(&0, 1, Activity::Active).unwrap();
    eventually("b sees a's sessions", LIMIT, || {
        (0..20).all(|u| {
            b.store()
                .get(&u)
                .is_some_and(|p| p.activity == Activity::Active)
        })
    })
    .await;
    let cursor = b.store().cursor();
    a.kill().await;
    eventually("a's sessions are gone from b", LIMIT, || {
        (1..20).all(|u| {
            b.store()
                .get(&u)
                .is_some_and(|p| p.activity == Activity::Offline)
        })
    })
    .await;
    assert_eq!(
        b.store().get(&0).unwrap().activity,
        Activity::Active,
        "b's own session stays"
    );
    assert_eq!(
        b.store().get(&3).unwrap().requested,
        Category::DoNotDisturb,
        "what a set stays"
    );
    let delta = b
        .store()
        .changes_since(&presence_store::Since::Cursor(cursor));
    assert_eq!(delta.users.len(), 19, "each drop is a logged change");
    let a2 = node(&redis, "a", ClusterConfig::default()).await;
    a2.wait_ready().await;
    assert_eq!(view(&a2, 20), view(&b, 20), "ready means caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_starts_from_the_snapshot_when_the_stream_was_trimmed() {
    let redis = Redis::start();
    let transport = RedisStreams::connect(&redis.url(), "test", 50)
        .await
        .unwrap();
    let config = ClusterConfig {
        name: "a".to_owned(),
        batch_events: 4,
        snapshot_check_every: Duration::from_millis(100),
        ..ClusterConfig::default()
    };
    let store = Arc::new(PresenceStore::new(StoreConfig::default()));
    let a = Cluster::join(store, transport, config).await.unwrap();
    // Organization state made first, so the trimming takes its events out of the stream.
    let labels = BTreeMap::from([("en_US".to_owned(), "Lunch".to_owned())]);
    let lunch = a
        .replica()
        .create_definition(presence_store::SystemPresence::Meal, labels)
        .unwrap();
    let gone = a.replica().create_source("Gone").unwrap();
    let pbx = a.replica().create_source("PBX").unwrap();
    a.replica().delete_source(&gone.id).unwrap();
    a.replica().set_setting("k", "true");
    for user in 0..2_000 {
        a.replica()
            .set(&user, Category::Busy, SetMode::Hard)
            .unwrap();
    }
    a.replica().heartbeat(&5, 1, Activity::Active).unwrap();
    eventually("all published", LIMIT, || a.metrics().published == 2_006).await;
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let len: usize = redis::cmd("XLEN").arg("test:log").query(&mut conn).unwrap();
    assert!(
        len < 500,
        "the stream was trimmed to about 50 entries, holds {len}"
    );
    eventually("a snapshot covers what was trimmed", LIMIT, || {
        redis::cmd("HEXISTS")
            .arg("test:snapshot")
            .arg("at")
            .query::<bool>(&mut conn)
            .unwrap()
    })
    .await;
    let c = node(&redis, "c", ClusterConfig::default()).await;
    c.wait_ready().await;
    assert_eq!(c.store().len(), 2_000);
    assert_eq!(view(&c, 2_000), view(&a, 2_000));
    assert_eq!(c.store().get(&5).unwrap().activity, Activity::Active);
    assert_eq!(c.store().definition(&lunch.id).unwrap(), lunch);
    assert_eq!(c.store().sources(), a.store().sources());
    assert_eq!(c.store().source(&pbx.id).unwrap(), pbx);
    assert_eq!(c.replica().setting("k").as_deref(), Some("true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_its_data_is_survived() {
    let mut redis = Redis::start();
    let a = node(&redis, "a", ClusterConfig::default()).await;
    let b = node(&redis, "b", ClusterConfig::default()).await;
    a.replica().set(&1, Category::Busy, SetMode::Soft).unwrap();
    b.replica().heartbeat(&2, 1, Activity::Active).unwrap();
    eventually("both see both", LIMIT, || {
        view(&a, 5) == view(&b, 5) && view(&a, 5).len() == 2
    })
    .await;
    redis.restart();
    // Writes while the broker was away or just back: kept and published in order.
    a.replica().heartbeat(&3, 1, Activity::Idle).unwrap();
    b.replica().set(&4, Category::Away, SetMode::Hard).unwrap();
    eventually("converged after the restart", LIMIT, || {
        view(&a, 5) == view(&b, 5) && view(&a, 5).len() == 4
    })
    .await;
    // A node joining after the restart learns what was set before it, from the republish.
    let c = node(&redis, "c", ClusterConfig::default()).await;
    c.wait_ready().await;
    eventually("the joiner converges", LIMIT, || view(&c, 5) == view(&a, 5)).await;
    assert_eq!(c.store().get(&1).unwrap().requested, Category::Busy);
    assert!(a.metrics().republished >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_serves_its_view_and_converges_after_the_heal() {
    let mut redis = Redis::start();
    let a = node(&redis, "a", ClusterConfig::default()).await;
    let b = node(&redis, "b", ClusterConfig::default()).await;
    b.replica().heartbeat(&1, 1, Activity::Active).unwrap();
    eventually("a sees b's session", LIMIT, || {
        a.store()
            .get(&1)
            .is_some_and(|p| p.activity == Activity::Active)
    })
    .await;
    redis.stop();
    // Cut off: both keep serving, and keep what they write.
    a.replica().set(&2, Category::Busy, SetMode::Soft).unwrap();
    b.replica().heartbeat(&3, 1, Activity::Active).unwrap();
    assert_eq!(a.store().get(&2).unwrap().requested, Category::Busy);
    assert_eq!(
        a.store().get(&1).unwrap().activity,
        Activity::Active,
        "the last view stays"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    redis.restart();
    eventually("converged after the heal", LIMIT, || {
        view(&a, 5) == view(&b, 5) && view(&a, 5).len() == 3
    })
    .await;
    assert_eq!(a.store().get(&3).unwrap().activity, Activity::Active);
}

#[tokio::test]
async fn an_unreachable_broker_is_an_error() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    assert!(RedisStreams::connect(&url, "test", 100).await.is_err());
}
