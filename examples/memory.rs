//! Memory per user and per log entry, measured with a counting global allocator.
//!
//! Run with `cargo run --release --example memory` (optionally `-- <users> <shards>`: default
//! 1,000,000 users and the automatic shard count, `(4 x cores).next_power_of_two()`).
//! Prints live heap bytes per user for:
//! - the store's users without sessions (added by a hard set, so each has one log entry),
//! - the store's users with one session each (added by a heartbeat),
//! - both again in steady state, after the clock passes `delta_window` and `sweep()` prunes the
//!   log (sessions kept alive by heartbeats every 30 s, as clients do),
//! - `DashMap<u64, V, ahash>` with a presence-sized V (24 bytes), and with V plus a session
//!   (48 bytes), for comparison,
//! - and bytes per log entry: live bytes added by N visible changes on existing users, over N.
//!
//! The allocator wrapper is the only `unsafe` in the project, because `GlobalAlloc` requires it;
//! the crate itself is `#![forbid(unsafe_code)]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use presence_store::{Activity, Category, ManualClock, PresenceStore, SetMode, StoreConfig};

/// `System`, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees carry over; the counter is a side effect that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` was allocated by this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

const T0: u64 = 1_700_000_000_000;

/// The `i`th user's id: SplitMix64's finalizer, a bijection, so ids are distinct and unordered.
fn user_id(i: usize) -> u64 {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn per(bytes: usize, n: usize) -> f64 {
    bytes as f64 / n as f64
}

/// Keeps every session alive (a no-op heartbeat each) while the clock passes the delta window
/// in 30 s steps, sweeping at each step as a host would; the log is then pruned.
fn pass_window(store: &PresenceStore<u64>, clock: &ManualClock, n: usize, sessions: bool) {
    let window = store.config().delta_window;
    let step = Duration::from_secs(30);
    let mut passed = Duration::ZERO;
    while passed <= window + step {
        clock.advance(step);
        passed += step;
        if sessions {
            for i in 0..n {
                store
                    .heartbeat(&user_id(i), 1, Activity::Active)
                    .expect("heartbeat");
            }
        }
        store.sweep();
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.replace('_', "").parse().expect("users: a number"))
        .unwrap_or(1_000_000);
    let shards: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().expect("shards: a number"))
        .unwrap_or(0);
    let config = StoreConfig::default().with_shards(shards);
    println!(
        "{n} u64 users, {} shards, log capacity {} per shard, window {:?}",
        config.shard_count(),
        config.log_capacity,
        config.delta_window
    );
    println!("(live heap bytes from a counting global allocator; the store's struct itself is on the stack)\n");

    // Users without sessions: a hard set adds each (one log entry per user).
    {
        let clock = Arc::new(ManualClock::new(T0));
        let before = live();
        let store: PresenceStore<u64> = PresenceStore::with_clock(config.clone(), clock.clone());
        let empty = live() - before;
        for i in 0..n {
            store
                .set(&user_id(i), Category::Available, SetMode::Hard)
                .expect("set");
        }
        let with_log = live() - before;
        pass_window(&store, &clock, n, false);
        assert_eq!(store.len(), n);
        let steady = live() - before;
        println!("store, no sessions:");
        println!("  empty store                     {empty:>12} B");
        println!(
            "  with its log (1 entry/user)     {with_log:>12} B  {:>7.1} B/user",
            per(with_log, n)
        );
        println!(
            "  log pruned (steady state)       {steady:>12} B  {:>7.1} B/user",
            per(steady, n)
        );
    }

    // Users with one session each: a heartbeat adds each.
    {
        let clock = Arc::new(ManualClock::new(T0));
        let before = live();
        let store: PresenceStore<u64> = PresenceStore::with_clock(config.clone(), clock.clone());
        for i in 0..n {
            store
                .heartbeat(&user_id(i), 1, Activity::Active)
                .expect("heartbeat");
        }
        let with_log = live() - before;
        pass_window(&store, &clock, n, true);
        assert_eq!(store.len(), n);
        assert_eq!(
            store.get(&user_id(0)).expect("known").activity,
            Activity::Active
        );
        let steady = live() - before;
        println!("store, one session per user:");
        println!(
            "  with its log (1 entry/user)     {with_log:>12} B  {:>7.1} B/user",
            per(with_log, n)
        );
        println!(
            "  log pruned (steady state)       {steady:>12} B  {:>7.1} B/user",
            per(steady, n)
        );
    }

    // Bytes per log entry: visible changes (hard sets alternating between two categories) on
    // the existing users of a small store, so the log is all that grows. A shard's log is a
    // `VecDeque` that doubles, so the bytes per entry held depend on where the run stops.
    {
        let clock = Arc::new(ManualClock::new(T0));
        let store: PresenceStore<u64> = PresenceStore::with_clock(config.clone(), clock.clone());
        let users = 1000;
        for i in 0..users {
            store
                .heartbeat(&user_id(i), 1, Activity::Active)
                .expect("heartbeat");
        }
        let base = live();
        let mut done = 0usize;
        println!("log entries, changes on {users} existing users:");
        // Stay under the log capacity of the fullest shard (users spread unevenly).
        let most = config.log_capacity * config.shard_count() * 3 / 4;
        for target in [n / 8, n / 4, n / 2, n, n * 3 / 2] {
            if target > most {
                break;
            }
            while done < target {
                let cat = if (done / users) % 2 == 0 {
                    Category::Busy
                } else {
                    Category::DoNotDisturb
                };
                store
                    .set(&user_id(done % users), cat, SetMode::Hard)
                    .expect("set");
                done += 1;
            }
            let bytes = live() - base;
            println!(
                "  +{done:>9} changes               {bytes:>12} B  {:>7.1} B/entry",
                per(bytes, done)
            );
        }
    }

    // Baselines.
    #[allow(dead_code)]
    #[derive(Clone, Copy)]
    struct Value {
        category: Category,
        requested: Category,
        activity: Activity,
        updated_at: u64,
        version: u64,
    }
    #[allow(dead_code)]
    #[derive(Clone, Copy)]
    struct WithSession {
        value: Value,
        session: u64,
        last_seen: u64,
        last_active: u64,
    }
    let value = Value {
        category: Category::Available,
        requested: Category::Available,
        activity: Activity::Active,
        updated_at: T0,
        version: 1,
    };
    {
        let before = live();
        let map: DashMap<u64, Value, ahash::RandomState> =
            DashMap::with_hasher(ahash::RandomState::new());
        for i in 0..n {
            map.insert(user_id(i), value);
        }
        let bytes = live() - before;
        println!(
            "DashMap<u64, V{{{} B}}>:           {bytes:>12} B  {:>7.1} B/user",
            std::mem::size_of::<Value>(),
            per(bytes, n)
        );
    }
    {
        let before = live();
        let map: DashMap<u64, WithSession, ahash::RandomState> =
            DashMap::with_hasher(ahash::RandomState::new());
        for i in 0..n {
            map.insert(
                user_id(i),
                WithSession {
                    value,
                    session: 1,
                    last_seen: T0,
                    last_active: T0,
                },
            );
        }
        let bytes = live() - before;
        println!(
            "DashMap<u64, V+session{{{} B}}>:   {bytes:>12} B  {:>7.1} B/user",
            std::mem::size_of::<WithSession>(),
            per(bytes, n)
        );
    }
}
