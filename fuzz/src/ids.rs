//! `ids`: arbitrary keys into `get_many`, arbitrary page starts and limits into `page`, and
//! arbitrary snapshot JSON into `PresenceStore::restore`.
//!
//! An input that starts with `{` is snapshot JSON as it is (the seeds are real snapshots, so
//! mutations stay close to the format). Any other input is read as keys, page starts and a
//! snapshot built field by field (users and session ids from a small range, so repeats happen;
//! times near the clock or anywhere; references to sources and definitions that may or may not
//! exist), which is written out as JSON. Either way the JSON goes through serde into
//! `restore`, which must answer `Ok` or an `Error`, never panic. A restored store must then hold
//! every user of the snapshot, answer every read and write, and take its own snapshot back.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use presence_store::{
    Activity, Category, ManualClock, PageQuery, Presence, PresenceStore, SetMode, Since, Snapshot,
    SourceId, StoreConfig, SystemPresence,
};
use serde_json::{json, Value};

const NOW: u64 = 1_700_000_000_000;

/// Runs the keys and starts against a store built here, and the snapshot through `restore`.
pub fn run(data: &[u8]) {
    if data.first() == Some(&b'{') {
        restore(data);
        return;
    }
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let (store, known) = store();
    check_get_many(&store, &known, &input.ids);
    for &(start, limit, include_offline) in &input.starts {
        check_page(&store, &known, start.bound(), limit, include_offline);
    }
    let snapshot = input.snapshot.to_json();
    let json = serde_json::to_vec(&snapshot).expect("JSON serializes");
    restore(&json);
}

#[derive(Arbitrary, Debug)]
struct Input {
    ids: Vec<KeyArg>,
    starts: Vec<(Start, u8, bool)>,
    snapshot: SnapshotArg,
}

/// A key: mostly from a small range (the store knows some of them), or any `u64`.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum KeyArg {
    Small(u8),
    Raw(u64),
}

impl KeyArg {
    fn key(self) -> u64 {
        match self {
            KeyArg::Small(k) => u64::from(k % 24),
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

impl Start {
    fn bound(self) -> Bound<u64> {
        match self {
            Start::Unbounded => Bound::Unbounded,
            Start::Included(k) => Bound::Included(k.key()),
            Start::Excluded(k) => Bound::Excluded(k.key()),
        }
    }
}

/// A store whose users are the even keys below 20 and `u64::MAX`, some offline, one removed;
/// with every user it knows, in key order.
fn store() -> (PresenceStore<u64>, BTreeMap<u64, Presence>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let config = StoreConfig::default().with_shards(4).with_page_limits(4, 8);
    let store = PresenceStore::with_clock(config, clock);
    for user in (0..20).step_by(2).chain([u64::MAX]) {
        let category = Category::ALL[(user % 11) as usize];
        store.set(&user, category, SetMode::Soft).expect("a set");
        if user % 3 != 0 {
            store
                .heartbeat(&user, user, Activity::Active)
                .expect("a heartbeat");
        }
    }
    store.remove(&6);
    let known = (0..24)
        .chain([u64::MAX])
        .filter_map(|k| Some((k, store.get(&k)?)))
        .collect();
    (store, known)
}

fn check_get_many(store: &PresenceStore<u64>, known: &BTreeMap<u64, Presence>, ids: &[KeyArg]) {
    let keys: Vec<u64> = ids.iter().map(|k| k.key()).collect();
    let got = store.get_many(&keys);
    let exp: Vec<(u64, Presence)> = keys
        .iter()
        .filter_map(|k| Some((*k, known.get(k)?.clone())))
        .collect();
    assert_eq!(got, exp, "get_many({keys:?})");
}

/// One page from `start`, then the pages after it, against the known users.
fn check_page(
    store: &PresenceStore<u64>,
    known: &BTreeMap<u64, Presence>,
    start: Bound<u64>,
    limit: u8,
    include_offline: bool,
) {
    let max = store.config().max_page;
    let limit = match limit {
        0 => None,
        n => Some(usize::from(n) % (max + 2)),
    };
    let query = PageQuery {
        start,
        limit,
        include_offline,
    };
    let page = store.page(&query);
    let size = limit.unwrap_or(store.config().default_page);
    if size == 0 || size > max {
        assert!(
            matches!(page, Err(presence_store::Error::InvalidLimit { limit, max: m })
                if limit == size && m == max),
            "{query:?}: {page:?}"
        );
        return;
    }
    let mut expected = known
        .range((start, Bound::Unbounded))
        .filter(|(_, p)| include_offline || p.category != Category::Offline)
        .map(|(k, p)| (*k, p.clone()))
        .peekable();
    let mut query = query;
    for _ in 0..=known.len() {
        let page = store.page(&query).expect("a valid page");
        let items: Vec<(u64, Presence)> = expected.by_ref().take(size).collect();
        assert_eq!(page.items, items, "{query:?}");
        // `next` is the first user after the page that the page would list.
        let next = expected.peek().map(|(k, _)| *k);
        assert_eq!(page.next, next, "{query:?}: next");
        match next {
            None => return,
            Some(next) => query.start = Bound::Included(next),
        }
    }
    panic!("paging from {start:?} does not end");
}

/// Restores the snapshot `json` holds, if it holds one; checks the restored store.
fn restore(json: &[u8]) {
    let Ok(snapshot) = serde_json::from_slice::<Snapshot<u64>>(json) else {
        return;
    };
    let clock = Arc::new(ManualClock::new(NOW));
    let config = StoreConfig::default().with_shards(4);
    let users = snapshot.users.len();
    let restored =
        PresenceStore::restore_with_clock(config.clone(), clock.clone(), snapshot.clone());
    let store = match restored {
        Ok(store) => store,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert_eq!(store.len(), users, "every user of the snapshot");
    for user in &snapshot.users {
        assert!(store.get(&user.user).is_some(), "{:?} restored", user.user);
    }

    // The store takes its own snapshot back, to the same state.
    let first = store.snapshot();
    let again = PresenceStore::restore_with_clock(config.clone(), clock.clone(), first.clone())
        .unwrap_or_else(|e| panic!("a restored store's own snapshot is refused: {e}\n{first:?}"));
    assert_eq!(
        sorted(again.snapshot()),
        sorted(first.clone()),
        "restoring a restored store's snapshot changes it"
    );
    let json = serde_json::to_vec(&first).expect("a snapshot serializes");
    let parsed: Snapshot<u64> = serde_json::from_slice(&json).expect("a snapshot parses back");
    assert_eq!(parsed, first);

    // Reads.
    let page = store
        .page(&PageQuery::first().with_limit(config.max_page))
        .expect("a page");
    assert_eq!(page.items.len(), users.min(config.max_page));
    assert!(page.items.windows(2).all(|w| w[0].0 < w[1].0));
    for (user, presence) in &page.items {
        assert_eq!(store.get(user).as_ref(), Some(presence));
    }
    let cursor = store.cursor();
    for since in [
        Since::Time(NOW - 1),
        Since::Time(0),
        Since::Cursor(page.cursor),
    ] {
        let delta = store.changes_since(&since);
        assert!(delta.users.windows(2).all(|w| w[0].0 != w[1].0));
    }

    // Writes, and time passing.
    let definitions = store.definitions();
    let sources = store.sources();
    for (i, user) in snapshot.users.iter().enumerate().take(8) {
        let k = user.user;
        let _ = store.heartbeat(&k, 1, Activity::Active);
        let _ = store.set(&k, Category::ALL[i % 11], SetMode::Hard);
        let _ = store.set_message(&k, "back soon");
        if let Some(d) = definitions.get(i % definitions.len().max(1)) {
            let _ = store.set_definition(&k, &d.id, SetMode::Soft);
            if let Some(s) = sources.get(i % sources.len().max(1)) {
                let _ = store.set_source_presence(&k, &s.id, &d.id, Some("hi"));
                let _ = store.set_primary_source(&k, &s.id);
            }
        }
        for session in &user.sessions {
            let _ = store.disconnect(&k, session.id);
        }
        if i % 3 == 2 {
            store.remove(&k);
        }
    }
    for step in [1, 60_000, 120_000, 86_400_000] {
        clock.advance(Duration::from_millis(step));
        store.sweep();
    }
    if let Some(s) = sources.iter().find(|s| !s.id.is_default()) {
        let _ = store.delete_source(&s.id);
    }
    let delta = store.changes_since(&Since::Cursor(cursor));
    assert!(delta.users.windows(2).all(|w| w[0].0 != w[1].0));
    store.snapshot();
}

/// A snapshot with its users in key order, each user's sessions and source presences sorted,
/// and no time taken: two snapshots of one state compare equal.
fn sorted(mut s: Snapshot<u64>) -> Snapshot<u64> {
    s.taken_at = 0;
    s.users.sort_by_key(|u| u.user);
    for u in &mut s.users {
        u.sessions.sort_by_key(|s| s.id);
        u.sources.sort_by(|a, b| a.source.cmp(&b.source));
    }
    s
}

// ---- snapshots built field by field ----

#[derive(Arbitrary, Debug)]
struct SnapshotArg {
    taken_at: Time,
    users: Vec<UserArg>,
    sources: Vec<SourceArg>,
    definitions: Vec<DefinitionArg>,
}

#[derive(Arbitrary, Debug)]
struct UserArg {
    user: KeyArg,
    own: PresenceArg,
    sessions: Vec<SessionArg>,
    primary: Option<SourceRef>,
    sources: Vec<SourcePresenceArg>,
}

#[derive(Arbitrary, Debug)]
struct PresenceArg {
    category: u8,
    requested: u8,
    activity: u8,
    updated_at: Time,
    version: Version,
    message: Option<String>,
    definition: Option<DefinitionRef>,
    source: Option<SourceRef>,
}

#[derive(Arbitrary, Debug)]
struct SessionArg {
    id: KeyArg,
    last_seen: Time,
    active: bool,
}

#[derive(Arbitrary, Debug)]
struct SourcePresenceArg {
    source: SourceRef,
    definition: DefinitionRef,
    category: u8,
    message: Option<String>,
    updated_at: Time,
}

#[derive(Arbitrary, Debug)]
struct SourceArg {
    id: SourceRef,
    name: Name,
    deactivated: bool,
}

#[derive(Arbitrary, Debug)]
struct DefinitionArg {
    id: DefinitionRef,
    system_presence: u8,
    labels: Option<Vec<(String, String)>>,
    deactivated: bool,
    system: bool,
}

/// A time: near the clock, or anywhere.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Time {
    Near(i32),
    Raw(u64),
}

impl Time {
    fn ms(self) -> u64 {
        match self {
            Time::Near(d) => NOW.saturating_add_signed(d.into()),
            Time::Raw(t) => t,
        }
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Version {
    Small(u8),
    Raw(u64),
}

/// A source id: the default (in some case), one of four the snapshot may register, or any text.
#[derive(Arbitrary, Debug)]
enum SourceRef {
    Default,
    DefaultLower,
    Numbered(u8),
    Text(String),
}

impl SourceRef {
    fn id(&self) -> String {
        match self {
            SourceRef::Default => SourceId::DEFAULT.to_string(),
            SourceRef::DefaultLower => SourceId::DEFAULT.as_str().to_ascii_lowercase(),
            SourceRef::Numbered(n) => format!("source-{}", n % 4),
            SourceRef::Text(s) => s.clone(),
        }
    }
}

/// A definition id: a system one, one of four the snapshot may define, or any text.
#[derive(Arbitrary, Debug)]
enum DefinitionRef {
    System(u8),
    Numbered(u8),
    Text(String),
}

impl DefinitionRef {
    fn id(&self) -> String {
        match self {
            DefinitionRef::System(i) => system_presence(*i).as_str().to_owned(),
            DefinitionRef::Numbered(n) => format!("definition-{}", n % 4),
            DefinitionRef::Text(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Name {
    Plain,
    Text(String),
}

fn system_presence(i: u8) -> SystemPresence {
    SystemPresence::ALL[usize::from(i) % SystemPresence::ALL.len()]
}

fn category(i: u8) -> Value {
    json!(Category::ALL[usize::from(i) % Category::ALL.len()])
}

impl SnapshotArg {
    fn to_json(&self) -> Value {
        json!({
            "taken_at": self.taken_at.ms(),
            "users": self.users.iter().map(UserArg::to_json).collect::<Vec<_>>(),
            "sources": self.sources.iter().map(|s| json!({
                "id": s.id.id(),
                "name": match &s.name {
                    Name::Plain => "Integration",
                    Name::Text(t) => t,
                },
                "deactivated": s.deactivated,
            })).collect::<Vec<_>>(),
            "definitions": self.definitions.iter().map(|d| json!({
                "id": d.id.id(),
                "system_presence": system_presence(d.system_presence),
                "labels": match &d.labels {
                    None => BTreeMap::from([("en_US".to_owned(), "Custom".to_owned())]),
                    Some(pairs) => pairs.iter().cloned().collect(),
                },
                "deactivated": d.deactivated,
                "system": d.system,
            })).collect::<Vec<_>>(),
        })
    }
}

impl UserArg {
    fn to_json(&self) -> Value {
        let own = &self.own;
        let activity =
            [Activity::Active, Activity::Idle, Activity::Offline][usize::from(own.activity % 3)];
        json!({
            "user": self.user.key(),
            "own": {
                "category": category(own.category),
                "requested": category(own.requested),
                "activity": activity,
                "updated_at": own.updated_at.ms(),
                "version": match own.version {
                    Version::Small(v) => u64::from(v),
                    Version::Raw(v) => v,
                },
                "message": own.message,
                "definition": own.definition.as_ref().map(DefinitionRef::id),
                "source": own.source.as_ref().map(SourceRef::id),
            },
            "sessions": self.sessions.iter().map(|s| json!({
                "id": match s.id {
                    KeyArg::Small(i) => u64::from(i % 4),
                    KeyArg::Raw(i) => i,
                },
                "last_seen": s.last_seen.ms(),
                "active": s.active,
            })).collect::<Vec<_>>(),
            "primary": self.primary.as_ref().map(SourceRef::id),
            "sources": self.sources.iter().map(|p| json!({
                "source": p.source.id(),
                "definition": p.definition.id(),
                "category": category(p.category),
                "message": p.message,
                "updated_at": p.updated_at.ms(),
            })).collect::<Vec<_>>(),
        })
    }
}
