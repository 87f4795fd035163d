//! Snapshot and restore (behind the `serde` feature): every user with its sessions, per-source
//! presences and primary source, plus the registered sources and organization definitions, as
//! plain data that serializes with any serde format.
//!
//! A snapshot is read shard by shard, each under its read lock, so each shard's users are one
//! consistent state even while writers run. A restored store is a new instance: cursors of the
//! old one get the full list (`ForeignCursor`), and time deltas reaching before the restore get
//! it too (`LogPruned`), since the restored log holds nothing older. Versions are kept, and each
//! shard's sequence resumes above every sequence the old store issued, so a user's version never
//! goes backwards, not even for a user removed before the snapshot.

use std::sync::Arc;

use crate::{Category, Definition, DefinitionId, Presence, Source, SourceId};

/// A whole store as data: what [`PresenceStore::snapshot`](crate::PresenceStore::snapshot)
/// returns and [`PresenceStore::restore`](crate::PresenceStore::restore) takes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot<K> {
    /// When it was taken, in ms since the Unix epoch.
    pub taken_at: u64,
    /// The highest change sequence any shard had issued. A restored store's sequences resume
    /// above it, so a user removed before the snapshot and added again after the restore gets a
    /// version above its removal's, which readers may have seen.
    #[serde(default)]
    pub sequence: u64,
    /// Every user, in key order within each shard.
    pub users: Vec<UserSnapshot<K>>,
    /// The registered sources (the built-in one included).
    pub sources: Vec<Source>,
    /// The organization's presence definitions (the system ones are built in).
    pub definitions: Vec<Definition>,
}

/// One user in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserSnapshot<K> {
    /// The user's key.
    pub user: K,
    /// The user's presence from the built-in source (with its version and time).
    pub own: Presence,
    /// The user's sessions.
    pub sessions: Vec<SessionSnapshot>,
    /// The primary source, when it is not the built-in one.
    pub primary: Option<SourceId>,
    /// Presences from other sources.
    pub sources: Vec<SourcePresenceSnapshot>,
}

/// One session in a [`UserSnapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionSnapshot {
    /// The host's id for the session.
    pub id: u64,
    /// Its last heartbeat, in ms since the Unix epoch.
    pub last_seen: u64,
    /// Whether it is active.
    pub active: bool,
}

/// A user's presence from a source other than the built-in one, in a [`UserSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourcePresenceSnapshot {
    /// The source.
    pub source: SourceId,
    /// The definition it set.
    pub definition: DefinitionId,
    /// The category that definition gave.
    pub category: Category,
    /// Its status message.
    pub message: Option<Arc<str>>,
    /// When it was set, in ms since the Unix epoch.
    pub updated_at: u64,
}
