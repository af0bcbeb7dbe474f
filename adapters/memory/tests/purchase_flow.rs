//! End-to-end purchase flows on the in-memory marketplace: catalog →
//! order → payment → relay → dispatcher → licenses, refunds, notification
//! retries, dead letters and replay, and the concurrency guarantee of the
//! payment handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::{NewProduct, Pricing, ProductKind};
use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::events::{Backoff, DispatcherConfig, Event, EventHandler, EventType, OrderFulfilled, Outcome};
use bazaar_core::ids::{OrderId, ProductId, UserId};
use bazaar_core::licensing::{LicenseStatus, Purchase, ValidationCode};
use bazaar_core::marketplace::{Marketplace, MarketplaceBuilder};
use bazaar_core::money::{Currency, Money};
use bazaar_core::notifications::{NotificationStatus, Template};
use bazaar_core::orders::{Order, OrderStatus, PlaceOrder};
use bazaar_core::payments::PM_CARD_VISA;
use bazaar_core::workflows::FulfillmentHandler;
use bazaar_core::{Error, Result};
use bazaar_memory::{MemoryBackend, RecordingSender};

struct World {
    market: Arc<Marketplace>,
    backend: MemoryBackend,
    clock: ManualClock,
    sender: Arc<RecordingSender>,
    vendor: Actor,
    admin: Actor,
    buyer: Actor,
}

fn world_with(configure: impl FnOnce(MarketplaceBuilder) -> MarketplaceBuilder) -> World {
    let clock = ManualClock::at_epoch_secs(1_700_000_000);
    let sender = Arc::new(RecordingSender::new());
    let backend = MemoryBackend::new(Arc::new(clock.clone()));
    let builder = Marketplace::builder(backend.ports())
        .clock(Arc::new(clock.clone()))
        .notification_sender(sender.clone())
        .passwords(Arc::new(bazaar_auth::Argon2Passwords::fast_for_tests()))
        .tokens(Arc::new(bazaar_auth::JwtTokens::new([7; 32])));
    World {
        market: Arc::new(configure(builder).build().expect("every port is set")),
        backend,
        clock,
        sender,
        vendor: Actor::new(UserId::new(), Role::Vendor),
        admin: Actor::new(UserId::new(), Role::Admin),
        buyer: Actor::new(UserId::new(), Role::Customer),
    }
}

fn world() -> World {
    world_with(|b| b)
}

impl World {
    async fn approved_product(&self, title: &str, pricing: Pricing) -> ProductId {
        let m = &self.market;
        let input = NewProduct {
            title: title.into(),
            description: format!("{title}, ready to run."),
            short_description: "An agent.".into(),
            kind: ProductKind::AiAgent,
            categories: vec!["sales".into()],
            tags: vec!["crm".into()],
            pricing,
            media: vec![],
        };
        let product = m.catalog.create(&self.vendor, input).await.expect("create");
        m.catalog.submit(&self.vendor, product.id).await.expect("submit");
        m.catalog.approve(&self.admin, product.id).await.expect("approve");
        product.id
    }

    async fn paid_order(&self, lines: usize) -> Order {
        let mut products = Vec::new();
        for i in 0..lines {
            let price = Money::new(1_000 + i as i64 * 500, Currency::USD);
            products.push(self.approved_product(&format!("Lead agent {i}"), Pricing::OneTime { price }).await);
        }
        let order =
            self.market.orders.place(&self.buyer, PlaceOrder::new(products), Some("order-1")).await.expect("place");
        self.market.orders.pay(&self.buyer, order.id, PM_CARD_VISA).await.expect("pay");
        order
    }

    fn events(&self, event_type: EventType, order: OrderId) -> Vec<Event> {
        let order = order.to_string();
        self.backend
            .outbox
            .events()
            .into_iter()
            .filter(|e| {
                e.event_type == event_type && e.data.get("order_id").and_then(|v| v.as_str()) == Some(order.as_str())
            })
            .collect()
    }

    async fn order(&self, id: OrderId) -> Order {
        self.backend.orders.get(id).await.expect("get").expect("order exists")
    }
}

#[tokio::test]
async fn a_paid_order_is_fulfilled_once_with_one_license_per_line() {
    let w = world();
    let order = w.paid_order(2).await;
    assert_eq!(w.order(order.id).await.status, OrderStatus::PendingPayment, "handlers have not run yet");

    assert!(w.market.pump().await.unwrap() > 0);
    let fulfilled = w.order(order.id).await;
    assert_eq!(fulfilled.status, OrderStatus::Fulfilled);
    let licenses = w.backend.licenses.list_for_order(order.id).await.unwrap();
    assert_eq!(
        licenses.iter().map(|l| l.product_id).collect::<Vec<_>>(),
        order.lines.iter().map(|l| l.product_id).collect::<Vec<_>>(),
        "one license per line, in line order"
    );
    assert!(licenses.iter().all(|l| l.status(w.clock.now()) == LicenseStatus::Active && l.buyer_id == w.buyer.user_id));
    assert_eq!(w.events(EventType::LicenseIssued, order.id).len(), 2, "license.issued once per license");
    let done = w.events(EventType::OrderFulfilled, order.id);
    assert_eq!(done.len(), 1, "order.fulfilled exactly once");
    let payload: OrderFulfilled = done[0].decode().unwrap();
    assert_eq!(payload.license_ids, licenses.iter().map(|l| l.id).collect::<Vec<_>>());
    assert!(done[0].causation_id.is_some(), "order.fulfilled is caused by the payment event");

    // A duplicate delivery of payment.succeeded (the broker redelivers) changes nothing.
    let payment = w.events(EventType::PaymentSucceeded, order.id);
    assert_eq!(payment.len(), 1);
    w.backend.publisher.publish(&payment).await.unwrap();
    assert_eq!(w.market.pump().await.unwrap(), 1);
    assert_eq!(w.backend.licenses.list_for_order(order.id).await.unwrap().len(), 2);
    assert_eq!(w.events(EventType::OrderFulfilled, order.id).len(), 1);
    assert_eq!(w.backend.outbox.unpublished(), 0, "the relay published everything");

    // The buyer was told about the order and each license, on in-app and e-mail.
    let mine = w.market.notifications.list_for_order(&w.buyer, order.id).await.unwrap();
    let count = |t: Template| mine.iter().filter(|n| n.template == t).count();
    assert_eq!((count(Template::OrderPlaced), count(Template::LicenseIssued)), (2, 4));
    assert!(mine.iter().all(|n| n.status == NotificationStatus::Sent && n.attempts == 1));
    let vendor_sent = w.sender.sent().into_iter().filter(|n| n.user_id == w.vendor.user_id).count();
    assert_eq!(vendor_sent, 4, "the vendor heard about each approval on two channels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_payment_handler_racing_ten_times_issues_once() {
    for round in 0..5 {
        let w = world();
        let order = w.paid_order(3).await;
        let payment = w.events(EventType::PaymentSucceeded, order.id).pop().expect("payment.succeeded committed");
        let barrier = Arc::new(tokio::sync::Barrier::new(10));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let handler = Arc::new(FulfillmentHandler::new(w.market.orders.clone(), w.market.licenses.clone()));
                let payment = payment.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    handler.handle(&payment).await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task ran").expect("every concurrent delivery succeeds");
        }
        let licenses = w.backend.licenses.list_for_order(order.id).await.unwrap();
        assert_eq!(licenses.len(), 3, "round {round}: exactly one license per line");
        let mut products: Vec<_> = licenses.iter().map(|l| l.product_id).collect();
        products.dedup();
        assert_eq!(products.len(), 3, "round {round}: no line licensed twice");
        assert_eq!(
            w.events(EventType::LicenseIssued, order.id).len(),
            3,
            "round {round}: license.issued once per license"
        );
        assert_eq!(
            w.events(EventType::OrderFulfilled, order.id).len(),
            1,
            "round {round}: exactly one order.fulfilled"
        );
        assert_eq!(w.order(order.id).await.status, OrderStatus::Fulfilled);
    }
}

#[tokio::test]
async fn a_refund_revokes_the_orders_licenses() {
    let w = world();
    let order = w.paid_order(2).await;
    w.market.pump().await.unwrap();
    let keys: Vec<_> = w.backend.licenses.list_for_order(order.id).await.unwrap().into_iter().map(|l| l.key).collect();

    w.market.orders.refund(&w.admin, order.id).await.expect("refund");
    w.market.pump().await.unwrap();

    assert_eq!(w.order(order.id).await.status, OrderStatus::Refunded);
    let licenses = w.backend.licenses.list_for_order(order.id).await.unwrap();
    assert!(licenses.iter().all(|l| l.status(w.clock.now()) == LicenseStatus::Revoked), "every license revoked");
    assert_eq!(w.events(EventType::LicenseRevoked, order.id).len(), 2, "license.revoked once per license");
    for key in keys {
        assert_eq!(w.market.licenses.validate(&key, None).await.unwrap().code, ValidationCode::Revoked);
    }
    let refunded = w.market.notifications.list_for_order(&w.buyer, order.id).await.unwrap();
    assert_eq!(refunded.iter().filter(|n| n.template == Template::OrderRefunded).count(), 2);
}

#[tokio::test]
async fn a_payment_event_arriving_after_a_refund_issues_nothing() {
    let w = world();
    let order = w.paid_order(1).await;
    let payment = w.events(EventType::PaymentSucceeded, order.id).pop().expect("payment.succeeded committed");
    // The order got paid and refunded before the worker saw the payment event.
    w.market.orders.mark_paid(order.id, &payment).await.expect("mark paid");
    w.market.orders.refund(&w.admin, order.id).await.expect("refund");

    w.market.pump().await.unwrap();
    assert_eq!(w.order(order.id).await.status, OrderStatus::Refunded);
    assert!(w.backend.licenses.list_for_order(order.id).await.unwrap().is_empty(), "nothing licensed after a refund");
    assert!(w.events(EventType::OrderFulfilled, order.id).is_empty());
    assert_eq!(w.market.dispatcher.dead_letters().count().await.unwrap(), 0, "not an error either");
}

#[tokio::test]
async fn licenses_issued_from_a_stale_paid_read_are_revoked_when_the_refund_won() {
    let w = world();
    let order = w.paid_order(2).await;
    let payment = w.events(EventType::PaymentSucceeded, order.id).pop().expect("payment.succeeded committed");
    // A fulfillment run reads the order as paid ...
    let stale = w.market.orders.mark_paid(order.id, &payment).await.expect("mark paid");
    // ... the refund and its revocation run before it issues anything ...
    w.market.orders.refund(&w.admin, order.id).await.expect("refund");
    w.market.pump().await.unwrap();
    // ... and then it issues licenses from its stale read.
    let issued = w.market.licenses.issue_for_order(&Purchase::from(&stale), &payment).await.expect("issue");
    assert_eq!(issued.len(), 2);
    assert!(issued.iter().all(|l| l.status(w.clock.now()) == LicenseStatus::Active));

    // Its `mark_fulfilled` fails and the event is redelivered: the handler
    // must revoke what it issued instead of leaving paid-back licenses live.
    let handler = FulfillmentHandler::new(w.market.orders.clone(), w.market.licenses.clone());
    handler.handle(&payment).await.expect("redelivery converges");
    let licenses = w.backend.licenses.list_for_order(order.id).await.unwrap();
    assert_eq!(licenses.len(), 2);
    assert!(licenses.iter().all(|l| l.status(w.clock.now()) == LicenseStatus::Revoked), "nothing left active");
    assert_eq!(w.order(order.id).await.status, OrderStatus::Refunded);
    assert!(w.events(EventType::OrderFulfilled, order.id).is_empty());
}

#[tokio::test]
async fn a_free_order_is_fulfilled_by_the_same_handler() {
    let w = world();
    let product = w.approved_product("Free agent", Pricing::Free).await;
    let order = w.market.orders.place(&w.buyer, PlaceOrder::new([product]), None).await.expect("place");
    w.market.pump().await.unwrap();
    assert_eq!(w.order(order.id).await.status, OrderStatus::Fulfilled);
    assert_eq!(w.backend.licenses.list_for_order(order.id).await.unwrap().len(), 1);
    assert_eq!(w.events(EventType::OrderFulfilled, order.id).len(), 1);
}

#[tokio::test]
async fn a_failed_notification_is_retried_with_backoff_and_sent_once() {
    let w = world_with(|b| {
        b.dispatcher(DispatcherConfig {
            max_attempts: 3,
            backoff: Backoff { base: Duration::from_secs(10), factor: 2, max: Duration::from_secs(60) },
            wait: Duration::ZERO,
        })
    });
    w.sender.fail_next(1);
    w.approved_product("Agent", Pricing::Free).await;
    w.market.pump().await.unwrap();
    let stored = w.market.notifications.list_mine(&w.vendor, Default::default()).await.unwrap();
    assert_eq!(stored.items.len(), 2);
    assert_eq!(stored.items.iter().filter(|n| n.status == NotificationStatus::Failed).count(), 1, "one channel failed");

    w.clock.advance(chrono::Duration::seconds(9));
    assert_eq!(w.market.pump().await.unwrap(), 0, "not before the backoff delay");
    w.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(w.market.pump().await.unwrap(), 1, "redelivered after the delay");
    let stored = w.market.notifications.list_mine(&w.vendor, Default::default()).await.unwrap();
    assert!(stored.items.iter().all(|n| n.status == NotificationStatus::Sent), "sent on retry");
    let attempts: Vec<_> = stored.items.iter().map(|n| n.attempts).collect();
    assert!(attempts.contains(&1) && attempts.contains(&2), "the failed channel counts two attempts: {attempts:?}");
    assert_eq!(w.sender.sent().len(), 2, "each channel delivered once");
}

/// Fails while `failing` is set; counts its successful runs.
#[derive(Debug, Default)]
struct Poison {
    failing: AtomicBool,
    runs: AtomicUsize,
}

#[async_trait]
impl EventHandler for Poison {
    fn name(&self) -> &'static str {
        "poison"
    }

    fn handles(&self, event_type: EventType) -> bool {
        event_type == EventType::ProductApproved
    }

    async fn handle(&self, _event: &Event) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::unavailable("search index", std::io::Error::other("index offline")));
        }
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_poisoned_handler_is_dead_lettered_and_replay_completes_it_once() {
    let poison = Arc::new(Poison { failing: AtomicBool::new(true), runs: AtomicUsize::new(0) });
    let w = world_with(|b| {
        b.handler(poison.clone()).dispatcher(DispatcherConfig {
            max_attempts: 3,
            backoff: Backoff { base: Duration::from_secs(1), factor: 2, max: Duration::from_secs(60) },
            wait: Duration::ZERO,
        })
    });
    w.approved_product("Agent", Pricing::Free).await;
    w.market.pump().await.unwrap();
    let dlq = w.market.dispatcher.dead_letters();
    assert_eq!(dlq.count().await.unwrap(), 0, "first failure is retried, not parked");

    w.clock.advance(chrono::Duration::seconds(1));
    w.market.pump().await.unwrap();
    w.clock.advance(chrono::Duration::seconds(2));
    w.market.pump().await.unwrap();
    let letters = dlq.list(0, 10).await.unwrap();
    assert_eq!(letters.len(), 1, "parked after three attempts");
    assert_eq!((letters[0].attempts, letters[0].consumer.as_str()), (3, Marketplace::CONSUMER));
    assert_eq!(letters[0].event.event_type, EventType::ProductApproved);
    assert!(letters[0].error.contains("poison: search index unavailable"), "{}", letters[0].error);
    w.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(w.market.pump().await.unwrap(), 0, "a parked event is acked: no more redeliveries");

    // The healthy notification handler ran once despite its sibling failing.
    let approvals = w.market.notifications.list_mine(&w.vendor, Default::default()).await.unwrap();
    assert_eq!(approvals.items.iter().filter(|n| n.template == Template::ProductApproved).count(), 2);
    assert_eq!(w.sender.sent().len(), 2);

    w.market
        .dispatcher
        .replay(letters[0].id)
        .await
        .map(|o| assert_eq!(o, Outcome::DeadLettered(letters[0].id), "still failing"))
        .unwrap();
    assert_eq!(dlq.get(letters[0].id).await.unwrap().unwrap().attempts, 4, "a failed replay counts");
    poison.failing.store(false, Ordering::SeqCst);
    assert_eq!(w.market.dispatcher.replay(letters[0].id).await.unwrap(), Outcome::Processed);
    assert_eq!(poison.runs.load(Ordering::SeqCst), 1, "completed exactly once");
    assert_eq!(dlq.count().await.unwrap(), 0, "replayed letters are removed");
    assert_eq!(w.sender.sent().len(), 2, "the replay did not re-notify (inbox)");
    assert_eq!(w.market.dispatcher.replay(letters[0].id).await.unwrap_err().code(), "not_found");
}
