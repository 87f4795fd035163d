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
    /// A user already has the most sessions the store allows
    /// ([`StoreConfig::max_sessions_per_user`](crate::StoreConfig::max_sessions_per_user)); the
    /// heartbeat that would open one more changed nothing.
    TooManySessions {
        /// The most sessions a user may have.
        max: usize,
    },
    /// A shard holds the most users it can address (2^24 - 1, so 134M with 8 shards).
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
    /// A snapshot that no store could have taken (a user twice, a session id twice, an
    /// unknown source, ...).
    InvalidSnapshot {
        /// What is wrong.
        reason: String,
    },
    /// No presence source has this id.
    UnknownSource {
        /// The id given (cut to a few dozen characters).
        id: String,
    },
    /// A presence source id that is empty or too long.
    InvalidSourceId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A feed id that is not 16 hex digits, so no feed could have it.
    InvalidFeedId {
        /// The id given (cut to a few dozen characters).
        feed: String,
    },
    /// The built-in `PURECLOUD` source cannot be deleted or deactivated.
    DefaultSource,
    /// The source is deactivated and takes no new presences.
    DeactivatedSource {
        /// The source's id.
        id: String,
    },
    /// A source's name (or the number of sources) is out of range.
    InvalidSource {
        /// What is wrong.
        reason: String,
    },
    /// A cluster node id that is empty, too long, or has characters other than ASCII letters,
    /// digits and `._:/-`.
    InvalidNodeId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A system presence name that is none of Genesys' ten.
    UnknownSystemPresence {
        /// The name given (cut to a few dozen characters).
        value: String,
    },
    /// A presence definition id that is empty or too long.
    InvalidDefinitionId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No presence definition has this id: it never existed or was deleted.
    UnknownDefinition {
        /// The id given (cut to a few dozen characters).
        id: String,
    },
    /// A presence definition to create or update breaks a rule (labels, or too many definitions).
    InvalidDefinition {
        /// Which rule, and what is allowed.
        reason: String,
    },
    /// The definition is a built-in system presence, which cannot be changed or deleted.
    SystemDefinition {
        /// Its id.
        id: String,
    },
    /// The definition is deactivated, so users cannot be set to it.
    DeactivatedDefinition {
        /// Its id (cut to a few dozen characters).
        id: String,
    },
    /// A timestamp that is not ISO 8601 as Rocket.Chat's `from` takes it, or is before 1970.
    InvalidTimestamp {
        /// The text given (cut to a few dozen characters).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
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

    pub(crate) fn unknown_source(id: &(impl fmt::Display + ?Sized)) -> Self {
        Error::UnknownSource {
            id: id.to_string().chars().take(Self::ECHO_LIMIT).collect(),
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
            Error::TooManySessions { max } => write!(
                f,
                "the user already has {max} sessions, the most allowed: end one (disconnect) \
                 or let one expire before opening another"
            ),
            Error::CapacityExceeded => {
                write!(f, "a shard is full (2^24 - 1 users): configure more shards")
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
            Error::InvalidSnapshot { reason } => write!(f, "invalid snapshot: {reason}"),
            Error::UnknownSource { id } => {
                write!(
                    f,
                    "unknown presence source {id:?}: list the sources for valid ids"
                )
            }
            Error::InvalidSourceId { reason } => write!(
                f,
                "invalid presence source id: {reason}; use 1 to 128 characters"
            ),
            Error::InvalidFeedId { feed } => write!(
                f,
                "malformed feed id {feed:?}: a feed id is 16 hex digits, as creating a feed \
                 returns it"
            ),
            Error::DefaultSource => write!(
                f,
                "the PURECLOUD source is built in: it cannot be deleted or deactivated"
            ),
            Error::DeactivatedSource { id } => {
                write!(
                    f,
                    "presence source {id:?} is deactivated: reactivate it first"
                )
            }
            Error::InvalidSource { reason } => write!(f, "invalid presence source: {reason}"),
            Error::InvalidNodeId { reason } => write!(f, "invalid cluster node id: {reason}"),
            Error::UnknownSystemPresence { value } => write!(
                f,
                "unknown system presence {value:?}: expected one of AVAILABLE, AWAY, BUSY, \
                 OFFLINE, IDLE, ON_QUEUE, MEAL, TRAINING, BREAK, MEETING"
            ),
            Error::InvalidDefinitionId { reason } => write!(
                f,
                "invalid presence definition id: {reason}; use 1 to 128 characters"
            ),
            Error::UnknownDefinition { id } => write!(
                f,
                "unknown presence definition {id:?}: it was never created or was deleted; \
                 list the definitions for the ids in use"
            ),
            Error::InvalidDefinition { reason } => {
                write!(f, "invalid presence definition: {reason}")
            }
            Error::SystemDefinition { id } => write!(
                f,
                "presence definition {id:?} is a system presence and cannot be changed or \
                 deleted; create an organization definition over it instead"
            ),
            Error::DeactivatedDefinition { id } => write!(
                f,
                "presence definition {id:?} is deactivated: reactivate it or choose an active one"
            ),
            Error::InvalidTimestamp { value, reason } => write!(
                f,
                "invalid timestamp {value:?}: {reason}; write ISO 8601 at or after 1970, like \
                 2019-05-22T12:11:45.392Z (seconds, milliseconds and zone are optional)"
            ),
        }
    }
}

impl std::error::Error for Error {}
