//! Writes on existing users: `set` (random user, random visible category, hard) and a no-op
//! `heartbeat` (an active session staying active), against `DashMap::insert` and an insert into
//! one `RwLock<HashMap>` of a presence-sized value. `u64` ids, then `String` ids (whose baselines
//! update in place through `get_mut`, the strongest way to write an existing `String` key).
//!
//! One group per size and key type, so each report holds the store and its baselines together.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use presence_store::{Activity, SetMode};

use common::{Value, T0};

/// Length of the replayed stream of random writes (a power of two).
const STREAM: usize = 1 << 16;

fn set_u64(c: &mut Criterion, n: usize) {
    let keys = common::u64_keys(n);
    let writes: Vec<(u64, presence_store::Category)> = common::random_writes(n, STREAM, 1)
        .into_iter()
        .map(|(i, cat)| (keys[i], cat))
        .collect();
    let (store, _clock) = common::store_with_sessions(&keys);
    let dash = common::dashmap_of(&keys, T0);
    let locked = common::rwlock_of(&keys, T0);

    let mut g = c.benchmark_group(format!("set_u64/{n}"));
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("store_set", |b| {
        b.iter(|| {
            let (k, cat) = writes[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            black_box(store.set(&k, cat, SetMode::Hard))
        })
    });
    let mut i = 0usize;
    g.bench_function("store_heartbeat_noop", |b| {
        b.iter(|| {
            let (k, _) = writes[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            black_box(store.heartbeat(&k, 1, Activity::Active))
        })
    });
    let mut i = 0usize;
    g.bench_function("dashmap_insert", |b| {
        b.iter(|| {
            let (k, cat) = writes[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            black_box(dash.insert(k, Value::new(cat, T0)))
        })
    });
    let mut i = 0usize;
    g.bench_function("rwlock_hashmap_insert", |b| {
        b.iter(|| {
            let (k, cat) = writes[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            black_box(locked.write().insert(k, Value::new(cat, T0)))
        })
    });
    g.finish();
    // Every write hit an existing user.
    assert_eq!(store.len(), n);
    assert_eq!(dash.len(), n);
    assert_eq!(locked.read().len(), n);
}

fn set_string(c: &mut Criterion, n: usize) {
    let keys = common::string_keys(n);
    let writes = common::random_writes(n, STREAM, 2);
    let (store, _clock) = common::store_with_sessions(&keys);
    let dash = common::dashmap_of(&keys, T0);
    let locked = common::rwlock_of(&keys, T0);

    let mut g = c.benchmark_group(format!("set_string/{n}"));
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("store_set", |b| {
        b.iter(|| {
            let (k, cat) = writes[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            black_box(store.set(&keys[k], cat, SetMode::Hard))
        })
    });
    let mut i = 0usize;
    g.bench_function("dashmap_update", |b| {
        b.iter(|| {
            let (k, cat) = writes[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            if let Some(mut v) = dash.get_mut(&keys[k]) {
                *v = Value::new(cat, T0);
            }
        })
    });
    let mut i = 0usize;
    g.bench_function("rwlock_hashmap_update", |b| {
        b.iter(|| {
            let (k, cat) = writes[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            if let Some(v) = locked.write().get_mut(&keys[k]) {
                *v = Value::new(cat, T0);
            }
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    for n in common::sizes() {
        set_u64(c, n);
        set_string(c, n);
    }
}

criterion_group! {
    name = set;
    config = common::criterion();
    targets = benches
}
criterion_main!(set);
