//! Measures the replication figures of BENCHMARKS.md on this machine: three nodes in one
//! process, each its own store and cluster tasks, over a `redis-server` it starts on a free
//! loopback port (persistence off). Baselines are measured in the same run.
//!
//! ```text
//! cargo run --release -p presence-cluster --example figures [-- USERS_FOR_JOIN]
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use presence_cluster::codec::{decode, encode};
use presence_cluster::{Cluster, ClusterConfig, RedisStreams};
use presence_store::replica::{Event, Op, SessionState};
use presence_store::{
    Activity, Category, Hlc, NodeId, PresenceStore, Replica, SetMode, Since, StoreConfig,
};
use support::Redis;

const MAX_LEN: usize = 100_000;

async fn join(redis: &Redis, name: &str) -> Cluster<u64> {
    let transport = RedisStreams::connect(&redis.url(), "fig", MAX_LEN)
        .await
        .expect("connect");
    let store = Arc::new(PresenceStore::new(StoreConfig::default()));
    let config = ClusterConfig {
        name: name.to_owned(),
        ..ClusterConfig::default()
    };
    Cluster::join(store, transport, config).await.expect("join")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Some(start.elapsed())
}

/// Write-to-visible latency at `rate` writes/s for `secs` seconds: writes on `a`, seen by
/// polling `b`'s delta every millisecond.
async fn write_to_visible(a: &Cluster<u64>, b: &Cluster<u64>, rate: u64, secs: u64, base: u64) {
    let total = (rate * secs) as usize;
    let sent: Arc<parking_lot::Mutex<Vec<Option<Instant>>>> =
        Arc::new(parking_lot::Mutex::new(vec![None; total]));
    let b_store = b.store().clone();
    let sent_w = sent.clone();
    let observer = tokio::spawn(async move {
        let mut cursor = b_store.cursor();
        let mut seen = vec![None; total];
        let mut count = 0;
        let start = Instant::now();
        while count < total && start.elapsed() < Duration::from_secs(secs + 20) {
            let delta = b_store.changes_since(&Since::Cursor(cursor));
            let now = Instant::now();
            for (user, _) in &delta.users {
                if let Some(i) = user.checked_sub(base).map(|i| i as usize) {
                    if i < total && seen[i].is_none() {
                        seen[i] = Some(now);
                        count += 1;
                    }
                }
            }
            cursor = delta.cursor;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let sent = sent_w.lock();
        let mut lat: Vec<Duration> = seen
            .iter()
            .zip(sent.iter())
            .filter_map(|(s, t)| Some(s.as_ref()?.duration_since(*t.as_ref()?)))
            .collect();
        lat.sort();
        (lat, count)
    });
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let per_tick = (rate / 1000).max(1) as usize;
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        tick.tick().await;
        // Catch up if the timer fell behind, so the offered rate holds.
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as usize).min(total);
        let n = due.saturating_sub(i).max(per_tick).min(total - i);
        for _ in 0..n {
            let user = base + i as u64;
            sent.lock()[i] = Some(Instant::now());
            let _ = a.replica().set(&user, Category::Busy, SetMode::Soft);
            i += 1;
        }
    }
    let offered = total as f64 / start.elapsed().as_secs_f64();
    let (lat, count) = observer.await.expect("observer");
    println!(
        "write-to-visible at {offered:.0} writes/s offered ({count}/{total} seen): p50 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
}

/// Baseline: raw Redis XADD then XREAD BLOCK round trip on the same server, one at a time.
async fn redis_round_trip(redis: &Redis) {
    use presence_cluster::{Position, Transport};
    let t = RedisStreams::connect(&redis.url(), "rtt", 10_000)
        .await
        .expect("connect");
    let mut at = Position::start();
    let mut lat = Vec::new();
    for _ in 0..2_000 {
        let start = Instant::now();
        let pos = t.publish(vec![0u8; 16]).await.expect("publish");
        let got = t
            .read(&at, 10, Duration::from_millis(100))
            .await
            .expect("read");
        lat.push(start.elapsed());
        at = got.last().map(|(p, _)| p.clone()).unwrap_or(pos);
    }
    lat.sort();
    println!(
        "baseline: bare XADD + XREAD round trip: p50 {:?}  p99 {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
}

/// Remote events applied per second by one replica, with no network: the core's ceiling.
fn apply_rate() {
    let origin = NodeId::new("origin/0").expect("node id");
    let n = 500_000u64;
    let events: Vec<Event<u64>> = (0..n)
        .map(|i| Event {
            origin: origin.clone(),
            stamp: Hlc((1_700_000_000_000 << 16) + i),
            op: if i % 2 == 0 {
                Op::Set {
                    user: i,
                    category: Category::Busy,
                    mode: SetMode::Soft,
                    definition: None,
                }
            } else {
                Op::Session {
                    user: i,
                    session: 1,
                    state: SessionState::Active,
                }
            },
        })
        .collect();
    let bytes: Vec<Vec<u8>> = events.chunks(512).map(|c| encode(&origin, 0, c)).collect();
    let size: usize = bytes.iter().map(Vec::len).sum();
    println!(
        "bytes per event, half sets and half session opens of u64 users in batches of 512: {:.1}",
        size as f64 / n as f64
    );
    let store = Arc::new(PresenceStore::new(StoreConfig::default()));
    let replica = Replica::new(store.clone(), NodeId::new("me/0").expect("node id"));
    let start = Instant::now();
    for b in &bytes {
        let d = decode::<u64>(b).expect("decode");
        replica.apply(&d.events);
    }
    let took = start.elapsed();
    println!(
        "remote events applied per second by one replica (decode + apply, one thread): {:.0}",
        n as f64 / took.as_secs_f64()
    );
    // Baseline in the same run: the same writes straight into a store.
    let plain: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
    let start = Instant::now();
    for i in 0..n {
        if i % 2 == 0 {
            let _ = plain.set(&i, Category::Busy, SetMode::Soft);
        } else {
            let _ = plain.heartbeat(&i, 1, Activity::Active);
        }
    }
    println!(
        "baseline: the same writes straight into a store, one thread: {:.0}/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let join_users: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    apply_rate();
    let mut redis = Redis::start();
    redis_round_trip(&redis).await;
    let a = join(&redis, "a").await;
    let b = join(&redis, "b").await;
    let c = join(&redis, "c").await;
    for n in [&a, &b, &c] {
        n.wait_ready().await;
    }
    write_to_visible(&a, &b, 10_000, 3, 10_000_000).await;
    let m = a.metrics();
    println!(
        "bytes per event in the stream (the run above, as published): {:.1} ({} events in {} entries)",
        m.bytes_published as f64 / m.published.max(1) as f64,
        m.published,
        m.entries_published
    );

    // A killed node's sessions, gone from the others.
    for user in 0..1_000u64 {
        let _ = c.replica().heartbeat(&user, 1, Activity::Active);
    }
    until(Duration::from_secs(20), || {
        (0..1_000u64).all(|u| {
            b.store()
                .get(&u)
                .is_some_and(|p| p.activity == Activity::Active)
        })
    })
    .await;
    let killed = Instant::now();
    c.kill().await;
    let gone = until(Duration::from_secs(30), || {
        (0..1_000u64).all(|u| {
            b.store()
                .get(&u)
                .is_some_and(|p| p.activity == Activity::Offline)
        })
    })
    .await;
    println!(
        "a killed node's 1,000 sessions gone from another node: {:?} (liveness TTL 3 s, checked every 1 s)",
        gone.map(|_| killed.elapsed())
    );

    // Converged after the broker comes back: a write made while it was away reaches the other
    // node, which also re-reads the new stream from its start.
    redis.stop();
    let _ = a.replica().set(&42, Category::InAMeeting, SetMode::Soft);
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    let back = Instant::now();
    let converged = until(Duration::from_secs(30), || {
        b.store()
            .get(&42)
            .is_some_and(|p| p.requested == Category::InAMeeting)
    })
    .await;
    println!(
        "converged after the broker came back empty (a write made while it was down, visible on the other node): {:?}",
        converged.map(|_| back.elapsed())
    );

    // A new node ready with many users in the cluster.
    let start = Instant::now();
    for user in 0..join_users {
        let _ = a
            .replica()
            .set(&(20_000_000 + user), Category::Busy, SetMode::Soft);
    }
    until(Duration::from_secs(600), || {
        let m = a.metrics();
        a.replica().pending() == 0 && m.queued + m.republished_events == m.published
    })
    .await;
    println!(
        "(loading {join_users} users through node a and publishing them took {:?})",
        start.elapsed()
    );
    let start = Instant::now();
    let d = join(&redis, "d").await;
    d.wait_ready().await;
    let ready = start.elapsed();
    println!(
        "a new node ready with {} users in the cluster: {ready:?} ({} events applied, {:.0} events/s through Redis)",
        d.store().len(),
        d.metrics().applied,
        d.metrics().applied as f64 / ready.as_secs_f64()
    );
}
