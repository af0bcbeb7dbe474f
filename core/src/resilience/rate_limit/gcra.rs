//! The Generic Cell Rate Algorithm as pure arithmetic on nanoseconds.
//!
//! Everything here is a function of `(tat, now, quota, n)` so the same
//! decision can be taken by the in-process limiter (one `AtomicU64`), by the
//! in-memory [`RateLimitStore`](super::RateLimitStore), and by a Redis Lua
//! script that ports [`decide`] line for line.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// A rate limit: one cell every `emission_interval`, with up to `burst`
/// cells admitted back to back.
///
/// The delay variation tolerance is `τ = T·(b − 1)`: a fresh limiter admits
/// `b` cells at once, then one every `T`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    emission_interval_nanos: u64,
    burst: NonZeroU32,
    /// `b·T = τ + T` (saturating), cached because every check compares
    /// against it: the furthest the TAT may run ahead of now. A function of
    /// the two fields above, so the derived `Eq`/`Hash` stay consistent.
    capacity_nanos: u64,
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("emission_interval", &self.emission_interval())
            .field("burst", &self.burst)
            .finish()
    }
}

impl Quota {
    /// `rate` cells per second, burst equal to `rate` (governor's default).
    pub fn per_second(rate: NonZeroU32) -> Self {
        Self::with_period(Duration::from_secs(1) / rate.get()).allow_burst(rate)
    }

    /// `rate` cells per minute, burst equal to `rate`.
    pub fn per_minute(rate: NonZeroU32) -> Self {
        Self::with_period(Duration::from_secs(60) / rate.get()).allow_burst(rate)
    }

    /// One cell every `period`, burst 1. A zero period is raised to 1 ns so
    /// the arithmetic never divides by zero.
    pub fn with_period(period: Duration) -> Self {
        let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        Self { emission_interval_nanos: nanos, burst: NonZeroU32::MIN, capacity_nanos: nanos }
    }

    /// The same rate with a different burst size.
    #[must_use]
    pub fn allow_burst(self, burst: NonZeroU32) -> Self {
        Self { burst, capacity_nanos: self.emission_interval_nanos.saturating_mul(u64::from(burst.get())), ..self }
    }

    /// `T`: the time one cell "costs".
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.emission_interval_nanos)
    }

    /// `T` in nanoseconds (what a Redis script receives).
    pub fn emission_interval_nanos(&self) -> u64 {
        self.emission_interval_nanos
    }

    /// `b`: how many cells may pass back to back.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }

    /// `τ = T·(b − 1)`, the delay variation tolerance.
    pub fn delay_variation_tolerance(&self) -> Duration {
        Duration::from_nanos(self.tau_nanos())
    }

    fn tau_nanos(&self) -> u64 {
        self.emission_interval_nanos.saturating_mul(u64::from(self.burst.get() - 1))
    }

    /// `b·T`: how far the TAT may run ahead of now and still admit.
    #[inline]
    pub(crate) fn capacity_nanos(&self) -> u64 {
        self.capacity_nanos
    }

    /// `n·T`, the TAT increment for `n` cells (saturating).
    #[inline]
    pub(crate) fn increment_nanos(&self, n: u32) -> u64 {
        self.emission_interval_nanos.saturating_mul(u64::from(n))
    }
}

/// The outcome of one GCRA decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The `n` cells were admitted.
    Allowed {
        /// How many further single cells would be admitted right now
        /// (for `X-RateLimit-Remaining`).
        remaining: u32,
    },
    /// Not now; the same request is admissible after `retry_after`.
    Denied {
        /// Wait time until the request would conform.
        retry_after: Duration,
    },
    /// `n` exceeds the burst: the request can never be admitted, however
    /// long the caller waits.
    InsufficientCapacity {
        /// The burst size of the quota.
        burst: u32,
    },
}

impl Decision {
    /// Whether the cells were admitted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// Decides whether `n` cells conform at `now`, given the stored theoretical
/// arrival time `tat` (nanoseconds on the same clock as `now`; 0 for a key
/// never seen). Returns the decision and the TAT to store: unchanged unless
/// the cells were admitted.
///
/// The rule: with `t' = max(tat, now)` and `new = t' + n·T`, admit iff
/// `new − now ≤ τ + T` (equivalently `new ≤ now + b·T`). A denied request
/// waits `new − b·T − now`.
///
/// # Example
/// ```
/// use std::num::NonZeroU32;
/// use bazaar_core::resilience::rate_limit::{decide, Decision, Quota};
///
/// let quota = Quota::per_second(NonZeroU32::new(2).unwrap()); // T = 500 ms, b = 2
/// let (d, tat) = decide(0, 0, &quota, 2);
/// assert!(d.is_allowed());
/// let (d, same) = decide(tat, 0, &quota, 1);
/// assert_eq!(same, tat);
/// assert_eq!(d, Decision::Denied { retry_after: std::time::Duration::from_millis(500) });
/// ```
pub fn decide(tat: u64, now: u64, quota: &Quota, n: u32) -> (Decision, u64) {
    let t = quota.emission_interval_nanos;
    let burst = quota.burst.get();
    if n > burst {
        return (Decision::InsufficientCapacity { burst }, tat);
    }
    let start = tat.max(now);
    let new_tat = start.saturating_add(quota.increment_nanos(n));
    // τ + T = b·T: the furthest the TAT may run ahead of now.
    let horizon = now.saturating_add(quota.capacity_nanos);
    if new_tat <= horizon {
        let remaining = (horizon - new_tat) / t;
        (Decision::Allowed { remaining: u32::try_from(remaining).unwrap_or(u32::MAX) }, new_tat)
    } else {
        (Decision::Denied { retry_after: Duration::from_nanos(new_tat - horizon) }, tat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(per_sec: u32, burst: u32) -> Quota {
        Quota::per_second(NonZeroU32::new(per_sec).unwrap()).allow_burst(NonZeroU32::new(burst).unwrap())
    }

    #[test]
    fn tau_is_t_times_b_minus_one() {
        let quota = q(10, 5);
        assert_eq!(quota.emission_interval(), Duration::from_millis(100));
        assert_eq!(quota.delay_variation_tolerance(), Duration::from_millis(400));
    }

    #[test]
    fn fresh_key_admits_the_burst_then_one_per_interval() {
        let quota = q(10, 3);
        let mut tat = 0;
        for expected_remaining in [2, 1, 0] {
            let (d, next) = decide(tat, 0, &quota, 1);
            assert_eq!(d, Decision::Allowed { remaining: expected_remaining });
            tat = next;
        }
        let (d, _) = decide(tat, 0, &quota, 1);
        assert_eq!(d, Decision::Denied { retry_after: Duration::from_millis(100) });
        let (d, _) = decide(tat, 40_000_000, &quota, 1);
        assert_eq!(d, Decision::Denied { retry_after: Duration::from_millis(60) });
        let (d, _) = decide(tat, 100_000_000, &quota, 1);
        assert!(d.is_allowed());
    }

    #[test]
    fn n_above_burst_is_never_admissible() {
        let quota = q(10, 3);
        assert_eq!(decide(0, 0, &quota, 4).0, Decision::InsufficientCapacity { burst: 3 });
        assert_eq!(decide(0, u64::MAX / 2, &quota, 4).0, Decision::InsufficientCapacity { burst: 3 });
    }

    #[test]
    fn check_n_waits_for_all_cells() {
        let quota = q(10, 3);
        let (_, tat) = decide(0, 0, &quota, 3);
        // Three cells need the TAT to fall back by 3·T.
        let (d, _) = decide(tat, 0, &quota, 3);
        assert_eq!(d, Decision::Denied { retry_after: Duration::from_millis(300) });
    }

    #[test]
    fn zero_cells_always_conform_and_keep_the_tat() {
        let quota = q(10, 1);
        let (_, tat) = decide(0, 0, &quota, 1);
        assert_eq!(decide(tat, 0, &quota, 0), (Decision::Allowed { remaining: 0 }, tat));
    }
}
