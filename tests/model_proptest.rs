//! Random operation sequences against the store and the naive reference model (`tests/model`),
//! compared after every step: every user's presence, `len`, `get_many`, full paging walks,
//! time deltas (window boundaries included) and deltas from every cursor taken so far. A second
//! property checks the paging guarantee: pages read with writes in between, merged with the delta
//! from the first page's cursor, equal the final state.
//!
//! Setups vary the shard count (1, 4, 16), the session timeouts (including `idle_after` above
//! the TTL), the delta window (wide, or 1 s / 5 s so that log pruning and the `OutsideWindow` and
//! `LogPruned` fallbacks come up) and, with one shard, a tiny log capacity (where the model knows
//! exactly what was pruned). 256 cases per property by default; `PROPTEST_CASES` changes it. A
//! failing case, shrunk, is saved in `proptest-regressions/model_proptest.txt` and replayed first
//! on every run.

mod model;

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use model::reads::{Reads, TestResult};
use model::{Model, ModelCursor, Versions};
use presence_store::{
    Activity, Category, Cursor, Error, FullReason, Key, ManualClock, PageQuery, Presence,
    PresenceStore, SetMode, Since, StoreConfig,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

const USERS: u8 = 20;
const SESSIONS: [u64; 3] = [0, 7, u64::MAX];
const ACTIVITIES: [Activity; 3] = [Activity::Active, Activity::Idle, Activity::Offline];

#[derive(Clone, Debug)]
enum Op {
    Set {
        user: u8,
        category: Category,
        hard: bool,
    },
    Heartbeat {
        user: u8,
        session: usize,
        activity: Activity,
    },
    Disconnect {
        user: u8,
        session: usize,
    },
    Remove {
        user: u8,
    },
    Sweep,
    Advance(Step),
    TakeCursor,
}

/// How far an `Op::Advance` moves the clock: some ms, or one of the session timeouts give or
/// take a millisecond, so that their exact edges come up in every setup.
#[derive(Clone, Copy, Debug)]
enum Step {
    Ms(u64),
    IdleAfter(i8),
    Ttl(i8),
}

impl Step {
    fn ms(self, setup: &Setup) -> u64 {
        match self {
            Step::Ms(ms) => ms,
            Step::IdleAfter(d) => setup.idle_after_ms.saturating_add_signed(d.into()),
            Step::Ttl(d) => setup.session_ttl_ms.saturating_add_signed(d.into()),
        }
    }
}

#[derive(Clone, Debug)]
struct Setup {
    shards: usize,
    idle_after_ms: u64,
    session_ttl_ms: u64,
    window_ms: u64,
    pages: (usize, usize),
    start_ms: u64,
    /// Below `BIG_LOG` only with one shard and the wide window: then the model knows exactly
    /// which changes the store has pruned (the oldest beyond the capacity).
    log_capacity: usize,
}

/// A log capacity no case reaches.
const BIG_LOG: usize = 1 << 18;
const WIDE_WINDOW: u64 = 600_000;

impl Setup {
    fn config(&self) -> StoreConfig {
        StoreConfig::default()
            .with_shards(self.shards)
            .with_session_timeouts(
                Duration::from_millis(self.idle_after_ms),
                Duration::from_millis(self.session_ttl_ms),
            )
            .with_delta_window(Duration::from_millis(self.window_ms))
            .with_page_limits(self.pages.0, self.pages.1)
            .with_log_capacity(self.log_capacity)
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        select(vec![1usize, 4, 16]),
        select(vec![(60u64, 120u64), (100, 100), (120, 60), (1500, 2500)]),
        prop_oneof![3 => Just(WIDE_WINDOW), 1 => Just(1_000), 1 => Just(5_000)],
        prop_oneof![3 => Just((1000usize, 5000usize)), 1 => Just((3, 8))],
        0..2000u64,
        prop_oneof![4 => Just(None), 1 => (1..10usize).prop_map(Some)],
    )
        .prop_map(
            |(shards, (idle_after_ms, session_ttl_ms), window_ms, pages, start, small_log)| {
                let mut setup = Setup {
                    shards,
                    idle_after_ms,
                    session_ttl_ms,
                    window_ms,
                    pages,
                    start_ms: 1_700_000_000_000 + start,
                    log_capacity: BIG_LOG,
                };
                if let Some(capacity) = small_log {
                    setup.shards = 1;
                    setup.window_ms = WIDE_WINDOW;
                    setup.log_capacity = capacity;
                }
                setup
            },
        )
}

/// The setups whose clock never leaves the window in a case: no pruning, no fallback.
fn setup_wide_window() -> impl Strategy<Value = Setup> {
    setup().prop_map(|s| Setup {
        window_ms: WIDE_WINDOW,
        log_capacity: BIG_LOG,
        ..s
    })
}

/// A user: mostly one of a few, so that each sees many operations in a case.
fn user() -> BoxedStrategy<u8> {
    prop_oneof![3 => 0..4u8, 2 => 0..USERS].boxed()
}

fn op() -> impl Strategy<Value = Op> {
    let user = user();
    let session = 0..SESSIONS.len();
    prop_oneof![
        3 => (user.clone(), select(Category::ALL.to_vec()), any::<bool>())
            .prop_map(|(user, category, hard)| Op::Set { user, category, hard }),
        5 => (user.clone(), session.clone(), select(ACTIVITIES.to_vec()))
            .prop_map(|(user, session, activity)| Op::Heartbeat { user, session, activity }),
        2 => (user.clone(), session).prop_map(|(user, session)| Op::Disconnect { user, session }),
        1 => user.prop_map(|user| Op::Remove { user }),
        2 => Just(Op::Sweep),
        3 => prop_oneof![
            5 => (0..200u64).prop_map(Step::Ms),
            1 => (-1i8..=1).prop_map(Step::IdleAfter),
            1 => (-1i8..=1).prop_map(Step::Ttl),
            1 => select(vec![1u64, 999, 1000, 1001]).prop_map(Step::Ms),
        ]
        .prop_map(Op::Advance),
        1 => Just(Op::TakeCursor),
    ]
}

fn u64_key(i: u8) -> u64 {
    u64::from(i)
}

/// Unpadded, so key order is not index order ("user10" < "user2").
fn string_key(i: u8) -> String {
    format!("user{i}")
}

/// A store and the model, driven together.
struct Harness<K> {
    setup: Setup,
    clock: Arc<ManualClock>,
    store: PresenceStore<K>,
    model: Model<K>,
    versions: Versions<K>,
    cursors: Vec<(Cursor, ModelCursor)>,
    key: fn(u8) -> K,
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

impl<K: Key> Harness<K> {
    fn new(setup: &Setup, key: fn(u8) -> K) -> Self {
        let clock = Arc::new(ManualClock::new(setup.start_ms));
        let config = setup.config();
        let store = PresenceStore::with_clock(config.clone(), clock.clone());
        let model = Model::new(&config, setup.start_ms);
        let mut h = Harness {
            setup: setup.clone(),
            clock,
            store,
            model,
            versions: Versions::new(),
            cursors: Vec::new(),
            key,
        };
        h.take_cursor();
        h
    }

    fn keys(&self) -> Vec<K> {
        (0..USERS).map(self.key).collect()
    }

    /// The store and model, borrowed for one round of comparisons.
    fn reads(&mut self) -> Reads<'_, K> {
        let pruned_by_capacity = self.pruned_by_capacity();
        Reads {
            store: &self.store,
            model: &self.model,
            versions: &mut self.versions,
            cursors: &self.cursors,
            window_ms: self.setup.window_ms,
            pruned_by_capacity,
            users: usize::from(USERS),
        }
    }

    fn take_cursor(&mut self) {
        let cursor = self.store.cursor();
        assert_eq!(
            cursor.to_string().parse::<Cursor>().ok(),
            Some(cursor.clone())
        );
        self.cursors.push((cursor, self.model.cursor()));
    }

    /// Applies one operation to both and compares what they return.
    fn apply(&mut self, op: &Op) -> TestResult {
        match *op {
            Op::Set {
                user,
                category,
                hard,
            } => {
                let k = (self.key)(user);
                let mode = if hard { SetMode::Hard } else { SetMode::Soft };
                let exp = self.model.set(&k, category, mode);
                let got = self
                    .store
                    .set(&k, category, mode)
                    .map_err(|e| fail(format!("set: {e}")))?;
                self.reads().same("set", &k, &got, &exp)
            }
            Op::Heartbeat {
                user,
                session,
                activity,
            } => {
                let k = (self.key)(user);
                let s = SESSIONS[session];
                let exp = self.model.heartbeat(&k, s, activity);
                let got = self
                    .store
                    .heartbeat(&k, s, activity)
                    .map_err(|e| fail(format!("heartbeat: {e}")))?;
                self.reads().same("heartbeat", &k, &got, &exp)
            }
            Op::Disconnect { user, session } => {
                let k = (self.key)(user);
                let s = SESSIONS[session];
                match (self.model.disconnect(&k, s), self.store.disconnect(&k, s)) {
                    (Ok(exp), Ok(got)) => self.reads().same("disconnect", &k, &got, &exp),
                    (Err(_), Err(Error::UnknownUser { .. })) => Ok(()),
                    (exp, got) => Err(fail(format!(
                        "disconnect {k:?}: store {got:?}, model {exp:?}"
                    ))),
                }
            }
            Op::Remove { user } => {
                let k = (self.key)(user);
                match (self.model.remove(&k), self.store.remove(&k)) {
                    (Some(exp), Some(got)) => {
                        self.reads().same("remove (old presence)", &k, &got, &exp)
                    }
                    (None, None) => Ok(()),
                    (exp, got) => Err(fail(format!("remove {k:?}: store {got:?}, model {exp:?}"))),
                }
            }
            Op::Sweep => {
                let exp = self.model.sweep();
                let got = self.store.sweep();
                prop_assert_eq!(got, exp, "sweep count");
                Ok(())
            }
            Op::Advance(step) => {
                let ms = step.ms(&self.setup);
                self.clock.advance(Duration::from_millis(ms));
                self.model.advance(ms);
                Ok(())
            }
            Op::TakeCursor => {
                self.take_cursor();
                Ok(())
            }
        }
    }

    /// Compares every read the store offers with the model.
    fn check_all(&mut self, step: usize) -> TestResult {
        let keys = self.keys();
        prop_assert_eq!(self.store.len(), self.model.len(), "len");
        prop_assert_eq!(self.store.is_empty(), self.model.is_empty(), "is_empty");
        for k in &keys {
            match (self.store.get(k), self.model.get(k)) {
                (Some(got), Some(exp)) => self.reads().same("get", k, &got, &exp)?,
                (None, None) => {}
                (got, exp) => return Err(fail(format!("get {k:?}: store {got:?}, model {exp:?}"))),
            }
        }
        let mut asked = keys.clone();
        asked.extend([keys[3].clone(), keys[0].clone(), keys[3].clone()]);
        let got = self.store.get_many(&asked);
        let exp = self.model.get_many(&asked);
        self.reads().same_list("get_many", &got, &exp)?;

        // Paging walks, both filters, with a small limit that varies by step.
        let limit = 1 + step % 5;
        for include_offline in [true, false] {
            self.reads().walk(limit, include_offline)?;
        }
        // One page from an arbitrary bound, at the default limit.
        let k = keys[step % keys.len()].clone();
        let start = if step % 2 == 0 {
            Bound::Included(k)
        } else {
            Bound::Excluded(k)
        };
        self.reads().page_once(start, None, step % 3 != 0)?;
        for bad in [0, self.setup.pages.1 + 1] {
            let got = self
                .store
                .page(&PageQuery::first().with_limit(bad))
                .map(|p| p.items.len());
            let max = self.setup.pages.1;
            prop_assert_eq!(
                got,
                Err(Error::InvalidLimit { limit: bad, max }),
                "page limit {}",
                bad
            );
        }

        let mut reads = self.reads();
        reads.time_deltas()?;
        reads.cursor_deltas()
    }

    /// How many of the oldest changes the store has dropped for its log capacity (only set up
    /// with one shard and no window pruning, where this is exact).
    fn pruned_by_capacity(&self) -> usize {
        if self.setup.log_capacity == BIG_LOG {
            return 0;
        }
        assert_eq!(self.setup.shards, 1);
        self.model.log.len().saturating_sub(self.setup.log_capacity)
    }

    /// Cursors of other stores (same shard count, and another) give the full list.
    fn check_foreign_cursors(&mut self) -> TestResult {
        for shards in [self.setup.shards, self.setup.shards * 2] {
            let config = self.setup.config().with_shards(shards);
            let other: PresenceStore<K> = PresenceStore::with_clock(config, self.clock.clone());
            let delta = self.store.changes_since(&Since::Cursor(other.cursor()));
            let exp = self.model.full(FullReason::ForeignCursor);
            self.reads()
                .same_delta(&format!("foreign cursor ({shards} shards)"), &delta, &exp)?;
        }
        Ok(())
    }
}

fn run_ops<K: Key>(setup: &Setup, ops: &[Op], key: fn(u8) -> K) -> TestResult {
    let mut h = Harness::new(setup, key);
    h.check_all(0)?;
    for (step, op) in ops.iter().enumerate() {
        h.apply(op)
            .map_err(|e| fail(format!("step {step} {op:?}: {e}")))?;
        h.check_all(step + 1)
            .map_err(|e| fail(format!("after step {step} {op:?}: {e}")))?;
    }
    h.check_foreign_cursors()
}

/// Builds a state, pages through it with writes between pages, then checks that the pages
/// merged with the delta from the first page's cursor are the final state.
fn run_paging(
    setup: &Setup,
    before: &[Op],
    between: &[Vec<Op>],
    limit: usize,
    include_offline: bool,
) -> TestResult {
    let mut h = Harness::new(setup, u64_key);
    for (step, op) in before.iter().enumerate() {
        h.apply(op)
            .map_err(|e| fail(format!("setup step {step} {op:?}: {e}")))?;
    }
    let mut merged: std::collections::BTreeMap<u64, Presence> = Default::default();
    let mut first_cursor = None;
    let mut start = Bound::Unbounded;
    let mut gaps = between.iter().cycle();
    loop {
        let query = PageQuery {
            start,
            limit: Some(limit),
            include_offline,
        };
        let page = h
            .store
            .page(&query)
            .map_err(|e| fail(format!("{query:?}: {e}")))?;
        first_cursor.get_or_insert((page.cursor.clone(), h.model.cursor()));
        for (k, p) in page.items {
            prop_assert!(merged.insert(k, p).is_none(), "{} listed twice", k);
        }
        let Some(next) = page.next else { break };
        start = Bound::Included(next);
        for op in gaps.next().into_iter().flatten() {
            h.apply(op)
                .map_err(|e| fail(format!("between pages, {op:?}: {e}")))?;
        }
    }
    let (cursor, at) = first_cursor.unwrap();
    let delta = h.store.changes_since(&Since::Cursor(cursor));
    let exp = h.model.changes_since_cursor(at);
    h.reads()
        .same_delta("delta from the first page's cursor", &delta, &exp)?;
    for (k, p) in delta.users {
        merged.insert(k, p);
    }
    // Every user merged shows its latest state (a removed one its tombstone)...
    for (k, p) in &merged {
        let exp = h
            .model
            .latest(k)
            .ok_or_else(|| fail(format!("{k} merged but never seen")))?;
        h.reads().same("merged", k, p, &exp)?;
    }
    // ...and every user the pages should list is there.
    for (k, u) in &h.model.users {
        if include_offline || u.category != Category::Offline {
            prop_assert!(merged.contains_key(k), "{} missed by pages and delta", k);
        }
    }
    Ok(())
}

/// Where a failing case is saved (see `model::proptest_config`).
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/model_proptest.txt"
);

proptest! {
    #![proptest_config(model::proptest_config(REGRESSIONS))]

    #[test]
    fn store_matches_model_u64_keys(
        setup in setup(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        run_ops(&setup, &ops, u64_key)?;
    }

    #[test]
    fn store_matches_model_string_keys(
        setup in setup(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        run_ops(&setup, &ops, string_key)?;
    }

    #[test]
    fn pages_and_first_cursor_delta_miss_nothing(
        setup in setup_wide_window(),
        before in prop::collection::vec(op(), 0..60),
        between in prop::collection::vec(prop::collection::vec(op(), 0..4), 1..8),
        limit in 1..5usize,
        include_offline in any::<bool>(),
    ) {
        run_paging(&setup, &before, &between, limit, include_offline)?;
    }
}

/// The crate docs' quick start, through the harness: a sanity check of the model itself.
#[test]
fn model_agrees_on_the_quick_start() {
    let setup = Setup {
        shards: 4,
        idle_after_ms: 60_000,
        session_ttl_ms: 120_000,
        window_ms: 600_000,
        pages: (1000, 5000),
        start_ms: 1_700_000_000_000,
        log_capacity: BIG_LOG,
    };
    let ops = [
        Op::Set {
            user: 7,
            category: Category::Busy,
            hard: false,
        },
        Op::Heartbeat {
            user: 7,
            session: 1,
            activity: Activity::Active,
        },
        Op::Heartbeat {
            user: 3,
            session: 1,
            activity: Activity::Active,
        },
        Op::TakeCursor,
        Op::Disconnect {
            user: 7,
            session: 1,
        },
        Op::Advance(Step::Ms(60_000)),
        Op::Sweep,
    ];
    run_ops(&setup, &ops, u64_key).unwrap();
    let mut h = Harness::new(&setup, u64_key);
    for op in &ops {
        h.apply(op).unwrap();
    }
    let three = h.model.get(&3).unwrap().visible;
    assert_eq!(
        (three.category, three.activity),
        (Category::Away, Activity::Idle)
    );
    let seven = h.model.get(&7).unwrap().visible;
    assert_eq!(
        (seven.category, seven.requested),
        (Category::Offline, Category::Busy)
    );
}
