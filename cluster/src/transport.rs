//! The [`Transport`] trait: what replication needs from a broker, so that another broker (NATS
//! JetStream) can follow Redis Streams behind the same interface.

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// A position in the shared log, as the broker names it (Redis: a stream entry id such as
/// `1700000000000-0`). [`Position::start`] is before every entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(pub String);

impl Position {
    /// Before the first entry.
    pub fn start() -> Self {
        Position("0-0".to_owned())
    }

    /// The broker's wall-clock time of the entry, in ms, where the position carries one.
    pub fn millis(&self) -> Option<u64> {
        self.0.split('-').next()?.parse().ok()
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A broker failure: unreachable, a reply not understood, a timeout. Replication retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError(pub String);

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "broker: {}", self.0)
    }
}

impl std::error::Error for TransportError {}

/// The result of a transport call.
pub type TransportResult<T> = Result<T, TransportError>;

/// What replication needs from a broker: one shared, ordered, trimmed log of opaque entries,
/// per-node liveness with a time to live, an epoch that changes when the broker loses its data,
/// and one snapshot slot for joiners when the log was trimmed.
pub trait Transport: Send + Sync + 'static {
    /// Appends one entry to the log, trimming it to about its configured length.
    fn publish(&self, entry: Vec<u8>) -> impl Future<Output = TransportResult<Position>> + Send;

    /// Up to `max` entries after `after`, waiting up to `block` for the first one.
    fn read(
        &self,
        after: &Position,
        max: usize,
        block: Duration,
    ) -> impl Future<Output = TransportResult<Vec<(Position, Vec<u8>)>>> + Send;

    /// The last entry's position, if the log has any.
    fn head(&self) -> impl Future<Output = TransportResult<Option<Position>>> + Send;

    /// If entries were trimmed from the log, the first position it still holds (everything
    /// before it is gone).
    fn trimmed_before(&self) -> impl Future<Output = TransportResult<Option<Position>>> + Send;

    /// Marks `node` alive for `ttl`; `false` if its mark had lapsed (or never was), so others
    /// may have declared it down.
    fn refresh(
        &self,
        node: &str,
        ttl: Duration,
    ) -> impl Future<Output = TransportResult<bool>> + Send;

    /// Which of `nodes` are alive (in the same order).
    fn alive(&self, nodes: &[String]) -> impl Future<Output = TransportResult<Vec<bool>>> + Send;

    /// Every node that marked itself alive lately (long enough ago that every node has had
    /// time to notice it lapse).
    fn members(&self) -> impl Future<Output = TransportResult<Vec<String>>> + Send;

    /// The broker's data epoch: created if missing. A different epoch than before means the
    /// broker lost its data (a restart without persistence).
    fn epoch(&self, fresh: &str) -> impl Future<Output = TransportResult<String>> + Send;

    /// Stores the snapshot taken at `at`, if no newer one is there.
    fn put_snapshot(
        &self,
        at: &Position,
        snapshot: Vec<u8>,
    ) -> impl Future<Output = TransportResult<()>> + Send;

    /// The latest snapshot and the position it was taken at.
    fn snapshot(&self)
        -> impl Future<Output = TransportResult<Option<(Position, Vec<u8>)>>> + Send;
}
