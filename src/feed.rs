//! Following changes without polling the whole list: named feeds (Symphony's presence feeds),
//! read up to N changes at a time. (Push subscriptions are in `subscription.rs`.)
//!
//! A feed rides the change log: it is a cursor the store keeps for the client, and each read
//! resumes exactly where the previous one stopped. A feed that falls behind what the log holds
//! delivers the full list instead, in pages of at most the read's `max`, and then resumes
//! exact reads from the cursor of its first page, so no change made during the pages is lost
//! (the guarantee of paging, made for feeds).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::{Cursor, Error, FullReason, Presence};

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

    /// Reads a feed id; anything but 16 hex digits is [`Error::InvalidFeedId`].
    ///
    /// ```
    /// use presence_store::{Error, FeedId};
    ///
    /// assert!("00000000000000ff".parse::<FeedId>().is_ok());
    /// assert!(matches!("nope".parse::<FeedId>(), Err(Error::InvalidFeedId { .. })));
    /// ```
    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidFeedId {
            feed: s.chars().take(Error::ECHO_LIMIT).collect(),
        };
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        u64::from_str_radix(s, 16)
            .map(FeedId)
            .map_err(|_| invalid())
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

/// What one read of a feed returns: at most the read's `max` users.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FeedRead<K> {
    /// Users that changed since the previous read, each once with its latest state, oldest
    /// change first. When `full`, one page of every user not offline, sorted by key.
    pub users: Vec<(K, Presence)>,
    /// Whether the feed fell behind what the log holds, so `users` is a page of the full list
    /// (the reads that follow carry the next pages until `more` is false).
    pub full: bool,
    /// Why the read is full; `None` when it is not.
    pub reason: Option<FullReason>,
    /// Whether more was waiting past `max` (changes, or pages of the full list): read again.
    pub more: bool,
}

/// One feed's state: where its reader is, and when it last read.
#[derive(Debug)]
pub(crate) struct Feed<K> {
    /// Where exact reads go on from; while `full` pages are read, the first page's cursor.
    pub(crate) cursor: Cursor,
    pub(crate) last_read: u64,
    /// While the full list is delivered page by page: where the next page starts.
    pub(crate) full: Option<FullPages<K>>,
}

/// Where a feed is in delivering the full list.
#[derive(Debug)]
pub(crate) struct FullPages<K> {
    /// The first key of the next page.
    pub(crate) next: K,
    /// Why the feed fell behind.
    pub(crate) reason: FullReason,
}

/// The store's feeds. Each sits behind its own lock, so one slow read holds up no other feed.
#[derive(Debug)]
pub(crate) struct Feeds<K> {
    feeds: Mutex<HashMap<FeedId, Arc<Mutex<Feed<K>>>>>,
    next: AtomicU64,
}

impl<K> Default for Feeds<K> {
    fn default() -> Self {
        Feeds {
            feeds: Mutex::default(),
            next: AtomicU64::new(0),
        }
    }
}

impl<K> Feeds<K> {
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
            full: None,
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
            full: None,
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

    pub(crate) fn get(&self, id: &FeedId) -> Result<Arc<Mutex<Feed<K>>>, Error> {
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
