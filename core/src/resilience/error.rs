//! The one error type callers of the resilience primitives see.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// Why a call guarded by a resilience primitive did not produce a result.
///
/// `E` is the error of the guarded work itself, passed through as `Inner`.
#[derive(Debug)]
pub enum ResilienceError<E> {
    /// The circuit breaker is open (or forced open) and rejected the call.
    Open,
    /// The rate limiter rejected the call; it may succeed after `retry_after`.
    RateLimited {
        /// The earliest time from now at which the same call can be admitted.
        retry_after: Duration,
    },
    /// The call did not complete in time.
    Timeout,
    /// The call was shed: bulkhead full, retry budget spent, throttled, or no
    /// endpoint available.
    Rejected(&'static str),
    /// The guarded work failed.
    Inner(E),
}

impl<E> ResilienceError<E> {
    /// A stable snake_case code: `open`, `rate_limited`, `timeout`,
    /// `rejected`, `inner`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::RateLimited { .. } => "rate_limited",
            Self::Timeout => "timeout",
            Self::Rejected(_) => "rejected",
            Self::Inner(_) => "inner",
        }
    }

    /// The inner error, if the work itself failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the inner error.
    pub fn map_inner<F, E2>(self, f: F) -> ResilienceError<E2>
    where
        F: FnOnce(E) -> E2,
    {
        match self {
            Self::Open => ResilienceError::Open,
            Self::RateLimited { retry_after } => ResilienceError::RateLimited { retry_after },
            Self::Timeout => ResilienceError::Timeout,
            Self::Rejected(why) => ResilienceError::Rejected(why),
            Self::Inner(e) => ResilienceError::Inner(f(e)),
        }
    }
}

impl<E: fmt::Display> fmt::Display for ResilienceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open => f.write_str("circuit breaker is open"),
            Self::RateLimited { retry_after } => {
                write!(f, "rate limited; retry after {} ms", retry_after.as_millis())
            }
            Self::Timeout => f.write_str("timed out"),
            Self::Rejected(why) => write!(f, "rejected: {why}"),
            Self::Inner(e) => write!(f, "{e}"),
        }
    }
}

impl<E: StdError + 'static> StdError for ResilienceError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }
}
