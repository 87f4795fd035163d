//! A naive, sequential reference model of `PresenceStore`: one `BTreeMap` of users and one
//! `Vec` of every logged change, no shards, no wheel, no pruning, no cleverness. Tests drive the
//! store and the model with the same operations and compare what they answer.
//!
//! The model owns its clock (`now`, in ms): advance it together with the store's `ManualClock`,
//! and only forward. It cannot predict the store's per-shard `version` numbers; instead every
//! expected presence carries the model's global change number (`Expected::change`), and
//! [`Versions`] checks that the store's versions of each user grow exactly when those do.
//!
//! Include it from a test file with `mod model;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Bound;

use presence_store::{resolve, Activity, Category, FullReason, Presence, SetMode, StoreConfig};

/// The fields of a presence the model predicts exactly (everything but `version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visible {
    pub category: Category,
    pub requested: Category,
    pub activity: Activity,
    pub updated_at: u64,
}

/// What the store should answer for one user: its visible state, and the number of the logged
/// change that produced it (1-based index into `Model::log`), which orders its versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A known user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserState {
    pub requested: Category,
    pub category: Category,
    pub activity: Activity,
    pub sessions: BTreeMap<u64, Session>,
}

impl UserState {
    fn fresh() -> Self {
        UserState {
            requested: Category::Undefined,
            category: Category::Offline,
            activity: Activity::Offline,
            sessions: BTreeMap::new(),
        }
    }
}

/// One logged change: which user, when, and the user's visible state after it (a removal logs
/// the tombstone: `Offline`, `Undefined`, `Offline`).
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

/// The reference model.
#[derive(Clone, Debug)]
pub struct Model<K> {
    pub config: ModelConfig,
    /// The clock, in ms.
    pub now: u64,
    pub users: BTreeMap<K, UserState>,
    pub log: Vec<Change<K>>,
}

impl<K: Ord + Clone + Debug> Model<K> {
    pub fn new(config: &StoreConfig, now: u64) -> Self {
        Model {
            config: config.into(),
            now,
            users: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    // ---- writes ----

    pub fn set(&mut self, key: &K, category: Category, mode: SetMode) -> Expected {
        let added = self.add_if_unknown(key);
        let user = self.users.get_mut(key).unwrap();
        let before = (user.requested, user.category);
        user.requested = category;
        user.category = match mode {
            SetMode::Hard => category,
            SetMode::Soft => resolve(category, user.activity),
        };
        if added || before != (user.requested, user.category) {
            self.commit(key);
        }
        self.get(key).unwrap()
    }

    pub fn heartbeat(&mut self, key: &K, session: u64, activity: Activity) -> Expected {
        let added = self.add_if_unknown(key);
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
        let changed = self.refresh_activity(key);
        if added || changed {
            self.commit(key);
        }
        self.get(key).unwrap()
    }

    pub fn disconnect(&mut self, key: &K, session: u64) -> Result<Expected, UnknownUser> {
        let user = self.users.get_mut(key).ok_or(UnknownUser)?;
        user.sessions.remove(&session);
        if self.refresh_activity(key) {
            self.commit(key);
        }
        Ok(self.get(key).unwrap())
    }

    pub fn remove(&mut self, key: &K) -> Option<Expected> {
        let old = self.get(key)?;
        self.users.remove(key);
        self.log.push(Change {
            key: key.clone(),
            at: self.now,
            state: Visible {
                category: Category::Offline,
                requested: Category::Undefined,
                activity: Activity::Offline,
                updated_at: self.now,
            },
        });
        Some(old)
    }

    /// Idles and expires sessions at `now`; returns how many sessions it idled or removed.
    pub fn sweep(&mut self) -> usize {
        let (now, idle_after, ttl) = (self.now, self.config.idle_after, self.config.session_ttl);
        let mut count = 0;
        let keys: Vec<K> = self.users.keys().cloned().collect();
        for key in keys {
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
            if self.refresh_activity(&key) {
                self.commit(&key);
            }
        }
        count
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
            visible: change.state,
            change: i + 1,
        })
    }

    pub fn get(&self, key: &K) -> Option<Expected> {
        let user = self.users.get(key)?;
        let expected = self.latest(key).expect("a known user has a logged change");
        let v = expected.visible;
        assert_eq!(
            (v.category, v.requested, v.activity),
            (user.category, user.requested, user.activity),
            "model: a visible change of {key:?} was not logged"
        );
        Some(expected)
    }

    pub fn get_many(&self, keys: &[K]) -> Vec<(K, Expected)> {
        keys.iter()
            .filter_map(|k| Some((k.clone(), self.get(k)?)))
            .collect()
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
            .filter(|(_, u)| include_offline || u.category != Category::Offline)
            .map(|(k, _)| (k.clone(), self.get(k).unwrap()));
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
                    visible: self.log[i].state,
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
            .iter()
            .filter(|(_, u)| u.category != Category::Offline)
            .map(|(k, _)| (k.clone(), self.get(k).unwrap()))
            .collect();
        ModelDelta {
            users,
            full: true,
            reason: Some(reason),
        }
    }

    // ---- internals ----

    fn add_if_unknown(&mut self, key: &K) -> bool {
        if self.users.contains_key(key) {
            return false;
        }
        self.users.insert(key.clone(), UserState::fresh());
        true
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

    fn commit(&mut self, key: &K) {
        let user = &self.users[key];
        self.log.push(Change {
            key: key.clone(),
            at: self.now,
            state: Visible {
                category: user.category,
                requested: user.requested,
                activity: user.activity,
                updated_at: self.now,
            },
        });
    }
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

    /// Compares a presence the store gave for `key` with what the model expects.
    pub fn check(&mut self, key: &K, got: &Presence, expected: &Expected) -> Result<(), String> {
        let v = &expected.visible;
        if (got.category, got.requested, got.activity, got.updated_at)
            != (v.category, v.requested, v.activity, v.updated_at)
        {
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
