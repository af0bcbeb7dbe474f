//! The resilience kit: circuit breaker, retry with budgets, rate limiter,
//! load balancer, service registry, bulkhead and adaptive throttling.
//!
//! Every primitive takes an injectable [`clock::MonotonicClock`] (and, where
//! it jitters, a [`clock::JitterSource`]) so its rules are tested with a
//! manual clock, never with sleeps.
//!
#![doc = include_str!("GUIDE.md")]

pub mod balance;
pub mod bulkhead;
pub mod circuit_breaker;
pub mod clock;
mod error;
pub mod rate_limit;
pub mod registry;
pub mod retry;
pub mod throttle;

pub use error::ResilienceError;
