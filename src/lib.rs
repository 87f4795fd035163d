//! An in-memory presence store for chat and contact-center services: who is online, sorted pages
//! of everyone, and exactly what changed since you last looked.
//!
//! # The model
//!
//! Each user has a **requested** [`Category`] (what was last set for them, Symphony's eleven) and
//! an [`Activity`] aggregated from their **sessions** (devices or connections that heartbeat):
//! `Active` if any session is, `Idle` if sessions exist but none is active, `Offline` if none.
//! What others see is one pure function, [`resolve`]`(requested, activity)`: offline shows
//! `Offline`, an idle user who asked for `Available` (or nothing) shows `Away`, an active user who
//! asked for nothing shows `Available`, and otherwise the request shows. A [`SetMode::Soft`] set
//! (Symphony's `soft=true`) goes through `resolve`, so an offline user stays `Offline` until they
//! come online; a [`SetMode::Hard`] set shows at once and holds until the activity next changes.
//!
//! # The guarantees
//!
//! - **Deltas miss nothing.** Every visible change gets a sequence number in its shard's log. A
//!   [`Cursor`] is the vector of those numbers, so [`PresenceStore::changes_since`] from a cursor
//!   returns exactly the users changed after it, each once, with no clock involved. Time-based
//!   queries (Rocket.Chat's `from`) are answered from the same log.
//! - **Paging misses nothing.** A [`Page`] carries the cursor at which it was read. Page through
//!   every user, then ask for the changes since the *first* page's cursor: together they hold
//!   every user's latest state, even for users who changed mid-scan (the gap Symphony's docs
//!   warn about).
//! - **An honest fallback.** A delta older than the window (10 minutes by default), older than
//!   what the log still holds, or from another store's cursor answers with the full list and
//!   says why ([`FullReason`]).
//! - **No background threads.** Time comes from an injected [`Clock`]; idling and expiry happen
//!   in [`PresenceStore::sweep`], which you call. Tests drive time with [`ManualClock`].
//! - **No ghost sessions.** A session that stops heartbeating expires after `session_ttl`, and
//!   a user has at most `max_sessions_per_user` ([`Error::TooManySessions`] past it), each found
//!   by id in O(1).
//!
//! # How it works
//!
//! Keys hash to shards (lock stripes), each a cache-padded `RwLock` around the shard's records,
//! its change log and its session timer wheel. A write takes one shard's lock and touches
//! nothing shared with other shards (no global counter): the sequence is per shard and the
//! timestamp is read under the lock, clamped so each log is ordered by both. A delta walks each
//! log from the cursor (or binary-searches it by time) and keeps an entry only if it is its
//! record's latest change, so its cost follows the changes, not the users. A shard keeps its
//! records sorted by key (users added since the last compaction wait in a small ordered tail),
//! so a page reads records in sequence and merges the shards with a loser tree, under all read
//! locks, so its cursor is a snapshot. Compaction costs O(1) per added or removed user,
//! amortized: once those changes reach (records + log entries / 4) / 32 of a shard, the shard
//! sorts its records again under its write lock (a pause of O(shard's records + log) for that
//! shard's writers).
//! Changes that alter nothing visible (most heartbeats) are not logged and allocate nothing.
//! A [`Presence`] is 32 bytes: the rare details (status message, definition, source) sit behind
//! one shared pointer, built when they change, so reads copy no string and count no reference.
//!
//! # Quick start
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use presence_store::{
//!     Activity, Category, ManualClock, PageQuery, PresenceStore, SetMode, Since, StoreConfig,
//! };
//!
//! let clock = Arc::new(ManualClock::new(1_700_000_000_000));
//! let store: PresenceStore<u64> = PresenceStore::with_clock(StoreConfig::default(), clock.clone());
//!
//! // A soft set on an offline user waits until they come online.
//! store.set(&7, Category::Busy, SetMode::Soft)?;
//! assert_eq!(store.get(&7).unwrap().category, Category::Offline);
//! store.heartbeat(&7, 1, Activity::Active)?;
//! assert_eq!(store.get(&7).unwrap().category, Category::Busy);
//!
//! // Page through everyone, then follow the changes from the first page's cursor.
//! store.heartbeat(&3, 1, Activity::Active)?;
//! let page = store.page(&PageQuery::first().with_limit(100))?;
//! assert_eq!(page.items.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [3, 7]);
//! store.disconnect(&7, 1)?;
//! let delta = store.changes_since(&Since::Cursor(page.cursor));
//! assert_eq!(delta.users.len(), 1);
//! assert_eq!(delta.users[0].1.category, Category::Offline);
//!
//! // Sessions that stop heartbeating idle, then expire, when the host sweeps.
//! clock.advance(Duration::from_secs(60));
//! store.sweep();
//! assert_eq!(store.get(&3).unwrap().category, Category::Away);
//! # Ok::<(), presence_store::Error>(())
//! ```
//!
//! # Layers on the same log
//!
//! Everything below is a view of the one change log, so whatever changes through it shows in
//! pages, deltas, feeds and subscriptions alike:
//!
//! - **Feeds** ([`PresenceStore::create_feed`], [`read_feed`](PresenceStore::read_feed)):
//!   Symphony's presence feeds, a cursor the store keeps per reader, read `max` users at a time
//!   (a feed that fell behind the log gets the full list, `max` at a time, then resumes).
//! - **Subscriptions** ([`PresenceStore::subscribe`]): a queue per subscriber, bounded and grown
//!   on demand, fed by the writers without ever blocking them, read from a thread or awaited
//!   from a task on any runtime (a [`Subscription`] is a `futures_core::Stream`); a subscriber
//!   that falls behind gets one [`Event::Lagged`] with the cursor to resync from.
//! - **Status messages** ([`PresenceStore::set_message`]).
//! - **Presence definitions** ([`PresenceStore::set_definition`]): Genesys' system presences
//!   and organization definitions with localized labels, mapped to a [`Category`].
//! - **Presence sources** ([`PresenceStore::set_source_presence`],
//!   [`set_primary_source`](PresenceStore::set_primary_source)): a presence per source per user;
//!   others see the primary source's.
//! - **Replication** ([`Replica`], module [`replica`]): instances of a cluster share one view by
//!   exchanging stamped, idempotent events; the `presence-cluster` crate carries them over Redis
//!   Streams.
//! - **Snapshot and restore** (`serde` feature): `PresenceStore::snapshot` and
//!   `PresenceStore::restore` (or `restore_with_clock`), which, like
//!   [`PresenceStore::heartbeat_many`], adds many users at a fraction of their one-by-one cost.
//!
//! # Features
//!
//! - `serde`: `Serialize`/`Deserialize` for the public value types (a [`Cursor`] serializes as
//!   its token), snapshot/restore, and the `wire` module: the JSON models of Symphony, Rocket.Chat and
//!   Genesys Cloud and the mappings between them, which the server
//!   `presence-server` (`cargo run --release -p presence-server`) serves over one store.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod clock;
mod config;
mod definition;
mod error;
mod feed;
mod id;
mod log;
mod page;
mod presence;
pub mod replica;
mod session;
mod shard;
#[cfg(feature = "serde")]
mod snapshot;
mod source;
mod store;
mod subscription;
mod sync;
mod table;
#[cfg(feature = "serde")]
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::StoreConfig;
pub use definition::{Definition, DefinitionId, DefinitionUpdate, SystemPresence};
pub use error::Error;
pub use feed::{FeedId, FeedRead};
pub use log::{Cursor, Delta, FullReason, Since};
pub use page::{Page, PageQuery};
pub use presence::{resolve, Activity, Category, Presence, PresenceDetails, SetMode};
pub use replica::{Hlc, NodeId, Replica};
#[cfg(feature = "serde")]
pub use snapshot::{SessionSnapshot, Snapshot, SourcePresenceSnapshot, UserSnapshot};
pub use source::{Source, SourceId, SourceUpdate};
pub use store::{Key, PresenceStore};
pub use subscription::{Event, SubscribeOptions, SubscriberStats, Subscription};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
