//! `presence-server`: the HTTP service, as a library so `tests/` can start it in-process: options, the shared
//! state ([`App`]), and the router that mounts each dialect under its vendor's prefix.
//!
//! | prefix | dialect | auth |
//! | --- | --- | --- |
//! | `/pod`, `/login`, `/relay` | Symphony | `sessionToken` header (RS512 JWT login) |
//! | `/api/v1` | Rocket.Chat | `X-Auth-Token` + `X-User-Id` |
//! | `/api/v2`, `/oauth` | Genesys Cloud | `Authorization: Bearer` (client credentials) |
//! | `/devices` | the server's own | `Authorization: Bearer` (any issued token) |
//!
//! Every error a dialect's routes give (bad input, 401, 403, 404, 405, 413, 415) carries that
//! dialect's error body; see [`http`].

// Nothing from a request may panic the server.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod accounts;
pub mod cluster;
pub mod demo;
pub mod devices;
pub mod directory;
pub mod genesys;
pub mod http;
pub mod openapi;
pub mod rocketchat;
pub mod symphony;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use presence_store::{Clock, PresenceStore, StoreConfig};

use accounts::{Accounts, Tokens};
use directory::Directory;

pub use cluster::Store;

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
    /// The Redis URL of the cluster to join, if any (with `node`).
    pub redis: Option<String>,
    /// This node's name in the cluster.
    pub node: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            demo_users: 1000,
            simulate: true,
            accounts: None,
            redis: None,
            node: None,
        }
    }
}

impl Options {
    /// What `--help` prints.
    pub const USAGE: &'static str = "\
usage: server [--addr HOST:PORT] [--users N] [--no-simulate] [--accounts FILE]
              [--redis URL --node NAME]

  --addr HOST:PORT   where to listen (default 127.0.0.1:8080)
  --users N          demo users in the directory (default 1000)
  --no-simulate      no simulated devices (presence changes only through the APIs)
  --accounts FILE    JSON file of accounts and tokens (default: the demo accounts)
  --redis URL        join the cluster replicated over this Redis (redis://host:port)
  --node NAME        this instance's name in the cluster (with --redis)";

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
                "--redis" => options.redis = Some(value("--redis")?),
                "--node" => options.node = Some(value("--node")?),
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if options.redis.is_some() != options.node.is_some() {
            return Err("--redis and --node go together".to_owned());
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
    /// Symphony's own state.
    pub symphony: symphony::State,
    /// Rocket.Chat's own state (settings).
    pub rocketchat: rocketchat::State,
    /// Genesys's own state (presence settings).
    pub genesys: genesys::State,
    /// The store's clock, for timestamps the server writes.
    pub clock: Arc<dyn Clock>,
    /// The cluster this instance is a node of, once joined.
    pub cluster: std::sync::OnceLock<presence_cluster::Cluster<u64>>,
}

impl App {
    /// A server state for `options`, reading time from `clock`.
    pub fn new(options: &Options, clock: Arc<dyn Clock>) -> Result<Arc<App>, String> {
        let directory = Directory::demo(options.demo_users);
        let accounts = match &options.accounts {
            Some(path) => Accounts::load(path)?,
            None => Accounts::demo(&directory),
        };
        let tokens = Tokens::from_accounts(&accounts)?;
        let config = StoreConfig::default();
        let store = PresenceStore::with_clock(config, clock.clone());
        let store = match &options.node {
            Some(name) => {
                let node = presence_cluster::node_id(name).map_err(|e| e.to_string())?;
                Store::clustered(store, node)
            }
            None => Store::alone(store),
        };
        Ok(Arc::new(App {
            store,
            directory,
            accounts,
            tokens,
            symphony: symphony::State::default(),
            rocketchat: rocketchat::State::default(),
            genesys: genesys::State::default(),
            clock,
            cluster: std::sync::OnceLock::new(),
        }))
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
            .map_err(|e| format!("cannot reach {redis}: {e}"))?;
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
            .merge(devices::routes())
            .merge(openapi::routes())
            .route("/metrics", axum::routing::get(metrics))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn(http::dialect_errors))
            .layer(axum::extract::DefaultBodyLimit::max(http::MAX_BODY))
    }

    /// What the server prints at start: where it listens and the demo credentials.
    pub fn banner(&self, addr: SocketAddr) -> String {
        let mut out = format!(
            "presence-store server on http://{addr} ({} users)\n",
            self.directory.len()
        );
        out.push_str(&self.tokens.describe(addr, &self.directory));
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
            }
        });
        if simulate {
            demo::spawn_simulation(self.clone());
        }
    }
}

/// `GET /metrics`: the cluster's replication figures in the Prometheus text format (empty when
/// the server runs alone).
async fn metrics(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let body = app
        .cluster
        .get()
        .map(|c| cluster::render_metrics(&c.metrics()))
        .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}
