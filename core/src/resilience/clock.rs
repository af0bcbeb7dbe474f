//! Monotonic time and jitter sources for the resilience primitives.
//!
//! Primitives keep their state in atomics as nanoseconds since an arbitrary
//! origin, so the clock hands out a plain `u64`. Tests use [`ManualClock`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock reporting nanoseconds since its own origin.
pub trait MonotonicClock: Send + Sync + fmt::Debug {
    /// Nanoseconds elapsed since this clock's origin; never decreases.
    fn now_nanos(&self) -> u64;
}

/// The real clock: [`Instant`] relative to when it was created.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl MonotonicClock for SystemClock {
    fn now_nanos(&self) -> u64 {
        // u64 nanoseconds last ~584 years from the origin.
        self.origin.elapsed().as_nanos() as u64
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
