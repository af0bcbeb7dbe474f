//! The AWS SDK "standard" retry quota: a token bucket that retries drain and
//! successes refill.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{RetryBudget, RetryCost};

/// AWS-style retry quota: starts full at `capacity` (AWS: 500); a retry
/// costs 5 tokens, a retry after a timeout 10; a success refunds the cost of
/// the retry that succeeded, or adds 1 when the first attempt succeeded
/// (never above capacity). With no tokens left, nothing is retried until
/// successes refill the bucket.
///
/// Lock-free: one `AtomicU32` updated by `fetch_update`.
#[derive(Debug)]
pub struct TokenBucketBudget {
    tokens: AtomicU32,
    capacity: u32,
    retry_cost: u32,
    timeout_cost: u32,
    success_increment: u32,
}

impl Default for TokenBucketBudget {
    fn default() -> Self {
        Self::new(500)
    }
}

impl TokenBucketBudget {
    /// A full bucket of `capacity` tokens with AWS's costs (5 / 10 / +1).
    pub fn new(capacity: u32) -> Self {
        Self { tokens: AtomicU32::new(capacity), capacity, retry_cost: 5, timeout_cost: 10, success_increment: 1 }
    }

    /// Overrides the costs: tokens per retry, per retry after a timeout, and
    /// tokens added by a first-attempt success.
    #[must_use]
    pub fn with_costs(self, retry_cost: u32, timeout_cost: u32, success_increment: u32) -> Self {
        Self { retry_cost, timeout_cost, success_increment, ..self }
    }

    /// Tokens currently in the bucket.
    pub fn tokens(&self) -> u32 {
        self.tokens.load(Ordering::Acquire)
    }

    fn cost(&self, cost: RetryCost) -> u32 {
        match cost {
            RetryCost::Transient => self.retry_cost,
            RetryCost::Timeout => self.timeout_cost,
        }
    }

    fn refill(&self, amount: u32) {
        let capacity = self.capacity;
        // The closure always returns Some, so the update cannot fail.
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(t.saturating_add(amount).min(capacity)));
    }
}

impl RetryBudget for TokenBucketBudget {
    fn deposit(&self) {}

    fn withdraw(&self, cost: RetryCost) -> bool {
        let cost = self.cost(cost);
        self.tokens.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(cost)).is_ok()
    }

    fn record_success(&self, last_retry: Option<RetryCost>) {
        match last_retry {
            Some(cost) => self.refill(self.cost(cost)),
            None => self.refill(self.success_increment),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_drain_and_timeouts_cost_double() {
        let b = TokenBucketBudget::new(500);
        assert!(b.withdraw(RetryCost::Transient));
        assert_eq!(b.tokens(), 495);
        assert!(b.withdraw(RetryCost::Timeout));
        assert_eq!(b.tokens(), 485);
    }

    #[test]
    fn exhaustion_then_refill_by_successes() {
        let b = TokenBucketBudget::new(12);
        assert!(b.withdraw(RetryCost::Timeout));
        assert!(!b.withdraw(RetryCost::Transient)); // 2 left < 5
        assert_eq!(b.tokens(), 2);
        for _ in 0..3 {
            b.record_success(None);
        }
        assert!(b.withdraw(RetryCost::Transient));
        assert_eq!(b.tokens(), 0);
        b.record_success(Some(RetryCost::Timeout));
        assert_eq!(b.tokens(), 10);
    }

    #[test]
    fn never_above_capacity() {
        let b = TokenBucketBudget::new(500);
        b.record_success(None);
        b.record_success(Some(RetryCost::Timeout));
        assert_eq!(b.tokens(), 500);
    }

    #[test]
    fn concurrent_withdrawals_never_overdraw() {
        let b = TokenBucketBudget::new(500);
        let granted = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        if b.withdraw(RetryCost::Transient) {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.load(Ordering::Relaxed), 100);
        assert_eq!(b.tokens(), 0);
    }
}
