//! Log output: `tracing` events written by `tracing-subscriber`, one line each, as text (the
//! default) or JSON (`--log-format json`), at the level `RUST_LOG` sets (default `info`).
//!
//! What is logged: one line per request ([`crate::requests::track`]: method, matched route,
//! status, latency, account id), the start and stop lines, restores, snapshot failures. Never a
//! token, password, secret or key.

use tracing_subscriber::EnvFilter;

use super::config::LogFormat;

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
