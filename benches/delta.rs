//! `changes_since` returning exactly 100 changed users, by time (Rocket.Chat's `from`) and by
//! cursor, on a loaded store, against a scan of every user keeping those with
//! `updated_at >= from` (what Rocket.Chat does), over a DashMap and over one `RwLock<HashMap>`.
//!
//! Setup: N users each with an active session; the clock moves on 1 s, the time and cursor are
//! taken, then 100 distinct random users are set hard to a category they do not show, so each is
//! a visible, logged change well inside the 10-minute window. The setup asserts that every
//! answer holds exactly those 100 users and is not a full fallback.
//!
//! One group per size, so each report holds the store and its baselines together.

mod common;

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use presence_store::{Clock, SetMode, Since};

use common::{Value, T0};

const CHANGES: usize = 100;

fn delta(c: &mut Criterion, n: usize) {
    let keys = common::u64_keys(n);
    let (store, clock) = common::store_with_sessions(&keys);
    let dash = common::dashmap_of(&keys, T0);
    let locked = common::rwlock_of(&keys, T0);

    clock.advance(Duration::from_secs(1));
    let from = clock.now_ms();
    let cursor = store.cursor();
    let mut rng = common::Rng::new(6);
    let mut changed = HashSet::new();
    while changed.len() < CHANGES {
        changed.insert(keys[rng.below(n)]);
    }
    for (j, k) in changed.iter().enumerate() {
        // Every user shows Available; none of these is Available.
        let cat = common::SET_CATEGORIES[1 + j % (common::SET_CATEGORIES.len() - 1)];
        let p = store.set(k, cat, SetMode::Hard).expect("set");
        assert_eq!(p.category, cat);
        dash.insert(*k, Value::new(cat, from));
        locked.write().insert(*k, Value::new(cat, from));
    }

    for since in [Since::Time(from), Since::Cursor(cursor.clone())] {
        let d = store.changes_since(&since);
        assert!(!d.full, "{since:?} fell back to full: {:?}", d.reason);
        assert_eq!(d.users.len(), CHANGES, "{since:?}");
        assert!(d.users.iter().all(|(k, _)| changed.contains(k)));
    }
    assert_eq!(scan_dash(&dash, from).len(), CHANGES);
    assert_eq!(scan_locked(&locked, from).len(), CHANGES);

    let mut g = c.benchmark_group(format!("delta100/{n}"));
    // The scans take milliseconds per call at 1M users.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.bench_function("store_since_time", |b| {
        let since = Since::Time(from);
        b.iter(|| black_box(store.changes_since(&since)))
    });
    g.bench_function("store_since_cursor", |b| {
        let since = Since::Cursor(cursor.clone());
        b.iter(|| black_box(store.changes_since(&since)))
    });
    g.bench_function("dashmap_scan", |b| {
        b.iter(|| black_box(scan_dash(&dash, from)))
    });
    g.bench_function("rwlock_hashmap_scan", |b| {
        b.iter(|| black_box(scan_locked(&locked, from)))
    });
    g.finish();
    // Nothing moved the clock out of the window meanwhile.
    assert_eq!(clock.now_ms(), from);
}

fn scan_dash(map: &common::Dash<u64>, from: u64) -> Vec<(u64, Value)> {
    map.iter()
        .filter(|e| e.value().updated_at >= from)
        .map(|e| (*e.key(), *e.value()))
        .collect()
}

fn scan_locked(map: &common::Locked<u64>, from: u64) -> Vec<(u64, Value)> {
    map.read()
        .iter()
        .filter(|(_, v)| v.updated_at >= from)
        .map(|(k, v)| (*k, *v))
        .collect()
}

fn benches(c: &mut Criterion) {
    for n in common::sizes() {
        delta(c, n);
    }
}

criterion_group! {
    name = delta_benches;
    config = common::criterion();
    targets = benches
}
criterion_main!(delta_benches);
