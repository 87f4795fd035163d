//! Reads: `get` of a random existing user and `get_many` of 50 random users, against
//! `DashMap::get` (and 50 of them into a `Vec`) and a read of one `RwLock<HashMap>`, copying the
//! presence-sized value out as the store does. `u64` ids, then `String` ids.
//!
//! One group per size and key type, so each report holds the store and its baselines together.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Length of the replayed stream of random reads (a power of two).
const STREAM: usize = 1 << 16;
/// Users per `get_many`.
const MANY: usize = 50;

fn get_u64(c: &mut Criterion, n: usize) {
    let keys = common::u64_keys(n);
    let reads: Vec<u64> = common::random_indexes(n, STREAM + MANY, 3)
        .into_iter()
        .map(|i| keys[i])
        .collect();
    let (store, _clock) = common::store_with_sessions(&keys);
    let dash = common::dashmap_of(&keys, common::T0);
    let locked = common::rwlock_of(&keys, common::T0);

    let mut g = c.benchmark_group(format!("get_u64/{n}"));
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("store_get", |b| {
        b.iter(|| {
            let k = reads[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            black_box(store.get(&k))
        })
    });
    let mut i = 0usize;
    g.bench_function("dashmap_get", |b| {
        b.iter(|| {
            let k = reads[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            black_box(dash.get(&k).map(|v| *v))
        })
    });
    let mut i = 0usize;
    g.bench_function("rwlock_hashmap_get", |b| {
        b.iter(|| {
            let k = reads[i & (STREAM - 1)];
            i = i.wrapping_add(1);
            black_box(locked.read().get(&k).copied())
        })
    });
    g.throughput(Throughput::Elements(MANY as u64));
    let mut i = 0usize;
    g.bench_function("store_get_many50", |b| {
        b.iter(|| {
            let at = (i.wrapping_mul(MANY)) & (STREAM - 1);
            i = i.wrapping_add(1);
            let got = store.get_many(&reads[at..at + MANY]);
            debug_assert_eq!(got.len(), MANY);
            black_box(got)
        })
    });
    let mut i = 0usize;
    g.bench_function("dashmap_get_many50", |b| {
        b.iter(|| {
            let at = (i.wrapping_mul(MANY)) & (STREAM - 1);
            i = i.wrapping_add(1);
            let got: Vec<(u64, common::Value)> = reads[at..at + MANY]
                .iter()
                .filter_map(|k| Some((*k, *dash.get(k)?)))
                .collect();
            black_box(got)
        })
    });
    g.finish();
    assert_eq!(store.get_many(&reads[..MANY]).len(), MANY);
}

fn get_string(c: &mut Criterion, n: usize) {
    let keys = common::string_keys(n);
    let reads = common::random_indexes(n, STREAM, 4);
    let (store, _clock) = common::store_with_sessions(&keys);
    let dash = common::dashmap_of(&keys, common::T0);

    let mut g = c.benchmark_group(format!("get_string/{n}"));
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("store_get", |b| {
        b.iter(|| {
            let k = &keys[reads[i & (STREAM - 1)]];
            i = i.wrapping_add(1);
            black_box(store.get(k))
        })
    });
    let mut i = 0usize;
    g.bench_function("dashmap_get", |b| {
        b.iter(|| {
            let k = &keys[reads[i & (STREAM - 1)]];
            i = i.wrapping_add(1);
            black_box(dash.get(k).map(|v| *v))
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    for n in common::sizes() {
        get_u64(c, n);
        get_string(c, n);
    }
}

criterion_group! {
    name = get;
    config = common::criterion();
    targets = benches
}
criterion_main!(get);
