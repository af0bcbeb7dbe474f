//! The single-key limiter: GCRA on one `AtomicU64` holding the TAT.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::gcra::Quota;
use super::{LimiterClock, NotUntil, RateLimitError};
use crate::resilience::clock::{MonotonicClock, SystemClock};

/// The TAT alone on its own cache-line pair.
///
/// Under contention the TAT's line ping-pongs between cores; the quota and
/// clock next to it are read on every check and never written, so sharing a
/// line with the TAT would turn each of those reads into a coherence miss.
/// 128 bytes because x86's adjacent-line prefetcher pulls lines in pairs.
#[derive(Debug, Default)]
#[repr(align(128))]
struct PaddedTat(AtomicU64);

/// A lock-free GCRA rate limiter for one stream of requests.
///
/// State is a single `AtomicU64` (the theoretical arrival time, in
/// nanoseconds on the limiter's clock) updated with a CAS loop, so a check is
/// one clock read, one load and one successful CAS when uncontended, and
/// never allocates.
#[derive(Debug)]
pub struct RateLimiter {
    tat: PaddedTat,
    quota: Quota,
    clock: LimiterClock,
}

impl RateLimiter {
    /// A limiter on the system clock.
    pub fn new(quota: Quota) -> Self {
        Self::with_limiter_clock(quota, LimiterClock::System(SystemClock::new()))
    }

    /// A limiter on an injected clock (tests use `ManualClock`).
    pub fn with_clock(quota: Quota, clock: Arc<dyn MonotonicClock>) -> Self {
        Self::with_limiter_clock(quota, LimiterClock::Injected(clock))
    }

    fn with_limiter_clock(quota: Quota, clock: LimiterClock) -> Self {
        Self { tat: PaddedTat::default(), quota, clock }
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Admits one cell or says when it would conform.
    ///
    /// # Errors
    /// [`NotUntil`] with the wait time when the limit is reached.
    // `#[inline]` so the hot path is compiled into the caller's crate (as
    // governor's generic `check` is) instead of costing a call.
    #[inline]
    pub fn check(&self) -> Result<(), NotUntil> {
        // One cell always fits: a burst is at least 1, so no capacity check.
        admit(&self.tat.0, self.clock.now_nanos(), self.quota.increment_nanos(1), self.quota.capacity_nanos())
    }

    /// Admits `n` cells at once, all or nothing.
    ///
    /// # Errors
    /// [`RateLimitError::NotUntil`] when the cells do not conform yet;
    /// [`RateLimitError::InsufficientCapacity`] when `n` exceeds the burst
    /// and can never conform.
    #[inline]
    pub fn check_n(&self, n: u32) -> Result<(), RateLimitError> {
        check_atomic(&self.tat.0, &self.clock, &self.quota, n)
    }
}

/// `check_n` shared by the direct and keyed limiters: rejects `n` above the
/// burst before touching the clock or the atomic, then runs [`admit`].
#[inline]
pub(crate) fn check_atomic(tat: &AtomicU64, clock: &LimiterClock, quota: &Quota, n: u32) -> Result<(), RateLimitError> {
    let burst = quota.burst();
    if n > burst {
        return Err(RateLimitError::InsufficientCapacity { requested: n, burst });
    }
    admit(tat, clock.now_nanos(), quota.increment_nanos(n), quota.capacity_nanos()).map_err(RateLimitError::NotUntil)
}

/// The GCRA admit step on one atomic TAT: [`decide`](super::decide) for
/// `n ≤ burst`, with `increment = n·T` and `capacity = b·T` precomputed so
/// the loop is a max, an add, a compare and a CAS (no division, no
/// `Decision` built and thrown away).
///
/// Orderings are all `Relaxed`, deliberately:
/// - The TAT publishes no other memory, so no acquire/release pairing is
///   needed; callers learn nothing from it except the decision.
/// - No over-admission: read-modify-writes on one atomic always act on the
///   latest value in its modification order whatever the ordering, so two
///   CASes can never both move the TAT from the same value; the loser's CAS
///   fails and returns the winner's value.
/// - The initial load may be stale under any ordering (acquire orders later
///   accesses; it does not make a load fresher). The TAT only grows, so a
///   stale value is smaller and can only look more permissive: an admit from
///   it is re-validated by the CAS, and if even the stale value is over the
///   horizon the current one is too (only the reported wait may be short,
///   exactly as it could be with `Acquire`). `Acquire`/`Release` would cost
///   barriers on ARM and buy nothing; on x86 all of these compile to the
///   same code.
///
/// On a failed CAS the returned value is the fresh TAT, so the loop
/// recomputes from it without reloading and with the same `now` (time read
/// before the load is only ever behind, which again errs towards denying).
#[inline(always)]
fn admit(tat: &AtomicU64, now: u64, increment: u64, capacity: u64) -> Result<(), NotUntil> {
    let horizon = now.saturating_add(capacity);
    let mut current = tat.load(Ordering::Relaxed);
    loop {
        let next = current.max(now).saturating_add(increment);
        if next > horizon {
            return Err(NotUntil::new(Duration::from_nanos(next - horizon)));
        }
        match tat.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(actual) => current = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use proptest::prelude::*;

    use super::*;
    use crate::resilience::clock::ManualClock;
    use crate::resilience::rate_limit::{Decision, decide};

    fn limiter(per_sec: u32, burst: u32) -> (RateLimiter, ManualClock) {
        let clock = ManualClock::new();
        let quota = Quota::per_second(NonZeroU32::new(per_sec).unwrap()).allow_burst(NonZeroU32::new(burst).unwrap());
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
            Err(RateLimitError::NotUntil(n)) => {
                assert_eq!(n.wait_time(), Duration::from_millis(200))
            }
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

    #[test]
    fn system_clock_limiter_admits_the_burst_then_denies() {
        // One cell per hour: the real clock cannot replenish mid-test.
        let quota = Quota::with_period(Duration::from_secs(3600)).allow_burst(NonZeroU32::new(3).unwrap());
        let rl = RateLimiter::new(quota);
        assert!(rl.check_n(2).is_ok());
        assert!(rl.check().is_ok());
        let wait = rl.check().unwrap_err().wait_time();
        assert!(wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600));
        assert!(matches!(rl.check_n(4), Err(RateLimitError::InsufficientCapacity { .. })));
    }

    proptest! {
        /// The CAS fast path takes exactly the decisions of the reference
        /// `decide`, wait times included, for any mix of `n` (0 and above
        /// the burst too) and clock steps.
        #[test]
        fn fast_path_matches_decide(
            per_sec in 1u32..50,
            burst in 1u32..10,
            steps in proptest::collection::vec((0u64..300_000_000, 0u32..12), 1..200),
        ) {
            let (rl, clock) = limiter(per_sec, burst);
            let quota = *rl.quota();
            let mut model_tat = 0;
            for (gap, n) in steps {
                clock.advance(Duration::from_nanos(gap));
                let (decision, next) = decide(model_tat, clock.now_nanos(), &quota, n);
                model_tat = next;
                let expected = match decision {
                    Decision::Allowed { .. } => Ok(()),
                    Decision::Denied { retry_after } => {
                        Err(RateLimitError::NotUntil(NotUntil::new(retry_after)))
                    }
                    Decision::InsufficientCapacity { burst } => {
                        Err(RateLimitError::InsufficientCapacity { requested: n, burst })
                    }
                };
                prop_assert_eq!(rl.check_n(n), expected);
            }
        }

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
