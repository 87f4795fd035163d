//! The hot paths allocate nothing they do not return: a no-op heartbeat, a repeated set and a
//! `get` allocate nothing at all. Counted with a global allocator wrapper, on this thread only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use presence_store::{Activity, Category, ManualClock, PresenceStore, SetMode, StoreConfig};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers every call to `System`, only counting allocations on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
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
