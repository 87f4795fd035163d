//! Following changes without polling the whole list: named feeds (Symphony's presence feeds),
//! read up to N changes at a time, and push subscriptions over bounded channels.
//!
//! Both ride the change log. A feed is a cursor the store keeps for the client: each read
//! resumes exactly where the previous one stopped. A subscription is fed by the writers
//! themselves, under the shard lock, with a non-blocking send; when its channel is full it stops
//! receiving and, once drained, yields one [`Event::Lagged`] whose cursor covers everything it
//! missed. Invariant: `Subscriber::positions[s]` is at or before the first change of shard `s`
//! that the subscriber has not been sent, so a delta from it loses nothing.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use parking_lot::Mutex;

use crate::{Cursor, Error, FullReason, Key, Presence};

/// The name of a presence feed, written as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeedId(u64);

impl fmt::Display for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for FeedId {
    type Err = Error;

    /// Reads a feed id; anything but 16 hex digits is [`Error::UnknownFeed`].
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() != 16 {
            return Err(Error::unknown_feed(s));
        }
        u64::from_str_radix(s, 16)
            .map(FeedId)
            .map_err(|_| Error::unknown_feed(s))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for FeedId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for FeedId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What one read of a feed returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FeedRead<K> {
    /// Users that changed since the previous read, each once with its latest state, oldest
    /// change first. When `full`, every user not offline, sorted by key.
    pub users: Vec<(K, Presence)>,
    /// Whether the feed fell behind what the log holds, so `users` is the full list.
    pub full: bool,
    /// Why the read is full; `None` when it is not.
    pub reason: Option<FullReason>,
    /// Whether more changes were waiting past `max`: read again for them.
    pub more: bool,
}

/// One feed's state: where its reader is, and when it last read.
#[derive(Debug)]
pub(crate) struct Feed {
    pub(crate) cursor: Cursor,
    pub(crate) last_read: u64,
}

/// The store's feeds. Each sits behind its own lock, so one slow read holds up no other feed.
#[derive(Debug, Default)]
pub(crate) struct Feeds {
    feeds: Mutex<HashMap<FeedId, Arc<Mutex<Feed>>>>,
    next: AtomicU64,
}

impl Feeds {
    /// Adds a feed at `cursor`, unless `max` feeds exist.
    pub(crate) fn create(
        &self,
        cursor: Cursor,
        now: u64,
        max: usize,
        salt: u64,
    ) -> Result<FeedId, Error> {
        let mut feeds = self.feeds.lock();
        if feeds.len() >= max {
            return Err(Error::TooManyFeeds { max });
        }
        // Ids are unguessable-looking but unique: a counter mixed with the store's identity.
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = FeedId(crate::id::mix(n ^ salt));
        let feed = Feed {
            cursor,
            last_read: now,
        };
        feeds.insert(id, Arc::new(Mutex::new(feed)));
        Ok(id)
    }

    /// Adds a feed under an id an earlier instance gave it, unless `max` feeds exist. An id
    /// that exists already is left as it is.
    pub(crate) fn restore(
        &self,
        id: FeedId,
        cursor: Cursor,
        now: u64,
        max: usize,
    ) -> Result<(), Error> {
        let mut feeds = self.feeds.lock();
        if feeds.contains_key(&id) {
            return Ok(());
        }
        if feeds.len() >= max {
            return Err(Error::TooManyFeeds { max });
        }
        let feed = Feed {
            cursor,
            last_read: now,
        };
        feeds.insert(id, Arc::new(Mutex::new(feed)));
        Ok(())
    }

    /// Every feed's id, in id order.
    pub(crate) fn ids(&self) -> Vec<FeedId> {
        let mut ids: Vec<FeedId> = self.feeds.lock().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn get(&self, id: &FeedId) -> Result<Arc<Mutex<Feed>>, Error> {
        let feeds = self.feeds.lock();
        let feed = feeds.get(id).ok_or_else(|| Error::unknown_feed(id))?;
        Ok(Arc::clone(feed))
    }

    pub(crate) fn delete(&self, id: &FeedId) -> Result<(), Error> {
        match self.feeds.lock().remove(id) {
            Some(_) => Ok(()),
            None => Err(Error::unknown_feed(id)),
        }
    }

    /// Drops feeds unread for `expiry` ms or more at `now`.
    pub(crate) fn expire(&self, now: u64, expiry: u64) {
        self.feeds
            .lock()
            .retain(|_, f| now.saturating_sub(f.lock().last_read) < expiry);
    }
}

/// What a [`Subscription`] receives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event<K> {
    /// A user's presence changed (or the user was removed: then it shows `Offline`).
    Change {
        /// The user.
        user: K,
        /// Its presence after the change.
        presence: Presence,
    },
    /// The subscriber fell behind and changes were dropped: call
    /// [`changes_since`](crate::PresenceStore::changes_since)`(Since::Cursor(resume))` to
    /// catch up. Events keep coming after this one; some may repeat what the delta holds.
    Lagged {
        /// A cursor before every change this subscriber was not sent.
        resume: Cursor,
    },
}

/// What to subscribe to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeOptions<K> {
    /// Events the channel holds before the subscriber lags (at least 1).
    pub capacity: usize,
    /// Only these users' changes, or every user's when `None`.
    pub users: Option<Vec<K>>,
}

impl<K> Default for SubscribeOptions<K> {
    fn default() -> Self {
        SubscribeOptions {
            capacity: 1024,
            users: None,
        }
    }
}

/// The writers' side of a subscription, held by every shard.
#[derive(Debug)]
pub(crate) struct Subscriber<K> {
    tx: Sender<Event<K>>,
    users: Option<HashSet<K, ahash::RandomState>>,
    /// Per shard, the sequence of the last change sent or passed over.
    positions: Box<[AtomicU64]>,
    lagged: AtomicBool,
    closed: AtomicBool,
    store: u64,
}

impl<K: Key> Subscriber<K> {
    /// Offers one change of shard `shard` (called under that shard's lock).
    pub(crate) fn offer(
        &self,
        shard: usize,
        seq: u64,
        user: &K,
        presence: impl FnOnce() -> Presence,
    ) {
        if self.lagged.load(Ordering::Acquire) {
            return;
        }
        if self.users.as_ref().is_none_or(|u| u.contains(user)) {
            let event = Event::Change {
                user: user.clone(),
                presence: presence(),
            };
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.lagged.store(true, Ordering::Release);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
        self.positions[shard].store(seq, Ordering::Release);
    }

    /// Starts offering shard `shard`'s changes after `seq`.
    pub(crate) fn start_at(&self, shard: usize, seq: u64) {
        self.positions[shard].store(seq, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// A live stream of presence changes. Dropping it unsubscribes.
///
/// Writers never block on it: a subscriber that falls `capacity` events behind receives one
/// [`Event::Lagged`] once it has drained the rest, and resyncs from its cursor.
#[derive(Debug)]
pub struct Subscription<K> {
    inner: Arc<Subscriber<K>>,
    rx: Receiver<Event<K>>,
}

impl<K: Key> Subscription<K> {
    /// Wires a subscription whose positions start at `start` (the store's cursor).
    pub(crate) fn new(options: SubscribeOptions<K>, start: &Cursor) -> (Self, Arc<Subscriber<K>>) {
        let (tx, rx) = crossbeam_channel::bounded(options.capacity.max(1));
        let inner = Arc::new(Subscriber {
            tx,
            users: options.users.map(|u| u.into_iter().collect()),
            positions: start.seqs.iter().map(|&s| AtomicU64::new(s)).collect(),
            lagged: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            store: start.store,
        });
        (
            Subscription {
                inner: Arc::clone(&inner),
                rx,
            },
            inner,
        )
    }

    /// The cursor up to which this subscriber has been sent every change (or passed over those
    /// of users it does not follow). Page the users first, then subscribe: a delta from this
    /// cursor fills the gap.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            store: self.inner.store,
            seqs: self
                .inner
                .positions
                .iter()
                .map(|p| p.load(Ordering::Acquire))
                .collect(),
        }
    }

    /// The next event, waiting for one. `None` once the store is gone.
    pub fn recv(&self) -> Option<Event<K>> {
        if let Some(e) = self.try_recv() {
            return Some(e);
        }
        self.rx.recv().ok()
    }

    /// The next event if one is ready.
    pub fn try_recv(&self) -> Option<Event<K>> {
        match self.rx.try_recv() {
            Ok(e) => Some(e),
            Err(TryRecvError::Empty) => self.take_lag(),
            Err(TryRecvError::Disconnected) => None,
        }
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event<K>> {
        if let Some(e) = self.try_recv() {
            return Some(e);
        }
        self.rx.recv_timeout(timeout).ok()
    }

    /// Once drained after lagging: the `Lagged` event, and events flow again.
    fn take_lag(&self) -> Option<Event<K>> {
        if !self.inner.lagged.load(Ordering::Acquire) {
            return None;
        }
        let resume = self.cursor();
        self.inner.lagged.store(false, Ordering::Release);
        Some(Event::Lagged { resume })
    }
}

impl<K> Drop for Subscription<K> {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Relaxed);
    }
}
