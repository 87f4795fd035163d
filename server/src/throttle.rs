//! Throttling of logins, per account and per client address, with `governor`'s GCRA limiters
//! (the well-kept crate for it: keyed, lock-free, and its state per key is one `u64`).
//!
//! Every attempt counts, right or wrong, before the credentials are checked: so a burst of
//! wrong passwords throttles the right one too until the window passes, and the time an answer
//! takes never depends on the secret. A client address that keeps sending tokens that do not
//! exist is throttled the same way ([`Throttle::refused_token`]), which makes guessing tokens
//! through any route's 401 as slow as guessing passwords.
//!
//! Time comes from the store's [`Clock`], so tests drive the window with a `ManualClock`. Keys
//! that are back to a fresh state are dropped by [`Throttle::sweep`], so the limiters' maps stay
//! as small as the set of callers seen within one window.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use presence_store::Clock;

use super::accounts::AccountDialect;
use super::http::Dialect;
use super::policy::Policy;

/// The store's clock, as `governor` reads time.
#[derive(Clone)]
pub struct StoreClock(Arc<dyn Clock>);

impl GovernorClock for StoreClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(Duration::from_millis(self.0.now_ms()))
    }
}

type Limiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, StoreClock, NoOpMiddleware<Nanos>>;

/// The longest account name kept as a key; longer names are cut (they match no account).
const MAX_KEY_LEN: usize = 128;

/// The limiters.
pub struct Throttle {
    by_account: Limiter<(AccountDialect, String)>,
    by_address: Limiter<IpAddr>,
    refused: Limiter<IpAddr>,
    clock: StoreClock,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

/// A quota of `burst` at once, then one per `refill_secs`.
fn quota(burst: u32, refill_secs: u64) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(Duration::from_secs(refill_secs.max(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Throttle {
    /// Limiters with `policy`'s quotas, reading time from `clock`.
    pub fn new(policy: &Policy, clock: Arc<dyn Clock>) -> Throttle {
        let clock = StoreClock(clock);
        let account = quota(
            policy.login_burst_per_account,
            policy.login_refill_secs_per_account,
        );
        let address = quota(
            policy.login_burst_per_address,
            policy.login_refill_secs_per_address,
        );
        Throttle {
            by_account: RateLimiter::new(account, DefaultKeyedStateStore::default(), clock.clone()),
            by_address: RateLimiter::new(address, DefaultKeyedStateStore::default(), clock.clone()),
            refused: RateLimiter::new(
                quota(policy.refused_tokens_burst_per_address, 1),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            clock,
        }
    }

    /// Counts a login attempt for `account` of `dialect` from `address` (unknown in
    /// in-process tests); `Err` with the wait before the next may pass. The address is
    /// checked first, so one address cannot fill the account map with names.
    pub fn login(
        &self,
        dialect: AccountDialect,
        account: &str,
        address: Option<IpAddr>,
    ) -> Result<(), Duration> {
        if let Some(address) = address {
            self.check(&self.by_address, &address)?;
        }
        let name: String = account.chars().take(MAX_KEY_LEN).collect();
        self.check(&self.by_account, &(dialect, name))
    }

    /// Counts a request whose token does not exist (or expired, or was revoked).
    pub fn refused_token(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        match address {
            Some(address) => self.check(&self.refused, &address),
            None => Ok(()),
        }
    }

    /// One attempt for `key` against `limiter`; `Err` with the wait before the next may pass.
    fn check<K: Clone + std::hash::Hash + Eq>(
        &self,
        limiter: &Limiter<K>,
        key: &K,
    ) -> Result<(), Duration> {
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Drops the keys whose quota is full again.
    pub fn sweep(&self) {
        self.by_account.retain_recent();
        self.by_address.retain_recent();
        self.refused.retain_recent();
    }

    /// Keys held (accounts and addresses).
    pub fn len(&self) -> usize {
        self.by_account.len() + self.by_address.len() + self.refused.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The 429 in `dialect`'s error body, with `Retry-After` in whole seconds (at least 1).
pub fn too_many(dialect: Dialect, retry: Duration) -> Response {
    let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
    let secs = secs.max(1);
    let message = format!("too many attempts: retry in {secs} s");
    let mut response = dialect.error(StatusCode::TOO_MANY_REQUESTS, &message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_store::ManualClock;

    #[test]
    fn a_burst_is_throttled_and_the_window_restores_it() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let throttle = Throttle::new(&Policy::default(), clock.clone());
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..5 {
            throttle.login(AccountDialect::Genesys, "c", ip).unwrap();
        }
        let wait = throttle
            .login(AccountDialect::Genesys, "c", ip)
            .unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(12));
        // Another account from the same address still passes, until the address's quota.
        throttle.login(AccountDialect::Genesys, "d", ip).unwrap();
        clock.advance(wait);
        throttle.login(AccountDialect::Genesys, "c", ip).unwrap();
        clock.advance(Duration::from_secs(3600));
        throttle.sweep();
        assert!(throttle.is_empty());
    }
}
