//! What the WebSocket streams share: their caps, per account and in total, so that no caller
//! can hold more of the server's sockets, tasks and subscriber queues than [`StreamLimits`]
//! allows; and the text of each recent change, serialized once for every stream that sends it.
//!
//! Opening a stream takes a [`StreamPermit`] before the upgrade; dropping the permit (the
//! stream's task ends) gives the place back. A stream costs the server a task, a subscriber of a
//! few hundred bytes and the socket's buffers while idle; a slow reader adds up to its
//! `capacity` queued events (about 50 bytes each) before it lags.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use parking_lot::Mutex;

use super::authz::StreamView;
use super::tokens::Principal;

/// Recent changes whose text is kept (a direct-mapped table: a newer change takes the slot).
const TEXT_SLOTS: usize = 4096;

/// How many streams may be open at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
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

/// A change's text: `(user, version, text)`.
type ChangeText = (StreamView, u64, u64, Utf8Bytes);

/// The open streams, counted per account, and the texts of recent changes.
#[derive(Debug)]
pub struct Streams {
    limits: StreamLimits,
    open: Mutex<Open>,
    /// Recent changes' texts.
    texts: Box<[Mutex<Option<ChangeText>>]>,
    /// Places for resyncs in progress ([`RESYNCS`]).
    resyncs: tokio::sync::Semaphore,
}

/// How many lagged streams may resync at once. Each holds the delta since its cursor (one
/// entry per changed user) until written, so after a burst that lags every stream the memory is
/// this many deltas, not one per stream.
pub const RESYNCS: usize = 4;

impl Default for Streams {
    fn default() -> Self {
        Streams::new(StreamLimits::default())
    }
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
            texts: (0..TEXT_SLOTS).map(|_| Mutex::new(None)).collect(),
            resyncs: tokio::sync::Semaphore::new(RESYNCS),
        }
    }

    /// The text of change `version` of `user` in `view`: made by `make` for the first stream
    /// that sends it, shared (a reference count) with every other stream of that view. A change
    /// is one `(user, version)`: a user's version grows with each of its changes.
    pub fn change_text(
        &self,
        view: StreamView,
        user: u64,
        version: u64,
        make: impl FnOnce() -> String,
    ) -> Utf8Bytes {
        let index = (user.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ version ^ view as u64) as usize
            % TEXT_SLOTS;
        let Some(slot) = self.texts.get(index) else {
            return make().into();
        };
        let mut slot = slot.lock();
        if let Some((w, u, v, text)) = &*slot {
            if (*w, *u, *v) == (view, user, version) {
                return text.clone();
            }
        }
        let text = Utf8Bytes::from(make());
        *slot = Some((view, user, version, text.clone()));
        text
    }

    /// Waits for a place to resync a lagged stream; the place is held until the permit drops.
    pub async fn resync_place(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed, so `None` cannot happen; a stream would then resync
        // without a place rather than never.
        self.resyncs.acquire().await.ok()
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
        let account = principal.to_string();
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

    #[test]
    fn a_change_is_serialized_once_and_a_newer_one_anew() {
        let streams = Streams::default();
        let made = std::cell::Cell::new(0);
        let text = |user, version| {
            streams.change_text(StreamView::Full, user, version, || {
                made.set(made.get() + 1);
                format!("{user}@{version}")
            })
        };
        assert_eq!(text(7, 1).as_str(), "7@1");
        assert_eq!(text(7, 1).as_str(), "7@1");
        assert_eq!(text(7, 2).as_str(), "7@2");
        assert_eq!(text(8, 1).as_str(), "8@1");
        assert_eq!(made.get(), 3);
        // Another view of the same change is its own text.
        let rocketchat = streams.change_text(StreamView::RocketChat, 7, 2, || "rc".to_owned());
        assert_eq!(rocketchat.as_str(), "rc");
        assert_eq!(text(7, 2).as_str(), "7@2");
        assert_eq!(made.get(), 3);
    }
}
