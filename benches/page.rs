//! A page of 1000 users in key order from a random start: the store's merged page against
//! "collect all, sort, slice" over a DashMap (what Symphony's docs say their endpoint does) and
//! one `BTreeMap::range(start..).take(1000)` (the floor: one ordered index, no shards, no lock).
//! Each answer is a `Vec` of (key, presence-sized value), so all three produce the same output.
//!
//! One group per size, so each report holds the store and its baselines together.

mod common;

use std::hint::black_box;
use std::ops::Bound;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use presence_store::PageQuery;

use common::{Value, T0};

const PAGE: usize = 1000;
/// Number of random starts replayed (a power of two).
const STARTS: usize = 1 << 10;

fn page(c: &mut Criterion, n: usize) {
    let keys = common::u64_keys(n);
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    // Random starts with at least a full page after them.
    let starts: Vec<u64> = common::random_indexes(n - PAGE, STARTS, 5)
        .into_iter()
        .map(|i| sorted[i])
        .collect();
    let (store, _clock) = common::store_with_sessions(&keys);
    let dash = common::dashmap_of(&keys, T0);
    let tree = common::btree_of(&keys, T0);

    // The three agree on what a page is.
    let q = PageQuery::starting_at(starts[0]).with_limit(PAGE);
    let page = store.page(&q).expect("valid page");
    let want: Vec<u64> = tree
        .range(starts[0]..)
        .take(PAGE)
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(page.items.len(), PAGE);
    assert_eq!(page.items.iter().map(|(k, _)| *k).collect::<Vec<_>>(), want);
    assert_eq!(collect_sort_slice(&dash, starts[0]).len(), PAGE);

    let mut g = c.benchmark_group(format!("page1000/{n}"));
    // The collect-and-sort baseline takes up to a second per call at 1M users.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.throughput(Throughput::Elements(PAGE as u64));
    let mut i = 0usize;
    g.bench_function("store_page", |b| {
        b.iter(|| {
            let start = starts[i & (STARTS - 1)];
            i = i.wrapping_add(1);
            let q = PageQuery {
                start: Bound::Included(start),
                limit: Some(PAGE),
                include_offline: true,
            };
            black_box(store.page(&q))
        })
    });
    let mut i = 0usize;
    g.bench_function("btreemap_range", |b| {
        b.iter(|| {
            let start = starts[i & (STARTS - 1)];
            i = i.wrapping_add(1);
            let items: Vec<(u64, Value)> = tree
                .range(start..)
                .take(PAGE)
                .map(|(k, v)| (*k, *v))
                .collect();
            black_box(items)
        })
    });
    let mut i = 0usize;
    g.bench_function("dashmap_collect_sort_slice", |b| {
        b.iter(|| {
            let start = starts[i & (STARTS - 1)];
            i = i.wrapping_add(1);
            black_box(collect_sort_slice(&dash, start))
        })
    });
    g.finish();
}

/// Every user copied out, sorted by key, and the page sliced from it.
fn collect_sort_slice(map: &common::Dash<u64>, start: u64) -> Vec<(u64, Value)> {
    let mut all: Vec<(u64, Value)> = map.iter().map(|e| (*e.key(), *e.value())).collect();
    all.sort_unstable_by_key(|&(k, _)| k);
    let from = all.partition_point(|&(k, _)| k < start);
    all[from..].iter().take(PAGE).copied().collect()
}

fn benches(c: &mut Criterion) {
    for n in common::sizes() {
        page(c, n);
    }
}

criterion_group! {
    name = page_benches;
    config = common::criterion();
    targets = benches
}
criterion_main!(page_benches);
