//! A breaker that opens on a run of consecutive failures (Hystrix / Polly /
//! Envoy style) rather than on a failure rate: the policy a proxy wants per
//! upstream instance, where one dead instance must be cut off within a
//! handful of requests however much healthy traffic came before.
//!
//! Rules:
//! - **Closed**: every call is admitted (one atomic load). The breaker opens
//!   when `failure_threshold` failures arrive in a row *and* at least
//!   `minimum_volume` calls were recorded since it last closed (or was
//!   created), so a cold instance is not judged on its first few calls.
//! - **Open**: every call is refused until `open_for` has passed; the first
//!   admission attempt after that moves it to half-open.
//! - **Half-open**: at most `success_threshold` probes are in flight at
//!   once; a failed probe re-opens it at once, `success_threshold`
//!   successful probes close it. A probe dropped without a result gives its
//!   slot back. Results from a call admitted in an earlier cycle are
//!   ignored.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::classify::Outcome;
use super::config::ConfigError;
use super::state::State;
use crate::resilience::ResilienceError;
use crate::resilience::clock::{MonotonicClock, SystemClock};

/// The settings of a [`ConsecutiveBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsecutiveConfig {
    /// Failures in a row that open the breaker (default 5).
    pub failure_threshold: u32,
    /// Successful half-open probes that close it (default 2).
    pub success_threshold: u32,
    /// How long it stays open before probing (default 60 s).
    pub open_for: Duration,
    /// Calls recorded since closing before it may open at all (default 10).
    pub minimum_volume: u32,
}

impl Default for ConsecutiveConfig {
    fn default() -> Self {
        Self { failure_threshold: 5, success_threshold: 2, open_for: Duration::from_secs(60), minimum_volume: 10 }
    }
}

impl ConsecutiveConfig {
    /// Checks that every threshold and the open time are positive.
    ///
    /// # Errors
    /// [`ConfigError::Zero`] naming the first setting that is zero.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.failure_threshold == 0 {
            return Err(ConfigError::Zero("failure_threshold"));
        }
        if self.success_threshold == 0 {
            return Err(ConfigError::Zero("success_threshold"));
        }
        if self.open_for.is_zero() {
            return Err(ConfigError::Zero("open_for"));
        }
        Ok(self)
    }
}

/// A point-in-time view of a [`ConsecutiveBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsecutiveMetrics {
    /// The current state (`Closed`, `Open` or `HalfOpen`).
    pub state: State,
    /// The current run of failures (closed state).
    pub consecutive_failures: u32,
    /// Successful calls recorded since creation.
    pub successes: u64,
    /// Failed calls recorded since creation.
    pub failures: u64,
    /// Calls refused since creation.
    pub not_permitted: u64,
    /// How many times it opened.
    pub times_opened: u64,
    /// Time left before probing, while open.
    pub open_remaining: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    opened_at: u64,
    probes_in_flight: u32,
    probe_successes: u32,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// A circuit breaker opened by consecutive failures; share it in an `Arc`.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use bazaar_core::resilience::circuit_breaker::{ConsecutiveBreaker, ConsecutiveConfig, Outcome, State};
/// use bazaar_core::resilience::clock::ManualClock;
///
/// let clock = ManualClock::new();
/// let config = ConsecutiveConfig { failure_threshold: 2, minimum_volume: 2, ..ConsecutiveConfig::default() };
/// let breaker = Arc::new(ConsecutiveBreaker::new("10.0.0.1:8080", config).with_clock(Arc::new(clock.clone())));
/// for _ in 0..2 {
///     breaker.try_acquire().unwrap().record(Outcome::Failure);
/// }
/// assert_eq!(breaker.state(), State::Open);
/// assert!(breaker.try_acquire().is_err());
/// clock.advance(Duration::from_secs(60));
/// breaker.try_acquire().unwrap().record(Outcome::Success);
/// breaker.try_acquire().unwrap().record(Outcome::Success);
/// assert_eq!(breaker.state(), State::Closed);
/// ```
pub struct ConsecutiveBreaker {
    name: Arc<str>,
    config: ConsecutiveConfig,
    clock: Arc<dyn MonotonicClock>,
    state: AtomicU8,
    /// Bumped on every transition; permits carry the one they saw.
    generation: AtomicU32,
    consecutive: AtomicU32,
    /// Calls recorded in the current closed cycle, counted up to the
    /// minimum volume only (no write once it is reached).
    volume: AtomicU32,
    successes: AtomicU64,
    failures: AtomicU64,
    not_permitted: AtomicU64,
    times_opened: AtomicU64,
    inner: Mutex<Inner>,
}

impl ConsecutiveBreaker {
    /// A closed breaker on the system clock. Zero thresholds are raised to 1.
    pub fn new(name: impl Into<Arc<str>>, config: ConsecutiveConfig) -> Self {
        let config = ConsecutiveConfig {
            failure_threshold: config.failure_threshold.max(1),
            success_threshold: config.success_threshold.max(1),
            ..config
        };
        Self {
            name: name.into(),
            config,
            clock: Arc::new(SystemClock::new()),
            state: AtomicU8::new(CLOSED),
            generation: AtomicU32::new(0),
            consecutive: AtomicU32::new(0),
            volume: AtomicU32::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            not_permitted: AtomicU64::new(0),
            times_opened: AtomicU64::new(0),
            inner: Mutex::new(Inner { opened_at: 0, probes_in_flight: 0, probe_successes: 0 }),
        }
    }

    /// Replaces the clock (tests use a `ManualClock`).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn MonotonicClock>) -> Self {
        self.clock = clock;
        self
    }

    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings.
    pub fn config(&self) -> &ConsecutiveConfig {
        &self.config
    }

    /// The current state. An open breaker whose wait has passed still reads
    /// `Open` until the next admission attempt.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            CLOSED => State::Closed,
            OPEN => State::Open,
            _ => State::HalfOpen,
        }
    }

    /// Whether a call asked for now could be admitted: closed, open with its
    /// wait over, or half-open with a free probe slot. Changes nothing.
    pub fn would_admit(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            OPEN => {
                let inner = self.inner.lock();
                self.clock.now_nanos().saturating_sub(inner.opened_at) >= nanos(self.config.open_for)
            }
            _ => {
                let inner = self.inner.lock();
                inner.probes_in_flight + inner.probe_successes < self.config.success_threshold
            }
        }
    }

    /// Asks to make a call.
    ///
    /// # Errors
    /// [`ResilienceError::Open`] while open, or half-open with every probe
    /// slot taken.
    pub fn try_acquire(self: &Arc<Self>) -> Result<ConsecutivePermit, ResilienceError<std::convert::Infallible>> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            let generation = self.generation.load(Ordering::Acquire);
            // A transition between the two loads makes the permit stale,
            // which only means its result is ignored.
            return Ok(self.permit(generation, false));
        }
        let mut inner = self.inner.lock();
        let generation = self.generation.load(Ordering::Acquire);
        match self.state.load(Ordering::Acquire) {
            CLOSED => Ok(self.permit(generation, false)),
            OPEN => {
                if self.clock.now_nanos().saturating_sub(inner.opened_at) < nanos(self.config.open_for) {
                    return Err(self.reject());
                }
                let generation = self.transition(HALF_OPEN);
                inner.probes_in_flight = 1;
                inner.probe_successes = 0;
                tracing::info!(breaker = %self.name, "circuit breaker half-open: probing");
                Ok(self.permit(generation, true))
            }
            _ => {
                if inner.probes_in_flight + inner.probe_successes >= self.config.success_threshold {
                    return Err(self.reject());
                }
                inner.probes_in_flight += 1;
                Ok(self.permit(generation, true))
            }
        }
    }

    /// Back to closed with every run counter cleared.
    pub fn reset(&self) {
        let _inner = self.inner.lock();
        self.transition(CLOSED);
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> ConsecutiveMetrics {
        let state = self.state();
        let open_remaining = (state == State::Open).then(|| {
            let opened_at = self.inner.lock().opened_at;
            let elapsed = self.clock.now_nanos().saturating_sub(opened_at);
            Duration::from_nanos(nanos(self.config.open_for).saturating_sub(elapsed))
        });
        ConsecutiveMetrics {
            state,
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            successes: self.successes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            not_permitted: self.not_permitted.load(Ordering::Relaxed),
            times_opened: self.times_opened.load(Ordering::Relaxed),
            open_remaining,
        }
    }

    fn permit(self: &Arc<Self>, generation: u32, probe: bool) -> ConsecutivePermit {
        ConsecutivePermit { breaker: Arc::clone(self), generation, probe, armed: true }
    }

    fn reject(&self) -> ResilienceError<std::convert::Infallible> {
        self.not_permitted.fetch_add(1, Ordering::Relaxed);
        ResilienceError::Open
    }

    /// Moves to `to` and starts a new generation; caller holds `inner`.
    fn transition(&self, to: u8) -> u32 {
        self.consecutive.store(0, Ordering::Release);
        self.volume.store(0, Ordering::Release);
        self.state.store(to, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel).wrapping_add(1)
    }

    fn open(&self, inner: &mut Inner) {
        inner.opened_at = self.clock.now_nanos();
        inner.probes_in_flight = 0;
        inner.probe_successes = 0;
        self.transition(OPEN);
        self.times_opened.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(breaker = %self.name, "circuit breaker opened");
    }

    fn record(&self, generation: u32, probe: bool, outcome: Outcome) {
        match outcome {
            Outcome::Ignore => {
                if probe {
                    self.release(generation);
                }
                return;
            }
            Outcome::Success => self.successes.fetch_add(1, Ordering::Relaxed),
            Outcome::Failure => self.failures.fetch_add(1, Ordering::Relaxed),
        };
        if probe {
            let mut inner = self.inner.lock();
            if self.generation.load(Ordering::Acquire) != generation {
                return;
            }
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
            match outcome {
                Outcome::Failure => self.open(&mut inner),
                _ => {
                    inner.probe_successes += 1;
                    if inner.probe_successes >= self.config.success_threshold {
                        self.transition(CLOSED);
                        tracing::info!(breaker = %self.name, "circuit breaker closed");
                    }
                }
            }
            return;
        }
        if self.generation.load(Ordering::Acquire) != generation {
            // Admitted in an earlier cycle: says nothing about this one.
            return;
        }
        if self.volume.load(Ordering::Relaxed) < self.config.minimum_volume {
            self.volume.fetch_add(1, Ordering::AcqRel);
        }
        match outcome {
            Outcome::Failure => {
                let run = self.consecutive.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                if run >= self.config.failure_threshold
                    && self.volume.load(Ordering::Acquire) >= self.config.minimum_volume
                {
                    let mut inner = self.inner.lock();
                    if self.generation.load(Ordering::Acquire) == generation
                        && self.state.load(Ordering::Acquire) == CLOSED
                    {
                        self.open(&mut inner);
                    }
                }
            }
            _ => {
                // Skip the store when already zero: no write on the happy path.
                if self.consecutive.load(Ordering::Relaxed) != 0 {
                    self.consecutive.store(0, Ordering::Release);
                }
            }
        }
    }

    fn release(&self, generation: u32) {
        let mut inner = self.inner.lock();
        if self.generation.load(Ordering::Acquire) == generation {
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        }
    }
}

impl fmt::Debug for ConsecutiveBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsecutiveBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Permission for one call through a [`ConsecutiveBreaker`]. Dropping it
/// unrecorded (a cancelled call) records nothing and frees a probe slot.
#[must_use = "a permit records nothing unless `record` is called"]
#[derive(Debug)]
pub struct ConsecutivePermit {
    breaker: Arc<ConsecutiveBreaker>,
    generation: u32,
    probe: bool,
    armed: bool,
}

impl ConsecutivePermit {
    /// Whether the call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records the call's outcome.
    pub fn record(mut self, outcome: Outcome) {
        self.armed = false;
        self.breaker.record(self.generation, self.probe, outcome);
    }
}

impl Drop for ConsecutivePermit {
    fn drop(&mut self) {
        if self.armed && self.probe {
            self.breaker.release(self.generation);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::clock::ManualClock;

    fn breaker(config: ConsecutiveConfig) -> (Arc<ConsecutiveBreaker>, ManualClock) {
        let clock = ManualClock::new();
        (Arc::new(ConsecutiveBreaker::new("t", config).with_clock(Arc::new(clock.clone()))), clock)
    }

    fn fail(b: &Arc<ConsecutiveBreaker>, n: u32) {
        for _ in 0..n {
            b.try_acquire().expect("admitted").record(Outcome::Failure);
        }
    }

    #[test]
    fn opens_on_the_fifth_failure_in_a_row_once_the_volume_is_reached() {
        let (b, _) = breaker(ConsecutiveConfig::default());
        // Four failures, a success, then four more: no run of five.
        fail(&b, 4);
        b.try_acquire().unwrap().record(Outcome::Success);
        fail(&b, 4);
        assert_eq!(b.state(), State::Closed);
        fail(&b, 1);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.metrics().times_opened, 1);
    }

    #[test]
    fn minimum_volume_holds_back_a_cold_breaker() {
        let (b, _) = breaker(ConsecutiveConfig::default());
        fail(&b, 9);
        assert_eq!(b.state(), State::Closed, "nine calls are below the volume of ten");
        fail(&b, 1);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn open_refuses_until_the_wait_then_two_successes_close() {
        let (b, clock) = breaker(ConsecutiveConfig::default());
        fail(&b, 10);
        assert!(b.try_acquire().is_err());
        assert!(!b.would_admit());
        clock.advance(Duration::from_secs(59));
        assert!(b.try_acquire().is_err());
        clock.advance(Duration::from_secs(1));
        assert!(b.would_admit());
        let first = b.try_acquire().expect("first probe");
        let second = b.try_acquire().expect("second probe");
        assert!(b.try_acquire().is_err(), "only two probes at once");
        first.record(Outcome::Success);
        assert_eq!(b.state(), State::HalfOpen);
        second.record(Outcome::Success);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.metrics().not_permitted, 3);
    }

    #[test]
    fn a_failed_probe_reopens_and_a_dropped_one_frees_its_slot() {
        let (b, clock) = breaker(ConsecutiveConfig::default());
        fail(&b, 10);
        clock.advance(Duration::from_secs(60));
        let probe = b.try_acquire().unwrap();
        let other = b.try_acquire().unwrap();
        drop(other);
        let again = b.try_acquire().expect("the dropped probe's slot is free");
        probe.record(Outcome::Failure);
        assert_eq!(b.state(), State::Open);
        // A result from the previous cycle is ignored.
        again.record(Outcome::Success);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.metrics().times_opened, 2);
    }

    #[test]
    fn closing_restarts_the_volume() {
        let (b, clock) = breaker(ConsecutiveConfig::default());
        fail(&b, 10);
        clock.advance(Duration::from_secs(60));
        for _ in 0..2 {
            b.try_acquire().unwrap().record(Outcome::Success);
        }
        fail(&b, 5);
        assert_eq!(b.state(), State::Closed, "only five calls since closing");
    }

    #[test]
    fn concurrent_failures_open_exactly_once() {
        let (b, _) = breaker(ConsecutiveConfig { minimum_volume: 0, ..ConsecutiveConfig::default() });
        std::thread::scope(|s| {
            for _ in 0..2 {
                let b = Arc::clone(&b);
                s.spawn(move || {
                    for _ in 0..1_000 {
                        if let Ok(p) = b.try_acquire() {
                            p.record(Outcome::Failure);
                        }
                    }
                });
            }
        });
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.metrics().times_opened, 1);
    }

    #[test]
    fn zero_settings_are_rejected_by_name() {
        let bad = ConsecutiveConfig { success_threshold: 0, ..ConsecutiveConfig::default() };
        assert_eq!(bad.validate(), Err(ConfigError::Zero("success_threshold")));
        assert!(ConsecutiveConfig::default().validate().is_ok());
    }
}
