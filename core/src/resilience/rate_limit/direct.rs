//! The single-key limiter: GCRA on one `AtomicU64` holding the TAT.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::gcra::{Decision, Quota, decide};
use super::{NotUntil, RateLimitError};
use crate::resilience::clock::{MonotonicClock, SystemClock};

/// A lock-free GCRA rate limiter for one stream of requests.
///
/// State is a single `AtomicU64` (the theoretical arrival time, in
/// nanoseconds on the limiter's clock) updated with a CAS loop, so a check is
/// one load plus one successful CAS when uncontended and never allocates.
#[derive(Debug)]
pub struct RateLimiter {
    quota: Quota,
    tat: AtomicU64,
    clock: Arc<dyn MonotonicClock>,
}

impl RateLimiter {
    /// A limiter on the system clock.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, Arc::new(SystemClock::new()))
    }

    /// A limiter on an injected clock (tests use `ManualClock`).
    pub fn with_clock(quota: Quota, clock: Arc<dyn MonotonicClock>) -> Self {
        Self { quota, tat: AtomicU64::new(0), clock }
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Admits one cell or says when it would conform.
    ///
    /// # Errors
    /// [`NotUntil`] with the wait time when the limit is reached.
    pub fn check(&self) -> Result<(), NotUntil> {
        match self.check_n(1) {
            Ok(()) => Ok(()),
            Err(RateLimitError::NotUntil(n)) => Err(n),
            // A quota's burst is at least 1, so one cell always fits.
            Err(RateLimitError::InsufficientCapacity { .. }) => Err(NotUntil::new(Duration::MAX)),
        }
    }

    /// Admits `n` cells at once, all or nothing.
    ///
    /// # Errors
    /// [`RateLimitError::NotUntil`] when the cells do not conform yet;
    /// [`RateLimitError::InsufficientCapacity`] when `n` exceeds the burst
    /// and can never conform.
    pub fn check_n(&self, n: u32) -> Result<(), RateLimitError> {
        check_atomic(&self.tat, self.clock.now_nanos(), &self.quota, n)
    }
}

/// The CAS loop shared by the direct and keyed limiters.
pub(crate) fn check_atomic(tat: &AtomicU64, now: u64, quota: &Quota, n: u32) -> Result<(), RateLimitError> {
    let mut current = tat.load(Ordering::Acquire);
    loop {
        let (decision, next) = decide(current, now, quota, n);
        match decision {
            Decision::Allowed { .. } => {
                if next == current {
                    return Ok(());
                }
                match tat.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Ok(()),
                    Err(actual) => current = actual,
                }
            }
            Decision::Denied { retry_after } => return Err(RateLimitError::NotUntil(NotUntil::new(retry_after))),
            Decision::InsufficientCapacity { burst } => {
                return Err(RateLimitError::InsufficientCapacity { requested: n, burst });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use proptest::prelude::*;

    use super::*;
    use crate::resilience::clock::ManualClock;

    fn limiter(per_sec: u32, burst: u32) -> (RateLimiter, ManualClock) {
        let clock = ManualClock::new();
        let quota = Quota::per_second(NonZeroU32::new(per_sec).unwrap())
            .allow_burst(NonZeroU32::new(burst).unwrap());
        (RateLimiter::with_clock(quota, Arc::new(clock.clone())), clock)
    }

    #[test]
    fn burst_then_wait_time() {
        let (rl, clock) = limiter(4, 2); // T = 250 ms
        assert!(rl.check().is_ok());
        assert!(rl.check().is_ok());
        assert_eq!(rl.check().unwrap_err().wait_time(), Duration::from_millis(250));
        clock.advance(Duration::from_millis(100));
        assert_eq!(rl.check().unwrap_err().wait_time(), Duration::from_millis(150));
        clock.advance(Duration::from_millis(150));
        assert!(rl.check().is_ok());
        assert!(rl.check().is_err());
    }

    #[test]
    fn check_n_distinguishes_never_from_not_yet() {
        let (rl, clock) = limiter(10, 5);
        assert_eq!(rl.check_n(6), Err(RateLimitError::InsufficientCapacity { requested: 6, burst: 5 }));
        assert!(rl.check_n(5).is_ok());
        match rl.check_n(2) {
            Err(RateLimitError::NotUntil(n)) => assert_eq!(n.wait_time(), Duration::from_millis(200)),
            other => panic!("expected NotUntil, got {other:?}"),
        }
        clock.advance(Duration::from_millis(200));
        assert!(rl.check_n(2).is_ok());
    }

    #[test]
    fn real_threads_on_a_frozen_clock_admit_exactly_the_burst() {
        let (rl, _clock) = limiter(1, 50);
        let admitted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if rl.check().is_ok() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::Relaxed), 50);
    }

    proptest! {
        /// GCRA's guarantee: in any window of length t, at most
        /// `burst + t/T` cells are admitted.
        #[test]
        fn never_more_than_burst_plus_rate_times_window(
            per_sec in 1u32..50,
            burst in 1u32..10,
            gaps in proptest::collection::vec(0u64..200_000_000, 1..200),
        ) {
            let (rl, clock) = limiter(per_sec, burst);
            let mut admitted = Vec::new();
            for gap in gaps {
                clock.advance(Duration::from_nanos(gap));
                if rl.check().is_ok() {
                    admitted.push(clock.now_nanos());
                }
            }
            let t = rl.quota().emission_interval_nanos();
            for (i, &start) in admitted.iter().enumerate() {
                for (j, &end) in admitted.iter().enumerate().skip(i) {
                    let count = (j - i + 1) as u64;
                    // count ≤ b + (end − start)/T, kept in integers.
                    prop_assert!(count * t <= u64::from(burst) * t + (end - start),
                        "{count} cells in {} ns", end - start);
                }
            }
        }
    }
}
