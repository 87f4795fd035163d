//! An HTTP server that speaks Symphony's, Rocket.Chat's and Genesys Cloud's presence APIs over
//! one embedded [`presence_store::PresenceStore`], so those vendors' own clients work against it.
//!
//! ```text
//! cargo run --release -p presence-server                # 127.0.0.1:8080, 1000 demo users, live
//! cargo run --release -p presence-server -- --help      # address, demo size, simulation, accounts
//! ```
//!
//! At start it prints the demo credentials of each dialect and a `curl` line to try.

use presence_server as app;

use std::process::ExitCode;
use std::sync::Arc;

use presence_store::SystemClock;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match app::Options::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{}", app::Options::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{}", app::Options::USAGE);
            return ExitCode::from(2);
        }
    };
    let app = match app::App::new(&options, Arc::new(SystemClock)) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(redis) = &options.redis {
        if let Err(e) = app.join_cluster(redis).await {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        if let Some(replica) = app.store.replica() {
            println!("joined the cluster at {redis} as node {}", replica.node());
        }
    }
    let listener = match tokio::net::TcpListener::bind(options.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", options.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(options.addr);
    println!("{}", app.banner(addr));
    app.spawn_background(options.simulate);
    let shutdown = async {
        // Without a signal handler the server simply runs until killed.
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
