//! [`PresenceStore`]: the public API. It hashes each key to one shard and takes that shard's lock;
//! reads that span users (pages, deltas, cursors) visit the shards in index order.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ahash::RandomState;
use crossbeam_utils::CachePadded;

use crate::config::ms;
use crate::definition::Definitions;
use crate::feed::{Feed, Feeds, FullPages};
use crate::page::Merge;
use crate::session::{Aging, Timeouts};
use crate::shard::SourcePresence;
use crate::shard::{Limits, Shard};
use crate::source::Sources;
use crate::sync::{RwLock, RwLockReadGuard};
#[cfg(feature = "serde")]
use crate::Snapshot;
use crate::{
    Activity, Category, Clock, Cursor, Definition, DefinitionId, DefinitionUpdate, Delta, Error,
    FeedId, FeedRead, FullReason, Page, PageQuery, Presence, SetMode, Since, Source, SourceId,
    SourceUpdate, StoreConfig, SubscribeOptions, SubscriberStats, Subscription, SystemClock,
    SystemPresence,
};

/// What a store's key can be: `u64`, `i64`, `String`, or any ordered, hashable, shareable value.
pub trait Key:
    Clone + Eq + Ord + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static
{
}

impl<T: Clone + Eq + Ord + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static> Key for T {}

/// A lock-striped presence store with a per-shard change log.
///
/// Share it across threads with an `Arc`; every method takes `&self`. Writers on different
/// shards never touch a shared cache line. Each method's docs say which locks it takes and what
/// it costs; no method holds a lock while calling back into the caller, so none can deadlock.
pub struct PresenceStore<K> {
    shards: Box<[CachePadded<RwLock<Shard<K>>>]>,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    config: StoreConfig,
    limits: Limits,
    /// This instance's identity, written into its cursors.
    id: u64,
    feeds: Feeds<K>,
    definitions: Definitions,
    sources: Sources,
}

impl<K> std::fmt::Debug for PresenceStore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceStore")
            .field("shards", &self.shards.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K: Key> PresenceStore<K> {
    /// A store on the system clock.
    ///
    /// # Panics
    /// If `config` fails [`StoreConfig::validate`]; use [`PresenceStore::try_new`] for a config
    /// read at run time.
    pub fn new(config: StoreConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A store on the given clock (a [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// # Panics
    /// If `config` fails [`StoreConfig::validate`]; see [`PresenceStore::try_with_clock`].
    pub fn with_clock(config: StoreConfig, clock: Arc<dyn Clock>) -> Self {
        match Self::try_with_clock(config, clock) {
            Ok(store) => store,
            Err(e) => panic!("{e}"),
        }
    }

    /// A store on the system clock, or [`Error::InvalidConfig`].
    pub fn try_new(config: StoreConfig) -> Result<Self, Error> {
        Self::try_with_clock(config, Arc::new(SystemClock))
    }

    /// A store on the given clock, or [`Error::InvalidConfig`].
    pub fn try_with_clock(config: StoreConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        config.validate()?;
        let id = new_store_id();
        let hasher = new_hasher();
        let shards = (0..config.shard_count())
            .map(|i| CachePadded::new(RwLock::new(Shard::new(hasher.clone(), i))))
            .collect();
        let limits = Limits {
            timeouts: Timeouts {
                idle_after: ms(config.idle_after),
                ttl: ms(config.session_ttl),
            },
            window: ms(config.delta_window),
            log_capacity: config.log_capacity,
            max_sessions: config.max_sessions_per_user,
        };
        Ok(PresenceStore {
            shards,
            hasher,
            clock,
            config,
            limits,
            id,
            feeds: Feeds::default(),
            definitions: Definitions::new(id),
            sources: Sources::new(id),
        })
    }

    /// The configuration the store runs with (with `shards` as given, 0 for automatic).
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The number of shards (lock stripes).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Sets a user's presence, adding the user if unknown.
    ///
    /// `Soft` stores the request and shows `resolve(category, activity)`; `Hard` shows `category`
    /// until the user's activity next changes. A set that changes nothing visible is not logged.
    ///
    /// Locks: the user's shard, for writing. Cost: O(1); allocates only to add a user, which
    /// is O(1) amortized (one add in many compacts the shard: see the crate docs).
    pub fn set(&self, user: &K, category: Category, mode: SetMode) -> Result<Presence, Error> {
        let (hash, shard) = self.route(user);
        shard
            .write()
            .set(hash, user, category, mode, None, &*self.clock, &self.limits)
    }

    /// Records a heartbeat from one of the user's sessions, adding the user and the session if
    /// unknown. `Active` marks user activity, `Idle` keeps the session alive without it, and
    /// `Offline` ends the session (as [`disconnect`](Self::disconnect)).
    ///
    /// A heartbeat that leaves the user's activity as it was changes nothing visible: it is not
    /// logged, and it allocates nothing. A user has at most `max_sessions_per_user` sessions: a
    /// heartbeat of one more is [`Error::TooManySessions`] and changes nothing.
    ///
    /// Locks: the user's shard, for writing. Cost: O(1); the user's sessions are found by id.
    pub fn heartbeat(&self, user: &K, session: u64, activity: Activity) -> Result<Presence, Error> {
        let (hash, shard) = self.route(user);
        shard.write().heartbeat(
            hash,
            user,
            session,
            activity,
            false,
            &*self.clock,
            &self.limits,
        )
    }

    /// Ends one session of a known user. A session the user does not have changes nothing (a
    /// disconnect may arrive twice); an unknown user is [`Error::UnknownUser`].
    ///
    /// Locks: the user's shard, for writing. Cost: O(1).
    pub fn disconnect(&self, user: &K, session: u64) -> Result<Presence, Error> {
        let (hash, shard) = self.route(user);
        shard
            .write()
            .disconnect(hash, user, session, &*self.clock, &self.limits)
    }

    /// Heartbeats of many sessions at once, each applied as [`heartbeat`](Self::heartbeat)
    /// would apply it (adding users and sessions it does not know), in order within each user:
    /// the path for a restart or a mass reconnect. Users it adds are sorted into their shard's
    /// run once, at the end, instead of one by one, which makes adding many users several
    /// times cheaper (see BENCHMARKS.md). Returns how many users it added. A beat refused
    /// ([`Error::TooManySessions`], [`Error::CapacityExceeded`]) is skipped and the others
    /// apply; the first refusal is then returned.
    ///
    /// ```
    /// use presence_store::{Activity, PresenceStore, StoreConfig};
    ///
    /// let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
    /// let added = store.heartbeat_many((0..10_000).map(|u| (u, 1, Activity::Active)))?;
    /// assert_eq!((added, store.len()), (10_000, 10_000));
    /// # Ok::<(), presence_store::Error>(())
    /// ```
    ///
    /// Locks: each shard in turn, for writing, for the whole of its beats. Cost: O(beats +
    /// shard records + log entries) plus sorting the added users; allocates the beats grouped
    /// by shard.
    pub fn heartbeat_many(
        &self,
        beats: impl IntoIterator<Item = (K, u64, Activity)>,
    ) -> Result<usize, Error> {
        let mut by_shard: Vec<Vec<(u64, K, u64, Activity)>> =
            (0..self.shards.len()).map(|_| Vec::new()).collect();
        for (user, session, activity) in beats {
            let (hash, index) = self.locate(&user);
            by_shard[index].push((hash, user, session, activity));
        }
        let mut added = 0;
        let mut refused = None;
        for (shard, beats) in self.shards.iter().zip(by_shard) {
            if beats.is_empty() {
                continue;
            }
            let (n, error) = shard
                .write()
                .heartbeat_many(beats, &*self.clock, &self.limits);
            added += n;
            if let Some(e) = error {
                refused.get_or_insert(e);
            }
        }
        refused.map_or(Ok(added), Err)
    }

    /// Forgets a user and its sessions; returns the presence it had, or `None` if unknown.
    /// The removal is logged: deltas report the user with category `Offline`.
    ///
    /// Locks: the user's shard, for writing. Cost: O(log users added to the shard since it
    /// last compacted).
    pub fn remove(&self, user: &K) -> Option<Presence> {
        let (hash, shard) = self.route(user);
        shard.write().remove(hash, user, &*self.clock, &self.limits)
    }

    /// Idles the sessions whose last active heartbeat is `idle_after` old and removes those
    /// silent for `session_ttl`, logging every visible change, prunes old log entries, drops
    /// feeds unread for `feed_expiry` and forgets dropped subscriptions.
    /// Returns how many sessions it idled or removed. Call it every second or so (from a timer
    /// or a thread of your own); the store starts no thread.
    ///
    /// Locks: each shard in turn, for writing; then the feed registry. Cost: O(shards + sessions
    /// due + feeds), plus the compaction of a shard whose removed users are due for it.
    pub fn sweep(&self) -> usize {
        self.sweep_reporting(&mut |_, _, _| {})
    }

    /// [`sweep`](Self::sweep), telling `report` of every session it idled or expired (the
    /// replica publishes them), each under its shard's lock: `report` must not call the store.
    pub(crate) fn sweep_reporting(&self, report: &mut dyn FnMut(&K, u64, Aging)) -> usize {
        let transitions = self
            .shards
            .iter()
            .map(|shard| {
                let mut shard = shard.write();
                shard.drop_closed_subscribers();
                let now = shard.tick(&*self.clock);
                shard.sweep(now, &self.limits, report)
            })
            .sum();
        self.feeds.expire(
            self.clock.now_ms(),
            ms(self.config.feed_expiry).max(self.limits.window),
        );
        transitions
    }

    /// Sets or clears a known user's status message (Genesys `message`); an empty message
    /// clears it. Longer than `max_message_len` bytes is [`Error::MessageTooLong`], an unknown
    /// user [`Error::UnknownUser`]. A change of message is a visible change, logged.
    ///
    /// Locks: the user's shard, for writing. Cost: O(1); allocates the message.
    pub fn set_message(&self, user: &K, message: &str) -> Result<Presence, Error> {
        let message = self.message(message)?;
        self.set_message_as(user, message)
    }

    /// The message as stored: `None` for an empty one, [`Error::MessageTooLong`] past the limit.
    fn message(&self, message: &str) -> Result<Option<Arc<str>>, Error> {
        let max = self.config.max_message_len;
        if message.len() > max {
            return Err(Error::MessageTooLong {
                len: message.len(),
                max,
            });
        }
        Ok((!message.is_empty()).then(|| Arc::from(message)))
    }

    /// Sets a user's presence by an organization or system presence definition (Genesys),
    /// adding the user if unknown. The category is the definition's system presence's, and the
    /// presence keeps the definition's id. An unknown or deactivated definition is an error.
    ///
    /// Locks: the definition registry for reading, then the user's shard for writing.
    pub fn set_definition(
        &self,
        user: &K,
        definition: &DefinitionId,
        mode: SetMode,
    ) -> Result<Presence, Error> {
        let (id, category) = self.definitions.resolve_for_set(definition)?;
        self.set_as(user, category, mode, Some(id))
    }

    /// Every presence definition, the ten system presences and the organization's, by id;
    /// deactivated ones too, each saying so in [`Definition::deactivated`].
    ///
    /// ```
    /// use presence_store::{PresenceStore, StoreConfig};
    ///
    /// let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
    /// let active: Vec<_> = store.definitions().into_iter().filter(|d| !d.deactivated).collect();
    /// assert_eq!(active.len(), 10);
    /// ```
    ///
    /// Locks: the definition registry, for reading. Cost: O(definitions).
    pub fn definitions(&self) -> Vec<Definition> {
        self.definitions.list(true)
    }

    /// One presence definition, or [`Error::UnknownDefinition`].
    pub fn definition(&self, id: &DefinitionId) -> Result<Definition, Error> {
        self.definitions.get(id)
    }

    /// Creates an organization presence definition over a system presence, with labels by
    /// locale (e.g. `"en_US" -> "Lunch"`).
    pub fn create_definition(
        &self,
        system_presence: SystemPresence,
        labels: BTreeMap<String, String>,
    ) -> Result<Definition, Error> {
        self.definitions.create(system_presence, labels)
    }

    /// Changes the fields `update` gives of an organization definition, such as deactivating
    /// it; system ones cannot change ([`Error::SystemDefinition`]). Users already set by it
    /// keep the category they were set to.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use presence_store::{DefinitionUpdate, Error, PresenceStore, SetMode, StoreConfig};
    /// use presence_store::SystemPresence;
    ///
    /// let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
    /// let labels = BTreeMap::from([("en_US".to_owned(), "Lunch".to_owned())]);
    /// let lunch = store.create_definition(SystemPresence::Meal, labels)?;
    /// let retire = DefinitionUpdate { deactivated: Some(true), ..Default::default() };
    /// store.update_definition(&lunch.id, retire)?;
    /// assert!(matches!(
    ///     store.set_definition(&7, &lunch.id, SetMode::Hard),
    ///     Err(Error::DeactivatedDefinition { .. })
    /// ));
    /// // The ten system presences have ids that need no parsing.
    /// store.set_definition(&7, &SystemPresence::Busy.id(), SetMode::Hard)?;
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// Locks: the definition registry, for writing. Cost: O(labels).
    pub fn update_definition(
        &self,
        id: &DefinitionId,
        update: DefinitionUpdate,
    ) -> Result<Definition, Error> {
        self.definitions.update(id, update)
    }

    /// Deletes an organization definition; system ones cannot go. Users set by it keep their
    /// presence and its id.
    pub fn delete_definition(&self, id: &DefinitionId) -> Result<(), Error> {
        self.definitions.delete(id)
    }

    /// The presence sources, the built-in `PURECLOUD` first.
    pub fn sources(&self) -> Vec<Source> {
        self.sources.list()
    }

    /// One presence source, or [`Error::UnknownSource`].
    pub fn source(&self, id: &SourceId) -> Result<Source, Error> {
        self.sources.get(id)
    }

    /// Registers a presence source (an integration that sets presences), active, with a
    /// generated id. Deactivate it with [`update_source`](Self::update_source).
    ///
    /// ```
    /// use presence_store::{PresenceStore, SourceId, StoreConfig, SystemPresence};
    ///
    /// let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
    /// let calendar = store.create_source("Calendar")?;
    /// store.set_source_presence(&7, &calendar.id, &SystemPresence::Meeting.id(), None)?;
    /// store.set_primary_source(&7, &calendar.id)?;
    /// assert_eq!(store.get(&7).unwrap().details.source(), Some(&calendar.id));
    /// assert_eq!(store.sources()[0].id, SourceId::DEFAULT);
    /// # Ok::<(), presence_store::Error>(())
    /// ```
    ///
    /// Locks: the source registry, for writing. Cost: O(log sources).
    pub fn create_source(&self, name: &str) -> Result<Source, Error> {
        self.sources.create(name)
    }

    /// Changes the fields `update` gives of a source: renames, deactivates or reactivates it.
    /// The default source cannot be deactivated ([`Error::DefaultSource`]).
    ///
    /// ```
    /// use presence_store::{PresenceStore, SourceId, SourceUpdate, StoreConfig};
    ///
    /// let store: PresenceStore<u64> = PresenceStore::new(StoreConfig::default());
    /// let pbx = store.create_source("Old PBX")?;
    /// let retire = SourceUpdate { deactivated: Some(true), ..Default::default() };
    /// assert!(store.update_source(&pbx.id, retire.clone())?.deactivated);
    /// assert!(store.update_source(&SourceId::DEFAULT, retire).is_err());
    /// # Ok::<(), presence_store::Error>(())
    /// ```
    ///
    /// Locks: the source registry, for writing. Cost: O(log sources).
    pub fn update_source(&self, id: &SourceId, update: SourceUpdate) -> Result<Source, Error> {
        self.sources.update(id, update)
    }

    /// Deletes a source: its presences go and its users' primary source becomes the default,
    /// each visible change logged. The default source cannot be deleted.
    ///
    /// Locks: the source registry, then each shard in turn for writing. Cost: O(users with
    /// presences from other sources).
    pub fn delete_source(&self, id: &SourceId) -> Result<(), Error> {
        let id = self.sources.delete(id)?;
        for shard in self.shards.iter() {
            shard.write().drop_source(&id, &*self.clock, &self.limits);
        }
        Ok(())
    }

    /// Sets a user's presence as `source` sees it, by definition, with an optional message;
    /// adds the user if unknown. For the default source this is a hard
    /// [`set_definition`](Self::set_definition) and the message, as one change. Others see it
    /// only while `source` is the user's primary source. Returns the user's presence from
    /// `source`.
    ///
    /// Locks: the source registry for reading (so the source cannot be deleted meanwhile), the
    /// definition registry for reading, then the user's shard for writing.
    pub fn set_source_presence(
        &self,
        user: &K,
        source: &SourceId,
        definition: &DefinitionId,
        message: Option<&str>,
    ) -> Result<Presence, Error> {
        self.sources.hold(source, true, |source| {
            let (definition, category) = self.definitions.resolve_for_set(definition)?;
            let message = self.message(message.unwrap_or_default())?;
            let set = SourcePresence {
                source,
                definition,
                category,
                message,
                updated_at: 0,
            };
            self.set_source_presence_as(user, set)
        })
    }

    /// A user's presence as `source` sets it; `None` for an unknown user, or a source other
    /// than the default that has set none for the user.
    pub fn source_presence(&self, user: &K, source: &SourceId) -> Option<Presence> {
        let (hash, shard) = self.route(user);
        let shard = shard.read();
        shard
            .get(hash, user)
            .and_then(|slot| shard.source_presence(slot, source))
    }

    /// A known user's primary source: the one whose presence others see.
    pub fn primary_source(&self, user: &K) -> Option<SourceId> {
        let (hash, shard) = self.route(user);
        let shard = shard.read();
        let slot = shard.get(hash, user)?;
        Some(shard.primary_source(slot).unwrap_or(SourceId::DEFAULT))
    }

    /// Makes `source` a known user's primary source, so others see its presence of the user
    /// (while it has set none, they see the default's).
    pub fn set_primary_source(&self, user: &K, source: &SourceId) -> Result<Presence, Error> {
        self.sources.hold(source, false, |source| {
            let primary = (!source.is_default()).then_some(source);
            self.set_primary_as(user, primary)
        })
    }

    /// Every user with its sessions, per-source presences and primary source, plus the sources
    /// and organization definitions, as data (serialize it with any serde format).
    ///
    /// Locks: each shard in turn, for reading, so each shard is one consistent state while
    /// writers run; the registries for reading. Cost: O(users).
    #[cfg(feature = "serde")]
    pub fn snapshot(&self) -> Snapshot<K> {
        let mut users = Vec::with_capacity(self.len());
        let mut sequence = 0;
        for shard in self.shards.iter() {
            let shard = shard.read();
            shard.snapshot_users(&mut users);
            sequence = sequence.max(shard.seq());
        }
        Snapshot {
            taken_at: self.clock.now_ms(),
            sequence,
            users,
            sources: self.sources.list(),
            definitions: self
                .definitions
                .list(true)
                .into_iter()
                .filter(|d| !d.system)
                .collect(),
        }
    }

    /// A new store (on the system clock) holding `snapshot`; see
    /// [`restore_with_clock`](Self::restore_with_clock).
    #[cfg(feature = "serde")]
    pub fn restore(config: StoreConfig, snapshot: Snapshot<K>) -> Result<Self, Error> {
        Self::restore_with_clock(config, Arc::new(SystemClock), snapshot)
    }

    /// A new store holding `snapshot`: every `get` and `page` then shows what the snapshot
    /// holds (versions included), sessions go on ageing from their last heartbeats, and the
    /// activity is recomputed from them. It is a new instance: older cursors, and time deltas
    /// reaching before the restore, get the full list. A snapshot no store could have taken is
    /// [`Error::InvalidSnapshot`].
    ///
    /// Users are sorted into each shard's run once, at the end, so restoring costs a few times
    /// less than adding the users one by one (see BENCHMARKS.md).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use presence_store::{Activity, ManualClock, PresenceStore, StoreConfig};
    ///
    /// let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    /// let store: PresenceStore<u64> =
    ///     PresenceStore::with_clock(StoreConfig::default(), clock.clone());
    /// store.heartbeat(&7, 1, Activity::Active)?;
    /// let copy: PresenceStore<u64> =
    ///     PresenceStore::restore_with_clock(StoreConfig::default(), clock, store.snapshot())?;
    /// assert_eq!(copy.get(&7), store.get(&7));
    /// # Ok::<(), presence_store::Error>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn restore_with_clock(
        config: StoreConfig,
        clock: Arc<dyn Clock>,
        snapshot: Snapshot<K>,
    ) -> Result<Self, Error> {
        let store = Self::try_with_clock(config, clock)?;
        if snapshot.sequence > Shard::<K>::MAX_RESTORED_VERSION {
            return Err(Error::InvalidSnapshot {
                reason: format!(
                    "sequence {} is past what any store reaches (2^62)",
                    snapshot.sequence
                ),
            });
        }
        for source in snapshot.sources {
            store.sources.restore(source)?;
        }
        for def in snapshot.definitions {
            store.definitions.restore(def)?;
        }
        // Users go into each shard's slab as they come and are sorted into its run once, at
        // the end, rather than through the tail and a compaction every 32nd of the shard.
        // No one else holds the new store yet: its shards are locked once for the whole load.
        let per_shard = snapshot.users.len() / store.shards.len() + 1;
        let mut shards: Vec<_> = store.shards.iter().map(|shard| shard.write()).collect();
        for shard in shards.iter_mut() {
            shard.begin_bulk(per_shard);
        }
        for user in snapshot.users {
            let named = user.sources.iter().map(|p| &p.source).chain(&user.primary);
            for source in named {
                store
                    .sources
                    .get(source)
                    .map_err(|_| Error::InvalidSnapshot {
                        reason: format!("user {:?} names unknown source {source}", user.user),
                    })?;
            }
            let (hash, index) = store.locate(&user.user);
            shards[index].restore_user(hash, user, &store.limits)?;
        }
        let now = store.clock.now_ms();
        for shard in shards.iter_mut() {
            shard.finish_restore(now, snapshot.sequence);
        }
        drop(shards);
        Ok(store)
    }

    /// Creates a presence feed (Symphony's `POST /v1/presence/feed/create`): a cursor the store
    /// keeps for a reader, starting now. At most `max_feeds` exist ([`Error::TooManyFeeds`]).
    ///
    /// Locks: each shard in turn, for reading; the feed registry. Cost: O(shards).
    pub fn create_feed(&self) -> Result<FeedId, Error> {
        let now = self.clock.now_ms();
        self.feeds
            .create(self.cursor(), now, self.config.max_feeds, self.id)
    }

    /// Reads a feed: the users changed since its previous read (the first read: since it was
    /// created), at most `max`, oldest change first, each once with its latest state. The next
    /// read resumes exactly after the last change returned. `max` of 0 or over `max_page` is
    /// [`Error::InvalidLimit`]; an unknown feed is [`Error::UnknownFeed`].
    ///
    /// A feed that fell behind what the log holds delivers the full list instead (`full`, with
    /// the reason): every user not offline, in key order, at most `max` per read, with `more`
    /// true until the last page. Then exact reads resume from the cursor of the first page, so
    /// a user that changed while the pages were read comes again: nothing is lost between the
    /// two modes. (Should the log drop that cursor too before the pages are read, the feed
    /// falls behind again and says so.)
    ///
    /// ```
    /// use std::sync::Arc;
    /// use presence_store::{Activity, ManualClock, PresenceStore, StoreConfig};
    ///
    /// let config = StoreConfig { shards: 2, log_capacity: 8, ..Default::default() };
    /// let s: PresenceStore<u64> =
    ///     PresenceStore::with_clock(config, Arc::new(ManualClock::new(1_700_000_000_000)));
    /// let f = s.create_feed()?;
    /// for u in 0..300 {
    ///     s.heartbeat(&u, 1, Activity::Active)?;
    /// }
    /// let (mut users, mut reads) = (Vec::new(), 0);
    /// loop {
    ///     let r = s.read_feed(&f, 100)?;
    ///     assert!(r.full && r.users.len() <= 100);
    ///     users.extend(r.users.into_iter().map(|(k, _)| k));
    ///     reads += 1;
    ///     if !r.more {
    ///         break;
    ///     }
    /// }
    /// assert_eq!((users, reads), ((0..300).collect::<Vec<_>>(), 3));
    /// // Then exact reads again, from the first page's cursor.
    /// s.heartbeat(&7, 1, Activity::Idle)?;
    /// let r = s.read_feed(&f, 100)?;
    /// assert!(!r.full && !r.more);
    /// assert_eq!(r.users[0].0, 7);
    /// # Ok::<(), presence_store::Error>(())
    /// ```
    ///
    /// Locks: the feed (so reads of one feed are serialized), then every shard for reading, all
    /// at once. Cost: O(changes read x log shards); a page of the full list costs what a
    /// [`page`](Self::page) of `max` does.
    pub fn read_feed(&self, feed: &FeedId, max: usize) -> Result<FeedRead<K>, Error> {
        if max == 0 || max > self.config.max_page {
            return Err(Error::InvalidLimit {
                limit: max,
                max: self.config.max_page,
            });
        }
        let feed = self.feeds.get(feed)?;
        let mut feed = feed.lock();
        let read = match feed.full.take() {
            Some(pages) => {
                self.full_page(&mut feed, Bound::Included(pages.next), max, pages.reason)
            }
            None => match self.changes_limited(&feed.cursor, max) {
                Ok((users, cursor, more)) => {
                    feed.cursor = cursor;
                    FeedRead {
                        users,
                        full: false,
                        reason: None,
                        more,
                    }
                }
                Err(reason) => self.full_page(&mut feed, Bound::Unbounded, max, reason),
            },
        };
        feed.last_read = self.clock.now_ms();
        Ok(read)
    }

    /// One page of a feed's full list, from `start` (unbounded for the first, whose cursor the
    /// feed resumes from once the last page is read).
    fn full_page(
        &self,
        feed: &mut Feed<K>,
        start: Bound<K>,
        max: usize,
        reason: FullReason,
    ) -> FeedRead<K> {
        let guards = self.read_all();
        let (users, next) = sorted_users(&guards, start.as_ref(), false, max);
        if matches!(start, Bound::Unbounded) {
            feed.cursor = self.cursor_of(guards.iter().map(|g| g.seq()));
        }
        let more = next.is_some();
        feed.full = next.map(|next| FullPages { next, reason });
        FeedRead {
            users,
            full: true,
            reason: Some(reason),
            more,
        }
    }

    /// Deletes a feed; an unknown one is [`Error::UnknownFeed`].
    ///
    /// Locks: the feed registry. Cost: O(1).
    pub fn delete_feed(&self, feed: &FeedId) -> Result<(), Error> {
        self.feeds.delete(feed)
    }

    /// The ids of the feeds that exist, in id order: what a host persists to bring its feeds
    /// back with [`restore_feed`](Self::restore_feed) after a restart.
    ///
    /// Locks: the feed registry. Cost: O(feeds log feeds), one allocation.
    pub fn feed_ids(&self) -> Vec<FeedId> {
        self.feeds.ids()
    }

    /// Brings back a feed an earlier instance created, under the same id, so its reader goes on
    /// reading after a restart. Its position cannot carry over (this is a new instance): its
    /// first read is the full list, flagged `full`, as for any reader that fell behind. An id
    /// that exists already is left as it is; at most `max_feeds` exist
    /// ([`Error::TooManyFeeds`]).
    ///
    /// Locks: the feed registry. Cost: O(shards).
    pub fn restore_feed(&self, id: FeedId) -> Result<(), Error> {
        let start = self.cursor_of(std::iter::repeat_n(0, self.shards.len()));
        let now = self.clock.now_ms();
        self.feeds.restore(id, start, now, self.config.max_feeds)
    }

    /// The number of entries in the change log, summed over the shards (what deltas and feeds
    /// read from; `log_capacity` per shard bounds it).
    ///
    /// Locks: each shard in turn, for reading. Cost: O(shards).
    pub fn log_len(&self) -> usize {
        self.shards.iter().map(|s| s.read().log().len()).sum()
    }

    /// Subscribes to changes: every visible change after this call (of `options.users`, or of
    /// everyone) arrives on the subscription, to be received from a thread or awaited from a
    /// task. Writers never wait for it; see [`Subscription`]. With no subscription, writes pay
    /// one length check; with some, each change costs each subscriber a queue push.
    ///
    /// Locks: each shard in turn, for writing. Cost: O(shards + users filtered on); allocates
    /// the subscriber (a few hundred bytes, whatever `options.capacity`: its queue grows only
    /// as events wait).
    pub fn subscribe(&self, options: SubscribeOptions<K>) -> Subscription<K> {
        let start = self.cursor_of(std::iter::repeat_n(0, self.shards.len()));
        let (subscription, subscriber) = Subscription::new(options, &start);
        for shard in self.shards.iter() {
            shard.write().subscribe(Arc::clone(&subscriber));
        }
        subscription
    }

    /// How many subscriptions the store feeds, and how many of them lag.
    ///
    /// Locks: the first shard, for reading. Cost: O(subscribers), no allocation.
    pub fn subscriber_stats(&self) -> SubscriberStats {
        self.shards
            .first()
            .map(|shard| shard.read().subscriber_stats())
            .unwrap_or_default()
    }

    /// The presence of one user, or `None` if unknown.
    ///
    /// Locks: the user's shard, for reading. Cost: O(1), no allocation.
    #[inline]
    pub fn get(&self, user: &K) -> Option<Presence> {
        let (hash, shard) = self.route(user);
        let shard = shard.read();
        shard.get(hash, user).map(|slot| shard.presence(slot))
    }

    /// The known users among `users`, in input order (repeats repeated), with their presence.
    ///
    /// Locks: per batch of 64 users, the shards they hash to, for reading, all at once, taken in
    /// index order (with more than 64 shards, each user's shard in turn). Cost: O(users);
    /// allocates the result.
    pub fn get_many(&self, users: &[K]) -> Vec<(K, Presence)> {
        let mut out = Vec::with_capacity(users.len());
        if self.shards.len() > MANY_SHARDS {
            out.extend(users.iter().filter_map(|u| Some((u.clone(), self.get(u)?))));
            return out;
        }
        for batch in users.chunks(MANY_BATCH) {
            self.get_batch(batch, &mut out);
        }
        out
    }

    /// Appends the known users of `batch` (at most [`MANY_BATCH`]; at most [`MANY_SHARDS`]
    /// shards) to `out`, in order.
    ///
    /// Each shard the batch needs is locked once. Every user's slot is found before any record
    /// is read, so the users' cache misses overlap instead of queueing one behind the other.
    fn get_batch(&self, batch: &[K], out: &mut Vec<(K, Presence)>) {
        let mut hashes = [0u64; MANY_BATCH];
        let mut shards = [0u8; MANY_BATCH];
        let mut needed = 0u64;
        for ((user, hash), shard) in batch.iter().zip(&mut hashes).zip(&mut shards) {
            let (h, s) = self.locate(user);
            *hash = h;
            *shard = s as u8;
            needed |= 1 << s;
        }
        let mut guards: [Option<RwLockReadGuard<'_, Shard<K>>>; MANY_SHARDS] =
            [const { None }; MANY_SHARDS];
        while needed != 0 {
            let s = needed.trailing_zeros() as usize;
            guards[s] = Some(self.shards[s].read());
            needed &= needed - 1;
        }
        let mut found: [Option<(&Shard<K>, u32)>; MANY_BATCH] = [None; MANY_BATCH];
        for (((user, &hash), &shard), found) in
            batch.iter().zip(&hashes).zip(&shards).zip(&mut found)
        {
            if let Some(shard) = guards[usize::from(shard) % MANY_SHARDS].as_deref() {
                *found = shard.get(hash, user).map(|slot| (shard, slot));
            }
        }
        for (user, found) in batch.iter().zip(found) {
            if let Some((shard, slot)) = found {
                out.push((user.clone(), shard.presence(slot)));
            }
        }
    }

    /// The number of users the store knows.
    ///
    /// Locks: each shard in turn, for reading. Cost: O(shards).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().live()).sum()
    }

    /// Whether the store knows no user.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cursor of "now": a delta from it holds only changes made after this call.
    ///
    /// Locks: each shard in turn, for reading. Cost: O(shards).
    pub fn cursor(&self) -> Cursor {
        self.cursor_of(self.shards.iter().map(|s| s.read().seq()))
    }

    /// One page of users in ascending key order, from `query.start`.
    ///
    /// The page carries the cursor at which it was read: after paging through every user, a
    /// delta from the first page's cursor returns every user that changed meanwhile, so nothing
    /// is missed (Symphony's paging gap). A limit of 0 or over `max_page` is
    /// [`Error::InvalidLimit`].
    ///
    /// Locks: every shard for reading, all at once, in index order, for the duration of the
    /// merge. Cost: O(limit x log shards + shards x log users), plus any offline users skipped
    /// and any users removed since their shard last compacted.
    pub fn page(&self, query: &PageQuery<K>) -> Result<Page<K>, Error> {
        let limit = query.limit.unwrap_or(self.config.default_page);
        if limit == 0 || limit > self.config.max_page {
            return Err(Error::InvalidLimit {
                limit,
                max: self.config.max_page,
            });
        }
        let guards = self.read_all();
        let (items, next) =
            sorted_users(&guards, query.start.as_ref(), query.include_offline, limit);
        Ok(Page {
            items,
            next,
            cursor: self.cursor_of(guards.iter().map(|g| g.seq())),
        })
    }

    /// The users that changed since a time or a cursor, each once with its latest state.
    ///
    /// - `Since::Time(t)` with `now - t < delta_window`: users whose last visible change is at
    ///   or after `t`, removed users included (as `Offline`); a future `t` gives none.
    /// - `Since::Cursor(c)`: exactly the users whose latest change is after `c`.
    /// - A time outside the window, changes pruned from the log, or a cursor of another store
    ///   give the full list of users not offline, sorted by key, with `full` and the reason.
    ///
    /// Locks: each shard in turn, for reading; all shards at once for a full answer. Cost:
    /// O(shards x log log-length + changes), not the number of users (except a full answer).
    pub fn changes_since(&self, since: &Since) -> Delta<K> {
        let delta = match since {
            Since::Time(t) => self.changes_since_time(*t),
            Since::Cursor(c) => self.changes_since_cursor(c),
        };
        delta.unwrap_or_else(|reason| self.full(reason))
    }

    fn changes_since_time(&self, t: u64) -> Result<Delta<K>, FullReason> {
        let now = self.clock.now_ms();
        if t > now {
            return Ok(self.partial(Vec::new(), self.cursor()));
        }
        if now - t >= self.limits.window {
            return Err(FullReason::OutsideWindow);
        }
        let mut users = Vec::new();
        let mut seqs = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            let shard = shard.read();
            shard.collect_latest(shard.log().since_ts(t)?, &mut users);
            seqs.push(shard.seq());
        }
        Ok(self.partial(users, self.cursor_of(seqs)))
    }

    fn changes_since_cursor(&self, c: &Cursor) -> Result<Delta<K>, FullReason> {
        if c.store != self.id || c.seqs.len() != self.shards.len() {
            return Err(FullReason::ForeignCursor);
        }
        let mut users = Vec::new();
        let mut seqs = Vec::with_capacity(self.shards.len());
        for (shard, &after) in self.shards.iter().zip(c.seqs.iter()) {
            let shard = shard.read();
            shard.collect_latest(shard.log().after_seq(after)?, &mut users);
            seqs.push(shard.seq());
        }
        Ok(self.partial(users, self.cursor_of(seqs)))
    }

    /// At most `max` users changed after `c`, oldest change first, the cursor just after the
    /// last one returned, and whether more were waiting.
    fn changes_limited(&self, c: &Cursor, max: usize) -> Result<Limited<K>, FullReason> {
        if c.store != self.id || c.seqs.len() != self.shards.len() {
            return Err(FullReason::ForeignCursor);
        }
        let guards = self.read_all();
        let logs = guards
            .iter()
            .zip(c.seqs.iter())
            .map(|(g, &after)| {
                let entries = g.log().after_seq(after)?;
                Ok(entries.map(|(seq, e)| (&e.ts, (seq, e.slot))))
            })
            .collect::<Result<Vec<_>, FullReason>>()?;
        let mut seqs = c.seqs.to_vec();
        let mut users = Vec::new();
        for (s, _, (seq, slot)) in Merge::new(logs) {
            let shard = &guards[s];
            if shard.is_latest(slot, seq) {
                if users.len() == max {
                    return Ok((users, self.cursor_of(seqs), true));
                }
                users.push((shard.key(slot).clone(), shard.presence(slot)));
            }
            seqs[s] = seq;
        }
        Ok((users, self.cursor_of(seqs), false))
    }

    fn partial(&self, users: Vec<(K, Presence)>, cursor: Cursor) -> Delta<K> {
        Delta {
            users,
            full: false,
            reason: None,
            cursor,
        }
    }

    /// Every user not offline, sorted, read as one snapshot.
    fn full(&self, reason: FullReason) -> Delta<K> {
        let guards = self.read_all();
        let (users, _) = sorted_users(&guards, Bound::Unbounded, false, usize::MAX);
        Delta {
            users,
            full: true,
            reason: Some(reason),
            cursor: self.cursor_of(guards.iter().map(|g| g.seq())),
        }
    }

    fn read_all(&self) -> Vec<RwLockReadGuard<'_, Shard<K>>> {
        self.shards.iter().map(|s| s.read()).collect()
    }

    fn cursor_of(&self, seqs: impl IntoIterator<Item = u64>) -> Cursor {
        Cursor {
            store: self.id,
            seqs: seqs.into_iter().collect(),
        }
    }

    /// A heartbeat of another node's session (see `crate::replica`): never aged by the sweep.
    /// `Activity::Offline` ends it.
    pub(crate) fn remote_heartbeat(
        &self,
        user: &K,
        session: u64,
        activity: Activity,
    ) -> Result<Presence, Error> {
        let (hash, shard) = self.route(user);
        shard.write().heartbeat(
            hash,
            user,
            session,
            activity,
            true,
            &*self.clock,
            &self.limits,
        )
    }

    /// The store's clock, in ms.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Whether the user has the session, and then whether it is active.
    pub(crate) fn session_active(&self, user: &K, session: u64) -> Option<bool> {
        let (hash, shard) = self.route(user);
        let shard = shard.read();
        let slot = shard.get(hash, user)?;
        shard.session(slot, session).map(|s| s.is_active())
    }

    /// A set by category and optional definition, already validated (by `set_definition`, or a
    /// replicated one).
    pub(crate) fn set_as(
        &self,
        user: &K,
        category: Category,
        mode: SetMode,
        definition: Option<DefinitionId>,
    ) -> Result<Presence, Error> {
        let (hash, shard) = self.route(user);
        shard.write().set(
            hash,
            user,
            category,
            mode,
            definition,
            &*self.clock,
            &self.limits,
        )
    }

    /// Sets or clears a known user's message, already validated (`set_message`, or replicated).
    pub(crate) fn set_message_as(
        &self,
        user: &K,
        message: Option<Arc<str>>,
    ) -> Result<Presence, Error> {
        let (hash, shard) = self.route(user);
        shard
            .write()
            .set_message(hash, user, message, &*self.clock, &self.limits)
    }

    /// Sets a user's presence from a source other than the default, unchecked against the
    /// registries (a replicated one: the source and definition are the origin's).
    pub(crate) fn set_source_presence_as(
        &self,
        user: &K,
        set: SourcePresence,
    ) -> Result<Presence, Error> {
        let (hash, shard) = self.route(user);
        shard
            .write()
            .set_source_presence(hash, user, set, &*self.clock, &self.limits)
    }

    /// Makes `source` (`None`: the default) a known user's primary source, unchecked.
    pub(crate) fn set_primary_as(
        &self,
        user: &K,
        source: Option<SourceId>,
    ) -> Result<Presence, Error> {
        let (hash, shard) = self.route(user);
        shard
            .write()
            .set_primary_source(hash, user, source, &*self.clock, &self.limits)
    }

    /// Puts an organization definition with its id, as a replicated event carries it
    /// (`crate::replica`): added, or replacing the one with that id. System ones never change.
    pub(crate) fn put_definition(&self, definition: Definition) {
        self.definitions.put(definition);
    }

    /// Removes an organization definition a replicated event deleted; unknown: no change.
    pub(crate) fn forget_definition(&self, id: &DefinitionId) {
        self.definitions.forget(id);
    }

    /// Puts a source with its id, as a replicated event carries it (`crate::replica`): added,
    /// or replacing the one with that id.
    pub(crate) fn put_source(&self, source: Source) {
        self.sources.put(source);
    }

    /// Removes a source a replicated event deleted, as [`delete_source`](Self::delete_source)
    /// does; unknown (or the default): no change.
    pub(crate) fn forget_source(&self, id: &SourceId) {
        if self.delete_source(id).is_ok() {
            return;
        }
        // Not in the registry (its creation has not arrived): presences set from it may have.
        if !id.is_default() {
            for shard in self.shards.iter() {
                shard.write().drop_source(id, &*self.clock, &self.limits);
            }
        }
    }

    /// Checks a message against the limit and gives it as stored (`None` when empty).
    pub(crate) fn check_message(&self, message: &str) -> Result<Option<Arc<str>>, Error> {
        self.message(message)
    }

    /// A definition's canonical id and category, if it can be set now.
    pub(crate) fn resolve_definition(
        &self,
        definition: &DefinitionId,
    ) -> Result<(DefinitionId, Category), Error> {
        self.definitions.resolve_for_set(definition)
    }

    /// Checks that `source` exists (and, if `active`, is active), giving its canonical id.
    pub(crate) fn check_source(&self, source: &SourceId, active: bool) -> Result<SourceId, Error> {
        self.sources.hold(source, active, Ok)
    }

    /// The key's hash and its shard.
    #[inline]
    fn route(&self, user: &K) -> (u64, &RwLock<Shard<K>>) {
        let (hash, index) = self.locate(user);
        (hash, &self.shards[index])
    }

    /// The key's hash and its shard's index. The shard comes from the top 32 bits of the hash,
    /// apart from the low 32 that the shard's slot table uses.
    #[inline]
    fn locate(&self, user: &K) -> (u64, usize) {
        let hash = self.hasher.hash_one(user);
        let index = ((hash >> 32) * self.shards.len() as u64) >> 32;
        (hash, index as usize)
    }
}

/// A bounded delta: users, the cursor after the last of them, and whether more were waiting.
type Limited<K> = (Vec<(K, Presence)>, Cursor, bool);

/// Users a `get_many` looks up together: enough for their cache misses to overlap, few enough
/// for the batch's scratch space to sit on the stack and for writers to wait little.
const MANY_BATCH: usize = 64;

/// Most shards for which `get_many` locks a batch's shards together: one bit each in a `u64`.
const MANY_SHARDS: usize = 64;

/// Up to `limit` users of the locked shards from `start` on, in key order, with the key that
/// follows them.
fn sorted_users<K: Key>(
    guards: &[RwLockReadGuard<'_, Shard<K>>],
    start: Bound<&K>,
    include_offline: bool,
    limit: usize,
) -> (Vec<(K, Presence)>, Option<K>) {
    let users: usize = guards.iter().map(|g| g.live()).sum();
    let mut items = Vec::with_capacity(limit.min(users));
    let shards: Vec<&Shard<K>> = guards.iter().map(|g| &**g).collect();
    let starts = Shard::run_starts(&shards, start);
    let sources = shards
        .iter()
        .zip(starts)
        .flat_map(|(s, from)| s.sources(from, start));
    // Shard `i`'s sources are the merge's ranges `2i` and `2i + 1`.
    for (source, key, slot) in Merge::new(sources) {
        let presence = shards[source / 2].presence(slot);
        if !include_offline && presence.category == Category::Offline {
            continue;
        }
        if items.len() == limit {
            return (items, Some(key.clone()));
        }
        items.push((key.clone(), presence));
    }
    (items, None)
}

/// The hasher that routes keys to shards: random per store, but fixed under loom
/// (`tests/loom.rs`), whose model runs a test over and over and needs every run to route alike.
fn new_hasher() -> RandomState {
    if cfg!(presence_store_loom) {
        RandomState::with_seeds(1, 2, 3, 4)
    } else {
        RandomState::new()
    }
}

/// A fresh identity for a store instance, so cursors of another instance are told apart.
fn new_store_id() -> u64 {
    static INSTANCES: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(INSTANCES.fetch_add(1, Ordering::Relaxed))
}
