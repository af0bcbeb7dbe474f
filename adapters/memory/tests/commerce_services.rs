//! Behaviour of `OrderService` and `PaymentService` over the in-memory
//! adapters and the sandbox provider: placing, idempotency, paying,
//! webhooks, fulfilment, refunds and cancellation, including races.

use bazaar_core::ConflictReason;
use std::sync::Arc;

use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::{NewProduct, PageRequest, Pricing, Product, ProductKind, ProductRepository, ProductStatus};
use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::error::Error;
use bazaar_core::events::{Event, EventType, PaymentFailed, PaymentSucceeded};
use bazaar_core::ids::{LicenseId, OrderId, ProductId, UserId};
use bazaar_core::licensing::{
    License, LicenseAction, LicenseKind, LicenseRepository, LicenseSigner, Limits, NewLicense, Permissions,
};
use bazaar_core::money::{Currency, FeeRate, Money};
use bazaar_core::orders::{Order, OrderConfig, OrderDeps, OrderService, OrderStatus, PlaceOrder};
use bazaar_core::payments::{
    IntentStatus, PM_CARD_3DS, PM_CARD_DECLINED, PM_CARD_VISA, PaymentRepository, PaymentService, SANDBOX,
    SandboxProvider, WebhookEvent, WebhookKind, WebhookReceipt,
};
use bazaar_memory::{MemoryIdempotency, MemoryLicenses, MemoryOrders, MemoryOutbox, MemoryPayments, MemoryProducts};

struct World {
    clock: ManualClock,
    outbox: MemoryOutbox,
    products: Arc<MemoryProducts>,
    licenses: Arc<MemoryLicenses>,
    intents: Arc<MemoryPayments>,
    sandbox: Arc<SandboxProvider>,
    payments: Arc<PaymentService>,
    orders: OrderService,
}

fn world_with(config: OrderConfig) -> World {
    let clock = ManualClock::at_epoch_secs(1_700_000_000);
    let outbox = MemoryOutbox::new();
    let products = Arc::new(MemoryProducts::new(outbox.clone()));
    let licenses = Arc::new(MemoryLicenses::new(outbox.clone()));
    let order_repo = Arc::new(MemoryOrders::new(outbox.clone()));
    let intents = Arc::new(MemoryPayments::new(outbox.clone()));
    let sandbox = Arc::new(SandboxProvider::new(Arc::new(clock.clone()), b"whsec_test".to_vec()));
    let payments = Arc::new(PaymentService::new(intents.clone(), sandbox.clone(), Arc::new(clock.clone())));
    let orders = OrderService::new(
        OrderDeps::separate(
            order_repo,
            products.clone(),
            licenses.clone(),
            payments.clone(),
            Arc::new(MemoryIdempotency::new()),
            Arc::new(clock.clone()),
        ),
        config,
    );
    World { clock, outbox, products, licenses, intents, sandbox, payments, orders }
}

fn world() -> World {
    world_with(OrderConfig::default())
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

fn buyer() -> Actor {
    Actor::new(UserId::new(), Role::Customer)
}

fn admin() -> Actor {
    Actor::new(UserId::new(), Role::Admin)
}

impl World {
    async fn product_by(&self, vendor: UserId, pricing: Pricing, status: ProductStatus) -> Product {
        let input = NewProduct {
            title: "Inbox triage agent".into(),
            description: "Sorts your e-mail.".into(),
            short_description: "Sorts e-mail".into(),
            kind: ProductKind::AiAgent,
            categories: vec!["email".into()],
            tags: vec![],
            pricing,
            media: vec![],
        };
        let mut p = Product::create(ProductId::new(), vendor, input, self.clock.now()).expect("valid product");
        p.status = status;
        self.products.insert(&p, &[]).await.unwrap();
        p
    }

    async fn product(&self, pricing: Pricing) -> Product {
        self.product_by(UserId::new(), pricing, ProductStatus::Approved).await
    }

    async fn paid_product(&self, minor: i64) -> Product {
        self.product(Pricing::OneTime { price: usd(minor) }).await
    }

    fn events_of(&self, t: EventType) -> Vec<Event> {
        self.outbox.events().into_iter().filter(|e| e.event_type == t).collect()
    }

    /// What the `payment.succeeded` handler does: mark paid, then fulfil
    /// with (made-up) license ids.
    async fn settle(&self, order: &Order) -> Order {
        let cause = self
            .events_of(EventType::PaymentSucceeded)
            .into_iter()
            .find(|e| e.decode::<PaymentSucceeded>().unwrap().order_id == order.id)
            .expect("a payment.succeeded for the order");
        self.orders.mark_paid(order.id, &cause).await.unwrap();
        let ids = order.lines.iter().map(|_| LicenseId::new()).collect();
        self.orders.mark_fulfilled(order.id, ids, &cause).await.unwrap()
    }
}

fn fields(err: Error) -> Vec<String> {
    match err {
        Error::Validation(f) => f.into_iter().map(|f| f.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn placing_prices_every_line_and_splits_the_fee_exactly() {
    let w = world();
    let (a, b) = (w.paid_product(1999).await, w.paid_product(1001).await);
    let me = buyer();
    let order = w.orders.place(&me, PlaceOrder::new([a.id, b.id]), None).await.unwrap();
    assert_eq!(order.status, OrderStatus::PendingPayment);
    assert_eq!(order.total, usd(3000));
    let splits: Vec<_> =
        order.lines.iter().map(|l| (l.unit_price.minor(), l.platform_fee.minor(), l.vendor_net.minor())).collect();
    assert_eq!(splits, [(1999, 399, 1600), (1001, 200, 801)]);
    assert!(order.lines.iter().all(|l| l.platform_fee.checked_add(&l.vendor_net).unwrap() == l.unit_price));
    assert_eq!(order.lines[0].vendor_id, a.vendor_id);
    assert_eq!(order.lines[0].pricing, a.pricing);
    assert_eq!(w.events_of(EventType::OrderPlaced).len(), 1);
    let intent = w.orders.payment(&me, order.id).await.unwrap();
    assert_eq!((intent.status, intent.amount), (IntentStatus::RequiresPaymentMethod, usd(3000)));
    assert_eq!(w.orders.get(&me, order.id).await.unwrap(), order);
    assert_eq!(w.orders.get(&buyer(), order.id).await.unwrap_err().code(), "forbidden");
    assert_eq!(w.orders.get(&admin(), order.id).await.unwrap(), order);
}

#[tokio::test]
async fn the_fee_rate_is_configurable() {
    let w = world_with(OrderConfig { fee_rate: FeeRate::from_bps(1_500).unwrap(), ..OrderConfig::default() });
    let p = w.paid_product(999).await;
    let order = w.orders.place(&buyer(), PlaceOrder::new([p.id]), None).await.unwrap();
    assert_eq!((order.lines[0].platform_fee.minor(), order.lines[0].vendor_net.minor()), (149, 850));
}

#[tokio::test]
async fn bad_items_are_named_by_index() {
    let w = world();
    let me = buyer();
    let good = w.paid_product(500).await;
    let draft = w.product_by(UserId::new(), Pricing::OneTime { price: usd(500) }, ProductStatus::Draft).await;
    let mine = w.product_by(me.user_id, Pricing::OneTime { price: usd(500) }, ProductStatus::Approved).await;
    let req = PlaceOrder::new([good.id, ProductId::new(), draft.id, mine.id]);
    let err = w.orders.place(&me, req, None).await.unwrap_err();
    assert_eq!(fields(err), ["items[1].product_id", "items[2].product_id", "items[3].product_id"]);
    let dup = w.orders.place(&me, PlaceOrder::new([good.id, good.id]), None).await.unwrap_err();
    assert_eq!(fields(dup), ["items[1].product_id"]);
    assert_eq!(fields(w.orders.place(&me, PlaceOrder::new([]), None).await.unwrap_err()), ["items"]);
    let eur = w.product(Pricing::OneTime { price: Money::new(500, Currency::EUR) }).await;
    let mixed = w.orders.place(&me, PlaceOrder::new([good.id, eur.id]), None).await.unwrap_err();
    assert_eq!(fields(mixed), ["items[1].product_id"]);
    assert!(w.outbox.events().is_empty(), "nothing was placed");
}

#[tokio::test]
async fn an_active_license_blocks_buying_again_but_a_revoked_one_does_not() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(500).await;
    let signer = LicenseSigner::from_seed(&[7; 32]);
    let new = NewLicense {
        buyer_id: me.user_id,
        product_id: p.id,
        order_id: OrderId::new(),
        kind: LicenseKind::Perpetual,
        permissions: Permissions::default(),
        limits: Limits::default(),
    };
    let license = License::issue(new, &signer, w.clock.now());
    w.licenses.insert(&license, &[]).await.unwrap();
    let err = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict { reason: ConflictReason::AlreadyLicensed, .. }), "{err:?}");
    let revoked = license.apply(&LicenseAction::Revoke { reason: "refund".into() }, w.clock.now()).unwrap();
    w.licenses.update_status(&revoked, license.version, &[]).await.unwrap();
    w.orders.place(&me, PlaceOrder::new([p.id]), None).await.expect("a revoked license does not block");
}

#[tokio::test]
async fn a_free_order_is_paid_at_once_and_fulfilled_by_the_payment_handler() {
    let w = world_with(OrderConfig { default_currency: Currency::EUR, ..OrderConfig::default() });
    let p = w.product(Pricing::Free).await;
    let me = buyer();
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.total, Money::zero(Currency::EUR));
    let types: Vec<_> = w.outbox.events().iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::OrderPlaced, EventType::PaymentSucceeded]);
    let paid = w.events_of(EventType::PaymentSucceeded)[0].decode::<PaymentSucceeded>().unwrap();
    assert_eq!(paid.amount, Money::zero(Currency::EUR));
    let intent = w.intents.get(paid.payment_intent_id).await.unwrap().expect("a real, zero intent");
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(w.settle(&order).await.status, OrderStatus::Fulfilled);
    // Refunding a free order touches no provider.
    assert_eq!(w.orders.refund(&admin(), order.id).await.unwrap().status, OrderStatus::Refunded);
    assert_eq!(w.sandbox.captures(), 0);
}

#[tokio::test]
async fn a_free_line_in_a_paid_order_costs_zero_in_the_orders_currency() {
    let w = world();
    let (free, paid) = (w.product(Pricing::Free).await, w.paid_product(700).await);
    let order = w.orders.place(&buyer(), PlaceOrder::new([free.id, paid.id]), None).await.unwrap();
    assert_eq!(order.lines[0].unit_price, usd(0));
    assert_eq!(order.total, usd(700));
    assert_eq!(order.status, OrderStatus::PendingPayment);
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_mismatches_and_free_failed_requests() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(500).await;
    let first = w.orders.place(&me, PlaceOrder::new([p.id]), Some("key-1")).await.unwrap();
    let again = w.orders.place(&me, PlaceOrder::new([p.id]), Some("key-1")).await.unwrap();
    assert_eq!(again, first, "same key, same body: the first response");
    let other = w.paid_product(600).await;
    let err = w.orders.place(&me, PlaceOrder::new([other.id]), Some("key-1")).await.unwrap_err();
    assert!(matches!(err, Error::IdempotencyMismatch), "{err:?}");
    // The key is per buyer.
    let someone = buyer();
    let theirs = w.orders.place(&someone, PlaceOrder::new([p.id]), Some("key-1")).await.unwrap();
    assert_ne!(theirs.id, first.id);
    let (mine, total) = {
        let page = w.orders.list_mine(&me, PageRequest::default()).await.unwrap();
        (page.items, page.total)
    };
    assert_eq!((mine.len(), total), (1, 1), "one order despite two requests");

    // A failed request frees its key; the same request can then succeed.
    let pending = w.product_by(UserId::new(), Pricing::OneTime { price: usd(100) }, ProductStatus::Pending).await;
    let err = w.orders.place(&me, PlaceOrder::new([pending.id]), Some("key-2")).await.unwrap_err();
    assert_eq!(err.code(), "validation");
    let mut approved = pending.clone();
    approved.status = ProductStatus::Approved;
    approved.version += 1;
    w.products.update(&approved, pending.version, &[]).await.unwrap();
    w.orders.place(&me, PlaceOrder::new([pending.id]), Some("key-2")).await.expect("retry after a failure");

    let bad = w.orders.place(&me, PlaceOrder::new([p.id]), Some("has space")).await.unwrap_err();
    assert_eq!(fields(bad), ["idempotency_key"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_place_one_order() {
    let w = Arc::new(world());
    let me = buyer();
    let p = w.paid_product(500).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move { w.orders.place(&me, PlaceOrder::new([p.id]), Some("race")).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(order) => ids.push(order.id),
            Err(Error::InFlight) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every success is the same order");
    assert_eq!(w.events_of(EventType::OrderPlaced).len(), 1);
}

#[tokio::test]
async fn pay_decline_then_succeed_then_fulfil_once() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(1999).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();

    let declined = w.orders.pay(&me, order.id, PM_CARD_DECLINED).await.unwrap();
    assert_eq!(declined.status, IntentStatus::RequiresPaymentMethod);
    let failed = w.events_of(EventType::PaymentFailed);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].decode::<PaymentFailed>().unwrap().reason, "card_declined");
    assert_eq!(w.orders.get(&me, order.id).await.unwrap().status, OrderStatus::PendingPayment);

    let paid = w.orders.pay(&me, order.id, PM_CARD_VISA).await.unwrap();
    assert_eq!(paid.status, IntentStatus::Succeeded);
    assert_eq!(paid.attempts.len(), 2);
    assert_eq!(w.events_of(EventType::PaymentSucceeded).len(), 1);

    // Paying again: refused, and the provider is not charged twice.
    let again = w.orders.pay(&me, order.id, PM_CARD_VISA).await.unwrap_err();
    assert_eq!(again.code(), "invalid_transition");
    assert_eq!(w.sandbox.captures(), 1);

    let done = w.settle(&order).await;
    assert_eq!(done.status, OrderStatus::Fulfilled);
    // Redelivered events change nothing and emit nothing more.
    let cause = w.events_of(EventType::PaymentSucceeded).remove(0);
    assert_eq!(w.orders.mark_paid(order.id, &cause).await.unwrap(), done);
    assert_eq!(w.orders.mark_fulfilled(order.id, vec![LicenseId::new()], &cause).await.unwrap(), done);
    let fulfilled = w.events_of(EventType::OrderFulfilled);
    assert_eq!(fulfilled.len(), 1);
    assert_eq!(fulfilled[0].causation_id, Some(cause.id));
}

#[tokio::test]
async fn mark_paid_checks_its_cause() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(1999).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    let intent = w.payments.find_for_order(order.id).await.unwrap().unwrap();
    let wrong_amount = Event::new(
        &PaymentSucceeded { order_id: order.id, payment_intent_id: intent.id, amount: usd(1) },
        w.clock.now(),
    );
    assert_eq!(w.orders.mark_paid(order.id, &wrong_amount).await.unwrap_err().code(), "integrity");
    let other_order = Event::new(
        &PaymentSucceeded { order_id: OrderId::new(), payment_intent_id: intent.id, amount: usd(1999) },
        w.clock.now(),
    );
    assert_eq!(w.orders.mark_paid(order.id, &other_order).await.unwrap_err().code(), "validation");
    let fulfil_unpaid = w.orders.mark_fulfilled(order.id, vec![LicenseId::new()], &other_order).await.unwrap_err();
    assert_eq!(fulfil_unpaid.code(), "invalid_transition");
    assert_eq!(w.orders.get(&me, order.id).await.unwrap().status, OrderStatus::PendingPayment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fulfilment_emits_one_event() {
    let w = Arc::new(world());
    let p = w.product(Pricing::Free).await;
    let order = w.orders.place(&buyer(), PlaceOrder::new([p.id]), None).await.unwrap();
    let cause = w.events_of(EventType::PaymentSucceeded).remove(0);
    let license = LicenseId::new();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (w, cause) = (w.clone(), cause.clone());
            tokio::spawn(async move { w.orders.mark_fulfilled(order.id, vec![license], &cause).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status, OrderStatus::Fulfilled);
    }
    assert_eq!(w.events_of(EventType::OrderFulfilled).len(), 1, "only the winner emits order.fulfilled");
}

#[tokio::test]
async fn three_d_secure_completes_through_the_webhook_and_replays_change_nothing() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(2500).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    let pending = w.orders.pay(&me, order.id, PM_CARD_3DS).await.unwrap();
    assert_eq!(pending.status, IntentStatus::RequiresAction);
    w.sandbox.complete_action(pending.provider_ref.as_deref().unwrap(), true).unwrap();
    let hooks = w.sandbox.take_webhooks();
    assert_eq!(hooks.len(), 2, "requires_action, then succeeded");
    for hook in &hooks {
        let receipt = w.payments.handle_webhook(SANDBOX, &hook.signature, &hook.body).await.unwrap();
        assert_eq!(receipt, WebhookReceipt::Applied);
    }
    let intent = w.payments.find_for_order(order.id).await.unwrap().unwrap();
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(w.events_of(EventType::PaymentSucceeded).len(), 1);
    let before = (w.outbox.events().len(), intent.version);
    // Replays, even out of order, change nothing.
    for hook in hooks.iter().rev() {
        let receipt = w.payments.handle_webhook(SANDBOX, &hook.signature, &hook.body).await.unwrap();
        assert_eq!(receipt, WebhookReceipt::Duplicate);
    }
    let after = w.payments.find_for_order(order.id).await.unwrap().unwrap();
    assert_eq!((w.outbox.events().len(), after.version), before);
    assert_eq!(w.settle(&order).await.status, OrderStatus::Fulfilled);
}

#[tokio::test]
async fn forged_or_inconsistent_webhooks_change_nothing() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(2500).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    let intent = w.orders.pay(&me, order.id, PM_CARD_3DS).await.unwrap();
    w.sandbox.take_webhooks();
    let lie = WebhookEvent {
        id: "evt_forged".into(),
        kind: WebhookKind::PaymentSucceeded,
        provider_ref: intent.provider_ref.clone().unwrap(),
        amount: 1,
        currency: "USD".into(),
        status: IntentStatus::Succeeded,
        decline_code: None,
    };
    let signed = w.sandbox.sign_event(&lie, w.clock.now());
    let before = w.outbox.events().len();
    let err = w.payments.handle_webhook(SANDBOX, &signed.signature, &signed.body).await.unwrap_err();
    assert_eq!(err.code(), "integrity");
    let wrong_currency = WebhookEvent { amount: 2500, currency: "EUR".into(), ..lie.clone() };
    let signed2 = w.sandbox.sign_event(&wrong_currency, w.clock.now());
    assert_eq!(
        w.payments.handle_webhook(SANDBOX, &signed2.signature, &signed2.body).await.unwrap_err().code(),
        "integrity"
    );
    let honest = WebhookEvent { amount: 2500, ..lie };
    let mut tampered = w.sandbox.sign_event(&honest, w.clock.now());
    tampered.body.push(b' ');
    let err = w.payments.handle_webhook(SANDBOX, &tampered.signature, &tampered.body).await.unwrap_err();
    assert_eq!(err.code(), "unauthenticated");
    assert_eq!(w.payments.find_for_order(order.id).await.unwrap().unwrap(), intent);
    assert_eq!(w.outbox.events().len(), before);
    // The honest one, delivered late but within tolerance, applies.
    let signed = w.sandbox.sign_event(&honest, w.clock.now());
    w.clock.advance(chrono::Duration::seconds(299));
    assert_eq!(
        w.payments.handle_webhook(SANDBOX, &signed.signature, &signed.body).await.unwrap(),
        WebhookReceipt::Applied
    );
}

#[tokio::test]
async fn refunds_reach_the_provider_once_and_only_for_paid_orders() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(1999).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    assert_eq!(w.orders.refund(&admin(), order.id).await.unwrap_err().code(), "invalid_transition");
    w.orders.pay(&me, order.id, PM_CARD_VISA).await.unwrap();
    w.settle(&order).await;
    assert_eq!(w.orders.refund(&me, order.id).await.unwrap_err().code(), "forbidden");
    let refunded = w.orders.refund(&admin(), order.id).await.unwrap();
    assert_eq!(refunded.status, OrderStatus::Refunded);
    let intent = w.payments.find_for_order(order.id).await.unwrap().unwrap();
    assert_eq!(intent.amount_refunded, usd(1999));
    assert_eq!(w.events_of(EventType::OrderRefunded).len(), 1);
    assert_eq!(w.orders.refund(&admin(), order.id).await.unwrap_err().code(), "invalid_transition");
    // The provider's refund webhook agrees with what we recorded: no change.
    let hooks = w.sandbox.take_webhooks();
    let refund_hook = hooks.last().unwrap();
    assert_eq!(
        w.payments.handle_webhook(SANDBOX, &refund_hook.signature, &refund_hook.body).await.unwrap(),
        WebhookReceipt::Applied
    );
    assert_eq!(w.payments.find_for_order(order.id).await.unwrap().unwrap(), intent);
    // Nothing is left to refund.
    assert_eq!(w.payments.refund(order.id, usd(1)).await.unwrap_err().code(), "conflict");
}

#[tokio::test]
async fn a_paid_but_unfulfilled_order_can_be_refunded() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(800).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    w.orders.pay(&me, order.id, PM_CARD_VISA).await.unwrap();
    let cause = w.events_of(EventType::PaymentSucceeded).remove(0);
    w.orders.mark_paid(order.id, &cause).await.unwrap();
    assert_eq!(w.orders.refund(&admin(), order.id).await.unwrap().status, OrderStatus::Refunded);
    // A late fulfilment leaves the refunded order alone and emits nothing.
    let late = w.orders.mark_fulfilled(order.id, vec![LicenseId::new()], &cause).await.unwrap();
    assert_eq!(late.status, OrderStatus::Refunded);
    assert!(w.events_of(EventType::OrderFulfilled).is_empty());
}

#[tokio::test]
async fn the_buyer_cancels_a_pending_order_and_it_can_no_longer_be_paid() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(800).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    assert_eq!(w.orders.cancel(&buyer(), order.id).await.unwrap_err().code(), "forbidden");
    let canceled = w.orders.cancel(&me, order.id).await.unwrap();
    assert_eq!(canceled.status, OrderStatus::Canceled);
    assert_eq!(w.payments.find_for_order(order.id).await.unwrap().unwrap().status, IntentStatus::Canceled);
    assert_eq!(w.orders.pay(&me, order.id, PM_CARD_VISA).await.unwrap_err().code(), "invalid_transition");
    assert_eq!(w.orders.cancel(&me, order.id).await.unwrap_err().code(), "invalid_transition");
    assert_eq!(w.sandbox.captures(), 0);

    let paid = w.orders.place(&me, PlaceOrder::new([w.paid_product(100).await.id]), None).await.unwrap();
    w.orders.pay(&me, paid.id, PM_CARD_VISA).await.unwrap();
    let cause = w.events_of(EventType::PaymentSucceeded).remove(0);
    w.orders.mark_paid(paid.id, &cause).await.unwrap();
    assert_eq!(w.orders.cancel(&me, paid.id).await.unwrap_err().code(), "invalid_transition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payments_charge_once() {
    let w = Arc::new(world());
    let me = buyer();
    let p = w.paid_product(1500).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move { w.orders.pay(&me, order.id, PM_CARD_VISA).await })
        })
        .collect();
    let mut successes = 0;
    for t in tasks {
        // Racing confirmations share the attempt's key and see the one
        // success; a payer arriving after it is refused before the provider.
        match t.await.unwrap() {
            Ok(intent) => {
                assert_eq!(intent.status, IntentStatus::Succeeded);
                successes += 1;
            }
            Err(e) => assert_eq!(e.code(), "invalid_transition", "{e:?}"),
        }
    }
    assert!(successes >= 1);
    assert_eq!(w.sandbox.captures(), 1, "one capture, however many concurrent confirmations");
    assert_eq!(w.events_of(EventType::PaymentSucceeded).len(), 1);
}

#[tokio::test]
async fn list_mine_pages_newest_first() {
    let w = world();
    let me = buyer();
    let mut placed = Vec::new();
    for minor in [100, 200, 300] {
        let p = w.paid_product(minor).await;
        placed.push(w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap().id);
        w.clock.advance(chrono::Duration::seconds(1));
    }
    let page = w.orders.list_mine(&me, PageRequest::new(1, 2).unwrap()).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items.iter().map(|o| o.id).collect::<Vec<_>>(), [placed[2], placed[1]]);
    assert!(w.orders.list_mine(&buyer(), PageRequest::default()).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn a_failed_three_d_secure_reports_payment_failed_and_the_buyer_can_retry() {
    let w = world();
    let me = buyer();
    let p = w.paid_product(900).await;
    let order = w.orders.place(&me, PlaceOrder::new([p.id]), None).await.unwrap();
    let pending = w.orders.pay(&me, order.id, PM_CARD_3DS).await.unwrap();
    w.sandbox.complete_action(pending.provider_ref.as_deref().unwrap(), false).unwrap();
    for hook in w.sandbox.take_webhooks() {
        w.payments.handle_webhook(SANDBOX, &hook.signature, &hook.body).await.unwrap();
    }
    let failed = w.events_of(EventType::PaymentFailed);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].decode::<PaymentFailed>().unwrap().reason, "authentication_failed");
    let intent = w.payments.find_for_order(order.id).await.unwrap().unwrap();
    assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
    let paid = w.orders.pay(&me, order.id, PM_CARD_VISA).await.unwrap();
    assert_eq!((paid.status, paid.attempts.len()), (IntentStatus::Succeeded, 2));
}
