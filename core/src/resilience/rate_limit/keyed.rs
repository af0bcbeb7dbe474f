//! Per-key GCRA limiters: a default quota, per-key overrides, idle eviction.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::direct::check_atomic;
use super::gcra::Quota;
use super::{LimiterClock, NotUntil, RateLimitError};
use crate::resilience::clock::{MonotonicClock, SystemClock};

#[derive(Debug)]
struct KeyState {
    quota: Quota,
    tat: AtomicU64,
}

/// A rate limiter with one GCRA cell per key (per IP, per user, ...).
///
/// The fast path is a shared read lock on the key map plus the same CAS loop
/// as [`RateLimiter`](super::RateLimiter); the write lock is taken only the
/// first time a key is seen and by [`retain_recent`](Self::retain_recent).
/// Memory grows with the number of live keys, so call `retain_recent`
/// periodically (e.g. every minute) to drop idle ones.
#[derive(Debug)]
pub struct KeyedRateLimiter<K> {
    default_quota: Quota,
    overrides: RwLock<HashMap<K, Quota>>,
    states: RwLock<HashMap<K, KeyState>>,
    clock: LimiterClock,
}

impl<K: Hash + Eq> KeyedRateLimiter<K> {
    /// A keyed limiter on the system clock where every key gets `default_quota`.
    pub fn new(default_quota: Quota) -> Self {
        Self::with_limiter_clock(default_quota, LimiterClock::System(SystemClock::new()))
    }

    /// A keyed limiter on an injected clock.
    pub fn with_clock(default_quota: Quota, clock: Arc<dyn MonotonicClock>) -> Self {
        Self::with_limiter_clock(default_quota, LimiterClock::Injected(clock))
    }

    fn with_limiter_clock(default_quota: Quota, clock: LimiterClock) -> Self {
        Self { default_quota, overrides: RwLock::new(HashMap::new()), states: RwLock::new(HashMap::new()), clock }
    }

    /// Gives `key` its own quota. The key's current state restarts so the new
    /// quota applies from the next check.
    pub fn set_quota(&self, key: K, quota: Quota) {
        self.states.write().remove(&key);
        self.overrides.write().insert(key, quota);
    }

    /// Returns `key` to the default quota.
    pub fn clear_quota<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.states.write().remove(key);
        self.overrides.write().remove(key);
    }

    /// The quota that applies to `key`.
    pub fn quota_for<Q>(&self, key: &Q) -> Quota
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.overrides.read().get(key).copied().unwrap_or(self.default_quota)
    }

    /// Admits one cell for `key`.
    ///
    /// # Errors
    /// [`NotUntil`] with the wait time when the key is over its limit.
    pub fn check<Q>(&self, key: &Q) -> Result<(), NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.check_n(key, 1) {
            Ok(()) => Ok(()),
            Err(RateLimitError::NotUntil(n)) => Err(n),
            Err(RateLimitError::InsufficientCapacity { .. }) => Err(NotUntil::new(std::time::Duration::MAX)),
        }
    }

    /// Admits `n` cells for `key`, all or nothing.
    ///
    /// # Errors
    /// As [`RateLimiter::check_n`](super::RateLimiter::check_n).
    pub fn check_n<Q>(&self, key: &Q, n: u32) -> Result<(), RateLimitError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(state) = self.states.read().get(key) {
            // Checked while the read guard is held, so states need no `Arc`
            // (whose clone and drop would be two more atomic RMWs on a count
            // every checker of a hot key shares), and `retain_recent` (write
            // lock) never drops a key mid-check, losing its admission.
            return check_atomic(&state.tat, &self.clock, &state.quota, n);
        }
        self.check_new_key(key, n)
    }

    /// The first check of a key: inserts its state (the only place an owned
    /// key is allocated, so `KeyedRateLimiter<String>` checks with a `&str`)
    /// and checks under the same write guard.
    #[cold]
    fn check_new_key<Q>(&self, key: &Q, n: u32) -> Result<(), RateLimitError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let quota = self.quota_for(key);
        let mut states = self.states.write();
        // Another thread may have inserted the key between the two locks; the
        // entry API keeps its state rather than resetting it.
        let state = states.entry(key.to_owned()).or_insert_with(|| KeyState { quota, tat: AtomicU64::new(0) });
        check_atomic(&state.tat, &self.clock, &state.quota, n)
    }

    /// Drops every key whose TAT is not in the future: such a key is fully
    /// replenished, so forgetting it is indistinguishable from keeping it.
    /// Returns how many keys were dropped.
    pub fn retain_recent(&self) -> usize {
        let now = self.clock.now_nanos();
        let mut states = self.states.write();
        let before = states.len();
        // Relaxed: the TAT guards no other data (see `direct::admit`), and
        // the write lock orders this after every check that ran under a
        // read guard.
        states.retain(|_, s| s.tat.load(Ordering::Relaxed) > now);
        before - states.len()
    }

    /// How many keys currently hold state.
    pub fn len(&self) -> usize {
        self.states.read().len()
    }

    /// Whether no key holds state.
    pub fn is_empty(&self) -> bool {
        self.states.read().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::resilience::clock::ManualClock;

    fn quota(per_sec: u32, burst: u32) -> Quota {
        Quota::per_second(NonZeroU32::new(per_sec).unwrap()).allow_burst(NonZeroU32::new(burst).unwrap())
    }

    #[test]
    fn keys_are_independent_and_overrides_apply() {
        let clock = ManualClock::new();
        let rl = KeyedRateLimiter::with_clock(quota(1, 1), Arc::new(clock.clone()));
        rl.set_quota("vip", quota(10, 3));
        assert!(rl.check(&"a").is_ok());
        assert!(rl.check(&"a").is_err());
        assert!(rl.check(&"b").is_ok());
        for _ in 0..3 {
            assert!(rl.check(&"vip").is_ok());
        }
        assert_eq!(rl.check(&"vip").unwrap_err().wait_time(), Duration::from_millis(100));
        assert_eq!(rl.quota_for(&"vip").burst(), 3);
        rl.clear_quota(&"vip");
        assert_eq!(rl.quota_for(&"vip").burst(), 1);
    }

    #[test]
    fn idle_keys_are_evicted_once_replenished() {
        let clock = ManualClock::new();
        let rl = KeyedRateLimiter::with_clock(quota(1, 2), Arc::new(clock.clone()));
        rl.check(&1).unwrap();
        rl.check(&2).unwrap();
        rl.check(&2).unwrap();
        assert_eq!(rl.len(), 2);
        // Key 1's TAT is 1 s, key 2's is 2 s.
        clock.advance(Duration::from_secs(1));
        assert_eq!(rl.retain_recent(), 1);
        assert_eq!(rl.len(), 1);
        // Key 2 is still mid-burst: its state must survive.
        assert!(rl.check(&2).is_ok());
        assert!(rl.check(&2).is_err());
        clock.advance(Duration::from_secs(5));
        assert_eq!(rl.retain_recent(), 1);
        assert!(rl.is_empty());
    }

    #[test]
    fn one_hot_key_under_real_thread_contention_admits_exactly_the_burst() {
        let clock = ManualClock::new();
        let rl: KeyedRateLimiter<String> = KeyedRateLimiter::with_clock(quota(1, 40), Arc::new(clock));
        let admitted = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if rl.check("hot").is_ok() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::Relaxed), 40);
        assert_eq!(rl.len(), 1);
    }
}
