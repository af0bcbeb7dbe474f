//! [`StripeProvider`]: the [`PaymentProvider`] port over Stripe's
//! PaymentIntents and Refunds API.

use std::sync::Arc;

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::ids::OrderId;
use bazaar_core::money::Money;
use bazaar_core::payments::{PaymentProvider, ProviderIntent, ProviderRefund, WebhookEvent, webhook};
use bazaar_core::resilience::circuit_breaker::CircuitBreaker;
use bazaar_core::resilience::clock::MonotonicClock;
use bazaar_core::resilience::retry::Sleeper;
use bazaar_core::{Error, Result};
use serde::de::DeserializeOwned;

use crate::config::StripeConfig;
use crate::errors::{self, Op, STRIPE, StripeFailure};
use crate::transport::{Method, Reply, Request, Transport};
use crate::wire::{self, PaymentIntent, Refund};

/// The provider name stored on intents and keying the webhook inbox.
pub const PROVIDER_NAME: &str = "stripe";

/// Stripe as a [`PaymentProvider`].
///
/// - Intents are created with `payment_method_types` from the config and
///   `metadata[order_id]`; confirmed server-side with the buyer's
///   `payment_method`; refunded through `/v1/refunds`; canceled with
///   `cancellation_reason=abandoned`.
/// - Every POST carries the caller's idempotency key as `Idempotency-Key`
///   and every request pins `Stripe-Version` ([`crate::API_VERSION`]).
/// - A declined confirmation (Stripe's 402 `card_error`) is reported, not
///   raised: `requires_payment_method` with our decline code (the issuer's reason
///   when a buyer may see it, else `card_declined`); 3-D Secure is `requires_action`.
/// - Amounts are Stripe's minor units, currencies reported upper-case;
///   the payment service checks both against the intent.
/// - Errors map as the table in `errors.rs` says; while the breaker
///   is open every call answers [`Error::Unavailable`] without a request.
///
/// Cheap to share behind an `Arc`; the HTTP connection pool, the breaker
/// and the retry budget are shared by every call.
#[derive(Debug)]
pub struct StripeProvider {
    transport: Transport,
    config: Arc<StripeConfig>,
    webhook_secrets: Vec<Vec<u8>>,
}

impl StripeProvider {
    /// A provider for `config`.
    ///
    /// # Errors
    /// [`Error::Internal`] when the HTTP client cannot be built (no usable
    /// TLS roots on the machine).
    pub fn new(config: StripeConfig) -> Result<Self> {
        let transport = Transport::new(&config).map_err(|e| Error::internal("building the stripe client", e))?;
        let webhook_secrets = config.webhook_secrets.iter().map(|s| s.expose().as_bytes().to_vec()).collect();
        Ok(Self { transport, config: Arc::new(config), webhook_secrets })
    }

    /// Measures breaker and retry time on `clock` and waits between
    /// attempts with `sleeper` instead of the system clock and tokio; for
    /// tests that check waits (`Retry-After`) without waiting.
    #[must_use]
    pub fn with_timing(mut self, clock: Arc<dyn MonotonicClock>, sleeper: Arc<dyn Sleeper>) -> Self {
        self.transport = self.transport.with_timing(clock, sleeper);
        self
    }

    /// The circuit breaker in front of the API (state and metrics for a
    /// status page).
    pub fn breaker(&self) -> &CircuitBreaker {
        self.transport.breaker()
    }

    async fn call(&self, op: Op, request: Request<'_>) -> Result<Reply> {
        self.transport.send(&request).await.map_err(|failure| {
            tracing::warn!(op = op.as_str(), error = %failure, "stripe call failed");
            Error::unavailable(STRIPE, failure)
        })
    }

    fn parse<T: DeserializeOwned>(reply: &Reply) -> Result<T> {
        serde_json::from_slice(&reply.body)
            .map_err(|e| Error::unavailable(STRIPE, StripeFailure::Body(format!("HTTP {}: {e}", reply.status))))
    }

    /// The object of a 2xx reply, or our error for any other.
    fn object<T: DeserializeOwned>(op: Op, reply: &Reply) -> Result<T> {
        if (200..300).contains(&reply.status) {
            Self::parse(reply)
        } else {
            Err(errors::map(op, reply.status, &errors::envelope(&reply.body), reply.retry_after))
        }
    }

    fn intent_path(provider_ref: &str, action: &str) -> Result<String> {
        // Our references come from Stripe (`pi_…`); anything else cannot
        // name an intent, and must never reach a URL path.
        let valid = provider_ref.starts_with("pi_")
            && provider_ref.len() <= 255
            && provider_ref.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(Error::not_found("payment_intent"));
        }
        Ok(format!("/v1/payment_intents/{provider_ref}{action}"))
    }

    async fn retrieve_intent(&self, provider_ref: &str) -> Result<PaymentIntent> {
        let path = Self::intent_path(provider_ref, "")?;
        let reply = self
            .call(Op::Retrieve, Request { method: Method::Get, path, form: Vec::new(), idempotency_key: None })
            .await?;
        Self::object(Op::Retrieve, &reply)
    }
}

fn positive(amount: Money) -> Result<()> {
    if amount.minor() <= 0 {
        return Err(Error::invalid("amount", "must be positive"));
    }
    Ok(())
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> String {
        PROVIDER_NAME.to_owned()
    }

    async fn create_intent(&self, amount: Money, order_id: OrderId, idempotency_key: &str) -> Result<ProviderIntent> {
        positive(amount)?;
        let mut form = vec![
            ("amount", amount.minor().to_string()),
            ("currency", amount.currency().code().to_ascii_lowercase()),
            ("metadata[order_id]", order_id.to_string()),
        ];
        form.extend(self.config.payment_method_types.iter().map(|t| ("payment_method_types[]", t.clone())));
        let request = Request {
            method: Method::Post,
            path: "/v1/payment_intents".into(),
            form,
            idempotency_key: Some(idempotency_key),
        };
        let reply = self.call(Op::Create, request).await?;
        Self::object::<PaymentIntent>(Op::Create, &reply)?.report()
    }

    async fn confirm(&self, provider_ref: &str, payment_method: &str, idempotency_key: &str) -> Result<ProviderIntent> {
        let path = Self::intent_path(provider_ref, "/confirm")?;
        let mut form = vec![("payment_method", payment_method.to_owned())];
        if let Some(url) = &self.config.return_url {
            form.push(("return_url", url.clone()));
        }
        let reply = self
            .call(Op::Confirm, Request { method: Method::Post, path, form, idempotency_key: Some(idempotency_key) })
            .await?;
        if reply.status == 402 {
            // A decline: Stripe answers with the card error and the intent,
            // back in requires_payment_method. That is a report, not an error.
            let error = errors::envelope(&reply.body);
            let mut report = match &error.payment_intent {
                Some(intent) => intent.report()?,
                None => self.retrieve_intent(provider_ref).await?.report()?,
            };
            if report.status == bazaar_core::payments::IntentStatus::RequiresPaymentMethod {
                report.decline_code = Some(wire::decline_code(&error));
            }
            return Ok(report);
        }
        Self::object::<PaymentIntent>(Op::Confirm, &reply)?.report()
    }

    async fn refund(&self, provider_ref: &str, amount: Money, idempotency_key: &str) -> Result<ProviderRefund> {
        positive(amount)?;
        // Validates the reference the same way as the intent endpoints.
        Self::intent_path(provider_ref, "")?;
        let form = vec![("payment_intent", provider_ref.to_owned()), ("amount", amount.minor().to_string())];
        let request =
            Request { method: Method::Post, path: "/v1/refunds".into(), form, idempotency_key: Some(idempotency_key) };
        let reply = self.call(Op::Refund, request).await?;
        Self::object::<Refund>(Op::Refund, &reply)?.report(provider_ref)
    }

    async fn retrieve(&self, provider_ref: &str) -> Result<ProviderIntent> {
        self.retrieve_intent(provider_ref).await?.report()
    }

    async fn cancel(&self, provider_ref: &str, idempotency_key: &str) -> Result<ProviderIntent> {
        let path = Self::intent_path(provider_ref, "/cancel")?;
        let form = vec![("cancellation_reason", "abandoned".to_owned())];
        let reply = self
            .call(Op::Cancel, Request { method: Method::Post, path, form, idempotency_key: Some(idempotency_key) })
            .await?;
        match Self::object::<PaymentIntent>(Op::Cancel, &reply) {
            Ok(intent) => intent.report(),
            // Stripe refuses to cancel a canceled intent; the port makes
            // canceling idempotent, so that answer is the canceled view.
            Err(Error::InvalidTransition { from, .. }) if from == "canceled" => {
                let error = errors::envelope(&reply.body);
                match error.payment_intent {
                    Some(intent) => intent.report(),
                    None => self.retrieve(provider_ref).await,
                }
            }
            Err(Error::InvalidTransition { from, .. }) if from == "unknown" => {
                let now = self.retrieve(provider_ref).await?;
                match now.status {
                    bazaar_core::payments::IntentStatus::Canceled => Ok(now),
                    status => Err(Error::transition("payment_intent", status, Op::Cancel.as_str())),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn verify_and_parse_webhook(
        &self,
        signature_header: &str,
        raw_body: &[u8],
        now: Timestamp,
    ) -> Result<WebhookEvent> {
        webhook::verify(signature_header, raw_body, &self.webhook_secrets, now, webhook::DEFAULT_TOLERANCE)?;
        crate::events::parse(raw_body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_that_are_not_stripe_ids_never_reach_a_path() {
        assert_eq!(
            StripeProvider::intent_path("pi_3Mtw_x9", "/confirm").unwrap(),
            "/v1/payment_intents/pi_3Mtw_x9/confirm"
        );
        for bad in ["", "pi_../../v1/refunds", "pi_a/b", "ch_123", "pi_a?b=c", "pi_%2F"] {
            assert_eq!(StripeProvider::intent_path(bad, "").unwrap_err().code(), "not_found", "{bad:?}");
        }
    }
}
