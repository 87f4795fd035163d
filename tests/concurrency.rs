//! Concurrency checker: writers, a sweeper and a moving clock race against a cursor poller, a
//! time poller (Rocket.Chat's `from`) and a pager (Symphony's paged scan, then the first page's
//! cursor). Every reader checks what it can while the writers run; once they stop, every
//! reader's view must equal the store's final state, exactly.
//!
//! A missed change shows only if it was the user's last, so the readers also stop the world now
//! and then (a gate that writers, the sweeper and the clock hold for reading while they act):
//! the pollers then poll and compare their view with the quiet store, and the pager takes its
//! catch-up delta and compares. Most users are hot, but a set of cold users, touched rarely,
//! keeps a miss from being hidden by a later change.
//!
//! The default run is a fixed number of operations per writer (a few seconds in debug). Set
//! `PRESENCE_SOAK_SECS=N` to run the writers for N seconds instead, and `PRESENCE_SEED=S` to fix
//! the writers' random choices (the thread interleaving is never fixed). Each configuration
//! prints one summary line (`--nocapture` shows it). The log is never pruned here, so a soak's
//! memory grows with its length (the whole run peaked near 370 MB for 30 s in release).
//!
//! A second race, at the end of the file, puts a feed reader and two lagging subscribers in the
//! readers' place (one of its configurations does prune the log).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use presence_store::{
    resolve, Activity, Category, Clock, Cursor, Delta, Error, Event, FeedId, FullReason,
    ManualClock, PageQuery, Presence, PresenceStore, SetMode, Since, StoreConfig, SubscribeOptions,
    Subscription, SystemClock,
};

type View = BTreeMap<u64, Presence>;

/// Writers, the sweeper and the clock hold it for reading while they act; a reader holding it
/// for writing sees a quiet store.
type Gate = RwLock<()>;

const T0: u64 = 1_700_000_000_000;
/// Session ids a writer picks from, so users have several sessions at once.
const SESSIONS: u64 = 4;
/// Writer ops between two looks at the gate.
const BATCH: u64 = 64;
/// Polls between two stop-the-world checks of a poller.
const CHECK_EVERY: u64 = 24;
/// How far the manual clock may move in a run: far below the delta window (a day here), so the
/// log is never pruned by time and every delta stays exact.
const MAX_CLOCK_ADVANCE_MS: u64 = 12 * 3600 * 1000;

/// One configuration of the race.
#[derive(Clone, Copy, Debug)]
struct Setup {
    shards: usize,
    writers: u64,
    /// Hot users per writer: writer `w` works on `[w * users / 2, w * users / 2 + users)`, so
    /// neighbouring writers share half their users and every shard sees several writers.
    users: u64,
    /// Users shared by every writer and picked by a quarter of their ops, so each of them
    /// changes rarely and a missed change stays visible.
    cold_users: u64,
    ops_per_writer: u64,
    /// A `ManualClock` moved by its own thread in small steps, or the system clock.
    manual_clock: bool,
    idle_after_ms: u64,
    ttl_ms: u64,
    /// If not 0, the manual clock also steps back now and then (NTP), never more than this
    /// below the latest time it showed: the shards must clamp. The time poller then asks from
    /// this much before its last request (a clock that never steps back lets it ask from the
    /// time of its last request exactly, which checks that `Since::Time` is inclusive).
    step_back_ms: u64,
    /// Whether writers also set and clear status messages (one op in eleven).
    messages: bool,
}

/// A small seedable generator (splitmix64), so the test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn soak() -> Option<Duration> {
    let secs: f64 = std::env::var("PRESENCE_SOAK_SECS").ok()?.parse().ok()?;
    (secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

fn base_seed() -> u64 {
    std::env::var("PRESENCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemClock.now_ms() ^ u64::from(std::process::id()))
}

/// When writers stop: after a fixed number of ops, or at a deadline (soak).
#[derive(Clone, Copy)]
enum Until {
    Ops(u64),
    Deadline(Instant),
}

impl Until {
    fn going(self, done: u64) -> bool {
        match self {
            Until::Ops(n) => done < n,
            // Reading the time every op would cost more than the op; every 64 is plenty.
            Until::Deadline(t) => done % 64 != 0 || Instant::now() < t,
        }
    }
}

/// What a writer did.
#[derive(Default)]
struct WriterStats {
    ops: u64,
    sets: u64,
    heartbeats: u64,
    disconnects: u64,
    removes: u64,
    messages: u64,
}

/// What writers set as status messages; the empty one clears.
const MESSAGES: [&str; 4] = ["", "lunch", "in a call", "back at 3"];

/// Random writes on the writer's hot users and the shared cold ones, each checked against what
/// the call returns.
fn writer(
    store: &PresenceStore<u64>,
    gate: &Gate,
    w: u64,
    setup: Setup,
    seed: u64,
    until: Until,
) -> WriterStats {
    let mut rng = Rng(seed);
    let mut st = WriterStats::default();
    let base = w * setup.users / 2;
    let mut open = gate.read().unwrap_or_else(PoisonError::into_inner);
    while until.going(st.ops) {
        st.ops += 1;
        if st.ops % BATCH == 0 {
            // Let a stop-the-world check in, and the readers in between bursts, so deltas come
            // in many sizes.
            drop(open);
            thread::yield_now();
            open = gate.read().unwrap_or_else(PoisonError::into_inner);
        }
        // Hot users have even keys, cold ones odd: every page mixes them.
        let user = if rng.below(4) == 0 {
            2 * rng.below(setup.cold_users) + 1
        } else {
            2 * (base + rng.below(setup.users))
        };
        let session = rng.below(SESSIONS);
        match rng.below(if setup.messages { 110 } else { 100 }) {
            0..=44 => {
                st.heartbeats += 1;
                let activity = match rng.below(10) {
                    0..=4 => Activity::Active,
                    5..=7 => Activity::Idle,
                    _ => Activity::Offline,
                };
                let p = store
                    .heartbeat(&user, session, activity)
                    .expect("heartbeat");
                match activity {
                    Activity::Active => assert_eq!(p.activity, Activity::Active, "{user}: {p:?}"),
                    Activity::Idle => assert_ne!(p.activity, Activity::Offline, "{user}: {p:?}"),
                    Activity::Offline => {}
                }
            }
            45..=71 => {
                st.sets += 1;
                let category = Category::ALL[rng.below(Category::ALL.len() as u64) as usize];
                let mode = if rng.below(2) == 0 {
                    SetMode::Hard
                } else {
                    SetMode::Soft
                };
                let p = store.set(&user, category, mode).expect("set");
                let shown = match mode {
                    SetMode::Hard => category,
                    SetMode::Soft => resolve(category, p.activity),
                };
                assert_eq!(
                    (p.requested, p.category),
                    (category, shown),
                    "{user} {mode:?}: {p:?}"
                );
            }
            72..=94 => {
                st.disconnects += 1;
                match store.disconnect(&user, session) {
                    Ok(_) | Err(Error::UnknownUser { .. }) => {}
                    Err(e) => panic!("disconnect {user}/{session}: {e}"),
                }
            }
            95..=99 => {
                st.removes += 1;
                if let Some(p) = store.remove(&user) {
                    assert!(p.version > 0, "{user}: removed {p:?}");
                }
            }
            _ => {
                st.messages += 1;
                let message = MESSAGES[rng.below(MESSAGES.len() as u64) as usize];
                match store.set_message(&user, message) {
                    Ok(p) => assert_eq!(
                        p.details.message(),
                        (!message.is_empty()).then_some(message),
                        "{user}: {p:?}"
                    ),
                    Err(Error::UnknownUser { .. }) => {}
                    Err(e) => panic!("set_message {user}: {e}"),
                }
            }
        }
    }
    st
}

/// Checks one delta that must not be full: no user twice, every presence one the rules give.
fn check_delta_shape(delta: &Delta<u64>, who: &str) {
    assert!(
        !delta.full && delta.reason.is_none(),
        "{who}: a full answer ({:?}) while the log holds everything",
        delta.reason
    );
    check_users_shape(&delta.users, who);
}

/// No user twice, every presence one the rules give.
fn check_users_shape(users: &[(u64, Presence)], who: &str) {
    let mut seen = HashSet::with_capacity(users.len());
    for (k, p) in users {
        assert!(seen.insert(*k), "{who}: user {k} twice in one delta");
        assert!(p.version > 0, "{who}: user {k} never changed: {p:?}");
        // What shows is what `resolve` gives, or what a hard set asked for.
        assert!(
            p.category == resolve(p.requested, p.activity) || p.category == p.requested,
            "{who}: user {k} shows what neither rule gives: {p:?}"
        );
    }
}

/// Applies a cursor delta: every user in it changed after the cursor, so its version is
/// strictly above what the view held (versions never go backwards).
fn apply_cursor_delta(view: &mut View, delta: &Delta<u64>, who: &str) {
    check_delta_shape(delta, who);
    for (k, p) in &delta.users {
        if let Some(old) = view.get(k) {
            assert!(
                p.version > old.version && p.updated_at >= old.updated_at,
                "{who}: user {k} went from {old:?} to {p:?}"
            );
        }
        view.insert(*k, p.clone());
    }
}

/// Applies a delta whose users may already be in the view at the same version (a time delta is
/// inclusive; a page may have read a user after the cursor it is caught up from).
fn apply_overlapping_delta(view: &mut View, delta: &Delta<u64>, who: &str) {
    check_delta_shape(delta, who);
    for (k, p) in &delta.users {
        if let Some(old) = view.get(k) {
            assert!(
                p.version >= old.version && p.updated_at >= old.updated_at,
                "{who}: user {k} went back from {old:?} to {p:?}"
            );
            if p.version == old.version {
                assert_eq!(p, old, "{who}: user {k}: one version, two states");
            }
        }
        view.insert(*k, p.clone());
    }
}

/// Every user the store knows, read by paging (call it on a quiet store).
fn live_users(store: &PresenceStore<u64>) -> View {
    let mut live = View::new();
    let mut query = PageQuery::first().with_limit(5000);
    loop {
        let page = store.page(&query).expect("page");
        live.extend(page.items);
        match page.next {
            Some(next) => query = PageQuery::starting_at(next).with_limit(5000),
            None => return live,
        }
    }
}

/// With the world stopped: the view holds the current state of every user the store knows,
/// and only removal tombstones for users it does not.
fn assert_view_is_current(store: &PresenceStore<u64>, view: &View, who: &str) {
    let live = live_users(store);
    for (k, p) in &live {
        assert_eq!(
            view.get(k),
            Some(p),
            "{who}: user {k} is not at its current state"
        );
    }
    for (k, p) in view {
        if !live.contains_key(k) {
            assert_eq!(
                store.get(k),
                None,
                "{who}: user {k} known, yet not in a scan"
            );
            assert_eq!(
                (p.category, p.activity),
                (Category::Offline, Activity::Offline),
                "{who}: user {k} was removed, yet the view has {p:?}"
            );
        }
    }
}

/// What a poller did: deltas polled, users they held, stop-the-world checks passed, deltas
/// that had changes while the writers ran, presences checked against its water marks.
#[derive(Default)]
struct Counts {
    polls: u64,
    users: u64,
    checks: u64,
    raced: u64,
    versions: u64,
}

/// Takes the gate for writing on every `CHECK_EVERY`th poll while the writers run.
fn maybe_stop_the_world<'a>(
    gate: &'a Gate,
    polls: u64,
    finished: bool,
) -> Option<std::sync::RwLockWriteGuard<'a, ()>> {
    (!finished && polls % CHECK_EVERY == CHECK_EVERY - 1)
        .then(|| gate.write().unwrap_or_else(PoisonError::into_inner))
}

/// The cursor poller: follows `changes_since(Cursor)` from the empty store's cursor.
fn cursor_poller(
    store: &PresenceStore<u64>,
    gate: &Gate,
    start: Cursor,
    done: &AtomicBool,
) -> (View, Cursor, Counts) {
    let mut view = View::new();
    let mut cursor = start;
    let mut n = Counts::default();
    let mut high = HighWater::default();
    loop {
        let finished = done.load(Ordering::Acquire);
        let quiet = maybe_stop_the_world(gate, n.polls, finished);
        let delta = store.changes_since(&Since::Cursor(cursor.clone()));
        high.saw_all(&delta.users, "cursor poller");
        n.versions = high.checked;
        n.raced += u64::from(!finished && quiet.is_none() && !delta.users.is_empty());
        apply_cursor_delta(&mut view, &delta, "cursor poller");
        if quiet.is_some() {
            assert_view_is_current(store, &view, "cursor poller, world stopped");
            n.checks += 1;
        }
        drop(quiet);
        n.polls += 1;
        n.users += delta.users.len() as u64;
        if delta.users.is_empty() {
            assert_eq!(
                delta.cursor, cursor,
                "cursor poller: no change, yet the cursor moved"
            );
        }
        cursor = delta.cursor;
        if n.polls % 16 == 0 {
            // Go through the token now and then, as a client across HTTP would.
            let parsed: Cursor = cursor.to_string().parse().expect("a store's own token");
            assert_eq!(parsed, cursor);
            cursor = parsed;
        }
        if finished {
            return (view, cursor, n);
        }
        thread::yield_now();
    }
}

/// The time poller: Rocket.Chat's `from`, the clock read just before each request.
fn time_poller(
    store: &PresenceStore<u64>,
    gate: &Gate,
    clock: &dyn Clock,
    step_back_ms: u64,
    start: u64,
    done: &AtomicBool,
) -> (View, Counts) {
    let mut view = View::new();
    let mut from = start;
    let mut n = Counts::default();
    let mut high = HighWater::default();
    loop {
        let finished = done.load(Ordering::Acquire);
        let quiet = maybe_stop_the_world(gate, n.polls, finished);
        let asked_at = clock.now_ms().saturating_sub(step_back_ms);
        let delta = store.changes_since(&Since::Time(from));
        high.saw_all(&delta.users, "time poller");
        n.versions = high.checked;
        n.raced += u64::from(!finished && quiet.is_none() && !delta.users.is_empty());
        for (k, p) in &delta.users {
            assert!(
                p.updated_at >= from,
                "time poller: user {k} changed at {}, before `from` {from}",
                p.updated_at
            );
        }
        apply_overlapping_delta(&mut view, &delta, "time poller");
        if quiet.is_some() {
            assert_view_is_current(store, &view, "time poller, world stopped");
            n.checks += 1;
        }
        drop(quiet);
        n.polls += 1;
        n.users += delta.users.len() as u64;
        // A change this delta lacks happens after the clock was read, on a clock that never
        // goes more than `step_back_ms` below what it showed (and the shards clamp their
        // times), so its time is at least `asked_at`.
        from = asked_at;
        if finished {
            return (view, n);
        }
        thread::yield_now();
    }
}

/// One paged scan: the pages as read, the first page's cursor, and the pages brought up to date
/// by the delta from that cursor (the "catch-up"), with the cursor to follow that with.
struct Scan {
    pages: View,
    first: Cursor,
    caught_up: View,
    cursor: Cursor,
    /// How many pages it read.
    read: u64,
    /// Whether the catch-up had changes: writes landed while the pages were read.
    raced: bool,
}

/// One paged scan of every user with small random limits, then the delta from the first page's
/// cursor on top; with a gate, that delta is taken with the world stopped and the result checked
/// at once. Every presence read goes through the pager's `high` water marks.
fn scan(
    store: &PresenceStore<u64>,
    gate: Option<&Gate>,
    rng: &mut Rng,
    high: &mut HighWater,
) -> Scan {
    let mut view = View::new();
    let mut start = Bound::Unbounded;
    let mut first_cursor = None;
    let mut last_key: Option<u64> = None;
    let mut pages = 0;
    loop {
        let limit = 1 + rng.below(12) as usize;
        let query = PageQuery {
            start,
            limit: Some(limit),
            include_offline: true,
        };
        let page = store.page(&query).expect("page");
        pages += 1;
        assert!(page.items.len() <= limit, "pager: page over its limit");
        high.saw_all(&page.items, "pager, a page");
        for (k, p) in &page.items {
            assert!(
                last_key.is_none_or(|last| *k > last),
                "pager: key {k} after {last_key:?}: pages out of order"
            );
            if let Bound::Included(s) = query.start {
                assert!(*k >= s, "pager: key {k} before the page's start {s}");
            }
            assert!(p.version > 0, "pager: user {k}: {p:?}");
            last_key = Some(*k);
            view.insert(*k, p.clone());
        }
        first_cursor.get_or_insert(page.cursor);
        match page.next {
            Some(next) => {
                assert_eq!(page.items.len(), limit, "pager: a short page with a next");
                assert!(
                    last_key.is_none_or(|last| next > last),
                    "pager: next {next} not past {last_key:?}"
                );
                start = Bound::Included(next);
            }
            None => break,
        }
    }
    let first = first_cursor.expect("at least one page");
    let mut caught_up = view.clone();
    let quiet = gate.map(|g| g.write().unwrap_or_else(PoisonError::into_inner));
    let delta = store.changes_since(&Since::Cursor(first.clone()));
    high.saw_all(&delta.users, "pager, a catch-up delta");
    apply_overlapping_delta(&mut caught_up, &delta, "pager catch-up");
    if quiet.is_some() {
        assert_view_is_current(
            store,
            &caught_up,
            "pager, world stopped: pages + the delta from the first page's cursor",
        );
    }
    Scan {
        pages: view,
        first,
        caught_up,
        cursor: delta.cursor,
        read: pages,
        raced: !delta.users.is_empty(),
    }
}

/// What the pager did. `scans` is a sample of the scans (the last one always) for the final
/// checks ([`check_pager`]).
struct PagerResult {
    scans: Vec<Scan>,
    scans_during_writes: u64,
    /// Scans whose catch-up delta had changes: writes interleaved with their pages.
    raced: u64,
    checks: u64,
    pages: u64,
    high: HighWater,
}

/// The pager: scans again and again while the writers run, checking half the scans at once
/// (world stopped) and keeping a sample of the others for the final checks.
fn pager(store: &PresenceStore<u64>, gate: &Gate, seed: u64, done: &AtomicBool) -> PagerResult {
    const KEEP: usize = 12;
    let mut rng = Rng(seed);
    let mut high = HighWater::default();
    let mut kept: Vec<Scan> = Vec::new();
    let mut last: Option<Scan> = None;
    let (mut scans, mut pages, mut checks, mut raced) = (0u64, 0u64, 0u64, 0u64);
    while !done.load(Ordering::Acquire) {
        let check = rng.below(2) == 0;
        let scan = scan(store, check.then_some(gate), &mut rng, &mut high);
        scans += 1;
        pages += scan.read;
        raced += u64::from(scan.raced);
        checks += u64::from(check);
        if let Some(prev) = last.replace(scan) {
            // Reservoir sample of the earlier scans.
            if kept.len() < KEEP {
                kept.push(prev);
            } else if let Some(slot) = kept.get_mut(rng.below(scans) as usize) {
                *slot = prev;
            }
        }
        if rng.below(8) == 0 {
            let page = store
                .page(&PageQuery::first().with_limit(5).with_offline(false))
                .expect("page");
            high.saw_all(&page.items, "pager, a first page");
            for (k, p) in &page.items {
                assert_ne!(
                    p.category,
                    Category::Offline,
                    "pager: offline user {k} listed"
                );
            }
        }
        thread::yield_now();
    }
    if last.is_none() {
        // The writers finished before one scan did: scan the final state instead.
        let scan = scan(store, None, &mut rng, &mut high);
        pages += scan.read;
        last = Some(scan);
    }
    kept.extend(last);
    PagerResult {
        scans: kept,
        scans_during_writes: scans,
        raced,
        checks,
        pages,
        high,
    }
}

/// With the writers done: each scan the pager kept, as read, plus the delta from its first
/// page's cursor taken now, is the final state (the paging guarantee, as the docs state it);
/// so is its catch-up plus the delta from the catch-up's cursor. The pager's water marks hold
/// for both deltas.
fn check_pager(store: &PresenceStore<u64>, paged: &mut PagerResult, all: &View, live: &View) {
    for (i, scan) in paged.scans.iter().enumerate() {
        let who = format!("pager scan {i}: its pages + the delta from its first page's cursor");
        let mut view = scan.pages.clone();
        let delta = store.changes_since(&Since::Cursor(scan.first.clone()));
        paged.high.saw_all(&delta.users, &who);
        apply_overlapping_delta(&mut view, &delta, &who);
        assert_view_is_final(&view, all, live, &who, false);

        let who = format!("pager scan {i}: its catch-up + the delta from the catch-up's cursor");
        let mut view = scan.caught_up.clone();
        let delta = store.changes_since(&Since::Cursor(scan.cursor.clone()));
        paged.high.saw_all(&delta.users, &who);
        apply_cursor_delta(&mut view, &delta, &who);
        assert_view_is_final(&view, all, live, &who, false);
    }
}

/// Per user, the highest version one thread has read, through any read (pages, deltas, feed
/// reads): one thread's reads come one after another, so a later read never shows an older
/// version of a user, removed or not (a removal, and a user added again, take new versions).
#[derive(Default)]
struct HighWater {
    versions: HashMap<u64, u64>,
    /// Presences checked.
    checked: u64,
}

impl HighWater {
    fn saw(&mut self, user: u64, p: &Presence, who: &str) {
        self.checked += 1;
        let high = self.versions.entry(user).or_default();
        assert!(
            p.version >= *high,
            "{who}: user {user} read at version {} after version {high}: per-user versions \
             went backwards ({p:?})",
            p.version
        );
        *high = p.version;
    }

    fn saw_all(&mut self, users: &[(u64, Presence)], who: &str) {
        for (k, p) in users {
            self.saw(*k, p, who);
        }
    }
}

/// The final state as the log tells it: every user changed since the empty store's cursor, with
/// its latest state, removed users as tombstones. Checks it against a full scan, `get`,
/// `get_many` and `len`; returns it and the users the store knows.
fn reference(store: &PresenceStore<u64>, since: &Cursor) -> (View, View) {
    let mut all = View::new();
    let delta = store.changes_since(&Since::Cursor(since.clone()));
    apply_cursor_delta(&mut all, &delta, "reference");
    let live = live_users(store);
    assert_eq!(store.len(), live.len(), "len disagrees with a full scan");
    for (k, p) in &live {
        assert_eq!(
            all.get(k),
            Some(p),
            "user {k}: the log's latest is not the store's"
        );
        assert_eq!(
            store.get(k).as_ref(),
            Some(p),
            "user {k}: get disagrees with a scan"
        );
    }
    for (k, p) in &all {
        if !live.contains_key(k) {
            assert_eq!(
                store.get(k),
                None,
                "user {k}: known to get, missing from a scan"
            );
            assert_eq!(
                (p.category, p.activity),
                (Category::Offline, Activity::Offline),
                "user {k}: removed, yet the log says {p:?}"
            );
        }
    }
    let keys: Vec<u64> = all.keys().copied().collect();
    let many = store.get_many(&keys);
    assert_eq!(many.len(), live.len(), "get_many disagrees with a scan");
    assert!(many.iter().all(|(k, p)| live.get(k) == Some(p)));
    (all, live)
}

/// A reader's view must hold the final state of every user the store knows, and only the log's
/// tombstones for users it does not; with `complete`, every tombstone the log has.
fn assert_view_is_final(view: &View, all: &View, live: &View, who: &str, complete: bool) {
    for (k, p) in live {
        assert_eq!(
            view.get(k),
            Some(p),
            "{who}: user {k} is not at its final state"
        );
    }
    for (k, p) in view {
        if !live.contains_key(k) {
            assert_eq!(
                all.get(k),
                Some(p),
                "{who}: user {k} is unknown to the store, yet {p:?}"
            );
        }
    }
    if complete {
        assert_eq!(view, all, "{who}: missing removals");
    }
}

/// The sweeper: sweeps every 200 us until `stop`; returns the sweeps and the transitions.
fn spawn_sweeper(
    store: &Arc<PresenceStore<u64>>,
    gate: &Arc<Gate>,
    go: &Arc<Barrier>,
    stop: &Arc<AtomicBool>,
) -> thread::JoinHandle<(u64, u64)> {
    let (store, gate, go, stop) = (store.clone(), gate.clone(), go.clone(), stop.clone());
    thread::spawn(move || {
        go.wait();
        let (mut sweeps, mut transitions) = (0u64, 0u64);
        while !stop.load(Ordering::Acquire) {
            transitions += {
                let _open = gate.read().unwrap_or_else(PoisonError::into_inner);
                store.sweep() as u64
            };
            sweeps += 1;
            thread::sleep(Duration::from_micros(200));
        }
        (sweeps, transitions)
    })
}

/// The ticker: moves the manual clock (if any) in small steps, now and then back, until
/// `stop`; returns how far it advanced, the highest time it showed and the steps back.
fn spawn_ticker(
    manual: Option<Arc<ManualClock>>,
    gate: &Arc<Gate>,
    go: &Arc<Barrier>,
    stop: &Arc<AtomicBool>,
    setup: Setup,
    seed: u64,
) -> thread::JoinHandle<(u64, u64, u64)> {
    let (gate, go, stop) = (gate.clone(), go.clone(), stop.clone());
    let mut rng = Rng(seed ^ 0xc10c);
    let max_step = (setup.idle_after_ms / 8).max(2);
    thread::spawn(move || {
        go.wait();
        let (mut advanced, mut high, mut backs) = (0, T0, 0u64);
        while !stop.load(Ordering::Acquire) {
            if let Some(m) = manual.as_ref().filter(|_| advanced < MAX_CLOCK_ADVANCE_MS) {
                let _open = gate.read().unwrap_or_else(PoisonError::into_inner);
                if setup.step_back_ms > 0 && rng.below(16) == 0 {
                    let back = 1 + rng.below(setup.step_back_ms);
                    m.set(
                        m.now_ms()
                            .saturating_sub(back)
                            .max(high - setup.step_back_ms)
                            .max(T0),
                    );
                    backs += 1;
                } else {
                    let step = 1 + rng.below(max_step);
                    m.advance(Duration::from_millis(step));
                    advanced += step;
                    high = high.max(m.now_ms());
                }
            }
            thread::sleep(Duration::from_micros(100));
        }
        (advanced, high, backs)
    })
}

/// A joined thread's result, or its panic, raised again here.
fn rethrow<T>(joined: thread::Result<T>) -> T {
    joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn run(setup: Setup) {
    let seed = base_seed();
    let config = StoreConfig::default()
        .with_shards(setup.shards)
        .with_delta_window(Duration::from_secs(24 * 3600))
        .with_log_capacity(1 << 40)
        .with_session_timeouts(
            Duration::from_millis(setup.idle_after_ms),
            Duration::from_millis(setup.ttl_ms),
        );
    let manual = setup.manual_clock.then(|| Arc::new(ManualClock::new(T0)));
    let clock: Arc<dyn Clock> = match &manual {
        Some(m) => m.clone(),
        None => Arc::new(SystemClock),
    };
    let store = Arc::new(PresenceStore::<u64>::with_clock(config, clock.clone()));
    assert!(store.is_empty());
    let start_cursor = store.cursor();
    let start_time = clock.now_ms();
    let until = match soak() {
        Some(d) => Until::Deadline(Instant::now() + d),
        // Release builds run five times the ops in about the same time.
        None => Until::Ops(setup.ops_per_writer * if cfg!(debug_assertions) { 1 } else { 5 }),
    };

    let gate = Arc::new(Gate::default());
    let writers_done = Arc::new(AtomicBool::new(false));
    let all_done = Arc::new(AtomicBool::new(false));
    let go = Arc::new(Barrier::new(setup.writers as usize + 5));
    let began = Instant::now();

    let writers: Vec<_> = (0..setup.writers)
        .map(|w| {
            let (store, gate, go) = (store.clone(), gate.clone(), go.clone());
            let seed = seed.wrapping_add(w.wrapping_mul(0x51_7cc1_b727_220a));
            thread::spawn(move || {
                go.wait();
                writer(&store, &gate, w, setup, seed, until)
            })
        })
        .collect();
    let sweeper = spawn_sweeper(&store, &gate, &go, &writers_done);
    let ticker = spawn_ticker(manual.clone(), &gate, &go, &writers_done, setup, seed);
    let poller = {
        let (store, gate, go, done) = (store.clone(), gate.clone(), go.clone(), all_done.clone());
        let start = start_cursor.clone();
        thread::spawn(move || {
            go.wait();
            cursor_poller(&store, &gate, start, &done)
        })
    };
    let timer = {
        let (store, gate, go, done) = (store.clone(), gate.clone(), go.clone(), all_done.clone());
        let clock = clock.clone();
        thread::spawn(move || {
            go.wait();
            time_poller(
                &store,
                &gate,
                &*clock,
                setup.step_back_ms,
                start_time,
                &done,
            )
        })
    };
    let paging = {
        let (store, gate, go, done) = (store.clone(), gate.clone(), go.clone(), all_done.clone());
        thread::spawn(move || {
            go.wait();
            pager(&store, &gate, seed ^ 0x9a9e, &done)
        })
    };

    // Join everything before raising a thread's panic again, so no thread is left spinning.
    let stats: Vec<_> = writers.into_iter().map(|h| h.join()).collect();
    writers_done.store(true, Ordering::Release);
    let sweeper = sweeper.join();
    let ticker = ticker.join();
    let write_secs = began.elapsed().as_secs_f64();
    all_done.store(true, Ordering::Release);
    let (poller, timer, paging) = (poller.join(), timer.join(), paging.join());
    let stats: Vec<WriterStats> = stats.into_iter().map(rethrow).collect();
    let (sweeps, transitions) = rethrow(sweeper);
    let (advanced, high, backs) = rethrow(ticker);
    let (mut poll_view, poll_cursor, polled) = rethrow(poller);
    let (time_view, timed) = rethrow(timer);
    let mut paged = rethrow(paging);

    // All quiet: the log's story, the store and every reader must agree.
    let (all, live) = reference(&store, &start_cursor);
    assert!(!all.is_empty());
    assert_view_is_final(&poll_view, &all, &live, "cursor poller", true);
    assert_view_is_final(&time_view, &all, &live, "time poller", true);
    check_pager(&store, &mut paged, &all, &live);
    let mut from_start = View::new();
    let delta = store.changes_since(&Since::Time(start_time));
    apply_overlapping_delta(&mut from_start, &delta, "time delta from the start");
    assert_eq!(
        from_start, all,
        "a time delta from the start tells another story"
    );

    // Sessions age on time: once `idle_after` has passed since the last heartbeat, one sweep
    // idles every session; once the TTL has, one sweep ends them all (no ghost sessions). The
    // poller's next delta says so.
    let mut aged = 0;
    for (wait_ms, gone) in [(setup.idle_after_ms, false), (setup.ttl_ms, true)] {
        match &manual {
            Some(m) => m.set(high + wait_ms),
            None => thread::sleep(Duration::from_millis(wait_ms + 5)),
        }
        aged += store.sweep();
        for (k, p) in &live_users(&store) {
            assert!(
                p.activity != Activity::Active && (!gone || p.activity == Activity::Offline),
                "user {k}: a session not aged {wait_ms} ms after the last heartbeat: {p:?}"
            );
        }
    }
    let delta = store.changes_since(&Since::Cursor(poll_cursor));
    apply_cursor_delta(&mut poll_view, &delta, "cursor poller after expiry");
    let (all, live) = reference(&store, &start_cursor);
    assert_view_is_final(&poll_view, &all, &live, "cursor poller after expiry", true);

    let sum = |f: fn(&WriterStats) -> u64| stats.iter().map(f).sum::<u64>();
    eprintln!(
        "concurrency: shards {}, {} clock, seed {seed}: {} ops in {write_secs:.2}s by {} writers \
         ({} set, {} heartbeat, {} disconnect, {} remove); {sweeps} sweeps, {transitions} \
         transitions, clock +{advanced} ms and {backs} steps back | cursor poller {} deltas ({} \
         users, {} raced by writes), time poller {} deltas ({} users, {} raced by writes), {} \
         world-stopped poller checks | pager {} scans ({} pages, {} raced by writes), {} checked \
         world-stopped, {} checked at the end from their first page's cursor | {} versions \
         checked against each reader's water marks | {} users seen ({} live, {} removed), \
         {aged} sessions idled or ended after the writers",
        setup.shards,
        if setup.manual_clock {
            "manual"
        } else {
            "system"
        },
        sum(|s| s.ops),
        setup.writers,
        sum(|s| s.sets),
        sum(|s| s.heartbeats),
        sum(|s| s.disconnects),
        sum(|s| s.removes),
        polled.polls,
        polled.users,
        polled.raced,
        timed.polls,
        timed.users,
        timed.raced,
        polled.checks + timed.checks,
        paged.scans_during_writes,
        paged.pages,
        paged.raced,
        paged.checks,
        paged.scans.len(),
        polled.versions + timed.versions + paged.high.checked,
        all.len(),
        live.len(),
        all.len() - live.len(),
    );
}

const BASE: Setup = Setup {
    shards: 8,
    writers: 4,
    users: 96,
    cold_users: 600,
    ops_per_writer: 15_000,
    manual_clock: true,
    idle_after_ms: 200,
    ttl_ms: 600,
    step_back_ms: 0,
    messages: false,
};

#[test]
fn one_shard_every_reader_ends_at_the_final_state() {
    run(Setup { shards: 1, ..BASE });
}

#[test]
fn three_shards_clock_stepping_back_every_reader_ends_at_the_final_state() {
    run(Setup {
        shards: 3,
        writers: 3,
        step_back_ms: 40,
        ..BASE
    });
}

#[test]
fn eight_shards_every_reader_ends_at_the_final_state() {
    run(BASE);
}

#[test]
fn sixty_four_shards_many_users_clock_stepping_back_every_reader_ends_at_the_final_state() {
    run(Setup {
        shards: 64,
        users: 300,
        cold_users: 2000,
        step_back_ms: 40,
        ..BASE
    });
}

#[test]
fn eight_shards_on_the_system_clock_every_reader_ends_at_the_final_state() {
    run(Setup {
        manual_clock: false,
        idle_after_ms: 20,
        ttl_ms: 60,
        ..BASE
    });
}

// Feeds and subscriptions.
//
// The same writers (with status messages), sweeper and clock race against a feed reader
// (`read_feed` with a small random `max`, Symphony's presence feed) and two subscribers with tiny
// channels, so that they lag again and again and must resync from the `Lagged` cursor; the
// second one follows only a subset of users and joins while the writers run. Each keeps a view
// of the store and checks every read and event against it; now and then one stops the world,
// catches up (the feed until `more` is false, a subscriber until its channel is empty) and
// compares with the quiet store. Once the writers stop, each view must equal the store.

/// One configuration of the feed and subscription race.
#[derive(Clone, Copy, Debug)]
struct FollowSetup {
    race: Setup,
    /// Log entries each shard keeps. Small, the log is pruned under the readers, so feed reads
    /// and resyncs come back full; then a user offline at a full answer may be missing from a
    /// view (a full answer lists only users not offline).
    log_capacity: usize,
    /// The first subscriber's channel capacity: tiny, so that it lags.
    capacity: usize,
}

/// The largest `max` of a feed read: small, so that `more` comes up often.
const FEED_MAX: u64 = 7;
/// The filtered subscriber follows the users whose key is a multiple of this.
const FOLLOW_EVERY: u64 = 5;

/// What the feed reader did.
#[derive(Default)]
struct FeedCounts {
    reads: u64,
    users: u64,
    more: u64,
    full: u64,
    /// Reads that found nothing more while the writers ran.
    caught_up: u64,
    checks: u64,
    churned: u64,
}

/// A feed's reader: its view of the store, built from its reads alone.
struct FeedFollower {
    view: View,
    /// The time of the last change read, when reads must come oldest change first across reads
    /// (a clock that never steps back).
    last_ts: Option<u64>,
    ordered_across_reads: bool,
    /// While the full list comes page by page: the last key of the page read last.
    full_after: Option<u64>,
    /// Since a full list of several pages, until the exact reads catch up: the reads from
    /// its first page's cursor may bring again a change a later page already listed.
    repeats: bool,
    prunes: bool,
    n: FeedCounts,
    high: HighWater,
}

impl FeedFollower {
    /// One read of at most `max`; returns whether to read again (`more`, or a full page).
    fn read(&mut self, store: &PresenceStore<u64>, feed: &FeedId, max: usize) -> bool {
        let who = "feed reader";
        let read = store.read_feed(feed, max).expect("read_feed");
        self.n.reads += 1;
        self.n.users += read.users.len() as u64;
        check_users_shape(&read.users, who);
        self.high.saw_all(&read.users, who);
        assert!(
            read.users.len() <= max,
            "{who}: {} users over max {max}",
            read.users.len()
        );
        if read.full {
            self.n.full += 1;
            assert!(
                self.prunes,
                "{who}: a full read ({:?}) while the log holds everything",
                read.reason
            );
            assert_eq!(read.reason, Some(FullReason::LogPruned), "{who}");
            assert!(
                read.users.windows(2).all(|w| w[0].0 < w[1].0),
                "{who}: a full read not sorted by key"
            );
            assert!(
                read.users
                    .iter()
                    .all(|(_, p)| p.category != Category::Offline),
                "{who}: an offline user in a full read"
            );
            if read.more {
                assert_eq!(read.users.len(), max, "{who}: more, yet a short page");
            }
            // The full list, page by page, replaces the view: the first page starts it, and
            // each page goes on after the last key of the one before.
            match self.full_after.take() {
                Some(after) => assert!(
                    read.users.first().is_none_or(|(k, _)| *k > after),
                    "{who}: a page of the full list starts at or before the last one's end"
                ),
                None => self.view = View::default(),
            }
            let last = read.users.last().map(|(k, _)| *k);
            self.view.extend(read.users);
            if read.more {
                self.full_after = last.or(Some(0));
                self.repeats = true;
            }
            self.last_ts = None;
            // Read again: the next page, or the exact reads from the first page's cursor
            // (which may have fallen behind again meanwhile, and start another full list).
            return true;
        }
        assert!(
            self.full_after.is_none(),
            "{who}: exact reads before the full list's last page"
        );
        assert_eq!(read.reason, None, "{who}: a reason without a full read");
        assert!(
            read.users.len() <= max,
            "{who}: {} users over max {max}",
            read.users.len()
        );
        if read.more {
            self.n.more += 1;
            assert_eq!(read.users.len(), max, "{who}: more, yet a short read");
        }
        let mut last = self.last_ts.filter(|_| self.ordered_across_reads);
        for (k, p) in read.users {
            // Oldest change first: the shards clamp their times, so a read is in time order
            // whatever the clock does.
            assert!(
                last.is_none_or(|t| p.updated_at >= t),
                "{who}: user {k} changed at {}, listed after a change at {last:?}",
                p.updated_at
            );
            last = Some(p.updated_at);
            if let Some(old) = self.view.get(&k) {
                // The feed resumes just after the last change it returned: a user comes back
                // only with a newer change (or, after a full list of several pages, the change
                // a later page listed).
                let newer = p.version > old.version || (self.repeats && p == *old);
                assert!(
                    newer && p.updated_at >= old.updated_at,
                    "{who}: user {k} went from {old:?} to {p:?}"
                );
            }
            self.view.insert(k, p);
        }
        if last.is_some() {
            self.last_ts = last;
        }
        if !read.more {
            self.repeats = false;
        }
        read.more
    }

    /// Reads until `more` is false.
    fn read_to_end(&mut self, store: &PresenceStore<u64>, feed: &FeedId, rng: &mut Rng) {
        while self.read(store, feed, 1 + rng.below(FEED_MAX) as usize) {}
    }
}

/// The feed reader: reads its feed with a random `max` of 1 to 7 while the writers run; every
/// `CHECK_EVERY`th read stops the world, reads to the end and compares. Now and then it also
/// creates, reads and deletes another feed.
fn feed_reader(
    store: &PresenceStore<u64>,
    gate: &Gate,
    feed: FeedId,
    mut reader: FeedFollower,
    seed: u64,
    done: &AtomicBool,
) -> FeedFollower {
    let mut rng = Rng(seed);
    let mut rounds = 0u64;
    loop {
        let finished = done.load(Ordering::Acquire);
        let quiet = maybe_stop_the_world(gate, rounds, finished);
        rounds += 1;
        if quiet.is_some() || finished {
            reader.read_to_end(store, &feed, &mut rng);
            let again = store.read_feed(&feed, 1).expect("read_feed");
            assert!(
                again.users.is_empty() && !again.more && !again.full,
                "feed reader: a quiet feed read to the end has more: {again:?}"
            );
            assert_follows_store(
                store,
                &reader.view,
                None,
                reader.prunes,
                "feed reader, world stopped",
            );
            reader.n.checks += 1;
            if finished {
                return reader;
            }
        } else if rng.below(2) == 0 {
            reader.read(store, &feed, 1 + rng.below(FEED_MAX) as usize);
        } else {
            // Try to catch up with the writers (they may keep ahead).
            for _ in 0..64 {
                if !reader.read(store, &feed, 1 + rng.below(FEED_MAX) as usize) {
                    reader.n.caught_up += 1;
                    break;
                }
            }
        }
        drop(quiet);
        if rounds % 32 == 0 {
            reader.n.churned += 1;
            let other = store.create_feed().expect("create_feed");
            let read = store.read_feed(&other, 5).expect("read_feed");
            assert!(read.users.len() <= 5 || read.full, "another feed: over max");
            assert!(!read.full || reader.prunes, "another feed: a full read");
            check_users_shape(&read.users, "another feed");
            store.delete_feed(&other).expect("delete_feed");
            assert!(matches!(
                store.read_feed(&other, 5),
                Err(Error::UnknownFeed { .. })
            ));
            assert!(matches!(
                store.delete_feed(&other),
                Err(Error::UnknownFeed { .. })
            ));
        }
        thread::yield_now();
    }
}

/// What a subscriber did.
#[derive(Default)]
struct SubCounts {
    events: u64,
    /// Events a resync had already covered.
    stale: u64,
    lags: u64,
    /// Resyncs that came back full (the log pruned past the `Lagged` cursor).
    full_resyncs: u64,
    resync_users: u64,
    checks: u64,
    /// Subscriptions opened and dropped while the writers ran.
    churned: u64,
}

/// A subscriber's view of the store, built from its events and its resyncs alone.
struct Follower {
    who: &'static str,
    view: View,
    /// Users whose entry came from a resync: an event the resync already covered may still come
    /// for them (one sent between the `Lagged` event and the delta).
    resynced: HashSet<u64>,
    /// Per user, the version of its last event: one user's events come in change order.
    last_event: BTreeMap<u64, u64>,
    /// Only these users, when filtered.
    filter: Option<HashSet<u64>>,
    /// The channel's capacity.
    capacity: usize,
    prunes: bool,
    /// Whether it also opens and drops other subscriptions while the writers run.
    churn: bool,
    n: SubCounts,
}

impl Follower {
    fn new(
        who: &'static str,
        filter: Option<HashSet<u64>>,
        capacity: usize,
        prunes: bool,
        churn: bool,
    ) -> Self {
        Follower {
            who,
            view: View::new(),
            resynced: HashSet::new(),
            last_event: BTreeMap::new(),
            filter,
            capacity,
            prunes,
            churn,
            n: SubCounts::default(),
        }
    }

    /// Subscribes as configured.
    fn subscribe(&self, store: &PresenceStore<u64>) -> Subscription<u64> {
        store.subscribe(SubscribeOptions {
            capacity: self.capacity,
            users: self.filter.as_ref().map(|f| f.iter().copied().collect()),
        })
    }

    fn follows(&self, user: u64) -> bool {
        self.filter.as_ref().is_none_or(|f| f.contains(&user))
    }

    fn on_event(&mut self, store: &PresenceStore<u64>, event: Event<u64>) {
        let who = self.who;
        let (user, p) = match event {
            Event::Lagged { resume } => {
                self.n.lags += 1;
                self.resync(store, &resume);
                return;
            }
            Event::Change { user, presence } => (user, presence),
        };
        self.n.events += 1;
        assert!(
            self.follows(user),
            "{who}: an event for user {user}, not followed"
        );
        check_users_shape(std::slice::from_ref(&(user, p.clone())), who);
        if let Some(last) = self.last_event.insert(user, p.version) {
            assert!(
                p.version > last,
                "{who}: user {user}: an event of version {} after one of version {last}",
                p.version
            );
        }
        match self.view.get(&user) {
            Some(old) if p.version <= old.version => {
                assert!(
                    self.resynced.contains(&user),
                    "{who}: user {user}: an event {p:?} older than its last event {old:?}"
                );
                if p.version == old.version {
                    assert_eq!(&p, old, "{who}: user {user}: one version, two states");
                }
                self.n.stale += 1;
            }
            old => {
                if let Some(old) = old {
                    assert!(
                        p.updated_at >= old.updated_at,
                        "{who}: user {user} went back in time from {old:?} to {p:?}"
                    );
                }
                self.resynced.remove(&user);
                self.view.insert(user, p);
            }
        }
    }

    /// Catches up from a cursor before every change not sent: a `Lagged` event's, or the empty
    /// store's when joining late.
    fn resync(&mut self, store: &PresenceStore<u64>, from: &Cursor) {
        let who = self.who;
        let delta = store.changes_since(&Since::Cursor(from.clone()));
        if delta.full {
            self.n.full_resyncs += 1;
            assert!(
                self.prunes,
                "{who}: a full resync ({:?}) while the log holds everything",
                delta.reason
            );
            assert_eq!(delta.reason, Some(FullReason::LogPruned), "{who}");
            check_users_shape(&delta.users, who);
            self.view.clear();
            self.resynced.clear();
        } else {
            check_delta_shape(&delta, who);
        }
        for (k, p) in delta.users {
            if !self.follows(k) {
                continue;
            }
            self.n.resync_users += 1;
            if let Some(old) = self.view.get(&k) {
                // Everything the view holds was committed before the delta was taken.
                assert!(
                    p.version >= old.version && p.updated_at >= old.updated_at,
                    "{who}: user {k} went back from {old:?} to {p:?} in a resync"
                );
                if p.version == old.version {
                    assert_eq!(&p, old, "{who}: user {k}: one version, two states");
                }
            }
            self.resynced.insert(k);
            self.view.insert(k, p);
        }
    }

    /// Takes every event ready, resyncs included, until the channel is empty and not lagged.
    fn drain(&mut self, store: &PresenceStore<u64>, sub: &Subscription<u64>) {
        while let Some(event) = sub.try_recv() {
            self.on_event(store, event);
        }
    }
}

/// A subscriber: takes bursts of events while the writers run, and now and then pauses so that
/// its tiny channel fills and it lags; every `CHECK_EVERY`th round stops the world, drains and
/// compares.
fn subscriber(
    store: &PresenceStore<u64>,
    gate: &Gate,
    sub: Subscription<u64>,
    mut follower: Follower,
    seed: u64,
    done: &AtomicBool,
) -> (Follower, Subscription<u64>) {
    let mut rng = Rng(seed);
    let capacity = follower.capacity as u64;
    let mut rounds = 0u64;
    loop {
        let finished = done.load(Ordering::Acquire);
        let quiet = maybe_stop_the_world(gate, rounds, finished);
        rounds += 1;
        if quiet.is_some() || finished {
            follower.drain(store, &sub);
            assert_eq!(sub.try_recv(), None, "{}: drained, yet more", follower.who);
            assert_follows_store(
                store,
                &follower.view,
                follower.filter.as_ref(),
                follower.prunes,
                follower.who,
            );
            follower.n.checks += 1;
            if finished {
                return (follower, sub);
            }
        } else {
            for _ in 0..1 + rng.below(4 * capacity) {
                match sub.recv_timeout(Duration::from_millis(1)) {
                    Some(event) => follower.on_event(store, event),
                    None => break,
                }
            }
        }
        drop(quiet);
        if rng.below(8) == 0 {
            // Fall behind on purpose.
            thread::sleep(Duration::from_micros(300));
        }
        if follower.churn && rounds % 16 == 0 {
            follower.n.churned += 1;
            let other = store.subscribe(SubscribeOptions {
                capacity: 1,
                users: None,
            });
            if let Some(Event::Change { user, presence }) = other.try_recv() {
                check_users_shape(&[(user, presence)], "another subscriber");
            }
        }
    }
}

/// With the store quiet: `view` holds the state of every user the store knows (of those
/// followed), and only tombstones of removed users besides. With `offline_may_be_missing` (the
/// log was pruned, so reads and resyncs may have been full), a user offline may be missing.
fn assert_follows_store(
    store: &PresenceStore<u64>,
    view: &View,
    filter: Option<&HashSet<u64>>,
    offline_may_be_missing: bool,
    who: &str,
) {
    let follows = |k: &u64| filter.is_none_or(|f| f.contains(k));
    let live = live_users(store);
    for (k, p) in live.iter().filter(|(k, _)| follows(k)) {
        assert_eq!(
            store.get(k).as_ref(),
            Some(p),
            "user {k}: get disagrees with a scan"
        );
        match view.get(k) {
            Some(v) => assert_eq!(v, p, "{who}: user {k} is not at its current state"),
            None => assert!(
                offline_may_be_missing && p.category == Category::Offline,
                "{who}: user {k} missing, the store has {p:?}"
            ),
        }
    }
    for (k, p) in view {
        assert!(follows(k), "{who}: user {k} not followed, yet in the view");
        if !live.contains_key(k) {
            assert_eq!(
                store.get(k),
                None,
                "{who}: user {k} known, yet not in a scan"
            );
            assert_eq!(
                (p.category, p.activity),
                (Category::Offline, Activity::Offline),
                "{who}: user {k} was removed, yet the view has {p:?}"
            );
        }
    }
}

fn run_follow(setup: FollowSetup) {
    let race = setup.race;
    let seed = base_seed();
    let prunes = setup.log_capacity < 1 << 30;
    let config = StoreConfig::default()
        .with_shards(race.shards)
        .with_delta_window(Duration::from_secs(24 * 3600))
        .with_log_capacity(setup.log_capacity)
        .with_session_timeouts(
            Duration::from_millis(race.idle_after_ms),
            Duration::from_millis(race.ttl_ms),
        );
    let manual = race.manual_clock.then(|| Arc::new(ManualClock::new(T0)));
    let clock: Arc<dyn Clock> = match &manual {
        Some(m) => m.clone(),
        None => Arc::new(SystemClock),
    };
    let store = Arc::new(PresenceStore::<u64>::with_clock(config, clock));
    let start_cursor = store.cursor();
    let until = match soak() {
        Some(d) => Until::Deadline(Instant::now() + d),
        None => Until::Ops(race.ops_per_writer * if cfg!(debug_assertions) { 1 } else { 5 }),
    };
    // Above every key a writer may touch.
    let top = 2 * (race.writers * race.users / 2 + race.users + race.cold_users);

    let gate = Arc::new(Gate::default());
    let writers_done = Arc::new(AtomicBool::new(false));
    let all_done = Arc::new(AtomicBool::new(false));
    // With the log whole, a cursor poller and a pager join the race too, so that every kind of
    // reader runs at once.
    let pollers = !prunes;
    let go = Arc::new(Barrier::new(
        race.writers as usize + 5 + if pollers { 2 } else { 0 },
    ));
    let began = Instant::now();

    // The feed starts on the empty store, so its reader starts from an empty view.
    let feed = store.create_feed().expect("create_feed");
    let writers: Vec<_> = (0..race.writers)
        .map(|w| {
            let (store, gate, go) = (store.clone(), gate.clone(), go.clone());
            let seed = seed.wrapping_add(w.wrapping_mul(0x51_7cc1_b727_220a));
            thread::spawn(move || {
                go.wait();
                writer(&store, &gate, w, race, seed, until)
            })
        })
        .collect();
    let sweeper = spawn_sweeper(&store, &gate, &go, &writers_done);
    let ticker = spawn_ticker(manual.clone(), &gate, &go, &writers_done, race, seed);
    let reading = {
        let (store, gate, go, done) = (store.clone(), gate.clone(), go.clone(), all_done.clone());
        let reader = FeedFollower {
            view: View::new(),
            last_ts: None,
            full_after: None,
            repeats: false,
            ordered_across_reads: race.manual_clock && race.step_back_ms == 0,
            prunes,
            n: FeedCounts::default(),
            high: HighWater::default(),
        };
        thread::spawn(move || {
            go.wait();
            feed_reader(&store, &gate, feed, reader, seed ^ 0xfeed, &done)
        })
    };
    let subscribing = {
        let (store, gate, go, done) = (store.clone(), gate.clone(), go.clone(), all_done.clone());
        let follower = Follower::new("subscriber", None, setup.capacity, prunes, false);
        // Subscribed before any write, so it too starts from an empty view.
        let sub = follower.subscribe(&store);
        thread::spawn(move || {
            go.wait();
            subscriber(&store, &gate, sub, follower, seed ^ 0x5ab, &done)
        })
    };
    let late = {
        let (store, gate, go, done) = (store.clone(), gate.clone(), go.clone(), all_done.clone());
        let start = start_cursor.clone();
        let filter = (0..top).filter(|k| k % FOLLOW_EVERY == 0).collect();
        let mut follower = Follower::new("filtered subscriber", Some(filter), 3, prunes, true);
        thread::spawn(move || {
            go.wait();
            // Joins while the writers run: subscribes, then catches up from the empty store's
            // cursor; events the catch-up already covers may follow.
            thread::sleep(Duration::from_millis(5));
            let sub = follower.subscribe(&store);
            follower.resync(&store, &start);
            subscriber(&store, &gate, sub, follower, seed ^ 0x1a7e, &done)
        })
    };
    let polling = pollers.then(|| {
        let (store, gate, go, done) = (store.clone(), gate.clone(), go.clone(), all_done.clone());
        let start = start_cursor.clone();
        thread::spawn(move || {
            go.wait();
            cursor_poller(&store, &gate, start, &done)
        })
    });
    let paging = pollers.then(|| {
        let (store, gate, go, done) = (store.clone(), gate.clone(), go.clone(), all_done.clone());
        thread::spawn(move || {
            go.wait();
            pager(&store, &gate, seed ^ 0x9a9e, &done)
        })
    });

    // Join everything before raising a thread's panic again, so no thread is left spinning.
    let stats: Vec<_> = writers.into_iter().map(|h| h.join()).collect();
    writers_done.store(true, Ordering::Release);
    let (sweeper, ticker) = (sweeper.join(), ticker.join());
    let write_secs = began.elapsed().as_secs_f64();
    all_done.store(true, Ordering::Release);
    let (reading, subscribing, late) = (reading.join(), subscribing.join(), late.join());
    let (polling, paging) = (polling.map(|h| h.join()), paging.map(|h| h.join()));
    let stats: Vec<WriterStats> = stats.into_iter().map(rethrow).collect();
    let (sweeps, transitions) = rethrow(sweeper);
    let (_, high, _) = rethrow(ticker);
    let mut reader = rethrow(reading);
    let (mut everyone, sub) = rethrow(subscribing);
    let (mut filtered, filtered_sub) = rethrow(late);

    // All quiet: each view is the store (each reader checked it on its way out already). With
    // the log whole, each also holds every removal, as the log tells it.
    let check_all = |reader: &FeedFollower, everyone: &Follower, filtered: &Follower| {
        for (view, follower) in [
            (&reader.view, None),
            (&everyone.view, Some(everyone)),
            (&filtered.view, Some(filtered)),
        ] {
            let filter = follower.and_then(|f| f.filter.as_ref());
            let who = follower.map_or("feed reader", |f| f.who);
            assert_follows_store(&store, view, filter, prunes, who);
            if !prunes {
                let (all, _) = reference(&store, &start_cursor);
                let all: View = all
                    .into_iter()
                    .filter(|(k, _)| filter.is_none_or(|f| f.contains(k)))
                    .collect();
                assert_eq!(view, &all, "{who}: missing removals");
            }
        }
    };
    check_all(&reader, &everyone, &filtered);
    assert!(
        everyone.n.lags > 0,
        "the subscriber never lagged: the resync path went untested"
    );
    let mut raced = String::new();
    if let (Some(polling), Some(paging)) = (polling, paging) {
        let (poll_view, _, polled) = rethrow(polling);
        let mut paged = rethrow(paging);
        let (all, live) = reference(&store, &start_cursor);
        assert_view_is_final(&poll_view, &all, &live, "cursor poller", true);
        check_pager(&store, &mut paged, &all, &live);
        raced = format!(
            " | cursor poller {} deltas ({} users, {} raced by writes), {} checks | pager {} \
             scans ({} pages, {} raced by writes), {} checked world-stopped, {} checked at the end \
             from their first page's cursor",
            polled.polls,
            polled.users,
            polled.raced,
            polled.checks,
            paged.scans_during_writes,
            paged.pages,
            paged.raced,
            paged.checks,
            paged.scans.len(),
        );
    }

    // Sessions age once the writers are gone; the sweep's changes reach every reader too.
    let mut aged = 0;
    for wait_ms in [race.idle_after_ms, race.ttl_ms] {
        match &manual {
            Some(m) => m.set(high + wait_ms),
            None => thread::sleep(Duration::from_millis(wait_ms + 5)),
        }
        aged += store.sweep();
    }
    let mut rng = Rng(seed);
    reader.read_to_end(&store, &feed, &mut rng);
    everyone.drain(&store, &sub);
    filtered.drain(&store, &filtered_sub);
    check_all(&reader, &everyone, &filtered);
    store.delete_feed(&feed).expect("delete_feed");
    drop((sub, filtered_sub));
    store.sweep();

    let sum = |f: fn(&WriterStats) -> u64| stats.iter().map(f).sum::<u64>();
    let r = &reader.n;
    let describe = |f: &Follower| {
        let n = &f.n;
        format!(
            "{} {} events ({} stale), {} lags, {} resyncs full, {} users resynced, {} checks",
            f.who, n.events, n.stale, n.lags, n.full_resyncs, n.resync_users, n.checks
        )
    };
    eprintln!(
        "feeds and subscriptions: shards {}, log {}, capacity {}, {} clock, seed {seed}: {} ops \
         in {write_secs:.2}s by {} writers ({} set, {} heartbeat, {} disconnect, {} remove, {} \
         message); {sweeps} sweeps, {transitions} transitions | feed {} reads ({} users, {} \
         with more, {} full, {} caught up), {} checks, {} other feeds, {} versions checked \
         against its water marks | {} | {}, {} subscriptions opened and dropped{raced} | {} users \
         live, {aged} sessions aged after the writers",
        race.shards,
        if prunes {
            setup.log_capacity.to_string()
        } else {
            "whole".into()
        },
        setup.capacity,
        if race.manual_clock {
            "manual"
        } else {
            "system"
        },
        sum(|s| s.ops),
        race.writers,
        sum(|s| s.sets),
        sum(|s| s.heartbeats),
        sum(|s| s.disconnects),
        sum(|s| s.removes),
        sum(|s| s.messages),
        r.reads,
        r.users,
        r.more,
        r.full,
        r.caught_up,
        r.checks,
        r.churned,
        reader.high.checked,
        describe(&everyone),
        describe(&filtered),
        filtered.n.churned,
        store.len(),
    );
}

const FOLLOW: FollowSetup = FollowSetup {
    race: Setup {
        ops_per_writer: 10_000,
        messages: true,
        ..BASE
    },
    log_capacity: 1 << 40,
    capacity: 2,
};

#[test]
fn feeds_and_lagging_subscribers_end_at_the_final_state() {
    run_follow(FOLLOW);
}

#[test]
fn one_shard_feeds_and_a_subscriber_of_one_event_end_at_the_final_state() {
    run_follow(FollowSetup {
        race: Setup {
            shards: 1,
            ..FOLLOW.race
        },
        capacity: 1,
        ..FOLLOW
    });
}

#[test]
fn pruned_log_feeds_read_full_and_subscribers_resync_full_clock_stepping_back() {
    run_follow(FollowSetup {
        race: Setup {
            shards: 3,
            writers: 3,
            step_back_ms: 40,
            ..FOLLOW.race
        },
        log_capacity: 48,
        capacity: 4,
    });
}
