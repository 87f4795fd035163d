//! A mixed workload at 1, 2, 4, 8 and 16 threads, in operations per second (criterion's
//! `elem/s`), on the largest size of `PRESENCE_BENCH_SIZES`, every user with one active session.
//!
//! Per 10,000 operations, drawn at random per thread:
//! - `store_mixed`: 1 page of 1000 from a random user, 10 deltas from the thread's own cursor
//!   (each advancing it), 500 hard sets of a random category, 500 heartbeats of the user's
//!   session (no-ops), and 8,989 gets: 90% reads, 10% writes, plus the occasional delta and page.
//! - `store_90_10`, `dashmap_90_10`, `rwlock_hashmap_90_10`: 1,000 writes (set or heartbeat for
//!   the store, `insert` for the maps) and 9,000 gets: the same op mix without deltas and pages.
//!
//! Threads beyond the machine's cores are measured all the same; they show how each design
//! behaves oversubscribed here and scale on a machine with the cores.

mod common;

use std::hint::black_box;
use std::ops::Bound;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use presence_store::{Activity, PageQuery, PresenceStore, SetMode, Since};

use common::{Rng, Value, SET_CATEGORIES, T0};

/// What one drawn operation is.
#[derive(Clone, Copy)]
enum Op {
    Page,
    Delta,
    Set,
    Heartbeat,
    Get,
}

/// Draws an operation of the mix, per 10,000: page 1, delta 10, set 500, heartbeat 500.
fn draw(rng: &mut Rng, with_reads_across: bool) -> Op {
    match rng.below(10_000) {
        0 if with_reads_across => Op::Page,
        1..=10 if with_reads_across => Op::Delta,
        11..=510 => Op::Set,
        511..=1010 => Op::Heartbeat,
        _ => Op::Get,
    }
}

/// Runs `work(thread, ops)` on `threads` threads started together; returns the time for
/// `iters` operations (scaled from the `threads x ceil(iters / threads)` actually run).
fn run<F: Fn(usize, u64) + Sync>(threads: usize, iters: u64, work: F) -> Duration {
    let per = iters.div_ceil(threads as u64).max(1);
    let barrier = Barrier::new(threads + 1);
    let mut start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, work) = (&barrier, &work);
            s.spawn(move || {
                barrier.wait();
                work(t, per);
            });
        }
        barrier.wait();
        start = Instant::now();
    });
    let elapsed = start.elapsed();
    elapsed.mul_f64(iters as f64 / (per * threads as u64) as f64)
}

fn store_work(store: &PresenceStore<u64>, keys: &[u64], seed: u64, ops: u64, across: bool) {
    let mut rng = Rng::new(seed);
    let mut cursor = store.cursor();
    for _ in 0..ops {
        let k = keys[rng.below(keys.len())];
        match draw(&mut rng, across) {
            Op::Page => {
                let q = PageQuery {
                    start: Bound::Included(k),
                    limit: Some(1000),
                    include_offline: true,
                };
                black_box(store.page(&q).ok());
            }
            Op::Delta => {
                let d = store.changes_since(&Since::Cursor(cursor));
                debug_assert!(!d.full);
                cursor = d.cursor;
                black_box(d.users);
            }
            Op::Set => {
                let cat = SET_CATEGORIES[rng.below(SET_CATEGORIES.len())];
                black_box(store.set(&k, cat, SetMode::Hard).ok());
            }
            Op::Heartbeat => {
                black_box(store.heartbeat(&k, 1, Activity::Active).ok());
            }
            Op::Get => {
                black_box(store.get(&k));
            }
        }
    }
}

fn mixed(c: &mut Criterion) {
    let n = common::sizes()
        .into_iter()
        .max()
        .expect("at least one size");
    let keys = common::u64_keys(n);
    let (store, _clock) = common::store_with_sessions(&keys);
    let dash = common::dashmap_of(&keys, T0);
    let locked = common::rwlock_of(&keys, T0);
    let mut seed = 0u64;
    let mut next_seed = move || {
        seed += 1;
        seed
    };

    let mut g = c.benchmark_group(format!("mixed/{n}"));
    g.throughput(Throughput::Elements(1));
    for threads in common::threads() {
        g.bench_function(BenchmarkId::new("store_mixed", threads), |b| {
            b.iter_custom(|iters| {
                let base = next_seed() << 8;
                run(threads, iters, |t, ops| {
                    store_work(&store, &keys, base + t as u64, ops, true)
                })
            })
        });
        g.bench_function(BenchmarkId::new("store_90_10", threads), |b| {
            b.iter_custom(|iters| {
                let base = next_seed() << 8;
                run(threads, iters, |t, ops| {
                    store_work(&store, &keys, base + t as u64, ops, false)
                })
            })
        });
        g.bench_function(BenchmarkId::new("dashmap_90_10", threads), |b| {
            b.iter_custom(|iters| {
                let base = next_seed() << 8;
                run(threads, iters, |t, ops| {
                    let mut rng = Rng::new(base + t as u64);
                    for _ in 0..ops {
                        let k = keys[rng.below(keys.len())];
                        match draw(&mut rng, false) {
                            Op::Set | Op::Heartbeat => {
                                let cat = SET_CATEGORIES[rng.below(SET_CATEGORIES.len())];
                                black_box(dash.insert(k, Value::new(cat, T0)));
                            }
                            _ => {
                                black_box(dash.get(&k).map(|v| *v));
                            }
                        }
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("rwlock_hashmap_90_10", threads), |b| {
            b.iter_custom(|iters| {
                let base = next_seed() << 8;
                run(threads, iters, |t, ops| {
                    let mut rng = Rng::new(base + t as u64);
                    for _ in 0..ops {
                        let k = keys[rng.below(keys.len())];
                        match draw(&mut rng, false) {
                            Op::Set | Op::Heartbeat => {
                                let cat = SET_CATEGORIES[rng.below(SET_CATEGORIES.len())];
                                black_box(locked.write().insert(k, Value::new(cat, T0)));
                            }
                            _ => {
                                black_box(locked.read().get(&k).copied());
                            }
                        }
                    }
                })
            })
        });
    }
    g.finish();
    assert_eq!(store.len(), n);
}

criterion_group! {
    name = mixed_benches;
    config = common::criterion();
    targets = mixed
}
criterion_main!(mixed_benches);
