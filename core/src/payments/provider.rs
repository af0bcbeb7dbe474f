//! The payment-provider port (Stripe-shaped) and what providers report.
//!
//! Providers report amounts as raw minor units plus a currency *string*:
//! what the provider said, before we trust it. [`super::integrity`] checks
//! it against our intent before anything changes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::IntentStatus;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::OrderId;
use crate::money::Money;

/// A provider's view of a payment intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderIntent {
    /// The provider's id for it.
    pub provider_ref: String,
    /// Its status, in Stripe's vocabulary (a declined confirm reports
    /// `requires_payment_method` with a `decline_code`).
    pub status: IntentStatus,
    /// The amount the provider holds, in minor units.
    pub amount: i64,
    /// The currency the provider holds, as it reported it.
    pub currency: String,
    /// Why the last attempt was declined, if it was.
    pub decline_code: Option<String>,
}

/// A refund the provider made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRefund {
    /// The provider's id for the refund.
    pub refund_ref: String,
    /// The intent refunded.
    pub provider_ref: String,
    /// The amount refunded by this refund, in minor units.
    pub amount: i64,
    /// Its currency, as reported.
    pub currency: String,
}

/// What a webhook says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookKind {
    /// The intent succeeded.
    #[serde(rename = "payment_intent.succeeded")]
    PaymentSucceeded,
    /// An attempt failed.
    #[serde(rename = "payment_intent.payment_failed")]
    PaymentFailed,
    /// The intent needs customer action.
    #[serde(rename = "payment_intent.requires_action")]
    RequiresAction,
    /// The intent is being processed.
    #[serde(rename = "payment_intent.processing")]
    Processing,
    /// The intent was canceled.
    #[serde(rename = "payment_intent.canceled")]
    Canceled,
    /// Money was refunded; `amount` is the total refunded so far.
    #[serde(rename = "charge.refunded")]
    Refunded,
}

/// A verified, parsed webhook notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The provider's event id; the inbox deduplicates on it.
    pub id: String,
    /// What happened.
    pub kind: WebhookKind,
    /// The intent it is about.
    pub provider_ref: String,
    /// The intent's amount (for `charge.refunded`: the total refunded), minor units.
    pub amount: i64,
    /// The currency, as reported.
    pub currency: String,
    /// The intent's status after the event.
    pub status: IntentStatus,
    /// The decline code of a failed attempt.
    #[serde(default)]
    pub decline_code: Option<String>,
}

/// A payment provider (Stripe, Adyen, the [`super::SandboxProvider`]).
///
/// Every mutating call carries an idempotency key: the provider MUST answer
/// a repeated key with the first call's result and never charge or refund
/// twice. Failures to reach the provider are [`crate::Error::Unavailable`].
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use bazaar_core::clock::ManualClock;
/// use bazaar_core::ids::OrderId;
/// use bazaar_core::money::{Currency, Money};
/// use bazaar_core::payments::{IntentStatus, PaymentProvider, SandboxProvider};
/// # futures::executor::block_on(async {
/// let sandbox = SandboxProvider::new(Arc::new(ManualClock::at_epoch_secs(1_700_000_000)), b"whsec_test".to_vec());
/// let created = sandbox.create_intent(Money::new(1999, Currency::USD), OrderId::new(), "create-1").await.unwrap();
/// let paid = sandbox.confirm(&created.provider_ref, "pm_card_visa", "confirm-1").await.unwrap();
/// assert_eq!(paid.status, IntentStatus::Succeeded);
/// // Same key, same answer, no second charge.
/// assert_eq!(sandbox.confirm(&created.provider_ref, "pm_card_visa", "confirm-1").await.unwrap(), paid);
/// assert_eq!(sandbox.captures(), 1);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// The provider's name, stored on intents and keying the webhook inbox.
    fn name(&self) -> String;

    /// Creates an intent for `amount`, in `requires_payment_method`.
    async fn create_intent(&self, amount: Money, order_id: OrderId, idempotency_key: &str) -> Result<ProviderIntent>;

    /// Confirms the intent with `payment_method`; reports the outcome.
    ///
    /// MUST return [`crate::Error::Validation`] on `payment_method` for a
    /// method it does not know; a decline is not an error but a
    /// `requires_payment_method` report with a `decline_code`.
    async fn confirm(&self, provider_ref: &str, payment_method: &str, idempotency_key: &str) -> Result<ProviderIntent>;

    /// Refunds `amount` of a succeeded intent.
    async fn refund(&self, provider_ref: &str, amount: Money, idempotency_key: &str) -> Result<ProviderRefund>;

    /// The provider's current view of the intent (for reconciliation).
    async fn retrieve(&self, provider_ref: &str) -> Result<ProviderIntent>;

    /// Cancels the intent at the provider, so no later confirmation can
    /// capture it; reports it `canceled`.
    ///
    /// MUST answer an intent that is already canceled with its `canceled`
    /// view (canceling is idempotent), and return
    /// [`crate::Error::InvalidTransition`] for one that succeeded or is
    /// processing, changing nothing.
    ///
    /// The default is for providers that cannot cancel at their end: it
    /// returns [`crate::Error::Internal`] naming the provider, because
    /// calling it there is a wiring mistake, not a state the caller can fix.
    async fn cancel(&self, provider_ref: &str, idempotency_key: &str) -> Result<ProviderIntent> {
        let _ = (provider_ref, idempotency_key);
        Err(crate::Error::internal(
            "canceling a payment intent",
            format!("payment provider {:?} cannot cancel intents", self.name()),
        ))
    }

    /// Verifies a webhook's signature (see [`super::webhook::verify`]) and
    /// parses its body.
    ///
    /// MUST return [`crate::Error::Unauthenticated`] for a bad or stale
    /// signature and [`crate::Error::Validation`] for a body it cannot parse.
    fn verify_and_parse_webhook(&self, signature_header: &str, raw_body: &[u8], now: Timestamp)
    -> Result<WebhookEvent>;
}
