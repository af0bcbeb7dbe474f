//! Wall-clock time as a port, so no domain rule needs a sleep to be tested.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A UTC instant; the only time type in the domain.
pub type Timestamp = DateTime<Utc>;

/// Where the domain gets "now" from.
///
/// # Example
/// ```
/// use bazaar_core::clock::{Clock, ManualClock};
/// let clock = ManualClock::at_epoch_secs(1_700_000_000);
/// let before = clock.now();
/// clock.advance(chrono::Duration::seconds(5));
/// assert_eq!(clock.now() - before, chrono::Duration::seconds(5));
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self { now: Arc::new(Mutex::new(now)) }
    }

    /// A clock stopped at a Unix time in seconds.
    ///
    /// # Panics
    /// If `secs` is outside chrono's representable range.
    pub fn at_epoch_secs(secs: i64) -> Self {
        Self::new(DateTime::from_timestamp(secs, 0).expect("timestamp in range"))
    }

    /// Moves the clock by `by` (may be negative, to test skew).
    pub fn advance(&self, by: Duration) {
        *self.now.lock() += by;
    }

    /// Sets the clock.
    pub fn set(&self, now: Timestamp) {
        *self.now.lock() = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock()
    }
}
