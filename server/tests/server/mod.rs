//! Starts the server in-process on `127.0.0.1:0` for the HTTP tests: a small demo
//! directory, no simulation, a [`ManualClock`] the test drives, and a client.

#![allow(dead_code)]

pub use presence_server as app;

use std::sync::Arc;

use presence_store::ManualClock;

#[allow(unused_imports)]
pub use app::accounts::{DEMO_GENESYS_TOKEN, DEMO_ROCKETCHAT_TOKEN, DEMO_SYMPHONY_TOKEN};
pub use app::App;

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

/// Starts a server with `users` demo users and the demo accounts.
pub async fn start(users: usize) -> TestServer {
    let options = app::Options {
        demo_users: users,
        simulate: false,
        ..app::Options::default()
    };
    start_with(options).await
}

/// Starts a server with `options` (its address is ignored: the server takes a free port).
pub async fn start_with(options: app::Options) -> TestServer {
    let clock = Arc::new(ManualClock::new(START_MS));
    let app = App::new(&options, clock.clone()).expect("server state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app.router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    TestServer {
        base,
        app,
        clock,
        client: reqwest::Client::new(),
    }
}
