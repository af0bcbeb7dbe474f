//! Circuit breaker: stop calling an upstream that is failing or slow, probe
//! it after a wait, and resume when it recovers.
//!
//! The surface follows Resilience4j: count- or time-based windows,
//! failure-rate and slow-call-rate thresholds (open at ≥), a minimum number
//! of calls, a fixed or growing wait in open with jitter, a fixed number of
//! half-open probes, a maximum time in half-open, manual states (disabled,
//! forced open, metrics only), events and metrics. [`CircuitBreakerRegistry`]
//! keeps one breaker per upstream key.
// The layer exists only with the feature, so only then is its name a link.
#![cfg_attr(feature = "tower", doc = "With the `tower` feature, [`CircuitBreakerLayer`] wraps any service.")]
#![cfg_attr(not(feature = "tower"), doc = "With the `tower` feature, `CircuitBreakerLayer` wraps any service.")]
//! [`ConsecutiveBreaker`] is the simpler policy a proxy uses per upstream
//! instance: open after N failures in a row (given a minimum volume), close
//! after M successful probes.
//!
//! Choices worth knowing:
//! - A count window smaller than the minimum number of calls uses its size
//!   as the minimum (Resilience4j does the same).
//! - Half-open decides after exactly `permitted_calls_in_half_open` recorded
//!   probes, using the same thresholds: at or above → open again (the wait
//!   grows), below → closed.
//! - The open wait for the k-th consecutive open (k resets on close) is the
//!   configured wait, capped, then scaled by `[1 − jitter, 1 + jitter)`.
//! - Recording into a count-based window (closed, metrics-only) takes no
//!   lock: a healthy upstream's record is a few loads and no write; a
//!   record that leaves its slot's outcome as it was is a plain store and
//!   no atomic read-modify-write, one that changes it a compare-and-swap and
//!   a `fetch_add` (one more while the window fills). With records in flight
//!   a snapshot may be off by their number (never `failed > total`); once
//!   they finish it is exact. Time-based windows and half-open tallies
//!   record under a short lock.

mod breaker;
mod classify;
mod config;
mod consecutive;
mod events;
mod registry;
mod state;
mod window;

#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

#[cfg(test)]
mod tests;

pub use breaker::{CircuitBreaker, CircuitBreakerMetrics, OwnedPermit, Permit};
pub use classify::{Classifier, DefaultClassifier, Outcome};
pub use config::{
    CircuitBreakerConfig, CircuitBreakerConfigBuilder, ConfigError, MAX_COUNT_WINDOW_SIZE, MAX_TIME_WINDOW_SECONDS,
    SlidingWindow, WaitInOpen,
};
pub use consecutive::{ConsecutiveBreaker, ConsecutiveConfig, ConsecutiveMetrics, ConsecutivePermit};
pub use events::{CircuitBreakerEvent, CircuitBreakerListener};
#[cfg(feature = "tower")]
pub use layer::CircuitBreakerLayer;
pub use registry::CircuitBreakerRegistry;
#[cfg(feature = "tower")]
pub use service::{CircuitBreakerService, ResponseFuture};
pub use state::{MAX_HALF_OPEN_PERMITS, State};
pub use window::WindowSnapshot;
