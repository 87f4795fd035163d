//! Shared setup for the benches: sizes and timings from the environment, deterministic user ids,
//! and stores and baselines of N users built the same way, so each group compares like with like.
//!
//! Environment:
//! - `PRESENCE_BENCH_SIZES`: comma-separated user counts (default `10000,100000,1000000`).
//! - `PRESENCE_BENCH_QUICK=1`: short warm-up and measurement and, unless sizes are given, 10k
//!   users only (a smoke run; `cargo bench --no-run` is what CI compiles).
//! - `PRESENCE_BENCH_THREADS`: thread counts of the mixed bench (default `1,2,4,8,16`).
//!
//! Every store runs on a [`ManualClock`] held still, so timings measure the data structures and
//! not the system clock (a `SystemClock` read costs ~20 ns more per logged write or heartbeat).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ahash::RandomState;
use criterion::Criterion;
use dashmap::DashMap;
use parking_lot::RwLock;
use presence_store::{Activity, Category, Key, ManualClock, PresenceStore, SetMode, StoreConfig};

/// The time every bench store starts at (ms since the epoch).
pub const T0: u64 = 1_700_000_000_000;

/// A presence-sized value for the baselines: the same fields as `presence_store::Presence`
/// (24 bytes), which benches cannot build because it is `#[non_exhaustive]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    pub category: Category,
    pub requested: Category,
    pub activity: Activity,
    pub updated_at: u64,
    pub version: u64,
}

impl Value {
    pub fn new(category: Category, updated_at: u64) -> Self {
        Value {
            category,
            requested: category,
            activity: Activity::Active,
            updated_at,
            version: 1,
        }
    }
}

/// The baselines: DashMap with the store's hasher, one parking_lot `RwLock` around a HashMap,
/// and a `BTreeMap` (ordered, single-threaded).
pub type Dash<K> = DashMap<K, Value, RandomState>;
pub type Locked<K> = RwLock<HashMap<K, Value, RandomState>>;
pub type Tree<K> = BTreeMap<K, Value>;

/// Whether this is a quick (smoke) run.
pub fn quick() -> bool {
    std::env::var("PRESENCE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn list(var: &str, default: &str) -> Vec<usize> {
    let raw = std::env::var(var).unwrap_or_else(|_| default.to_string());
    let out: Vec<usize> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{var}: {s:?} is not a number"))
        })
        .collect();
    assert!(!out.is_empty(), "{var} is empty");
    out
}

/// User counts to bench at.
pub fn sizes() -> Vec<usize> {
    let default = if quick() {
        "10000"
    } else {
        "10000,100000,1000000"
    };
    let sizes = list("PRESENCE_BENCH_SIZES", default);
    assert!(
        sizes.iter().all(|&n| n >= 2000),
        "PRESENCE_BENCH_SIZES: each size must be at least 2000 (pages of 1000 from a random start)"
    );
    sizes
}

/// Thread counts of the mixed workload.
pub fn threads() -> Vec<usize> {
    list(
        "PRESENCE_BENCH_THREADS",
        if quick() { "1,2" } else { "1,2,4,8,16" },
    )
}

/// Criterion settings short enough for the whole suite to fit in 10 minutes on 2 cores.
pub fn criterion() -> Criterion {
    let c = Criterion::default().nresamples(10_000).without_plots();
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500))
            .sample_size(10)
    } else {
        c.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20)
    }
}

/// SplitMix64's finalizer: a bijection on `u64`, so distinct inputs give distinct outputs.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small, fast PRNG (xorshift64*), the same for the store and its baselines.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(mix(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (multiply-shift; bias is negligible for bench purposes).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The `i`th user's `u64` id: scrambled, so key order is unrelated to insertion order.
pub fn user_id(i: usize) -> u64 {
    mix(i as u64)
}

/// The `i`th user's `String` id: 17 characters, like Rocket.Chat's ids.
pub fn string_id(i: usize) -> String {
    format!("u{:016x}", user_id(i))
}

pub fn u64_keys(n: usize) -> Vec<u64> {
    (0..n).map(user_id).collect()
}

pub fn string_keys(n: usize) -> Vec<String> {
    (0..n).map(string_id).collect()
}

/// The categories a visible set can cycle through: all but `Undefined` and `Offline`, which
/// stand first and last in `Category::ALL`.
pub const SET_CATEGORIES: &[Category] = Category::ALL.split_at(1).1.split_at(9).0;

/// A stream of `len` random `(key index, category)` writes, replayed by the store and baselines.
pub fn random_writes(n: usize, len: usize, seed: u64) -> Vec<(usize, Category)> {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| {
            (
                rng.below(n),
                SET_CATEGORIES[rng.below(SET_CATEGORIES.len())],
            )
        })
        .collect()
}

/// A stream of `len` random key indexes in `0..n`.
pub fn random_indexes(n: usize, len: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.below(n)).collect()
}

/// An empty store with the default config (automatic shard count, as DashMap's) on a still
/// manual clock.
pub fn new_store<K: Key>() -> (PresenceStore<K>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let store = PresenceStore::with_clock(StoreConfig::default(), clock.clone());
    (store, clock)
}

/// A store of `keys`, each user with one active session (id 1), so it shows `Available`.
pub fn store_with_sessions<K: Key>(keys: &[K]) -> (PresenceStore<K>, Arc<ManualClock>) {
    let (store, clock) = new_store();
    for k in keys {
        store
            .heartbeat(k, 1, Activity::Active)
            .expect("heartbeat on a fresh store");
    }
    assert_eq!(store.len(), keys.len());
    (store, clock)
}

/// A store of `keys` without sessions, each set hard to `Available`.
pub fn store_without_sessions<K: Key>(keys: &[K]) -> (PresenceStore<K>, Arc<ManualClock>) {
    let (store, clock) = new_store();
    for k in keys {
        store
            .set(k, Category::Available, SetMode::Hard)
            .expect("set on a fresh store");
    }
    assert_eq!(store.len(), keys.len());
    (store, clock)
}

pub fn dashmap_of<K: Key>(keys: &[K], updated_at: u64) -> Dash<K> {
    let map = Dash::with_hasher(RandomState::new());
    for k in keys {
        map.insert(k.clone(), Value::new(Category::Available, updated_at));
    }
    map
}

pub fn rwlock_of<K: Key>(keys: &[K], updated_at: u64) -> Locked<K> {
    let mut map = HashMap::with_hasher(RandomState::new());
    for k in keys {
        map.insert(k.clone(), Value::new(Category::Available, updated_at));
    }
    RwLock::new(map)
}

pub fn btree_of<K: Key>(keys: &[K], updated_at: u64) -> Tree<K> {
    keys.iter()
        .map(|k| (k.clone(), Value::new(Category::Available, updated_at)))
        .collect()
}
