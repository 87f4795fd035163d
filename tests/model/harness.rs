//! The driver both operation suites share (`tests/model_layers_proptest.rs` and the fuzz
//! crate's `ops` target): a store, the model and what the suite has created in them, with each
//! operation applied to both and its result compared, the feed reads, and every read the store
//! offers compared after each step. Each suite maps its own operations (proptest strategies,
//! `arbitrary` input) onto the calls here and adds what only it does.

use std::sync::Arc;
use std::time::Duration;

use presence_store::{
    Activity, Category, Cursor, DefinitionId, Error, FeedId, FullReason, Key, ManualClock,
    Presence, PresenceStore, SetMode, Source, SourceId, SourceUpdate, StoreConfig, SystemPresence,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::reads::{Reads, TestResult};
use super::{Expected, Model, ModelCursor, ModelError, ModelFeedRead, Versions, DEFAULT_SOURCE};

/// How many users the operations name.
pub const USERS: u8 = 12;
/// `max_message_len` of every setup, in bytes.
pub const MAX_MESSAGE: usize = 8;
/// A source id no source has.
pub const UNKNOWN_SOURCE: &str = "no-such-source";
/// A log capacity no case reaches.
pub const BIG_LOG: usize = 1 << 18;
pub const WIDE_WINDOW: u64 = 600_000;

/// The store's configuration, as a suite varies it.
#[derive(Clone, Debug)]
pub struct Setup {
    pub shards: usize,
    pub idle_after_ms: u64,
    pub session_ttl_ms: u64,
    pub window_ms: u64,
    pub pages: (usize, usize),
    pub start_ms: u64,
    /// Below `BIG_LOG` only with one shard and the wide window: then the model knows exactly
    /// how many of the oldest changes the store has pruned.
    pub log_capacity: usize,
    pub max_feeds: usize,
    pub feed_expiry_ms: u64,
}

impl Setup {
    pub fn config(&self) -> StoreConfig {
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

pub fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

pub fn mode(hard: bool) -> SetMode {
    if hard {
        SetMode::Hard
    } else {
        SetMode::Soft
    }
}

/// The model's name for a store error of the layered calls, if it has one.
pub fn kind(e: &Error) -> Option<ModelError> {
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

/// Compares the results of a call that returns no presence.
pub fn same_outcome<T: std::fmt::Debug, U: std::fmt::Debug>(
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

/// A store and the model, driven together.
pub struct Driver<K> {
    pub setup: Setup,
    pub clock: Arc<ManualClock>,
    pub store: PresenceStore<K>,
    pub model: Model<K>,
    pub versions: Versions<K>,
    pub cursors: Vec<(Cursor, ModelCursor)>,
    /// Org definitions created, in order (deleted ones stay).
    pub definitions: Vec<DefinitionId>,
    /// Sources created, in order (deleted ones stay).
    pub sources: Vec<SourceId>,
    /// Feeds created, in order, with the model's number for each (deleted ones stay).
    pub feeds: Vec<(FeedId, usize)>,
    /// The `i`th user's key.
    pub key: fn(u8) -> K,
}

impl<K: Key> Driver<K> {
    pub fn new(setup: &Setup, key: fn(u8) -> K) -> Self {
        let clock = Arc::new(ManualClock::new(setup.start_ms));
        let config = setup.config();
        let store = PresenceStore::with_clock(config.clone(), clock.clone());
        let model = Model::new(&config, setup.start_ms);
        let mut d = Driver {
            setup: setup.clone(),
            clock,
            store,
            model,
            versions: Versions::new(),
            cursors: Vec::new(),
            definitions: Vec::new(),
            sources: Vec::new(),
            feeds: Vec::new(),
            key,
        };
        d.take_cursor();
        d
    }

    pub fn keys(&self) -> Vec<K> {
        (0..USERS).map(self.key).collect()
    }

    /// The store and model, borrowed for one round of comparisons.
    pub fn reads(&mut self) -> Reads<'_, K> {
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

    pub fn take_cursor(&mut self) {
        let cursor = self.store.cursor();
        assert_eq!(
            cursor.to_string().parse::<Cursor>().ok(),
            Some(cursor.clone()),
            "a cursor's token does not read back"
        );
        self.cursors.push((cursor, self.model.cursor()));
    }

    pub fn advance(&mut self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
        self.model.advance(ms);
    }

    /// The store's and the model's names of a feed; an id no feed has while none was created.
    pub fn feed_id(&self, feed: usize) -> (FeedId, Option<usize>) {
        if self.feeds.is_empty() {
            let unknown = "00000000000000ff".parse().expect("a feed id");
            return (unknown, None);
        }
        let (id, n) = self.feeds[feed % self.feeds.len()];
        (id, Some(n))
    }

    /// Every source id the checks ask about: both spellings of the default, every source
    /// created (deleted ones included) and an unknown one.
    pub fn all_sources(&self) -> Vec<SourceId> {
        let id = |s: &str| SourceId::new(s).expect("a valid source id");
        let mut all = vec![id(DEFAULT_SOURCE), id("purecloud")];
        all.extend(self.sources.iter().cloned());
        all.push(id(UNKNOWN_SOURCE));
        all
    }

    /// Compares the results of a write that returns a presence or an error.
    pub fn same_result(
        &mut self,
        what: &str,
        key: &K,
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

    pub fn set(&mut self, user: u8, category: Category, hard: bool) -> TestResult {
        let k = (self.key)(user);
        let exp = self.model.set(&k, category, mode(hard));
        let got = self.store.set(&k, category, mode(hard));
        self.same_result("set", &k, got, Ok(exp))
    }

    pub fn heartbeat(&mut self, user: u8, session: u64, activity: Activity) -> TestResult {
        let k = (self.key)(user);
        let exp = self.model.heartbeat(&k, session, activity);
        let got = self.store.heartbeat(&k, session, activity);
        self.same_result("heartbeat", &k, got, Ok(exp))
    }

    pub fn disconnect(&mut self, user: u8, session: u64) -> TestResult {
        let k = (self.key)(user);
        let exp = self
            .model
            .disconnect(&k, session)
            .map_err(|_| ModelError::UnknownUser);
        let got = self.store.disconnect(&k, session);
        self.same_result("disconnect", &k, got, exp)
    }

    pub fn remove(&mut self, user: u8) -> TestResult {
        let k = (self.key)(user);
        match (self.model.remove(&k), self.store.remove(&k)) {
            (Some(exp), Some(got)) => self.reads().same("remove (old presence)", &k, &got, &exp),
            (None, None) => Ok(()),
            (exp, got) => Err(fail(format!("remove {k:?}: store {got:?}, model {exp:?}"))),
        }
    }

    pub fn sweep(&mut self) -> TestResult {
        let exp = self.model.sweep();
        let got = self.store.sweep();
        prop_assert_eq!(got, exp, "sweep count");
        Ok(())
    }

    pub fn set_message(&mut self, user: u8, message: &str) -> TestResult {
        let k = (self.key)(user);
        let exp = self.model.set_message(&k, message);
        let got = self.store.set_message(&k, message);
        self.same_result("set_message", &k, got, exp)
    }

    pub fn set_definition(&mut self, user: u8, id: &DefinitionId, hard: bool) -> TestResult {
        let k = (self.key)(user);
        let exp = self.model.set_definition(&k, id.as_str(), mode(hard));
        let got = self.store.set_definition(&k, id, mode(hard));
        self.same_result("set_definition", &k, got, exp)
    }

    /// Records a definition the store created (with `system_presence`) in the model.
    pub fn created_definition(
        &mut self,
        def: presence_store::Definition,
        system_presence: SystemPresence,
    ) -> TestResult {
        prop_assert_eq!(
            (def.system_presence, def.deactivated, def.system),
            (system_presence, false, false),
            "create_definition({})",
            system_presence
        );
        self.model
            .create_definition(def.id.as_str(), system_presence);
        self.definitions.push(def.id);
        Ok(())
    }

    /// Compares an update of a definition, `got` from the store, with the model's.
    pub fn update_definition(
        &mut self,
        id: &DefinitionId,
        got: Result<presence_store::Definition, Error>,
        system_presence: Option<SystemPresence>,
        deactivated: Option<bool>,
    ) -> TestResult {
        let exp = self
            .model
            .update_definition(id.as_str(), system_presence, deactivated);
        if let (Ok(g), Ok(e)) = (&got, &exp) {
            prop_assert_eq!(
                (g.system_presence, g.deactivated, g.system),
                (e.system_presence, e.deactivated, e.system),
                "update_definition"
            );
        }
        same_outcome("update_definition", got, exp)
    }

    pub fn delete_definition(&mut self, id: &DefinitionId) -> TestResult {
        let exp = self.model.delete_definition(id.as_str());
        let got = self.store.delete_definition(id);
        same_outcome("delete_definition", got, exp)
    }

    /// Creates a source in the store, deactivated if asked (the store creates it active).
    pub fn create_source(&self, name: &str, deactivated: bool) -> Result<Source, Error> {
        let source = self.store.create_source(name)?;
        if !deactivated {
            return Ok(source);
        }
        let retire = SourceUpdate {
            deactivated: Some(true),
            ..Default::default()
        };
        self.store.update_source(&source.id, retire)
    }

    /// Records a source the store created (`deactivated` or not) in the model.
    pub fn created_source(
        &mut self,
        source: presence_store::Source,
        deactivated: bool,
    ) -> TestResult {
        prop_assert_eq!(
            source.deactivated,
            deactivated,
            "create_source: {:?}",
            source
        );
        self.model.create_source(source.id.as_str(), deactivated);
        self.sources.push(source.id);
        Ok(())
    }

    pub fn delete_source(&mut self, id: &SourceId) -> TestResult {
        let exp = self.model.delete_source(id.as_str());
        let got = self.store.delete_source(id);
        same_outcome("delete_source", got, exp)
    }

    pub fn set_source_presence(
        &mut self,
        user: u8,
        source: &SourceId,
        def: &DefinitionId,
        message: Option<&str>,
    ) -> TestResult {
        let k = (self.key)(user);
        let exp = self
            .model
            .set_source_presence(&k, source.as_str(), def.as_str(), message);
        let got = self.store.set_source_presence(&k, source, def, message);
        let what = format!("set_source_presence({source}, {def}, {message:?})");
        self.same_result(&what, &k, got, exp)
    }

    pub fn set_primary_source(&mut self, user: u8, source: &SourceId) -> TestResult {
        let k = (self.key)(user);
        let exp = self.model.set_primary_source(&k, source.as_str());
        let got = self.store.set_primary_source(&k, source);
        self.same_result(&format!("set_primary_source({source})"), &k, got, exp)
    }

    pub fn create_feed(&mut self) -> TestResult {
        let exp = self.model.create_feed();
        let got = self.store.create_feed();
        if let (Ok(id), Ok(n)) = (&got, &exp) {
            self.feeds.push((*id, *n));
        }
        same_outcome("create_feed", got, exp)
    }

    pub fn delete_feed(&mut self, feed: usize) -> TestResult {
        let (id, n) = self.feed_id(feed);
        let exp = self.model.delete_feed(n);
        let got = self.store.delete_feed(&id);
        same_outcome("delete_feed", got, exp)
    }

    /// Moves the clock to the expiry of the most recently read (or created) live feed, give or
    /// take `d` ms, and sweeps. The expiry is the feed expiry or, if longer, the delta window.
    pub fn sweep_at_feed_expiry(&mut self, d: i8) -> TestResult {
        let expiry = self.setup.feed_expiry_ms.max(self.setup.window_ms);
        let newest = self.model.feeds.values().map(|f| f.last_read).max();
        let at = newest
            .unwrap_or(self.model.now)
            .saturating_add(expiry)
            .saturating_add_signed(d.into());
        self.advance(at.saturating_sub(self.model.now));
        self.sweep()
    }

    /// Reads a feed from both and compares: the users in the order of their latest change
    /// (those changed at the same time in any order), `more`, or the full list when the feed
    /// fell behind what the log holds, which only changes that may be pruned allow.
    pub fn read_feed(&mut self, feed: usize, max: usize) -> TestResult {
        let (id, n) = self.feed_id(feed);
        let what = format!("read_feed(#{feed}, {max})");
        let got = self.store.read_feed(&id, max);
        let (read, n) = match (got, self.model.check_feed_read(n, max)) {
            (Ok(read), Ok(n)) => (read, n),
            (Err(g), Err(e)) if kind(&g).as_ref() == Some(&e) => return Ok(()),
            (g, e) => return Err(fail(format!("{what}: store {g:?}, model {e:?}"))),
        };
        let pending = self.model.feed_pending(n);
        let in_pages = self.model.feed_in_pages(n);
        prop_assert!(
            read.users.len() <= max,
            "{}: {} users",
            what,
            read.users.len()
        );
        if read.full || in_pages {
            prop_assert!(read.full, "{}: the full list stopped before its end", what);
            prop_assert_eq!(read.reason, Some(FullReason::LogPruned), "{}: reason", what);
            prop_assert!(
                in_pages || self.feed_may_be_pruned(n),
                "{}: full, but no change it has not read may be pruned; pending {:?}",
                what,
                pending
            );
            let (exp, more) = self.model.feed_full_page(n, max);
            self.reads().same_list(&what, &read.users, &exp)?;
            prop_assert_eq!(read.more, more, "{}: more of the full list", what);
            return Ok(());
        }
        prop_assert!(read.reason.is_none(), "{}: reason without full", what);
        if let Some((k, e)) = self.pending_pruned_by_capacity(&pending) {
            return Err(fail(format!(
                "{what}: not full, but the latest change of {k:?} (#{}) was pruned",
                e.change
            )));
        }
        let got_keys: Vec<K> = read.users.iter().map(|(k, _)| k.clone()).collect();
        let exp: ModelFeedRead<K> = self.model.feed_read(n, max, &got_keys);
        self.reads().same_list(
            &format!("{what}, pending {pending:?}"),
            &read.users,
            &exp.users,
        )?;
        prop_assert_eq!(read.more, exp.more, "{}: more; pending {:?}", what, pending);
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
        pending: &'a [(K, Expected)],
    ) -> Option<&'a (K, Expected)> {
        let pruned = self.pruned_by_capacity();
        let edge = self.model.log[pruned.checked_sub(1)?].at;
        pending
            .iter()
            .find(|(_, e)| self.model.log[e.change - 1].at < edge)
    }

    /// Compares every read the store offers with the model but paging from one key and the
    /// deltas: `len`, each user's presence, primary source and presence from each source,
    /// `get_many` (of every user, some twice, and `also_ask`), the registries and paging walks.
    pub fn check_reads(&mut self, step: usize, also_ask: &[K]) -> TestResult {
        let keys = self.keys();
        prop_assert_eq!(self.store.len(), self.model.len(), "len");
        prop_assert_eq!(self.store.is_empty(), self.model.is_empty(), "is_empty");
        let sources = self.all_sources();
        for k in &keys {
            match (self.store.get(k), self.model.get(k)) {
                (Some(got), Some(exp)) => self.reads().same("get", k, &got, &exp)?,
                (None, None) => {}
                (got, exp) => return Err(fail(format!("get {k:?}: store {got:?}, model {exp:?}"))),
            }
            let primary = self.store.primary_source(k);
            let exp_primary = self.model.primary_source(k);
            prop_assert_eq!(
                primary.as_ref().map(SourceId::as_str),
                exp_primary.as_deref(),
                "primary_source({:?})",
                k
            );
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
        asked.extend([keys[3].clone(), keys[0].clone(), keys[3].clone()]);
        asked.extend(also_ask.iter().cloned());
        let got = self.store.get_many(&asked);
        let exp = self.model.get_many(&asked);
        self.reads().same_list("get_many", &got, &exp)?;

        // The registries.
        for include_deactivated in [false, true] {
            let got: Vec<(String, SystemPresence, bool)> = self
                .store
                .definitions()
                .into_iter()
                .filter(|d| include_deactivated || !d.deactivated)
                .map(|d| (d.id.as_str().to_owned(), d.system_presence, d.deactivated))
                .collect();
            let exp = self.model.definition_list(include_deactivated);
            prop_assert_eq!(got, exp, "definitions({})", include_deactivated);
        }
        let got: Vec<(String, bool)> = self
            .store
            .sources()
            .into_iter()
            .map(|s| (s.id.as_str().to_owned(), s.deactivated))
            .collect();
        prop_assert_eq!(got, self.model.source_list(), "sources()");

        // Paging walks, both filters, with a small limit that varies by step.
        let limit = 1 + step % self.setup.pages.1.min(4);
        for include_offline in [true, false] {
            self.reads().walk(limit, include_offline)?;
        }
        Ok(())
    }

    /// How many of the oldest changes the store has dropped for its log capacity (only set up
    /// with one shard and no window pruning, where this is exact). A restored store's log holds
    /// none of the changes before the restore, so those count as dropped too.
    pub fn pruned_by_capacity(&self) -> usize {
        if self.setup.log_capacity == BIG_LOG {
            return 0;
        }
        assert_eq!(self.setup.shards, 1);
        let restored = self.model.restored.map_or(0, |r| r.changes);
        let over = self.model.log.len().saturating_sub(self.setup.log_capacity);
        restored.max(over)
    }

    /// At the end: reads every feed until nothing is left, with a small `max`, so that every
    /// change is covered, and checks the feed is then empty.
    pub fn drain_feeds(&mut self) -> TestResult {
        for i in 0..self.feeds.len() {
            if !self.model.feeds.contains_key(&self.feeds[i].1) {
                continue;
            }
            // Pages of the full list, if the feed is in them, then what changed since.
            for _ in 0..=2 * usize::from(USERS) {
                self.read_feed(i, 2)?;
                let n = self.feeds[i].1;
                if !self.model.feed_in_pages(n) && self.model.feed_pending(n).is_empty() {
                    break;
                }
            }
            let r = self
                .store
                .read_feed(&self.feeds[i].0, 2)
                .map_err(|e| fail(format!("draining feed #{i}: {e}")))?;
            prop_assert!(
                r.users.is_empty() && !r.more && !r.full,
                "feed #{} not empty once drained: {:?}",
                i,
                r
            );
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
