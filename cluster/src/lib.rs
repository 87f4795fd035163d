//! N instances of a presence service, one presence view: replication of
//! [`presence_store`] instances over Redis Streams.
//!
//! Each instance embeds its own store and joins a [`Cluster`] under a name. It owns the
//! sessions connected to it and the writes made through it; its [`Replica`] stamps each with a
//! hybrid logical clock and queues it, and the cluster's tasks publish the queue as batched
//! entries on one Redis stream (`XADD ... MAXLEN ~`), read the stream (`XREAD BLOCK`, batched)
//! and apply the other nodes' events. See `presence_store::replica` for the rules that make any
//! order of delivery converge.
//!
//! # Consistency
//!
//! Eventual: a write is visible on its own node at once, and on the others when they have read
//! it (milliseconds; see BENCHMARKS.md). User-set state is last-writer-wins by (hybrid clock,
//! node id); sessions belong to their node. Organization state (definitions, sources, and the
//! host's settings through [`Replica::set_setting`]) is last-writer-wins per item, deletions as
//! tombstones, and rides the same log, snapshot and republishing as the rest, so a joiner gets
//! it. Cursors, feeds, subscriptions and tokens stay per instance: each store's cursor is its own, and a cursor of another instance gets the full
//! answer (`FullReason::ForeignCursor`), while deltas and feeds include the changes made
//! through other nodes, as they are applied here.
//!
//! # Failures
//!
//! - **A node dies**: its liveness key (refreshed every second, 3 s to live) lapses; every
//!   other node drops its sessions, each drop a logged change, within about 4 s. What it set
//!   stays. Restarted, it is a new node (`name/incarnation`) that catches up like a joiner.
//! - **A node is cut off from the broker**: it keeps serving its own view and keeps its
//!   unpublished writes, in order; the others drop its sessions once its key lapses. On
//!   healing, it publishes what it kept, finds its key had lapsed and republishes its sessions
//!   (original stamps, so nothing newer is overwritten), again a few seconds later in case a
//!   node read them before it took this one back up.
//! - **The broker restarts and lost its data**: the epoch key is gone; every node notices
//!   within a second, reads the new stream from its start and republishes every register it
//!   holds and its own sessions, so a node joining later learns them too.
//! - **A node joins**: it loads the snapshot if one is stored, reads the stream from there (or
//!   from its start), drops the sessions of nodes no longer alive, and is then
//!   [ready](Cluster::wait_ready). Nodes write a snapshot whenever the stream was trimmed past
//!   the stored one.
//! - **A reader lags** (paused, slow): the stream keeps its entries up to `MAXLEN`; past that,
//!   the snapshot covers what was trimmed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod codec;
mod node;
pub mod redis;
pub mod transport;

pub use node::{node_id, Cluster, ClusterConfig, Metrics, MetricsSnapshot};
pub use presence_store::Replica;
pub use redis::RedisStreams;
pub use transport::{Position, Transport, TransportError};

/// What can stop a node from joining.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterError {
    /// The broker failed.
    Transport(TransportError),
    /// A stored entry or snapshot could not be read.
    Codec(codec::CodecError),
    /// The configuration is invalid (e.g. a name that makes no node id).
    Config(String),
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Transport(e) => e.fmt(f),
            ClusterError::Codec(e) => e.fmt(f),
            ClusterError::Config(e) => write!(f, "invalid cluster configuration: {e}"),
        }
    }
}

impl std::error::Error for ClusterError {}

impl From<TransportError> for ClusterError {
    fn from(e: TransportError) -> Self {
        ClusterError::Transport(e)
    }
}

impl From<codec::CodecError> for ClusterError {
    fn from(e: codec::CodecError) -> Self {
        ClusterError::Codec(e)
    }
}
