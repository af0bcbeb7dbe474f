//! What a retry policy decides: how many attempts, for how long, with which
//! backoff, and which results deserve another attempt.

use std::time::Duration;

use super::backoff::Backoff;

/// The classifier's verdict on one attempt's result (it sees `Ok` too, so an
/// HTTP 503 returned as `Ok(response)` can be retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Final: return this result (a success, or an error not worth retrying).
    Done,
    /// A transient failure: retry after the backoff.
    Retry,
    /// A timeout: retry after the backoff; budgets may charge more.
    RetryTimeout,
    /// The server said when (`Retry-After`): retry after exactly this delay,
    /// which wins over the backoff but still counts against max elapsed.
    RetryAfter(Duration),
}

impl RetryDecision {
    /// The default classifier: retry every `Err`, accept every `Ok`.
    pub fn on_err<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() { Self::Done } else { Self::Retry }
    }
}

/// Whether the work may be repeated. Only idempotent work is retried:
/// repeating a payment capture that did reach the server would charge twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Safe to repeat (GET, PUT, DELETE, reads).
    Idempotent,
    /// Not safe to repeat; never retried.
    NonIdempotent,
    /// Not idempotent by nature but made safe by the caller, e.g. it carries
    /// an `Idempotency-Key` the server deduplicates on.
    MarkedSafe,
}

impl Idempotency {
    /// Whether a retry is allowed.
    pub fn allows_retry(self) -> bool {
        !matches!(self, Self::NonIdempotent)
    }
}

/// Limits and backoff of a retry: at most `max_attempts` attempts (counting
/// the first), no wait that would end after `max_elapsed` since the first
/// attempt started, delays from `backoff`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) backoff: Backoff,
}

impl Default for RetryPolicy {
    /// 3 attempts, exponential 100 ms·2^n up to 5 s with full jitter, no
    /// elapsed limit.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            max_elapsed: None,
            backoff: Backoff::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(5))
                .with_jitter(super::backoff::Jitter::Full),
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_attempts` attempts (at least 1) and `backoff`.
    pub fn new(max_attempts: u32, backoff: Backoff) -> Self {
        Self { max_attempts: max_attempts.max(1), max_elapsed: None, backoff }
    }

    /// Stops retrying when the next wait would end more than `max_elapsed`
    /// after the first attempt started.
    #[must_use]
    pub fn with_max_elapsed(self, max_elapsed: Duration) -> Self {
        Self { max_elapsed: Some(max_elapsed), ..self }
    }

    /// Attempts allowed, counting the first.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The elapsed-time limit, if any.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// The backoff schedule.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }
}
