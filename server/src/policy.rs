//! The security policy: how long tokens live, how many each account may hold, how many feeds it
//! may own, and how fast anyone may try to log in. One struct, with defaults, deserializable so
//! the server's configuration file can set any of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every limit the server enforces on callers. See SECURITY.md for why each default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// How long a Symphony session (or key manager) token lives, in seconds (default 1 day).
    pub symphony_token_secs: u64,
    /// How long a Rocket.Chat auth token lives, in seconds (default 7 days).
    pub rocketchat_token_secs: u64,
    /// How long a Genesys bearer token lives, in seconds: what `expires_in` says (86399).
    pub genesys_token_secs: u64,
    /// Live tokens one account may hold; a login past it retires the account's oldest (16).
    pub max_tokens_per_account: usize,
    /// Presence feeds one account may own at once (10); the store caps the total.
    pub max_feeds_per_account: usize,
    /// Login attempts (right or wrong) one account may make in a burst (5) ...
    pub login_burst_per_account: u32,
    /// ... and then one per this many seconds (12: five a minute).
    pub login_refill_secs_per_account: u64,
    /// Login attempts and refused tokens one client address may send in a burst (20) ...
    pub login_burst_per_address: u32,
    /// ... and then one per this many seconds (3).
    pub login_refill_secs_per_address: u64,
    /// Requests with a token that does not exist one client address may send in a burst (50),
    /// then one a second: guessing tokens is as slow as guessing passwords.
    pub refused_tokens_burst_per_address: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            symphony_token_secs: 24 * 3600,
            rocketchat_token_secs: 7 * 24 * 3600,
            genesys_token_secs: presence_store::wire::genesys::TOKEN_LIFETIME_SECS,
            max_tokens_per_account: 16,
            max_feeds_per_account: 10,
            login_burst_per_account: 5,
            login_refill_secs_per_account: 12,
            login_burst_per_address: 20,
            login_refill_secs_per_address: 3,
            refused_tokens_burst_per_address: 50,
        }
    }
}

impl Policy {
    /// Checks that every limit is usable: lifetimes, caps, bursts and refills all at least 1.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("symphony_token_secs", self.symphony_token_secs),
            ("rocketchat_token_secs", self.rocketchat_token_secs),
            ("genesys_token_secs", self.genesys_token_secs),
            ("max_tokens_per_account", self.max_tokens_per_account as u64),
            ("max_feeds_per_account", self.max_feeds_per_account as u64),
            (
                "login_burst_per_account",
                u64::from(self.login_burst_per_account),
            ),
            (
                "login_refill_secs_per_account",
                self.login_refill_secs_per_account,
            ),
            (
                "login_burst_per_address",
                u64::from(self.login_burst_per_address),
            ),
            (
                "login_refill_secs_per_address",
                self.login_refill_secs_per_address,
            ),
            (
                "refused_tokens_burst_per_address",
                u64::from(self.refused_tokens_burst_per_address),
            ),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("policy: {name} must be at least 1")),
            None => Ok(()),
        }
    }

    /// The lifetime of a token issued by `dialect`'s login.
    pub fn lifetime(&self, dialect: crate::accounts::AccountDialect) -> Duration {
        use crate::accounts::AccountDialect as D;
        Duration::from_secs(match dialect {
            D::Symphony => self.symphony_token_secs,
            D::RocketChat => self.rocketchat_token_secs,
            D::Genesys => self.genesys_token_secs,
            // Gateways have no login: their tokens are issued in advance.
            D::Gateway => self.symphony_token_secs,
        })
    }
}
