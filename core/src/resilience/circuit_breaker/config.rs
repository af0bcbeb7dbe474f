//! Validated circuit breaker configuration and its builder.

use std::time::Duration;

use super::state::MAX_HALF_OPEN_PERMITS;

/// The longest time-based window accepted, in seconds (one hour); longer
/// windows make the per-second ring needlessly large.
pub const MAX_TIME_WINDOW_SECONDS: u32 = 3_600;

/// The largest count-based window accepted.
pub const MAX_COUNT_WINDOW_SIZE: u32 = 1_000_000;

/// How the closed-state window decides which calls count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `size` recorded calls.
    CountBased(u32),
    /// The calls recorded in the last `seconds` seconds, in per-second buckets.
    TimeBased(u32),
}

/// How long the breaker stays open before it lets probes through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitInOpen {
    /// The same wait every time.
    Fixed(Duration),
    /// `initial · multiplier^(k−1)` for the k-th consecutive open (k resets
    /// when the breaker closes), capped at `max`.
    Exponential {
        /// The wait after the first open.
        initial: Duration,
        /// Growth per consecutive re-open; at least 1.
        multiplier: f64,
        /// Upper bound, applied before jitter.
        max: Duration,
    },
}

impl WaitInOpen {
    /// The wait before jitter for the `k`-th consecutive open (k ≥ 1).
    pub fn base_wait(&self, k: u32) -> Duration {
        match *self {
            Self::Fixed(d) => d,
            Self::Exponential { initial, multiplier, max } => {
                let exp = k.saturating_sub(1).min(1_024) as i32;
                let secs = initial.as_secs_f64() * multiplier.powi(exp);
                if !secs.is_finite() || secs >= max.as_secs_f64() { max } else { Duration::from_secs_f64(secs) }
            }
        }
    }
}

/// Why a [`CircuitBreakerConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A rate threshold was outside `(0, 100]`.
    #[error("{name} must be in (0, 100], got {value}")]
    Threshold {
        /// Which threshold.
        name: &'static str,
        /// The rejected value.
        value: f32,
    },
    /// A value that must be positive was zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A value exceeded its upper bound.
    #[error("{name} must be at most {max}, got {value}")]
    TooLarge {
        /// Which setting.
        name: &'static str,
        /// The largest accepted value.
        max: u64,
        /// The rejected value.
        value: u64,
    },
    /// The exponential wait was inconsistent.
    #[error("exponential wait needs multiplier >= 1 and max >= initial")]
    Exponential,
    /// The jitter factor was outside `[0, 1)`.
    #[error("jitter must be in [0, 1), got {0}")]
    Jitter(f64),
}

/// The rules a [`CircuitBreaker`](super::CircuitBreaker) follows.
///
/// Defaults follow Resilience4j, except the maximum wait in half-open, which
/// is 60 s rather than "forever" so a breaker whose probes hang can never
/// stay half-open indefinitely.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_core::resilience::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
///
/// let config = CircuitBreakerConfig::builder()
///     .failure_rate_threshold(50.0)
///     .sliding_window(SlidingWindow::TimeBased(10))
///     .minimum_number_of_calls(20)
///     .build()
///     .expect("valid config");
/// assert_eq!(config.minimum_number_of_calls(), 20);
/// assert!(CircuitBreakerConfig::builder().failure_rate_threshold(0.0).build().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakerConfig {
    failure_rate_threshold: f32,
    slow_call_rate_threshold: f32,
    slow_call_duration_threshold: Duration,
    minimum_number_of_calls: u32,
    sliding_window: SlidingWindow,
    wait_in_open: WaitInOpen,
    jitter: f64,
    permitted_calls_in_half_open: u32,
    max_wait_in_half_open: Duration,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_secs(60),
            minimum_number_of_calls: 100,
            sliding_window: SlidingWindow::CountBased(100),
            wait_in_open: WaitInOpen::Fixed(Duration::from_secs(60)),
            jitter: 0.0,
            permitted_calls_in_half_open: 10,
            max_wait_in_half_open: Duration::from_secs(60),
        }
    }
}

impl CircuitBreakerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> CircuitBreakerConfigBuilder {
        CircuitBreakerConfigBuilder { config: Self::default() }
    }

    /// Failure rate, in percent, at or above which the breaker opens.
    pub fn failure_rate_threshold(&self) -> f32 {
        self.failure_rate_threshold
    }

    /// Slow-call rate, in percent, at or above which the breaker opens.
    pub fn slow_call_rate_threshold(&self) -> f32 {
        self.slow_call_rate_threshold
    }

    /// Calls lasting at least this long count as slow.
    pub fn slow_call_duration_threshold(&self) -> Duration {
        self.slow_call_duration_threshold
    }

    /// Calls the window must hold before rates are evaluated.
    pub fn minimum_number_of_calls(&self) -> u32 {
        self.minimum_number_of_calls
    }

    /// The closed-state window.
    pub fn sliding_window(&self) -> SlidingWindow {
        self.sliding_window
    }

    /// How long the breaker stays open.
    pub fn wait_in_open(&self) -> WaitInOpen {
        self.wait_in_open
    }

    /// Randomisation factor `r`: the open wait is scaled by a uniform factor
    /// in `[1 − r, 1 + r)`.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Probes admitted per half-open cycle.
    pub fn permitted_calls_in_half_open(&self) -> u32 {
        self.permitted_calls_in_half_open
    }

    /// How long half-open may last before the breaker re-opens;
    /// [`Duration::ZERO`] means no limit.
    pub fn max_wait_in_half_open(&self) -> Duration {
        self.max_wait_in_half_open
    }

    /// The minimum number of calls actually applied: a count window can
    /// never hold more than its size, so the smaller of the two.
    pub(crate) fn effective_minimum_calls(&self) -> u64 {
        match self.sliding_window {
            SlidingWindow::CountBased(size) => u64::from(self.minimum_number_of_calls.min(size)),
            SlidingWindow::TimeBased(_) => u64::from(self.minimum_number_of_calls),
        }
    }

    fn validate(self) -> Result<Self, ConfigError> {
        for (name, value) in [
            ("failure_rate_threshold", self.failure_rate_threshold),
            ("slow_call_rate_threshold", self.slow_call_rate_threshold),
        ] {
            if !(value > 0.0 && value <= 100.0) {
                return Err(ConfigError::Threshold { name, value });
            }
        }
        if self.slow_call_duration_threshold.is_zero() {
            return Err(ConfigError::Zero("slow_call_duration_threshold"));
        }
        if self.minimum_number_of_calls == 0 {
            return Err(ConfigError::Zero("minimum_number_of_calls"));
        }
        let (name, size, max) = match self.sliding_window {
            SlidingWindow::CountBased(n) => ("sliding_window size", n, MAX_COUNT_WINDOW_SIZE),
            SlidingWindow::TimeBased(s) => ("sliding_window seconds", s, MAX_TIME_WINDOW_SECONDS),
        };
        if size == 0 {
            return Err(ConfigError::Zero(name));
        }
        if size > max {
            return Err(ConfigError::TooLarge { name, max: u64::from(max), value: u64::from(size) });
        }
        match self.wait_in_open {
            WaitInOpen::Fixed(d) if d.is_zero() => return Err(ConfigError::Zero("wait_in_open")),
            WaitInOpen::Fixed(_) => {}
            WaitInOpen::Exponential { initial, multiplier, max } => {
                if initial.is_zero() {
                    return Err(ConfigError::Zero("wait_in_open initial"));
                }
                if !(multiplier.is_finite() && multiplier >= 1.0) || max < initial {
                    return Err(ConfigError::Exponential);
                }
            }
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(ConfigError::Jitter(self.jitter));
        }
        if self.permitted_calls_in_half_open == 0 {
            return Err(ConfigError::Zero("permitted_calls_in_half_open"));
        }
        if self.permitted_calls_in_half_open > MAX_HALF_OPEN_PERMITS {
            return Err(ConfigError::TooLarge {
                name: "permitted_calls_in_half_open",
                max: u64::from(MAX_HALF_OPEN_PERMITS),
                value: u64::from(self.permitted_calls_in_half_open),
            });
        }
        Ok(self)
    }
}

/// Builds a [`CircuitBreakerConfig`]; [`build`](Self::build) validates it.
#[derive(Debug, Clone)]
pub struct CircuitBreakerConfigBuilder {
    config: CircuitBreakerConfig,
}

impl CircuitBreakerConfigBuilder {
    /// Failure rate in percent, `(0, 100]`, at or above which the breaker opens.
    pub fn failure_rate_threshold(mut self, percent: f32) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Slow-call rate in percent, `(0, 100]`, at or above which the breaker opens.
    pub fn slow_call_rate_threshold(mut self, percent: f32) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// Calls lasting at least this long count as slow; must be non-zero.
    pub fn slow_call_duration_threshold(mut self, threshold: Duration) -> Self {
        self.config.slow_call_duration_threshold = threshold;
        self
    }

    /// Calls the window must hold before rates are evaluated; at least 1.
    pub fn minimum_number_of_calls(mut self, calls: u32) -> Self {
        self.config.minimum_number_of_calls = calls;
        self
    }

    /// The closed-state window.
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.sliding_window = window;
        self
    }

    /// A fixed wait in open.
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.config.wait_in_open = WaitInOpen::Fixed(wait);
        self
    }

    /// A wait in open that grows per consecutive re-open.
    pub fn wait_in_open_strategy(mut self, wait: WaitInOpen) -> Self {
        self.config.wait_in_open = wait;
        self
    }

    /// Randomisation factor in `[0, 1)` applied to the open wait.
    pub fn jitter(mut self, factor: f64) -> Self {
        self.config.jitter = factor;
        self
    }

    /// Probes admitted per half-open cycle; at least 1.
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open = calls;
        self
    }

    /// How long half-open may last before re-opening; zero disables the limit.
    pub fn max_wait_in_half_open(mut self, wait: Duration) -> Self {
        self.config.max_wait_in_half_open = wait;
        self
    }

    /// Validates and returns the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] when a threshold is outside `(0, 100]`, a size, count
    /// or duration that must be positive is zero, a bound is exceeded, the
    /// exponential wait is inconsistent or the jitter is outside `[0, 1)`.
    pub fn build(self) -> Result<CircuitBreakerConfig, ConfigError> {
        self.config.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(CircuitBreakerConfig::builder().build().is_ok());
    }

    #[test]
    fn thresholds_outside_zero_to_hundred_are_rejected() {
        for bad in [0.0, -1.0, 100.5, f32::NAN] {
            assert!(matches!(
                CircuitBreakerConfig::builder().failure_rate_threshold(bad).build(),
                Err(ConfigError::Threshold { name: "failure_rate_threshold", .. })
            ));
            assert!(CircuitBreakerConfig::builder().slow_call_rate_threshold(bad).build().is_err());
        }
        assert!(CircuitBreakerConfig::builder().failure_rate_threshold(100.0).build().is_ok());
    }

    #[test]
    fn zero_and_oversized_values_are_rejected() {
        let b = CircuitBreakerConfig::builder;
        assert_eq!(b().minimum_number_of_calls(0).build(), Err(ConfigError::Zero("minimum_number_of_calls")));
        assert!(b().sliding_window(SlidingWindow::CountBased(0)).build().is_err());
        assert!(b().sliding_window(SlidingWindow::TimeBased(3_601)).build().is_err());
        assert!(b().permitted_calls_in_half_open(0).build().is_err());
        assert!(b().permitted_calls_in_half_open(MAX_HALF_OPEN_PERMITS + 1).build().is_err());
        assert!(b().wait_in_open(Duration::ZERO).build().is_err());
        assert!(b().slow_call_duration_threshold(Duration::ZERO).build().is_err());
        assert!(b().jitter(1.0).build().is_err());
        let bad_exp =
            WaitInOpen::Exponential { initial: Duration::from_secs(2), multiplier: 2.0, max: Duration::from_secs(1) };
        assert_eq!(b().wait_in_open_strategy(bad_exp).build(), Err(ConfigError::Exponential));
    }

    #[test]
    fn exponential_wait_grows_and_caps() {
        let w =
            WaitInOpen::Exponential { initial: Duration::from_secs(1), multiplier: 2.0, max: Duration::from_secs(10) };
        let waits: Vec<u64> = (1..=6).map(|k| w.base_wait(k).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(w.base_wait(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn minimum_calls_is_capped_by_count_window() {
        let c = CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::CountBased(5))
            .minimum_number_of_calls(50)
            .build()
            .unwrap();
        assert_eq!(c.effective_minimum_calls(), 5);
    }
}
