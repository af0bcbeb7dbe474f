//! Retries with backoff and jitter, server-given delays, an idempotency
//! gate and retry budgets, as a plain async call and as a tower layer.
//!
//! Layout follows tower: [`backoff`](Backoff) schedules, [`RetryPolicy`]
//! limits, [`RetryBudget`] implementations ([`TpsBudget`],
//! [`TokenBucketBudget`]), the [`Retrier`] executor, and (feature `tower`)
// The layer exists only with the feature, so only then are these links.
#![cfg_attr(feature = "tower", doc = "[`RetryLayer`] + [`Retry`].")]
#![cfg_attr(not(feature = "tower"), doc = "`RetryLayer` + `Retry`.")]
//!
//! Rules, in the order the executor applies them after each attempt:
//! 1. the classifier sees the result (`Ok` too) and says [`RetryDecision`];
//! 2. non-idempotent work is never retried unless [`Idempotency::MarkedSafe`];
//! 3. at most `max_attempts` attempts, counting the first;
//! 4. the wait is the server's `Retry-After` when given, else the backoff;
//! 5. no wait may end after `max_elapsed` (measured on the injected clock
//!    from the start of the first attempt);
//! 6. the budget must grant the retry.
//!
//! When any rule says stop, the caller gets the **last result as is**
//! (`Result<T, E>`): the last error, or an `Ok` the classifier disliked.
//! Giving up is not a new error kind because the caller almost always wants
//! the dependency's own error (status, body) to decide what to do next.
//!
//! Waiting goes through a [`Sleeper`] ([`TokioSleeper`] by default), so tests
//! inject [`ManualSleeper`], which advances a `ManualClock` instead of sleeping.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use bazaar_core::resilience::clock::{FixedJitter, ManualClock};
//! use bazaar_core::resilience::retry::{Backoff, ManualSleeper, Retrier, RetryPolicy, TokenBucketBudget};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let clock = ManualClock::new();
//! let retrier = Retrier::new(RetryPolicy::new(3, Backoff::constant(Duration::from_millis(50))))
//!     .with_budget(Arc::new(TokenBucketBudget::new(500)))
//!     .with_clock(Arc::new(clock.clone()))
//!     .with_jitter(Arc::new(FixedJitter(0.5)))
//!     .with_sleeper(Arc::new(ManualSleeper::new(clock.clone())));
//! let calls = AtomicU32::new(0);
//! let result: Result<&str, &str> = retrier
//!     .call(|| async {
//!         if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err("flaky") } else { Ok("done") }
//!     })
//!     .await;
//! assert_eq!(result, Ok("done"));
//! assert_eq!(clock_ms(&clock), 100); // two waits of 50 ms, none real
//! # fn clock_ms(c: &ManualClock) -> u64 {
//! #     use bazaar_core::resilience::clock::MonotonicClock;
//! #     c.now_nanos() / 1_000_000
//! # }
//! # }
//! ```

mod backoff;
mod budget;
#[cfg(feature = "tower")]
mod layer;
mod policy;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;

pub use backoff::{Backoff, Jitter};
pub use budget::{RetryBudget, RetryCost, TokenBucketBudget, TpsBudget};
#[cfg(feature = "tower")]
pub use layer::{FnPolicy, Policy, Retry, RetryLayer};
pub use policy::{Idempotency, RetryDecision, RetryPolicy};

use crate::resilience::clock::{JitterSource, ManualClock, MonotonicClock, SystemClock, ThreadRngJitter};

/// How the executor waits between attempts.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_core::resilience::clock::{ManualClock, MonotonicClock};
/// use bazaar_core::resilience::retry::{ManualSleeper, Sleeper};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let clock = ManualClock::new();
/// let sleeper = ManualSleeper::new(clock.clone());
/// sleeper.sleep(Duration::from_secs(5)).await; // returns at once
/// assert_eq!(clock.now_nanos(), 5_000_000_000);
/// assert_eq!(sleeper.slept(), [Duration::from_secs(5)]);
/// # }
/// ```
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Waits with `tokio::time::sleep` (so tokio's paused test time also works).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A sleeper for tests: advances a [`ManualClock`] by the requested time,
/// records it, and completes at once.
#[derive(Debug, Clone, Default)]
pub struct ManualSleeper {
    clock: ManualClock,
    slept: Arc<Mutex<Vec<Duration>>>,
}

impl ManualSleeper {
    /// A sleeper moving `clock`.
    pub fn new(clock: ManualClock) -> Self {
        Self { clock, slept: Arc::default() }
    }

    /// Every wait requested so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.slept.lock().clone()
    }
}

impl Sleeper for ManualSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.slept.lock().push(duration);
        self.clock.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

/// Runs async work with retries. Cheap to clone (shared parts are `Arc`s).
///
/// `call` treats the work as idempotent and retries every `Err`;
/// `call_with` takes the idempotency and a classifier.
#[derive(Debug, Clone)]
pub struct Retrier {
    policy: RetryPolicy,
    budget: Option<Arc<dyn RetryBudget>>,
    clock: Arc<dyn MonotonicClock>,
    jitter: Arc<dyn JitterSource>,
    sleeper: Arc<dyn Sleeper>,
}

impl Retrier {
    /// A retrier with no budget, the system clock, thread-rng jitter and
    /// tokio sleeps.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            budget: None,
            clock: Arc::new(SystemClock::new()),
            jitter: Arc::new(ThreadRngJitter),
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// Shares `budget` with every call (and every clone of this retrier).
    #[must_use]
    pub fn with_budget(self, budget: Arc<dyn RetryBudget>) -> Self {
        Self { budget: Some(budget), ..self }
    }

    /// Measures max elapsed on `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn MonotonicClock>) -> Self {
        Self { clock, ..self }
    }

    /// Draws jitter from `jitter`.
    #[must_use]
    pub fn with_jitter(self, jitter: Arc<dyn JitterSource>) -> Self {
        Self { jitter, ..self }
    }

    /// Waits with `sleeper`.
    #[must_use]
    pub fn with_sleeper(self, sleeper: Arc<dyn Sleeper>) -> Self {
        Self { sleeper, ..self }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Runs idempotent `op`, retrying every `Err`; returns the last result.
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(Idempotency::Idempotent, RetryDecision::on_err, op).await
    }

    /// Runs `op` under the idempotency gate and `classify`; returns the last
    /// result (see the module docs for the order of the rules).
    pub async fn call_with<T, E, F, Fut, C>(&self, idempotency: Idempotency, classify: C, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Fn(&Result<T, E>) -> RetryDecision,
    {
        // Only max elapsed needs the clock; skipping the read keeps the
        // success path close to a direct call.
        let started = if self.policy.max_elapsed.is_some() { self.clock.now_nanos() } else { 0 };
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        let mut attempt: u32 = 1;
        let mut previous_backoff: Option<Duration> = None;
        let mut last_retry: Option<RetryCost> = None;
        loop {
            let result = op().await;
            let decision = classify(&result);
            let cost = match decision {
                RetryDecision::Done => {
                    if let (Ok(_), Some(budget)) = (&result, &self.budget) {
                        budget.record_success(last_retry);
                    }
                    return result;
                }
                RetryDecision::RetryTimeout => RetryCost::Timeout,
                RetryDecision::Retry | RetryDecision::RetryAfter(_) => RetryCost::Transient,
            };
            if !idempotency.allows_retry() || attempt >= self.policy.max_attempts {
                return result;
            }
            let delay = match decision {
                RetryDecision::RetryAfter(server_delay) => server_delay,
                _ => {
                    let d = self.policy.backoff.delay(attempt - 1, previous_backoff, &*self.jitter);
                    previous_backoff = Some(d);
                    d
                }
            };
            if let Some(max) = self.policy.max_elapsed {
                let elapsed = Duration::from_nanos(self.clock.now_nanos().saturating_sub(started));
                if elapsed.saturating_add(delay) > max {
                    tracing::debug!(attempt, ?elapsed, ?delay, "retry stopped: max elapsed reached");
                    return result;
                }
            }
            if self.budget.as_ref().is_some_and(|b| !b.withdraw(cost)) {
                tracing::debug!(attempt, "retry stopped: budget exhausted");
                return result;
            }
            tracing::debug!(attempt, ?delay, "retrying");
            self.sleeper.sleep(delay).await;
            last_retry = Some(cost);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::resilience::clock::FixedJitter;

    const MS: Duration = Duration::from_millis(1);

    struct Harness {
        clock: ManualClock,
        sleeper: ManualSleeper,
    }

    fn retrier(policy: RetryPolicy) -> (Retrier, Harness) {
        let clock = ManualClock::new();
        let sleeper = ManualSleeper::new(clock.clone());
        let r = Retrier::new(policy)
            .with_clock(Arc::new(clock.clone()))
            .with_jitter(Arc::new(FixedJitter(0.0)))
            .with_sleeper(Arc::new(sleeper.clone()));
        (r, Harness { clock, sleeper })
    }

    fn exp(attempts: u32) -> RetryPolicy {
        RetryPolicy::new(attempts, Backoff::exponential(100 * MS, 2.0, 1000 * MS))
    }

    async fn always_fail(r: &Retrier, calls: &AtomicU32) -> Result<(), u32> {
        r.call(|| async { Err(calls.fetch_add(1, Ordering::SeqCst)) }).await
    }

    #[tokio::test]
    async fn max_attempts_counts_the_first_and_returns_the_last_error() {
        let (r, h) = retrier(exp(4));
        let calls = AtomicU32::new(0);
        assert_eq!(always_fail(&r, &calls).await, Err(3));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(h.sleeper.slept(), [100 * MS, 200 * MS, 400 * MS]);
    }

    #[tokio::test]
    async fn retry_after_wins_over_the_backoff() {
        let (r, h) = retrier(exp(3));
        let calls = AtomicU32::new(0);
        let result: Result<(), &str> = r
            .call_with(
                Idempotency::Idempotent,
                |_: &Result<(), &str>| RetryDecision::RetryAfter(Duration::from_secs(7)),
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("429")
                },
            )
            .await;
        assert_eq!(result, Err("429"));
        assert_eq!(h.sleeper.slept(), [7000 * MS, 7000 * MS]);
    }

    #[tokio::test]
    async fn max_elapsed_stops_before_a_wait_that_would_overrun() {
        let (r, h) = retrier(exp(10).with_max_elapsed(Duration::from_millis(1000)));
        let calls = AtomicU32::new(0);
        let _ = always_fail(&r, &calls).await;
        // 100 + 200 + 400 = 700 ms; the next wait (800) would end at 1.5 s.
        assert_eq!(h.sleeper.slept(), [100 * MS, 200 * MS, 400 * MS]);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(h.clock.now_nanos(), 700_000_000);
    }

    #[tokio::test]
    async fn retry_after_is_still_bounded_by_max_elapsed() {
        let (r, h) = retrier(exp(10).with_max_elapsed(Duration::from_secs(5)));
        let result: Result<(), ()> = r
            .call_with(
                Idempotency::Idempotent,
                |_: &Result<(), ()>| RetryDecision::RetryAfter(Duration::from_secs(6)),
                || async { Err(()) },
            )
            .await;
        assert!(result.is_err());
        assert!(h.sleeper.slept().is_empty());
    }

    #[tokio::test]
    async fn classifier_sees_ok_and_can_retry_it() {
        let (r, h) = retrier(exp(3));
        let calls = AtomicU32::new(0);
        let result: Result<u16, ()> = r
            .call_with(
                Idempotency::Idempotent,
                |res: &Result<u16, ()>| {
                    if res == &Ok(503) { RetryDecision::Retry } else { RetryDecision::Done }
                },
                || async { Ok(if calls.fetch_add(1, Ordering::SeqCst) == 0 { 503 } else { 200 }) },
            )
            .await;
        assert_eq!(result, Ok(200));
        assert_eq!(h.sleeper.slept().len(), 1);
    }

    #[tokio::test]
    async fn non_retryable_errors_stop_at_once() {
        let (r, h) = retrier(exp(5));
        let calls = AtomicU32::new(0);
        let _: Result<(), &str> = r
            .call_with(
                Idempotency::Idempotent,
                |_: &Result<(), &str>| RetryDecision::Done,
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("400")
                },
            )
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(h.sleeper.slept().is_empty());
    }

    #[tokio::test]
    async fn non_idempotent_work_is_not_retried_unless_marked_safe() {
        let (r, _) = retrier(exp(5));
        for (idempotency, expected) in [(Idempotency::NonIdempotent, 1), (Idempotency::MarkedSafe, 5)] {
            let calls = AtomicU32::new(0);
            let _: Result<(), ()> = r
                .call_with(idempotency, RetryDecision::on_err, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(())
                })
                .await;
            assert_eq!(calls.load(Ordering::SeqCst), expected, "{idempotency:?}");
        }
    }

    #[tokio::test]
    async fn token_bucket_budget_stops_retries_and_successes_refill_it() {
        let budget = Arc::new(TokenBucketBudget::new(12));
        let (r, _) = retrier(exp(10));
        let r = r.with_budget(budget.clone());
        let calls = AtomicU32::new(0);
        let _ = always_fail(&r, &calls).await;
        // 12 tokens pay for two retries of 5: three attempts in all.
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(budget.tokens(), 2);
        let ok: Result<(), ()> = r.call(|| async { Ok(()) }).await;
        assert!(ok.is_ok());
        assert_eq!(budget.tokens(), 3);
        // A success after a timeout retry refunds the timeout cost.
        let budget = Arc::new(TokenBucketBudget::new(500));
        let r = r.with_budget(budget.clone());
        let calls = AtomicU32::new(0);
        let _: Result<(), ()> = r
            .call_with(
                Idempotency::Idempotent,
                |res: &Result<(), ()>| {
                    if res.is_err() { RetryDecision::RetryTimeout } else { RetryDecision::Done }
                },
                || async { if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(()) } else { Ok(()) } },
            )
            .await;
        assert_eq!(budget.tokens(), 490);
    }

    #[tokio::test]
    async fn tps_budget_limits_retries_to_a_share_of_requests() {
        let (r, h) = retrier(exp(3));
        let budget = Arc::new(TpsBudget::with_clock(Duration::from_secs(10), 0, 0.5, Arc::new(h.clock.clone())));
        let r = r.with_budget(budget.clone());
        // Each failing call deposits 1 and wants 2 retries costing 2 each.
        let calls = AtomicU32::new(0);
        for _ in 0..4 {
            let _ = always_fail(&r, &calls).await;
        }
        // Deposits 1,2,3,4 over time: retries granted when the balance
        // reaches 2, i.e. 2 retries in total for 4 requests (50 %).
        assert_eq!(calls.load(Ordering::SeqCst), 4 + 2);
        assert_eq!(budget.available(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_sleeper_uses_virtual_time() {
        let r = Retrier::new(RetryPolicy::new(3, Backoff::constant(Duration::from_secs(3600))));
        let calls = AtomicU32::new(0);
        let before = tokio::time::Instant::now();
        let _ = always_fail(&r, &calls).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(before.elapsed() >= Duration::from_secs(7200));
    }
}
