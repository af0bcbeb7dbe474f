//! The relay side of the transactional outbox.

use async_trait::async_trait;

use super::Event;
use crate::clock::Timestamp;
use crate::error::Result;

/// One unpublished outbox entry handed to a relay.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The entry's position in the outbox (strictly increasing with commit order).
    pub seq: u64,
    /// The event.
    pub event: Event,
}

/// Reading and completing the outbox that repositories append to.
///
/// Appending is not part of this port: each repository appends the events of
/// its unit of work in the same transaction as the state change.
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::events::{Event, OutboxStore, UserRegistered};
/// use bazaar_core::ids::UserId;
/// use bazaar_memory::MemoryOutbox;
///
/// let now = ManualClock::at_epoch_secs(0).now();
/// let outbox = MemoryOutbox::new();
/// outbox.append(&[Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, now)]);
/// let claimed = outbox.claim(10, now, now + chrono::Duration::seconds(30)).await.unwrap();
/// assert_eq!(claimed.len(), 1);
/// // A second relay sees nothing while the lease holds.
/// assert!(outbox.claim(10, now, now + chrono::Duration::seconds(30)).await.unwrap().is_empty());
/// outbox.mark_published(&[claimed[0].seq]).await.unwrap();
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` unpublished entries, lowest `seq` first, that are
    /// not leased at `now` (never leased, or their lease ended at or before
    /// `now`), and leases them until `lease_until`.
    ///
    /// MUST be atomic with respect to concurrent claims: two relays never
    /// hold the same entry at once (SQL: `FOR UPDATE SKIP LOCKED` + an update
    /// of the lease in one transaction). A relay that dies simply lets its
    /// lease run out.
    async fn claim(&self, limit: usize, now: Timestamp, lease_until: Timestamp) -> Result<Vec<OutboxEntry>>;

    /// Marks entries published; they are never claimed again.
    ///
    /// MUST be idempotent and ignore unknown `seq`s.
    async fn mark_published(&self, seqs: &[u64]) -> Result<()>;

    /// Ends the lease on entries that could not be published, so the next
    /// claim retries them without waiting for the lease to run out.
    ///
    /// MUST leave published entries published.
    async fn release(&self, seqs: &[u64]) -> Result<()>;
}
