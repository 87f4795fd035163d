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
//! Every request passes [`authz::admit`] (in [`requests::pipeline`]), which authenticates the
//! caller in the route's dialect and checks [`authz::TABLE`]; logins are throttled
//! ([`throttle`]); tokens and ids come from the OS CSPRNG and are kept hashed ([`secret`],
//! [`tokens`]). Every error a dialect's routes give (bad input, 401, 403, 404, 405, 413, 414,
//! 415, 429, 431) carries that dialect's error body; see [`http`]. SECURITY.md at the repository
//! root says what is protected and how.

// Nothing from a request may panic the server.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod accounts;
pub mod authz;
pub mod cluster;
pub mod config;
pub mod data_dir;
pub mod demo;
pub mod devices;
pub mod directory;
pub mod feeds;
pub mod genesys;
pub mod http;
pub mod lifecycle;
pub mod listing;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod requests;
pub mod rocketchat;
pub mod secret;
pub mod streams;
pub mod symphony;
pub mod throttle;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::middleware::from_fn_with_state;
use axum::Router;
use presence_store::{Clock, PresenceStore};

use accounts::Accounts;
pub use config::Options;
use data_dir::{DataDir, Restored};
use directory::Directory;
use feeds::Feeds;
use lifecycle::Lifecycle;
use metrics::Metrics;
use policy::Policy;
use streams::Streams;
use throttle::Throttle;
use tokens::Tokens;

pub use cluster::Store;

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
    /// Where state is kept; `None` keeps nothing.
    pub data: Option<DataDir>,
    /// Request and store metrics.
    pub metrics: Metrics,
    /// Readiness and shutdown.
    pub lifecycle: Lifecycle,
    /// The cluster this instance is a node of, once joined.
    pub cluster: std::sync::OnceLock<presence_cluster::Cluster<u64>>,
}

impl App {
    /// A server state for `options`, reading time from `clock`, restored from the data
    /// directory when `options` names one. An unreadable file there is an error naming it.
    pub fn new(options: &Options, clock: Arc<dyn Clock>) -> Result<Arc<App>, String> {
        let directory = Directory::demo(if options.demo { options.demo_users } else { 0 });
        let accounts = match (&options.accounts, &options.account_list) {
            (Some(path), _) => Accounts::load(path)?,
            (None, Some(list)) => list.clone(),
            (None, None) if options.demo => {
                Accounts::demo(&directory).map_err(|e| e.to_string())?
            }
            (None, None) => Accounts::default(),
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
        let data = options.data_dir.as_deref().map(DataDir::open).transpose()?;
        let mut restored = match &data {
            Some(data) => data.restore()?,
            None => Restored::default(),
        };
        let store = match data_dir::merged_snapshot(&mut restored) {
            Some(snapshot) => {
                PresenceStore::restore_with_clock(options.store.clone(), clock.clone(), snapshot)
                    .map_err(|e| format!("cannot restore the data directory's state: {e}"))?
            }
            None => PresenceStore::try_with_clock(options.store.clone(), clock.clone())
                .map_err(|e| e.to_string())?,
        };
        let store = match &options.node {
            Some(name) => {
                let node = presence_cluster::node_id(name).map_err(|e| e.to_string())?;
                Store::clustered(store, node)
            }
            None => Store::alone(store),
        };
        let app = App {
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
            data,
            metrics: Metrics::default(),
            lifecycle: Lifecycle::default(),
            cluster: std::sync::OnceLock::new(),
        };
        if let Some(org) = restored.org {
            app.feeds
                .restore(&app.store, &org.feeds, app.clock.now_ms())?;
            app.tokens.restore_revocations(&org.revocations)?;
            app.rocketchat
                .restore_broadcast_disabled(org.presence_broadcast_disabled);
            app.genesys.set_settings(org.genesys_settings);
        }
        Ok(Arc::new(app))
    }

    /// Joins the cluster at `redis` as this store's node and waits until the node has caught
    /// up; a store made without `--node` is an error.
    pub async fn join_cluster(&self, redis: &str) -> Result<(), String> {
        let replica = self
            .store
            .replica()
            .ok_or("the store was made without a node name")?
            .clone();
        let name = replica
            .node()
            .as_str()
            .split('/')
            .next()
            .unwrap_or("node")
            .to_owned();
        let transport = presence_cluster::RedisStreams::connect(redis, "presence", 1_000_000)
            .await
            .map_err(|e| format!("cannot reach {}: {e}", cluster::redacted(redis)))?;
        let config = presence_cluster::ClusterConfig {
            name,
            // The server's sweeper sweeps through the replica.
            sweep_every: None,
            ..presence_cluster::ClusterConfig::default()
        };
        let cluster = presence_cluster::Cluster::join_replica(replica, transport, config)
            .await
            .map_err(|e| e.to_string())?;
        cluster.wait_ready().await;
        self.cluster
            .set(cluster)
            .map_err(|_| "already in a cluster".to_owned())
    }

    /// The router of every dialect, with the shared limits and error bodies.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .merge(symphony::routes())
            .merge(rocketchat::routes())
            .merge(genesys::routes())
            .merge(openapi::routes())
            .merge(devices::routes())
            .merge(metrics::routes())
            .with_state(self.clone())
            .layer(axum::extract::DefaultBodyLimit::max(http::MAX_BODY))
            // Outermost, but inside the router, so it sees the matched route.
            .layer(from_fn_with_state(self.clone(), requests::pipeline))
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

    /// Starts the sweeper (idle and expiry), the periodic snapshot (with a data directory)
    /// and, if asked, the demo simulation.
    pub fn spawn_background(self: &Arc<Self>, simulate: bool, snapshot_interval: Duration) {
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
        if self.data.is_some() && self.store.replica().is_some() {
            // Other nodes' organization changes reach the data directory too: no request of
            // this node's saves them.
            let app = self.clone();
            tokio::spawn(async move {
                let mut saved = 0;
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tick.tick().await;
                    let version = app.store.org_version();
                    if version == saved {
                        continue;
                    }
                    match app.clone().save_org().await {
                        Ok(()) => saved = version,
                        Err(e) => tracing::warn!("organization state not saved: {e}"),
                    }
                }
            });
        }
        if self.data.is_some() {
            let app = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(snapshot_interval);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = app.clone().save_presence().await {
                        tracing::warn!("presence snapshot not written: {e}");
                    }
                }
            });
        }
        if simulate {
            demo::spawn_simulation(self.clone());
        }
    }

    /// Writes the organization state to the data directory (if any), off the async workers.
    pub async fn save_org(self: Arc<Self>) -> Result<(), String> {
        tokio::task::spawn_blocking(move || match &self.data {
            Some(data) => data.save_org(&self),
            None => Ok(()),
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Writes the presence snapshot to the data directory (if any), off the async workers.
    pub async fn save_presence(self: Arc<Self>) -> Result<(), String> {
        tokio::task::spawn_blocking(move || match &self.data {
            Some(data) => data.save_presence(&self.store, self.clock.now_ms()),
            None => Ok(()),
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    }
}
