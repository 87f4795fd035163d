//! The demo simulation (in progress).

use std::sync::Arc;

use super::App;

/// Starts simulated devices.
pub fn spawn_simulation(_app: Arc<App>) {}
