//! Monotonic time and jitter sources for the resilience primitives.
//!
//! Primitives keep their state in atomics as nanoseconds since an arbitrary
//! origin, so the clock hands out a plain `u64`. Tests use [`ManualClock`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A monotonic clock reporting nanoseconds since its own origin.
pub trait MonotonicClock: Send + Sync + fmt::Debug {
    /// Nanoseconds elapsed since this clock's origin; never decreases.
    fn now_nanos(&self) -> u64;
}

/// The process-wide quanta clock behind every [`SystemClock`].
///
/// `quanta::Clock::new` probes CPUID and, on TSC hardware, calibrates the TSC
/// against `CLOCK_MONOTONIC` (up to ~200 ms, once per process). Sharing one
/// instance pays that once and lets `SystemClock` hold a `&'static` and stay
/// `Copy`.
static QUANTA: OnceLock<quanta::Clock> = OnceLock::new();

/// The real clock: quanta's TSC reading relative to when it was created.
///
/// Reading it is an `rdtsc` plus a multiply-and-shift, roughly half the cost
/// of `std::time::Instant::elapsed` (a `clock_gettime` call plus `Duration`
/// arithmetic) on our benchmark VM. That matters because the rate limiter
/// reads the clock on every check and the read dominates the check's cost.
///
/// Monotonic because: quanta only uses the TSC when CPUID reports an
/// invariant TSC (constant rate, one counter synchronised across cores on
/// current hardware; the same assumption governor makes through quanta) and
/// falls back to `CLOCK_MONOTONIC` otherwise; the TSC-to-nanoseconds scale is
/// fixed after calibration, so nanoseconds never decrease while the counter
/// does not; and [`quanta::Clock::delta_as_nanos`] saturates at 0, so a
/// reading is never below the origin.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    clock: &'static quanta::Clock,
    /// Raw (unscaled) counter value at creation.
    origin: u64,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        let clock = QUANTA.get_or_init(quanta::Clock::new);
        Self { clock, origin: clock.raw() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl MonotonicClock for SystemClock {
    // Inline so callers that hold a concrete `SystemClock` (the rate
    // limiters) skip the trait-object call.
    #[inline]
    fn now_nanos(&self) -> u64 {
        // Raw counter and scaling rather than `Clock::now` + `Instant`
        // arithmetic: no `Duration` round trip. u64 nanoseconds last ~584
        // years from the origin.
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at its origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Sets the time, in nanoseconds since the origin. Going backwards is
    /// ignored so the clock stays monotonic.
    pub fn set_nanos(&self, nanos: u64) {
        self.nanos.fetch_max(nanos, Ordering::SeqCst);
    }
}

impl MonotonicClock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

/// A source of uniform random numbers in `[0, 1)` used for jitter.
pub trait JitterSource: Send + Sync + fmt::Debug {
    /// A uniform sample in `[0, 1)`.
    fn next_unit(&self) -> f64;
}

/// Thread-local fast randomness; the default jitter source.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRngJitter;

impl JitterSource for ThreadRngJitter {
    fn next_unit(&self) -> f64 {
        rand::random::<f64>()
    }
}

/// A jitter source that always returns the same value; for tests and for
/// turning jitter off (`FixedJitter(0.5)` is the midpoint of every range).
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub f64);

impl JitterSource for FixedJitter {
    fn next_unit(&self) -> f64 {
        self.0.clamp(0.0, 1.0 - f64::EPSILON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_never_goes_backwards_across_threads() {
        // Clones share the origin, so readings from different threads (and
        // so, possibly, different cores' TSCs) are on one timeline.
        let clock = SystemClock::new();
        let before = clock.now_nanos();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut last = clock.now_nanos();
                    assert!(last >= before);
                    for _ in 0..100_000 {
                        let now = clock.now_nanos();
                        assert!(now >= last, "{now} < {last}");
                        last = now;
                    }
                });
            }
        });
    }

    #[test]
    fn system_clock_counts_nanoseconds_not_ticks() {
        // A units check, not a performance assertion: a sleep of at least
        // 20 ms must read as at least 20 ms, minus calibration slack.
        let clock = SystemClock::default();
        let start = clock.now_nanos();
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = clock.now_nanos() - start;
        assert!(elapsed >= 19_000_000, "{elapsed} ns");
    }
}
