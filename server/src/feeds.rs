//! Who owns which presence feed, under which public id.
//!
//! The store names feeds with its own sequential [`FeedId`]; the server hands out a random
//! public id instead ([`crate::secret::random_id`], 128 bits) and keeps here which account owns
//! it. A feed is reachable only by its owner: any other account, like an id never issued, gets
//! 404, so an id neither leaks nor can be used by whoever learns it. Each account owns at most
//! `max_feeds_per_account` feeds (the store caps the total), so one account cannot use up
//! everyone's share.
//!
//! A feed unread for the store's expiry is dropped by the store's sweep; the table forgets it
//! the same way (its owner's next create prunes it, a read of it finds it gone).
//!
//! Locks: one mutex over the table, held for O(1) work (O(cap) when an account creates).

use std::collections::HashMap;

use parking_lot::Mutex;
use presence_store::{Error, FeedId};
use serde::{Deserialize, Serialize};

use super::accounts::AccountDialect;
use super::secret::{random_id, NoEntropy};
use super::Store;

/// An account, as feeds are owned.
pub type Owner = (AccountDialect, String);

/// One owned feed.
#[derive(Debug)]
struct Owned {
    owner: Owner,
    feed: FeedId,
    /// Ms of its creation or last read, to forget it when the store's sweep drops it.
    last_read: u64,
}

/// One owned feed as the data directory keeps it, so a feed outlives a restart with its id
/// and its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedFeed {
    /// The id its owner knows.
    pub id: String,
    /// The owner's dialect.
    pub dialect: AccountDialect,
    /// The owner's account.
    pub account: String,
    /// The store's feed.
    pub feed: FeedId,
}

/// Why a feed could not be created.
#[derive(Debug)]
pub enum CreateError {
    /// The account owns its most feeds already.
    AccountFull {
        /// The cap.
        max: usize,
    },
    /// No randomness for the id.
    NoEntropy(NoEntropy),
    /// The store refused (its total cap).
    Store(Error),
}

/// The owner table.
#[derive(Debug, Default)]
pub struct Feeds {
    by_id: Mutex<HashMap<String, Owned>>,
}

impl Feeds {
    /// Creates a feed in `store` for `owner` at `now`, if the owner is under `max_per_account`
    /// (after forgetting its feeds the store has expired, `expiry_ms` after their last read).
    pub fn create(
        &self,
        store: &Store,
        owner: Owner,
        now: u64,
        max_per_account: usize,
        expiry_ms: u64,
    ) -> Result<String, CreateError> {
        let public = random_id().map_err(CreateError::NoEntropy)?;
        let mut table = self.by_id.lock();
        let stale: Vec<String> = table
            .iter()
            .filter(|(_, o)| o.owner == owner && now.saturating_sub(o.last_read) >= expiry_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(owned) = table.remove(&id) {
                // The store may have dropped it already; either way it is gone.
                let _ = store.delete_feed(&owned.feed);
            }
        }
        let mine = table.values().filter(|o| o.owner == owner).count();
        if mine >= max_per_account {
            return Err(CreateError::AccountFull {
                max: max_per_account,
            });
        }
        let feed = store.create_feed().map_err(CreateError::Store)?;
        table.insert(
            public.clone(),
            Owned {
                owner,
                feed,
                last_read: now,
            },
        );
        Ok(public)
    }

    /// The store's feed behind `public` if `owner` owns it, marking it read at `now`.
    pub fn read(&self, owner: &Owner, public: &str, now: u64) -> Option<FeedId> {
        let mut table = self.by_id.lock();
        let owned = table.get_mut(public).filter(|o| o.owner == *owner)?;
        owned.last_read = now;
        Some(owned.feed)
    }

    /// Forgets `public` if `owner` owns it; the store's feed it was.
    pub fn remove(&self, owner: &Owner, public: &str) -> Option<FeedId> {
        let mut table = self.by_id.lock();
        if table.get(public).is_some_and(|o| o.owner == *owner) {
            table.remove(public).map(|o| o.feed)
        } else {
            None
        }
    }

    /// Every owned feed, by id, to save.
    pub fn saved(&self) -> Vec<SavedFeed> {
        let table = self.by_id.lock();
        let mut saved: Vec<SavedFeed> = table
            .iter()
            .map(|(id, o)| SavedFeed {
                id: id.clone(),
                dialect: o.owner.0,
                account: o.owner.1.clone(),
                feed: o.feed,
            })
            .collect();
        saved.sort_by(|a, b| a.id.cmp(&b.id));
        saved
    }

    /// Brings back what [`Feeds::saved`] kept: each feed into `store` (whose first read is
    /// then the full list, as a restored store has a new log) and its owner into the table,
    /// as read at `now`.
    pub fn restore(&self, store: &Store, saved: &[SavedFeed], now: u64) -> Result<(), String> {
        let mut table = self.by_id.lock();
        for f in saved {
            store
                .restore_feed(f.feed)
                .map_err(|e| format!("cannot restore feed {}: {e}", f.feed))?;
            let owned = Owned {
                owner: (f.dialect, f.account.clone()),
                feed: f.feed,
                last_read: now,
            };
            table.insert(f.id.clone(), owned);
        }
        Ok(())
    }

    /// Feeds owned, by anyone.
    pub fn len(&self) -> usize {
        self.by_id.lock().len()
    }

    /// Whether no feed is owned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
