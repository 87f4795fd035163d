//! The convergence checker: three nodes on a real `redis-server`, random operations (presence
//! and organization: definitions, sources, settings) on random nodes at random moments, with a node killed and restarted, the broker restarted (losing the
//! stream), and a node's reader paused and resumed. After quiescence every node's full view
//! (presences, definitions, sources, settings) is identical and equal to the naive
//! last-writer-wins model (`tests/lww`) applied to every event any node published; no write acknowledged by a node that stayed up is lost.
//!
//! Bounded for CI: a few hundred operations, seeded (`CONVERGENCE_SEED` picks another run).

#[path = "../../tests/lww/mod.rs"]
mod lww;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_cluster::codec::decode;
use presence_cluster::{Cluster, ClusterConfig, RedisStreams};
use presence_store::replica::Event;
use presence_store::{
    Activity, Category, DefinitionUpdate, NodeId, PresenceStore, Replica, SetMode, SourceId,
    SourceUpdate, StoreConfig, SystemPresence,
};
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
        match rng.below(15) {
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
            11 => {
                r.remove(&user);
            }
            12 => definition_op(node, rng),
            13 => source_op(node, rng),
            _ => {
                let key = ["rocketchat.x", "genesys.y"][rng.below(2) as usize];
                let value = ["true", "false", "{\"a\":1}"][rng.below(3) as usize];
                r.set_setting(key, value);
            }
        }
        if rng.below(4) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(4))).await;
        }
    }
}

/// Creates, updates or deletes an organization definition, through `node`.
fn definition_op(node: &Cluster<u8>, rng: &mut Rng) {
    let r = node.replica();
    let org: Vec<_> = node
        .store()
        .definitions()
        .into_iter()
        .filter(|d| !d.system)
        .collect();
    let label = ["Lunch", "Gym", "Dentist"][rng.below(3) as usize].to_owned();
    let labels = BTreeMap::from([("en_US".to_owned(), label)]);
    let pick = rng.below(org.len().max(1) as u64) as usize;
    match rng.below(3) {
        _ if org.is_empty() => {
            let _ = r.create_definition(SystemPresence::Meal, labels);
        }
        0 => {
            let _ = r.create_definition(SystemPresence::Away, labels);
        }
        1 => {
            let update = DefinitionUpdate {
                labels: Some(labels),
                deactivated: Some(rng.below(2) == 0),
                ..Default::default()
            };
            let _ = r.update_definition(&org[pick].id, update);
        }
        _ => {
            let _ = r.delete_definition(&org[pick].id);
        }
    }
}

/// Creates, updates or deletes a source (never the default), through `node`.
fn source_op(node: &Cluster<u8>, rng: &mut Rng) {
    let r = node.replica();
    let org: Vec<_> = node
        .store()
        .sources()
        .into_iter()
        .filter(|s| !s.id.is_default())
        .collect();
    let name = ["Calendar", "PBX", "Teams"][rng.below(3) as usize];
    let pick = rng.below(org.len().max(1) as u64) as usize;
    match rng.below(3) {
        _ if org.is_empty() => {
            let _ = r.create_source(name);
        }
        0 => {
            let _ = r.create_source(name);
        }
        1 => {
            let update = SourceUpdate {
                name: Some(name.to_owned()),
                deactivated: Some(rng.below(2) == 0),
            };
            let _ = r.update_source(&org[pick].id, update);
        }
        _ => {
            let _ = r.delete_source(&org[pick].id);
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
        let first_org = lww::org_view(a.replica());
        published
            && nodes.iter().all(|n| {
                lww::views(n.replica(), USERS) == first && lww::org_view(n.replica()) == first_org
            })
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !settled() {
        if tokio::time::Instant::now() > deadline {
            for n in nodes {
                eprintln!("{} {:?}", n.node(), n.metrics());
                for (u, v) in lww::views(n.replica(), USERS) {
                    eprintln!("  {u}: {v:?}");
                }
                eprintln!("  org: {:?}", lww::org_view(n.replica()));
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
    let fresh: Replica<u8> = Replica::new(
        Arc::new(PresenceStore::new(StoreConfig::default())),
        NodeId::new("fresh").unwrap(),
    );
    let expected_org = lww::org_model(&events, &lww::org_view(&fresh));
    for n in nodes {
        assert_eq!(
            lww::org_view(n.replica()),
            expected_org,
            "node {}'s organization against the model",
            n.node()
        );
    }
    let (definitions, sources, settings) = &expected_org;
    assert!(
        !definitions.is_empty() && sources.len() > 1 && !settings.is_empty(),
        "the run left organization state to compare: {expected_org:?}"
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
