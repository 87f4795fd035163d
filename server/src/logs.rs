//! Log output: `tracing` events written by `tracing-subscriber`, one line each, as text (the
//! default) or JSON (`--log-format json`), at the level `RUST_LOG` sets (default `info`).
//!
//! What is logged: one line per request ([`crate::requests::pipeline`]: method, matched route,
//! status, latency, account id), the start and stop lines, restores, snapshot failures. Never a
//! token, password, secret or key.
//!
//! Lines go to stderr through `tracing-appender`'s non-blocking writer: a request hands its
//! line to a dedicated thread instead of taking stderr's lock and writing it itself, which cost
//! about a third of the server's throughput at info level under `wrk` (BENCHMARKS.md). The
//! writer is not lossy: when its buffer is full a request waits, so no line is dropped. Colours
//! only on a terminal: a file or a journal gets plain lines, and the escape codes cost a tenth
//! of a request's instructions.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use super::config::LogFormat;

/// Installs the global subscriber (once; later calls do nothing). Keep the guard until the
/// process ends: dropping it flushes the lines still buffered.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    guard
}
