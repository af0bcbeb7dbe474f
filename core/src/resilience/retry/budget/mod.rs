//! Retry budgets: caps on how much extra load retries may add, so a
//! struggling dependency is not finished off by its own clients.

mod token_bucket;
mod tps;

pub use token_bucket::TokenBucketBudget;
pub use tps::TpsBudget;

/// What kind of failure a retry follows; timeouts may cost more because a
/// timed-out dependency is likely overloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCost {
    /// An ordinary transient failure.
    Transient,
    /// A timeout.
    Timeout,
}

/// A shared allowance of retries.
///
/// The retry executor calls [`deposit`](Self::deposit) once per logical
/// request (before its first attempt), [`withdraw`](Self::withdraw) before
/// every retry (a `false` stops retrying), and
/// [`record_success`](Self::record_success) when the request finally succeeds.
///
/// # Example
/// ```
/// use bazaar_core::resilience::retry::{RetryBudget, RetryCost, TokenBucketBudget};
///
/// let budget = TokenBucketBudget::new(10); // two retries at cost 5
/// assert!(budget.withdraw(RetryCost::Transient));
/// assert!(budget.withdraw(RetryCost::Transient));
/// assert!(!budget.withdraw(RetryCost::Transient));
/// budget.record_success(Some(RetryCost::Transient)); // refunds the 5
/// assert!(budget.withdraw(RetryCost::Transient));
/// ```
pub trait RetryBudget: Send + Sync + std::fmt::Debug {
    /// A new logical request starts.
    fn deposit(&self);

    /// Asks to spend a retry of the given cost; `false` means "do not retry".
    fn withdraw(&self, cost: RetryCost) -> bool;

    /// The request succeeded; `last_retry` is the cost of the retry that
    /// succeeded, or `None` if the first attempt did.
    fn record_success(&self, last_retry: Option<RetryCost>);
}
