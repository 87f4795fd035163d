//! `ops`: an arbitrary sequence of operations over every layer of the store (sets, heartbeats,
//! disconnects, removals, sweeps, clock steps, pages, deltas by time and by cursor, status
//! messages, presence definitions, presence sources, feeds), run against the store and the naive
//! reference model of `tests/model`, with every read compared after every step.
//!
//! The input's first bytes pick a setup (shard count, session timeouts, delta window, page
//! limits, a tiny log with one shard, few feeds, a short feed expiry); the rest is read as
//! operations until it runs out or [`MAX_OPS`] are done. Keys come from twelve `u64`s (small
//! ones and the top of the range), so operations keep meeting the same users. After each
//! operation its result is compared with the model's, then every read the store offers: each
//! user's presence and presence from each source, primary sources, `len`, `get_many`, the
//! registries, paging walks with both filters, time deltas at every boundary, deltas from every
//! cursor taken (the per-step reads of `tests/model/reads.rs`, shared with the proptests). Feeds
//! are drained at the end. A mismatch panics with the setup and the operations so far.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use presence_store::{
    Activity, Category, Cursor, DefinitionId, Error, FeedId, FullReason, ManualClock, Presence,
    PresenceStore, SetMode, Since, SourceId, StoreConfig, SystemPresence,
};
use proptest::test_runner::TestCaseError;

use crate::model::reads::{Reads, TestResult};
use crate::model::{
    Expected, Model, ModelCursor, ModelError, ModelFeedRead, Versions, DEFAULT_SOURCE,
};

/// The most operations one input runs.
pub const MAX_OPS: usize = 64;
/// How many users the operations name.
const USERS: u8 = 12;
const SESSIONS: [u64; 4] = [0, 7, u64::MAX, 1];
const ACTIVITIES: [Activity; 3] = [Activity::Active, Activity::Idle, Activity::Offline];
/// `max_message_len` of every setup, in bytes.
const MAX_MESSAGE: usize = 8;
/// A definition id no definition has, for ids that are not valid ids at all.
const UNKNOWN_DEFINITION: &str = "nope";
const UNKNOWN_SOURCE: &str = "no-such-source";
/// A log capacity no input reaches.
const BIG_LOG: usize = 1 << 18;
const WIDE_WINDOW: u64 = 600_000;

/// The `i`th user's key (modulo [`USERS`]): 0 to 9, then `u64::MAX` and `u64::MAX - 1`.
fn key(i: u8) -> u64 {
    match i % USERS {
        10 => u64::MAX,
        11 => u64::MAX - 1,
        i => u64::from(i),
    }
}

/// What the input's first bytes say about the store's configuration.
#[derive(Arbitrary, Clone, Debug)]
struct SetupArgs {
    shards: u8,
    timeouts: u8,
    window: u8,
    small_pages: bool,
    /// Below 48 (about one input in five): a log of 1 to 9 entries, one shard.
    small_log: u8,
    few_feeds: bool,
    expiry: u8,
    start: u16,
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
    /// how many of the oldest changes the store has pruned.
    log_capacity: usize,
    max_feeds: usize,
    feed_expiry_ms: u64,
}

impl From<SetupArgs> for Setup {
    fn from(a: SetupArgs) -> Self {
        let (idle_after_ms, session_ttl_ms) =
            [(60, 120), (120, 60), (1500, 2500)][usize::from(a.timeouts % 3)];
        let mut setup = Setup {
            shards: [1, 4, 16][usize::from(a.shards % 3)],
            idle_after_ms,
            session_ttl_ms,
            window_ms: [WIDE_WINDOW, WIDE_WINDOW, 1_000, 5_000][usize::from(a.window % 4)],
            pages: if a.small_pages { (2, 3) } else { (1000, 5000) },
            start_ms: 1_700_000_000_000 + u64::from(a.start),
            log_capacity: BIG_LOG,
            max_feeds: if a.few_feeds { 2 } else { 1000 },
            feed_expiry_ms: [3_600_000, 300, 3_000][usize::from(a.expiry % 3)],
        };
        if a.small_log < 48 {
            setup.shards = 1;
            setup.window_ms = WIDE_WINDOW;
            setup.log_capacity = 1 + usize::from(a.small_log % 9);
        }
        setup
    }
}

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
            .with_feeds(self.max_feeds, Duration::from_millis(self.feed_expiry_ms))
            .with_max_message_len(MAX_MESSAGE)
    }
}

/// A key an operation names: one of the users, or any `u64` (for page starts).
#[derive(Arbitrary, Clone, Copy, Debug)]
enum KeyArg {
    User(u8),
    Raw(u64),
}

impl KeyArg {
    fn key(self) -> u64 {
        match self {
            KeyArg::User(i) => key(i),
            KeyArg::Raw(k) => k,
        }
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Start {
    Unbounded,
    Included(KeyArg),
    Excluded(KeyArg),
}

/// A page limit or a feed read's `max`.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Limit {
    /// No limit (the default page; a feed read takes 1).
    Default,
    Zero,
    N(u8),
    Max,
    OverMax,
    Raw(u64),
}

impl Limit {
    fn get(self, max_page: usize) -> Option<usize> {
        match self {
            Limit::Default => None,
            Limit::Zero => Some(0),
            Limit::N(n) => Some(usize::from(n)),
            Limit::Max => Some(max_page),
            Limit::OverMax => Some(max_page + 1),
            Limit::Raw(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }
}

/// A time for a delta: some ms ago, some ms ahead, or any time at all.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum When {
    Ago(u32),
    Ahead(u16),
    At(u64),
}

/// How far an `Op::Advance` moves the clock.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Step {
    Ms(u8),
    Seconds(u8),
    IdleAfter(i8),
    Ttl(i8),
    Window(i8),
}

/// A definition an op names.
#[derive(Arbitrary, Clone, Debug)]
enum Def {
    System(u8),
    /// The `n`th org definition created (modulo how many; deleted ones included), or an
    /// unknown id while none exists.
    Org(u8),
    /// Any text: an unknown id (or a system one, if it spells one), or no valid id at all.
    Text(String),
}

/// A source an op names.
#[derive(Arbitrary, Clone, Debug)]
enum Src {
    Default,
    /// `purecloud`: the same source.
    DefaultLower,
    /// The `n`th source created (modulo how many; deleted ones included), or an unknown id
    /// while none exists.
    Created(u8),
    /// Any text: an unknown id (or the default, in some case), or no valid id at all.
    Text(String),
}

/// Labels for a definition: valid ones, or any.
type Labels = Option<Vec<(String, String)>>;

#[derive(Clone, Debug)]
enum Op {
    Set {
        user: u8,
        category: u8,
        hard: bool,
    },
    Heartbeat {
        user: u8,
        session: u8,
        activity: u8,
    },
    Disconnect {
        user: u8,
        session: u8,
    },
    Remove {
        user: u8,
    },
    Sweep,
    Advance(Step),
    TakeCursor,
    Page {
        start: Start,
        limit: Limit,
        include_offline: bool,
    },
    ChangesSinceTime(When),
    /// A delta from the `n`th cursor taken (modulo how many).
    ChangesSinceCursor(u8),
    /// A delta from a cursor of another store.
    ForeignCursor,
    GetMany(Vec<KeyArg>),
    SetMessage {
        user: u8,
        message: Message,
    },
    SetDefinition {
        user: u8,
        def: Def,
        hard: bool,
    },
    CreateDefinition {
        system_presence: u8,
        labels: Labels,
    },
    UpdateDefinition {
        def: Def,
        system_presence: Option<u8>,
        labels: Labels,
        deactivated: Option<bool>,
    },
    DeleteDefinition(Def),
    CreateSource {
        name: Option<String>,
        deactivated: bool,
    },
    UpdateSource {
        source: Src,
        name: Option<String>,
        deactivated: Option<bool>,
    },
    DeleteSource(Src),
    SetSourcePresence {
        user: u8,
        source: Src,
        def: Def,
        message: Option<Message>,
    },
    SetPrimarySource {
        user: u8,
        source: Src,
    },
    CreateFeed,
    /// Reads the `n`th feed created (modulo how many; deleted and expired ones included), or
    /// an unknown feed while none was created.
    ReadFeed {
        feed: u8,
        max: Limit,
    },
    DeleteFeed {
        feed: u8,
    },
    /// The last write that names a user once more: a repeat must change nothing.
    Repeat,
    /// Moves the clock to the expiry of the most recently read (or created) live feed, give or
    /// take a few ms, and sweeps.
    SweepAtFeedExpiry(i8),
}

/// Reads operations with weights: writes that name users are the most frequent, as in a
/// service, and each of the rest comes up every few dozen operations.
impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=63)? {
            0..=9 => Op::Heartbeat {
                user: u.arbitrary()?,
                session: u.arbitrary()?,
                activity: u.arbitrary()?,
            },
            10..=16 => Op::Set {
                user: u.arbitrary()?,
                category: u.arbitrary()?,
                hard: u.arbitrary()?,
            },
            17..=18 => Op::Disconnect {
                user: u.arbitrary()?,
                session: u.arbitrary()?,
            },
            19 => Op::Remove {
                user: u.arbitrary()?,
            },
            20..=22 => Op::Sweep,
            23..=26 => Op::Advance(u.arbitrary()?),
            27 => Op::TakeCursor,
            28..=29 => Op::Page {
                start: u.arbitrary()?,
                limit: u.arbitrary()?,
                include_offline: u.arbitrary()?,
            },
            30..=31 => Op::ChangesSinceTime(u.arbitrary()?),
            32 => Op::ChangesSinceCursor(u.arbitrary()?),
            33 => Op::ForeignCursor,
            34 => Op::GetMany(u.arbitrary()?),
            35..=37 => Op::SetMessage {
                user: u.arbitrary()?,
                message: u.arbitrary()?,
            },
            38..=40 => Op::SetDefinition {
                user: u.arbitrary()?,
                def: u.arbitrary()?,
                hard: u.arbitrary()?,
            },
            41 => Op::CreateDefinition {
                system_presence: u.arbitrary()?,
                labels: u.arbitrary()?,
            },
            42..=43 => Op::UpdateDefinition {
                def: u.arbitrary()?,
                system_presence: u.arbitrary()?,
                labels: u.arbitrary()?,
                deactivated: u.arbitrary()?,
            },
            44 => Op::DeleteDefinition(u.arbitrary()?),
            45 => Op::CreateSource {
                name: u.arbitrary()?,
                deactivated: u.arbitrary()?,
            },
            46 => Op::UpdateSource {
                source: u.arbitrary()?,
                name: u.arbitrary()?,
                deactivated: u.arbitrary()?,
            },
            47 => Op::DeleteSource(u.arbitrary()?),
            48..=51 => Op::SetSourcePresence {
                user: u.arbitrary()?,
                source: u.arbitrary()?,
                def: u.arbitrary()?,
                message: u.arbitrary()?,
            },
            52..=53 => Op::SetPrimarySource {
                user: u.arbitrary()?,
                source: u.arbitrary()?,
            },
            54 => Op::CreateFeed,
            55..=57 => Op::ReadFeed {
                feed: u.arbitrary()?,
                max: u.arbitrary()?,
            },
            58 => Op::DeleteFeed {
                feed: u.arbitrary()?,
            },
            59..=61 => Op::Repeat,
            _ => Op::SweepAtFeedExpiry(u.arbitrary()?),
        })
    }
}

/// A status message: one around the limit (empty clears; exactly 8 bytes in ASCII and in
/// two-byte characters; one byte over in each), or any text.
#[derive(Arbitrary, Clone, Debug)]
enum Message {
    Known(u8),
    Text(String),
}

const MESSAGES: [&str; 7] = ["", "a", "lunch", "12345678", "éééé", "123456789", "ééééé"];

impl Message {
    fn text(&self) -> &str {
        match self {
            Message::Known(i) => MESSAGES[usize::from(*i) % MESSAGES.len()],
            Message::Text(s) => s,
        }
    }
}

fn system_presence(i: u8) -> SystemPresence {
    SystemPresence::ALL[usize::from(i) % SystemPresence::ALL.len()]
}

fn mode(hard: bool) -> SetMode {
    if hard {
        SetMode::Hard
    } else {
        SetMode::Soft
    }
}

fn labels(labels: &Labels) -> BTreeMap<String, String> {
    match labels {
        None => BTreeMap::from([("en_US".to_owned(), "Custom".to_owned())]),
        Some(pairs) => pairs.iter().cloned().collect(),
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

fn ensure(ok: bool, msg: impl FnOnce() -> String) -> TestResult {
    if ok {
        Ok(())
    } else {
        Err(fail(msg()))
    }
}

/// The model's name for a store error of the layered calls, if it has one.
fn kind(e: &Error) -> Option<ModelError> {
    Some(match e {
        Error::UnknownUser { .. } => ModelError::UnknownUser,
        &Error::MessageTooLong { len, max } => ModelError::MessageTooLong { len, max },
        Error::UnknownDefinition { .. } => ModelError::UnknownDefinition,
        Error::DeactivatedDefinition { .. } => ModelError::DeactivatedDefinition,
        Error::SystemDefinition { .. } => ModelError::SystemDefinition,
        Error::UnknownSource { .. } => ModelError::UnknownSource,
        Error::DeactivatedSource { .. } => ModelError::DeactivatedSource,
        Error::DefaultSource => ModelError::DefaultSource,
        Error::UnknownFeed { .. } => ModelError::UnknownFeed,
        &Error::TooManyFeeds { max } => ModelError::TooManyFeeds { max },
        &Error::InvalidLimit { limit, max } => ModelError::InvalidLimit { limit, max },
        _ => return None,
    })
}

/// A store and the model, driven together.
struct Harness {
    setup: Setup,
    clock: Arc<ManualClock>,
    store: PresenceStore<u64>,
    /// Another store, whose cursors are foreign to `store`.
    other: PresenceStore<u64>,
    model: Model<u64>,
    versions: Versions<u64>,
    cursors: Vec<(Cursor, ModelCursor)>,
    /// Org definitions created, in order (deleted ones stay).
    definitions: Vec<DefinitionId>,
    /// Sources created, in order (deleted ones stay).
    sources: Vec<SourceId>,
    /// Feeds created, in order, with the model's number for each (deleted ones stay).
    feeds: Vec<(FeedId, usize)>,
    /// The last write that names a user, for `Op::Repeat`.
    last_write: Option<Op>,
}

impl Harness {
    fn new(setup: &Setup) -> Self {
        let clock = Arc::new(ManualClock::new(setup.start_ms));
        let config = setup.config();
        let store = PresenceStore::with_clock(config.clone(), clock.clone());
        let other = PresenceStore::with_clock(config.clone(), clock.clone());
        let model = Model::new(&config, setup.start_ms);
        let mut h = Harness {
            setup: setup.clone(),
            clock,
            store,
            other,
            model,
            versions: Versions::new(),
            cursors: Vec::new(),
            definitions: Vec::new(),
            sources: Vec::new(),
            feeds: Vec::new(),
            last_write: None,
        };
        h.take_cursor();
        h
    }

    fn keys(&self) -> Vec<u64> {
        (0..USERS).map(key).collect()
    }

    /// The store and model, borrowed for one round of comparisons.
    fn reads(&mut self) -> Reads<'_, u64> {
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
            Some(cursor.clone()),
            "a cursor's token does not read back"
        );
        self.cursors.push((cursor, self.model.cursor()));
    }

    fn advance(&mut self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
        self.model.advance(ms);
    }

    fn def_id(&self, def: &Def) -> DefinitionId {
        let text = match def {
            Def::System(i) => system_presence(*i).as_str(),
            Def::Org(i) if !self.definitions.is_empty() => {
                return self.definitions[usize::from(*i) % self.definitions.len()].clone();
            }
            Def::Org(_) => UNKNOWN_DEFINITION,
            Def::Text(text) => text,
        };
        DefinitionId::new(text)
            .or_else(|_| DefinitionId::new(UNKNOWN_DEFINITION))
            .expect("a valid definition id")
    }

    fn source_id(&self, src: &Src) -> SourceId {
        let text = match src {
            Src::Default => DEFAULT_SOURCE,
            Src::DefaultLower => "purecloud",
            Src::Created(i) if !self.sources.is_empty() => {
                return self.sources[usize::from(*i) % self.sources.len()].clone();
            }
            Src::Created(_) => UNKNOWN_SOURCE,
            Src::Text(text) => text,
        };
        SourceId::new(text)
            .or_else(|_| SourceId::new(UNKNOWN_SOURCE))
            .expect("a valid source id")
    }

    /// The store's and the model's names of a feed; an id no feed has while none was created.
    fn feed_id(&self, feed: u8) -> (FeedId, Option<usize>) {
        if self.feeds.is_empty() {
            let unknown = "00000000000000ff".parse().expect("a feed id");
            return (unknown, None);
        }
        let (id, n) = self.feeds[usize::from(feed) % self.feeds.len()];
        (id, Some(n))
    }

    /// Every source id the checks ask about: both spellings of the default, every source
    /// created (deleted ones included) and an unknown one.
    fn all_sources(&self) -> Vec<SourceId> {
        let mut all = vec![
            self.source_id(&Src::Default),
            self.source_id(&Src::DefaultLower),
        ];
        all.extend(self.sources.iter().cloned());
        all.push(self.source_id(&Src::Text(UNKNOWN_SOURCE.to_owned())));
        all
    }

    /// Compares the results of a write that returns a presence or an error.
    fn same_result(
        &mut self,
        what: &str,
        key: &u64,
        got: Result<Presence, Error>,
        exp: Result<Expected, ModelError>,
    ) -> TestResult {
        match (got, exp) {
            (Ok(got), Ok(exp)) => self.reads().same(what, key, &got, &exp),
            (Err(got), Err(exp)) if kind(&got) == Some(exp.clone()) => Ok(()),
            (got, exp) => Err(fail(format!(
                "{what} {key:?}: store {got:?}, model {exp:?}"
            ))),
        }
    }

    /// Compares the results of a call that returns no presence.
    fn same_outcome<T: std::fmt::Debug, U: std::fmt::Debug>(
        what: &str,
        got: Result<T, Error>,
        exp: Result<U, ModelError>,
    ) -> TestResult {
        match (&got, &exp) {
            (Ok(_), Ok(_)) => Ok(()),
            (Err(g), Err(e)) if kind(g).as_ref() == Some(e) => Ok(()),
            _ => Err(fail(format!("{what}: store {got:?}, model {exp:?}"))),
        }
    }

    /// Applies one operation to both and compares what they return.
    fn apply(&mut self, op: &Op) -> TestResult {
        match op {
            Op::Repeat => {
                return match self.last_write.clone() {
                    Some(write) => self.apply(&write),
                    None => Ok(()),
                }
            }
            Op::Set { .. }
            | Op::Heartbeat { .. }
            | Op::SetMessage { .. }
            | Op::SetDefinition { .. }
            | Op::SetSourcePresence { .. }
            | Op::SetPrimarySource { .. } => self.last_write = Some(op.clone()),
            _ => {}
        }
        match op {
            &Op::Set {
                user,
                category,
                hard,
            } => {
                let k = key(user);
                let category = Category::ALL[usize::from(category) % Category::ALL.len()];
                let exp = self.model.set(&k, category, mode(hard));
                let got = self.store.set(&k, category, mode(hard));
                self.same_result("set", &k, got, Ok(exp))
            }
            &Op::Heartbeat {
                user,
                session,
                activity,
            } => {
                let k = key(user);
                let s = SESSIONS[usize::from(session) % SESSIONS.len()];
                let activity = ACTIVITIES[usize::from(activity) % ACTIVITIES.len()];
                let exp = self.model.heartbeat(&k, s, activity);
                let got = self.store.heartbeat(&k, s, activity);
                self.same_result("heartbeat", &k, got, Ok(exp))
            }
            &Op::Disconnect { user, session } => {
                let k = key(user);
                let s = SESSIONS[usize::from(session) % SESSIONS.len()];
                let exp = self
                    .model
                    .disconnect(&k, s)
                    .map_err(|_| ModelError::UnknownUser);
                let got = self.store.disconnect(&k, s);
                self.same_result("disconnect", &k, got, exp)
            }
            &Op::Remove { user } => {
                let k = key(user);
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
                ensure(got == exp, || {
                    format!("sweep: store {got} transitions, model {exp}")
                })
            }
            &Op::Advance(step) => {
                let ms = match step {
                    Step::Ms(ms) => u64::from(ms),
                    Step::Seconds(s) => u64::from(s) * 1000,
                    Step::IdleAfter(d) => self.setup.idle_after_ms.saturating_add_signed(d.into()),
                    Step::Ttl(d) => self.setup.session_ttl_ms.saturating_add_signed(d.into()),
                    Step::Window(d) => self.setup.window_ms.saturating_add_signed(d.into()),
                };
                self.advance(ms);
                Ok(())
            }
            Op::TakeCursor => {
                self.take_cursor();
                Ok(())
            }
            &Op::Page {
                start,
                limit,
                include_offline,
            } => {
                let start = match start {
                    Start::Unbounded => Bound::Unbounded,
                    Start::Included(k) => Bound::Included(k.key()),
                    Start::Excluded(k) => Bound::Excluded(k.key()),
                };
                let limit = limit.get(self.setup.pages.1);
                match self.model.page(start.as_ref(), limit, include_offline) {
                    Ok(_) => self
                        .reads()
                        .page_once(start, limit, include_offline)
                        .map(drop),
                    Err(e) => {
                        let query = presence_store::PageQuery {
                            start,
                            limit,
                            include_offline,
                        };
                        let got = self.store.page(&query);
                        let exp = Error::InvalidLimit {
                            limit: e.0,
                            max: e.1,
                        };
                        ensure(got.as_ref().err() == Some(&exp), || {
                            format!("page {query:?}: store {got:?}, model {exp:?}")
                        })
                    }
                }
            }
            &Op::ChangesSinceTime(when) => {
                let now = self.model.now;
                let t = match when {
                    When::Ago(ms) => now.saturating_sub(u64::from(ms)),
                    When::Ahead(ms) => now + u64::from(ms),
                    When::At(t) => t,
                };
                let delta = self.store.changes_since(&Since::Time(t));
                let mut exp = self.model.changes_since_time(t);
                let pruned = self.pruned_by_capacity();
                if !exp.full && t <= now && pruned > 0 && self.model.log[pruned - 1].at >= t {
                    exp = self.model.full(FullReason::LogPruned);
                }
                let mut reads = self.reads();
                reads.same_delta(
                    &format!("changes_since(Time({t})), now {now}"),
                    &delta,
                    &exp,
                )?;
                reads.nothing_after(&delta.cursor, "a time delta's cursor")
            }
            &Op::ChangesSinceCursor(i) => {
                let (cursor, at) = self.cursors[usize::from(i) % self.cursors.len()].clone();
                let delta = self.store.changes_since(&Since::Cursor(cursor));
                let pruned = delta.reason == Some(FullReason::LogPruned)
                    && self.model.cursor_may_be_pruned(at);
                let exp = if pruned || at.0 < self.pruned_by_capacity() {
                    self.model.full(FullReason::LogPruned)
                } else {
                    self.model.changes_since_cursor(at)
                };
                let mut reads = self.reads();
                reads.same_delta(&format!("changes_since(cursor at {})", at.0), &delta, &exp)?;
                reads.nothing_after(&delta.cursor, "a cursor delta's cursor")
            }
            Op::ForeignCursor => {
                let foreign = self.other.cursor();
                let delta = self.store.changes_since(&Since::Cursor(foreign));
                let exp = self.model.full(FullReason::ForeignCursor);
                self.reads()
                    .same_delta("changes_since(a foreign cursor)", &delta, &exp)
            }
            Op::GetMany(keys) => {
                let keys: Vec<u64> = keys.iter().map(|k| k.key()).collect();
                let got = self.store.get_many(&keys);
                let exp = self.model.get_many(&keys);
                self.reads().same_list("get_many", &got, &exp)
            }
            Op::SetMessage { user, message } => {
                let k = key(*user);
                let message = message.text();
                let exp = self.model.set_message(&k, message);
                let got = self.store.set_message(&k, message);
                self.same_result("set_message", &k, got, exp)
            }
            Op::SetDefinition { user, def, hard } => {
                let k = key(*user);
                let id = self.def_id(def);
                let exp = self.model.set_definition(&k, id.as_str(), mode(*hard));
                let got = self.store.set_definition(&k, &id, mode(*hard));
                self.same_result("set_definition", &k, got, exp)
            }
            Op::CreateDefinition {
                system_presence: p,
                labels: given,
            } => {
                let p = system_presence(*p);
                match self.store.create_definition(p, labels(given)) {
                    Ok(def) => {
                        ensure(
                            (def.system_presence, def.deactivated, def.system) == (p, false, false),
                            || format!("create_definition({p}): {def:?}"),
                        )?;
                        self.model.create_definition(def.id.as_str(), p);
                        self.definitions.push(def.id);
                        Ok(())
                    }
                    // Labels of the input's own may break the rules.
                    Err(Error::InvalidDefinition { .. }) if given.is_some() => Ok(()),
                    Err(e) => Err(fail(format!("create_definition({p}, {given:?}): {e:?}"))),
                }
            }
            Op::UpdateDefinition {
                def,
                system_presence: p,
                labels: given,
                deactivated,
            } => {
                let id = self.def_id(def);
                let p = p.map(system_presence);
                let got = self.store.update_definition(
                    &id,
                    p,
                    given.as_ref().map(|_| labels(given)),
                    *deactivated,
                );
                if matches!(got, Err(Error::InvalidDefinition { .. })) && given.is_some() {
                    // Refused for the labels, after the id was found: nothing changed.
                    return Ok(());
                }
                let exp = self.model.update_definition(id.as_str(), p, *deactivated);
                if let (Ok(g), Ok(e)) = (&got, &exp) {
                    ensure(
                        (g.system_presence, g.deactivated, g.system)
                            == (e.system_presence, e.deactivated, e.system),
                        || format!("update_definition: store {g:?}, model {e:?}"),
                    )?;
                }
                Self::same_outcome("update_definition", got, exp)
            }
            Op::DeleteDefinition(def) => {
                let id = self.def_id(def);
                let exp = self.model.delete_definition(id.as_str());
                let got = self.store.delete_definition(&id);
                Self::same_outcome("delete_definition", got, exp)
            }
            Op::CreateSource { name, deactivated } => {
                let text = name.as_deref().unwrap_or("Integration");
                match self.store.create_source(text, *deactivated) {
                    Ok(source) => {
                        ensure(source.deactivated == *deactivated, || {
                            format!("create_source: {source:?}")
                        })?;
                        self.model.create_source(source.id.as_str(), *deactivated);
                        self.sources.push(source.id);
                        Ok(())
                    }
                    Err(Error::InvalidSource { .. }) if name.is_some() => Ok(()),
                    Err(e) => Err(fail(format!("create_source({text:?}): {e:?}"))),
                }
            }
            Op::UpdateSource {
                source,
                name,
                deactivated,
            } => {
                let id = self.source_id(source);
                let got = self.store.update_source(&id, name.as_deref(), *deactivated);
                if matches!(got, Err(Error::InvalidSource { .. })) && name.is_some() {
                    // Refused for the name: nothing changed.
                    return Ok(());
                }
                let exp = self.model.update_source(id.as_str(), *deactivated);
                Self::same_outcome("update_source", got, exp)
            }
            Op::DeleteSource(source) => {
                let id = self.source_id(source);
                let exp = self.model.delete_source(id.as_str());
                let got = self.store.delete_source(&id);
                Self::same_outcome("delete_source", got, exp)
            }
            Op::SetSourcePresence {
                user,
                source,
                def,
                message,
            } => {
                let k = key(*user);
                let (source, def) = (self.source_id(source), self.def_id(def));
                let message = message.as_ref().map(Message::text);
                let exp =
                    self.model
                        .set_source_presence(&k, source.as_str(), def.as_str(), message);
                let got = self.store.set_source_presence(&k, &source, &def, message);
                let what = format!("set_source_presence({source}, {def}, {message:?})");
                self.same_result(&what, &k, got, exp)
            }
            Op::SetPrimarySource { user, source } => {
                let k = key(*user);
                let source = self.source_id(source);
                let exp = self.model.set_primary_source(&k, source.as_str());
                let got = self.store.set_primary_source(&k, &source);
                self.same_result(&format!("set_primary_source({source})"), &k, got, exp)
            }
            Op::CreateFeed => {
                let exp = self.model.create_feed();
                let got = self.store.create_feed();
                if let (Ok(id), Ok(n)) = (&got, &exp) {
                    self.feeds.push((*id, *n));
                }
                Self::same_outcome("create_feed", got, exp)
            }
            &Op::ReadFeed { feed, max } => {
                let max = max.get(self.setup.pages.1).unwrap_or(1);
                self.read_feed(feed, max)
            }
            &Op::DeleteFeed { feed } => {
                let (id, n) = self.feed_id(feed);
                let exp = self.model.delete_feed(n);
                let got = self.store.delete_feed(&id);
                Self::same_outcome("delete_feed", got, exp)
            }
            &Op::SweepAtFeedExpiry(d) => {
                let expiry = self.setup.feed_expiry_ms.max(self.setup.window_ms);
                let newest = self.model.feeds.values().map(|f| f.last_read).max();
                let at = newest
                    .unwrap_or(self.model.now)
                    .saturating_add(expiry)
                    .saturating_add_signed((d % 4).into());
                self.advance(at.saturating_sub(self.model.now));
                self.apply(&Op::Sweep)
            }
            Op::Repeat => unreachable!("handled above"),
        }
    }

    /// Reads a feed from both and compares: the users in the order of their latest change
    /// (those changed at the same time in any order), `more`, or the full list when the feed
    /// fell behind what the log holds, which only changes that may be pruned allow.
    fn read_feed(&mut self, feed: u8, max: usize) -> TestResult {
        let (id, n) = self.feed_id(feed);
        let what = format!("read_feed(#{feed}, {max})");
        let got = self.store.read_feed(&id, max);
        let (read, n) = match (got, self.model.check_feed_read(n, max)) {
            (Ok(read), Ok(n)) => (read, n),
            (Err(g), Err(e)) if kind(&g).as_ref() == Some(&e) => return Ok(()),
            (g, e) => return Err(fail(format!("{what}: store {g:?}, model {e:?}"))),
        };
        let pending = self.model.feed_pending(n);
        if read.full {
            ensure(read.reason == Some(FullReason::LogPruned), || {
                format!("{what}: full for {:?}", read.reason)
            })?;
            ensure(!read.more, || format!("{what}: a full read with more"))?;
            ensure(self.feed_may_be_pruned(n), || {
                format!("{what}: full, but no change it has not read may be pruned; pending {pending:?}")
            })?;
            let exp = self.model.full(FullReason::LogPruned);
            self.reads().same_list(&what, &read.users, &exp.users)?;
            self.model.feed_consume_all(n);
            return Ok(());
        }
        ensure(read.reason.is_none(), || {
            format!("{what}: reason without full")
        })?;
        if let Some((k, e)) = self.pending_pruned_by_capacity(&pending) {
            return Err(fail(format!(
                "{what}: not full, but the latest change of {k:?} (#{}) was pruned",
                e.change
            )));
        }
        let got_keys: Vec<u64> = read.users.iter().map(|(k, _)| *k).collect();
        let exp: ModelFeedRead<u64> = self.model.feed_read(n, max, &got_keys);
        self.reads().same_list(
            &format!("{what}, pending {pending:?}"),
            &read.users,
            &exp.users,
        )?;
        ensure(read.more == exp.more, || {
            format!("{what}: more is {}; pending {pending:?}", read.more)
        })?;
        self.model.feed_consume(n, &exp);
        Ok(())
    }

    /// Whether a change the feed has not read may have been pruned: by the window, or (with a
    /// small capacity, one shard) among the oldest changes, where changes made at the same time
    /// as the last one pruned count too (the store orders those its own way).
    fn feed_may_be_pruned(&self, feed: usize) -> bool {
        let (now, window) = (self.model.now, self.setup.window_ms);
        let pruned = self.pruned_by_capacity();
        let edge = pruned.checked_sub(1).map(|i| self.model.log[i].at);
        self.model.feed_unconsumed(feed).into_iter().any(|i| {
            let at = self.model.log[i].at;
            at + window <= now || edge.is_some_and(|edge| at <= edge)
        })
    }

    /// A pending user whose latest change the store has surely pruned for its capacity.
    fn pending_pruned_by_capacity<'a>(
        &self,
        pending: &'a [(u64, Expected)],
    ) -> Option<&'a (u64, Expected)> {
        let pruned = self.pruned_by_capacity();
        let edge = self.model.log[pruned.checked_sub(1)?].at;
        pending
            .iter()
            .find(|(_, e)| self.model.log[e.change - 1].at < edge)
    }

    /// Compares every read the store offers with the model.
    fn check_all(&mut self, step: usize) -> TestResult {
        let keys = self.keys();
        ensure(self.store.len() == self.model.len(), || {
            format!(
                "len: store {}, model {}",
                self.store.len(),
                self.model.len()
            )
        })?;
        ensure(self.store.is_empty() == self.model.is_empty(), || {
            "is_empty".to_owned()
        })?;
        let sources = self.all_sources();
        for k in &keys {
            match (self.store.get(k), self.model.get(k)) {
                (Some(got), Some(exp)) => self.reads().same("get", k, &got, &exp)?,
                (None, None) => {}
                (got, exp) => return Err(fail(format!("get {k:?}: store {got:?}, model {exp:?}"))),
            }
            let primary = self.store.primary_source(k);
            let exp_primary = self.model.primary_source(k);
            ensure(
                primary.as_ref().map(SourceId::as_str) == exp_primary.as_deref(),
                || format!("primary_source({k:?}): store {primary:?}, model {exp_primary:?}"),
            )?;
            for s in &sources {
                let what = format!("source_presence({k:?}, {s})");
                match (
                    self.store.source_presence(k, s),
                    self.model.source_presence(k, s.as_str()),
                ) {
                    (Some(got), Some(exp)) => self.reads().same(&what, k, &got, &exp)?,
                    (None, None) => {}
                    (got, exp) => {
                        return Err(fail(format!("{what}: store {got:?}, model {exp:?}")))
                    }
                }
            }
        }
        let mut asked = keys.clone();
        asked.extend([keys[3], keys[0], keys[3], 12345]);
        let got = self.store.get_many(&asked);
        let exp = self.model.get_many(&asked);
        self.reads().same_list("get_many", &got, &exp)?;

        // The registries.
        for include_deactivated in [false, true] {
            let got: Vec<(String, SystemPresence, bool)> = self
                .store
                .definitions(include_deactivated)
                .into_iter()
                .map(|d| (d.id.as_str().to_owned(), d.system_presence, d.deactivated))
                .collect();
            let exp = self.model.definition_list(include_deactivated);
            ensure(got == exp, || {
                format!("definitions({include_deactivated}): store {got:?}, model {exp:?}")
            })?;
        }
        let got: Vec<(String, bool)> = self
            .store
            .sources()
            .into_iter()
            .map(|s| (s.id.as_str().to_owned(), s.deactivated))
            .collect();
        let exp = self.model.source_list();
        ensure(got == exp, || {
            format!("sources(): store {got:?}, model {exp:?}")
        })?;

        // Paging walks, both filters, with a small limit that varies by step.
        let limit = 1 + step % self.setup.pages.1.min(4);
        for include_offline in [true, false] {
            self.reads().walk(limit, include_offline)?;
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

    /// At the end: reads every feed until nothing is left, with a small `max`, so that every
    /// change is covered, and checks the feed is then empty.
    fn drain_feeds(&mut self) -> TestResult {
        for i in 0..self.feeds.len() {
            if !self.model.feeds.contains_key(&self.feeds[i].1) {
                continue;
            }
            let feed = u8::try_from(i).expect("at most MAX_OPS feeds");
            for _ in 0..=usize::from(USERS) {
                self.read_feed(feed, 2)?;
                if self.model.feed_pending(self.feeds[i].1).is_empty() {
                    break;
                }
            }
            let r = self
                .store
                .read_feed(&self.feeds[i].0, 2)
                .map_err(|e| fail(format!("draining feed #{i}: {e}")))?;
            ensure(r.users.is_empty() && !r.more && !r.full, || {
                format!("feed #{i} not empty once drained: {r:?}")
            })?;
            self.model.feed_consume(
                self.feeds[i].1,
                &ModelFeedRead {
                    users: Vec::new(),
                    more: false,
                },
            );
        }
        Ok(())
    }
}

/// Runs the operations `data` encodes against the store and the model; panics on the first
/// difference, with the setup and the operations so far.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(args) = SetupArgs::arbitrary(&mut u) else {
        return;
    };
    let setup = Setup::from(args);
    let mut h = Harness::new(&setup);
    let mut done = Vec::new();
    let report = |done: &[Op], e: TestCaseError| -> ! {
        let mut ops = String::new();
        for (i, op) in done.iter().enumerate() {
            let _ = writeln!(ops, "  {i}: {op:?}");
        }
        panic!("{setup:?}\nops:\n{ops}{e}");
    };
    if let Err(e) = h.check_all(0) {
        report(&done, e);
    }
    while !u.is_empty() && done.len() < MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        done.push(op.clone());
        if let Err(e) = h.apply(&op).and_then(|()| h.check_all(done.len())) {
            report(&done, e);
        }
    }
    if let Err(e) = h.drain_feeds() {
        report(&done, e);
    }
}
