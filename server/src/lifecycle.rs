//! The server's life from start to exit: ready once the state is restored, then, on SIGTERM
//! or SIGINT, not ready, no new connections, requests in flight finished within the
//! `--shutdown-timeout`, WebSockets closed with a close frame, the snapshot written, exit 0.
//!
//! [`Lifecycle`] is what the handlers see of it: whether the server is ready (for `/readyz`) and
//! a signal that shutdown began (streams wait on it to send their close frame).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Readiness, and the start of shutdown.
#[derive(Debug)]
pub struct Lifecycle {
    ready: AtomicBool,
    closing: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            ready: AtomicBool::new(false),
            closing: watch::Sender::new(false),
        }
    }
}

impl Lifecycle {
    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the server ready (its state restored, its listener bound).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Begins shutdown: not ready any more, and every [`closed`](Self::closed) wakes.
    pub fn close(&self) {
        self.ready.store(false, Ordering::Relaxed);
        self.closing.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Resolves once shutdown begins (at once if it has).
    pub async fn closed(&self) {
        let mut closing = self.closing.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail while we borrow it.
        let _ = closing.wait_for(|closing| *closing).await;
    }
}

/// Resolves on the first SIGTERM or SIGINT, naming it.
pub async fn signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
