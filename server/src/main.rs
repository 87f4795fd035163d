//! An HTTP server that speaks Symphony's, Rocket.Chat's and Genesys Cloud's presence APIs over
//! one embedded [`presence_store::PresenceStore`], so those vendors' own clients work against it.
//!
//! ```text
//! cargo run --release -p presence-server             # 127.0.0.1:8080, 1000 demo users, ./presence-data
//! cargo run --release -p presence-server -- --help   # every flag, its PRESENCE_* variable, its default
//! ```
//!
//! At start it restores the data directory, prints the demo credentials of each dialect and a
//! `curl` line to try, and logs where it listens; SIGTERM or SIGINT stop it gracefully.

use presence_server as app;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use app::config::ConfigError;
use presence_store::SystemClock;

/// The server allocates small, short-lived buffers on every request and every stream message
/// from many threads at once; mimalloc's thread-local free lists serve them in a fraction of
/// glibc malloc's instructions (BENCHMARKS.md, "The request path").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match app::Options::from_args(std::env::args_os()) {
        Ok(options) => options,
        // `--help` and `--version` exit 0 here, a bad flag 2, each with clap's text.
        Err(ConfigError::Flags(e)) => e.exit(),
        Err(ConfigError::File(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Held to the end of `main`: its drop flushes the log lines still buffered.
    let _logs = app::logs::init(options.log_format);
    let app = match app::App::new(&options, Arc::new(SystemClock)) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(redis) = &options.redis {
        if let Err(e) = app.join_cluster(redis).await {
            tracing::error!("cannot join the cluster: {e}");
            return ExitCode::FAILURE;
        }
        if let Some(replica) = app.store.replica() {
            tracing::info!(node = %replica.node(), "joined the cluster");
        }
    }
    let listener = match tokio::net::TcpListener::bind(options.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("cannot listen on {}: {e}", options.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(options.addr);
    if options.demo {
        println!("{}", app.banner(addr));
    }
    app.spawn_background(options.demo && options.simulate, options.snapshot_interval);
    app.lifecycle.set_ready();
    tracing::info!(
        %addr,
        users = app.store.len(),
        directory = app.directory.len(),
        data_dir = %options.data_dir.as_deref().map_or("-".into(), |d| d.display().to_string()),
        "presence-server started"
    );

    let closing = app.clone();
    let shutdown = async move {
        let signal = app::lifecycle::signal().await;
        tracing::info!(signal, "shutting down: no new connections");
        closing.lifecycle.close();
    };
    // With the client's address, which login throttling keys on.
    let service = app
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(shutdown);
    let deadline = async {
        app.lifecycle.closed().await;
        tokio::time::sleep(options.shutdown_timeout).await;
    };
    tokio::select! {
        served = server => if let Err(e) = served {
            tracing::error!("server failed: {e}");
            return ExitCode::FAILURE;
        },
        () = deadline => tracing::warn!(
            timeout = ?options.shutdown_timeout,
            "requests still in flight at the shutdown deadline are dropped"
        ),
    }
    // Streams send their close frames on `close()`; give them the same deadline.
    let streams_closed = async {
        while app.streams.open() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let _ = tokio::time::timeout(options.shutdown_timeout, streams_closed).await;
    let code = match app.clone().save_presence().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("presence snapshot not written at shutdown: {e}");
            ExitCode::FAILURE
        }
    };
    tracing::info!("presence-server stopped");
    code
}
