//! The cursor, delta, page and subscription protocols under loom, which runs each test once for
//! every interleaving of its threads' lock operations that can make a difference (and checks the
//! memory model besides). Under `--cfg presence_store_loom` the shards' locks are loom's
//! (`src/sync.rs`) and keys route to shards alike in every run; everything the store does under
//! a shard's lock is plain sequential code, so these interleavings are all the shards' ways of
//! racing. Each test prints how many interleavings it ran.
//!
//! Run it with
//! `RUSTFLAGS="--cfg presence_store_loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom -- --nocapture`
//! (a target dir of its own keeps the ordinary build's). Without the cfg this file is empty.
#![cfg(presence_store_loom)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use loom::thread;
use presence_store::{
    Category, Cursor, Event, ManualClock, PageQuery, Presence, PresenceStore, SetMode, Since,
    StoreConfig, SubscribeOptions,
};

const T0: u64 = 1_700_000_000_000;

/// A two-shard store on a clock that stands still, and two keys on different shards with the
/// shard of each (the routing is fixed under loom).
fn two_shards() -> (PresenceStore<u64>, [(u64, usize); 2]) {
    let new = || {
        PresenceStore::with_clock(
            StoreConfig::default().with_shards(2),
            Arc::new(ManualClock::new(T0)),
        )
    };
    // Probe on a store of its own: a set moves only its shard's sequence.
    let probe = new();
    let mut keys: Vec<(u64, usize)> = Vec::new();
    for key in 0.. {
        let before = probe.cursor().to_string();
        probe.set(&key, Category::Busy, SetMode::Hard).unwrap();
        let shard = shard_moved(&probe, &before);
        if keys.iter().all(|&(_, s)| s != shard) {
            keys.push((key, shard));
            if keys.len() == 2 {
                break;
            }
        }
    }
    (new(), [keys[0], keys[1]])
}

/// Which shard's sequence moved since the cursor `before` (a token).
fn shard_moved(store: &PresenceStore<u64>, before: &str) -> usize {
    let before: Cursor = before.parse().unwrap();
    let now = store.cursor();
    let (a, b) = (seqs(&before), seqs(&now));
    let moved: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert_eq!(moved.len(), 1, "one set, one shard: {a:?} -> {b:?}");
    moved[0]
}

/// A cursor's per-shard sequences. `Cursor` keeps them private, so they are read from its token:
/// base64url of a format byte, then varints: the store's id, the shard count, each sequence.
fn seqs(cursor: &Cursor) -> Vec<u64> {
    let token = cursor.to_string();
    let bytes = decode(&token);
    let mut rest = &bytes[1..];
    let _store = varint(&mut rest);
    let n = varint(&mut rest);
    (0..n).map(|_| varint(&mut rest)).collect()
}

fn decode(s: &str) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= (A.iter().position(|&a| a == c).unwrap() as u32) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn varint(input: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for (i, &b) in input.iter().enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *input = &input[i + 1..];
            return v;
        }
    }
    panic!("truncated varint")
}

type View = BTreeMap<u64, Presence>;

/// Applies a delta that must be partial: each user once, each newer than the view's.
fn apply(view: &mut View, users: &[(u64, Presence)], who: &str) {
    let mut seen = Vec::new();
    for (k, p) in users {
        assert!(!seen.contains(k), "{who}: user {k} twice in one delta");
        seen.push(*k);
        if let Some(old) = view.get(k) {
            assert!(p.version >= old.version, "{who}: user {k} went back");
        }
        view.insert(*k, p.clone());
    }
}

/// A writer sets one user on each shard (the second twice) while a reader takes a cursor, a
/// delta from the empty store's cursor and a page. Once both are done, in every interleaving:
/// the delta from the reader's cursor holds exactly the users whose version is above the
/// cursor's sequence for their shard; the reader's delta plus the delta from its cursor, and
/// its page plus the delta from the page's cursor, are the final state.
#[test]
fn cursor_delta_and_page_miss_nothing_across_two_shards() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        RUNS.fetch_add(1, Ordering::Relaxed);
        let (store, [(a, sa), (b, sb)]) = two_shards();
        let store = Arc::new(store);
        let start = store.cursor();

        let writer = {
            let store = store.clone();
            thread::spawn(move || {
                store.set(&a, Category::Busy, SetMode::Hard).unwrap();
                store.set(&b, Category::Away, SetMode::Hard).unwrap();
                store.set(&b, Category::OnThePhone, SetMode::Hard).unwrap();
            })
        };
        let reader = {
            let store = store.clone();
            let start = start.clone();
            thread::spawn(move || {
                let cursor = store.cursor();
                let delta = store.changes_since(&Since::Cursor(start));
                assert!(!delta.full, "a full delta: {:?}", delta.reason);
                let page = store.page(&PageQuery::first()).unwrap();
                (cursor, delta, page)
            })
        };
        writer.join().unwrap();
        let (cursor, delta, page) = reader.join().unwrap();

        let fin: View = [a, b].iter().map(|k| (*k, store.get(k).unwrap())).collect();

        // The delta from the reader's cursor: exactly the users changed after it.
        let after = store.changes_since(&Since::Cursor(cursor.clone()));
        assert!(!after.full);
        let seqs = seqs(&cursor);
        for (k, shard) in [(a, sa), (b, sb)] {
            let changed = fin[&k].version > seqs[shard];
            let listed = after.users.iter().any(|(u, _)| *u == k);
            assert_eq!(
                changed, listed,
                "user {k} (shard {shard}, version {}) vs cursor {seqs:?}",
                fin[&k].version
            );
        }

        // The reader's delta, caught up from its cursor, is the final state.
        let mut view = View::new();
        apply(&mut view, &delta.users, "reader's delta");
        let rest = store.changes_since(&Since::Cursor(delta.cursor.clone()));
        apply(&mut view, &rest.users, "catch-up from the delta's cursor");
        assert_eq!(view, fin, "delta + delta from its cursor");

        // So is the page, caught up from the page's cursor.
        let mut view: View = page.items.iter().cloned().collect();
        let rest = store.changes_since(&Since::Cursor(page.cursor.clone()));
        apply(&mut view, &rest.users, "catch-up from the page's cursor");
        assert_eq!(view, fin, "page + delta from the page's cursor");
    });
    eprintln!(
        "cursor, delta and page: {} interleavings",
        RUNS.load(Ordering::Relaxed)
    );
}

/// A writer sets one user on each shard (the second twice) while a subscriber joins late: it
/// subscribes, then catches up by a delta from the empty store's cursor. Once both are done, in
/// every interleaving, the catch-up plus the events that follow it are the final state: no
/// change falls between the subscription's registration, shard by shard, and the delta. One
/// user's events come in version order; an event at or below the catch-up's version of its user
/// is one the catch-up already holds (sent before the delta was read), and is skipped.
#[test]
fn a_late_subscriber_caught_up_by_a_delta_misses_nothing() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        RUNS.fetch_add(1, Ordering::Relaxed);
        let (store, [(a, _), (b, _)]) = two_shards();
        let store = Arc::new(store);
        let start = store.cursor();

        let writer = {
            let store = store.clone();
            thread::spawn(move || {
                store.set(&a, Category::Busy, SetMode::Hard).unwrap();
                store.set(&b, Category::Away, SetMode::Hard).unwrap();
                store.set(&b, Category::OnThePhone, SetMode::Hard).unwrap();
            })
        };
        let subscriber = {
            let store = store.clone();
            thread::spawn(move || {
                let sub = store.subscribe(SubscribeOptions {
                    capacity: 8,
                    users: None,
                });
                let delta = store.changes_since(&Since::Cursor(start));
                (sub, delta)
            })
        };
        writer.join().unwrap();
        let (sub, delta) = subscriber.join().unwrap();

        let mut view = View::new();
        apply(&mut view, &delta.users, "catch-up");
        let mut last_event: BTreeMap<u64, u64> = BTreeMap::new();
        while let Some(event) = sub.try_recv() {
            match event {
                Event::Change { user, presence } => {
                    if let Some(last) = last_event.insert(user, presence.version) {
                        assert!(presence.version > last, "user {user}: events out of order");
                    }
                    match view.get(&user) {
                        // A change the catch-up already holds, sent before it was read.
                        Some(old) if presence.version <= old.version => {
                            let caught = delta.users.iter().any(|(k, _)| *k == user);
                            assert!(caught, "user {user}: a stale event {presence:?}");
                        }
                        _ => {
                            view.insert(user, presence);
                        }
                    }
                }
                Event::Lagged { .. } => panic!("lagged with room for every change"),
            }
        }
        let fin: View = [a, b].iter().map(|k| (*k, store.get(k).unwrap())).collect();
        assert_eq!(view, fin, "catch-up + events");
    });
    eprintln!(
        "late subscriber: {} interleavings",
        RUNS.load(Ordering::Relaxed)
    );
}
