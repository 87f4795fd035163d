//! `presence-server`: the HTTP service, as a library so `tests/` can start it in-process: options, the shared
//! state ([`App`]), and the router that mounts each dialect under its vendor's prefix.
//!
//! | prefix | dialect | auth |
//! | --- | --- | --- |
//! | `/pod`, `/login`, `/relay`, `/sessionauth` | Symphony | `sessionToken` header (RS512 JWT login) |
//! | `/api/v1` | Rocket.Chat | `X-Auth-Token` + `X-User-Id` |
//! | `/api/v2`, `/oauth` | Genesys Cloud | `Authorization: Bearer` (client credentials) |
//! | `/devices` | the server's own | `Authorization: Bearer` (any issued token) |
//!
//! Every route passes [`authz::guard`], which authenticates the caller in the route's dialect
//! and checks [`authz::TABLE`]; logins are throttled ([`throttle`]); tokens and ids come from
//! the OS CSPRNG and are kept hashed ([`secret`], [`tokens`]). Every error a dialect's routes
//! give (bad input, 401, 403, 404, 405, 413, 414, 415, 429, 431) carries that dialect's error
//! body; see [`http`]. SECURITY.md at the repository root says what is protected and how.

// Nothing from a request may panic the server.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod accounts;
pub mod authz;
pub mod demo;
pub mod devices;
pub mod directory;
pub mod feeds;
pub mod genesys;
pub mod http;
pub mod listing;
pub mod openapi;
pub mod policy;
pub mod rocketchat;
pub mod secret;
pub mod streams;
pub mod symphony;
pub mod throttle;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use presence_store::{Clock, PresenceStore, StoreConfig};

use accounts::Accounts;
use directory::Directory;
use feeds::Feeds;
use policy::Policy;
use streams::{StreamLimits, Streams};
use throttle::Throttle;
use tokens::Tokens;

/// The store the server serves: users keyed by their Symphony id (`u64`); the other dialects'
/// ids map to it through the [`Directory`].
pub type Store = PresenceStore<u64>;

/// Command-line options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
    /// How many demo users the directory holds.
    pub demo_users: usize,
    /// Whether simulated devices come online, go idle and drop.
    pub simulate: bool,
    /// A JSON file of accounts; the demo accounts when `None`.
    pub accounts: Option<PathBuf>,
    /// How many WebSocket streams may be open, per account and in total.
    pub streams: StreamLimits,
    /// Token lifetimes, caps and login throttling.
    pub policy: Policy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            demo_users: 1000,
            simulate: true,
            accounts: None,
            streams: StreamLimits::default(),
            policy: Policy::default(),
        }
    }
}

impl Options {
    /// What `--help` prints.
    pub const USAGE: &'static str = "\
usage: server [--addr HOST:PORT] [--users N] [--no-simulate] [--accounts FILE]

  --addr HOST:PORT   where to listen (default 127.0.0.1:8080)
  --users N          demo users in the directory (default 1000)
  --no-simulate      no simulated devices (presence changes only through the APIs)
  --accounts FILE    JSON file of accounts and tokens (default: the demo accounts)";

    /// Parses the arguments after the program name; `Ok(None)` for `--help`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--addr" => {
                    let v = value("--addr")?;
                    options.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
                }
                "--users" => {
                    let v = value("--users")?;
                    options.demo_users = v.parse().map_err(|e| format!("--users {v}: {e}"))?;
                }
                "--no-simulate" => options.simulate = false,
                "--accounts" => options.accounts = Some(value("--accounts")?.into()),
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(Some(options))
    }
}

/// Everything the handlers share.
pub struct App {
    /// The presence store.
    pub store: Store,
    /// Who exists, under each dialect's id.
    pub directory: Directory,
    /// Who may log in, and how.
    pub accounts: Accounts,
    /// Issued tokens and whom they stand for.
    pub tokens: Tokens,
    /// Token lifetimes, caps and login throttling.
    pub policy: Policy,
    /// The login and bad-token limiters.
    pub throttle: Throttle,
    /// Which account owns which presence feed.
    pub feeds: Feeds,
    /// Symphony's own state.
    pub symphony: symphony::State,
    /// Rocket.Chat's own state (settings).
    pub rocketchat: rocketchat::State,
    /// Genesys's own state (presence settings).
    pub genesys: genesys::State,
    /// The store's clock, for timestamps the server writes.
    pub clock: Arc<dyn Clock>,
    /// The open WebSocket streams, against their caps.
    pub streams: Arc<Streams>,
}

impl App {
    /// A server state for `options`, reading time from `clock`.
    pub fn new(options: &Options, clock: Arc<dyn Clock>) -> Result<Arc<App>, String> {
        let directory = Directory::demo(options.demo_users);
        let accounts = match &options.accounts {
            Some(path) => Accounts::load(path)?,
            None => Accounts::demo(&directory).map_err(|e| e.to_string())?,
        };
        App::with_accounts(options, directory, accounts, clock)
    }

    /// A server state for `options` with these `directory` and `accounts` (what [`App::new`]
    /// loads), reading time from `clock`.
    pub fn with_accounts(
        options: &Options,
        directory: Directory,
        accounts: Accounts,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<App>, String> {
        options.policy.validate()?;
        let tokens = Tokens::from_accounts(&accounts)?;
        let config = StoreConfig::default();
        let store = PresenceStore::with_clock(config, clock.clone());
        Ok(Arc::new(App {
            store,
            directory,
            accounts,
            tokens,
            policy: options.policy.clone(),
            throttle: Throttle::new(&options.policy, clock.clone()),
            feeds: Feeds::default(),
            symphony: symphony::State::default(),
            rocketchat: rocketchat::State::default(),
            genesys: genesys::State::default(),
            clock,
            streams: Arc::new(Streams::new(options.streams)),
        }))
    }

    /// The router of every dialect, with the shared limits and error bodies.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .merge(symphony::routes())
            .merge(rocketchat::routes())
            .merge(genesys::routes())
            .merge(openapi::routes())
            // The dialects' answers are compressed; the devices' are small, and a WebSocket
            // upgrade must not be.
            .layer(http::compression())
            .merge(devices::routes())
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                authz::guard,
            ))
            // Outside the guard: probes carry no token.
            .route("/healthz", axum::routing::get(healthz))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn(http::dialect_errors))
            .layer(axum::middleware::from_fn(http::request_limits))
            .layer(axum::extract::DefaultBodyLimit::max(http::MAX_BODY))
    }

    /// What the server prints at start: where it listens and the demo credentials.
    pub fn banner(&self, addr: SocketAddr) -> String {
        let mut out = format!(
            "presence-store server on http://{addr} ({} users)\n",
            self.directory.len()
        );
        out.push_str(&tokens::describe(&self.accounts, addr, &self.directory));
        out
    }

    /// Starts the sweeper (idle and expiry) and, if asked, the demo simulation.
    pub fn spawn_background(self: &Arc<Self>, simulate: bool) {
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                app.store.sweep();
                app.tokens.sweep(app.clock.now_ms());
                app.throttle.sweep();
            }
        });
        if simulate {
            demo::spawn_simulation(self.clone());
        }
    }
}

/// `GET /healthz`: 200 while the server answers at all (the baseline of the load benchmark).
async fn healthz() -> &'static str {
    "ok"
}
