//! Issued tokens and whom they stand for, kept as digests, each with its expiry.
//!
//! Invariants: the table holds only SHA-256 digests of tokens ([`Digest`]), never a token; a
//! token past its expiry is never honoured (it is evicted by [`Tokens::sweep`] or the next
//! login of its account); an account holds at most `max_tokens_per_account` tokens from logins
//! (a login past it retires the account's oldest), so the table is bounded by the accounts
//! file whatever callers do. Tokens issued in advance come from the accounts file; revoking one
//! is remembered as its digest, which [`Tokens::revocations`] exports so a restart keeps it
//! revoked ([`Tokens::restore_revocations`]).
//!
//! Locks: one `RwLock` over the table; lookups read, logins, logouts and sweeps write. Each
//! operation is O(1) but [`Tokens::sweep`] (O(tokens)) and the per-account cap (O(cap)).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::accounts::{AccountDialect, Accounts, USER_PROVISIONING};
use super::authz::Kind;
use super::directory::Directory;
use super::secret::{random_id, Digest, NoEntropy, ID_LEN};

/// Whom a token stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A Symphony service account.
    Symphony {
        /// Its username.
        username: String,
        /// Its user id.
        user_id: u64,
        /// Its entitlements.
        entitlements: Vec<String>,
    },
    /// A Rocket.Chat user.
    RocketChat {
        /// Its login name.
        username: String,
        /// The Symphony id of the directory user.
        user_id: u64,
        /// Whether it holds the `admin` role.
        admin: bool,
    },
    /// A Genesys OAuth client.
    Genesys {
        /// Its client id.
        client_id: String,
    },
    /// A device gateway.
    Gateway {
        /// Its name.
        name: String,
    },
}

impl Principal {
    /// The kind of account, which [`crate::authz`]'s table reads.
    pub fn kind(&self) -> Kind {
        match self {
            Principal::Symphony { entitlements, .. } => {
                if entitlements.iter().any(|e| e == USER_PROVISIONING) {
                    Kind::Provisioner
                } else {
                    Kind::Bot
                }
            }
            Principal::RocketChat { admin: true, .. } => Kind::RocketChatAdmin,
            Principal::RocketChat { admin: false, .. } => Kind::RocketChatUser,
            Principal::Genesys { .. } => Kind::GenesysClient,
            Principal::Gateway { .. } => Kind::Gateway,
        }
    }

    /// How the account logs in.
    pub fn dialect(&self) -> AccountDialect {
        match self {
            Principal::Symphony { .. } => AccountDialect::Symphony,
            Principal::RocketChat { .. } => AccountDialect::RocketChat,
            Principal::Genesys { .. } => AccountDialect::Genesys,
            Principal::Gateway { .. } => AccountDialect::Gateway,
        }
    }

    /// The account's name within its dialect.
    pub fn account(&self) -> &str {
        match self {
            Principal::Symphony { username, .. } | Principal::RocketChat { username, .. } => {
                username
            }
            Principal::Genesys { client_id } => client_id,
            Principal::Gateway { name } => name,
        }
    }

    /// The user the account is, if it is one (Genesys clients and gateways are not).
    pub fn own_user(&self) -> Option<u64> {
        match self {
            Principal::Symphony { user_id, .. } | Principal::RocketChat { user_id, .. } => {
                Some(*user_id)
            }
            Principal::Genesys { .. } | Principal::Gateway { .. } => None,
        }
    }

    /// The principal of `account` of `dialect` in `accounts`.
    pub fn of(accounts: &Accounts, dialect: AccountDialect, account: &str) -> Option<Principal> {
        match dialect {
            AccountDialect::Symphony => accounts
                .symphony
                .iter()
                .find(|a| a.username == account)
                .map(|a| Principal::Symphony {
                    username: a.username.clone(),
                    user_id: a.user_id,
                    entitlements: a.entitlements.clone(),
                }),
            AccountDialect::RocketChat => accounts
                .rocketchat
                .iter()
                .find(|a| a.username == account)
                .map(|a| Principal::RocketChat {
                    username: a.username.clone(),
                    user_id: a.user_id,
                    admin: a.is_admin(),
                }),
            AccountDialect::Genesys => accounts
                .genesys
                .iter()
                .find(|c| c.client_id == account)
                .map(|c| Principal::Genesys {
                    client_id: c.client_id.clone(),
                }),
            AccountDialect::Gateway => {
                accounts
                    .gateways
                    .iter()
                    .find(|g| g.name == account)
                    .map(|g| Principal::Gateway {
                        name: g.name.clone(),
                    })
            }
        }
    }
}

/// `dialect:account`, as logs, metrics and caps name an account (`symphony:presence-bot`):
/// written straight into the log line, so naming the caller allocates nothing.
impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dialect().name(), self.account())
    }
}

/// A revoked token issued in advance, as [`Tokens::revocations`] exports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The token's SHA-256, lowercase hex (the token itself is never written).
    pub sha256: String,
    /// When the token would have expired anyway (seconds since the epoch); after it, the
    /// record may be dropped. `None`: it never would have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// Revocations to keep across restarts: tokens issued by a login die with the process (their
/// holders log in again); tokens issued in advance come back from the accounts file, so their
/// revocations are what must be saved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    /// The revoked tokens issued in advance.
    pub revoked: Vec<Revoked>,
}

/// One live token.
#[derive(Clone, Debug)]
struct Entry {
    /// Shared with every request the token authenticates, so a lookup copies no strings.
    principal: Arc<Principal>,
    /// Ms since the epoch after which it is refused; `None` for never.
    expires_at: Option<u64>,
    /// Whether it came from the accounts file.
    in_advance: bool,
}

/// The table behind the lock.
#[derive(Debug, Default)]
struct Table {
    /// Keyed by digest, hashed with aHash: every request looks its token up here.
    live: HashMap<Digest, Entry, ahash::RandomState>,
    /// Each account's tokens from logins, oldest first, for the per-account cap.
    by_account: HashMap<(AccountDialect, String), VecDeque<Digest>>,
    /// Revoked tokens issued in advance, with their expiry in ms.
    revoked: HashMap<Digest, Option<u64>>,
}

impl Table {
    fn remove(&mut self, digest: &Digest) -> Option<Entry> {
        let entry = self.live.remove(digest)?;
        let key = (
            entry.principal.dialect(),
            entry.principal.account().to_owned(),
        );
        if let Some(queue) = self.by_account.get_mut(&key) {
            queue.retain(|d| d != digest);
            if queue.is_empty() {
                self.by_account.remove(&key);
            }
        }
        Some(entry)
    }
}

/// Issued tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    table: RwLock<Table>,
    /// The digests of the tokens issued in advance, to tell their revocations apart.
    advance: HashMap<Digest, Option<u64>>,
}

/// A new token as a login hands it out.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The token.
    pub token: String,
    /// How long it lives.
    pub lifetime: Duration,
}

impl Tokens {
    /// The tokens the accounts issue in advance; an unknown dialect or account, or a token
    /// shorter than 22 URL-safe characters (under 128 bits), is an error.
    pub fn from_accounts(accounts: &Accounts) -> Result<Tokens, String> {
        let mut table = Table::default();
        let mut advance = HashMap::new();
        for t in &accounts.tokens {
            let dialect = AccountDialect::parse(&t.dialect)
                .ok_or_else(|| format!("token for unknown dialect {:?}", t.dialect))?;
            let principal = Principal::of(accounts, dialect, &t.account).ok_or_else(|| {
                format!("token for unknown {} account {:?}", t.dialect, t.account)
            })?;
            let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            if t.token.len() < ID_LEN || !t.token.bytes().all(url_safe) {
                return Err(format!(
                    "the token of {} account {:?} must be at least {ID_LEN} characters of \
                     [A-Za-z0-9_-] (128 random bits)",
                    t.dialect, t.account
                ));
            }
            let digest = Digest::of(&t.token);
            let expires_at = t.expires_at.map(|s| s.saturating_mul(1000));
            advance.insert(digest, expires_at);
            table.live.insert(
                digest,
                Entry {
                    principal: Arc::new(principal),
                    expires_at,
                    in_advance: true,
                },
            );
        }
        Ok(Tokens {
            table: RwLock::new(table),
            advance,
        })
    }

    /// Issues a fresh token for `principal`, living `lifetime` from `now_ms`. The account's
    /// expired tokens are evicted first, and past `max_per_account` its oldest is retired.
    pub fn issue(
        &self,
        principal: Principal,
        lifetime: Duration,
        now_ms: u64,
        max_per_account: usize,
    ) -> Result<Issued, NoEntropy> {
        let token = random_id()?;
        let digest = Digest::of(&token);
        let key = (principal.dialect(), principal.account().to_owned());
        let expires_at = now_ms.saturating_add(lifetime.as_millis() as u64);
        let mut table = self.table.write();
        let mine: Vec<Digest> = table
            .by_account
            .get(&key)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for old in &mine {
            if table.live.get(old).is_some_and(|e| expired(e, now_ms)) {
                table.remove(old);
            }
        }
        while table.by_account.get(&key).map_or(0, VecDeque::len) >= max_per_account.max(1) {
            let Some(oldest) = table.by_account.get(&key).and_then(|q| q.front().copied()) else {
                break;
            };
            table.remove(&oldest);
        }
        table.live.insert(
            digest,
            Entry {
                principal: Arc::new(principal),
                expires_at: Some(expires_at),
                in_advance: false,
            },
        );
        table.by_account.entry(key).or_default().push_back(digest);
        Ok(Issued { token, lifetime })
    }

    /// Whom the token of `digest` ([`Digest::of`] the token) stands for at `now_ms`; `None` if
    /// it was never issued, has expired or was revoked.
    pub fn principal(&self, digest: &Digest, now_ms: u64) -> Option<Arc<Principal>> {
        let table = self.table.read();
        let (stored, entry) = table.live.get_key_value(digest)?;
        // The map found it by digest; the constant-time check costs nothing and keeps the rule
        // "secrets are compared in constant time" true without exceptions.
        (stored.same(digest) && !expired(entry, now_ms)).then(|| entry.principal.clone())
    }

    /// Revokes the token of `digest` (logout); whether it was live. A token issued in advance
    /// stays revoked in [`Tokens::revocations`].
    pub fn revoke(&self, digest: &Digest) -> bool {
        let digest = *digest;
        let mut table = self.table.write();
        match table.remove(&digest) {
            Some(entry) => {
                if entry.in_advance {
                    table.revoked.insert(digest, entry.expires_at);
                }
                true
            }
            None => false,
        }
    }

    /// Evicts every token expired at `now_ms`, and revocation records of tokens that would
    /// have expired anyway; how many tokens went. O(tokens); the server calls it periodically.
    pub fn sweep(&self, now_ms: u64) -> usize {
        let mut table = self.table.write();
        let dead: Vec<Digest> = table
            .live
            .iter()
            .filter(|(_, e)| expired(e, now_ms))
            .map(|(d, _)| *d)
            .collect();
        for digest in &dead {
            table.remove(digest);
        }
        table
            .revoked
            .retain(|_, expires| expires.is_none_or(|at| at > now_ms));
        dead.len()
    }

    /// Live tokens (logins and in advance), expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.table.read().live.len()
    }

    /// Whether no token is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The revoked tokens issued in advance, to save (digests and expiries, never tokens).
    pub fn revocations(&self) -> Revocations {
        let table = self.table.read();
        let mut revoked: Vec<Revoked> = table
            .revoked
            .iter()
            .map(|(digest, expires)| Revoked {
                sha256: digest.to_hex(),
                expires_at: expires.map(|ms| ms / 1000),
            })
            .collect();
        revoked.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Revocations { revoked }
    }

    /// Revokes again what [`Tokens::revocations`] saved. Records of tokens the accounts file
    /// no longer issues are dropped; a malformed digest is an error.
    pub fn restore_revocations(&self, saved: &Revocations) -> Result<(), String> {
        let mut table = self.table.write();
        for record in &saved.revoked {
            let digest = Digest::from_hex(&record.sha256)
                .ok_or_else(|| format!("revocation {:?} is not a SHA-256 in hex", record.sha256))?;
            if let Some(expires) = self.advance.get(&digest) {
                table.remove(&digest);
                table.revoked.insert(digest, *expires);
            }
        }
        Ok(())
    }
}

/// Whether `entry` is past its expiry at `now_ms`.
fn expired(entry: &Entry, now_ms: u64) -> bool {
    entry.expires_at.is_some_and(|at| now_ms >= at)
}

/// The banner's lines: each token issued in advance, with a `curl` line to try it.
pub fn describe(accounts: &Accounts, addr: SocketAddr, directory: &Directory) -> String {
    let mut out = String::new();
    for t in &accounts.tokens {
        let token = &t.token;
        let account = &t.account;
        // Writing to a String cannot fail.
        let _ = match AccountDialect::parse(&t.dialect) {
            Some(AccountDialect::Symphony) => writeln!(
                out,
                "  Symphony    ({account}):  curl -H 'sessionToken: {token}' \
                 'http://{addr}/pod/v2/users/presence?limit=3'"
            ),
            Some(AccountDialect::RocketChat) => writeln!(
                out,
                "  Rocket.Chat ({account}):  curl -H 'X-Auth-Token: {token}' -H 'X-User-Id: {}' \
                 'http://{addr}/api/v1/users.presence'",
                directory
                    .by_username(account)
                    .map_or("?", |u| u.rc_id.as_str()),
            ),
            Some(AccountDialect::Genesys) => writeln!(
                out,
                "  Genesys     ({account}):  curl -H 'Authorization: Bearer {token}' \
                 'http://{addr}/api/v2/users/{}/presences/purecloud'",
                directory
                    .users()
                    .first()
                    .map_or("?", |u| u.genesys_id.as_str()),
            ),
            Some(AccountDialect::Gateway) => writeln!(
                out,
                "  Gateway     ({account}):  curl -X POST -H 'Authorization: Bearer {token}' \
                 'http://{addr}/devices/v1/users/{}/sessions/1/heartbeat'",
                directory.users().first().map_or(0, |u| u.id),
            ),
            None => Ok(()),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesys(id: &str) -> Principal {
        Principal::Genesys {
            client_id: id.into(),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_token_lives_exactly_its_lifetime() {
        let tokens = Tokens::default();
        let t = Digest::of(&tokens.issue(genesys("c"), HOUR, 1_000, 4).unwrap().token);
        let c = Some(Arc::new(genesys("c")));
        assert_eq!(tokens.principal(&t, 1_000), c);
        assert_eq!(tokens.principal(&t, 1_000 + 3_599_999), c);
        assert_eq!(tokens.principal(&t, 1_000 + 3_600_000), None);
        assert_eq!(tokens.sweep(1_000 + 3_600_000), 1);
        assert!(tokens.is_empty());
    }

    #[test]
    fn an_account_holds_at_most_its_cap_and_loses_its_oldest() {
        let tokens = Tokens::default();
        let issued: Vec<Digest> = (0..10)
            .map(|i| Digest::of(&tokens.issue(genesys("c"), HOUR, i, 3).unwrap().token))
            .collect();
        assert_eq!(tokens.len(), 3);
        assert!(issued[..7]
            .iter()
            .all(|t| tokens.principal(t, 10).is_none()));
        assert!(issued[7..]
            .iter()
            .all(|t| tokens.principal(t, 10).is_some()));
        tokens.issue(genesys("other"), HOUR, 10, 3).unwrap();
        assert_eq!(tokens.len(), 4);
    }

    #[test]
    fn revoked_tokens_in_advance_stay_revoked_through_an_export() {
        let mut accounts = Accounts::demo(&Directory::demo(2)).unwrap();
        accounts.tokens.truncate(1);
        let token = accounts.tokens[0].token.clone();
        let digest = Digest::of(&token);
        let tokens = Tokens::from_accounts(&accounts).unwrap();
        assert!(tokens.principal(&digest, 0).is_some());
        assert!(tokens.revoke(&digest));
        assert!(!tokens.revoke(&digest));
        let saved = tokens.revocations();
        assert_eq!(saved.revoked.len(), 1);
        assert!(!serde_json::to_string(&saved).unwrap().contains(&token));
        let restarted = Tokens::from_accounts(&accounts).unwrap();
        assert!(restarted.principal(&digest, 0).is_some());
        restarted.restore_revocations(&saved).unwrap();
        assert!(restarted.principal(&digest, 0).is_none());
        assert_eq!(restarted.revocations(), saved);
        let bad = Revocations {
            revoked: vec![Revoked {
                sha256: "nope".into(),
                expires_at: None,
            }],
        };
        assert!(restarted.restore_revocations(&bad).is_err());
    }

    #[test]
    fn short_tokens_in_advance_are_refused() {
        let mut accounts = Accounts::demo(&Directory::demo(1)).unwrap();
        accounts.tokens[0].token = "demo-symphony".into();
        assert!(Tokens::from_accounts(&accounts).is_err());
    }
}
