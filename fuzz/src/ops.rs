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
use std::ops::{Bound, Deref, DerefMut};

use arbitrary::{Arbitrary, Unstructured};
use presence_store::{
    Activity, Category, DefinitionId, DefinitionUpdate, Error, FullReason, PresenceStore, Since,
    SourceId, SourceUpdate, SystemPresence,
};
use proptest::test_runner::TestCaseError;

use crate::model::harness::{
    fail, same_outcome, Driver, Setup, BIG_LOG, UNKNOWN_SOURCE, USERS, WIDE_WINDOW,
};
use crate::model::reads::TestResult;
use crate::model::DEFAULT_SOURCE;

/// The most operations one input runs.
pub const MAX_OPS: usize = 64;
const SESSIONS: [u64; 4] = [0, 7, u64::MAX, 1];
const ACTIVITIES: [Activity; 3] = [Activity::Active, Activity::Idle, Activity::Offline];
/// A definition id no definition has, for ids that are not valid ids at all.
const UNKNOWN_DEFINITION: &str = "nope";

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

fn labels(labels: &Labels) -> BTreeMap<String, String> {
    match labels {
        None => BTreeMap::from([("en_US".to_owned(), "Custom".to_owned())]),
        Some(pairs) => pairs.iter().cloned().collect(),
    }
}

fn ensure(ok: bool, msg: impl FnOnce() -> String) -> TestResult {
    if ok {
        Ok(())
    } else {
        Err(fail(msg()))
    }
}

/// A store and the model, driven together (`tests/model/harness.rs`), with what only this
/// target does: another store for foreign cursors, and repeats of the last write.
struct Harness {
    driver: Driver<u64>,
    /// Another store, whose cursors are foreign to `store`.
    other: PresenceStore<u64>,
    /// The last write that names a user, for `Op::Repeat`.
    last_write: Option<Op>,
}

impl Deref for Harness {
    type Target = Driver<u64>;

    fn deref(&self) -> &Driver<u64> {
        &self.driver
    }
}

impl DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Driver<u64> {
        &mut self.driver
    }
}

impl Harness {
    fn new(setup: &Setup) -> Self {
        let driver = Driver::new(setup, key);
        let other = PresenceStore::with_clock(setup.config(), driver.clock.clone());
        Harness {
            driver,
            other,
            last_write: None,
        }
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
            } => self.set(
                user,
                Category::ALL[usize::from(category) % Category::ALL.len()],
                hard,
            ),
            &Op::Heartbeat {
                user,
                session,
                activity,
            } => self.heartbeat(
                user,
                SESSIONS[usize::from(session) % SESSIONS.len()],
                ACTIVITIES[usize::from(activity) % ACTIVITIES.len()],
            ),
            &Op::Disconnect { user, session } => {
                self.disconnect(user, SESSIONS[usize::from(session) % SESSIONS.len()])
            }
            &Op::Remove { user } => self.remove(user),
            Op::Sweep => self.sweep(),
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
            Op::SetMessage { user, message } => self.set_message(*user, message.text()),
            Op::SetDefinition { user, def, hard } => {
                let id = self.def_id(def);
                self.set_definition(*user, &id, *hard)
            }
            Op::CreateDefinition {
                system_presence: p,
                labels: given,
            } => {
                let p = system_presence(*p);
                match self.store.create_definition(p, labels(given)) {
                    Ok(def) => self.created_definition(def, p),
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
                let update = DefinitionUpdate {
                    system_presence: p,
                    labels: given.as_ref().map(|_| labels(given)),
                    deactivated: *deactivated,
                };
                let got = self.store.update_definition(&id, update);
                if matches!(got, Err(Error::InvalidDefinition { .. })) && given.is_some() {
                    // Refused for the labels, after the id was found: nothing changed.
                    return Ok(());
                }
                self.update_definition(&id, got, p, *deactivated)
            }
            Op::DeleteDefinition(def) => {
                let id = self.def_id(def);
                self.delete_definition(&id)
            }
            Op::CreateSource { name, deactivated } => {
                let text = name.as_deref().unwrap_or("Integration");
                match self.create_source(text, *deactivated) {
                    Ok(source) => self.created_source(source, *deactivated),
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
                let update = SourceUpdate {
                    name: name.clone(),
                    deactivated: *deactivated,
                };
                let got = self.store.update_source(&id, update);
                if matches!(got, Err(Error::InvalidSource { .. })) && name.is_some() {
                    // Refused for the name: nothing changed.
                    return Ok(());
                }
                let exp = self.model.update_source(id.as_str(), *deactivated);
                same_outcome("update_source", got, exp)
            }
            Op::DeleteSource(source) => {
                let id = self.source_id(source);
                self.delete_source(&id)
            }
            Op::SetSourcePresence {
                user,
                source,
                def,
                message,
            } => {
                let (source, def) = (self.source_id(source), self.def_id(def));
                let message = message.as_ref().map(Message::text);
                self.set_source_presence(*user, &source, &def, message)
            }
            Op::SetPrimarySource { user, source } => {
                let source = self.source_id(source);
                self.set_primary_source(*user, &source)
            }
            Op::CreateFeed => self.create_feed(),
            &Op::ReadFeed { feed, max } => {
                let max = max.get(self.setup.pages.1).unwrap_or(1);
                self.read_feed(usize::from(feed), max)
            }
            &Op::DeleteFeed { feed } => self.delete_feed(usize::from(feed)),
            &Op::SweepAtFeedExpiry(d) => self.sweep_at_feed_expiry(d % 4),
            Op::Repeat => unreachable!("handled above"),
        }
    }

    /// Compares every read the store offers with the model.
    fn check_all(&mut self, step: usize) -> TestResult {
        self.check_reads(step, &[12345])?;
        let mut reads = self.reads();
        reads.time_deltas()?;
        reads.cursor_deltas()
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
