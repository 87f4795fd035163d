//! [`StoreConfig`]: every tunable of the store in one place, with defaults that match the seeds
//! (Symphony's page of 1000, at most 5000; Rocket.Chat's 10-minute delta window).

use std::time::Duration;

use crate::Error;

/// How a [`PresenceStore`](crate::PresenceStore) is laid out and when its sessions and log age.
///
/// Build it from [`StoreConfig::default`] and the `with_*` setters; the store checks it with
/// [`StoreConfig::validate`] when it is created.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StoreConfig {
    /// Number of lock stripes; `0` picks `(4 x cores).next_power_of_two()`, as DashMap does.
    pub shards: usize,
    /// How far back a time-based delta may reach before the answer is the full list (10 minutes).
    pub delta_window: Duration,
    /// Most change-log entries kept per shard; past it the oldest are pruned.
    pub log_capacity: usize,
    /// Page size when a query gives no limit (1000).
    pub default_page: usize,
    /// Largest page a query may ask for (5000).
    pub max_page: usize,
    /// A session whose last active heartbeat is this old turns idle (60 s).
    pub idle_after: Duration,
    /// A session whose last heartbeat of any kind is this old is removed (120 s).
    pub session_ttl: Duration,
    /// Most presence feeds at once (1000).
    pub max_feeds: usize,
    /// A feed unread this long is dropped by `sweep` (1 hour). The store waits at least
    /// `delta_window`, so a feed read once per window never expires.
    pub feed_expiry: Duration,
    /// Longest status message, in bytes (1024).
    pub max_message_len: usize,
    /// Most sessions one user may have at once (64); a heartbeat that would open one more is
    /// [`Error::TooManySessions`]. Bounds what one caller can make the store hold, and the work
    /// of a sweep of that user.
    pub max_sessions_per_user: usize,
}

impl StoreConfig {
    /// The most shards a store may have.
    pub const MAX_SHARDS: usize = 1 << 16;

    /// Sets [`StoreConfig::shards`].
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Sets [`StoreConfig::delta_window`].
    pub fn with_delta_window(mut self, window: Duration) -> Self {
        self.delta_window = window;
        self
    }

    /// Sets [`StoreConfig::log_capacity`].
    pub fn with_log_capacity(mut self, entries_per_shard: usize) -> Self {
        self.log_capacity = entries_per_shard;
        self
    }

    /// Sets [`StoreConfig::default_page`] and [`StoreConfig::max_page`].
    pub fn with_page_limits(mut self, default_page: usize, max_page: usize) -> Self {
        self.default_page = default_page;
        self.max_page = max_page;
        self
    }

    /// Sets [`StoreConfig::idle_after`] and [`StoreConfig::session_ttl`].
    pub fn with_session_timeouts(mut self, idle_after: Duration, session_ttl: Duration) -> Self {
        self.idle_after = idle_after;
        self.session_ttl = session_ttl;
        self
    }

    /// Sets [`StoreConfig::max_feeds`] and [`StoreConfig::feed_expiry`].
    pub fn with_feeds(mut self, max_feeds: usize, feed_expiry: Duration) -> Self {
        self.max_feeds = max_feeds;
        self.feed_expiry = feed_expiry;
        self
    }

    /// Sets [`StoreConfig::max_message_len`].
    pub fn with_max_message_len(mut self, bytes: usize) -> Self {
        self.max_message_len = bytes;
        self
    }

    /// Sets [`StoreConfig::max_sessions_per_user`].
    ///
    /// ```
    /// use presence_store::{Activity, Error, PresenceStore, StoreConfig};
    ///
    /// let store: PresenceStore<u64> =
    ///     PresenceStore::new(StoreConfig::default().with_max_sessions_per_user(2));
    /// store.heartbeat(&7, 1, Activity::Active)?;
    /// store.heartbeat(&7, 2, Activity::Active)?;
    /// assert_eq!(
    ///     store.heartbeat(&7, 3, Activity::Active),
    ///     Err(Error::TooManySessions { max: 2 })
    /// );
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_max_sessions_per_user(mut self, max: usize) -> Self {
        self.max_sessions_per_user = max;
        self
    }

    /// Checks every field; returns the config unchanged if it is usable.
    ///
    /// Refuses more than [`StoreConfig::MAX_SHARDS`] shards, a zero window, log capacity,
    /// page size, idle time, TTL or session cap, a `max_page` below `default_page`, and
    /// durations of more than 2^32 ms (49 days), which no presence needs.
    pub fn validate(&self) -> Result<&Self, Error> {
        let invalid = |reason: String| Err(Error::InvalidConfig { reason });
        if self.shards > Self::MAX_SHARDS {
            return invalid(format!(
                "shards is {}, at most {} are allowed",
                self.shards,
                Self::MAX_SHARDS
            ));
        }
        if self.log_capacity == 0 {
            return invalid("log_capacity must be at least 1".into());
        }
        if self.max_sessions_per_user == 0 {
            return invalid("max_sessions_per_user must be at least 1".into());
        }
        if self.default_page == 0 {
            return invalid("default_page must be at least 1".into());
        }
        if self.max_page < self.default_page {
            return invalid(format!(
                "max_page {} is below default_page {}",
                self.max_page, self.default_page
            ));
        }
        for (name, d) in [
            ("delta_window", self.delta_window),
            ("idle_after", self.idle_after),
            ("session_ttl", self.session_ttl),
            ("feed_expiry", self.feed_expiry),
        ] {
            if d.as_millis() == 0 {
                return invalid(format!("{name} must be at least 1 ms"));
            }
            if d.as_millis() > u128::from(u32::MAX) {
                return invalid(format!("{name} is over 2^32 ms (49 days)"));
            }
        }
        Ok(self)
    }

    /// The number of shards this config gives, with `0` resolved to the automatic count.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            return self.shards;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores * 4).next_power_of_two().min(Self::MAX_SHARDS)
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            shards: 0,
            delta_window: Duration::from_secs(600),
            log_capacity: 1 << 18,
            default_page: 1000,
            max_page: 5000,
            idle_after: Duration::from_secs(60),
            session_ttl: Duration::from_secs(120),
            max_feeds: 1000,
            feed_expiry: Duration::from_secs(3600),
            max_message_len: 1024,
            max_sessions_per_user: 64,
        }
    }
}

/// Milliseconds in `d`, for durations [`StoreConfig::validate`] has accepted.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_seeds_and_is_valid() {
        let c = StoreConfig::default();
        assert_eq!((c.default_page, c.max_page), (1000, 5000));
        assert_eq!(c.delta_window, Duration::from_secs(600));
        assert!(c.validate().is_ok());
        assert!(c.shard_count().is_power_of_two());
    }

    #[test]
    fn nonsense_is_refused() {
        let d = StoreConfig::default;
        for bad in [
            d().with_delta_window(Duration::ZERO),
            d().with_log_capacity(0),
            d().with_max_sessions_per_user(0),
            d().with_page_limits(0, 10),
            d().with_page_limits(100, 10),
            d().with_shards(StoreConfig::MAX_SHARDS + 1),
            d().with_session_timeouts(Duration::ZERO, Duration::from_secs(1)),
            d().with_session_timeouts(Duration::from_secs(1), Duration::ZERO),
            d().with_session_timeouts(Duration::from_secs(1), Duration::from_secs(u64::MAX)),
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidConfig { .. })),
                "{bad:?}"
            );
        }
    }
}
