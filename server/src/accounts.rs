//! Who may call, and the tokens they hold.
//!
//! [`Accounts`] is the config file (`--accounts FILE`, JSON) or the demo set: Symphony service
//! accounts with an RSA public key and entitlements, Rocket.Chat users with a password, Genesys
//! OAuth clients with a secret, and tokens issued in advance (so a newcomer can `curl` without a
//! login). [`Tokens`] maps every issued token to the [`Principal`] it stands for.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;

use parking_lot::RwLock;
use serde::Deserialize;

use super::directory::{Directory, FIRST_ID};

/// Symphony's entitlement for reading and setting other users' presence.
pub const USER_PROVISIONING: &str = "User Provisioning";

/// The demo Symphony bot's public key; its private key is beside it, for the BDK.
const DEMO_PUBLIC_KEY: &str = include_str!("../demo/bot-public.pem");

/// A Symphony service account (a bot), which logs in with an RS512 JWT signed by its key.
#[derive(Clone, Debug, Deserialize)]
pub struct SymphonyAccount {
    /// The JWT's `sub`.
    pub username: String,
    /// Its user id (a directory user, or not).
    pub user_id: u64,
    /// PEM of the RSA public key that verifies its JWTs.
    pub public_key: String,
    /// Entitlements, e.g. `"User Provisioning"`.
    #[serde(default)]
    pub entitlements: Vec<String>,
}

/// A Rocket.Chat user who logs in with a password.
#[derive(Clone, Debug, Deserialize)]
pub struct RocketChatAccount {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// The Symphony id of the directory user it is.
    pub user_id: u64,
}

/// A Genesys OAuth client (client-credentials grant).
#[derive(Clone, Debug, Deserialize)]
pub struct GenesysClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
}

/// A token issued in advance, for one account of one dialect.
#[derive(Clone, Debug, Deserialize)]
pub struct IssuedToken {
    /// `symphony`, `rocketchat` or `genesys`.
    pub dialect: String,
    /// The account's username (Symphony, Rocket.Chat) or client id (Genesys).
    pub account: String,
    /// The token itself.
    pub token: String,
}

/// The accounts file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    /// Symphony service accounts.
    #[serde(default)]
    pub symphony: Vec<SymphonyAccount>,
    /// Rocket.Chat users.
    #[serde(default)]
    pub rocketchat: Vec<RocketChatAccount>,
    /// Genesys OAuth clients.
    #[serde(default)]
    pub genesys: Vec<GenesysClient>,
    /// Tokens issued in advance.
    #[serde(default)]
    pub tokens: Vec<IssuedToken>,
}

/// The demo Symphony token, printed at start.
pub const DEMO_SYMPHONY_TOKEN: &str = "demo-symphony-session-token";
/// The demo Rocket.Chat token, printed at start.
pub const DEMO_ROCKETCHAT_TOKEN: &str = "demo-rocketchat-auth-token";
/// The demo Genesys bearer token, printed at start.
pub const DEMO_GENESYS_TOKEN: &str = "demo-genesys-access-token";

impl Accounts {
    /// Reads an accounts file.
    pub fn load(path: &Path) -> Result<Accounts, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The demo accounts: a Symphony bot `presence-bot` with User Provisioning and the demo
    /// key, a second bot `plain-bot` without it, a Rocket.Chat user for the first directory
    /// user (password `demo-password`), a Genesys client `demo-client` (secret `demo-secret`),
    /// and a token issued in advance for each.
    pub fn demo(directory: &Directory) -> Accounts {
        let first = directory.users().first();
        let token = |dialect: &str, account: &str, token: &str| IssuedToken {
            dialect: dialect.into(),
            account: account.into(),
            token: token.into(),
        };
        Accounts {
            symphony: vec![
                SymphonyAccount {
                    username: "presence-bot".into(),
                    user_id: FIRST_ID - 1,
                    public_key: DEMO_PUBLIC_KEY.into(),
                    entitlements: vec![USER_PROVISIONING.into()],
                },
                SymphonyAccount {
                    username: "plain-bot".into(),
                    user_id: FIRST_ID - 2,
                    public_key: DEMO_PUBLIC_KEY.into(),
                    entitlements: vec![],
                },
            ],
            rocketchat: first
                .map(|u| RocketChatAccount {
                    username: u.username.clone(),
                    password: "demo-password".into(),
                    user_id: u.id,
                })
                .into_iter()
                .collect(),
            genesys: vec![GenesysClient {
                client_id: "demo-client".into(),
                client_secret: "demo-secret".into(),
            }],
            // With no directory users there is no Rocket.Chat account to issue a token for.
            tokens: [
                Some(token("symphony", "presence-bot", DEMO_SYMPHONY_TOKEN)),
                first.map(|u| token("rocketchat", &u.username, DEMO_ROCKETCHAT_TOKEN)),
                Some(token("genesys", "demo-client", DEMO_GENESYS_TOKEN)),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}

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
        /// The Symphony id of the directory user.
        user_id: u64,
    },
    /// A Genesys OAuth client.
    Genesys {
        /// Its client id.
        client_id: String,
    },
}

/// Issued tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    by_token: RwLock<HashMap<String, Principal>>,
    /// The tokens issued in advance, in file order, for the banner.
    advance: Vec<(String, Principal)>,
}

impl Tokens {
    /// The tokens the accounts issue in advance; an unknown dialect or account is an error.
    pub fn from_accounts(accounts: &Accounts) -> Result<Tokens, String> {
        let mut advance = Vec::new();
        for t in &accounts.tokens {
            let principal = match t.dialect.as_str() {
                "symphony" => accounts
                    .symphony
                    .iter()
                    .find(|a| a.username == t.account)
                    .map(|a| Principal::Symphony {
                        username: a.username.clone(),
                        user_id: a.user_id,
                        entitlements: a.entitlements.clone(),
                    }),
                "rocketchat" => accounts
                    .rocketchat
                    .iter()
                    .find(|a| a.username == t.account)
                    .map(|a| Principal::RocketChat { user_id: a.user_id }),
                "genesys" => accounts
                    .genesys
                    .iter()
                    .find(|c| c.client_id == t.account)
                    .map(|c| Principal::Genesys {
                        client_id: c.client_id.clone(),
                    }),
                other => return Err(format!("token for unknown dialect {other:?}")),
            };
            let principal = principal.ok_or_else(|| {
                format!("token for unknown {} account {:?}", t.dialect, t.account)
            })?;
            advance.push((t.token.clone(), principal));
        }
        Ok(Tokens {
            by_token: RwLock::new(advance.iter().cloned().collect()),
            advance,
        })
    }

    /// Issues a fresh random-looking token for `principal`.
    pub fn issue(&self, principal: Principal) -> String {
        let mut map = self.by_token.write();
        let seed = map.len() as u64 ^ std::process::id() as u64;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let token = format!(
            "{:016x}{:016x}",
            nanos.rotate_left(17) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            (nanos ^ 0xdead_beef).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ seed
        );
        map.insert(token.clone(), principal);
        token
    }

    /// Whom `token` stands for.
    pub fn principal(&self, token: &str) -> Option<Principal> {
        self.by_token.read().get(token).cloned()
    }

    /// How many tokens are valid now.
    pub fn live(&self) -> usize {
        self.by_token.read().len()
    }

    /// Forgets `token` (logout); whether it was issued.
    pub fn revoke(&self, token: &str) -> bool {
        self.by_token.write().remove(token).is_some()
    }

    /// The banner's lines: each token issued in advance, with a `curl` line to try it.
    pub fn describe(&self, addr: SocketAddr, directory: &Directory) -> String {
        let mut out = String::new();
        for (token, principal) in &self.advance {
            // Writing to a String cannot fail.
            let _ = match principal {
                Principal::Symphony { username, .. } => writeln!(
                    out,
                    "  Symphony   ({username}):  curl -H 'sessionToken: {token}' \
                     'http://{addr}/pod/v2/users/presence?limit=3'"
                ),
                Principal::RocketChat { user_id } => writeln!(
                    out,
                    "  Rocket.Chat ({}):  curl -H 'X-Auth-Token: {token}' -H 'X-User-Id: {}' \
                     'http://{addr}/api/v1/users.presence'",
                    directory.get(*user_id).map_or("?", |u| u.username.as_str()),
                    directory.get(*user_id).map_or("?", |u| u.rc_id.as_str()),
                ),
                Principal::Genesys { client_id } => writeln!(
                    out,
                    "  Genesys    ({client_id}):  curl -H 'Authorization: Bearer {token}' \
                     'http://{addr}/api/v2/users/{}/presences/purecloud'",
                    directory
                        .users()
                        .first()
                        .map_or("?", |u| u.genesys_id.as_str()),
                ),
            };
        }
        out
    }
}
