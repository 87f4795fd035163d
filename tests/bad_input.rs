//! Bad input to the library API, one row per class: the call, the `Error` variant it must give
//! (matched with `matches!`), and, after every row, proof that the store did not change: the
//! same users with the same presences (a full page, offline users included), the same
//! registries, the same snapshot (with `serde`), and an empty delta from the cursor taken
//! before the call.
//!
//! Every variant of `Error` that caller input can produce has rows here, except
//! `CapacityExceeded` (2^32 - 2 users in one shard) and `TooManyIds`, which no library call
//! produces (`get_many` takes any number of ids).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    Activity, Category, Cursor, Definition, DefinitionId, DefinitionUpdate, Error, FeedId,
    ManualClock, PageQuery, Presence, PresenceStore, SetMode, Since, Source, SourceId,
    SourceUpdate, StoreConfig, SystemPresence,
};

const T0: u64 = 1_700_000_000_000;
/// The fixture's `max_message_len`, in bytes.
const MAX_MESSAGE: usize = 16;
/// A user the fixture does not know.
const STRANGER: u64 = 999;

/// A store with something of every kind in it, and the ids of what it made.
struct Fixture {
    clock: Arc<ManualClock>,
    store: PresenceStore<u64>,
    /// An active org definition.
    lunch: DefinitionId,
    /// A deactivated org definition.
    retired: DefinitionId,
    /// A deleted org definition.
    deleted_definition: DefinitionId,
    /// An active source.
    teams: SourceId,
    /// A deactivated source.
    calendar: SourceId,
    /// A deleted source.
    deleted_source: SourceId,
    /// A live feed; the store holds `max_feeds` (2) of them.
    feed: FeedId,
    /// A deleted feed.
    deleted_feed: FeedId,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config() -> StoreConfig {
    StoreConfig::default()
        .with_shards(4)
        .with_feeds(2, Duration::from_secs(3600))
        .with_max_message_len(MAX_MESSAGE)
}

impl Fixture {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let store = PresenceStore::with_clock(config(), clock.clone());
        let def = |p, name| {
            store
                .create_definition(p, labels(&[("en_US", name)]))
                .unwrap()
                .id
        };
        let lunch = def(SystemPresence::Meal, "Lunch");
        let retired = def(SystemPresence::Busy, "Old");
        store
            .update_definition(
                &retired,
                DefinitionUpdate {
                    deactivated: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        let deleted_definition = def(SystemPresence::Away, "Gone");
        store.delete_definition(&deleted_definition).unwrap();
        let teams = store.create_source("Teams").unwrap().id;
        let calendar = {
            let created = store.create_source("Calendar").unwrap();
            let retire = SourceUpdate {
                deactivated: Some(true),
                ..Default::default()
            };
            store.update_source(&created.id, retire).unwrap()
        }
        .id;
        let deleted_source = store.create_source("Old").unwrap().id;
        store.delete_source(&deleted_source).unwrap();
        for user in 1..=5u64 {
            store.heartbeat(&user, user, Activity::Active).unwrap();
            clock.advance(Duration::from_millis(10));
        }
        store.set(&2, Category::Busy, SetMode::Hard).unwrap();
        store.set(&3, Category::Available, SetMode::Soft).unwrap();
        store.disconnect(&3, 3).unwrap();
        store.set_message(&4, "back at 3").unwrap();
        store.set_definition(&5, &lunch, SetMode::Hard).unwrap();
        store
            .set_source_presence(&1, &teams, &lunch, Some("in a call"))
            .unwrap();
        store.set_primary_source(&1, &teams).unwrap();
        let feed = store.create_feed().unwrap();
        let deleted_feed = store.create_feed().unwrap();
        store.delete_feed(&deleted_feed).unwrap();
        store.create_feed().unwrap();
        clock.advance(Duration::from_secs(1));
        Fixture {
            clock,
            store,
            lunch,
            retired,
            deleted_definition,
            teams,
            calendar,
            deleted_source,
            feed,
            deleted_feed,
        }
    }
}

/// Everything a caller can read of the store.
#[derive(Debug, PartialEq)]
struct State {
    len: usize,
    users: Vec<(u64, Presence)>,
    primaries: Vec<Option<SourceId>>,
    sources: Vec<Source>,
    definitions: Vec<Definition>,
    #[cfg(feature = "serde")]
    snapshot: presence_store::Snapshot<u64>,
}

impl State {
    fn of(store: &PresenceStore<u64>) -> Self {
        let page = store
            .page(&PageQuery::first().with_limit(store.config().max_page))
            .unwrap();
        assert_eq!(page.next, None);
        State {
            len: store.len(),
            primaries: (0..=STRANGER).map(|u| store.primary_source(&u)).collect(),
            users: page.items,
            sources: store.sources(),
            definitions: store.definitions(),
            #[cfg(feature = "serde")]
            snapshot: {
                let mut s = store.snapshot();
                s.users.sort_by_key(|u| u.user);
                s
            },
        }
    }
}

/// A call that should be refused, with what it returns dropped.
type Call = Box<dyn Fn(&Fixture) -> Result<(), Error>>;

/// One class of bad input.
struct Row {
    what: &'static str,
    call: Call,
    expect: fn(&Result<(), Error>) -> bool,
}

/// `row!(what, |f| call, Pattern)`: the call must fail with an error matching `Pattern` (and
/// its guard, if it has one). `row!(what, |f| call, ok)`: the call must succeed (a boundary
/// that is still allowed).
macro_rules! row {
    ($what:expr, |$f:ident| $call:expr, ok) => {
        Row {
            what: $what,
            call: Box::new(|$f: &Fixture| $call.map(drop)),
            expect: |r| r.is_ok(),
        }
    };
    ($what:expr, |$f:ident| $call:expr, $pat:pat) => {
        Row {
            what: $what,
            call: Box::new(|$f: &Fixture| $call.map(drop)),
            expect: |r| matches!(r, Err($pat)),
        }
    };
    ($what:expr, |$f:ident| $call:expr, $pat:pat if $guard:expr) => {
        Row {
            what: $what,
            call: Box::new(|$f: &Fixture| $call.map(drop)),
            expect: |r| matches!(r, Err($pat) if $guard),
        }
    };
}

fn def(id: &str) -> DefinitionId {
    DefinitionId::new(id).unwrap()
}

fn src(id: &str) -> SourceId {
    SourceId::new(id).unwrap()
}

fn page(f: &Fixture, limit: Option<usize>) -> Result<(), Error> {
    let query = PageQuery {
        limit,
        ..PageQuery::first()
    };
    f.store.page(&query).map(drop)
}

/// The bytes of a cursor token, in the format `Cursor`'s docs call opaque: version 1, the
/// store, the shard count, the sequences, as LEB128 varints, in unpadded URL-safe base64.
fn token(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn cursor(text: &str) -> Result<(), Error> {
    text.parse::<Cursor>().map(drop)
}

fn config_with(f: impl Fn(StoreConfig) -> StoreConfig) -> Result<(), Error> {
    PresenceStore::<u64>::try_new(f(StoreConfig::default())).map(drop)
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

fn rows() -> Vec<Row> {
    let rows = vec![
        // ---- page limits: 0 and over the maximum; the default and the maximum are fine ----
        row!(
            "page limit 0",
            |f| page(f, Some(0)),
            Error::InvalidLimit {
                limit: 0,
                max: 5000
            }
        ),
        row!(
            "page limit max + 1",
            |f| page(f, Some(5001)),
            Error::InvalidLimit {
                limit: 5001,
                max: 5000
            }
        ),
        row!(
            "page limit usize::MAX",
            |f| page(f, Some(usize::MAX)),
            Error::InvalidLimit {
                limit: usize::MAX,
                max: 5000
            }
        ),
        row!("page limit 1", |f| page(f, Some(1)), ok),
        row!("page limit = max", |f| page(f, Some(5000)), ok),
        row!("page default limit", |f| page(f, None), ok),
        row!("page limit = default", |f| page(f, Some(1000)), ok),
        row!(
            "feed read max 0",
            |f| f.store.read_feed(&f.feed, 0),
            Error::InvalidLimit {
                limit: 0,
                max: 5000
            }
        ),
        row!(
            "feed read max + 1",
            |f| f.store.read_feed(&f.feed, 5001),
            Error::InvalidLimit {
                limit: 5001,
                max: 5000
            }
        ),
        row!(
            "feed read max 0 of an unknown feed",
            |f| f.store.read_feed(&f.deleted_feed, 0),
            Error::InvalidLimit { .. }
        ),
        // ---- cursors ----
        row!(
            "cursor: empty",
            |_f| cursor(""),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: one char",
            |_f| cursor("A"),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: 4n+1 chars",
            |_f| cursor("AQIDB"),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: not base64url (+/)",
            |_f| cursor("ab+/"),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: padding",
            |_f| cursor("AQ=="),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: whitespace",
            |_f| cursor(" AQkBAA"),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: non-ASCII",
            |_f| cursor("AQé"),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: stray bits past the last byte",
            |_f| cursor("AR"),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: unknown format version",
            |_f| cursor(&token(&[2, 9, 1, 0])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: format only",
            |_f| cursor(&token(&[1])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: truncated sequence",
            |_f| cursor(&token(&[1, 9, 2, 0])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: truncated varint",
            |_f| cursor(&token(&[1, 9, 1, 0x80])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: varint over 64 bits",
            |_f| cursor(&token(&[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0
            ])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: varint over 10 bytes",
            |_f| cursor(&token(&[
                1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 1, 0
            ])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: zero shards",
            |_f| cursor(&token(&[1, 9, 0])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: more shards than a store may have",
            |_f| cursor(&token(&[1, 9, 0x81, 0x80, 0x04])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: trailing bytes",
            |_f| cursor(&token(&[1, 9, 1, 0, 0])),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: a real token with a byte more",
            |f| cursor(&format!("{}AA", f.store.cursor())),
            Error::InvalidCursor { .. }
        ),
        row!(
            "cursor: a real token cut short",
            |f| {
                let t = f.store.cursor().to_string();
                cursor(&t[..t.len() - 1])
            },
            Error::InvalidCursor { .. }
        ),
        // ---- category and system presence names ----
        row!(
            "unknown category",
            |_f| "ONLINE".parse::<Category>(),
            Error::UnknownCategory { .. }
        ),
        row!(
            "empty category",
            |_f| "".parse::<Category>(),
            Error::UnknownCategory { .. }
        ),
        row!(
            "category with a space",
            |_f| "AVAILABLE ".parse::<Category>(),
            Error::UnknownCategory { .. }
        ),
        row!(
            "category with dashes",
            |_f| "DO-NOT-DISTURB".parse::<Category>(),
            Error::UnknownCategory { .. }
        ),
        row!("category echo is cut", |_f| long(1000).parse::<Category>(), Error::UnknownCategory { value } if value.len() == 64),
        row!(
            "unknown system presence",
            |_f| "LUNCH".parse::<SystemPresence>(),
            Error::UnknownSystemPresence { .. }
        ),
        row!(
            "a category that is no system presence",
            |_f| "DO_NOT_DISTURB".parse::<SystemPresence>(),
            Error::UnknownSystemPresence { .. }
        ),
        // ---- unknown users: every call that does not add users ----
        row!(
            "disconnect an unknown user",
            |f| f.store.disconnect(&STRANGER, 1),
            Error::UnknownUser { .. }
        ),
        row!(
            "message for an unknown user",
            |f| f.store.set_message(&STRANGER, "hi"),
            Error::UnknownUser { .. }
        ),
        row!(
            "clear the message of an unknown user",
            |f| f.store.set_message(&STRANGER, ""),
            Error::UnknownUser { .. }
        ),
        row!(
            "primary source of an unknown user",
            |f| f.store.set_primary_source(&STRANGER, &f.teams),
            Error::UnknownUser { .. }
        ),
        row!(
            "default primary source of an unknown user",
            |f| f.store.set_primary_source(&STRANGER, &SourceId::DEFAULT),
            Error::UnknownUser { .. }
        ),
        // ---- status messages ----
        row!(
            "message one byte too long",
            |f| f.store.set_message(&4, &long(MAX_MESSAGE + 1)),
            Error::MessageTooLong {
                len: 17,
                max: MAX_MESSAGE
            }
        ),
        row!(
            "message too long in bytes, not in chars",
            |f| f.store.set_message(&4, &"é".repeat(9)),
            Error::MessageTooLong {
                len: 18,
                max: MAX_MESSAGE
            }
        ),
        row!(
            "message too long for an unknown user",
            |f| f.store.set_message(&STRANGER, &long(100)),
            Error::MessageTooLong { .. }
        ),
        row!(
            "source presence message too long",
            |f| f
                .store
                .set_source_presence(&1, &f.teams, &f.lunch, Some(&long(17))),
            Error::MessageTooLong { .. }
        ),
        row!(
            "source presence message too long, unknown user",
            |f| f
                .store
                .set_source_presence(&STRANGER, &f.teams, &f.lunch, Some(&long(17))),
            Error::MessageTooLong { .. }
        ),
        row!(
            "default source presence message too long",
            |f| f
                .store
                .set_source_presence(&2, &SourceId::DEFAULT, &f.lunch, Some(&long(17))),
            Error::MessageTooLong { .. }
        ),
        // ---- feeds ----
        row!(
            "read a deleted feed",
            |f| f.store.read_feed(&f.deleted_feed, 10),
            Error::UnknownFeed { .. }
        ),
        row!(
            "delete a deleted feed",
            |f| f.store.delete_feed(&f.deleted_feed),
            Error::UnknownFeed { .. }
        ),
        row!(
            "read a feed that never was",
            |f| f.store.read_feed(&"0123456789abcdef".parse().unwrap(), 10),
            Error::UnknownFeed { .. }
        ),
        row!(
            "feed id: too short",
            |_f| "abc".parse::<FeedId>(),
            Error::InvalidFeedId { .. }
        ),
        row!(
            "feed id: not hex",
            |_f| "0123456789abcdeg".parse::<FeedId>(),
            Error::InvalidFeedId { .. }
        ),
        row!(
            "feed id: too long",
            |_f| "0123456789abcdef0".parse::<FeedId>(),
            Error::InvalidFeedId { .. }
        ),
        row!(
            "feed id: empty",
            |_f| "".parse::<FeedId>(),
            Error::InvalidFeedId { .. }
        ),
        row!(
            "feed id: a cursor",
            |f| f.store.cursor().to_string().parse::<FeedId>(),
            Error::InvalidFeedId { .. }
        ),
        row!(
            "feed id: a sign",
            |_f| "+123456789abcdef".parse::<FeedId>(),
            Error::InvalidFeedId { .. }
        ),
        row!(
            "one feed more than max_feeds",
            |f| f.store.create_feed(),
            Error::TooManyFeeds { max: 2 }
        ),
        // ---- definitions ----
        row!(
            "definition id: empty",
            |_f| DefinitionId::new(""),
            Error::InvalidDefinitionId { .. }
        ),
        row!(
            "definition id: 129 chars",
            |_f| DefinitionId::new(&long(129)),
            Error::InvalidDefinitionId { .. }
        ),
        row!(
            "definition id: 129 chars, parsed",
            |_f| long(129).parse::<DefinitionId>(),
            Error::InvalidDefinitionId { .. }
        ),
        row!(
            "set an unknown definition",
            |f| f.store.set_definition(&2, &def("nope"), SetMode::Hard),
            Error::UnknownDefinition { .. }
        ),
        row!(
            "set an unknown definition on an unknown user",
            |f| f
                .store
                .set_definition(&STRANGER, &def("nope"), SetMode::Soft),
            Error::UnknownDefinition { .. }
        ),
        row!(
            "definition ids are case-sensitive",
            |f| f.store.set_definition(&2, &def("available"), SetMode::Hard),
            Error::UnknownDefinition { .. }
        ),
        row!(
            "set a deleted definition",
            |f| f
                .store
                .set_definition(&2, &f.deleted_definition, SetMode::Hard),
            Error::UnknownDefinition { .. }
        ),
        row!(
            "get an unknown definition",
            |f| f.store.definition(&def("nope")),
            Error::UnknownDefinition { .. }
        ),
        row!(
            "update an unknown definition",
            |f| f.store.update_definition(
                &def("nope"),
                DefinitionUpdate {
                    deactivated: Some(true),
                    ..Default::default()
                }
            ),
            Error::UnknownDefinition { .. }
        ),
        row!(
            "delete an unknown definition",
            |f| f.store.delete_definition(&f.deleted_definition),
            Error::UnknownDefinition { .. }
        ),
        row!(
            "source presence by an unknown definition",
            |f| f
                .store
                .set_source_presence(&1, &f.teams, &def("nope"), None),
            Error::UnknownDefinition { .. }
        ),
        row!(
            "set a deactivated definition",
            |f| f.store.set_definition(&2, &f.retired, SetMode::Hard),
            Error::DeactivatedDefinition { .. }
        ),
        row!(
            "set a deactivated definition on an unknown user",
            |f| f.store.set_definition(&STRANGER, &f.retired, SetMode::Soft),
            Error::DeactivatedDefinition { .. }
        ),
        row!(
            "source presence by a deactivated definition",
            |f| f.store.set_source_presence(&1, &f.teams, &f.retired, None),
            Error::DeactivatedDefinition { .. }
        ),
        row!(
            "update a system definition",
            |f| f.store.update_definition(
                &def("AVAILABLE"),
                DefinitionUpdate {
                    system_presence: Some(SystemPresence::Busy),
                    ..Default::default()
                }
            ),
            Error::SystemDefinition { .. }
        ),
        row!(
            "deactivate a system definition",
            |f| f.store.update_definition(
                &def("OFFLINE"),
                DefinitionUpdate {
                    deactivated: Some(true),
                    ..Default::default()
                }
            ),
            Error::SystemDefinition { .. }
        ),
        row!(
            "delete a system definition",
            |f| f.store.delete_definition(&def("ON_QUEUE")),
            Error::SystemDefinition { .. }
        ),
        row!(
            "definition without labels",
            |f| f
                .store
                .create_definition(SystemPresence::Away, BTreeMap::new()),
            Error::InvalidDefinition { .. }
        ),
        row!(
            "definition with an empty label",
            |f| f
                .store
                .create_definition(SystemPresence::Away, labels(&[("en_US", "")])),
            Error::InvalidDefinition { .. }
        ),
        row!(
            "definition with a 257-char label",
            |f| f
                .store
                .create_definition(SystemPresence::Away, labels(&[("en_US", &long(257))])),
            Error::InvalidDefinition { .. }
        ),
        row!(
            "definition with an empty locale",
            |f| f
                .store
                .create_definition(SystemPresence::Away, labels(&[("", "Lunch")])),
            Error::InvalidDefinition { .. }
        ),
        row!(
            "definition with a locale of 17 chars",
            |f| f
                .store
                .create_definition(SystemPresence::Away, labels(&[(&long(17), "Lunch")])),
            Error::InvalidDefinition { .. }
        ),
        row!(
            "definition with a locale with a space",
            |f| f
                .store
                .create_definition(SystemPresence::Away, labels(&[("en US", "Lunch")])),
            Error::InvalidDefinition { .. }
        ),
        row!(
            "definition with 33 labels",
            |f| {
                let many = (0..33).map(|i| (format!("l{i}"), "x".to_owned())).collect();
                f.store.create_definition(SystemPresence::Away, many)
            },
            Error::InvalidDefinition { .. }
        ),
        row!(
            "update a definition with bad labels",
            |f| f.store.update_definition(
                &f.lunch,
                DefinitionUpdate {
                    system_presence: Some(SystemPresence::Busy),
                    labels: Some(BTreeMap::new()),
                    deactivated: Some(true),
                }
            ),
            Error::InvalidDefinition { .. }
        ),
        // ---- sources ----
        row!(
            "source id: empty",
            |_f| SourceId::new(""),
            Error::InvalidSourceId { .. }
        ),
        row!(
            "source id: 129 chars",
            |_f| SourceId::new(&long(129)),
            Error::InvalidSourceId { .. }
        ),
        row!(
            "get an unknown source",
            |f| f.store.source(&src("nope")),
            Error::UnknownSource { .. }
        ),
        row!(
            "get a deleted source",
            |f| f.store.source(&f.deleted_source),
            Error::UnknownSource { .. }
        ),
        row!(
            "update an unknown source",
            |f| f.store.update_source(
                &src("nope"),
                SourceUpdate {
                    name: Some("X".into()),
                    deactivated: Some(true)
                }
            ),
            Error::UnknownSource { .. }
        ),
        row!(
            "delete an unknown source",
            |f| f.store.delete_source(&f.deleted_source),
            Error::UnknownSource { .. }
        ),
        row!(
            "source presence from an unknown source",
            |f| f
                .store
                .set_source_presence(&1, &src("nope"), &f.lunch, None),
            Error::UnknownSource { .. }
        ),
        row!(
            "source presence from an unknown source, unknown user",
            |f| f
                .store
                .set_source_presence(&STRANGER, &f.deleted_source, &f.lunch, None),
            Error::UnknownSource { .. }
        ),
        row!(
            "primary source unknown",
            |f| f.store.set_primary_source(&1, &f.deleted_source),
            Error::UnknownSource { .. }
        ),
        row!(
            "delete the default source",
            |f| f.store.delete_source(&SourceId::DEFAULT),
            Error::DefaultSource
        ),
        row!(
            "delete the default source, lower case",
            |f| f.store.delete_source(&src("purecloud")),
            Error::DefaultSource
        ),
        row!(
            "deactivate the default source",
            |f| f.store.update_source(
                &src("PureCloud"),
                SourceUpdate {
                    deactivated: Some(true),
                    ..Default::default()
                }
            ),
            Error::DefaultSource
        ),
        row!(
            "source presence from a deactivated source",
            |f| f.store.set_source_presence(&1, &f.calendar, &f.lunch, None),
            Error::DeactivatedSource { .. }
        ),
        row!(
            "source presence from a deactivated source, unknown user",
            |f| f
                .store
                .set_source_presence(&STRANGER, &f.calendar, &f.lunch, None),
            Error::DeactivatedSource { .. }
        ),
        row!(
            "source with an empty name",
            |f| f.store.create_source(""),
            Error::InvalidSource { .. }
        ),
        row!(
            "source with a blank name",
            |f| f.store.create_source(" \t "),
            Error::InvalidSource { .. }
        ),
        row!(
            "source with a 257-char name",
            |f| f.store.create_source(&long(257)),
            Error::InvalidSource { .. }
        ),
        row!(
            "rename a source to blank",
            |f| f.store.update_source(
                &f.teams,
                SourceUpdate {
                    name: Some(" ".into()),
                    deactivated: Some(true)
                }
            ),
            Error::InvalidSource { .. }
        ),
        // ---- configs ----
        row!(
            "config: too many shards",
            |_f| config_with(|c| c.with_shards(StoreConfig::MAX_SHARDS + 1)),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: log capacity 0",
            |_f| config_with(|c| c.with_log_capacity(0)),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: default page 0",
            |_f| config_with(|c| c.with_page_limits(0, 10)),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: max page below default",
            |_f| config_with(|c| c.with_page_limits(11, 10)),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: zero window",
            |_f| config_with(|c| c.with_delta_window(Duration::ZERO)),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: sub-ms window",
            |_f| config_with(|c| c.with_delta_window(Duration::from_micros(999))),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: zero idle time",
            |_f| config_with(|c| c.with_session_timeouts(Duration::ZERO, Duration::from_secs(1))),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: zero ttl",
            |_f| config_with(|c| c.with_session_timeouts(Duration::from_secs(1), Duration::ZERO)),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: ttl over 2^32 ms",
            |_f| config_with(|c| c
                .with_session_timeouts(Duration::from_secs(1), Duration::from_millis(1 << 32 | 1))),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: zero feed expiry",
            |_f| config_with(|c| c.with_feeds(10, Duration::ZERO)),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: feed expiry of u64::MAX s",
            |_f| config_with(|c| c.with_feeds(10, Duration::from_secs(u64::MAX))),
            Error::InvalidConfig { .. }
        ),
        row!(
            "config: the limits of the range are fine",
            |_f| config_with(|c| c
                .with_shards(1)
                .with_page_limits(1, 1)
                .with_log_capacity(1)
                .with_delta_window(Duration::from_millis(u64::from(u32::MAX)))
                .with_session_timeouts(Duration::from_millis(1), Duration::from_millis(1))),
            ok
        ),
    ];
    #[cfg(feature = "serde")]
    let rows = rows.into_iter().chain(snapshot_rows()).collect();
    rows
}

/// Snapshots no store could have taken.
#[cfg(feature = "serde")]
fn snapshot_rows() -> Vec<Row> {
    use presence_store::{SessionSnapshot, Snapshot};

    fn restore(f: &Fixture, edit: impl FnOnce(&mut Snapshot<u64>)) -> Result<(), Error> {
        let mut snapshot = f.store.snapshot();
        snapshot.users.sort_by_key(|u| u.user);
        edit(&mut snapshot);
        PresenceStore::restore_with_clock(config(), f.clock.clone(), snapshot).map(drop)
    }

    vec![
        row!(
            "restore: the snapshot itself is fine",
            |f| restore(f, |_| {}),
            ok
        ),
        row!(
            "restore: a user twice",
            |f| restore(f, |s| {
                let again = s.users[0].clone();
                s.users.push(again);
            }),
            Error::InvalidSnapshot { .. }
        ),
        row!(
            "restore: a session id twice",
            |f| restore(f, |s| {
                let again = s.users[0].sessions[0];
                s.users[0].sessions.push(again);
            }),
            Error::InvalidSnapshot { .. }
        ),
        row!(
            "restore: a primary source that is not there",
            |f| restore(f, |s| {
                s.users[1].primary = Some(SourceId::new("nope").unwrap());
            }),
            Error::InvalidSnapshot { .. }
        ),
        row!(
            "restore: a source presence from a source that is not there",
            |f| {
                let deleted = f.deleted_source.clone();
                restore(f, move |s| {
                    let user = s.users.iter_mut().find(|u| !u.sources.is_empty()).unwrap();
                    user.sources[0].source = deleted;
                })
            },
            Error::InvalidSnapshot { .. }
        ),
        row!(
            "restore: a source twice",
            |f| restore(f, |s| {
                let again = s.sources[1].clone();
                s.sources.push(again);
            }),
            Error::InvalidSnapshot { .. }
        ),
        row!(
            "restore: a source with a blank name",
            |f| restore(f, |s| {
                s.sources[1].name = " ".into();
            }),
            Error::InvalidSource { .. }
        ),
        row!(
            "restore: a definition twice",
            |f| restore(f, |s| {
                let again = s.definitions[0].clone();
                s.definitions.push(again);
            }),
            Error::InvalidSnapshot { .. }
        ),
        row!(
            "restore: a definition that claims to be a system one",
            |f| restore(f, |s| {
                s.definitions[0].system = true;
            }),
            Error::InvalidSnapshot { .. }
        ),
        row!(
            "restore: a definition without labels",
            |f| restore(f, |s| {
                s.definitions[0].labels.clear();
            }),
            Error::InvalidDefinition { .. }
        ),
        row!(
            "restore: a version past any store's",
            |f| restore(f, |s| {
                s.users[0].own.version = u64::MAX;
            }),
            Error::InvalidSnapshot { .. }
        ),
        row!(
            "restore: a session seen at u64::MAX",
            |f| restore(f, |s| {
                s.users[0].sessions.push(SessionSnapshot {
                    id: 77,
                    last_seen: u64::MAX,
                    active: true,
                });
            }),
            ok
        ),
        row!(
            "restore: an invalid config",
            |f| {
                PresenceStore::restore_with_clock(
                    config().with_log_capacity(0),
                    f.clock.clone(),
                    f.store.snapshot(),
                )
                .map(drop)
            },
            Error::InvalidConfig { .. }
        ),
        row!(
            "restore: snapshot JSON of another shape",
            |_f| {
                let parsed = serde_json::from_str::<Snapshot<u64>>(r#"{"users": 1}"#);
                assert!(parsed.is_err());
                Ok::<(), Error>(())
            },
            ok
        ),
    ]
}

#[test]
fn every_bad_input_is_its_error_and_changes_nothing() {
    let f = Fixture::new();
    let mut failures = Vec::new();
    for row in rows() {
        let before = State::of(&f.store);
        let cursor = f.store.cursor();
        let result = (row.call)(&f);
        if !(row.expect)(&result) {
            failures.push(format!("{}: got {result:?}", row.what));
        }
        if let Err(e) = &result {
            let message = e.to_string();
            assert!(
                message.len() > 10 && message.len() < 400,
                "{}: {message:?}",
                row.what
            );
        }
        let after = State::of(&f.store);
        assert_eq!(before, after, "{}: the store changed", row.what);
        let delta = f.store.changes_since(&Since::Cursor(cursor));
        assert!(
            !delta.full && delta.users.is_empty(),
            "{}: a delta from before the call is {delta:?}",
            row.what
        );
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Feeds that expired unread are unknown, like deleted ones.
#[test]
fn an_expired_feed_is_unknown() {
    let f = Fixture::new();
    f.clock.advance(Duration::from_secs(3601));
    f.store.sweep();
    assert!(matches!(
        f.store.read_feed(&f.feed, 10),
        Err(Error::UnknownFeed { .. })
    ));
    assert!(matches!(
        f.store.delete_feed(&f.feed),
        Err(Error::UnknownFeed { .. })
    ));
}

/// `new` and `with_clock` panic on an invalid config, as documented; `try_new` gives the error.
#[test]
#[should_panic(expected = "invalid store configuration")]
fn new_panics_on_an_invalid_config() {
    let _ = PresenceStore::<u64>::new(StoreConfig::default().with_log_capacity(0));
}

/// The most org definitions a store holds; one more is refused and changes nothing.
#[test]
fn one_definition_too_many() {
    let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default().with_shards(1));
    for i in 0..Definition::MAX_DEFINITIONS {
        store
            .create_definition(SystemPresence::Away, labels(&[("en_US", &format!("d{i}"))]))
            .unwrap();
    }
    let before = store.definitions();
    assert!(matches!(
        store.create_definition(SystemPresence::Away, labels(&[("en_US", "one more")])),
        Err(Error::InvalidDefinition { .. })
    ));
    assert_eq!(store.definitions(), before);
}

/// The most sources a store holds besides the default; one more is refused.
#[test]
fn one_source_too_many() {
    let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default().with_shards(1));
    let mut n = 0;
    while store.create_source("s").is_ok() {
        n += 1;
        assert!(n <= 10_000, "sources are unbounded");
    }
    assert_eq!(n, 256);
    let before = store.sources();
    assert!(matches!(
        store.create_source("s"),
        Err(Error::InvalidSource { .. })
    ));
    assert_eq!(store.sources(), before);
}
