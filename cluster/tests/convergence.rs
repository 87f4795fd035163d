//! The convergence checker: three nodes on a real `redis-server`, random operations on random
//! nodes at random moments, with a node killed and restarted, the broker restarted (losing the
//! stream), and a node's reader paused and resumed. After quiescence every node's full view is
//! identical and equal to the naive last-writer-wins model (`tests/lww`) applied to every event
//! any node published; no write acknowledged by a node that stayed up is lost.
//!
//! Bounded for CI: a few hundred operations, seeded (`CONVERGENCE_SEED` picks another run).

#[path = "../../tests/lww/mod.rs"]
mod lww;
mod support;

use std::sync::Arc;
use std::time::Duration;

use presence_cluster::codec::decode;
use presence_cluster::{Cluster, ClusterConfig, RedisStreams};
use presence_store::replica::Event;
use presence_store::{Activity, Category, NodeId, PresenceStore, SetMode, SourceId, StoreConfig};
use support::Redis;

const USERS: u8 = 12;
const LIMIT: Duration = Duration::from_secs(60);

/// xorshift64*: reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

async fn join(redis: &Redis, name: &str) -> Cluster<u8> {
    let transport = RedisStreams::connect(&redis.url(), "conv", 100_000)
        .await
        .unwrap();
    let store = Arc::new(PresenceStore::new(StoreConfig::default()));
    let config = ClusterConfig {
        name: name.to_owned(),
        record_published: true,
        ..ClusterConfig::default()
    };
    Cluster::join(store, transport, config).await.unwrap()
}

const CATEGORIES: [Category; 5] = [
    Category::Available,
    Category::Busy,
    Category::Away,
    Category::DoNotDisturb,
    Category::OnThePhone,
];

/// `count` random operations on random nodes, with short random pauses.
async fn random_ops(nodes: &[&Cluster<u8>], rng: &mut Rng, count: usize) {
    for _ in 0..count {
        let node = nodes[rng.below(nodes.len() as u64) as usize];
        let r = node.replica();
        let user = rng.below(u64::from(USERS)) as u8;
        let session = rng.below(3);
        let category = CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize];
        let mode = if rng.below(2) == 0 {
            SetMode::Hard
        } else {
            SetMode::Soft
        };
        // Errors (an unknown user for a message) are the store's answers, not failures.
        match rng.below(12) {
            0..=3 => {
                let activity = if rng.below(3) == 0 {
                    Activity::Idle
                } else {
                    Activity::Active
                };
                let _ = r.heartbeat(&user, session, activity);
            }
            4 | 5 => {
                let _ = r.disconnect(&user, session);
            }
            6 | 7 => {
                let _ = r.set(&user, category, mode);
            }
            8 => {
                let _ = r.set_message(&user, ["lunch", "", "in a meeting"][rng.below(3) as usize]);
            }
            9 => {
                let definitions = node.store().definitions();
                let d = &definitions[rng.below(definitions.len() as u64) as usize];
                let default = SourceId::DEFAULT;
                let _ = r.set_source_presence(&user, &default, &d.id, Some("via source"));
            }
            10 => {
                let _ = r.set_definition(&user, &node.store().definitions()[0].id, mode);
            }
            _ => {
                r.remove(&user);
            }
        }
        if rng.below(4) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(4))).await;
        }
    }
}

fn decode_all(entries: &[Vec<u8>]) -> Vec<Event<u8>> {
    entries
        .iter()
        .flat_map(|e| decode::<u8>(e).unwrap().events)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_through_kills_broker_restarts_and_pauses() {
    let seed = std::env::var("CONVERGENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let mut rng = Rng(seed.max(1));
    let mut redis = Redis::start();
    let a = join(&redis, "a").await;
    let b = join(&redis, "b").await;
    let c = join(&redis, "c").await;
    for n in [&a, &b, &c] {
        n.wait_ready().await;
    }
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut down: Vec<NodeId> = Vec::new();

    random_ops(&[&a, &b, &c], &mut rng, 80).await;
    c.pause_reading(true);
    random_ops(&[&a, &b, &c], &mut rng, 80).await;

    // b dies with whatever it had not published (and sessions the others must drop); a new b
    // joins.
    for user in 0..3 {
        b.replica().heartbeat(&user, 9, Activity::Active).unwrap();
    }
    support::eventually("a sees b's sessions before b dies", LIMIT, || {
        (0..3).all(|u| {
            a.store()
                .get(&u)
                .is_some_and(|p| p.activity == Activity::Active)
        })
    })
    .await;
    down.push(b.node().clone());
    entries.extend(b.kill().await);
    random_ops(&[&a, &c], &mut rng, 40).await;
    let b = join(&redis, "b").await;
    b.wait_ready().await;
    random_ops(&[&a, &b, &c], &mut rng, 80).await;

    // The broker restarts empty while c is still paused.
    redis.restart();
    random_ops(&[&a, &b, &c], &mut rng, 80).await;
    c.pause_reading(false);
    random_ops(&[&a, &b, &c], &mut rng, 40).await;

    // Quiescence: every outbox published and every view equal.
    let nodes = [&a, &b, &c];
    let settled = || {
        let published = nodes.iter().all(|n| {
            let m = n.metrics();
            m.queued + m.republished_events == m.published && n.replica().pending() == 0
        });
        let first = lww::views(a.replica(), USERS);
        published
            && nodes
                .iter()
                .all(|n| lww::views(n.replica(), USERS) == first)
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !settled() {
        if tokio::time::Instant::now() > deadline {
            for n in nodes {
                eprintln!("{} {:?}", n.node(), n.metrics());
                for (u, v) in lww::views(n.replica(), USERS) {
                    eprintln!("  {u}: {v:?}");
                }
            }
            panic!("the views never became identical");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for n in nodes {
        entries.extend(n.published_entries());
    }
    let events = decode_all(&entries);
    let expected = lww::model(&events, &down, USERS);
    for n in nodes {
        assert_eq!(
            lww::views(n.replica(), USERS),
            expected,
            "node {} against the model",
            n.node()
        );
    }
    assert!(
        expected.len() >= 3,
        "the run left something to compare: {expected:?}"
    );
    // a and c stayed up: everything they acknowledged was published, so it is in the model
    // and (the views being equal to it) on every node.
    for n in [&a, &c] {
        let m = n.metrics();
        assert_eq!(
            m.queued + m.republished_events,
            m.published,
            "node {}: {m:?}",
            n.node()
        );
        assert!(
            m.republished >= 1,
            "the broker restart made {} republish",
            n.node()
        );
    }
}
