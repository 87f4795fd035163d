//! The shards' lock: `parking_lot`'s `RwLock`, or under `--cfg presence_store_loom` loom's behind
//! the same small API, so that `tests/loom.rs` can run the cursor, delta, page and subscription
//! protocols over every interleaving of the shards' locks.
//!
//! The cfg is the crate's own rather than loom's usual `loom`: under `--cfg loom`, tokio (a
//! dev-dependency, built for every test) drops its `net` module and the HTTP dev-dependencies
//! on it fail to build. Only the shard locks are modelled; the registries' locks, the feeds'
//! mutex and the subscriptions' channels stay as they are.

#[cfg(not(presence_store_loom))]
pub(crate) use parking_lot::{RwLock, RwLockReadGuard};

#[cfg(presence_store_loom)]
pub(crate) use self::model::{RwLock, RwLockReadGuard};

#[cfg(presence_store_loom)]
mod model {
    use std::sync::PoisonError;

    pub(crate) use loom::sync::{RwLockReadGuard, RwLockWriteGuard};

    /// loom's `RwLock` with `parking_lot`'s signatures (no poisoning).
    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            RwLock(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(PoisonError::into_inner)
        }

        pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(PoisonError::into_inner)
        }
    }
}
