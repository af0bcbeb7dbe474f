//! The rate-limit store port: the GCRA policy over shared state (Redis in
//! production, a process-local map in tests and single-node setups).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::gcra::{Decision, Quota, decide};
use crate::resilience::clock::{MonotonicClock, SystemClock};

/// Why a store could not decide.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable or timed out; callers choose to fail open
    /// or closed.
    #[error("rate-limit store unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// The backend answered something that is not a decision.
    #[error("rate-limit store returned an invalid reply: {0}")]
    InvalidReply(String),
}

/// A GCRA rate limiter whose state lives behind a port.
///
/// Contract, for every implementation:
/// - MUST apply [`decide`] atomically per key: the read of the stored TAT,
///   the decision and the write of the new TAT are one step (a Lua script in
///   Redis, a lock here), so concurrent callers never both spend the last cell.
/// - MUST take `now` from one clock shared by every caller of the same key
///   (Redis: the server's `TIME`), never from each client, so client clock
///   skew cannot widen the quota. That is why `now` is not a parameter.
/// - MUST store nothing on a denial and MUST return
///   [`Decision::InsufficientCapacity`] when `n > quota.burst()`.
/// - MAY forget a key once its TAT is in the past (Redis: `PEXPIRE` of
///   `new_tat − now`); a forgotten key behaves exactly like a fresh one.
///
/// # Example
/// ```
/// use std::num::NonZeroU32;
/// use bazaar_core::resilience::rate_limit::{InMemoryRateLimitStore, Quota, RateLimitStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = InMemoryRateLimitStore::new();
/// let quota = Quota::per_second(NonZeroU32::new(1).unwrap());
/// assert!(store.check("ip:10.0.0.1", &quota, 1).await.unwrap().is_allowed());
/// assert!(!store.check("ip:10.0.0.1", &quota, 1).await.unwrap().is_allowed());
/// # }
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateLimitStore: Send + Sync + std::fmt::Debug {
    /// Tries to admit `n` cells for `key` under `quota`.
    ///
    /// # Errors
    /// [`StoreError`] when the backend cannot decide.
    async fn check(&self, key: &str, quota: &Quota, n: u32) -> Result<Decision, StoreError>;
}

/// The process-local [`RateLimitStore`]: a map of TATs under one mutex,
/// running the same [`decide`] a Redis script would.
///
/// Idle keys (fully replenished, so forgetting them changes nothing) are
/// swept whenever the map has doubled since the last sweep, so the map
/// stays within twice the keys active in the last quota period however
/// many addresses pass by, at an amortised O(1) per check.
#[derive(Debug)]
pub struct InMemoryRateLimitStore {
    tats: Mutex<Tats>,
    clock: Arc<dyn MonotonicClock>,
}

/// The map, and the size at which it is swept next.
#[derive(Debug)]
struct Tats {
    by_key: HashMap<String, u64>,
    sweep_at: usize,
}

/// The smallest map worth sweeping.
const MIN_SWEEP: usize = 1024;

impl Tats {
    fn sweep(&mut self, now: u64) -> usize {
        let before = self.by_key.len();
        self.by_key.retain(|_, tat| *tat > now);
        self.sweep_at = (self.by_key.len() * 2).max(MIN_SWEEP);
        before - self.by_key.len()
    }
}

impl Default for InMemoryRateLimitStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryRateLimitStore {
    /// A store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// A store on an injected clock.
    pub fn with_clock(clock: Arc<dyn MonotonicClock>) -> Self {
        Self { tats: Mutex::new(Tats { by_key: HashMap::new(), sweep_at: MIN_SWEEP }), clock }
    }

    /// Forgets keys whose TAT has passed (the `PEXPIRE` of the Redis
    /// adapter); returns how many were dropped.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now_nanos();
        self.tats.lock().sweep(now)
    }

    /// How many keys hold state.
    pub fn len(&self) -> usize {
        self.tats.lock().by_key.len()
    }

    /// Whether no key holds state.
    pub fn is_empty(&self) -> bool {
        self.tats.lock().by_key.is_empty()
    }
}

#[async_trait]
impl RateLimitStore for InMemoryRateLimitStore {
    async fn check(&self, key: &str, quota: &Quota, n: u32) -> Result<Decision, StoreError> {
        let now = self.clock.now_nanos();
        let mut tats = self.tats.lock();
        let tat = tats.by_key.get(key).copied().unwrap_or(0);
        let (decision, new_tat) = decide(tat, now, quota, n);
        if decision.is_allowed() && new_tat != tat {
            tats.by_key.insert(key.to_owned(), new_tat);
            if tats.by_key.len() >= tats.sweep_at {
                tats.sweep(now);
            }
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use super::*;
    use crate::resilience::clock::ManualClock;

    #[tokio::test]
    async fn same_policy_as_the_local_limiter() {
        let clock = ManualClock::new();
        let store = InMemoryRateLimitStore::with_clock(Arc::new(clock.clone()));
        let quota = Quota::per_second(NonZeroU32::new(2).unwrap());
        let store: &dyn RateLimitStore = &store;
        assert_eq!(store.check("k", &quota, 2).await.unwrap(), Decision::Allowed { remaining: 0 });
        assert_eq!(
            store.check("k", &quota, 1).await.unwrap(),
            Decision::Denied { retry_after: Duration::from_millis(500) }
        );
        assert_eq!(store.check("k", &quota, 3).await.unwrap(), Decision::InsufficientCapacity { burst: 2 });
        assert!(store.check("other", &quota, 1).await.unwrap().is_allowed());
        clock.advance(Duration::from_millis(500));
        assert_eq!(store.check("k", &quota, 1).await.unwrap(), Decision::Allowed { remaining: 0 });
    }

    #[tokio::test]
    async fn a_stream_of_passing_keys_is_evicted_as_the_map_grows() {
        let clock = ManualClock::new();
        let store = InMemoryRateLimitStore::with_clock(Arc::new(clock.clone()));
        let quota = Quota::per_second(NonZeroU32::new(1).unwrap());
        for i in 0..100_000 {
            store.check(&format!("ip:{i}"), &quota, 1).await.unwrap();
            // Each key is idle a second later; only about a second's worth
            // of keys (here 100) may be held, plus up to one doubling.
            clock.advance(Duration::from_millis(10));
        }
        assert!(store.len() <= MIN_SWEEP, "{} keys held", store.len());
        // A key still spending its quota survives a sweep.
        store.check("busy", &quota, 1).await.unwrap();
        for i in 0..(MIN_SWEEP * 2) {
            store.check(&format!("burst:{i}"), &quota, 1).await.unwrap();
        }
        assert!(!store.check("busy", &quota, 1).await.unwrap().is_allowed());
    }

    #[tokio::test]
    async fn sweep_forgets_replenished_keys_only() {
        let clock = ManualClock::new();
        let store = InMemoryRateLimitStore::with_clock(Arc::new(clock.clone()));
        let quota = Quota::per_second(NonZeroU32::new(1).unwrap());
        let fast = Quota::per_second(NonZeroU32::new(10).unwrap());
        store.check("slow", &quota, 1).await.unwrap();
        store.check("fast", &fast, 1).await.unwrap();
        clock.advance(Duration::from_millis(500));
        assert_eq!(store.sweep(), 1);
        assert_eq!(store.len(), 1);
        assert!(!store.check("slow", &quota, 1).await.unwrap().is_allowed());
    }
}
