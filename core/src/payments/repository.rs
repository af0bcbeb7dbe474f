//! The payment-intent store port, with the webhook inbox.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::PaymentIntent;
use crate::error::Result;
use crate::events::Event;
use crate::ids::{OrderId, PaymentIntentId};

/// Whether [`PaymentRepository::apply_webhook`] applied a webhook or had seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookReceipt {
    /// First delivery: recorded, and the update (if any) applied.
    Applied,
    /// Already in the inbox: nothing changed.
    Duplicate,
}

/// Where payment intents live.
///
/// Every mutating method commits the change and its `events` (to the
/// outbox) atomically, or neither. Updates are optimistic: the store bumps
/// `version` by one on each successful write.
///
/// # Example
/// ```
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::ids::{OrderId, PaymentIntentId};
/// use bazaar_core::money::{Currency, Money};
/// use bazaar_core::payments::{IntentStatus, PaymentIntent, PaymentRepository, WebhookReceipt};
/// use bazaar_memory::{MemoryOutbox, MemoryPayments};
/// # futures::executor::block_on(async {
/// let repo = MemoryPayments::new(MemoryOutbox::new());
/// let now = ManualClock::at_epoch_secs(1_700_000_000).now();
/// let intent = PaymentIntent {
///     id: PaymentIntentId::new(), order_id: OrderId::new(), amount: Money::new(1999, Currency::USD),
///     status: IntentStatus::RequiresPaymentMethod, provider: "sandbox".into(),
///     provider_ref: Some("pi_1".into()), attempts: vec![],
///     amount_refunded: Money::zero(Currency::USD), version: 1, created_at: now, updated_at: now,
/// };
/// repo.insert(&intent, &[]).await.unwrap();
/// let mut next = intent.clone();
/// next.status = IntentStatus::Succeeded;
/// let first = repo.apply_webhook("sandbox", "evt_1", Some((&next, 1)), &[]).await.unwrap();
/// assert_eq!(first, WebhookReceipt::Applied);
/// // A replay changes nothing, even with a different update.
/// assert_eq!(repo.apply_webhook("sandbox", "evt_1", None, &[]).await.unwrap(), WebhookReceipt::Duplicate);
/// assert_eq!(repo.get(intent.id).await.unwrap().unwrap().version, 2);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentRepository: Send + Sync {
    /// Stores a new intent (as given, version included) with its events.
    ///
    /// MUST return [`crate::Error::Conflict`] and change nothing when an
    /// intent with this id, or any intent for the same order, exists.
    async fn insert(&self, intent: &PaymentIntent, events: &[Event]) -> Result<()>;

    /// The intent with this id, if any.
    async fn get(&self, id: PaymentIntentId) -> Result<Option<PaymentIntent>>;

    /// The intent of an order, if any (at most one exists).
    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<PaymentIntent>>;

    /// The intent `provider` knows as `provider_ref`, if any.
    async fn get_by_provider_ref(&self, provider: &str, provider_ref: &str) -> Result<Option<PaymentIntent>>;

    /// Replaces the stored intent with `intent` when the stored version is
    /// `expected_version`, storing it with `version = expected_version + 1`,
    /// and commits `events`; returns what was stored.
    ///
    /// MUST return [`crate::Error::NotFound`] when the intent does not exist
    /// and [`crate::Error::VersionMismatch`] when the version differs; both
    /// change nothing.
    async fn update(&self, intent: &PaymentIntent, expected_version: u64, events: &[Event]) -> Result<PaymentIntent>;

    /// Records webhook `(provider, event_id)` in the inbox and, in the same
    /// atomic step, applies `update` exactly as [`Self::update`] would and
    /// commits `events`.
    ///
    /// MUST return [`WebhookReceipt::Duplicate`] and change nothing (no
    /// update, no events) when the pair is already in the inbox; of
    /// concurrent deliveries of one event exactly one is `Applied`. When the
    /// update fails (`NotFound`, `VersionMismatch`) the event is NOT
    /// recorded, so a redelivery can succeed.
    async fn apply_webhook<'a>(
        &self,
        provider: &str,
        event_id: &str,
        update: Option<(&'a PaymentIntent, u64)>,
        events: &[Event],
    ) -> Result<WebhookReceipt>;
}
