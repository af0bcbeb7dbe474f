//! Rate limiting with GCRA: a lock-free single limiter, a keyed limiter with
//! per-key quotas and idle eviction, and a store port so the same policy runs
//! on Redis.
//!
//! GCRA (the Generic Cell Rate Algorithm) keeps one number per key, the
//! theoretical arrival time (TAT). A [`Quota`] is an emission interval `T`
//! (one cell per `T`) and a burst `b`; the tolerance is `τ = T·(b − 1)`. In
//! any window of length `t` at most `b + t/T` cells are admitted. The math is
//! the pure function [`decide`], shared by [`RateLimiter`],
//! [`KeyedRateLimiter`] and every [`RateLimitStore`].
//!
//! Rejections carry a wait time ([`NotUntil`]); asking for more cells than
//! the burst is a distinct error ([`RateLimitError::InsufficientCapacity`])
//! because waiting would never help.
//!
//! # Example
//! ```
//! use std::num::NonZeroU32;
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bazaar_core::resilience::clock::ManualClock;
//! use bazaar_core::resilience::rate_limit::{Quota, RateLimiter};
//!
//! let clock = ManualClock::new();
//! // 10 per second, bursts of 2.
//! let quota = Quota::per_second(NonZeroU32::new(10).unwrap()).allow_burst(NonZeroU32::new(2).unwrap());
//! let limiter = RateLimiter::with_clock(quota, Arc::new(clock.clone()));
//! assert!(limiter.check().is_ok());
//! assert!(limiter.check().is_ok());
//! let wait = limiter.check().unwrap_err().wait_time();
//! assert_eq!(wait, Duration::from_millis(100));
//! clock.advance(wait);
//! assert!(limiter.check().is_ok());
//! ```

mod direct;
mod gcra;
mod keyed;
#[cfg(feature = "tower")]
mod layer;
mod store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::resilience::clock::{MonotonicClock, SystemClock};

pub use direct::RateLimiter;
pub use gcra::{Decision, Quota, decide};
pub use keyed::KeyedRateLimiter;
#[cfg(feature = "tower")]
pub use layer::{RateLimit, RateLimitLayer};
#[cfg(any(test, feature = "mocks"))]
pub use store::MockRateLimitStore;
pub use store::{InMemoryRateLimitStore, RateLimitStore, StoreError};

/// The clock a limiter reads on every check.
///
/// The constructors without a clock use [`SystemClock`]; holding it by value
/// lets its read inline into the check instead of going through the
/// `Arc<dyn MonotonicClock>` vtable (a pointer chase plus an indirect call
/// per check). Injected clocks keep the dynamic path.
#[derive(Debug, Clone)]
pub(crate) enum LimiterClock {
    /// The real clock, read inline.
    System(SystemClock),
    /// A caller-supplied clock (tests' `ManualClock`, ...).
    Injected(Arc<dyn MonotonicClock>),
}

impl LimiterClock {
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match self {
            Self::System(clock) => clock.now_nanos(),
            Self::Injected(clock) => clock.now_nanos(),
        }
    }
}

/// A rejection: the request conforms only after [`wait_time`](Self::wait_time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUntil {
    wait: Duration,
}

impl NotUntil {
    pub(crate) fn new(wait: Duration) -> Self {
        Self { wait }
    }

    /// How long from now until the same request would be admitted (the
    /// `Retry-After` to send).
    pub fn wait_time(&self) -> Duration {
        self.wait
    }
}

impl fmt::Display for NotUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate limited for {} ms", self.wait.as_millis())
    }
}

impl std::error::Error for NotUntil {}

/// Why `check_n` did not admit the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// Not now; retry after the wait time.
    #[error("{0}")]
    NotUntil(NotUntil),
    /// More cells than the burst: never admissible.
    #[error("{requested} cells requested but the burst is {burst}")]
    InsufficientCapacity {
        /// Cells asked for.
        requested: u32,
        /// The quota's burst.
        burst: u32,
    },
}
