//! Who may call: the accounts file (`--accounts FILE`, JSON) or the demo set.
//!
//! Symphony service accounts log in with an RSA-signed JWT and may hold the User Provisioning
//! entitlement; Rocket.Chat users log in with a password and may hold the `admin` role;
//! Genesys OAuth clients use the client-credentials grant; device gateways have no login and
//! use tokens issued in advance. Any account may also be given tokens in advance, so a
//! newcomer can `curl` without a login. What each kind may do is [`crate::authz`]'s table;
//! the tokens themselves are [`crate::tokens`].

use serde::{Deserialize, Serialize};

use super::directory::{Directory, FIRST_ID};
use super::secret::{random_id, NoEntropy};

/// Symphony's entitlement for reading and setting other users' presence.
pub const USER_PROVISIONING: &str = "User Provisioning";
/// The Rocket.Chat role that may change settings.
pub const ADMIN_ROLE: &str = "admin";

/// The demo Symphony bot's public key; its private key is beside it, for the BDK.
const DEMO_PUBLIC_KEY: &str = include_str!("../demo/bot-public.pem");

/// A Symphony service account (a bot), which logs in with an RS512 JWT signed by its key.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RocketChatAccount {
    /// Login name.
    pub username: String,
    /// Password (compared through its digest, in constant time).
    pub password: String,
    /// The Symphony id of the directory user it is.
    pub user_id: u64,
    /// Roles, e.g. `"admin"` (which may change settings); `user` when empty.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl RocketChatAccount {
    /// Whether the user holds the `admin` role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }
}

/// A Genesys OAuth client (client-credentials grant).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenesysClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret` (compared through its digest, in constant time).
    pub client_secret: String,
}

/// A device gateway: reports heartbeats and disconnects for any user, and may stream
/// everyone's changes. It has no login; give it a token in advance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GatewayAccount {
    /// Its name, which tokens issued in advance refer to.
    pub name: String,
}

/// A token issued in advance, for one account of one dialect.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssuedToken {
    /// `symphony`, `rocketchat`, `genesys` or `gateway`.
    pub dialect: String,
    /// The account's username (Symphony, Rocket.Chat), client id (Genesys) or name (gateway).
    pub account: String,
    /// The token itself: at least 22 characters of `[A-Za-z0-9_-]` (128 bits when random).
    pub token: String,
    /// When it stops working, in seconds since the Unix epoch; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// The kinds of account, by how they log in; also the `dialect` of a token issued in advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountDialect {
    /// A Symphony service account.
    Symphony,
    /// A Rocket.Chat user.
    RocketChat,
    /// A Genesys OAuth client.
    Genesys,
    /// A device gateway.
    Gateway,
}

impl AccountDialect {
    /// The name the accounts file uses.
    pub fn name(self) -> &'static str {
        match self {
            AccountDialect::Symphony => "symphony",
            AccountDialect::RocketChat => "rocketchat",
            AccountDialect::Genesys => "genesys",
            AccountDialect::Gateway => "gateway",
        }
    }

    /// Whether this kind of account logs in through `dialect`'s routes (a gateway through none:
    /// its tokens work on the server's own routes only).
    pub fn speaks(self, dialect: crate::http::Dialect) -> bool {
        use crate::http::Dialect as D;
        matches!(
            (self, dialect),
            (AccountDialect::Symphony, D::Symphony)
                | (AccountDialect::RocketChat, D::RocketChat)
                | (AccountDialect::Genesys, D::Genesys)
                | (_, D::Own)
        )
    }

    /// The dialect a name stands for.
    pub fn parse(name: &str) -> Option<AccountDialect> {
        [
            AccountDialect::Symphony,
            AccountDialect::RocketChat,
            AccountDialect::Genesys,
            AccountDialect::Gateway,
        ]
        .into_iter()
        .find(|d| d.name() == name)
    }
}

/// The accounts file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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
    /// Device gateways.
    #[serde(default)]
    pub gateways: Vec<GatewayAccount>,
    /// Tokens issued in advance.
    #[serde(default)]
    pub tokens: Vec<IssuedToken>,
}

impl Accounts {
    /// Reads an accounts file.
    pub fn load(path: &std::path::Path) -> Result<Accounts, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The demo accounts: a Symphony bot `presence-bot` with User Provisioning and the demo
    /// key, a second bot `plain-bot` without it, the first directory user as a Rocket.Chat
    /// admin and the second as a plain user (password `demo-password`), a Genesys client
    /// `demo-client` (secret `demo-secret`), a device gateway `demo-gateway`, and a token
    /// issued in advance for `presence-bot`, the Rocket.Chat admin, `demo-client` and the
    /// gateway, each fresh from the OS CSPRNG at every start.
    pub fn demo(directory: &Directory) -> Result<Accounts, NoEntropy> {
        let users = directory.users();
        let token = |dialect: AccountDialect, account: &str| {
            Ok(IssuedToken {
                dialect: dialect.name().into(),
                account: account.into(),
                token: random_id()?,
                expires_at: None,
            })
        };
        let rocketchat: Vec<RocketChatAccount> = users
            .iter()
            .take(2)
            .enumerate()
            .map(|(i, u)| RocketChatAccount {
                username: u.username.clone(),
                password: "demo-password".into(),
                user_id: u.id,
                roles: if i == 0 {
                    vec![ADMIN_ROLE.into(), "user".into()]
                } else {
                    vec!["user".into()]
                },
            })
            .collect();
        let mut tokens = vec![token(AccountDialect::Symphony, "presence-bot")?];
        // With no directory users there is no Rocket.Chat account to issue a token for.
        if let Some(admin) = rocketchat.first() {
            tokens.push(token(AccountDialect::RocketChat, &admin.username)?);
        }
        tokens.push(token(AccountDialect::Genesys, "demo-client")?);
        tokens.push(token(AccountDialect::Gateway, "demo-gateway")?);
        Ok(Accounts {
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
            rocketchat,
            genesys: vec![GenesysClient {
                client_id: "demo-client".into(),
                client_secret: "demo-secret".into(),
            }],
            gateways: vec![GatewayAccount {
                name: "demo-gateway".into(),
            }],
            tokens,
        })
    }

    /// Replaces every token issued in advance with `token(dialect)`: tests and the fuzz target
    /// use fixed tokens in place of the demo's random ones.
    pub fn set_tokens(&mut self, token: impl Fn(AccountDialect) -> String) {
        for t in &mut self.tokens {
            if let Some(dialect) = AccountDialect::parse(&t.dialect) {
                t.token = token(dialect);
            }
        }
    }

    /// The token issued in advance for `account` of `dialect`, if any (the banner and tests
    /// read the demo's this way).
    pub fn token_for(&self, dialect: AccountDialect, account: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|t| t.dialect == dialect.name() && t.account == account)
            .map(|t| t.token.as_str())
    }
}
