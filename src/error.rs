//! The crate's one error type. Every bad input maps to a variant that says what was wrong and
//! what is allowed; no input makes the store panic.

use std::fmt;

/// Everything that can go wrong when calling the store with bad input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A page `limit` of 0 or over the configured maximum.
    InvalidLimit {
        /// The limit asked for.
        limit: usize,
        /// The largest limit allowed (`StoreConfig::max_page`).
        max: usize,
    },
    /// A cursor token that is not one this crate writes.
    InvalidCursor {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A category name that is none of the eleven.
    UnknownCategory {
        /// The name given (cut to a few dozen characters).
        value: String,
    },
    /// The user is not known to the store.
    UnknownUser {
        /// The user's key, as `Debug` prints it (cut to a few dozen characters).
        user: String,
    },
    /// More ids in one request than allowed.
    TooManyIds {
        /// How many were given.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// A [`StoreConfig`](crate::StoreConfig) field out of range.
    InvalidConfig {
        /// Which field, and why.
        reason: String,
    },
    /// A shard holds the most users it can address (2^32 - 2).
    CapacityExceeded,
    /// No feed has this id: it never existed, was deleted, or expired unread.
    UnknownFeed {
        /// The id given (cut to a few dozen characters).
        feed: String,
    },
    /// The store already has the most feeds its config allows.
    TooManyFeeds {
        /// `StoreConfig::max_feeds`.
        max: usize,
    },
    /// A status message longer than allowed.
    MessageTooLong {
        /// Its length in bytes.
        len: usize,
        /// `StoreConfig::max_message_len`.
        max: usize,
    },
}

impl Error {
    /// How many characters of a caller's input an error message echoes back.
    pub(crate) const ECHO_LIMIT: usize = 64;

    pub(crate) fn unknown_feed(feed: &(impl fmt::Display + ?Sized)) -> Self {
        Error::UnknownFeed {
            feed: feed.to_string().chars().take(Self::ECHO_LIMIT).collect(),
        }
    }

    pub(crate) fn unknown_user(user: &impl fmt::Debug) -> Self {
        Error::UnknownUser {
            user: format!("{user:?}").chars().take(Self::ECHO_LIMIT).collect(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidLimit { limit: 0, max } => {
                write!(f, "limit 0 is invalid: ask for 1 to {max} items")
            }
            Error::InvalidLimit { limit, max } => {
                write!(f, "limit {limit} is over the maximum of {max}")
            }
            Error::InvalidCursor { reason } => {
                write!(
                    f,
                    "invalid cursor: {reason}; use a cursor this store returned"
                )
            }
            Error::UnknownCategory { value } => write!(
                f,
                "unknown presence category {value:?}: expected one of AVAILABLE, BUSY, AWAY, \
                 ON_THE_PHONE, BE_RIGHT_BACK, IN_A_MEETING, OUT_OF_OFFICE, OFF_WORK, OFFLINE, \
                 DO_NOT_DISTURB, UNDEFINED"
            ),
            Error::UnknownUser { user } => write!(f, "unknown user {user}"),
            Error::TooManyIds { count, max } => {
                write!(
                    f,
                    "{count} ids given, at most {max} are allowed per request"
                )
            }
            Error::InvalidConfig { reason } => write!(f, "invalid store configuration: {reason}"),
            Error::CapacityExceeded => {
                write!(f, "a shard is full (2^32 - 2 users): configure more shards")
            }
            Error::UnknownFeed { feed } => write!(
                f,
                "unknown feed {feed:?}: it was never created, was deleted, or expired unread"
            ),
            Error::TooManyFeeds { max } => {
                write!(
                    f,
                    "too many feeds: at most {max}; delete feeds no longer read"
                )
            }
            Error::MessageTooLong { len, max } => {
                write!(
                    f,
                    "status message of {len} bytes is over the maximum of {max}"
                )
            }
        }
    }
}

impl std::error::Error for Error {}
