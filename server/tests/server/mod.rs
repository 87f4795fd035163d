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

/// A WebSocket client of the server's stream.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for a WebSocket message before it fails (a hang guard, not a timing
/// assertion).
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// The upgrade request of `/devices/v1/stream{query}` with `token`.
pub fn stream_request(
    s: &TestServer,
    token: &str,
    query: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/devices/v1/stream{query}",
        s.base.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().expect("a stream URL");
    let auth = format!("Bearer {token}").parse().expect("a header value");
    request.headers_mut().insert("Authorization", auth);
    request
}

/// Opens a stream with `token`.
pub async fn connect_stream(s: &TestServer, token: &str, query: &str) -> Socket {
    let request = stream_request(s, token, query);
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the stream opens");
    socket
}

/// The stream's next text message, as JSON.
pub async fn next_message(socket: &mut Socket) -> serde_json::Value {
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time")
            .expect("the stream is open")
            .expect("a message");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}
