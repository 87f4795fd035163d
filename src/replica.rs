//! [`Replica`]: one instance of a cluster of stores that share one presence view, with no network
//! code (the `presence-cluster` crate carries the events over a broker).
//!
//! Every instance is a *node* ([`NodeId`]). It owns the sessions connected to it and the writes
//! made through it, and turns each into an [`Event`]: the origin node, a hybrid logical clock
//! stamp ([`Hlc`]) and the operation ([`Op`]). The events of the writes made here wait in an
//! outbox ([`Replica::take_outbox`]) for the transport to publish them; the events other nodes
//! published are [`applied`](Replica::apply) and never enter the outbox, so nothing applied is
//! published again.
//!
//! # Convergence
//!
//! Applying is idempotent and commutative, so any delivery order, with any duplicates, ends in
//! the same state (`tests/replica.rs` checks this against a naive model):
//!
//! - **User-set state is last-writer-wins** by `(stamp, origin)`, one register per field: the
//!   request (category, mode, definition), the status message, the primary source, and each
//!   source's presence. An older write arriving late loses to the newer one it never saw.
//! - **Sessions belong to their origin.** A session's state (active, idle, ended) is a register
//!   per `(origin, session)`, last-writer-wins by stamp; an ended session leaves a tombstone so a
//!   late duplicate cannot revive it (tombstones are forgotten after [`TOMBSTONE_HORIZON_MS`]).
//!   Other nodes' sessions sit in the store *pinned*: the local sweep never idles or expires
//!   them, only their owner does, and publishes that. When a node is declared down,
//!   [`Replica::node_down`] drops all of its sessions, each change logged; its later session
//!   events are ignored until [`Replica::node_up`].
//! - **A hard set holds until the user's next session change**, on any node: it is in force
//!   while no session event newer than the set has been seen. (On one store a hard set holds
//!   until the *aggregate* activity changes; that depends on the order of arrival, which a
//!   cluster cannot agree on, so the cluster rule looks at stamps only.)
//! - **A removal is a tombstone for the user**: writes and sessions older than it are dropped
//!   or ignored; newer ones stand.
//! - **Organization state is last-writer-wins per item**: each presence definition (by id),
//!   source (by id) and host setting (by key) is one register holding the whole item, so an
//!   update carries all of it and ids, generated where the item was created, travel with it. A
//!   deletion is a tombstone in that register and wins or loses by stamp like any write (an
//!   update newer than a deletion it never saw brings the item back). A user's presence from
//!   a source, and a primary source, count only while that source is not deleted, so they
//!   agree everywhere whatever order the deletion arrived in. Tombstones of the last
//!   [`MAX_ORG_TOMBSTONES`] deletions are kept. Settings are opaque to this crate: the host
//!   names the keys and encodes the values (JSON, by convention). The caps on definitions and
//!   sources are checked where an item is created; items other nodes created are always
//!   taken, so that every node holds the same set (creations racing on several nodes may pass
//!   a cap by a few).
//!
//! Locks: the replica's state is striped by the user's hash like the store's; a write takes
//! one stripe's lock, then the user's shard's. Each stripe keeps its own hybrid clock (a
//! user's stamps only need to grow with that user's causality), so no write touches anything
//! shared with writes of other stripes. The organization state has one lock and clock of its
//! own (read-write), taken after a stripe's (never before), then the registries' and shards'.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use ahash::RandomState;
use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, RwLock};

use crate::shard::SourcePresence;
use crate::{
    Activity, Category, Definition, DefinitionId, DefinitionUpdate, Error, Key, Presence,
    PresenceStore, SetMode, Source, SourceId, SourceUpdate, SystemPresence,
};

/// How long an ended session's tombstone is kept, in ms: a duplicate of an older event of the
/// session arriving later than this would open it again. Transports deliver duplicates within
/// moments (a retried publish), so a minute is ample.
pub const TOMBSTONE_HORIZON_MS: u64 = 60_000;

/// How many deletions of definitions and sources are remembered: an event older than a
/// forgotten deletion (a duplicate delivered very late, a stale snapshot) could bring the item
/// back. Bounded so that creating and deleting over and over cannot grow memory without end.
pub const MAX_ORG_TOMBSTONES: usize = 10_000;

/// Stripes of the replica's state: enough that writers on different users rarely meet.
const STRIPES: usize = 64;

/// Bits of an [`Hlc`] below the milliseconds: the logical counter.
const LOGICAL_BITS: u32 = 16;

/// The longest node id, in bytes.
const MAX_NODE_ID: usize = 64;

/// The name of one node of a cluster: 1 to 64 ASCII letters, digits or `._:/-`. Ties between
/// writes with the same stamp go to the greater id.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// A node id, or [`Error::InvalidNodeId`].
    pub fn new(id: &str) -> Result<Self, Error> {
        if id.is_empty() || id.len() > MAX_NODE_ID {
            return Err(Error::InvalidNodeId {
                reason: "a node id has 1 to 64 bytes",
            });
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._:/-".contains(c);
        if !id.chars().all(allowed) {
            return Err(Error::InvalidNodeId {
                reason: "a node id has only ASCII letters, digits and ._:/-",
            });
        }
        Ok(NodeId(Arc::from(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NodeId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A hybrid logical clock timestamp: milliseconds since the Unix epoch in the high 48 bits, a
/// counter in the low 16 that orders events within one millisecond. It never goes backwards on
/// a node and always passes every stamp the node has seen, so a write made after seeing another
/// carries a greater stamp even when the nodes' wall clocks disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Hlc(pub u64);

impl Hlc {
    /// The wall-clock part, in ms since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// The first stamp of a millisecond.
    pub fn at_millis(ms: u64) -> Self {
        Hlc(ms.min(u64::MAX >> LOGICAL_BITS) << LOGICAL_BITS)
    }
}

/// What a replicated session is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SessionState {
    /// Connected, with user activity.
    Active,
    /// Connected, idle.
    Idle,
    /// Disconnected or expired.
    Ended,
}

impl SessionState {
    fn of(activity: Activity) -> Self {
        match activity {
            Activity::Active => SessionState::Active,
            Activity::Idle => SessionState::Idle,
            Activity::Offline => SessionState::Ended,
        }
    }

    fn activity(self) -> Activity {
        match self {
            SessionState::Active => Activity::Active,
            SessionState::Idle => Activity::Idle,
            SessionState::Ended => Activity::Offline,
        }
    }
}

/// One replicated change. Each carries the whole new value of what it changes, so applying it
/// twice, or after a newer one, is harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Op<K> {
    /// The user's request: [`PresenceStore::set`], or [`PresenceStore::set_definition`] when
    /// `definition` is given.
    Set {
        /// The user.
        user: K,
        /// The category requested (the definition's, for a set by definition).
        category: Category,
        /// How it applies.
        mode: SetMode,
        /// The definition it was set by, if any.
        definition: Option<DefinitionId>,
    },
    /// The user's status message ([`PresenceStore::set_message`]); `None` clears it.
    Message {
        /// The user.
        user: K,
        /// The message.
        message: Option<Arc<str>>,
    },
    /// The user's presence from one source ([`PresenceStore::set_source_presence`]). For the
    /// default source this is a hard set by definition plus the message.
    SourcePresence {
        /// The user.
        user: K,
        /// The source.
        source: SourceId,
        /// The definition set.
        definition: DefinitionId,
        /// The definition's category.
        category: Category,
        /// The message, if any.
        message: Option<Arc<str>>,
    },
    /// The user's primary source; `None` is the default ([`PresenceStore::set_primary_source`]).
    Primary {
        /// The user.
        user: K,
        /// The source.
        source: Option<SourceId>,
    },
    /// One of the origin's sessions of the user opened, changed activity, or ended.
    Session {
        /// The user.
        user: K,
        /// The session's id on its origin.
        session: u64,
        /// Its state now.
        state: SessionState,
    },
    /// The user was forgotten ([`PresenceStore::remove`]).
    Remove {
        /// The user.
        user: K,
    },
    /// The newest session event of the user carried this event's stamp. Only republished
    /// state carries it, so that a node that never saw that event (the log was lost) ends a
    /// hard set as the others did.
    SessionsSeen {
        /// The user.
        user: K,
    },
    /// An organization presence definition as it now is, whole
    /// ([`PresenceStore::create_definition`], [`PresenceStore::update_definition`]); `None`:
    /// deleted ([`PresenceStore::delete_definition`]).
    Definition {
        /// Its id, generated where it was created.
        id: DefinitionId,
        /// The definition, or `None` once deleted (a tombstone).
        definition: Option<Definition>,
    },
    /// A presence source as it now is, whole ([`PresenceStore::create_source`],
    /// [`PresenceStore::update_source`]); `None`: deleted ([`PresenceStore::delete_source`]).
    Source {
        /// Its id, generated where it was created.
        id: SourceId,
        /// The source, or `None` once deleted (a tombstone).
        source: Option<Source>,
    },
    /// A setting of the host's ([`Replica::set_setting`]): an opaque value under a key.
    Setting {
        /// The host's name for it.
        key: Arc<str>,
        /// Its value, as the host encoded it.
        value: Arc<str>,
    },
}

impl<K> Op<K> {
    /// The user the operation is about; `None` for organization state (definitions, sources,
    /// settings).
    pub fn user(&self) -> Option<&K> {
        match self {
            Op::Set { user, .. }
            | Op::Message { user, .. }
            | Op::SourcePresence { user, .. }
            | Op::Primary { user, .. }
            | Op::Session { user, .. }
            | Op::Remove { user }
            | Op::SessionsSeen { user } => Some(user),
            Op::Definition { .. } | Op::Source { .. } | Op::Setting { .. } => None,
        }
    }
}

/// An operation with where and when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Event<K> {
    /// The node the operation was made through.
    pub origin: NodeId,
    /// When, on the origin's hybrid clock.
    pub stamp: Hlc,
    /// What.
    pub op: Op<K>,
}

/// The order of last-writer-wins: stamp, then origin.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp {
    time: Hlc,
    node: NodeId,
}

/// A last-writer-wins register.
#[derive(Clone, Debug)]
struct Reg<V> {
    stamp: Stamp,
    value: V,
}

/// The value of a request register.
#[derive(Clone, Debug)]
struct Request {
    category: Category,
    mode: SetMode,
    definition: Option<DefinitionId>,
}

/// The value of a source's register (never the default source: that one is the request and
/// message registers).
#[derive(Clone, Debug)]
struct SourceSet {
    source: SourceId,
    definition: DefinitionId,
    category: Category,
    message: Option<Arc<str>>,
}

/// One session's register: the stamp of its latest event and its state (`Ended`: a tombstone).
#[derive(Clone, Debug)]
struct SessionReg {
    stamp: Stamp,
    id: u64,
    state: SessionState,
}

/// Everything replicated about one user.
#[derive(Clone, Debug, Default)]
struct UserState {
    request: Option<Reg<Request>>,
    message: Option<Reg<Option<Arc<str>>>>,
    primary: Option<Reg<Option<SourceId>>>,
    sources: Vec<Reg<SourceSet>>,
    /// Every node's sessions; `stamp.node` is the owner.
    sessions: Vec<SessionReg>,
    /// The newest session event seen, applied or not: a hard set older than it is over.
    session_stamp: Option<Stamp>,
    removed: Option<Stamp>,
}

impl UserState {
    /// Whether a hard request is still in force.
    fn request_mode(&self, request: &Reg<Request>) -> SetMode {
        match request.value.mode {
            SetMode::Hard if self.session_stamp.as_ref() < Some(&request.stamp) => SetMode::Hard,
            _ => SetMode::Soft,
        }
    }
}

/// One stripe of the replica's state.
#[derive(Debug)]
struct Stripe<K> {
    /// The newest stamp issued or seen here.
    clock: Hlc,
    users: HashMap<K, UserState, RandomState>,
    /// Events of local writes, waiting to be published.
    outbox: Vec<Event<K>>,
    /// Other nodes' ended sessions, oldest first: (stamp, user, origin, session).
    tombstones: VecDeque<(Hlc, K, NodeId, u64)>,
}

impl<K: Key> Stripe<K> {
    /// A fresh stamp at `now_ms`, past every stamp seen here.
    fn tick(&mut self, now_ms: u64) -> Hlc {
        tick(&mut self.clock, now_ms)
    }
}

/// A fresh stamp at `now_ms`, past `clock`, which becomes it.
fn tick(clock: &mut Hlc, now_ms: u64) -> Hlc {
    *clock = Hlc::at_millis(now_ms).max(Hlc(clock.0.saturating_add(1)));
    *clock
}

/// A deleted definition or source, as the tombstone queue names it.
#[derive(Clone, Debug)]
enum OrgItem {
    Definition(DefinitionId),
    Source(SourceId),
}

/// The replicated organization state: one register per definition, source and setting.
#[derive(Debug)]
struct Org<K> {
    /// The newest stamp issued or seen for organization state.
    clock: Hlc,
    definitions: HashMap<DefinitionId, Reg<Option<Definition>>>,
    sources: HashMap<SourceId, Reg<Option<Source>>>,
    settings: HashMap<Arc<str>, Reg<Arc<str>>>,
    /// Deletions, oldest first; past [`MAX_ORG_TOMBSTONES`] the oldest are forgotten.
    tombstones: VecDeque<(Stamp, OrgItem)>,
    /// Events of local organization writes, waiting to be published.
    outbox: Vec<Event<K>>,
    /// Changes applied from other nodes, for [`Replica::org_version`].
    applied: u64,
}

impl<K> Org<K> {
    /// The registers of what `store` already holds (restored from disk, say), at the zero
    /// stamp of `node`: every write made anywhere beats them, and snapshots carry them.
    fn adopt(store: &PresenceStore<K>, node: &NodeId) -> Self
    where
        K: Key,
    {
        let zero = Stamp {
            time: Hlc(0),
            node: node.clone(),
        };
        let reg = |value| Reg {
            stamp: zero.clone(),
            value: Some(value),
        };
        Org {
            clock: Hlc::default(),
            definitions: store
                .definitions()
                .into_iter()
                .filter(|d| !d.system)
                .map(|d| (d.id.clone(), reg(d)))
                .collect(),
            sources: store
                .sources()
                .into_iter()
                .map(|s| {
                    (
                        s.id.clone(),
                        Reg {
                            stamp: zero.clone(),
                            value: Some(s),
                        },
                    )
                })
                .collect(),
            settings: HashMap::new(),
            tombstones: VecDeque::new(),
            outbox: Vec::new(),
            applied: 0,
        }
    }

    /// Remembers a deletion, forgetting the oldest past [`MAX_ORG_TOMBSTONES`].
    fn bury(&mut self, stamp: &Stamp, item: OrgItem) {
        self.tombstones.push_back((stamp.clone(), item));
        while self.tombstones.len() > MAX_ORG_TOMBSTONES {
            let Some((stamp, item)) = self.tombstones.pop_front() else {
                break;
            };
            match item {
                OrgItem::Definition(id) => {
                    if self.definitions.get(&id).is_some_and(|r| buried(r, &stamp)) {
                        self.definitions.remove(&id);
                    }
                }
                OrgItem::Source(id) => {
                    if self.sources.get(&id).is_some_and(|r| buried(r, &stamp)) {
                        self.sources.remove(&id);
                    }
                }
            }
        }
    }

    /// Whether `source` is deleted (its register a tombstone).
    fn deleted(&self, source: &SourceId) -> bool {
        self.sources.get(source).is_some_and(|r| r.value.is_none())
    }
}

/// Whether a register still holds the tombstone of a deletion at `stamp`.
fn buried<V>(reg: &Reg<Option<V>>, stamp: &Stamp) -> bool {
    reg.stamp == *stamp && reg.value.is_none()
}

/// Puts `value` in `map`'s register for `key` if `stamp` is newer than the register's; whether
/// it did.
fn put_newer<Q: Eq + Hash + Clone, V: Clone>(
    map: &mut HashMap<Q, Reg<V>>,
    key: &Q,
    stamp: &Stamp,
    value: &V,
) -> bool {
    let reg = Reg {
        stamp: stamp.clone(),
        value: value.clone(),
    };
    match map.get_mut(key) {
        Some(r) if r.stamp >= *stamp => false,
        Some(r) => {
            *r = reg;
            true
        }
        None => {
            map.insert(key.clone(), reg);
            true
        }
    }
}

/// A store taking part in a cluster: local writes go through it, so they are stamped and queued
/// for publishing, and other nodes' events are applied through it. Reads go to
/// [`store`](Replica::store) directly. See the module docs for the rules.
pub struct Replica<K> {
    store: Arc<PresenceStore<K>>,
    node: NodeId,
    stripes: Box<[CachePadded<Mutex<Stripe<K>>>]>,
    hasher: RandomState,
    /// Nodes declared down: their session events are ignored.
    down: RwLock<HashSet<NodeId>>,
    /// Read (shared) by a user's write only when it involves a source other than the
    /// default, as the store's source registry already is.
    org: RwLock<Org<K>>,
}

impl<K> fmt::Debug for Replica<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl<K: Key> Replica<K> {
    /// Makes `store` the replica of node `node`. The store should be empty, or hold only what
    /// this node owns: its users are not published. Organization state it holds (restored
    /// from disk) is taken in at the oldest possible stamp: it goes into snapshots and
    /// republished state, and any write made on any node beats it.
    pub fn new(store: Arc<PresenceStore<K>>, node: NodeId) -> Self {
        let org = RwLock::new(Org::adopt(&store, &node));
        let hasher = RandomState::new();
        let stripes = (0..STRIPES)
            .map(|_| {
                CachePadded::new(Mutex::new(Stripe {
                    clock: Hlc::default(),
                    users: HashMap::with_hasher(hasher.clone()),
                    outbox: Vec::new(),
                    tombstones: VecDeque::new(),
                }))
            })
            .collect();
        Replica {
            store,
            node,
            stripes,
            hasher,
            down: RwLock::new(HashSet::new()),
            org,
        }
    }

    /// The store: read it directly; write through the replica.
    pub fn store(&self) -> &Arc<PresenceStore<K>> {
        &self.store
    }

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    fn stripe(&self, user: &K) -> &Mutex<Stripe<K>> {
        let index = (self.hasher.hash_one(user) as usize) % STRIPES;
        &self.stripes[index]
    }

    /// Applies a local write of a user's: stamps it, applies it and queues it for publishing.
    fn local(&self, user: &K, op: Op<K>) -> Result<Presence, Error> {
        let mut stripe = self.stripe(user).lock();
        let now = self.store.now_ms();
        let event = Event {
            origin: self.node.clone(),
            stamp: stripe.tick(now),
            op,
        };
        self.apply_locked(&mut stripe, user, &event, false);
        stripe.outbox.push(event);
        drop(stripe);
        self.store
            .get(user)
            .ok_or_else(|| Error::unknown_user(user))
    }

    /// Applies a local organization write: `write` makes it in the store (which checks it and
    /// gives the item as it now is), then it is stamped, registered and queued for publishing.
    /// The organization lock is held throughout, so stamps follow the order of the writes.
    fn org_local<R>(
        &self,
        write: impl FnOnce(&PresenceStore<K>) -> Result<(Op<K>, R), Error>,
    ) -> Result<R, Error> {
        let mut org = self.org.write();
        let (op, out) = write(&self.store)?;
        let stamp = tick(&mut org.clock, self.store.now_ms());
        let event = Event {
            origin: self.node.clone(),
            stamp,
            op,
        };
        self.apply_org(&mut org, &event, false);
        org.outbox.push(event);
        Ok(out)
    }

    /// [`PresenceStore::create_definition`], replicated.
    pub fn create_definition(
        &self,
        system_presence: SystemPresence,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<Definition, Error> {
        self.org_local(|store| {
            let def = store.create_definition(system_presence, labels)?;
            Ok((definition_op(&def), def))
        })
    }

    /// [`PresenceStore::update_definition`], replicated: the event carries the whole result.
    pub fn update_definition(
        &self,
        id: &DefinitionId,
        update: DefinitionUpdate,
    ) -> Result<Definition, Error> {
        self.org_local(|store| {
            let def = store.update_definition(id, update)?;
            Ok((definition_op(&def), def))
        })
    }

    /// [`PresenceStore::delete_definition`], replicated as a tombstone.
    pub fn delete_definition(&self, id: &DefinitionId) -> Result<(), Error> {
        self.org_local(|store| {
            store.delete_definition(id)?;
            let op = Op::Definition {
                id: id.clone(),
                definition: None,
            };
            Ok((op, ()))
        })
    }

    /// [`PresenceStore::create_source`], replicated.
    pub fn create_source(&self, name: &str) -> Result<Source, Error> {
        self.org_local(|store| {
            let source = store.create_source(name)?;
            Ok((source_op(&source), source))
        })
    }

    /// [`PresenceStore::update_source`], replicated: the event carries the whole result.
    pub fn update_source(&self, id: &SourceId, update: SourceUpdate) -> Result<Source, Error> {
        self.org_local(|store| {
            let source = store.update_source(id, update)?;
            Ok((source_op(&source), source))
        })
    }

    /// [`PresenceStore::delete_source`], replicated as a tombstone: every node drops the
    /// users' presences from it.
    pub fn delete_source(&self, id: &SourceId) -> Result<(), Error> {
        self.org_local(|store| {
            store.delete_source(id)?;
            let op = Op::Source {
                id: id.clone(),
                source: None,
            };
            Ok((op, ()))
        })
    }

    /// Sets a setting of the host's, replicated: `value` under `key`, last writer wins. The
    /// crate neither reads nor checks either: the host names its keys and encodes its values
    /// (JSON, by convention), and reads them back with [`setting`](Self::setting).
    ///
    /// Locks: the organization state. Cost: O(1); allocates the key and value.
    pub fn set_setting(&self, key: &str, value: &str) {
        // Nothing in a setting can be refused.
        let _ = self.org_local(|_| {
            let op = Op::Setting {
                key: Arc::from(key),
                value: Arc::from(value),
            };
            Ok((op, ()))
        });
    }

    /// The value of the host's setting `key`, as the latest writer on any node set it; `None`
    /// if no node has.
    pub fn setting(&self, key: &str) -> Option<String> {
        let org = self.org.read();
        org.settings.get(key).map(|r| r.value.to_string())
    }

    /// Every setting of the host's, by key.
    pub fn settings(&self) -> std::collections::BTreeMap<String, String> {
        let org = self.org.read();
        org.settings
            .iter()
            .map(|(k, r)| (k.to_string(), r.value.to_string()))
            .collect()
    }

    /// How many changes of the organization state (definitions, sources, settings) this
    /// replica applied from other nodes: a host that keeps that state on disk saves it when
    /// this moves, since no request of its own did.
    pub fn org_version(&self) -> u64 {
        self.org.read().applied
    }

    /// [`PresenceStore::set`], replicated.
    pub fn set(&self, user: &K, category: Category, mode: SetMode) -> Result<Presence, Error> {
        self.local(
            user,
            Op::Set {
                user: user.clone(),
                category,
                mode,
                definition: None,
            },
        )
    }

    /// [`PresenceStore::set_definition`], replicated.
    pub fn set_definition(
        &self,
        user: &K,
        definition: &DefinitionId,
        mode: SetMode,
    ) -> Result<Presence, Error> {
        let (definition, category) = self.store.resolve_definition(definition)?;
        self.local(
            user,
            Op::Set {
                user: user.clone(),
                category,
                mode,
                definition: Some(definition),
            },
        )
    }

    /// [`PresenceStore::set_message`], replicated.
    pub fn set_message(&self, user: &K, message: &str) -> Result<Presence, Error> {
        let message = self.store.check_message(message)?;
        if self.store.get(user).is_none() {
            return Err(Error::unknown_user(user));
        }
        self.local(
            user,
            Op::Message {
                user: user.clone(),
                message,
            },
        )
    }

    /// [`PresenceStore::set_source_presence`], replicated. Returns the user's presence from
    /// `source`, as the store's does.
    pub fn set_source_presence(
        &self,
        user: &K,
        source: &SourceId,
        definition: &DefinitionId,
        message: Option<&str>,
    ) -> Result<Presence, Error> {
        let source = self.store.check_source(source, true)?;
        let (definition, category) = self.store.resolve_definition(definition)?;
        let message = self.store.check_message(message.unwrap_or_default())?;
        self.local(
            user,
            Op::SourcePresence {
                user: user.clone(),
                source: source.clone(),
                definition,
                category,
                message,
            },
        )?;
        self.store
            .source_presence(user, &source)
            .ok_or_else(|| Error::unknown_user(user))
    }

    /// [`PresenceStore::set_primary_source`], replicated.
    pub fn set_primary_source(&self, user: &K, source: &SourceId) -> Result<Presence, Error> {
        let source = self.store.check_source(source, false)?;
        if self.store.get(user).is_none() {
            return Err(Error::unknown_user(user));
        }
        self.local(
            user,
            Op::Primary {
                user: user.clone(),
                source: (!source.is_default()).then_some(source),
            },
        )
    }

    /// [`PresenceStore::remove`], replicated.
    pub fn remove(&self, user: &K) -> Option<Presence> {
        let old = self.store.get(user)?;
        self.local(user, Op::Remove { user: user.clone() }).ok();
        Some(old)
    }

    /// [`PresenceStore::heartbeat`] of a session connected to this node, replicated when it
    /// opens, ends or changes activity. A heartbeat that changes none of these publishes
    /// nothing and allocates nothing.
    ///
    /// Locks: the user's stripe, then the user's shard. Cost: O(sessions of the user).
    pub fn heartbeat(&self, user: &K, session: u64, activity: Activity) -> Result<Presence, Error> {
        let state = SessionState::of(activity);
        let stripe = self.stripe(user).lock();
        let known = stripe.users.get(user).and_then(|u| {
            u.sessions
                .iter()
                .find(|s| s.id == session && s.stamp.node == self.node)
        });
        match known {
            Some(reg) if reg.state == state => {
                return self.store.heartbeat(user, session, activity);
            }
            None if state == SessionState::Ended => {
                drop(stripe);
                return match self.store.get(user) {
                    Some(p) => Ok(p),
                    None => self.store.heartbeat(user, session, activity),
                };
            }
            _ => {}
        }
        drop(stripe);
        self.local(
            user,
            Op::Session {
                user: user.clone(),
                session,
                state,
            },
        )
    }

    /// [`PresenceStore::disconnect`] of a session connected to this node, replicated.
    pub fn disconnect(&self, user: &K, session: u64) -> Result<Presence, Error> {
        if self.store.get(user).is_none() {
            return Err(Error::unknown_user(user));
        }
        self.heartbeat(user, session, Activity::Offline)
    }

    /// [`PresenceStore::sweep`], publishing the sessions of this node it idled or expired, and
    /// forgetting tombstones older than [`TOMBSTONE_HORIZON_MS`]. Other nodes' sessions are
    /// never aged here.
    ///
    /// Locks: as the store's sweep; then, per session aged, its stripe and shard; then each
    /// stripe in turn. Cost: the store's, plus O(sessions aged + tombstones due).
    pub fn sweep(&self) -> usize {
        let mut aged = Vec::new();
        let transitions = self
            .store
            .sweep_reporting(&mut |user, id, _| aged.push((user.clone(), id)));
        for (user, id) in aged {
            let stripe = self.stripe(&user).lock();
            let truth = match self.store.session_active(&user, id) {
                None => SessionState::Ended,
                Some(true) => SessionState::Active,
                Some(false) => SessionState::Idle,
            };
            let held = stripe.users.get(&user).and_then(|u| {
                u.sessions
                    .iter()
                    .find(|s| s.id == id && s.stamp.node == self.node)
                    .map(|s| s.state)
            });
            if held.is_some_and(|s| s != truth) {
                drop(stripe);
                self.local(
                    &user,
                    Op::Session {
                        user: user.clone(),
                        session: id,
                        state: truth,
                    },
                )
                .ok();
            }
        }
        let horizon = self.store.now_ms().saturating_sub(TOMBSTONE_HORIZON_MS);
        for stripe in self.stripes.iter() {
            let mut stripe = stripe.lock();
            let stripe = &mut *stripe;
            while let Some((stamp, ..)) = stripe.tombstones.front() {
                if stamp.millis() > horizon {
                    break;
                }
                let Some((stamp, user, node, id)) = stripe.tombstones.pop_front() else {
                    break;
                };
                if let Some(u) = stripe.users.get_mut(&user) {
                    u.sessions.retain(|s| {
                        !(s.id == id && s.stamp.node == node && s.stamp.time == stamp)
                            || s.state != SessionState::Ended
                    });
                }
            }
        }
        transitions
    }

    /// Takes the events of the local writes made since the last call, to publish. Events this
    /// replica applied from other nodes are never among them.
    ///
    /// Locks: each stripe in turn. Cost: O(stripes + events).
    pub fn take_outbox(&self) -> Vec<Event<K>> {
        let mut out = std::mem::take(&mut self.org.write().outbox);
        for stripe in self.stripes.iter() {
            out.append(&mut stripe.lock().outbox);
        }
        out
    }

    /// How many events of local writes wait in the outbox.
    ///
    /// Locks: each stripe in turn. Cost: O(stripes).
    pub fn pending(&self) -> usize {
        let org = self.org.read().outbox.len();
        org + self
            .stripes
            .iter()
            .map(|s| s.lock().outbox.len())
            .sum::<usize>()
    }

    /// Applies other nodes' events, in any order, any number of times; returns how many changed
    /// the replicated state. Events of this node's own sessions are ignored (this node is their
    /// authority), as are session events of a node declared down.
    ///
    /// Locks: the down-set for reading; per event, its user's stripe and shard.
    pub fn apply<'a>(&self, events: impl IntoIterator<Item = &'a Event<K>>) -> usize {
        let down = self.down.read();
        let mut changed = 0;
        for event in events {
            let Some(user) = event.op.user() else {
                let mut org = self.org.write();
                let before = org.applied;
                let revived = self.apply_org(&mut org, event, true);
                changed += usize::from(org.applied != before);
                drop(org);
                if let Some(source) = revived {
                    self.rewrite_source(&source);
                }
                continue;
            };
            let ignore_sessions = event.origin == self.node || down.contains(&event.origin);
            let mut stripe = self.stripe(user).lock();
            if self.apply_locked(&mut stripe, user, event, ignore_sessions) {
                changed += 1;
            }
        }
        changed
    }

    /// Applies one organization event under the organization lock, writing it to the store
    /// if `write` (a local write is already there). Returns the source it brought back from
    /// deletion, if it did: the users' presences from it count again.
    fn apply_org(&self, org: &mut Org<K>, event: &Event<K>, write: bool) -> Option<SourceId> {
        org.clock = org.clock.max(event.stamp);
        let stamp = Stamp {
            time: event.stamp,
            node: event.origin.clone(),
        };
        let mut revived = None;
        match &event.op {
            Op::Definition { id, definition } => {
                let value = definition.as_ref().map(|d| Definition {
                    id: id.clone(),
                    system: false,
                    ..d.clone()
                });
                if !put_newer(&mut org.definitions, id, &stamp, &value) {
                    return None;
                }
                match value {
                    Some(def) if write => self.store.put_definition(def),
                    None if write => self.store.forget_definition(id),
                    _ => {}
                }
                if definition.is_none() {
                    org.bury(&stamp, OrgItem::Definition(id.clone()));
                }
            }
            Op::Source { id, source } => {
                let value = source.as_ref().map(|s| Source {
                    id: id.clone(),
                    ..s.clone()
                });
                let was_deleted = org.deleted(id);
                if !put_newer(&mut org.sources, id, &stamp, &value) {
                    return None;
                }
                match value {
                    Some(source) if write => {
                        self.store.put_source(source);
                        if was_deleted {
                            revived = Some(id.clone());
                        }
                    }
                    None if write => self.store.forget_source(id),
                    _ => {}
                }
                if source.is_none() {
                    org.bury(&stamp, OrgItem::Source(id.clone()));
                }
            }
            Op::Setting { key, value } => {
                if !put_newer(&mut org.settings, key, &stamp, value) {
                    return None;
                }
            }
            _ => return None,
        }
        if write {
            org.applied += 1;
        }
        revived
    }

    /// Writes every user's presence from `source` and primary `source` again: it was deleted
    /// and a newer write brought it back.
    ///
    /// Locks: each stripe in turn, with the shards of the users touched. Cost: O(users
    /// replicated), once per source brought back.
    fn rewrite_source(&self, source: &SourceId) {
        for stripe in self.stripes.iter() {
            let stripe = stripe.lock();
            for (user, u) in stripe.users.iter() {
                if u.sources.iter().any(|r| r.value.source == *source) {
                    self.write_source(user, u, source);
                }
                if u.primary
                    .as_ref()
                    .is_some_and(|p| p.value.as_ref() == Some(source))
                {
                    self.write_extras(user, u);
                }
            }
        }
    }

    /// Applies one event of `user`'s under its stripe's lock; `true` if a register changed.
    fn apply_locked(
        &self,
        stripe: &mut Stripe<K>,
        user: &K,
        event: &Event<K>,
        ignore_sessions: bool,
    ) -> bool {
        stripe.clock = stripe.clock.max(event.stamp);
        let stamp = Stamp {
            time: event.stamp,
            node: event.origin.clone(),
        };
        if !stripe.users.contains_key(user) {
            stripe.users.insert(user.clone(), UserState::default());
        }
        let Some(u) = stripe.users.get_mut(user) else {
            return false;
        };
        if u.removed.as_ref().is_some_and(|r| stamp < *r) {
            if let Op::Session { .. } | Op::SessionsSeen { .. } = event.op {
                self.note_session_stamp(user, u, &stamp);
            }
            return false;
        }
        match &event.op {
            Op::Set {
                category,
                mode,
                definition,
                ..
            } => {
                let request = Request {
                    category: *category,
                    mode: *mode,
                    definition: definition.clone(),
                };
                let changed = newer(&u.request, &stamp);
                if changed {
                    u.request = Some(Reg {
                        stamp,
                        value: request,
                    });
                    self.write_request(user, u);
                }
                changed
            }
            Op::Message { message, .. } => {
                let changed = newer(&u.message, &stamp);
                if changed {
                    u.message = Some(Reg {
                        stamp,
                        value: message.clone(),
                    });
                    self.write_extras(user, u);
                }
                changed
            }
            Op::Primary { source, .. } => {
                let changed = newer(&u.primary, &stamp);
                if changed {
                    u.primary = Some(Reg {
                        stamp,
                        value: source.clone(),
                    });
                    self.write_extras(user, u);
                }
                changed
            }
            Op::SourcePresence {
                source,
                definition,
                category,
                message,
                ..
            } if source.is_default() => {
                let set = newer(&u.request, &stamp);
                if set {
                    u.request = Some(Reg {
                        stamp: stamp.clone(),
                        value: Request {
                            category: *category,
                            mode: SetMode::Hard,
                            definition: Some(definition.clone()),
                        },
                    });
                    self.write_request(user, u);
                }
                let said = newer(&u.message, &stamp);
                if said {
                    u.message = Some(Reg {
                        stamp,
                        value: message.clone(),
                    });
                }
                if set || said {
                    self.write_extras(user, u);
                }
                set || said
            }
            Op::SourcePresence {
                source,
                definition,
                category,
                message,
                ..
            } => {
                let value = SourceSet {
                    source: source.clone(),
                    definition: definition.clone(),
                    category: *category,
                    message: message.clone(),
                };
                match u.sources.iter_mut().find(|r| r.value.source == *source) {
                    Some(r) if r.stamp >= stamp => return false,
                    Some(r) => *r = Reg { stamp, value },
                    None => u.sources.push(Reg { stamp, value }),
                }
                self.write_source(user, u, source);
                true
            }
            Op::Session { session, state, .. } => {
                self.note_session_stamp(user, u, &stamp);
                if ignore_sessions {
                    return false;
                }
                let found = u
                    .sessions
                    .iter_mut()
                    .find(|s| s.id == *session && s.stamp.node == stamp.node);
                match found {
                    Some(s) if s.stamp >= stamp => return false,
                    Some(s) => {
                        s.stamp = stamp.clone();
                        s.state = *state;
                    }
                    None => u.sessions.push(SessionReg {
                        stamp: stamp.clone(),
                        id: *session,
                        state: *state,
                    }),
                }
                if *state == SessionState::Ended {
                    if stamp.node == self.node {
                        u.sessions
                            .retain(|s| !(s.id == *session && s.stamp.node == self.node));
                    } else {
                        stripe.tombstones.push_back((
                            stamp.time,
                            user.clone(),
                            stamp.node.clone(),
                            *session,
                        ));
                    }
                }
                self.write_session(user, &stamp.node, *session, *state);
                self.write_request(user, u);
                true
            }
            Op::SessionsSeen { .. } => {
                let newer = u.session_stamp.as_ref() < Some(&stamp);
                self.note_session_stamp(user, u, &stamp);
                newer
            }
            Op::Remove { .. } => {
                if u.removed.as_ref().is_some_and(|r| *r >= stamp) {
                    return false;
                }
                forget_older(u, &stamp);
                u.removed = Some(stamp);
                self.store.remove(user);
                self.write_all(user, u);
                true
            }
            Op::Definition { .. } | Op::Source { .. } | Op::Setting { .. } => false,
        }
    }

    /// Records a session event's stamp for the hard-set rule, ending a hard set it follows.
    fn note_session_stamp(&self, user: &K, u: &mut UserState, stamp: &Stamp) {
        if u.session_stamp.as_ref() < Some(stamp) {
            u.session_stamp = Some(stamp.clone());
            self.write_request(user, u);
        }
    }

    /// Writes the request register to the store, with the mode the hard-set rule gives. A write
    /// that changes nothing is not logged by the store.
    fn write_request(&self, user: &K, u: &UserState) {
        if let Some(r) = &u.request {
            let mode = u.request_mode(r);
            let v = &r.value;
            self.store
                .set_as(user, v.category, mode, v.definition.clone())
                .ok();
        }
    }

    /// Writes the message and primary source, adding the user to the store if it does not
    /// know it yet (as any replicated state does, whatever order it arrived in).
    fn write_extras(&self, user: &K, u: &UserState) {
        if u.message.is_none() && u.primary.is_none() {
            return;
        }
        if self.store.get(user).is_none() {
            self.store.remote_heartbeat(user, 0, Activity::Offline).ok();
        }
        if let Some(m) = &u.message {
            self.store.set_message_as(user, m.value.clone()).ok();
        }
        if let Some(p) = &u.primary {
            let deleted = p.value.as_ref().is_some_and(|s| self.org.read().deleted(s));
            let primary = if deleted { None } else { p.value.clone() };
            self.store.set_primary_as(user, primary).ok();
        }
    }

    /// Writes the user's presence from `source`, unless `source` is deleted.
    fn write_source(&self, user: &K, u: &UserState, source: &SourceId) {
        if self.org.read().deleted(source) {
            return;
        }
        if let Some(r) = u.sources.iter().find(|r| r.value.source == *source) {
            let v = &r.value;
            let set = SourcePresence {
                source: v.source.clone(),
                definition: v.definition.clone(),
                category: v.category,
                message: v.message.clone(),
                updated_at: 0,
            };
            self.store.set_source_presence_as(user, set).ok();
        }
    }

    /// Writes one session's state (adding the user if unknown, even for an ended session, so
    /// that whether the store knows the user does not depend on the order of arrival): this
    /// node's sessions as the store's own, others pinned under an id mixed from their origin's.
    fn write_session(&self, user: &K, node: &NodeId, session: u64, state: SessionState) {
        let activity = state.activity();
        if *node == self.node {
            self.store.heartbeat(user, session, activity).ok();
        } else {
            self.store
                .remote_heartbeat(user, remote_id(node, session), activity)
                .ok();
        }
    }

    /// Writes every register and live session of a user the store forgot.
    fn write_all(&self, user: &K, u: &UserState) {
        self.write_request(user, u);
        let sources: Vec<SourceId> = u.sources.iter().map(|r| r.value.source.clone()).collect();
        for source in &sources {
            self.write_source(user, u, source);
        }
        for s in &u.sessions {
            if s.state != SessionState::Ended {
                self.write_session(user, &s.stamp.node, s.id, s.state);
            }
        }
        self.write_request(user, u);
        self.write_extras(user, u);
    }

    /// Declares a node down: drops all of its sessions (each visible change logged) and ignores
    /// its session events until [`node_up`](Self::node_up). Returns how many sessions it
    /// dropped. Declaring this node down does nothing.
    ///
    /// Locks: the down-set for writing, then each stripe in turn with the shards of the users
    /// touched. Cost: O(users replicated), once per node lost.
    pub fn node_down(&self, node: &NodeId) -> usize {
        if *node == self.node {
            return 0;
        }
        let mut down = self.down.write();
        down.insert(node.clone());
        let mut dropped = 0;
        for stripe in self.stripes.iter() {
            let mut stripe = stripe.lock();
            for (user, u) in stripe.users.iter_mut() {
                let before = u.sessions.len();
                let mut ended = Vec::new();
                u.sessions.retain(|s| {
                    let theirs = s.stamp.node == *node;
                    if theirs && s.state != SessionState::Ended {
                        ended.push(s.id);
                    }
                    !theirs
                });
                if before == u.sessions.len() {
                    continue;
                }
                for id in &ended {
                    self.write_session(user, node, *id, SessionState::Ended);
                }
                dropped += ended.len();
                self.write_request(user, u);
            }
        }
        dropped
    }

    /// Declares a node up again: its session events apply again (it republishes what it owns
    /// when it comes back).
    pub fn node_up(&self, node: &NodeId) {
        self.down.write().remove(node);
    }

    /// Whether a node is declared down.
    pub fn is_down(&self, node: &NodeId) -> bool {
        self.down.read().contains(node)
    }

    /// Every node that originated a live session or a register held here, this one aside.
    ///
    /// Locks: each stripe in turn. Cost: O(users replicated).
    pub fn origins(&self) -> HashSet<NodeId> {
        let mut out = HashSet::new();
        for stripe in self.stripes.iter() {
            let stripe = stripe.lock();
            for u in stripe.users.values() {
                for s in &u.sessions {
                    if s.state != SessionState::Ended {
                        out.insert(s.stamp.node.clone());
                    }
                }
            }
        }
        out.remove(&self.node);
        out
    }

    /// What this node republishes when others may have lost it (it was declared down, or the
    /// broker lost its stream): every register held (with its original origin and stamp, so
    /// republishing changes nothing where it is known), every removal, and this node's live
    /// sessions. With `all_sessions`, the live sessions of every node not down too: a snapshot
    /// a joining node can start from.
    ///
    /// Locks: each stripe in turn. Cost: O(users replicated).
    pub fn state_events(&self, all_sessions: bool) -> Vec<Event<K>> {
        let down = self.down.read();
        let mut out = self.org_events();
        for stripe in self.stripes.iter() {
            let stripe = stripe.lock();
            for (user, u) in stripe.users.iter() {
                user_events(user, u, &mut out, |node| {
                    *node == self.node || (all_sessions && !down.contains(node))
                });
            }
        }
        out
    }

    /// This node's live sessions, as events with their original stamps: what the others drop
    /// when they declare this node down, and take back when it republishes them.
    ///
    /// Locks: each stripe in turn. Cost: O(users replicated).
    pub fn own_sessions(&self) -> Vec<Event<K>> {
        let mut out = Vec::new();
        for stripe in self.stripes.iter() {
            let stripe = stripe.lock();
            for (user, u) in stripe.users.iter() {
                for s in &u.sessions {
                    if s.state != SessionState::Ended && s.stamp.node == self.node {
                        out.push(Event {
                            origin: self.node.clone(),
                            stamp: s.stamp.time,
                            op: Op::Session {
                                user: user.clone(),
                                session: s.id,
                                state: s.state,
                            },
                        });
                    }
                }
            }
        }
        out
    }

    /// Every organization register held, as events with their original origins and stamps.
    fn org_events(&self) -> Vec<Event<K>> {
        let org = self.org.read();
        let event = |stamp: &Stamp, op| Event {
            origin: stamp.node.clone(),
            stamp: stamp.time,
            op,
        };
        let definitions = org.definitions.iter().map(|(id, r)| {
            let op = Op::Definition {
                id: id.clone(),
                definition: r.value.clone(),
            };
            event(&r.stamp, op)
        });
        let sources = org.sources.iter().map(|(id, r)| {
            let op = Op::Source {
                id: id.clone(),
                source: r.value.clone(),
            };
            event(&r.stamp, op)
        });
        let settings = org.settings.iter().map(|(key, r)| {
            let op = Op::Setting {
                key: key.clone(),
                value: r.value.clone(),
            };
            event(&r.stamp, op)
        });
        definitions.chain(sources).chain(settings).collect()
    }

    /// How many users the replica holds state for (known to the store or not).
    pub fn users(&self) -> usize {
        self.stripes.iter().map(|s| s.lock().users.len()).sum()
    }
}

/// The event of a definition as it now is.
fn definition_op<K>(def: &Definition) -> Op<K> {
    Op::Definition {
        id: def.id.clone(),
        definition: Some(def.clone()),
    }
}

/// The event of a source as it now is.
fn source_op<K>(source: &Source) -> Op<K> {
    Op::Source {
        id: source.id.clone(),
        source: Some(source.clone()),
    }
}

/// Whether a write at `stamp` beats the register's.
fn newer<V>(reg: &Option<Reg<V>>, stamp: &Stamp) -> bool {
    reg.as_ref().is_none_or(|r| r.stamp < *stamp)
}

/// Drops what a removal at `stamp` overrides.
fn forget_older(u: &mut UserState, stamp: &Stamp) {
    if u.request.as_ref().is_some_and(|r| r.stamp < *stamp) {
        u.request = None;
    }
    if u.message.as_ref().is_some_and(|r| r.stamp < *stamp) {
        u.message = None;
    }
    if u.primary.as_ref().is_some_and(|r| r.stamp < *stamp) {
        u.primary = None;
    }
    u.sources.retain(|r| r.stamp > *stamp);
    u.sessions.retain(|s| s.stamp > *stamp);
}

/// The events that rebuild one user's registers, and the live sessions of the nodes `sessions`
/// accepts.
fn user_events<K: Key>(
    user: &K,
    u: &UserState,
    out: &mut Vec<Event<K>>,
    sessions: impl Fn(&NodeId) -> bool,
) {
    let event = |stamp: &Stamp, op| Event {
        origin: stamp.node.clone(),
        stamp: stamp.time,
        op,
    };
    if let Some(r) = &u.removed {
        out.push(event(r, Op::Remove { user: user.clone() }));
    }
    if let Some(s) = &u.session_stamp {
        out.push(event(s, Op::SessionsSeen { user: user.clone() }));
    }
    if let Some(r) = &u.request {
        out.push(event(
            &r.stamp,
            Op::Set {
                user: user.clone(),
                category: r.value.category,
                mode: r.value.mode,
                definition: r.value.definition.clone(),
            },
        ));
    }
    if let Some(r) = &u.message {
        out.push(event(
            &r.stamp,
            Op::Message {
                user: user.clone(),
                message: r.value.clone(),
            },
        ));
    }
    if let Some(r) = &u.primary {
        out.push(event(
            &r.stamp,
            Op::Primary {
                user: user.clone(),
                source: r.value.clone(),
            },
        ));
    }
    for r in &u.sources {
        out.push(event(
            &r.stamp,
            Op::SourcePresence {
                user: user.clone(),
                source: r.value.source.clone(),
                definition: r.value.definition.clone(),
                category: r.value.category,
                message: r.value.message.clone(),
            },
        ));
    }
    for s in &u.sessions {
        if s.state != SessionState::Ended && sessions(&s.stamp.node) {
            out.push(event(
                &s.stamp,
                Op::Session {
                    user: user.clone(),
                    session: s.id,
                    state: s.state,
                },
            ));
        }
    }
}

/// The id under which another node's session sits in the store: its origin and id mixed, so
/// two nodes' sessions of one user never share an id (short of a 64-bit hash collision).
fn remote_id(node: &NodeId, session: u64) -> u64 {
    let mut h =
        RandomState::with_seeds(0x7072_6573, 0x656e_6365, 0x636c_7573, 0x7465_7221).build_hasher();
    node.hash(&mut h);
    session.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the replica adds per user, beside the store's own record (BENCHMARKS.md).
    #[test]
    fn a_user_state_is_a_few_hundred_bytes_at_most() {
        let size = std::mem::size_of::<UserState>();
        println!("UserState: {size} bytes");
        assert!(size <= 256, "{size}");
    }
}
