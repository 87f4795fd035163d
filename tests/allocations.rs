//! The hot paths allocate nothing they do not return: a no-op heartbeat, a repeated set and a
//! `get` allocate nothing at all; an idle subscriber holds under 1 KiB whatever its capacity.
//! Counted with a global allocator wrapper, on this thread only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use presence_store::{
    Activity, Category, Event, ManualClock, PresenceStore, SetMode, StoreConfig, SubscribeOptions,
    Subscription,
};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated and not yet freed by this thread (freeing another thread's memory may
    /// take it below zero).
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn add_live(bytes: usize, sign: isize) {
    let _ = LIVE_BYTES.try_with(|n| n.set(n.get() + sign * bytes as isize));
}

// SAFETY: defers every call to `System`, only counting allocations on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        add_live(layout.size(), 1);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add_live(layout.size(), -1);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        add_live(new_size, 1);
        add_live(layout.size(), -1);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn no_op_writes_and_reads_allocate_nothing() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store: PresenceStore<u64> =
        PresenceStore::with_clock(StoreConfig::default().with_shards(4), clock);
    for u in 0..1000 {
        store.heartbeat(&u, 1, Activity::Active).unwrap();
        store.heartbeat(&u, 2, Activity::Idle).unwrap(); // a second session, in the side table
        store.set(&u, Category::Busy, SetMode::Soft).unwrap();
    }
    let n = allocations_in(|| {
        for u in 0..1000 {
            store.heartbeat(&u, 1, Activity::Active).unwrap();
            store.heartbeat(&u, 2, Activity::Idle).unwrap();
            store.set(&u, Category::Busy, SetMode::Soft).unwrap();
            assert!(store.get(&u).is_some());
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn strings_keys_are_cloned_only_when_a_user_is_added() {
    let store: PresenceStore<String> = PresenceStore::new(StoreConfig::default().with_shards(2));
    let users: Vec<String> = (0..100).map(|u| format!("user-{u}")).collect();
    for u in &users {
        store.heartbeat(u, 1, Activity::Active).unwrap();
    }
    let n = allocations_in(|| {
        for u in &users {
            store.heartbeat(u, 1, Activity::Active).unwrap();
            store.get(u).unwrap();
        }
    });
    assert_eq!(n, 0);
}

/// Bytes `f` leaves allocated (what it allocated less what it freed), with its result.
fn live_bytes_after<T>(f: impl FnOnce() -> T) -> (isize, T) {
    let before = LIVE_BYTES.with(Cell::get);
    let out = f();
    (LIVE_BYTES.with(Cell::get) - before, out)
}

/// A subscription's cost in the store is its subscriber and one pointer per shard; its queue
/// grows only as events wait, and a drained queue gives its room back.
#[test]
fn an_idle_subscriber_costs_under_a_kibibyte_whatever_its_capacity() {
    const SUBSCRIBERS: usize = 1000;
    const BOUND: isize = 1024;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store: PresenceStore<u64> =
        PresenceStore::with_clock(StoreConfig::default().with_shards(16), clock);
    for u in 0..100 {
        store.set(&u, Category::Available, SetMode::Hard).unwrap();
    }
    for capacity in [1, 1024, 65_536, 1 << 24] {
        let options = SubscribeOptions {
            capacity,
            users: None,
        };
        let (bytes, subs) = live_bytes_after(|| {
            (0..SUBSCRIBERS)
                .map(|_| store.subscribe(options.clone()))
                .collect::<Vec<Subscription<u64>>>()
        });
        let per_subscriber = bytes / SUBSCRIBERS as isize;
        assert!(
            per_subscriber < BOUND,
            "capacity {capacity}: {per_subscriber} B per idle subscriber"
        );
        // A burst fills every queue, then each reader drains its queue: idle again.
        let (bytes_after_burst, ()) = live_bytes_after(|| {
            for u in 0..100 {
                store
                    .set(&u, Category::ALL[u as usize % 10], SetMode::Hard)
                    .unwrap();
            }
            for sub in &subs {
                while let Some(event) = sub.try_recv() {
                    assert!(matches!(event, Event::Change { .. } | Event::Lagged { .. }));
                }
            }
        });
        let per_subscriber = (bytes + bytes_after_burst) / SUBSCRIBERS as isize;
        assert!(
            per_subscriber < BOUND,
            "capacity {capacity}, after a burst: {per_subscriber} B per idle subscriber"
        );
        drop(subs);
        store.sweep();
        for u in 0..100 {
            store.set(&u, Category::Available, SetMode::Hard).unwrap();
        }
    }
}
