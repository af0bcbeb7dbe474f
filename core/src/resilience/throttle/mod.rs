//! Adaptive client-side throttling (Google SRE book, "Handling Overload"):
//! a client that sees its backend reject requests starts rejecting some
//! locally, before spending a network round trip on them.
//!
//! Over a sliding window the client counts `requests` (every attempt,
//! including the ones it rejected itself) and `accepts` (requests the
//! backend accepted), and rejects a new request with probability
//! `max(0, (requests − K·accepts) / (requests + 1))`. `K` = 2 lets the
//! backend see about twice the traffic it accepts; lower is more aggressive.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::resilience::ResilienceError;
use crate::resilience::clock::{JitterSource, MonotonicClock, SystemClock, ThreadRngJitter};

/// The rejection reason of a locally throttled request.
pub const THROTTLED: &str = "throttled";

/// How the backend treated a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleOutcome {
    /// The backend accepted and processed it, whatever the answer.
    Accepted,
    /// The backend refused it for lack of capacity (429, 503, overloaded).
    RejectedByBackend,
}

/// Settings of an [`AdaptiveThrottle`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveThrottleConfig {
    /// The multiplier `K`; at least 1 (1 throttles as soon as anything is
    /// rejected, 2 is the SRE book's default).
    pub k: f64,
    /// How far back requests count; the SRE book uses two minutes.
    pub window: Duration,
    /// Buckets the window rolls in; more is smoother, at a little memory.
    pub buckets: u32,
}

impl Default for AdaptiveThrottleConfig {
    fn default() -> Self {
        Self { k: 2.0, window: Duration::from_secs(120), buckets: 12 }
    }
}

/// Why an [`AdaptiveThrottleConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThrottleConfigError {
    /// `k` was below 1 or not finite.
    #[error("k must be a finite number >= 1, got {0}")]
    K(f64),
    /// The window was shorter than one nanosecond per bucket, or there were
    /// no buckets.
    #[error("window must be non-zero and split into 1..=3600 buckets of at least 1 ns")]
    Window,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    requests: u64,
    accepts: u64,
}

#[derive(Debug)]
struct Ring {
    buckets: Box<[Counts]>,
    current: u64,
    totals: Counts,
}

impl Ring {
    fn roll(&mut self, index: u64) {
        if index <= self.current {
            return;
        }
        let n = self.buckets.len() as u64;
        if index - self.current >= n {
            self.buckets.fill(Counts::default());
            self.totals = Counts::default();
        } else {
            for i in self.current + 1..=index {
                let slot = &mut self.buckets[(i % n) as usize];
                self.totals.requests -= slot.requests;
                self.totals.accepts -= slot.accepts;
                *slot = Counts::default();
            }
        }
        self.current = index;
    }

    fn add(&mut self, accepted: bool) {
        let n = self.buckets.len() as u64;
        let slot = &mut self.buckets[(self.current % n) as usize];
        slot.requests += 1;
        slot.accepts += u64::from(accepted);
        self.totals.requests += 1;
        self.totals.accepts += u64::from(accepted);
    }
}

/// SRE-style adaptive client throttling.
///
/// # Example
/// ```
/// use bazaar_core::resilience::throttle::{AdaptiveThrottle, AdaptiveThrottleConfig, ThrottleOutcome};
///
/// let throttle = AdaptiveThrottle::new(AdaptiveThrottleConfig::default()).unwrap();
/// assert_eq!(throttle.reject_probability(), 0.0);
/// for _ in 0..10 {
///     throttle.record(ThrottleOutcome::RejectedByBackend);
/// }
/// // (10 − 2·0) / (10 + 1)
/// assert!((throttle.reject_probability() - 10.0 / 11.0).abs() < 1e-12);
/// match throttle.try_admit() {
///     Ok(()) => { /* send it, then `record` what the backend said */ }
///     Err(_) => { /* fail fast without touching the backend */ }
/// }
/// ```
pub struct AdaptiveThrottle {
    config: AdaptiveThrottleConfig,
    bucket_nanos: u64,
    ring: Mutex<Ring>,
    clock: Arc<dyn MonotonicClock>,
    jitter: Arc<dyn JitterSource>,
}

impl AdaptiveThrottle {
    /// A throttle on the system clock with thread-local randomness.
    ///
    /// # Errors
    /// [`ThrottleConfigError`] when `k` < 1 or the window cannot be split
    /// into its buckets.
    pub fn new(config: AdaptiveThrottleConfig) -> Result<Self, ThrottleConfigError> {
        if !(config.k.is_finite() && config.k >= 1.0) {
            return Err(ThrottleConfigError::K(config.k));
        }
        let window = u64::try_from(config.window.as_nanos()).map_err(|_| ThrottleConfigError::Window)?;
        if config.buckets == 0 || config.buckets > 3_600 || window < u64::from(config.buckets) {
            return Err(ThrottleConfigError::Window);
        }
        Ok(Self {
            config,
            bucket_nanos: window / u64::from(config.buckets),
            ring: Mutex::new(Ring {
                buckets: vec![Counts::default(); config.buckets as usize].into_boxed_slice(),
                current: 0,
                totals: Counts::default(),
            }),
            clock: Arc::new(SystemClock::new()),
            jitter: Arc::new(ThreadRngJitter),
        })
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Arc<dyn MonotonicClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the randomness that decides each rejection.
    pub fn with_jitter(mut self, jitter: Arc<dyn JitterSource>) -> Self {
        self.jitter = jitter;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &AdaptiveThrottleConfig {
        &self.config
    }

    fn ring_now(&self) -> parking_lot::MutexGuard<'_, Ring> {
        let index = self.clock.now_nanos() / self.bucket_nanos;
        let mut ring = self.ring.lock();
        ring.roll(index);
        ring
    }

    fn probability(&self, c: Counts) -> f64 {
        let requests = c.requests as f64;
        ((requests - self.config.k * c.accepts as f64) / (requests + 1.0)).max(0.0)
    }

    /// `max(0, (requests − K·accepts) / (requests + 1))` over the window.
    pub fn reject_probability(&self) -> f64 {
        let totals = self.ring_now().totals;
        self.probability(totals)
    }

    /// Requests and accepts currently in the window.
    pub fn counts(&self) -> (u64, u64) {
        let totals = self.ring_now().totals;
        (totals.requests, totals.accepts)
    }

    /// Decides whether to send a request. A local rejection counts as a
    /// request that was not accepted; an admitted request is counted when
    /// its outcome is [`record`](Self::record)ed.
    ///
    /// # Errors
    /// `ResilienceError::Rejected("throttled")` with the current rejection
    /// probability.
    pub fn try_admit(&self) -> Result<(), ResilienceError<Infallible>> {
        let mut ring = self.ring_now();
        let p = self.probability(ring.totals);
        if p > 0.0 && self.jitter.next_unit() < p {
            ring.add(false);
            return Err(ResilienceError::Rejected(THROTTLED));
        }
        Ok(())
    }

    /// Records what the backend did with an admitted request.
    pub fn record(&self, outcome: ThrottleOutcome) {
        self.ring_now().add(outcome == ThrottleOutcome::Accepted);
    }

    /// Runs `f` if admitted; `Ok` counts as accepted, `Err` as rejected by
    /// the backend.
    ///
    /// # Errors
    /// `ResilienceError::Rejected("throttled")` when throttled (`f` is not
    /// called), [`ResilienceError::Inner`] with the call's own error.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(
            |r: &Result<T, E>| if r.is_ok() { ThrottleOutcome::Accepted } else { ThrottleOutcome::RejectedByBackend },
            f,
        )
        .await
    }

    /// Like [`call`](Self::call), with `classify` telling overload
    /// rejections (count against the backend) from other errors (a 404 was
    /// accepted).
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn call_with<C, F, Fut, T, E>(&self, classify: C, f: F) -> Result<T, ResilienceError<E>>
    where
        C: Fn(&Result<T, E>) -> ThrottleOutcome,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.try_admit().map_err(|e| e.map_inner(|never| match never {}))?;
        let result = f().await;
        self.record(classify(&result));
        result.map_err(ResilienceError::Inner)
    }
}

impl fmt::Debug for AdaptiveThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveThrottle")
            .field("config", &self.config)
            .field("counts", &self.ring.lock().totals)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::clock::{FixedJitter, ManualClock};
    use proptest::prelude::*;

    fn throttle(k: f64, jitter: f64) -> (AdaptiveThrottle, ManualClock) {
        let clock = ManualClock::new();
        let t = AdaptiveThrottle::new(AdaptiveThrottleConfig { k, ..Default::default() })
            .unwrap()
            .with_clock(Arc::new(clock.clone()))
            .with_jitter(Arc::new(FixedJitter(jitter)));
        (t, clock)
    }

    fn feed(t: &AdaptiveThrottle, accepted: u32, rejected: u32) {
        for _ in 0..accepted {
            t.record(ThrottleOutcome::Accepted);
        }
        for _ in 0..rejected {
            t.record(ThrottleOutcome::RejectedByBackend);
        }
    }

    #[test]
    fn probability_follows_the_sre_formula() {
        let (t, _) = throttle(2.0, 0.5);
        assert_eq!(t.reject_probability(), 0.0);
        feed(&t, 3, 7);
        assert_eq!(t.counts(), (10, 3));
        assert!((t.reject_probability() - 4.0 / 11.0).abs() < 1e-12, "(10 − 2·3) / 11");
        let (t, _) = throttle(2.0, 0.5);
        feed(&t, 5, 5);
        assert_eq!(t.reject_probability(), 0.0, "accepts·K ≥ requests never throttles");
        let (t, _) = throttle(1.5, 0.5);
        feed(&t, 4, 6);
        assert!((t.reject_probability() - 4.0 / 11.0).abs() < 1e-12, "(10 − 1.5·4) / 11");
    }

    #[test]
    fn the_random_draw_decides_and_local_rejections_count_as_requests() {
        let (t, _) = throttle(2.0, 0.35);
        feed(&t, 3, 7);
        // p = 4/11 ≈ 0.364 > 0.35: rejected.
        assert!(matches!(t.try_admit(), Err(ResilienceError::Rejected(THROTTLED))));
        assert_eq!(t.counts(), (11, 3));
        assert!((t.reject_probability() - 5.0 / 12.0).abs() < 1e-12);
        let (t, _) = throttle(2.0, 0.37);
        feed(&t, 3, 7);
        assert!(t.try_admit().is_ok(), "0.37 ≥ p admits");
        assert_eq!(t.counts(), (10, 3), "admission alone counts nothing");
    }

    #[test]
    fn old_buckets_roll_out_of_the_window() {
        let (t, clock) = throttle(2.0, 0.0);
        feed(&t, 0, 10);
        clock.advance(Duration::from_secs(60));
        feed(&t, 1, 0);
        assert_eq!(t.counts(), (11, 1));
        clock.advance(Duration::from_secs(60));
        assert_eq!(t.counts(), (1, 1), "the first minute left the 2-minute window");
        assert_eq!(t.reject_probability(), 0.0);
        clock.advance(Duration::from_secs(600));
        assert_eq!(t.counts(), (0, 0));
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let bad_k = AdaptiveThrottleConfig { k: 0.5, ..Default::default() };
        assert_eq!(AdaptiveThrottle::new(bad_k).unwrap_err(), ThrottleConfigError::K(0.5));
        let no_buckets = AdaptiveThrottleConfig { buckets: 0, ..Default::default() };
        assert_eq!(AdaptiveThrottle::new(no_buckets).unwrap_err(), ThrottleConfigError::Window);
        let zero = AdaptiveThrottleConfig { window: Duration::ZERO, ..Default::default() };
        assert!(AdaptiveThrottle::new(zero).is_err());
    }

    #[tokio::test]
    async fn call_records_outcomes_and_skips_throttled_work() {
        let (t, _) = throttle(1.0, 0.0);
        let r: Result<u8, ResilienceError<&str>> = t.call(|| async { Err("overloaded") }).await;
        assert!(matches!(r, Err(ResilienceError::Inner("overloaded"))));
        let mut called = false;
        let r = t
            .call(|| {
                called = true;
                async { Ok::<(), ()>(()) }
            })
            .await;
        assert!(matches!(r, Err(ResilienceError::Rejected(THROTTLED))));
        assert!(!called);
        let (t, _) = throttle(2.0, 0.0);
        let not_found = t.call_with(|_: &Result<(), u16>| ThrottleOutcome::Accepted, || async { Err(404) }).await;
        assert!(not_found.is_err());
        assert_eq!(t.counts(), (1, 1), "a 404 was accepted by the backend");
    }

    proptest! {
        #[test]
        fn probability_is_in_unit_range_and_matches_the_formula(
            accepted in 0u32..200,
            rejected in 0u32..200,
            k in 1.0f64..4.0,
        ) {
            let (t, _) = throttle(k, 0.5);
            feed(&t, accepted, rejected);
            let requests = f64::from(accepted + rejected);
            let expected = ((requests - k * f64::from(accepted)) / (requests + 1.0)).max(0.0);
            let p = t.reject_probability();
            prop_assert!((0.0..1.0).contains(&p));
            prop_assert!((p - expected).abs() < 1e-12);
        }
    }
}
