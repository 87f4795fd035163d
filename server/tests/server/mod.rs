//! Starts the server in-process on `127.0.0.1:0` for the HTTP tests: a small demo
//! directory, no simulation, a [`ManualClock`] the test drives, and a client.

#![allow(dead_code)]

pub use presence_server as app;

use std::sync::Arc;

use presence_store::ManualClock;

pub use app::App;

use app::accounts::{AccountDialect, Accounts};
use app::directory::Directory;

/// The tokens issued in advance in tests, in place of the demo's random ones (at least 22
/// URL-safe characters, as the server requires): `presence-bot`'s (User Provisioning), the
/// Rocket.Chat admin's (the first directory user), `demo-client`'s and `demo-gateway`'s.
pub const DEMO_SYMPHONY_TOKEN: &str = "test-symphony-session-token";
/// See [`DEMO_SYMPHONY_TOKEN`].
pub const DEMO_ROCKETCHAT_TOKEN: &str = "test-rocketchat-auth-token";
/// See [`DEMO_SYMPHONY_TOKEN`].
pub const DEMO_GENESYS_TOKEN: &str = "test-genesys-access-token";
/// See [`DEMO_SYMPHONY_TOKEN`].
pub const DEMO_GATEWAY_TOKEN: &str = "test-device-gateway-token";

/// The demo accounts of `directory` with the fixed test tokens.
pub fn test_accounts(directory: &Directory) -> Accounts {
    let mut accounts = Accounts::demo(directory).expect("the OS CSPRNG");
    accounts.set_tokens(|dialect| {
        match dialect {
            AccountDialect::Symphony => DEMO_SYMPHONY_TOKEN,
            AccountDialect::RocketChat => DEMO_ROCKETCHAT_TOKEN,
            AccountDialect::Genesys => DEMO_GENESYS_TOKEN,
            AccountDialect::Gateway => DEMO_GATEWAY_TOKEN,
        }
        .to_owned()
    });
    accounts
}

/// 2026-11-23T12:00:00Z, where test clocks start.
pub const START_MS: u64 = 1_795_435_200_000;

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state: the store, directory and tokens, for assertions.
    pub app: Arc<App>,
    /// The store's clock.
    pub clock: Arc<ManualClock>,
    /// A client.
    pub client: reqwest::Client,
}

impl TestServer {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Starts a server with `users` demo users and the demo accounts, its throttling out of reach
/// (every request of a test comes from 127.0.0.1; `tests/security.rs` starts servers with the
/// default policy to test throttling itself).
pub async fn start(users: usize) -> TestServer {
    let options = app::Options {
        demo_users: users,
        simulate: false,
        policy: app::policy::Policy {
            login_burst_per_account: 1_000_000,
            login_burst_per_address: 1_000_000,
            refused_tokens_burst_per_address: 1_000_000,
            ..app::policy::Policy::default()
        },
        ..app::Options::default()
    };
    start_with(options).await
}

/// Starts a server with `options` (its address is ignored: the server takes a free port); the
/// demo accounts get the test tokens unless `options` names an accounts file.
pub async fn start_with(options: app::Options) -> TestServer {
    let clock = Arc::new(ManualClock::new(START_MS));
    let app = match options.accounts {
        Some(_) => App::new(&options, clock.clone()),
        None => {
            let directory = Directory::demo(options.demo_users);
            let accounts = test_accounts(&directory);
            App::with_accounts(&options, directory, accounts, clock.clone())
        }
    }
    .expect("server state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    // As main.rs serves it: with the client's address, which throttling keys on.
    let service = app
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        axum::serve(listener, service).await.expect("serve");
    });
    TestServer {
        base,
        app,
        clock,
        client: reqwest::Client::new(),
    }
}
