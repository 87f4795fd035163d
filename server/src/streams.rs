//! Caps on live WebSocket streams, per account and in total, so that no caller can hold more of
//! the server's sockets, tasks and subscriber queues than [`StreamLimits`] allows.
//!
//! Opening a stream takes a [`StreamPermit`] before the upgrade; dropping the permit (the
//! stream's task ends) gives the place back. A stream costs the server a task, a subscriber of a
//! few hundred bytes and the socket's buffers while idle; a slow reader adds up to its
//! `capacity` queued events (about 50 bytes each) before it lags.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::accounts::Principal;

/// How many streams may be open at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Streams open on the whole server.
    pub total: usize,
    /// Streams open under one account (a Symphony service account, a Rocket.Chat user, a
    /// Genesys client).
    pub per_account: usize,
}

impl StreamLimits {
    /// The default total: room for 10,000 live streams and then some.
    pub const TOTAL: usize = 16_384;
    /// The default per account: a gateway fanning out to many devices fits under one account.
    pub const PER_ACCOUNT: usize = 8_192;
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            total: Self::TOTAL,
            per_account: Self::PER_ACCOUNT,
        }
    }
}

/// Why a stream was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The account already holds `max` streams.
    AccountFull {
        /// The per-account cap.
        max: usize,
    },
    /// The server already holds `max` streams.
    ServerFull {
        /// The total cap.
        max: usize,
    },
}

impl std::fmt::Display for StreamRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamRefusal::AccountFull { max } => write!(
                f,
                "this account already has {max} open streams, the most one account may hold; \
                 close one first"
            ),
            StreamRefusal::ServerFull { max } => write!(
                f,
                "the server already holds {max} open streams, its maximum; retry later"
            ),
        }
    }
}

/// The open streams, counted per account.
#[derive(Debug, Default)]
pub struct Streams {
    limits: StreamLimits,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_account: HashMap<String, usize>,
}

impl Streams {
    /// No streams open yet, capped by `limits`.
    pub fn new(limits: StreamLimits) -> Self {
        Streams {
            limits,
            open: Mutex::default(),
        }
    }

    /// The caps.
    pub fn limits(&self) -> StreamLimits {
        self.limits
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.lock().total
    }

    /// A place for one more stream of `principal`'s account, or why not.
    pub fn admit(self: &Arc<Self>, principal: &Principal) -> Result<StreamPermit, StreamRefusal> {
        let account = account(principal);
        let mut open = self.open.lock();
        if open.total >= self.limits.total {
            return Err(StreamRefusal::ServerFull {
                max: self.limits.total,
            });
        }
        let held = open.per_account.get(&account).copied().unwrap_or(0);
        if held >= self.limits.per_account {
            return Err(StreamRefusal::AccountFull {
                max: self.limits.per_account,
            });
        }
        open.total += 1;
        open.per_account.insert(account.clone(), held + 1);
        Ok(StreamPermit {
            streams: Arc::clone(self),
            account,
        })
    }
}

/// One open stream's place; dropping it gives the place back.
#[derive(Debug)]
pub struct StreamPermit {
    streams: Arc<Streams>,
    account: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(held) = open.per_account.get_mut(&self.account) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.per_account.remove(&self.account);
            }
        }
    }
}

/// The account a principal belongs to, one name per dialect's kind of account.
fn account(principal: &Principal) -> String {
    match principal {
        Principal::Symphony { username, .. } => format!("symphony:{username}"),
        Principal::RocketChat { user_id } => format!("rocketchat:{user_id}"),
        Principal::Genesys { client_id } => format!("genesys:{client_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesys(id: &str) -> Principal {
        Principal::Genesys {
            client_id: id.to_string(),
        }
    }

    #[test]
    fn streams_are_capped_per_account_and_in_total_and_given_back() {
        let streams = Arc::new(Streams::new(StreamLimits {
            total: 3,
            per_account: 2,
        }));
        let a1 = streams.admit(&genesys("a")).unwrap();
        let _a2 = streams.admit(&genesys("a")).unwrap();
        assert_eq!(
            streams.admit(&genesys("a")).unwrap_err(),
            StreamRefusal::AccountFull { max: 2 }
        );
        let _b1 = streams.admit(&genesys("b")).unwrap();
        assert_eq!(
            streams.admit(&genesys("c")).unwrap_err(),
            StreamRefusal::ServerFull { max: 3 }
        );
        drop(a1);
        assert_eq!(streams.open(), 2);
        let _a3 = streams.admit(&genesys("a")).unwrap();
    }
}
