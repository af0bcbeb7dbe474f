//! The payment service: intents for orders, confirmation at the provider,
//! webhooks through the inbox, refunds.
//!
//! Idempotency keys sent to the provider are derived from our own state,
//! never random, so a retry after a crash or a concurrent duplicate sends
//! the *same* key and the provider answers with the first result instead of
//! charging again: `order:<order id>:create_intent`,
//! `<intent id>:confirm:<attempt number>`,
//! `<intent id>:refund:<refunded so far>:<amount>`.

use crate::error::ConflictReason;
use std::sync::Arc;

use super::integrity;
use super::intent::{AttemptOutcome, IntentEvent, IntentStatus, PaymentAttempt, PaymentIntent, reconcile, transition};
use super::provider::{PaymentProvider, ProviderIntent, WebhookEvent, WebhookKind};
use super::repository::{PaymentRepository, WebhookReceipt};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::events::{Event, PaymentFailed, PaymentSucceeded};
use crate::ids::{OrderId, PaymentIntentId};
use crate::money::Money;

/// The provider name stored on the intents of zero-total orders, which
/// never reach a provider.
pub const FREE_PROVIDER: &str = "free";

/// Confirmation attempts one intent takes. Every attempt is kept on the
/// intent (and a declined card may be retried), so without a cap a client
/// declining cards in a loop would grow one record without end; past it
/// the order must be placed again.
pub const MAX_ATTEMPTS: usize = 20;

/// How often a write that lost an optimistic-concurrency race is redone
/// against fresh state before giving up.
const MAX_RETRIES: usize = 3;

/// Payment intents for orders, known here by id and amount: the order
/// service decides who may pay what and calls this one.
pub struct PaymentService {
    payments: Arc<dyn PaymentRepository>,
    provider: Arc<dyn PaymentProvider>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PaymentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentService").field("provider", &self.provider.name()).finish_non_exhaustive()
    }
}

impl PaymentService {
    /// A service storing intents in `payments` and charging through `provider`.
    pub fn new(
        payments: Arc<dyn PaymentRepository>,
        provider: Arc<dyn PaymentProvider>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { payments, provider, clock }
    }

    /// The intent store, for the separate checkout of an order service
    /// built on this one.
    pub(crate) fn repository(&self) -> Arc<dyn PaymentRepository> {
        self.payments.clone()
    }

    /// The provider payments go through.
    pub fn provider(&self) -> &Arc<dyn PaymentProvider> {
        &self.provider
    }

    /// The order's intent, created at the provider if it has none yet
    /// (idempotent: concurrent callers end up with the same intent).
    ///
    /// # Errors
    /// [`Error::Validation`] for a zero-total order (see
    /// [`Self::record_free_order`]); [`Error::Integrity`] when the provider
    /// reports another amount; provider and store errors.
    pub async fn create_for_order(&self, order_id: OrderId, total: Money) -> Result<PaymentIntent> {
        if let Some(existing) = self.payments.get_by_order(order_id).await? {
            return Ok(existing);
        }
        self.create_for_placed_order(order_id, total).await
    }

    /// [`Self::create_for_order`] for an order known to have had no intent
    /// (just placed, or read without one), so there is nothing to look up
    /// first: the insert's uniqueness on the order still makes a concurrent
    /// caller's intent the one returned.
    ///
    /// # Errors
    /// As [`Self::create_for_order`].
    pub async fn create_for_placed_order(&self, order_id: OrderId, total: Money) -> Result<PaymentIntent> {
        let intent = self.open_intent(order_id, total).await?;
        match self.payments.insert(&intent, &[]).await {
            Ok(()) => Ok(intent),
            // A concurrent caller inserted first; theirs is the one.
            Err(Error::Conflict { .. }) => {
                self.payments.get_by_order(order_id).await?.ok_or_else(|| Error::not_found("payment_intent"))
            }
            Err(e) => Err(e),
        }
    }

    /// Opens an intent for the order at the provider and answers it as it
    /// would be stored, without storing it (the caller does, e.g. with the
    /// order through the order service's checkout).
    /// The provider's key derives from the order, so opening twice opens one intent there.
    ///
    /// # Errors
    /// As [`Self::create_for_order`], without the store errors.
    pub async fn open_intent(&self, order_id: OrderId, total: Money) -> Result<PaymentIntent> {
        if total.minor() <= 0 {
            return Err(Error::invalid("total", "a free order needs no payment intent"));
        }
        let key = format!("order:{order_id}:create_intent");
        let report = self.provider.create_intent(total, order_id, &key).await?;
        let now = self.clock.now();
        let intent = PaymentIntent {
            id: PaymentIntentId::new(),
            order_id,
            amount: total,
            status: IntentStatus::RequiresPaymentMethod,
            provider: self.provider.name(),
            provider_ref: Some(report.provider_ref.clone()),
            attempts: Vec::new(),
            amount_refunded: Money::zero(total.currency()),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        integrity::check_report(&intent, &report.provider_ref, report.amount, &report.currency)?;
        Ok(intent)
    }

    /// Records the already-succeeded, zero-amount intent of a free order so
    /// its `payment.succeeded` event names a real intent. No provider call.
    ///
    /// # Errors
    /// [`Error::Validation`] when the order is not free; store errors
    /// ([`Error::Conflict`] when the order already has an intent).
    pub async fn record_free_order(&self, order_id: OrderId, total: Money) -> Result<PaymentIntent> {
        if !total.is_zero() {
            return Err(Error::invalid("total", "only a free order is settled without payment"));
        }
        let now = self.clock.now();
        let intent = PaymentIntent {
            id: PaymentIntentId::new(),
            order_id,
            amount: total,
            status: IntentStatus::Succeeded,
            provider: FREE_PROVIDER.to_owned(),
            provider_ref: None,
            attempts: Vec::new(),
            amount_refunded: total,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.payments.insert(&intent, &[]).await?;
        Ok(intent)
    }

    /// The order's intent, if it has one (no authorization: for services
    /// and handlers).
    ///
    /// # Errors
    /// Store errors.
    pub async fn find_for_order(&self, order_id: OrderId) -> Result<Option<PaymentIntent>> {
        self.payments.get_by_order(order_id).await
    }

    /// Confirms `intent` at the provider with `payment_method` (the order
    /// service has checked who pays and that the order is payable).
    ///
    /// Confirms with the key `<intent id>:confirm:<attempt number>`, checks
    /// the report's amount and currency, then records the attempt and the
    /// new status in one update: success → `succeeded` with a
    /// `payment.succeeded` event; decline → back to
    /// `requires_payment_method` with a `payment.failed` event; 3-D Secure →
    /// `requires_action` (finished by a webhook).
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] when the intent cannot be confirmed
    /// (succeeded, canceled, processing) — the provider is not called;
    /// [`Error::Conflict`] ([`ConflictReason::Exceeded`]) after
    /// [`MAX_ATTEMPTS`] attempts — the provider is not called either;
    /// [`Error::Integrity`] when the provider's report contradicts the
    /// intent (nothing changes); [`Error::VersionMismatch`] when a
    /// concurrent payment won.
    pub async fn confirm(&self, intent: PaymentIntent, payment_method: &str) -> Result<PaymentIntent> {
        // Refuse before talking to the provider: an intent succeeds at most once.
        transition(intent.status, IntentEvent::Confirm)?;
        if intent.attempts.len() >= MAX_ATTEMPTS {
            return Err(Error::conflict(
                ConflictReason::Exceeded,
                format!("this payment was attempted {MAX_ATTEMPTS} times; place the order again to pay"),
            ));
        }
        let provider_ref = intent
            .provider_ref
            .clone()
            .ok_or_else(|| Error::internal("paying an intent", "a payable intent has no provider reference"))?;
        let key = format!("{}:confirm:{}", intent.id, intent.attempts.len() + 1);
        let report = self.provider.confirm(&provider_ref, payment_method, &key).await?;
        integrity::check_report(&intent, &report.provider_ref, report.amount, &report.currency)?;
        let outcome = match report.status {
            IntentStatus::Succeeded => AttemptOutcome::Succeeded,
            IntentStatus::RequiresPaymentMethod => AttemptOutcome::Failed,
            IntentStatus::RequiresAction => AttemptOutcome::RequiresAction,
            IntentStatus::Processing => AttemptOutcome::Processing,
            other => {
                return Err(Error::Integrity(format!("provider answered a confirmation with status {other}")));
            }
        };
        let now = self.clock.now();
        let mut next = intent.clone();
        next.attempts.push(PaymentAttempt {
            payment_method: payment_method.to_owned(),
            outcome,
            decline_code: report.decline_code.clone(),
            at: now,
        });
        let events = self.apply_report(&mut next, &report)?;
        match self.payments.update(&next, intent.version, &events).await {
            // A concurrent confirmation with the same key, or the provider's
            // webhook, recorded this very outcome first: the payment is
            // settled, so the caller gets it rather than a conflict.
            Err(Error::VersionMismatch { expected, current }) => {
                let now_stored = self.payments.get(intent.id).await?;
                match now_stored {
                    Some(stored) if stored.status == next.status => Ok(stored),
                    _ => Err(Error::VersionMismatch { expected, current }),
                }
            }
            other => other,
        }
    }

    /// Moves `intent` to the status a provider reported and returns the
    /// events that change warrants.
    fn apply_report(&self, intent: &mut PaymentIntent, report: &ProviderIntent) -> Result<Vec<Event>> {
        let from = intent.status;
        intent.status = reconcile(from, report.status)?;
        intent.updated_at = self.clock.now();
        Ok(self.status_events(intent, from, report.decline_code.as_deref()))
    }

    fn status_events(&self, intent: &PaymentIntent, from: IntentStatus, decline_code: Option<&str>) -> Vec<Event> {
        let now = self.clock.now();
        let correlation = Some(intent.order_id.as_uuid());
        // Callers only get here for a confirmation's outcome or a status
        // change, so landing on requires_payment_method is a failed attempt.
        let failed_attempt = intent.status == IntentStatus::RequiresPaymentMethod;
        if intent.status == IntentStatus::Succeeded && from != IntentStatus::Succeeded {
            let payload =
                PaymentSucceeded { order_id: intent.order_id, payment_intent_id: intent.id, amount: intent.amount };
            vec![Event::new(&payload, now).correlated(correlation)]
        } else if failed_attempt {
            let payload = PaymentFailed {
                order_id: intent.order_id,
                payment_intent_id: intent.id,
                reason: decline_code.unwrap_or("declined").to_owned(),
            };
            vec![Event::new(&payload, now).correlated(correlation)]
        } else {
            Vec::new()
        }
    }

    /// Verifies, parses and applies a provider's webhook through the inbox:
    /// a replay (same provider event id) changes nothing and returns
    /// [`WebhookReceipt::Duplicate`]. A stale report (an old
    /// `requires_action` after success) is recorded without changing the intent.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `provider` is not this service's provider or
    /// the intent is unknown; [`Error::Unauthenticated`] for a bad
    /// signature; [`Error::Validation`] for an unparsable body;
    /// [`Error::Integrity`] when the report contradicts the intent (amount,
    /// currency, a canceled intent reported succeeded); nothing changes.
    pub async fn handle_webhook(
        &self,
        provider: &str,
        signature_header: &str,
        raw_body: &[u8],
    ) -> Result<WebhookReceipt> {
        let name = self.provider.name();
        if provider != name {
            return Err(Error::not_found("payment_provider"));
        }
        let event = self.provider.verify_and_parse_webhook(signature_header, raw_body, self.clock.now())?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let intent = self
                .payments
                .get_by_provider_ref(&name, &event.provider_ref)
                .await?
                .ok_or_else(|| Error::not_found("payment_intent"))?;
            let (next, events) = self.webhook_update(&intent, &event)?;
            let update = next.as_ref().map(|n| (n, intent.version));
            match self.payments.apply_webhook(&name, &event.id, update, &events).await {
                // A concurrent write (our own `pay` recording the same
                // outcome) moved the intent; judge the event again.
                Err(Error::VersionMismatch { .. }) if attempt < MAX_RETRIES => continue,
                other => return other,
            }
        }
    }

    fn webhook_update(
        &self,
        intent: &PaymentIntent,
        event: &WebhookEvent,
    ) -> Result<(Option<PaymentIntent>, Vec<Event>)> {
        if let Some(ours) = intent.provider_ref.as_deref().filter(|ours| *ours != event.provider_ref) {
            return Err(Error::Integrity(format!("webhook for {:?} matched intent of {ours:?}", event.provider_ref)));
        }
        if event.kind == WebhookKind::Refunded {
            integrity::check_refunded_total(intent, event.amount, &event.currency)?;
            if intent.status != IntentStatus::Succeeded {
                return Err(Error::Integrity(format!("refund reported for a {} payment intent", intent.status)));
            }
            if event.amount <= intent.amount_refunded.minor() {
                return Ok((None, Vec::new()));
            }
            let mut next = intent.clone();
            next.amount_refunded = Money::new(event.amount, intent.amount.currency());
            next.updated_at = self.clock.now();
            return Ok((Some(next), Vec::new()));
        }
        integrity::check_report(intent, &event.provider_ref, event.amount, &event.currency)?;
        match reconcile(intent.status, event.status) {
            Ok(status) if status == intent.status => Ok((None, Vec::new())),
            Ok(status) => {
                let mut next = intent.clone();
                next.status = status;
                next.updated_at = self.clock.now();
                let events = self.status_events(&next, intent.status, event.decline_code.as_deref());
                Ok((Some(next), events))
            }
            Err(_) if intent.status.is_terminal() && !event.status.is_terminal() => {
                tracing::info!(event_id = %event.id, intent = %intent.id, "stale webhook after a final status; recorded, not applied");
                Ok((None, Vec::new()))
            }
            Err(_) => Err(Error::Integrity(format!(
                "provider reports payment intent {} as {}, but it is {}",
                intent.id, event.status, intent.status
            ))),
        }
    }

    /// Asks the provider for the intent's current status and applies it, for
    /// when webhooks are late or lost.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the order has no intent; [`Error::Integrity`]
    /// when the report contradicts the intent; store and provider errors.
    pub async fn sync_with_provider(&self, order_id: OrderId) -> Result<PaymentIntent> {
        let intent = self.payments.get_by_order(order_id).await?.ok_or_else(|| Error::not_found("payment_intent"))?;
        let Some(provider_ref) = intent.provider_ref.clone() else {
            return Ok(intent);
        };
        let report = self.provider.retrieve(&provider_ref).await?;
        integrity::check_report(&intent, &report.provider_ref, report.amount, &report.currency)?;
        if report.status == intent.status {
            return Ok(intent);
        }
        let mut next = intent.clone();
        let events = self.apply_report(&mut next, &report)?;
        self.payments.update(&next, intent.version, &events).await
    }

    /// Refunds `amount` of the order's captured payment at the provider,
    /// then records it.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the order has no intent;
    /// [`Error::InvalidTransition`] unless the intent succeeded;
    /// [`Error::Validation`] / [`Error::Conflict`] for a bad amount or one
    /// exceeding what is left to refund (the provider is not called);
    /// [`Error::Integrity`] when the provider refunded something else.
    pub async fn refund(&self, order_id: OrderId, amount: Money) -> Result<PaymentIntent> {
        let intent = self.payments.get_by_order(order_id).await?.ok_or_else(|| Error::not_found("payment_intent"))?;
        let mut next = intent.clone();
        next.add_refund(amount)?;
        let provider_ref = intent
            .provider_ref
            .clone()
            .ok_or_else(|| Error::invalid("order_id", "the order was free; there is nothing to refund"))?;
        let key = format!("{}:refund:{}:{}", intent.id, intent.amount_refunded.minor(), amount.minor());
        let refund = self.provider.refund(&provider_ref, amount, &key).await?;
        if refund.provider_ref != provider_ref {
            return Err(Error::Integrity(format!("provider refunded {:?}, not {provider_ref:?}", refund.provider_ref)));
        }
        integrity::check_amount(&intent, refund.amount, &refund.currency, amount.minor())?;
        let target = next.amount_refunded;
        let mut current = intent;
        for _ in 0..MAX_RETRIES {
            next.updated_at = self.clock.now();
            match self.payments.update(&next, current.version, &[]).await {
                Err(Error::VersionMismatch { .. }) => {
                    current = self
                        .payments
                        .get_by_order(order_id)
                        .await?
                        .ok_or_else(|| Error::not_found("payment_intent"))?;
                    // The provider's refund webhook may have recorded it already.
                    if current.amount_refunded.minor() >= target.minor() {
                        return Ok(current);
                    }
                    next = current.clone();
                    next.add_refund(amount)?;
                }
                other => return other,
            }
        }
        Err(Error::conflict(ConflictReason::Contended, "the payment intent kept changing while recording a refund"))
    }

    /// Cancels the order's intent, if it has one that was not paid.
    /// Idempotent: an already canceled intent is returned as is.
    ///
    /// Only our record is canceled; a provider-side cancel is not part of
    /// the port yet, so a capture racing this call is caught when the
    /// provider's report meets the canceled intent (an integrity error).
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] when the intent succeeded or is processing.
    pub async fn cancel_for_order(&self, order_id: OrderId) -> Result<Option<PaymentIntent>> {
        let Some(intent) = self.payments.get_by_order(order_id).await? else {
            return Ok(None);
        };
        if intent.status == IntentStatus::Canceled {
            return Ok(Some(intent));
        }
        let mut next = intent.clone();
        next.status = transition(intent.status, IntentEvent::Cancel)?;
        next.updated_at = self.clock.now();
        self.payments.update(&next, intent.version, &[]).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Actor;
    use crate::auth::Role;
    use crate::catalog::MockProductRepository;
    use crate::clock::ManualClock;
    use crate::ids::UserId;
    use crate::licensing::MockLicenseRepository;
    use crate::money::Currency;
    use crate::orders::{
        MockIdempotencyStore, MockOrderRepository, Order, OrderConfig, OrderDeps, OrderService, OrderStatus,
    };
    use crate::payments::{MockPaymentProvider, MockPaymentRepository, webhook};
    use futures::executor::block_on;
    use mockall::predicate::{always, eq};

    const T: i64 = 1_700_000_000;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    fn order(buyer: UserId) -> Order {
        let now = ManualClock::at_epoch_secs(T).now();
        Order {
            id: OrderId::new(),
            buyer_id: buyer,
            lines: vec![],
            total: usd(1999),
            status: OrderStatus::PendingPayment,
            created_at: now,
            updated_at: now,
        }
    }

    fn intent(order: &Order, status: IntentStatus) -> PaymentIntent {
        PaymentIntent {
            id: PaymentIntentId::new(),
            order_id: order.id,
            amount: order.total,
            status,
            provider: "mock".into(),
            provider_ref: Some("pi_1".into()),
            attempts: vec![],
            amount_refunded: usd(0),
            version: 3,
            created_at: order.created_at,
            updated_at: order.created_at,
        }
    }

    fn report(status: IntentStatus, amount: i64, currency: &str) -> ProviderIntent {
        ProviderIntent { provider_ref: "pi_1".into(), status, amount, currency: currency.into(), decline_code: None }
    }

    struct Fixture {
        payments: MockPaymentRepository,
        orders: MockOrderRepository,
        provider: MockPaymentProvider,
    }

    impl Fixture {
        fn new(order: &Order, intent: &PaymentIntent) -> Self {
            let mut orders = MockOrderRepository::new();
            let o = order.clone();
            orders.expect_get().with(eq(order.id)).returning(move |_| Ok(Some(o.clone())));
            let mut payments = MockPaymentRepository::new();
            let i = intent.clone();
            payments.expect_get_by_order().with(eq(order.id)).returning(move |_| Ok(Some(i.clone())));
            let mut provider = MockPaymentProvider::new();
            provider.expect_name().return_const("mock".to_owned());
            Self { payments, orders, provider }
        }

        fn service(self) -> PaymentService {
            PaymentService::new(
                Arc::new(self.payments),
                Arc::new(self.provider),
                Arc::new(ManualClock::at_epoch_secs(T)),
            )
        }

        /// An order service paying through [`Self::service`]: paying
        /// starts there, with the order's checks.
        fn orders(self) -> OrderService {
            let orders = Arc::new(self.orders);
            let clock = Arc::new(ManualClock::at_epoch_secs(T));
            let payments =
                Arc::new(PaymentService::new(Arc::new(self.payments), Arc::new(self.provider), clock.clone()));
            OrderService::new(
                OrderDeps::separate(
                    orders,
                    Arc::new(MockProductRepository::new()),
                    Arc::new(MockLicenseRepository::new()),
                    payments,
                    Arc::new(MockIdempotencyStore::new()),
                    clock,
                ),
                OrderConfig::default(),
            )
        }
    }

    #[test]
    fn paying_confirms_once_with_the_attempt_key_and_records_success_in_one_update() {
        let buyer = Actor::new(UserId::new(), Role::Customer);
        let order = order(buyer.user_id);
        let intent = intent(&order, IntentStatus::RequiresPaymentMethod);
        let mut f = Fixture::new(&order, &intent);
        let key = format!("{}:confirm:1", intent.id);
        f.provider
            .expect_confirm()
            .with(eq("pi_1"), eq("pm_card_visa"), eq(key))
            .times(1)
            .returning(|_, _, _| Ok(report(IntentStatus::Succeeded, 1999, "USD")));
        let expected_version = intent.version;
        f.payments
            .expect_update()
            .withf(move |i, v, events| {
                i.status == IntentStatus::Succeeded
                    && *v == expected_version
                    && i.attempts.len() == 1
                    && events.len() == 1
                    && events[0].event_type == crate::events::EventType::PaymentSucceeded
            })
            .times(1)
            .returning(|i, v, _| Ok(PaymentIntent { version: v + 1, ..i.clone() }));
        let paid = block_on(f.orders().pay(&buyer, order.id, "pm_card_visa")).unwrap();
        assert_eq!(paid.status, IntentStatus::Succeeded);
    }

    #[test]
    fn a_succeeded_intent_is_never_confirmed_again() {
        let buyer = Actor::new(UserId::new(), Role::Customer);
        let order = order(buyer.user_id);
        let intent = intent(&order, IntentStatus::Succeeded);
        let mut f = Fixture::new(&order, &intent);
        f.provider.expect_confirm().times(0);
        f.payments.expect_update().times(0);
        let err = block_on(f.orders().pay(&buyer, order.id, "pm_card_visa")).unwrap_err();
        assert_eq!(err.code(), "invalid_transition");
    }

    #[test]
    fn an_integrity_mismatch_never_updates() {
        let buyer = Actor::new(UserId::new(), Role::Customer);
        let order = order(buyer.user_id);
        let intent = intent(&order, IntentStatus::RequiresPaymentMethod);
        for bad in [report(IntentStatus::Succeeded, 1, "USD"), report(IntentStatus::Succeeded, 1999, "EUR")] {
            let mut f = Fixture::new(&order, &intent);
            f.provider.expect_confirm().times(1).returning(move |_, _, _| Ok(bad.clone()));
            f.payments.expect_update().times(0);
            let err = block_on(f.orders().pay(&buyer, order.id, "pm_card_visa")).unwrap_err();
            assert_eq!(err.code(), "integrity");
        }
    }

    #[test]
    fn only_the_buyer_pays_and_only_a_pending_order() {
        let buyer = Actor::new(UserId::new(), Role::Customer);
        let mut order = order(buyer.user_id);
        let intent = intent(&order, IntentStatus::RequiresPaymentMethod);
        let mut f = Fixture::new(&order, &intent);
        f.provider.expect_confirm().times(0);
        let svc = f.orders();
        let stranger = Actor::new(UserId::new(), Role::Admin);
        assert_eq!(block_on(svc.pay(&stranger, order.id, "pm_card_visa")).unwrap_err().code(), "forbidden");
        assert_eq!(block_on(svc.pay(&buyer, order.id, "")).unwrap_err().code(), "validation");
        order.status = OrderStatus::Canceled;
        let f = Fixture::new(&order, &intent);
        let err = block_on(f.orders().pay(&buyer, order.id, "pm_card_visa")).unwrap_err();
        assert_eq!(err.code(), "invalid_transition");
    }

    #[test]
    fn a_webhook_with_another_amount_is_never_applied() {
        let order = order(UserId::new());
        let intent = intent(&order, IntentStatus::RequiresAction);
        let mut f = Fixture::new(&order, &intent);
        let event = WebhookEvent {
            id: "evt_1".into(),
            kind: WebhookKind::PaymentSucceeded,
            provider_ref: "pi_1".into(),
            amount: 1,
            currency: "USD".into(),
            status: IntentStatus::Succeeded,
            decline_code: None,
        };
        f.provider.expect_verify_and_parse_webhook().times(1).returning(move |_, _, _| Ok(event.clone()));
        let i = intent.clone();
        f.payments.expect_get_by_provider_ref().with(eq("mock"), eq("pi_1")).returning(move |_, _| Ok(Some(i.clone())));
        f.payments.expect_apply_webhook().times(0);
        let err = block_on(f.service().handle_webhook("mock", "t=1,v1=00", b"{}")).unwrap_err();
        assert_eq!(err.code(), "integrity");
    }

    #[test]
    fn a_bad_signature_reads_nothing() {
        let order = order(UserId::new());
        let intent = intent(&order, IntentStatus::RequiresAction);
        let mut f = Fixture::new(&order, &intent);
        f.provider.expect_verify_and_parse_webhook().returning(|h, b, now| {
            webhook::verify(h, b, &[b"secret".to_vec()], now, webhook::DEFAULT_TOLERANCE).map(|()| unreachable!())
        });
        f.payments.expect_get_by_provider_ref().times(0);
        f.payments.expect_apply_webhook().times(0);
        let svc = f.service();
        let err = block_on(svc.handle_webhook("mock", "t=1,v1=00", b"{}")).unwrap_err();
        assert_eq!(err.code(), "unauthenticated");
        assert_eq!(block_on(svc.handle_webhook("other", "", b"")).unwrap_err().code(), "not_found");
    }

    #[test]
    fn refunds_use_a_key_derived_from_the_intent_and_check_the_report() {
        let order = order(UserId::new());
        let intent = intent(&order, IntentStatus::Succeeded);
        let mut f = Fixture::new(&order, &intent);
        let key = format!("{}:refund:0:1999", intent.id);
        f.provider.expect_refund().with(eq("pi_1"), eq(usd(1999)), eq(key)).times(1).returning(|r, m, _| {
            Ok(super::super::ProviderRefund {
                refund_ref: "re_1".into(),
                provider_ref: r.into(),
                amount: m.minor(),
                currency: "USD".into(),
            })
        });
        f.payments
            .expect_update()
            .with(always(), eq(3), always())
            .times(1)
            .returning(|i, v, _| Ok(PaymentIntent { version: v + 1, ..i.clone() }));
        let svc = f.service();
        let refunded = block_on(svc.refund(order.id, usd(1999))).unwrap();
        assert_eq!(refunded.amount_refunded, usd(1999));
        // More than was captured: refused before the provider is called.
        let mut f = Fixture::new(&order, &refunded);
        f.provider.expect_refund().times(0);
        assert_eq!(block_on(f.service().refund(order.id, usd(1))).unwrap_err().code(), "conflict");
    }
}
