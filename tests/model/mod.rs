//! A naive, sequential reference model of `PresenceStore`: one `BTreeMap` of users and one
//! `Vec` of every logged change, no shards, no wheel, no pruning, no cleverness. Tests drive the
//! store and the model with the same operations and compare what they answer.
//!
//! The model owns its clock (`now`, in ms): advance it together with the store's `ManualClock`,
//! and only forward. It cannot predict the store's per-shard `version` numbers; instead every
//! expected presence carries the model's global change number (`Expected::change`), and
//! [`Versions`] checks that the store's versions of each user grow exactly when those do.
//!
//! Beyond sessions and sets, it covers the later layers on the same log: status messages,
//! presence definitions, presence sources with a primary source per user, feeds, and a snapshot
//! restored into a new store. It cannot predict the ids the store generates (definitions,
//! sources, feeds): the test creates them in the store and hands the model the ids the store
//! chose.
//!
//! Include it from a test file with `mod model;`.

#![allow(dead_code)]

pub mod harness;
pub mod reads;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::ops::Bound;

use presence_store::{
    resolve, Activity, Category, FullReason, Presence, SetMode, StoreConfig, SystemPresence,
};

/// The id of the built-in source; any ASCII case of it names it.
pub const DEFAULT_SOURCE: &str = "PURECLOUD";

/// The fields of a presence the model predicts exactly (everything but `version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visible {
    pub category: Category,
    pub requested: Category,
    pub activity: Activity,
    pub updated_at: u64,
    /// The status message shown.
    pub message: Option<String>,
    /// The definition the shown category was set by.
    pub definition: Option<String>,
    /// The primary source, when it is not the default.
    pub source: Option<String>,
}

impl Visible {
    /// A removed user, as deltas report it.
    fn tombstone(at: u64) -> Self {
        Visible {
            category: Category::Offline,
            requested: Category::Undefined,
            activity: Activity::Offline,
            updated_at: at,
            message: None,
            definition: None,
            source: None,
        }
    }

    /// Everything but `updated_at`: what a write must change to be logged.
    fn view(&self) -> View<'_> {
        (
            self.category,
            self.requested,
            self.activity,
            self.message.as_deref(),
            self.definition.as_deref(),
            self.source.as_deref(),
        )
    }
}

type View<'a> = (
    Category,
    Category,
    Activity,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// What the store should answer for one user: its visible state, and the number of the logged
/// change that produced it (1-based index into `Model::log`), which orders its versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub visible: Visible,
    pub change: usize,
}

/// One session of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub last_seen: u64,
    /// Time of the last active heartbeat while the session is active; `None` when idle.
    pub last_active: Option<u64>,
}

/// A user's presence as a source other than the default set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceState {
    pub definition: String,
    pub category: Category,
    pub message: Option<String>,
    /// When it last changed (a repeat of the same presence keeps it).
    pub updated_at: u64,
}

/// A known user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserState {
    pub requested: Category,
    pub category: Category,
    pub activity: Activity,
    pub sessions: BTreeMap<u64, Session>,
    /// The default source's status message.
    pub message: Option<String>,
    /// The definition the default source's category was set by (a plain set clears it).
    pub definition: Option<String>,
    /// The primary source, `None` for the default.
    pub primary: Option<String>,
    /// Presences set by sources other than the default, by source id.
    pub sources: BTreeMap<String, SourceState>,
}

impl UserState {
    fn fresh() -> Self {
        UserState {
            requested: Category::Undefined,
            category: Category::Offline,
            activity: Activity::Offline,
            sessions: BTreeMap::new(),
            message: None,
            definition: None,
            primary: None,
            sources: BTreeMap::new(),
        }
    }

    /// The default source's presence (what sessions and plain sets act on), stamped `at`.
    fn default_presence(&self, at: u64) -> Visible {
        Visible {
            category: self.category,
            requested: self.requested,
            activity: self.activity,
            updated_at: at,
            message: self.message.clone(),
            definition: self.definition.clone(),
            source: None,
        }
    }

    /// A source's presence shown over the default's: its category (also as `requested`), its
    /// message and definition; the activity stays the sessions'.
    fn with_source(&self, mut base: Visible, id: &str, s: &SourceState) -> Visible {
        base.category = s.category;
        base.requested = s.category;
        base.message.clone_from(&s.message);
        base.definition = Some(s.definition.clone());
        base.source = Some(id.to_owned());
        base
    }

    /// What others see, stamped `at`: the primary source's presence, or the default's while
    /// the primary has set none (still naming the primary).
    fn shown(&self, at: u64) -> Visible {
        let base = self.default_presence(at);
        match &self.primary {
            None => base,
            Some(p) => match self.sources.get(p) {
                Some(s) => self.with_source(base, p, s),
                None => Visible {
                    source: Some(p.clone()),
                    ..base
                },
            },
        }
    }
}

/// One logged change: which user, when, and the user's visible state after it (a removal logs
/// the tombstone: `Offline`, `Undefined`, `Offline`, nothing else).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change<K> {
    pub key: K,
    pub at: u64,
    pub state: Visible,
}

/// The parts of a `StoreConfig` the model needs, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    pub idle_after: u64,
    pub session_ttl: u64,
    pub delta_window: u64,
    pub default_page: usize,
    pub max_page: usize,
    pub max_message_len: usize,
    pub max_feeds: usize,
    pub feed_expiry: u64,
}

impl From<&StoreConfig> for ModelConfig {
    fn from(c: &StoreConfig) -> Self {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap();
        ModelConfig {
            idle_after: ms(c.idle_after),
            session_ttl: ms(c.session_ttl),
            delta_window: ms(c.delta_window),
            default_page: c.default_page,
            max_page: c.max_page,
            max_message_len: c.max_message_len,
            max_feeds: c.max_feeds,
            feed_expiry: ms(c.feed_expiry),
        }
    }
}

/// A point in the model's history: the number of changes logged when it was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModelCursor(pub usize);

/// What `page` should answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPage<K> {
    pub items: Vec<(K, Expected)>,
    pub next: Option<K>,
}

/// What `changes_since` should answer. `users` is sorted by key (the store's partial answers
/// are in no particular order: sort them before comparing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelDelta<K> {
    pub users: Vec<(K, Expected)>,
    pub full: bool,
    pub reason: Option<FullReason>,
}

/// `disconnect` of a user the model does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownUser;

/// A page limit of 0 or over `max_page`: `(limit, max_page)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidLimit(pub usize, pub usize);

/// The errors of the layered calls, as the store's `Error` variants name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    UnknownUser,
    MessageTooLong { len: usize, max: usize },
    UnknownDefinition,
    DeactivatedDefinition,
    SystemDefinition,
    UnknownSource,
    DeactivatedSource,
    DefaultSource,
    UnknownFeed,
    TooManyFeeds { max: usize },
    InvalidLimit { limit: usize, max: usize },
}

/// A presence definition in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelDefinition {
    pub system_presence: SystemPresence,
    pub deactivated: bool,
    /// One of the ten built in.
    pub system: bool,
}

/// A feed: which changes its reads have consumed, and when it was last read.
///
/// Changes before `floor` are consumed, and so are those in `consumed`. A read consumes every
/// change older (by time) than the last user it returns, and the latest changes of the users it
/// returns; which of several changes made at the same time it takes is up to the store.
///
/// A feed that fell behind delivers the full list in pages (`pages`); once the last is read,
/// it has consumed exactly the changes made before the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFeed<K> {
    pub floor: usize,
    pub consumed: BTreeSet<usize>,
    pub last_read: u64,
    pub pages: Option<ModelPages<K>>,
}

/// Where a feed is in delivering the full list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPages<K> {
    /// The number of changes logged when the first page was read.
    pub changes: usize,
    /// The first key of the next page.
    pub next: K,
}

impl<K> ModelFeed<K> {
    /// Whether the change at 0-based `index` was consumed.
    pub fn has_consumed(&self, index: usize) -> bool {
        index < self.floor || self.consumed.contains(&index)
    }
}

/// What one feed read should answer (when the feed has not fallen behind the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFeedRead<K> {
    /// Users in order of their latest change.
    pub users: Vec<(K, Expected)>,
    pub more: bool,
}

/// The reference model.
#[derive(Clone, Debug)]
pub struct Model<K> {
    pub config: ModelConfig,
    /// The clock, in ms.
    pub now: u64,
    pub users: BTreeMap<K, UserState>,
    pub log: Vec<Change<K>>,
    /// Presence definitions by id: the ten system ones, then those the test created.
    pub definitions: BTreeMap<String, ModelDefinition>,
    /// Sources other than the default, by id: whether each is deactivated.
    pub sources: BTreeMap<String, bool>,
    /// Live feeds, by the number the model gave them (in creation order).
    pub feeds: BTreeMap<usize, ModelFeed<K>>,
    /// Feeds created so far.
    pub feeds_created: usize,
    /// The last restore, if the store was restored from a snapshot (see [`Model::restore`]).
    pub restored: Option<Restored>,
}

/// When the store was last restored from a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The number of changes logged before it: the restored store's log holds none of them.
    pub changes: usize,
    /// The time of the restore, in ms: the restored log reaches back to it and no further.
    pub at: u64,
}

impl<K: Ord + Clone + Debug> Model<K> {
    pub fn new(config: &StoreConfig, now: u64) -> Self {
        let definitions = SystemPresence::ALL
            .into_iter()
            .map(|p| {
                let def = ModelDefinition {
                    system_presence: p,
                    deactivated: false,
                    system: true,
                };
                (p.as_str().to_owned(), def)
            })
            .collect();
        Model {
            config: config.into(),
            now,
            users: BTreeMap::new(),
            log: Vec::new(),
            definitions,
            sources: BTreeMap::new(),
            feeds: BTreeMap::new(),
            feeds_created: 0,
            restored: None,
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    // ---- writes: sessions and sets ----

    pub fn set(&mut self, key: &K, category: Category, mode: SetMode) -> Expected {
        self.set_by(key, category, mode, None)
    }

    pub fn heartbeat(&mut self, key: &K, session: u64, activity: Activity) -> Expected {
        let added = self.add_if_unknown(key);
        let before = self.shown(key);
        let now = self.now;
        let user = self.users.get_mut(key).unwrap();
        match activity {
            Activity::Offline => {
                user.sessions.remove(&session);
            }
            Activity::Active => {
                user.sessions.insert(
                    session,
                    Session {
                        last_seen: now,
                        last_active: Some(now),
                    },
                );
            }
            Activity::Idle => {
                user.sessions.insert(
                    session,
                    Session {
                        last_seen: now,
                        last_active: None,
                    },
                );
            }
        }
        self.refresh_activity(key);
        self.commit_if_seen(key, &before, added);
        self.get(key).unwrap()
    }

    pub fn disconnect(&mut self, key: &K, session: u64) -> Result<Expected, UnknownUser> {
        let before = self.shown_if_known(key).ok_or(UnknownUser)?;
        self.users.get_mut(key).unwrap().sessions.remove(&session);
        self.refresh_activity(key);
        self.commit_if_seen(key, &before, false);
        Ok(self.get(key).unwrap())
    }

    pub fn remove(&mut self, key: &K) -> Option<Expected> {
        let old = self.get(key)?;
        self.users.remove(key);
        self.log.push(Change {
            key: key.clone(),
            at: self.now,
            state: Visible::tombstone(self.now),
        });
        Some(old)
    }

    /// Idles and expires sessions at `now`, then drops the feeds unread for the feed expiry (or
    /// the delta window, if longer); returns how many sessions it idled or removed.
    pub fn sweep(&mut self) -> usize {
        let (now, idle_after, ttl) = (self.now, self.config.idle_after, self.config.session_ttl);
        let mut count = 0;
        let keys: Vec<K> = self.users.keys().cloned().collect();
        for key in keys {
            let before = self.shown(&key);
            let user = self.users.get_mut(&key).unwrap();
            user.sessions.retain(|_, s| {
                if now - s.last_seen >= ttl {
                    count += 1;
                    return false;
                }
                if let Some(active) = s.last_active {
                    if now - active >= idle_after {
                        s.last_active = None;
                        count += 1;
                    }
                }
                true
            });
            self.refresh_activity(&key);
            self.commit_if_seen(&key, &before, false);
        }
        let expiry = self.config.feed_expiry.max(self.config.delta_window);
        self.feeds.retain(|_, f| now - f.last_read < expiry);
        count
    }

    // ---- writes: messages and definitions ----

    /// Sets (or, with "", clears) a known user's status message on the default source.
    pub fn set_message(&mut self, key: &K, message: &str) -> Result<Expected, ModelError> {
        let message = self.check_message(message)?;
        let before = self.shown_if_known(key).ok_or(ModelError::UnknownUser)?;
        self.users.get_mut(key).unwrap().message = message;
        self.commit_if_seen(key, &before, false);
        Ok(self.get(key).unwrap())
    }

    /// Sets a user by a definition: its system presence's category, keeping its id.
    pub fn set_definition(
        &mut self,
        key: &K,
        definition: &str,
        mode: SetMode,
    ) -> Result<Expected, ModelError> {
        let category = self.definition_for_set(definition)?;
        Ok(self.set_by(key, category, mode, Some(definition.to_owned())))
    }

    /// Registers an org definition the store created with id `id`.
    pub fn create_definition(&mut self, id: &str, system_presence: SystemPresence) {
        let def = ModelDefinition {
            system_presence,
            deactivated: false,
            system: false,
        };
        assert!(
            self.definitions.insert(id.to_owned(), def).is_none(),
            "model: definition id {id} given twice"
        );
    }

    /// Changes an org definition; users set by it keep what they were set to.
    pub fn update_definition(
        &mut self,
        id: &str,
        system_presence: Option<SystemPresence>,
        deactivated: Option<bool>,
    ) -> Result<ModelDefinition, ModelError> {
        let def = self
            .definitions
            .get_mut(id)
            .ok_or(ModelError::UnknownDefinition)?;
        if def.system {
            return Err(ModelError::SystemDefinition);
        }
        if let Some(p) = system_presence {
            def.system_presence = p;
        }
        if let Some(d) = deactivated {
            def.deactivated = d;
        }
        Ok(*def)
    }

    /// Deletes an org definition; users set by it keep their presence and its id.
    pub fn delete_definition(&mut self, id: &str) -> Result<(), ModelError> {
        match self.definitions.get(id) {
            None => Err(ModelError::UnknownDefinition),
            Some(d) if d.system => Err(ModelError::SystemDefinition),
            Some(_) => {
                self.definitions.remove(id);
                Ok(())
            }
        }
    }

    // ---- writes: sources ----

    /// Registers a source the store created with id `id`.
    pub fn create_source(&mut self, id: &str, deactivated: bool) {
        assert!(!is_default_source(id));
        assert!(
            self.sources.insert(id.to_owned(), deactivated).is_none(),
            "model: source id {id} given twice"
        );
    }

    /// (De)activates a source; the default cannot be deactivated.
    pub fn update_source(&mut self, id: &str, deactivated: Option<bool>) -> Result<(), ModelError> {
        if is_default_source(id) {
            return match deactivated {
                Some(true) => Err(ModelError::DefaultSource),
                _ => Ok(()),
            };
        }
        let d = self.sources.get_mut(id).ok_or(ModelError::UnknownSource)?;
        if let Some(deactivated) = deactivated {
            *d = deactivated;
        }
        Ok(())
    }

    /// Deletes a source: its presences go, and users whose primary it was go back to the
    /// default; each visible change is logged (in key order here; the store's order between
    /// users is its own, all at the same time).
    pub fn delete_source(&mut self, id: &str) -> Result<(), ModelError> {
        if is_default_source(id) {
            return Err(ModelError::DefaultSource);
        }
        self.sources.remove(id).ok_or(ModelError::UnknownSource)?;
        let keys: Vec<K> = self.users.keys().cloned().collect();
        for key in keys {
            let before = self.shown(&key);
            let user = self.users.get_mut(&key).unwrap();
            user.sources.remove(id);
            if user.primary.as_deref() == Some(id) {
                user.primary = None;
            }
            self.commit_if_seen(&key, &before, false);
        }
        Ok(())
    }

    /// Sets a user's presence as `source` sees it, by definition, with a message; adds the
    /// user. For the default source: a hard set by the definition, then the message (two
    /// writes, each logged if visible, as the store does it). Returns the user's presence from
    /// that source.
    pub fn set_source_presence(
        &mut self,
        key: &K,
        source: &str,
        definition: &str,
        message: Option<&str>,
    ) -> Result<Expected, ModelError> {
        let source = self.active_source(source)?;
        let category = self.definition_for_set(definition)?;
        let message = self.check_message(message.unwrap_or_default())?;
        if is_default_source(&source) {
            // A hard set by definition and the message, as one change.
            let added = self.add_if_unknown(key);
            let before = self.shown(key);
            let user = self.users.get_mut(key).unwrap();
            user.requested = category;
            user.category = category;
            user.definition = Some(definition.to_owned());
            user.message = message;
            self.commit_if_seen(key, &before, added);
            return Ok(self.source_presence(key, &source).unwrap());
        }
        let added = self.add_if_unknown(key);
        let before = self.shown(key);
        let now = self.now;
        let user = self.users.get_mut(key).unwrap();
        let set = SourceState {
            definition: definition.to_owned(),
            category,
            message,
            updated_at: now,
        };
        let same = user.sources.get(&source).is_some_and(|s| {
            (&s.definition, s.category, &s.message) == (&set.definition, set.category, &set.message)
        });
        if !same {
            user.sources.insert(source.clone(), set);
        }
        self.commit_if_seen(key, &before, added);
        Ok(self.source_presence(key, &source).unwrap())
    }

    /// Makes `source` (registered, active or not) a known user's primary source.
    pub fn set_primary_source(&mut self, key: &K, source: &str) -> Result<Expected, ModelError> {
        let source = self.known_source(source)?;
        let before = self.shown_if_known(key).ok_or(ModelError::UnknownUser)?;
        self.users.get_mut(key).unwrap().primary = (!is_default_source(&source)).then_some(source);
        self.commit_if_seen(key, &before, false);
        Ok(self.get(key).unwrap())
    }

    // ---- snapshot and restore ----

    /// A snapshot taken now, restored into a new store on the same clock: every user (sessions,
    /// presences from every source, primary source, versions), the sources and the definitions
    /// stay as they are, and nothing is logged. Feeds go (a feed lives in its store, not in the
    /// snapshot). The new store's log starts empty now, so a time delta from now or earlier is
    /// the full list (`LogPruned`); a cursor of the old store is another store's
    /// (`ForeignCursor`), which the caller checks, since a `ModelCursor` does not say which store
    /// it was taken from.
    pub fn restore(&mut self) {
        self.feeds.clear();
        self.restored = Some(Restored {
            changes: self.log.len(),
            at: self.now,
        });
    }

    // ---- feeds ----

    /// Creates a feed that starts after every change so far; returns its number.
    pub fn create_feed(&mut self) -> Result<usize, ModelError> {
        if self.feeds.len() >= self.config.max_feeds {
            return Err(ModelError::TooManyFeeds {
                max: self.config.max_feeds,
            });
        }
        let id = self.feeds_created;
        self.feeds_created += 1;
        let feed = ModelFeed {
            floor: self.log.len(),
            consumed: BTreeSet::new(),
            last_read: self.now,
            pages: None,
        };
        self.feeds.insert(id, feed);
        Ok(id)
    }

    pub fn delete_feed(&mut self, feed: Option<usize>) -> Result<(), ModelError> {
        feed.and_then(|f| self.feeds.remove(&f))
            .map(|_| ())
            .ok_or(ModelError::UnknownFeed)
    }

    /// The checks `read_feed` makes before reading: the limit, then the feed.
    pub fn check_feed_read(&self, feed: Option<usize>, max: usize) -> Result<usize, ModelError> {
        if max == 0 || max > self.config.max_page {
            return Err(ModelError::InvalidLimit {
                limit: max,
                max: self.config.max_page,
            });
        }
        feed.filter(|f| self.feeds.contains_key(f))
            .ok_or(ModelError::UnknownFeed)
    }

    /// The users whose latest change (tombstones included) the feed has not consumed, in the
    /// order of those changes.
    pub fn feed_pending(&self, feed: usize) -> Vec<(K, Expected)> {
        let f = &self.feeds[&feed];
        let mut pending: Vec<(K, Expected)> = self
            .latest_where(|i, _| !f.has_consumed(i))
            .into_iter()
            .collect();
        pending.sort_by_key(|(_, e)| e.change);
        pending
    }

    /// The changes (0-based) the feed has not consumed.
    pub fn feed_unconsumed(&self, feed: usize) -> Vec<usize> {
        let f = &self.feeds[&feed];
        (0..self.log.len())
            .filter(|&i| !f.has_consumed(i))
            .collect()
    }

    /// What a read of at most `max` users should answer: the pending users in the order of
    /// their latest change, the first `max` of them, `more` if there are others. Users whose
    /// latest changes were made at the same time may come in any order, and when `max` cuts
    /// through such a group any of its users may be the ones returned: `got` (the keys the
    /// store returned) settles those two choices where it can.
    pub fn feed_read(&self, feed: usize, max: usize, got: &[K]) -> ModelFeedRead<K> {
        let pending = self.feed_pending(feed);
        let more = pending.len() > max;
        let at = |e: &Expected| self.log[e.change - 1].at;
        let mut users: Vec<(K, Expected)> = if more {
            let cut = at(&pending[max - 1].1);
            let mut users: Vec<(K, Expected)> = pending
                .iter()
                .filter(|(_, e)| at(e) < cut)
                .cloned()
                .collect();
            let group: Vec<&(K, Expected)> = pending.iter().filter(|(_, e)| at(e) == cut).collect();
            let need = max - users.len();
            let mut chosen: Vec<&(K, Expected)> = got
                .iter()
                .filter_map(|k| group.iter().find(|(g, _)| g == k).copied())
                .take(need)
                .collect();
            for g in &group {
                if chosen.len() == need {
                    break;
                }
                if !chosen.iter().any(|c| c.0 == g.0) {
                    chosen.push(g);
                }
            }
            users.extend(chosen.into_iter().cloned());
            users
        } else {
            pending
        };
        // Within one time, the store's order; otherwise the order of the changes.
        let position = |k: &K| got.iter().position(|g| g == k).unwrap_or(usize::MAX);
        users.sort_by_key(|(k, e)| (at(e), position(k), e.change));
        ModelFeedRead { users, more }
    }

    /// Records a read that answered `read`: the feed has consumed every change older than the
    /// last user returned, and the latest changes of the users returned; all if none were left.
    pub fn feed_consume(&mut self, feed: usize, read: &ModelFeedRead<K>) {
        let (now, len) = (self.now, self.log.len());
        let cut = read.users.last().map(|(_, e)| self.log[e.change - 1].at);
        let floor = match cut {
            Some(cut) if read.more => self.log.partition_point(|c| c.at < cut),
            _ => len,
        };
        let f = self.feeds.get_mut(&feed).unwrap();
        f.floor = f.floor.max(floor);
        f.consumed
            .extend(read.users.iter().map(|(_, e)| e.change - 1));
        let floor = f.floor;
        f.consumed.retain(|&i| i >= floor);
        f.last_read = now;
    }

    /// Whether the feed is delivering the full list page by page.
    pub fn feed_in_pages(&self, feed: usize) -> bool {
        self.feeds[&feed].pages.is_some()
    }

    /// Reads the next page of the feed's full list (the first if it is not in pages yet): at
    /// most `max` users not offline, in key order, and whether more follow. After the last
    /// page the feed has consumed the changes made before the first.
    pub fn feed_full_page(&mut self, feed: usize, max: usize) -> (Vec<(K, Expected)>, bool) {
        let (now, len) = (self.now, self.log.len());
        let f = &self.feeds[&feed];
        let (changes, start) = match &f.pages {
            Some(p) => (p.changes, Some(p.next.clone())),
            None => (len, None),
        };
        let list: Vec<(K, Expected)> = self
            .full(FullReason::LogPruned)
            .users
            .into_iter()
            .filter(|(k, _)| start.as_ref().is_none_or(|s| k >= s))
            .collect();
        let next = list.get(max).map(|(k, _)| k.clone());
        let page: Vec<(K, Expected)> = list.into_iter().take(max).collect();
        let f = self.feeds.get_mut(&feed).unwrap();
        f.last_read = now;
        let more = next.is_some();
        f.pages = next.map(|next| ModelPages { changes, next });
        if !more {
            f.floor = changes;
            f.consumed.clear();
        }
        (page, more)
    }

    // ---- reads ----

    /// The user's latest logged state, tombstones included.
    pub fn latest(&self, key: &K) -> Option<Expected> {
        let (i, change) = self
            .log
            .iter()
            .enumerate()
            .rev()
            .find(|(_, c)| c.key == *key)?;
        Some(Expected {
            visible: change.state.clone(),
            change: i + 1,
        })
    }

    pub fn get(&self, key: &K) -> Option<Expected> {
        let user = self.users.get(key)?;
        let expected = self.latest(key).expect("a known user has a logged change");
        let shown = user.shown(expected.visible.updated_at);
        assert_eq!(
            shown.view(),
            expected.visible.view(),
            "model: a visible change of {key:?} was not logged"
        );
        Some(expected)
    }

    pub fn get_many(&self, keys: &[K]) -> Vec<(K, Expected)> {
        keys.iter()
            .filter_map(|k| Some((k.clone(), self.get(k)?)))
            .collect()
    }

    /// A known user's presence as `source` sets it: the default's for the default source
    /// (stamped with the user's last visible change), else that source's own (stamped when it
    /// last changed), or `None` if it has set none. The version is the user's, so `change` is
    /// the user's latest.
    pub fn source_presence(&self, key: &K, source: &str) -> Option<Expected> {
        let user = self.users.get(key)?;
        let latest = self.get(key)?;
        let visible = if is_default_source(source) {
            user.default_presence(latest.visible.updated_at)
        } else {
            let s = user.sources.get(source)?;
            let base = user.default_presence(s.updated_at);
            Visible {
                updated_at: s.updated_at,
                ..user.with_source(base, source, s)
            }
        };
        Some(Expected {
            visible,
            change: latest.change,
        })
    }

    /// A known user's primary source.
    pub fn primary_source(&self, key: &K) -> Option<String> {
        let user = self.users.get(key)?;
        Some(
            user.primary
                .clone()
                .unwrap_or_else(|| DEFAULT_SOURCE.to_owned()),
        )
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn cursor(&self) -> ModelCursor {
        ModelCursor(self.log.len())
    }

    pub fn page(
        &self,
        start: Bound<&K>,
        limit: Option<usize>,
        include_offline: bool,
    ) -> Result<ModelPage<K>, InvalidLimit> {
        let limit = limit.unwrap_or(self.config.default_page);
        if limit == 0 || limit > self.config.max_page {
            return Err(InvalidLimit(limit, self.config.max_page));
        }
        let mut users = self
            .users
            .range::<K, _>((start, Bound::Unbounded))
            .map(|(k, _)| (k.clone(), self.get(k).unwrap()))
            .filter(|(_, e)| include_offline || e.visible.category != Category::Offline);
        let items = users.by_ref().take(limit).collect();
        let next = users.next().map(|(k, _)| k);
        Ok(ModelPage { items, next })
    }

    /// Every user whose latest change matches `pred`, sorted by key, tombstones included.
    fn latest_where(&self, pred: impl Fn(usize, &Change<K>) -> bool) -> Vec<(K, Expected)> {
        let mut latest: BTreeMap<&K, usize> = BTreeMap::new();
        for (i, change) in self.log.iter().enumerate() {
            latest.insert(&change.key, i);
        }
        latest
            .into_iter()
            .filter(|&(_, i)| pred(i, &self.log[i]))
            .map(|(k, i)| {
                let expected = Expected {
                    visible: self.log[i].state.clone(),
                    change: i + 1,
                };
                (k.clone(), expected)
            })
            .collect()
    }

    pub fn changes_since_time(&self, t: u64) -> ModelDelta<K> {
        if t > self.now {
            return ModelDelta {
                users: Vec::new(),
                full: false,
                reason: None,
            };
        }
        if self.now - t >= self.config.delta_window {
            return self.full(FullReason::OutsideWindow);
        }
        if self.restored.is_some_and(|r| t <= r.at) {
            return self.full(FullReason::LogPruned);
        }
        ModelDelta {
            users: self.latest_where(|_, c| c.at >= t),
            full: false,
            reason: None,
        }
    }

    /// The exact answer from a cursor of this store. The store may instead answer
    /// `self.full(FullReason::LogPruned)` when [`Model::cursor_may_be_pruned`] says so.
    pub fn changes_since_cursor(&self, cursor: ModelCursor) -> ModelDelta<K> {
        ModelDelta {
            users: self.latest_where(|i, _| i >= cursor.0),
            full: false,
            reason: None,
        }
    }

    /// Whether a change after `cursor` is old enough (`at + delta_window <= now`) that the store
    /// may have pruned it (with an unbounded `log_capacity`).
    pub fn cursor_may_be_pruned(&self, cursor: ModelCursor) -> bool {
        self.log[cursor.0..]
            .iter()
            .any(|c| c.at + self.config.delta_window <= self.now)
    }

    /// The full answer: every user not offline, sorted by key.
    pub fn full(&self, reason: FullReason) -> ModelDelta<K> {
        let users = self
            .users
            .keys()
            .map(|k| (k.clone(), self.get(k).unwrap()))
            .filter(|(_, e)| e.visible.category != Category::Offline)
            .collect();
        ModelDelta {
            users,
            full: true,
            reason: Some(reason),
        }
    }

    /// The definitions, by id: `(id, system presence, deactivated)`.
    pub fn definition_list(
        &self,
        include_deactivated: bool,
    ) -> Vec<(String, SystemPresence, bool)> {
        self.definitions
            .iter()
            .filter(|(_, d)| include_deactivated || !d.deactivated)
            .map(|(id, d)| (id.clone(), d.system_presence, d.deactivated))
            .collect()
    }

    /// The sources, the default first, then by id: `(id, deactivated)`.
    pub fn source_list(&self) -> Vec<(String, bool)> {
        std::iter::once((DEFAULT_SOURCE.to_owned(), false))
            .chain(self.sources.iter().map(|(id, &d)| (id.clone(), d)))
            .collect()
    }

    // ---- internals ----

    fn add_if_unknown(&mut self, key: &K) -> bool {
        if self.users.contains_key(key) {
            return false;
        }
        self.users.insert(key.clone(), UserState::fresh());
        true
    }

    /// What others see of a user now (stamped `now`, which no comparison reads).
    fn shown(&self, key: &K) -> Visible {
        self.users[key].shown(self.now)
    }

    fn shown_if_known(&self, key: &K) -> Option<Visible> {
        Some(self.users.get(key)?.shown(self.now))
    }

    /// A set of the default source's category, by `definition` or (with `None`) plainly,
    /// adding the user if unknown.
    fn set_by(
        &mut self,
        key: &K,
        category: Category,
        mode: SetMode,
        definition: Option<String>,
    ) -> Expected {
        let added = self.add_if_unknown(key);
        let before = self.shown(key);
        let user = self.users.get_mut(key).unwrap();
        user.requested = category;
        user.category = match mode {
            SetMode::Hard => category,
            SetMode::Soft => resolve(category, user.activity),
        };
        user.definition = definition;
        self.commit_if_seen(key, &before, added);
        self.get(key).unwrap()
    }

    /// The category a set by `id` shows, or why it cannot be set.
    fn definition_for_set(&self, id: &str) -> Result<Category, ModelError> {
        let def = self
            .definitions
            .get(id)
            .ok_or(ModelError::UnknownDefinition)?;
        if def.deactivated {
            return Err(ModelError::DeactivatedDefinition);
        }
        Ok(def.system_presence.category())
    }

    /// A message as stored (`None` for ""), or `MessageTooLong` past the limit in bytes.
    fn check_message(&self, message: &str) -> Result<Option<String>, ModelError> {
        let max = self.config.max_message_len;
        if message.len() > max {
            return Err(ModelError::MessageTooLong {
                len: message.len(),
                max,
            });
        }
        Ok((!message.is_empty()).then(|| message.to_owned()))
    }

    /// The registered id of a source (the default's canonical spelling for any case of it).
    fn known_source(&self, id: &str) -> Result<String, ModelError> {
        if is_default_source(id) {
            return Ok(DEFAULT_SOURCE.to_owned());
        }
        if self.sources.contains_key(id) {
            Ok(id.to_owned())
        } else {
            Err(ModelError::UnknownSource)
        }
    }

    /// The registered id of a source that takes presences now.
    fn active_source(&self, id: &str) -> Result<String, ModelError> {
        let id = self.known_source(id)?;
        if self.sources.get(&id) == Some(&true) {
            return Err(ModelError::DeactivatedSource);
        }
        Ok(id)
    }

    /// Recomputes the activity from the sessions; on a change, resolves the category again.
    fn refresh_activity(&mut self, key: &K) -> bool {
        let user = self.users.get_mut(key).unwrap();
        let activity = if user.sessions.values().any(|s| s.last_active.is_some()) {
            Activity::Active
        } else if !user.sessions.is_empty() {
            Activity::Idle
        } else {
            Activity::Offline
        };
        if activity == user.activity {
            return false;
        }
        user.activity = activity;
        user.category = resolve(user.requested, activity);
        true
    }

    /// Logs a change of `key` if it was just added or others now see other than `before`.
    fn commit_if_seen(&mut self, key: &K, before: &Visible, added: bool) {
        if added || self.shown(key).view() != before.view() {
            self.commit(key);
        }
    }

    fn commit(&mut self, key: &K) {
        let state = self.users[key].shown(self.now);
        self.log.push(Change {
            key: key.clone(),
            at: self.now,
            state,
        });
    }
}

/// Whether `id` names the built-in source (any ASCII case).
pub fn is_default_source(id: &str) -> bool {
    id.eq_ignore_ascii_case(DEFAULT_SOURCE)
}

/// Checks the store's `version`s against the model's change numbers: for each user, a strictly
/// increasing function of `Expected::change` (equal for the same change, larger for a later one).
#[derive(Clone, Debug, Default)]
pub struct Versions<K> {
    seen: BTreeMap<K, BTreeMap<usize, u64>>,
}

impl<K: Ord + Clone + Debug> Versions<K> {
    pub fn new() -> Self {
        Versions {
            seen: BTreeMap::new(),
        }
    }

    /// Forgets the versions seen for `key`, so that its next version is checked against none
    /// before it.
    pub fn forget(&mut self, key: &K) {
        self.seen.remove(key);
    }

    /// Compares a presence the store gave for `key` with what the model expects.
    pub fn check(&mut self, key: &K, got: &Presence, expected: &Expected) -> Result<(), String> {
        let v = &expected.visible;
        let got_view = (
            got.category,
            got.requested,
            got.activity,
            got.updated_at,
            got.details.message(),
            got.details.definition().map(|d| d.as_str()),
            got.details.source().map(|s| s.as_str()),
        );
        let exp_view = (
            v.category,
            v.requested,
            v.activity,
            v.updated_at,
            v.message.as_deref(),
            v.definition.as_deref(),
            v.source.as_deref(),
        );
        if got_view != exp_view {
            return Err(format!(
                "{key:?}: store has {got:?}, model expects {v:?} (change #{})",
                expected.change
            ));
        }
        let versions = self.seen.entry(key.clone()).or_default();
        let change = expected.change;
        if let Some(&known) = versions.get(&change) {
            if known != got.version {
                return Err(format!(
                    "{key:?}: version {} for change #{change}, which had version {known} before",
                    got.version
                ));
            }
            return Ok(());
        }
        if let Some((before, &prev)) = versions.range(..change).next_back() {
            if prev >= got.version {
                return Err(format!(
                    "{key:?}: version {} for change #{change} is not above {prev} of change #{before}",
                    got.version
                ));
            }
        }
        if let Some((after, &next)) = versions.range(change + 1..).next() {
            if next <= got.version {
                return Err(format!(
                    "{key:?}: version {} for change #{change} is not below {next} of change #{after}",
                    got.version
                ));
            }
        }
        versions.insert(change, got.version);
        Ok(())
    }
}

/// The property tests' proptest config: `PROPTEST_CASES` cases (256 by default), and failing
/// cases saved, shrunk, to `regressions` (a path under the crate's `proptest-regressions/`,
/// since proptest's default would put them beside the test file, no `lib.rs` being above
/// `tests/`), to be replayed first on every later run.
pub fn proptest_config(regressions: &'static str) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    proptest::test_runner::Config {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(regressions),
        )),
        ..proptest::test_runner::Config::with_cases(cases)
    }
}
