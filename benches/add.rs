//! Adding users: one by one (a heartbeat each, a user connecting), in bulk
//! (`heartbeat_many`, a restart or a mass reconnect) and by `restore` of a snapshot, against
//! `DashMap::insert` of new keys into an empty map, and `BTreeMap::insert` (an ordered map's
//! insert, for what key order costs on its own), all in one group per size so one report holds
//! the ratios. Every routine starts from an empty store or map, built outside the timing,
//! and what it fills is dropped outside the timing too.
//!
//! Targets (issue 16): one by one <= 2x `DashMap::insert` of a new key; restoring 1M users >= 3x
//! faster than adding them one by one.

mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use presence_store::{Activity, ManualClock, PresenceStore, StoreConfig};

use common::{Dash, Tree, Value, T0};

fn add_u64(c: &mut Criterion, n: usize) {
    let keys = common::u64_keys(n);
    let (full, _clock) = common::store_with_sessions(&keys);
    let snapshot = full.snapshot();
    drop(full);
    let empty = || {
        let clock = Arc::new(ManualClock::new(T0));
        PresenceStore::<u64>::with_clock(StoreConfig::default(), clock)
    };
    let shards = StoreConfig::default().shard_count();

    let mut g = c.benchmark_group(format!("add_u64/{n}"));
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function("store_heartbeat_one_by_one", |b| {
        b.iter_batched(
            empty,
            |store| {
                for k in &keys {
                    let _ = store.heartbeat(k, 1, Activity::Active);
                }
                store
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("store_heartbeat_many", |b| {
        b.iter_batched(
            empty,
            |store| {
                let _ = store.heartbeat_many(keys.iter().map(|&k| (k, 1, Activity::Active)));
                store
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("store_restore", |b| {
        b.iter_batched(
            || snapshot.clone(),
            |snapshot| {
                let clock = Arc::new(ManualClock::new(T0));
                PresenceStore::restore_with_clock(StoreConfig::default(), clock, snapshot)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("dashmap_insert_new", |b| {
        b.iter_batched(
            || Dash::with_hasher_and_shard_amount(ahash::RandomState::new(), shards),
            |dash| {
                for &k in &keys {
                    dash.insert(k, Value::new(presence_store::Category::Available, T0));
                }
                dash
            },
            BatchSize::PerIteration,
        )
    });
    // An ordered map's insert: what keeping users in key order costs on its own.
    g.bench_function("btreemap_insert_new", |b| {
        b.iter_batched(
            Tree::new,
            |mut tree| {
                for &k in &keys {
                    tree.insert(k, Value::new(presence_store::Category::Available, T0));
                }
                tree
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    for n in common::sizes() {
        add_u64(c, n);
    }
}

criterion_group! {
    name = add;
    config = common::criterion();
    targets = benches
}
criterion_main!(add);
