//! The consumer-side inbox: which events each handler already processed.

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::EventId;

/// Records processed `(consumer, event id)` pairs so redeliveries are skipped.
///
/// `consumer` names one handler within one consumer group (the dispatcher
/// uses `"{group}/{handler}"`), so a handler that succeeded is not re-run
/// when a sibling handler failed and the event comes back.
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use bazaar_core::events::Inbox;
/// use bazaar_core::ids::EventId;
/// use bazaar_memory::MemoryInbox;
///
/// let inbox = MemoryInbox::new();
/// let id = EventId::new();
/// assert!(inbox.mark_processed("worker/fulfillment", id).await.unwrap());
/// assert!(!inbox.mark_processed("worker/fulfillment", id).await.unwrap());
/// assert!(inbox.is_processed("worker/fulfillment", id).await.unwrap());
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Records that `consumer` processed `event_id`.
    ///
    /// MUST return `true` only for the call that recorded the pair first
    /// (atomically, under concurrency) and `false` for every later one.
    async fn mark_processed(&self, consumer: &str, event_id: EventId) -> Result<bool>;

    /// Whether `consumer` already processed `event_id`.
    async fn is_processed(&self, consumer: &str, event_id: EventId) -> Result<bool>;

    /// [`Self::is_processed`] for each pair of `keys`, in order. The default
    /// asks one by one; stores answer in one query.
    async fn processed_among(&self, keys: &[(String, EventId)]) -> Result<Vec<bool>> {
        let mut processed = Vec::with_capacity(keys.len());
        for (consumer, event_id) in keys {
            processed.push(self.is_processed(consumer, *event_id).await?);
        }
        Ok(processed)
    }

    /// Records every pair of `keys` as [`Self::mark_processed`] does (pairs
    /// recorded already stay as they are). The default records one by one;
    /// stores write them in one statement. On `Err` some may be recorded.
    async fn mark_all_processed(&self, keys: &[(String, EventId)]) -> Result<()> {
        for (consumer, event_id) in keys {
            self.mark_processed(consumer, *event_id).await?;
        }
        Ok(())
    }
}
